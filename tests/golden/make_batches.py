"""Write tests/golden/traj_minibatch.json: the textbook model trained on mini-batches.

The textbook model (bmi and s6 -> target, sizes [2, 5, 1], ReLU, MSE, seed 4603) is
trained with Adam (lr 0.1) on batches of 64 rows for 5 epochs. The row order of each
epoch is a permutation from one numpy generator, np.random.default_rng(2024), which
draws a new permutation(442) per epoch. The orders are stored in the file, so a
reader never needs numpy's generator. Batch b of epoch e is rows
orders[e][b * 64:(b + 1) * 64]; the last batch of an epoch has the 58 remaining rows.

Each step runs zero_grad, the mean loss over the batch, backward and step. The file
records every batch loss in order ("step_losses"), the full-data loss of the
parameters at the start of each epoch ("losses", computed without gradients), the
final parameters and their full-data loss. As in make_golden.py, the run is repeated
in float64 from the same float32 start to estimate the effect of float32 round-off.

Rerun from the repository root, with torch, pandas and numpy installed:

    /path/to/venv/bin/python tests/golden/make_batches.py
"""

import copy

import numpy as np
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
    write_json,
)
from make_golden import TEXTBOOK, full_data_loss

BATCH_SIZE = 64
EPOCHS = 5
ORDER_SEED = 2024

CASE = dict(TEXTBOOK, name="minibatch", optimizer=adam_spec(lr=0.1), epochs=EPOCHS)


def epoch_orders(row_count):
    """Return one row permutation per epoch, all drawn from a single numpy generator."""
    generator = np.random.default_rng(ORDER_SEED)
    return [generator.permutation(row_count).tolist() for _ in range(EPOCHS)]


def train_minibatch(model, inputs, targets, loss_fn, optimizer, orders):
    """Train over the given epoch orders and return (epoch_losses, step_losses)."""
    epoch_losses = []
    step_losses = []
    for order in orders:
        epoch_losses.append(full_data_loss(model, inputs, targets, loss_fn))
        for start in range(0, len(order), BATCH_SIZE):
            rows = torch.tensor(order[start : start + BATCH_SIZE])
            optimizer.zero_grad()
            loss = loss_fn(model(inputs[rows]), targets[rows])
            loss.backward()
            optimizer.step()
            step_losses.append(loss.item())
    return epoch_losses, step_losses


def main():
    configure_torch()
    inputs = load_columns(CASE["data"], CASE["features"])
    targets = load_columns(CASE["data"], CASE["targets"])
    loss_fn = loss_module(CASE["loss"])
    orders = epoch_orders(inputs.shape[0])

    model = build_mlp(CASE["sizes"], CASE["activations"], CASE["seed"])
    model64 = copy.deepcopy(model).double()
    initial_layers = layers_to_json(model)

    optimizer = make_optimizer(CASE["optimizer"], model.parameters())
    losses, step_losses = train_minibatch(model, inputs, targets, loss_fn, optimizer, orders)
    final_loss = full_data_loss(model, inputs, targets, loss_fn)

    optimizer64 = make_optimizer(CASE["optimizer"], model64.parameters())
    inputs64 = inputs.double()
    targets64 = targets.double()
    losses64, step_losses64 = train_minibatch(
        model64, inputs64, targets64, loss_fn, optimizer64, orders
    )
    final_loss64 = full_data_loss(model64, inputs64, targets64, loss_fn)

    loss_diff = max_rel_diff(
        losses + step_losses + [final_loss], losses64 + step_losses64 + [final_loss64]
    )
    params_diff = params_max_rel_diff(model, model64)
    print(
        f"minibatch: {len(step_losses)} steps, loss {losses[0]:.6g} -> {final_loss:.6g}, "
        f"float64 loss diff {loss_diff:.2e}, params diff {params_diff:.2e}"
    )

    write_json(
        "traj_minibatch.json",
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
            "batch": {"size": BATCH_SIZE, "order_seed": ORDER_SEED, "orders": orders},
            "initial_layers": initial_layers,
            "losses": losses,
            "step_losses": step_losses,
            "final_layers": layers_to_json(model),
            "final_loss": final_loss,
            "float64_max_rel_diff": loss_diff,
            "float64_params_max_rel_diff": params_diff,
        },
    )


if __name__ == "__main__":
    main()
