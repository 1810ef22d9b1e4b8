"""Write the full-batch training trajectories tests/golden/traj_<name>.json.

Each case trains one MLP with real PyTorch (float32, CPU, one thread). The file
records the initial parameters, the loss of every epoch's forward pass, the
parameters after the last update and their loss on the full data.

The same run is repeated in float64, starting from the same float32 initial
parameters and float32 data. The largest relative difference between the two
loss trajectories (including final_loss) is stored as "float64_max_rel_diff", and
the largest final parameter difference, relative to the largest magnitude in the
same weight or bias tensor, as "float64_params_max_rel_diff". They estimate how far
float32 round-off alone moves the run. Each case's epoch count and learning rate
are chosen so that they stay under 1e-6 and 2e-6, and the script prints a warning
for any case above those limits.

Rerun from the repository root, with torch, pandas and numpy installed:

    /path/to/venv/bin/python tests/golden/make_golden.py
"""

import copy

import torch

from common import (
    adam_spec,
    build_mlp,
    configure_torch,
    cpu_capability,
    layers_to_json,
    load_columns,
    loss_module,
    make_optimizer,
    max_rel_diff,
    params_max_rel_diff,
    sgd_spec,
    write_json,
)

SCALED_DATA = "data/diabetes.csv"
RAW_DATA = "data/diabetes_raw.csv"

# Largest float32-versus-float64 differences that a case may show (see the docstring).
LOSS_DIFF_LIMIT = 1e-6
PARAMS_DIFF_LIMIT = 2e-6

ALL_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]

RELU = {"kind": "relu"}
TANH = {"kind": "tanh"}
MSE = {"kind": "mse"}

# The textbook model: bmi and s6 predict the disease progression target.
TEXTBOOK = {
    "data": SCALED_DATA,
    "features": ["bmi", "s6"],
    "targets": ["target"],
    "sizes": [2, 5, 1],
    "activations": [RELU],
    "loss": MSE,
    "optimizer": adam_spec(lr=1.0),
    "seed": 4603,
    "epochs": 300,
}


def textbook_case(name, **changes):
    """Return the textbook case with `changes` applied to its fields."""
    case = dict(TEXTBOOK, name=name)
    case.update(changes)
    return case


# Epoch counts and learning rates keep each case within LOSS_DIFF_LIMIT and
# PARAMS_DIFF_LIMIT.
CASES = [
    textbook_case("textbook_relu"),
    # With lr 1.0 the sigmoid and tanh units saturate once the loss reaches the
    # target variance (about 5930). After that Adam rescales gradients that are
    # mostly round-off, and the float32 and float64 parameters drift apart
    # (for tanh, about 3e-5 after 50 epochs) while the losses still agree.
    textbook_case("textbook_sigmoid", activations=[{"kind": "sigmoid"}], epochs=40),
    textbook_case("textbook_tanh", activations=[TANH], epochs=18),
    textbook_case("leaky_relu", activations=[{"kind": "leaky_relu", "negative_slope": 0.05}]),
    textbook_case("gelu", activations=[{"kind": "gelu"}]),
    textbook_case("gelu_tanh", activations=[{"kind": "gelu_tanh"}]),
    textbook_case("identity", activations=[{"kind": "identity"}]),
    # MAE and Huber use the raw-unit data. In data/diabetes.csv every feature column
    # sums to zero. At the start every prediction is far below its target, so the
    # MAE or Huber gradient with respect to each prediction is the same constant.
    # The first-layer weight gradients are then sums that cancel to round-off
    # (about 1e-10), and Adam's first step (g / (|g| + 1e-8)) turns them into updates
    # of about lr * 1e-2 whose sign depends on the summation order.
    textbook_case("mae", data=RAW_DATA, loss={"kind": "mae"}, optimizer=adam_spec(lr=0.01)),
    textbook_case(
        "huber",
        data=RAW_DATA,
        loss={"kind": "huber", "delta": 10.0},
        optimizer=adam_spec(lr=0.01),
        epochs=200,
    ),
    textbook_case("adam_wd", optimizer=adam_spec(lr=1.0, weight_decay=0.01)),
    textbook_case("adamw", optimizer=adam_spec(lr=1.0, weight_decay=0.01, kind="adamw")),
    textbook_case("sgd_plain", optimizer=sgd_spec(lr=1e-3)),
    # With momentum 0.9 and lr 1e-3 the loss oscillates, and with Nesterov it jumps
    # from about 3750 to 9500 near epoch 85, so the momentum cases use lr 5e-4.
    textbook_case("sgd_momentum", optimizer=sgd_spec(lr=5e-4, momentum=0.9, dampening=0.1)),
    textbook_case(
        "sgd_nesterov",
        optimizer=sgd_spec(lr=5e-4, momentum=0.9, nesterov=True, weight_decay=1e-3),
    ),
    {
        "name": "deep_all",
        "data": SCALED_DATA,
        "features": ALL_FEATURES,
        "targets": ["target"],
        "sizes": [10, 16, 8, 1],
        "activations": [TANH, TANH],
        "loss": MSE,
        "optimizer": adam_spec(lr=0.01),
        "seed": 1,
        "epochs": 300,
    },
    {
        "name": "mixed_activations",
        "data": SCALED_DATA,
        "features": ALL_FEATURES,
        "targets": ["target"],
        "sizes": [10, 8, 6, 1],
        "activations": [RELU, TANH],
        "loss": MSE,
        "optimizer": adam_spec(lr=0.01),
        "seed": 3,
        "epochs": 300,
    },
    {
        "name": "multi_output",
        "data": SCALED_DATA,
        "features": ["bmi", "bp", "s5"],
        "targets": ["target", "s6"],
        "sizes": [3, 6, 2],
        "activations": [RELU],
        "loss": MSE,
        "optimizer": adam_spec(lr=0.05),
        "seed": 11,
        "epochs": 300,
    },
    textbook_case("raw_units", data=RAW_DATA, optimizer=adam_spec(lr=0.01)),
]


def train_full_batch(model, inputs, targets, loss_fn, optimizer, epochs):
    """Train on the full data for `epochs` updates and return each epoch's loss."""
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def full_data_loss(model, inputs, targets, loss_fn):
    """Return the loss of the model's current parameters on the full data."""
    with torch.no_grad():
        return loss_fn(model(inputs), targets).item()


def run_case(case):
    """Train one case in float32 and float64 and return its golden JSON object."""
    inputs = load_columns(case["data"], case["features"])
    targets = load_columns(case["data"], case["targets"])
    loss_fn = loss_module(case["loss"])

    model = build_mlp(case["sizes"], case["activations"], case["seed"])
    model64 = copy.deepcopy(model).double()
    initial_layers = layers_to_json(model)

    optimizer = make_optimizer(case["optimizer"], model.parameters())
    losses = train_full_batch(model, inputs, targets, loss_fn, optimizer, case["epochs"])
    final_loss = full_data_loss(model, inputs, targets, loss_fn)

    optimizer64 = make_optimizer(case["optimizer"], model64.parameters())
    inputs64 = inputs.double()
    targets64 = targets.double()
    losses64 = train_full_batch(
        model64, inputs64, targets64, loss_fn, optimizer64, case["epochs"]
    )
    final_loss64 = full_data_loss(model64, inputs64, targets64, loss_fn)

    loss_diff = max_rel_diff(losses + [final_loss], losses64 + [final_loss64])
    params_diff = params_max_rel_diff(model, model64)
    print(
        f"{case['name']:18} epochs {case['epochs']:4}  loss {losses[0]:.6g} -> {final_loss:.6g}"
        f"  float64 loss diff {loss_diff:.2e}  params diff {params_diff:.2e}"
    )
    if loss_diff > LOSS_DIFF_LIMIT or params_diff > PARAMS_DIFF_LIMIT:
        print(
            f"WARNING: {case['name']}: the float64 run differs by {loss_diff:.1e} (losses) and "
            f"{params_diff:.1e} (parameters), above the limits {LOSS_DIFF_LIMIT:.0e} and "
            f"{PARAMS_DIFF_LIMIT:.0e}. Use fewer epochs or a smaller lr for this case."
        )

    return {
        "name": case["name"],
        "torch_version": torch.__version__,
        "cpu_capability": cpu_capability(),
        "data": case["data"],
        "features": case["features"],
        "targets": case["targets"],
        "sizes": case["sizes"],
        "activations": case["activations"],
        "loss": case["loss"],
        "optimizer": case["optimizer"],
        "seed": case["seed"],
        "epochs": case["epochs"],
        "batch": None,
        "initial_layers": initial_layers,
        "losses": losses,
        "final_layers": layers_to_json(model),
        "final_loss": final_loss,
        "float64_max_rel_diff": loss_diff,
        "float64_params_max_rel_diff": params_diff,
    }


def main():
    configure_torch()
    for case in CASES:
        write_json(f"traj_{case['name']}.json", run_case(case))


if __name__ == "__main__":
    main()
