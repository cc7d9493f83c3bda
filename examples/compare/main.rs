//! Compares every optimizer of holocron-optim (and Burn's Adam and AdamW) on a real task:
//! the same 64-64-10 network, from the same initial weights, trained on the UCI
//! handwritten-digits data (shipped in `data/digits/`, 1,438 training and 359 validation
//! images), once per optimizer. Prints a table and writes two pictures: the validation loss
//! per epoch of every optimizer, and each optimizer's path on the Rosenbrock function.
//!
//! ```text
//! cargo run --release --example compare
//! cargo run --release --example compare -- --optimizers lamb,adan,adam --epochs 10
//! cargo run --release --example compare --features wgpu -- --out target/compare-wgpu
//! ```

#[path = "run.rs"]
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Train the same small network on handwritten digits with each optimizer.
#[derive(Parser, Debug)]
#[command(name = "compare")]
struct Args {
    /// Comma-separated optimizers (default: all): lars, lamb, ralars, tadam, adabelief,
    /// adamp, adan, ademamix, lookahead, scout, adam, adamw; also lars_masked and
    /// lamb_masked (rank-1 tensors out of weight decay and the trust ratio).
    #[arg(long, value_delimiter = ',')]
    optimizers: Vec<String>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Peak learning rate for every optimizer (default: each one's own, shown in the table).
    #[arg(long)]
    lr: Option<f64>,
    /// Steps on the Rosenbrock function for the path picture.
    #[arg(long, default_value_t = 1500)]
    rosenbrock_steps: usize,
    /// Where to write the pictures.
    #[arg(long, default_value = "target/compare")]
    out: PathBuf,
    /// Seed of the train/validation split and of the initial weights.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let optimizers = if args.optimizers.is_empty() {
        run::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.optimizers
    };
    let options = run::Options {
        optimizers,
        epochs: args.epochs,
        batch_size: args.batch_size.max(1),
        lr: args.lr,
        rosenbrock_steps: args.rosenbrock_steps,
        out_dir: args.out,
        seed: args.seed,
        progress: !args.quiet,
    };
    let report = match run::run(&options) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("\n{}", run::table(&report, &options));
    println!(
        "\nvalidation loss per epoch: {}",
        report.loss_plot.display()
    );
    println!(
        "paths on Rosenbrock:       {}",
        report.rosenbrock_plot.display()
    );
    ExitCode::SUCCESS
}
