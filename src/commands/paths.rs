//! Checks of output paths before any work starts, so a typo fails at once
//! instead of after training, and no output overwrites an input.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Resolves `path` to an absolute form that is the same for two spellings
/// of one file, whether or not the file exists yet.
fn identity(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(parent), Some(name)) => parent.join(name),
        _ => path.to_path_buf(),
    }
}

/// Checks output files (option name and path) and output directories
/// against each other and against the input files.
///
/// Every output file's directory must exist and the file must not be a
/// directory; an output directory must be a directory or not exist yet. No
/// output may be an input file, and no two outputs may be the same file.
pub fn check_outputs(
    inputs: &[(&str, &Path)],
    files: &[(&str, &Path)],
    directories: &[(&str, &Path)],
) -> anyhow::Result<()> {
    for (option, path) in files {
        if path.is_dir() {
            bail!(
                "{option} {} is a directory; give a file name such as {}/run.json",
                path.display(),
                path.display()
            );
        }
        check_parent(option, path)?;
    }
    // Output directories are created with their parents when written.
    for (option, path) in directories {
        if path.exists() && !path.is_dir() {
            bail!(
                "{option} {} exists and is not a directory; give a directory",
                path.display()
            );
        }
    }

    let outputs: Vec<(&str, PathBuf)> = files.iter().map(|(option, path)| (*option, identity(path))).collect();
    for (input_option, input) in inputs {
        let input_identity = identity(input);
        for (option, output) in &outputs {
            if *output == input_identity {
                bail!(
                    "{option} {} is the same file as {input_option} {}; writing it would destroy the input, so choose another path",
                    output.display(),
                    input.display()
                );
            }
        }
    }
    for (i, (first_option, first)) in outputs.iter().enumerate() {
        for (second_option, second) in &outputs[i + 1..] {
            if first == second {
                bail!(
                    "{first_option} and {second_option} both name {}; give each output its own file",
                    first.display()
                );
            }
        }
    }
    Ok(())
}

fn check_parent(option: &str, path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        bail!(
            "the directory {} of {option} {} does not exist; create it first (mkdir -p {})",
            parent.display(),
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_equal_to_input_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.csv");
        std::fs::write(&data, "x,y\n1,2\n").unwrap();
        let same = dir.path().join(".").join("data.csv");
        let error = check_outputs(&[("--data", &data)], &[("--report", &same)], &[]).unwrap_err();
        assert!(error.to_string().contains("same file as --data"), "{error}");
    }

    #[test]
    fn two_outputs_with_one_path_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let error = check_outputs(&[], &[("--report", &path), ("--history", &path)], &[]).unwrap_err();
        assert!(
            error.to_string().contains("--report and --history both name"),
            "{error}"
        );
    }

    #[test]
    fn missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("m.json");
        let error = check_outputs(&[], &[("--save", &path)], &[]).unwrap_err();
        assert!(error.to_string().contains("does not exist; create it first"), "{error}");
    }

    #[test]
    fn plot_directory_may_be_new() {
        let dir = tempfile::tempdir().unwrap();
        let plots = dir.path().join("plots");
        check_outputs(&[], &[], &[("--plot", &plots)]).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(check_outputs(&[], &[], &[("--plot", &file)]).is_err());
    }
}
