//! Smoke test of `examples/compare` with a tiny budget: every optimizer trains, the table
//! and both pictures are produced, and every validation loss is finite and lower after
//! training than before.

#[path = "../examples/compare/run.rs"]
mod run;

use std::path::Path;

#[test]
fn compare_runs_every_optimizer_and_draws_both_pictures() {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-smoke");
    let _ = std::fs::remove_dir_all(&out_dir);
    let options = run::Options {
        optimizers: run::ALL.iter().map(|s| s.to_string()).collect(),
        epochs: 2,
        batch_size: 128,
        lr: None,
        rosenbrock_steps: 30,
        out_dir: out_dir.clone(),
        seed: 7,
        progress: false,
    };
    let report = run::run(&options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.rows.len(), run::ALL.len());
    for row in &report.rows {
        let losses = &row.val_losses;
        assert_eq!(losses.len(), options.epochs + 1, "{}", row.name);
        assert!(
            losses.iter().all(|l| l.is_finite()),
            "{}: {losses:?}",
            row.name
        );
        assert!(losses.last() < losses.first(), "{}: {losses:?}", row.name);
        assert!(
            row.train_loss.is_finite() && row.ms_per_step > 0.0,
            "{row:?}"
        );
        assert_eq!(row.rosenbrock_path.len(), options.rosenbrock_steps + 1);
    }
    let table = run::table(&report, &options);
    println!("{table}");
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| ")).count(),
        run::ALL.len() + 1
    );
    for optimizer in ["LAMB", "Scout(AdaBelief)", "burn AdamW"] {
        assert!(table.contains(&format!("| {optimizer} |")), "{table}");
    }
    for picture in [&report.loss_plot, &report.rosenbrock_plot] {
        let bytes = std::fs::read(picture).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            picture.display()
        );
        assert!(bytes.len() > 10_000, "{} looks empty", picture.display());
    }
}
