"""Check a safetensors file from `shadertrain train --save-safetensors` with real PyTorch.

The script builds a module whose `layers` attribute is the nn.Sequential that
shadertrain trains: nn.Linear layers with one activation module after each hidden
layer. It loads the safetensors file into it with `safetensors.torch.load_file` and
`load_state_dict(strict=True)`. Then it predicts on a CSV file and compares the
predictions with the `<target>_predicted` columns that `shadertrain predict` wrote
for the same file. It prints the max absolute difference and the max relative one, which divides
each output column's max absolute difference by its largest |prediction|.

The model JSON from `train --save` supplies what the safetensors file does not hold:
the activations, the feature and target columns and the standardization. The
weights come from the safetensors file only.

Usage, from the repository root:

    /path/to/venv/bin/python tests/golden/check_safetensors.py \\
        --safetensors model.safetensors --model model.json --predictions predictions.csv

With `--record tests/golden/safetensors_check.json --name NAME --command CMD ...` the
result is also stored in that JSON file under `cases[NAME]`, together with the
commands that made the inputs and the torch and safetensors versions.
"""

import argparse
import json
import platform
import sys
from importlib.metadata import version

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from common import REPO_ROOT, activation_module, configure_torch


class Regressor(nn.Module):
    """The module layout the safetensors names refer to: `layers.{2l}.weight` and `.bias`."""

    def __init__(self, sizes, activations):
        super().__init__()
        modules = []
        for index in range(len(sizes) - 1):
            modules.append(nn.Linear(sizes[index], sizes[index + 1]))
            if index < len(activations):
                modules.append(activation_module(activations[index]))
        self.layers = nn.Sequential(*modules)

    def forward(self, x):
        return self.layers(x)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--safetensors", required=True, help="file written by train --save-safetensors")
    parser.add_argument("--model", required=True, help="model JSON written by train --save in the same run")
    parser.add_argument("--predictions", required=True, help="CSV file written by shadertrain predict")
    parser.add_argument("--data", default="data/diabetes.csv", help="CSV file the predictions were made for")
    parser.add_argument("--record", help="golden JSON file to store the result in")
    parser.add_argument("--name", help="case name in the --record file")
    parser.add_argument(
        "--command", action="append", default=[], help="command that made the inputs (repeat, in order)"
    )
    args = parser.parse_args()
    if args.record and not args.name:
        parser.error("--record needs --name")
    return args


def build_module(model, tensors):
    """Build the Regressor for the model JSON and load the safetensors tensors into it."""
    sizes = [len(model["features"]), *model["hidden"], len(model["targets"])]
    module = Regressor(sizes, model["activations"])
    # strict=True raises on a missing, unexpected or wrongly shaped tensor.
    module.load_state_dict(tensors, strict=True)
    for name, tensor in tensors.items():
        assert tensor.dtype == torch.float32, f"{name} is {tensor.dtype}, expected torch.float32"
    return module.eval()


def standardize(values, zscore):
    """Apply (x - mean) / std in float64 to float32 values and round to float32, as shadertrain does."""
    if zscore is None:
        return values
    mean = np.asarray(zscore["mean"], dtype=np.float64)
    std = np.asarray(zscore["std"], dtype=np.float64)
    return ((values.astype(np.float64) - mean) / std).astype(np.float32)


def unstandardize(values, zscore):
    """Apply x * std + mean in float64 to float32 values and round to float32, as shadertrain does."""
    if zscore is None:
        return values
    mean = np.asarray(zscore["mean"], dtype=np.float64)
    std = np.asarray(zscore["std"], dtype=np.float64)
    return (values.astype(np.float64) * std + mean).astype(np.float32)


def compare(args):
    """Return the comparison of torch's predictions with shadertrain's as a dict."""
    with open(args.model) as file:
        model = json.load(file)
    with safe_open(args.safetensors, framework="pt") as file:
        metadata = file.metadata() or {}
    assert metadata.get("features") == ",".join(model["features"]), (metadata, model["features"])
    assert metadata.get("targets") == ",".join(model["targets"]), (metadata, model["targets"])
    module = build_module(model, load_file(args.safetensors))

    standardization = model.get("standardization") or {}
    frame = pd.read_csv(REPO_ROOT / args.data)
    features = standardize(frame[model["features"]].to_numpy().astype(np.float32), standardization.get("features"))
    with torch.no_grad():
        predicted = module(torch.from_numpy(features)).numpy()
    predicted = unstandardize(predicted, standardization.get("targets"))

    written = pd.read_csv(args.predictions)
    columns = [f"{target}_predicted" for target in model["targets"]]
    assert len(written) == len(frame), f"{len(written)} prediction rows for {len(frame)} data rows"
    reference = written[columns].to_numpy().astype(np.float32)

    # Relative differences are taken per output column against that column's largest
    # |prediction|, because an elementwise ratio blows up for predictions close to zero.
    difference = np.abs(predicted.astype(np.float64) - reference.astype(np.float64)).max(axis=0)
    magnitude = np.abs(reference.astype(np.float64)).max(axis=0)
    return {
        "rows": int(len(frame)),
        "outputs": len(columns),
        "max_abs_diff": float(difference.max()),
        "max_rel_diff": float((difference / magnitude).max()),
        "per_output": {
            column: {
                "max_abs_diff": float(difference[index]),
                "max_abs_prediction": float(magnitude[index]),
                "prediction_std": float(reference[:, index].std()),
            }
            for index, column in enumerate(columns)
        },
    }


def record(args, result):
    """Store the result under cases[args.name] of the --record JSON file."""
    path = REPO_ROOT / args.record
    cases = json.loads(path.read_text())["cases"] if path.exists() else {}
    cases[args.name] = {"commands": args.command, **result}
    golden = {
        "torch_version": torch.__version__,
        "safetensors_version": version("safetensors"),
        "python_version": platform.python_version(),
        "cases": dict(sorted(cases.items())),
    }
    path.write_text(json.dumps(golden, indent=2) + "\n")


def main():
    args = parse_args()
    configure_torch()
    result = compare(args)
    print(
        f"{result['rows']} rows, {result['outputs']} outputs: max abs diff {result['max_abs_diff']:.3g}, "
        f"max rel diff {result['max_rel_diff']:.3g}"
    )
    if args.record:
        record(args, result)
        print(f"recorded as {args.name} in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
