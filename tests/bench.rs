//! End-to-end test of `shadertrain bench`: one short run and the fields of
//! its JSON file. It checks the file's structure only, never timings,
//! because the bench measures and leaves the judging to its reader.

mod common;

use serde_json::Value;

use common::binary::run;
use common::repo_path;

#[test]
fn bench_json_has_expected_fields() {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    std::fs::create_dir(dir.path().join("data")).expect("create data/");
    std::fs::copy(repo_path("data/diabetes.csv"), dir.path().join("data/diabetes.csv")).expect("copy diabetes.csv");

    let bench = run(
        dir.path(),
        &[
            "bench",
            "--quick",
            "--workloads",
            "textbook-relu",
            "--repeats",
            "1",
            "--epochs",
            "200",
            "--json",
            "bench.json",
        ],
    );
    assert!(bench.succeeded(), "{}", bench.describe());
    assert!(
        bench.stdout.contains("median epochs/s"),
        "no table header on stdout\n{}",
        bench.describe()
    );

    let text = std::fs::read_to_string(dir.path().join("bench.json")).expect("read bench.json");
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bench.json is not JSON ({e}):\n{text}"));
    assert_eq!(report["format"], "shadertrain-bench", "{text}");
    assert!(report["shadertrain_version"].is_string(), "{text}");
    assert!(report["machine"]["cpu_model"].is_string(), "{text}");
    assert!(report["machine"]["logical_cpus"].is_u64(), "{text}");
    assert!(report["settings"]["quick"].is_boolean(), "{text}");
    assert!(report["skipped"].is_array(), "{text}");
    assert!(report["failed"].is_array(), "{text}");

    let measurements = report["measurements"].as_array().expect("measurements is an array");
    let backends: Vec<&str> = measurements.iter().filter_map(|m| m["backend"].as_str()).collect();
    assert!(backends.contains(&"cpu"), "no cpu measurement in {backends:?}");
    for measurement in measurements {
        assert_eq!(measurement["workload"], "textbook-relu", "{measurement}");
        assert_eq!(measurement["epochs"], 200, "{measurement}");
        assert_eq!(measurement["repeats"], 1, "{measurement}");
        for field in ["backend", "kernel", "model", "optimizer", "loss"] {
            assert!(measurement[field].is_string(), "{field} is missing in {measurement}");
        }
        for field in [
            "median_epochs_per_second",
            "median_row_epochs_per_second",
            "initial_loss",
        ] {
            assert!(measurement[field].is_f64(), "{field} is missing in {measurement}");
        }
        assert!(
            measurement["ratio_to_cpu"].is_f64(),
            "ratio_to_cpu is missing in {measurement}"
        );
        for field in ["seconds", "epochs_per_second", "final_loss"] {
            let values = measurement[field]
                .as_array()
                .unwrap_or_else(|| panic!("{field} is not an array in {measurement}"));
            assert_eq!(
                values.len(),
                1,
                "{field} should hold one value per run in {measurement}"
            );
        }
    }
}
