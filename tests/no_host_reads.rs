//! A review check, run as a test: no optimizer, wrapper or building block may read a tensor
//! back to the host. On a GPU such a read stalls the step until the device catches up, so
//! every data-dependent decision is a tensor mask instead.
//!
//! The check scans the source of the code that runs inside a step (`blocks/`, `optim/`,
//! `wrapper/`) for Burn's read-back calls. (`checkpoint/` reads records at load time, outside
//! any step, and is not scanned; nor are unit-test modules, which read results to check
//! them.)

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

/// The lines of `text` that call a read-back, outside comments, doc examples and test
/// modules (a `#[cfg(test)]` or `#[cfg(all(test, ..))]` module, to its closing brace).
fn read_backs(text: &str) -> Vec<(usize, String)> {
    let mut found = vec![];
    let mut in_doc_example = false;
    // Inside a test module: its brace depth, and whether its first brace was seen.
    let mut in_tests: Option<(i64, bool)> = None;
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if in_tests.is_none() && is_test_cfg(code) {
            in_tests = Some((0, false));
            continue;
        }
        if let Some((depth, entered)) = in_tests {
            let opens = code.matches('{').count() as i64;
            let depth = depth + opens - code.matches('}').count() as i64;
            let entered = entered || opens > 0;
            // An item without braces (`#[cfg(test)] use ..;`) ends the attribute's reach.
            let done = (entered && depth <= 0) || (!entered && code.ends_with(';'));
            in_tests = (!done).then_some((depth, entered));
            continue;
        }
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

/// Whether a line is a `#[cfg(test)]` or `#[cfg(all(test, ..))]` attribute (code that
/// only tests compile).
fn is_test_cfg(attribute: &str) -> bool {
    attribute == "#[cfg(test)]" || attribute.starts_with("#[cfg(all(test,")
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

#[test]
fn the_check_skips_test_modules_only() {
    let sample = r#"
fn step() {}

#[cfg(all(test, feature = "wgpu"))]
mod tests {
    fn values() -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }
}

fn after() {
    let norm: f32 = grad.sum().into_scalar();
}
"#;
    let found = read_backs(sample);
    assert_eq!(
        found.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        [12],
        "{found:?}"
    );
}
