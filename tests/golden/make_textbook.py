"""Write tests/golden/textbook_full.json: the full 40,000-epoch textbook run.

The textbook model (bmi and s6 -> target, sizes [2, 5, 1], ReLU, MSE, Adam lr 1.0,
seed 4603) is trained full-batch for 40,000 epochs, exactly as in make_golden.py.
"losses" maps k = 0, 1000, ..., 40000 to the loss of the parameters after k updates
(for k < 40000, the loss of epoch k's forward pass; for 40000, the final loss).

This is reference data for documentation and loose tests. Over 40,000 epochs float32
round-off can move the result, so the float64 repeat of the run is stored next to it
("float64_losses", "float64_final_layers") to show how far.

Rerun from the repository root, with torch, pandas and numpy installed:

    /path/to/venv/bin/python tests/golden/make_textbook.py
"""

import copy

import torch

from common import (
    build_mlp,
    configure_torch,
    cpu_capability,
    layers_to_json,
    load_columns,
    loss_module,
    make_optimizer,
    params_max_rel_diff,
    write_json,
)
from make_golden import TEXTBOOK, full_data_loss, train_full_batch

EPOCHS = 40_000
RECORD_EVERY = 1000

CASE = dict(TEXTBOOK, name="textbook_full", epochs=EPOCHS)


def train_and_record_losses(model, inputs, targets, loss_fn):
    """Train for EPOCHS epochs and return the losses at every RECORD_EVERY updates."""
    optimizer = make_optimizer(CASE["optimizer"], model.parameters())
    losses = train_full_batch(model, inputs, targets, loss_fn, optimizer, EPOCHS)
    losses.append(full_data_loss(model, inputs, targets, loss_fn))
    return {str(epoch): losses[epoch] for epoch in range(0, EPOCHS + 1, RECORD_EVERY)}


def main():
    configure_torch()
    inputs = load_columns(CASE["data"], CASE["features"])
    targets = load_columns(CASE["data"], CASE["targets"])
    loss_fn = loss_module(CASE["loss"])

    model = build_mlp(CASE["sizes"], CASE["activations"], CASE["seed"])
    model64 = copy.deepcopy(model).double()
    initial_layers = layers_to_json(model)

    losses = train_and_record_losses(model, inputs, targets, loss_fn)
    losses64 = train_and_record_losses(
        model64, inputs.double(), targets.double(), loss_fn
    )
    final_loss = losses[str(EPOCHS)]
    final_loss64 = losses64[str(EPOCHS)]
    print(f"textbook_full: loss {losses['0']} -> {final_loss} (float64 run: {final_loss64})")
    print(f"float64 final parameter diff {params_max_rel_diff(model, model64):.2e}")

    write_json(
        "textbook_full.json",
        {
            "name": CASE["name"],
            "torch_version": torch.__version__,
            "cpu_capability": cpu_capability(),
            "data": CASE["data"],
            "features": CASE["features"],
            "targets": CASE["targets"],
            "sizes": CASE["sizes"],
            "activations": CASE["activations"],
            "loss": CASE["loss"],
            "optimizer": CASE["optimizer"],
            "seed": CASE["seed"],
            "epochs": EPOCHS,
            "batch": None,
            "initial_layers": initial_layers,
            "losses": losses,
            "final_layers": layers_to_json(model),
            "final_loss": final_loss,
            "float64_losses": losses64,
            "float64_final_layers": layers_to_json(model64),
        },
    )


if __name__ == "__main__":
    main()
