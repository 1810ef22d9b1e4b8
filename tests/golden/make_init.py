"""Write tests/golden/init.json: PyTorch's default nn.Linear initialization.

For each (seed, sizes) case the script seeds torch, builds the nn.Linear layers in
forward order and records their float32 weights ([out][in]) and biases. It also
reproduces every value from scratch with a pure-Python MT19937 and asserts that the
result is bitwise identical, so the recipe below is checked on every run:

* torch.manual_seed(seed) seeds a standard 32-bit MT19937 (std::mt19937
  initialization) with seed mod 2**32. It accepts seeds from -2**63 to 2**64 - 1
  (ValueError outside), stores negative ones as seed + 2**64 and returns the stored
  64-bit value from torch.initial_seed(). Only the low 32 bits reach the generator,
  so seed 2**32 + 5 gives the same layers as seed 5.
* Each float32 uniform sample on the CPU takes one 32-bit output r, computes the
  float32 u = (r & 0xFFFFFF) * 2**-24 and returns u * (high - low) + low rounded once
  to float32, as a fused multiply-add (f32::mul_add in Rust) would. low and high are
  the bounds rounded to float32. Tensors are filled in row-major order.
  NOTE: the single rounding applies only where PyTorch's CPU capability is AVX2 or
  AVX512 (checked with torch 2.15 on x86-64). With ATEN_CPU_CAPABILITY=default,
  PyTorch rounds the product and the sum separately, and about half of the values
  here differ by up to one ulp of the bound, so the script stops with an error there.
* Each nn.Linear(in, out) draws its weight first and then its bias. The weight bound
  is kaiming_uniform_(a=sqrt(5)): sqrt(3) * sqrt(2 / (1 + a**2)) / sqrt(in), and the
  bias bound is 1 / sqrt(in), both computed in float64 as in torch.nn.init.

Rerun from the repository root, with torch, numpy and pandas installed:

    /path/to/venv/bin/python tests/golden/make_init.py
"""

import math
from fractions import Fraction

import numpy as np
import torch

from common import (
    build_mlp,
    configure_torch,
    cpu_capability,
    layers_to_json,
    linear_layers,
    write_json,
)

CASES = [
    {"seed": 4603, "sizes": [2, 5, 1]},
    {"seed": 0, "sizes": [2, 5, 1]},
    {"seed": 1, "sizes": [10, 16, 8, 1]},
    {"seed": 42, "sizes": [3, 7, 2]},
    {"seed": 123456789, "sizes": [1, 1, 1]},
    {"seed": 2**32 + 5, "sizes": [4, 3, 1]},
    {"seed": 7, "sizes": [32, 128, 1]},
]

MT19937_OUTPUTS_SEED = 4603
MT19937_OUTPUTS_COUNT = 10


class MT19937:
    """Standard 32-bit Mersenne Twister, seeded like std::mt19937(seed)."""

    def __init__(self, seed):
        self.state = [seed & 0xFFFFFFFF]
        for index in range(1, 624):
            previous = self.state[-1]
            self.state.append((1812433253 * (previous ^ (previous >> 30)) + index) & 0xFFFFFFFF)
        self.index = 624

    def _twist(self):
        for k in range(624):
            y = (self.state[k] & 0x80000000) | (self.state[(k + 1) % 624] & 0x7FFFFFFF)
            mixed = self.state[(k + 397) % 624] ^ (y >> 1)
            self.state[k] = mixed ^ 0x9908B0DF if y & 1 else mixed
        self.index = 0

    def next_u32(self):
        """Return the next 32-bit output."""
        if self.index >= 624:
            self._twist()
        y = self.state[self.index]
        self.index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        return y


def round_to_float32(exact):
    """Return the float32 nearest to a Fraction, with ties to even."""
    guess = np.float32(float(exact))
    below = np.nextafter(guess, np.float32(-np.inf))
    above = np.nextafter(guess, np.float32(np.inf))

    def distance_then_odd(candidate):
        is_odd = int(np.array(candidate).view(np.uint32)) & 1
        return (abs(Fraction(float(candidate)) - exact), is_odd)

    return min((below, guess, above), key=distance_then_odd)


def uniform_float32(generator, count, bound):
    """Draw `count` float32 values from -bound to bound the way Tensor.uniform_ does on the CPU."""
    low = np.float32(-bound)
    high = np.float32(bound)
    width = high - low
    values = []
    for _ in range(count):
        u = np.float32(generator.next_u32() & 0xFFFFFF) * np.float32(2.0**-24)
        exact = Fraction(float(u)) * Fraction(float(width)) + Fraction(float(low))
        values.append(round_to_float32(exact))
    return np.array(values, dtype=np.float32)


def linear_bounds(fan_in):
    """Return (weight_bound, bias_bound) of nn.Linear.reset_parameters, in float64."""
    a = math.sqrt(5)
    gain = math.sqrt(2.0 / (1 + a**2))
    weight_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    bias_bound = 1 / math.sqrt(fan_in)
    return weight_bound, bias_bound


def reproduce_layers(seed, sizes):
    """Return [(weight, bias), ...] as float32 arrays, computed without torch."""
    generator = MT19937(seed & 0xFFFFFFFF)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weight_bound, bias_bound = linear_bounds(fan_in)
        weight = uniform_float32(generator, fan_out * fan_in, weight_bound)
        bias = uniform_float32(generator, fan_out, bias_bound)
        layers.append((weight.reshape(fan_out, fan_in), bias))
    return layers


def check_reproduction(model, seed, sizes):
    """Assert that the pure-Python recipe gives the model's parameters bit for bit."""
    for layer, (weight, bias) in zip(linear_layers(model), reproduce_layers(seed, sizes)):
        torch_weight = layer.weight.detach().numpy()
        torch_bias = layer.bias.detach().numpy()
        assert np.array_equal(torch_weight.view(np.uint32), weight.view(np.uint32)), (seed, sizes)
        assert np.array_equal(torch_bias.view(np.uint32), bias.view(np.uint32)), (seed, sizes)


def mt19937_first_outputs(seed, count):
    """Return the first `count` MT19937 outputs for `seed`, checked against numpy and torch.

    numpy.random.RandomState(seed) with an integer seed uses the same std::mt19937
    initialization. torch.rand exposes only the low 24 bits of each output.
    """
    generator = MT19937(seed)
    outputs = [generator.next_u32() for _ in range(count)]

    legacy_state = np.random.RandomState(seed).get_state(legacy=False)
    numpy_generator = np.random.MT19937()
    numpy_generator.state = legacy_state
    assert numpy_generator.random_raw(count).tolist() == outputs

    torch.manual_seed(seed)
    low_bits = (torch.rand(count, dtype=torch.float32).double() * 2**24).long().tolist()
    assert low_bits == [output & 0xFFFFFF for output in outputs]
    return outputs


def check_seed_range():
    """Assert how torch.manual_seed treats seeds outside [0, 2**32), as the docstring states."""
    large_seed_model = build_mlp([4, 3, 1], [{"kind": "relu"}], 2**32 + 5)
    low_seed_model = build_mlp([4, 3, 1], [{"kind": "relu"}], 5)
    for large, low in zip(large_seed_model.parameters(), low_seed_model.parameters()):
        assert torch.equal(large, low)
    print("seed 2**32 + 5 gives the same layers as seed 5")

    torch.manual_seed(-1)
    assert torch.initial_seed() == 2**64 - 1
    negative_draw = torch.rand(3)
    torch.manual_seed(2**32 - 1)
    assert torch.equal(negative_draw, torch.rand(3))

    for seed in (2**64, -(2**63) - 1):
        try:
            torch.manual_seed(seed)
        except ValueError:
            continue
        raise AssertionError(f"torch.manual_seed({seed}) was expected to raise ValueError")


def main():
    configure_torch()
    capability = cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        raise SystemExit(
            f"CPU capability {capability} rounds uniform_ twice, so the recorded values would "
            "not match PyTorch on AVX2 or AVX512 machines. Run on an x86-64 CPU with AVX2 "
            "and without ATEN_CPU_CAPABILITY=default."
        )
    cases = []
    for case in CASES:
        seed = case["seed"]
        sizes = case["sizes"]
        # Activations draw no random numbers, so any hidden activation gives the same layers.
        model = build_mlp(sizes, [{"kind": "relu"}] * (len(sizes) - 2), seed)
        assert torch.initial_seed() == seed
        check_reproduction(model, seed, sizes)
        cases.append(
            {
                "seed": seed,
                "mt19937_seed": seed & 0xFFFFFFFF,
                "sizes": sizes,
                "bounds": [
                    dict(zip(("weight", "bias"), linear_bounds(fan_in))) for fan_in in sizes[:-1]
                ],
                "layers": layers_to_json(model),
            }
        )

    check_seed_range()

    write_json(
        "init.json",
        {
            "torch_version": torch.__version__,
            "cpu_capability": capability,
            "mt19937_first_outputs": {
                "seed": MT19937_OUTPUTS_SEED,
                "outputs": mt19937_first_outputs(MT19937_OUTPUTS_SEED, MT19937_OUTPUTS_COUNT),
            },
            "cases": cases,
        },
    )


if __name__ == "__main__":
    main()
