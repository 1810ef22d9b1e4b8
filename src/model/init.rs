//! PyTorch-identical initialization of `nn.Linear` layers.
//!
//! `torch.manual_seed(seed)` seeds PyTorch's CPU generator, a 32-bit
//! Mersenne Twister (mt19937) whose state is initialized from the low 32 bits
//! of the seed. `nn.Linear(I, O)` then draws, in this order:
//! - `weight[O][I]` with `kaiming_uniform_(a=sqrt(5))`, which is
//!   `U(-bound, bound)` with `bound = sqrt(3) * gain / sqrt(I)` and
//!   `gain = sqrt(2 / (1 + a^2))`, all computed in f64 by Python;
//! - `bias[O]` from `U(-1/sqrt(I), 1/sqrt(I))`.
//!
//! `Tensor.uniform_(from, to)` on a float32 CPU tensor casts `from` and `to`
//! to f32 and maps each 32-bit draw `u` to
//! `((u & (2^24 - 1)) * 2^-24) * (to - from) + from`, evaluated in f32 with
//! the last multiply-add rounded once, as PyTorch's AVX2 and AVX-512 kernels
//! compute it. PyTorch built for CPUs without FMA rounds twice, and then
//! about half the values differ by one unit in the last place.
//! Matching every step bit for bit makes `--seed S` reproduce the parameters
//! of a PyTorch script that calls `torch.manual_seed(S)` and then builds the
//! layers in forward order.

use rand_mt::Mt;

use super::{Architecture, Parameters};

/// Draws PyTorch's `nn.Linear` initialization for every layer of `architecture`.
pub fn torch_linear_init(architecture: &Architecture, seed: u64) -> Parameters {
    // PyTorch's mt19937 keeps only the low 32 bits of the seed.
    let mut generator = Mt::new(seed as u32);
    let mut flat = Vec::with_capacity(architecture.parameter_count());

    for l in 0..architecture.layer_count() {
        let (fan_in, fan_out) = architecture.layer_shape(l);

        let a = 5.0_f64.sqrt();
        let gain = (2.0 / (1.0 + a.powi(2))).sqrt();
        let std = gain / (fan_in as f64).sqrt();
        let weight_bound = 3.0_f64.sqrt() * std;
        for _ in 0..fan_in * fan_out {
            flat.push(uniform(&mut generator, -weight_bound, weight_bound));
        }

        let bias_bound = 1.0 / (fan_in as f64).sqrt();
        for _ in 0..fan_out {
            flat.push(uniform(&mut generator, -bias_bound, bias_bound));
        }
    }

    Parameters::from_flat(architecture, &flat)
}

/// Draws one value as `Tensor.uniform_(from, to)` does for a float32 tensor.
fn uniform(generator: &mut Mt, from: f64, to: f64) -> f32 {
    let from = from as f32;
    let to = to as f32;
    let mantissa = generator.next_u32() & ((1 << f32::MANTISSA_DIGITS) - 1);
    let x = mantissa as f32 * (1.0 / (1u32 << f32::MANTISSA_DIGITS) as f32);
    x.mul_add(to - from, from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Activation;

    #[test]
    fn textbook_seed_first_weight() {
        // torch.manual_seed(4603); nn.Linear(2, 5).weight[0][0] == -0.1655188500881195
        let architecture = Architecture::new(2, &[5], 1, &[Activation::Relu]).unwrap();
        let parameters = torch_linear_init(&architecture, 4603);
        assert_eq!(parameters.layers[0].weight[0][0], -0.165_518_85_f32);
        assert_eq!(parameters.layers[1].bias[0], -0.404_556_16_f32);
    }
}
