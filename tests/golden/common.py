"""Shared PyTorch code for the golden-data scripts in this folder.

The make_*.py scripts import this module, so run them as files from the repository
root (for example `/path/to/venv/bin/python tests/golden/make_golden.py`). Every
model, loss and optimizer in the golden files is built by the functions below.
"""

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = Path(__file__).resolve().parent


def configure_torch():
    """Make PyTorch deterministic on the CPU and print the version that ran."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}, CPU capability {cpu_capability()}")


def cpu_capability():
    """Return the SIMD level of PyTorch's CPU kernels, such as "AVX512" or "DEFAULT".

    AVX2 and AVX512 gave bitwise identical golden values (torch 2.15, AMD EPYC). DEFAULT
    (set with ATEN_CPU_CAPABILITY=default) changes the last bits of the initial
    parameters and of everything computed from them.
    """
    return torch.backends.cpu.get_cpu_capability()


def check_float32_parsing(csv_text_rows):
    """Raise AssertionError unless float32(float64(text)) is the nearest float32 to text.

    The golden data converts each CSV field to float64 (pandas) and then to float32.
    Code that parses the text straight to f32 gets the same values only if no field
    hits double rounding, so this checks every field exactly with fractions.
    """
    for row in csv_text_rows:
        for text in row:
            via_float64 = np.float32(float(text))
            exact = Fraction(text)
            below = np.nextafter(via_float64, np.float32(-np.inf))
            above = np.nextafter(via_float64, np.float32(np.inf))
            error = abs(Fraction(float(via_float64)) - exact)
            assert abs(Fraction(float(below)) - exact) > error, text
            assert abs(Fraction(float(above)) - exact) > error, text


def load_columns(relative_path, columns):
    """Read the named CSV columns as a float32 tensor of shape [rows][len(columns)]."""
    path = REPO_ROOT / relative_path
    frame = pd.read_csv(path)
    text_rows = pd.read_csv(path, dtype=str)[columns].to_numpy()
    check_float32_parsing(text_rows)
    return torch.tensor(frame[columns].to_numpy(), dtype=torch.float32)


def activation_module(spec):
    """Return the nn module for an activation object such as {"kind": "relu"}."""
    kind = spec["kind"]
    if kind == "relu":
        return nn.ReLU()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "leaky_relu":
        return nn.LeakyReLU(negative_slope=spec["negative_slope"])
    if kind == "gelu":
        return nn.GELU(approximate="none")
    if kind == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    if kind == "identity":
        return nn.Identity()
    raise ValueError(f"unknown activation kind {kind!r}")


def build_mlp(sizes, activations, seed):
    """Seed the global generator and build the float32 MLP for `sizes`.

    The Linear layers are created in forward order right after torch.manual_seed,
    so their default initialization draws from the generator in that order.
    Activation modules draw no random numbers.
    """
    assert len(activations) == len(sizes) - 2, "one activation per hidden layer"
    torch.manual_seed(seed)
    modules = []
    for index in range(len(sizes) - 1):
        modules.append(nn.Linear(sizes[index], sizes[index + 1]))
        if index < len(activations):
            modules.append(activation_module(activations[index]))
    return nn.Sequential(*modules)


def loss_module(spec):
    """Return the mean-reduced nn loss for a loss object such as {"kind": "mse"}."""
    kind = spec["kind"]
    if kind == "mse":
        return nn.MSELoss(reduction="mean")
    if kind == "mae":
        return nn.L1Loss(reduction="mean")
    if kind == "huber":
        return nn.HuberLoss(reduction="mean", delta=spec["delta"])
    raise ValueError(f"unknown loss kind {kind!r}")


def make_optimizer(spec, parameters):
    """Return the torch.optim optimizer for an optimizer object, with foreach=False."""
    assert spec["implementation"] == "single_tensor"
    kind = spec["kind"]
    if kind in ("adam", "adamw"):
        optimizer_class = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return optimizer_class(
            parameters,
            lr=spec["lr"],
            betas=tuple(spec["betas"]),
            eps=spec["eps"],
            weight_decay=spec["weight_decay"],
            amsgrad=False,
            maximize=False,
            foreach=False,
            fused=False,
        )
    if kind == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=spec["lr"],
            momentum=spec["momentum"],
            dampening=spec["dampening"],
            nesterov=spec["nesterov"],
            weight_decay=spec["weight_decay"],
            maximize=False,
            foreach=False,
            fused=False,
        )
    raise ValueError(f"unknown optimizer kind {kind!r}")


def adam_spec(lr, weight_decay=0.0, kind="adam"):
    """Return an Adam or AdamW optimizer object with PyTorch's default betas and eps."""
    return {
        "kind": kind,
        "lr": lr,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": weight_decay,
        "implementation": "single_tensor",
    }


def sgd_spec(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    """Return an SGD optimizer object with every field written out."""
    return {
        "kind": "sgd",
        "lr": lr,
        "momentum": momentum,
        "dampening": dampening,
        "nesterov": nesterov,
        "weight_decay": weight_decay,
        "implementation": "single_tensor",
    }


def linear_layers(model):
    """Return the model's nn.Linear layers in forward order."""
    return [module for module in model if isinstance(module, nn.Linear)]


def layers_to_json(model):
    """Return [{"weight": [[...] per output], "bias": [...]}, ...] as exact Python floats.

    Python floats converted from float32 values print with repr, which parses back
    to the same float64 and therefore casts back to the same float32. For a float64
    model the values are the float64 ones.
    """
    return [
        {"weight": layer.weight.detach().tolist(), "bias": layer.bias.detach().tolist()}
        for layer in linear_layers(model)
    ]


def max_rel_diff(values, reference):
    """Return max |values - reference| / |reference| over paired sequences of numbers."""
    return max(abs(value - ref) / abs(ref) for value, ref in zip(values, reference))


def params_max_rel_diff(model, reference_model):
    """Return the max parameter difference, relative to the largest |value| of each tensor.

    Each weight and bias tensor of `model` is compared with the same tensor of
    `reference_model` as max |a - b| / max |b|, and the largest ratio is returned.
    An elementwise ratio would blow up for parameters that are close to zero.
    """
    worst = 0.0
    for param, reference in zip(model.parameters(), reference_model.parameters()):
        a = param.detach().double()
        b = reference.detach().double()
        worst = max(worst, ((a - b).abs().max() / b.abs().max()).item())
    return worst


def format_json(value, indent=""):
    """Format `value` as JSON with each list or object of scalars on one line.

    Scalars go through json.dumps, which writes a Python float with repr, and
    NaN or infinity raise ValueError.
    """
    inner = indent + " "
    if isinstance(value, dict):
        if all(not isinstance(item, (dict, list)) for item in value.values()):
            return json.dumps(value, allow_nan=False)
        items = [
            f"{inner}{json.dumps(key)}: {format_json(item, inner)}" for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            return "[" + ", ".join(json.dumps(item, allow_nan=False) for item in value) + "]"
        items = [inner + format_json(item, inner) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value, allow_nan=False)


def write_json(name, payload):
    """Write `payload` to tests/golden/`name` and check that it parses back unchanged."""
    path = GOLDEN_DIR / name
    text = format_json(payload) + "\n"
    assert json.loads(text) == payload
    path.write_text(text)
    print(f"wrote {path.relative_to(REPO_ROOT)}")
