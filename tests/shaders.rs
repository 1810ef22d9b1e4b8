//! Every WGSL file parses and validates with naga: alone where it is
//! self-contained, and assembled into the modules the backends compile for a
//! spread of shapes, activations, losses, optimizers and kernel variants.

use shadertrain::gpu::fused::{self, FusedPlan};
use shadertrain::gpu::general::{GeneralPlan, Sources};
use shadertrain::gpu::shaders;
use shadertrain::loss::Loss;
use shadertrain::model::{Activation, Architecture};
use shadertrain::optim::{Optimizer, OptimizerKind};
use shadertrain::schedule::Batching;
use shadertrain::train::TrainSpec;

fn spec(sizes: &[usize], activations: &[Activation], loss: Loss, optimizer: Optimizer) -> TrainSpec {
    let hidden = &sizes[1..sizes.len() - 1];
    TrainSpec {
        architecture: Architecture::new(sizes[0], hidden, *sizes.last().unwrap(), activations).unwrap(),
        loss,
        optimizer,
        epochs: 1,
        log_every: 1,
        batching: Batching::Full,
        early_stop: None,
    }
}

fn specs() -> Vec<TrainSpec> {
    let adam = Optimizer::with_defaults(OptimizerKind::Adam, 1.0);
    let sgd = Optimizer::Sgd {
        lr: 0.01,
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 1e-4,
    };
    let adamw = Optimizer::with_defaults(OptimizerKind::AdamW, 0.001);
    vec![
        spec(&[2, 5, 1], &[Activation::Relu], Loss::Mse, adam),
        spec(&[10, 16, 8, 1], &[Activation::Tanh], Loss::Mae, sgd),
        spec(
            &[3, 7, 6, 2],
            &[Activation::Gelu, Activation::LeakyRelu { negative_slope: -0.2 }],
            Loss::Huber { delta: 2.5 },
            adamw,
        ),
        spec(&[32, 128, 1], &[Activation::Sigmoid], Loss::Mse, adam),
        spec(&[5, 3], &[], Loss::Mse, adam),
        spec(
            &[16, 64, 40, 5],
            &[Activation::GeluTanh, Activation::Identity],
            Loss::Mse,
            sgd,
        ),
    ]
}

fn check(label: &str, source: &str, subgroups: bool) {
    if let Err(error) = shaders::validate(source, subgroups) {
        panic!("{label} does not validate:\n{error}");
    }
}

#[test]
fn library_files_validate_alone() {
    // common.wgsl contains only functions and constants, so it validates alone.
    check("common.wgsl", shaders::COMMON, false);
}

#[test]
fn every_file_is_covered() {
    let mut on_disk: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = shaders::FILES.iter().map(|(name, _)| name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "shaders/ and shaders::FILES must list the same files");
}

#[test]
fn fused_modules_validate() {
    for spec in specs() {
        for (subgroups, unrolled) in [(true, true), (true, false), (false, true), (false, false)] {
            // The plan never generates straight-line code past this size.
            if unrolled && spec.architecture.parameter_count() > fused::MAX_UNROLLED_PARAMS {
                continue;
            }
            let plan = FusedPlan {
                lanes: if subgroups { 8 } else { 32 },
                subgroups,
                unrolled,
                iterations_per_step: 0,
                steps_per_dispatch: 1,
                exchange: 32 * 8,
            };
            let label = format!(
                "fused kernel for {} (subgroups {subgroups}, straight-line {unrolled})",
                spec.architecture.describe()
            );
            check(&label, &fused::source(&spec, &plan), subgroups);
        }
    }
}

#[test]
fn general_modules_validate() {
    for spec in specs() {
        for shuffle in [true, false] {
            let plan = GeneralPlan {
                lanes: 64,
                shuffle,
                subgroup_size: 8,
                block_rows: 1024,
                train_blocks: 1,
                grad_rows: 1024,
                max_grid_x: 65535,
            };
            let sources = Sources::new(&spec, &plan);
            let model = spec.architecture.describe();
            for (l, source) in sources.layers.iter().enumerate() {
                check(
                    &format!("general layer {l} of {model} (shuffle {shuffle})"),
                    source,
                    shuffle,
                );
            }
            check(&format!("general reductions of {model}"), &sources.reduce, false);
            check(&format!("general optimizer of {model}"), &sources.update, false);
        }
    }
}
