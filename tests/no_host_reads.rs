//! A review check, run as a test: no optimizer, wrapper or building block may read a tensor
//! back to the host. On a GPU such a read stalls the step until the device catches up, so
//! every data-dependent decision is a tensor mask instead.
//!
//! The check scans the source of the code that runs inside a step (`blocks/`, `optim/`,
//! `wrapper/`) for Burn's read-back calls. (`checkpoint/` reads records at load time, outside
//! any step, and is not scanned.)

use std::path::Path;

/// Burn 0.21's ways of getting tensor data onto the host.
const READ_BACKS: [&str; 6] = [
    "into_data",
    "to_data",
    "into_scalar",
    "read_sync",
    "into_data_async",
    "into_scalar_async",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` that call a read-back, outside comments and doc examples.
fn read_backs(text: &str) -> Vec<(usize, String)> {
    let mut found = vec![];
    let mut in_doc_example = false;
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        // Doc examples may read results to show them; they do not run inside a step.
        if code.starts_with("///") || code.starts_with("//!") {
            if code.contains("```") {
                in_doc_example = !in_doc_example;
            }
            continue;
        }
        if code.starts_with("//") || in_doc_example {
            continue;
        }
        if READ_BACKS
            .iter()
            .any(|call| code.contains(&format!(".{call}(")) || code.contains(&format!("::{call}(")))
        {
            found.push((n + 1, line.trim().to_string()));
        }
    }
    found
}

#[test]
fn step_code_never_reads_tensors_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/holocron-optim/src");
    let mut files = vec![];
    for dir in ["blocks", "optim", "wrapper"] {
        rust_files(&src.join(dir), &mut files);
    }
    assert!(files.len() >= 15, "expected the step code, found {files:?}");
    let found: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            read_backs(&text)
                .into_iter()
                .map(move |(n, line)| format!("{}:{n}: {line}", file.display()))
        })
        .collect();
    assert!(
        found.is_empty(),
        "host read-backs in step code:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_a_read_back() {
    let sample = r#"
/// ```
/// let w: Vec<f32> = model.weight.val().into_data().to_vec().unwrap();
/// ```
fn step() {
    // let old = norm.into_scalar();
    let norm: f32 = grad.clone().square().sum().into_scalar();
    let other = Tensor::into_data(x);
}
"#;
    let found = read_backs(sample);
    assert_eq!(
        found.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [7, 8],
        "{found:?}"
    );
}
