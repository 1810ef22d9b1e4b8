"""Time the workloads of `shadertrain bench` in PyTorch on the CPU.

Rerun from the repository root (PyTorch, NumPy and pandas installed):

    python bench/pytorch_baseline.py --json pytorch.json

Add `--quick` for short runs, `--workloads textbook-relu,wide-100k` for a
subset, and `--shadertrain-json FILE` to print each shadertrain measurement
(from `shadertrain bench --json FILE`) as a ratio to PyTorch's.

The workloads match shadertrain's (src/commands/bench.rs): the same models,
MSE loss, Adam, full batch, and the same initial parameters, because
shadertrain's seeded initialization reproduces `torch.manual_seed(4603)`
followed by the `nn.Linear` layers. The textbook data is data/diabetes.csv.
The synthetic data has the same distribution as shadertrain's but is not
bit-identical, because PyTorch's generator differs from shadertrain's
ChaCha8 generator: features uniform in [-1, 1), target
`sin(2 x . w) + 0.1 e` with a random projection `w` scaled to unit variance
and uniform noise `e` in [-1, 1).

Method, per workload: one untimed warm-up run of a few epochs, then
`repeats` timed runs of `epochs` epochs, each from a freshly built model and
optimizer. A run's time covers only the training loop
(`zero_grad`, forward, loss, `backward`, `step` per epoch); the script
reports the median over the runs. PyTorch uses as many threads as the
machine has logical CPUs.
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy
import pandas
import torch

REPOSITORY = Path(__file__).resolve().parent.parent
TEXTBOOK_DATA = REPOSITORY / "data" / "diabetes.csv"
INIT_SEED = 4603
WIDE_DATA_SEED = 100
TALL_DATA_SEED = 101
ALL_WORKLOADS = ["textbook-relu", "textbook-sigmoid", "textbook-tanh", "wide-100k", "tall-1m"]
ACTIVATIONS = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}


def synthetic_data(rows, features, seed):
    """Return features and targets as shadertrain's `synthetic_table` draws them, in distribution."""
    generator = torch.Generator().manual_seed(seed)
    scale = 3.0 / math.sqrt(features)
    projection = (torch.rand(features, generator=generator) * 2 - 1) * scale
    x = torch.rand(rows, features, generator=generator) * 2 - 1
    noise = torch.rand(rows, generator=generator) * 2 - 1
    y = torch.sin(2 * (x @ projection)) + 0.1 * noise
    return x, y.unsqueeze(1)


def build_workload(name, quick):
    """Return the data, layer sizes, activation, learning rate and run lengths of `name`."""
    if name.startswith("textbook-"):
        frame = pandas.read_csv(TEXTBOOK_DATA)
        x = torch.tensor(frame[["bmi", "s6"]].to_numpy(), dtype=torch.float32)
        y = torch.tensor(frame[["target"]].to_numpy(), dtype=torch.float32)
        return {
            "name": name,
            "x": x,
            "y": y,
            "sizes": [2, 5, 1],
            "activation": name.removeprefix("textbook-"),
            "lr": 1.0,
            "warmup_epochs": 100,
            "epochs": 2_000 if quick else 40_000,
            "repeats": 3 if quick else 5,
        }
    rows, features, hidden, seed, epochs = {
        "wide-100k": (100_000, 32, 128, WIDE_DATA_SEED, 20),
        "tall-1m": (1_000_000, 16, 64, TALL_DATA_SEED, 5),
    }[name]
    x, y = synthetic_data(rows, features, seed)
    return {
        "name": name,
        "x": x,
        "y": y,
        "sizes": [features, hidden, 1],
        "activation": "relu",
        "lr": 0.001,
        "warmup_epochs": 1,
        "epochs": 2 if quick else epochs,
        "repeats": 1 if quick else 3,
    }


def train_once(workload, epochs):
    """Train a fresh model for `epochs` epochs and return the loop's seconds, the initial and the final loss."""
    torch.manual_seed(INIT_SEED)
    inputs, hidden, outputs = workload["sizes"]
    model = torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden),
        ACTIVATIONS[workload["activation"]](),
        torch.nn.Linear(hidden, outputs),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=workload["lr"])
    loss_function = torch.nn.MSELoss()
    x, y = workload["x"], workload["y"]
    with torch.no_grad():
        initial_loss = loss_function(model(x), y).item()

    start = time.perf_counter()
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_function(model(x), y)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start

    with torch.no_grad():
        final_loss = loss_function(model(x), y).item()
    return seconds, initial_loss, final_loss


def measure(workload, epochs_override, repeats_override):
    """Return the measurement of one workload: a warm-up run, then the timed runs."""
    epochs = epochs_override or workload["epochs"]
    repeats = repeats_override or workload["repeats"]
    train_once(workload, workload["warmup_epochs"])
    runs = [train_once(workload, epochs) for _ in range(repeats)]
    rates = [epochs / seconds for seconds, _, _ in runs]
    median_rate = statistics.median(rates)
    rows = workload["x"].shape[0]
    sizes = workload["sizes"]
    return {
        "workload": workload["name"],
        "backend": "pytorch-cpu",
        "model": f"{sizes[0]} -> {sizes[1]} ({workload['activation']}) -> {sizes[2]}",
        "parameters": sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(sizes) - 1)),
        "rows": rows,
        "optimizer": f"adam (lr {workload['lr']:g}, PyTorch defaults otherwise)",
        "loss": "mse",
        "warmup_epochs": workload["warmup_epochs"],
        "epochs": epochs,
        "repeats": repeats,
        "seconds": [seconds for seconds, _, _ in runs],
        "epochs_per_second": rates,
        "median_epochs_per_second": median_rate,
        "median_row_epochs_per_second": median_rate * rows,
        "initial_loss": runs[0][1],
        "final_loss": [final for _, _, final in runs],
    }


def describe_machine():
    """Return the CPU model, logical CPUs and memory, from /proc where available."""
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_bytes = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory_bytes = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "memory_bytes": memory_bytes,
        "os": platform.system().lower(),
        "arch": platform.machine(),
    }


def format_rate(rate):
    """Format a rate as `shadertrain bench` does."""
    if rate >= 100:
        return f"{rate:,.0f}"
    if rate >= 10:
        return f"{rate:.1f}"
    if rate >= 1:
        return f"{rate:.2f}"
    return f"{rate:.3f}"


def format_loss(loss):
    return f"{loss:.2f}" if abs(loss) >= 100 else f"{loss:.5f}"


def print_table(header, rows):
    """Print rows with the first two columns left-aligned and the rest right-aligned."""
    widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        cells = [
            f"{cell:<{width}}" if c < 2 else f"{cell:>{width}}"
            for c, (cell, width) in enumerate(zip(row, widths))
        ]
        print("  ".join(cells))


def print_comparison(measurements, path):
    """Print each shadertrain measurement of `path` as a ratio to PyTorch's on the same workload."""
    with open(path) as file:
        shadertrain = json.load(file)
    by_workload = {m["workload"]: m for m in measurements}
    rows = []
    for other in shadertrain["measurements"]:
        torch_measurement = by_workload.get(other["workload"])
        if torch_measurement is None:
            continue
        rows.append([
            other["workload"],
            other["backend"],
            format_rate(other["median_epochs_per_second"]),
            format_rate(torch_measurement["median_epochs_per_second"]),
            f"{other['median_epochs_per_second'] / torch_measurement['median_epochs_per_second']:.2f}x",
        ])
    print()
    print(f"shadertrain ({path}) against PyTorch:")
    print_table(["workload", "backend", "shadertrain epochs/s", "PyTorch epochs/s", "ratio"], rows)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS),
                        help="workloads to run, comma-separated (default: all)")
    parser.add_argument("--epochs", type=int, help="epochs per timed run for every workload (default: per workload)")
    parser.add_argument("--repeats", type=int, help="timed runs per workload (default: 5 textbook, 3 large)")
    parser.add_argument("--quick", action="store_true", help="short runs (2000 textbook epochs, 2 large-workload epochs), as `shadertrain bench --quick`")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="torch.set_num_threads (default: the number of logical CPUs)")
    parser.add_argument("--json", type=Path, help="write every measurement and the machine description as JSON")
    parser.add_argument("--shadertrain-json", type=Path,
                        help="a `shadertrain bench --json` file whose rates to print as ratios to PyTorch's")
    arguments = parser.parse_args()
    arguments.workloads = [name.strip() for name in arguments.workloads.split(",") if name.strip()]
    unknown = [name for name in arguments.workloads if name not in ALL_WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}: expected some of {', '.join(ALL_WORKLOADS)}")
    for option in ("epochs", "repeats", "threads"):
        value = getattr(arguments, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be at least 1, not {value}")
    return arguments


def main():
    arguments = parse_arguments()
    torch.set_num_threads(arguments.threads)
    machine = describe_machine()
    memory = f", {machine['memory_bytes'] / 2**30:.1f} GiB memory" if machine["memory_bytes"] else ""
    print(f"PyTorch {torch.__version__} baseline, {torch.get_num_threads()} threads")
    print(f"cpu: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs{memory}")

    measurements = []
    for name in arguments.workloads:
        workload = build_workload(name, arguments.quick)
        measurement = measure(workload, arguments.epochs, arguments.repeats)
        print(
            f"  {name}: {measurement['epochs']} epochs x {measurement['repeats']} runs, "
            f"median {format_rate(measurement['median_epochs_per_second'])} epochs/s",
            file=sys.stderr,
        )
        measurements.append(measurement)

    print()
    header = ["workload", "backend", "epochs", "runs", "median epochs/s", "rows x epochs/s", "vs cpu",
              "initial loss", "final loss"]
    rows = [
        [
            m["workload"], m["backend"], m["epochs"], m["repeats"],
            format_rate(m["median_epochs_per_second"]), format_rate(m["median_row_epochs_per_second"]), "-",
            format_loss(m["initial_loss"]), format_loss(m["final_loss"][0]),
        ]
        for m in measurements
    ]
    print_table(header, rows)

    if arguments.shadertrain_json:
        print_comparison(measurements, arguments.shadertrain_json)

    if arguments.json:
        report = {
            "format": "pytorch-baseline",
            "version": 1,
            "torch_version": torch.__version__,
            "numpy_version": numpy.__version__,
            "python_version": platform.python_version(),
            "threads": torch.get_num_threads(),
            "unix_time": int(time.time()),
            "machine": machine,
            "settings": {"quick": arguments.quick, "epochs": arguments.epochs, "repeats": arguments.repeats},
            "measurements": measurements,
        }
        temporary = arguments.json.with_name(arguments.json.name + ".tmp")
        temporary.write_text(json.dumps(report, indent=2) + "\n")
        temporary.replace(arguments.json)
        print(f"results written to {arguments.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
