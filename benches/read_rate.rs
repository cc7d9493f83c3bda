//! How fast this machine's cores read and write memory in the loop shapes of the optimizers'
//! steps: a diagnosis of the step figures of `train_step`, not a figure of this crate's code
//! (synthetic loops over plain `Vec<f32>`, no Burn).
//!
//! ```text
//! cargo bench --bench read_rate              # 1 and 2 threads
//! cargo bench --bench read_rate -- 2         # 2 threads only
//! ```
//!
//! Every lane is 48 tensors of 768 x 3072 `f32` (BERT-base's feed-forward weights), 453 MB,
//! so that nothing is left in the caches from one tensor's turn to its next. Three loops:
//! - `read 2 lanes`: the squares of two lanes summed, nothing written: LARS's summing pass
//!   (the parameter's and the gradient's norms). 8 bytes read per element.
//! - `AdaBelief`: an AdaBelief-like update, four lanes read, three written back (28 bytes
//!   per element, 16 of them read), in one pass.
//! - `LARS, second pass on the same tensor`: the summing pass, then a momentum update that
//!   reads the parameter, the gradient and the momentum again and writes two of them back,
//!   on the same tensor, so that the second pass could find the tensor's parameter and
//!   gradient (19 MB) in the last-level cache; and `on another tensor`, the second pass on a
//!   tensor read long before, long since out of the caches. 20 bytes read per element, 8
//!   written.
//!
//! The loops are compiled for the widest instruction set the CPU has, as the crate's are
//! (`holocron_optim_core::cpu::isa`). Each figure is the mean of 3 rounds after one untimed
//! round: ns per element, GB/s read, and GB/s read and written.

use std::time::Instant;

use holocron_optim_core::cpu::isa::{self, ChunkLoop};

const TENSORS: usize = 48;
const ELEMENTS: usize = 768 * 3072;
const ROUNDS: usize = 3;

/// The lanes of some tensors: parameter, gradient and two state lanes.
struct Lanes {
    param: Vec<Vec<f32>>,
    grad: Vec<Vec<f32>>,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
}

impl Lanes {
    fn new(tensors: usize) -> Self {
        let lane = |value: f32| -> Vec<Vec<f32>> {
            (0..tensors)
                .map(|t| vec![value + t as f32 * 1e-3; ELEMENTS])
                .collect()
        };
        Lanes {
            param: lane(0.5),
            grad: lane(0.01),
            first: lane(0.0),
            second: lane(1e-3),
        }
    }

    fn len(&self) -> usize {
        self.param.len()
    }
}

/// The two lanes' sums of squares, in 32 running sums each.
struct SumSquares<'a>(&'a [f32], &'a [f32]);

impl ChunkLoop for SumSquares<'_> {
    type Output = (f32, f32);

    #[inline(always)]
    fn run(self) -> (f32, f32) {
        let (mut p, mut g) = ([0f32; 32], [0f32; 32]);
        for (a, b) in self.0.chunks_exact(32).zip(self.1.chunks_exact(32)) {
            for k in 0..32 {
                p[k] += a[k] * a[k];
                g[k] += b[k] * b[k];
            }
        }
        (p.iter().sum(), g.iter().sum())
    }
}

/// An AdaBelief-like update (fixed coefficients, no bias correction): the lanes AdaBelief's
/// loop reads and writes and its square root and division, not its numerics.
struct AdaBelief<'a>(&'a mut [f32], &'a [f32], &'a mut [f32], &'a mut [f32]);

impl ChunkLoop for AdaBelief<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let AdaBelief(param, grad, m, v) = self;
        for (((p, &g), m), v) in param.iter_mut().zip(grad).zip(m).zip(v) {
            *m = 0.9 * *m + 0.1 * g;
            let d = g - *m;
            *v = 0.999 * *v + 0.001 * d * d + 1e-16;
            *p -= 1e-3 * *m / (v.sqrt() + 1e-8);
        }
    }
}

/// A LARS-like momentum update, given a trust ratio: the lanes LARS's update pass reads and
/// writes, not its numerics.
struct LarsUpdate<'a>(&'a mut [f32], &'a [f32], &'a mut [f32], f32);

impl ChunkLoop for LarsUpdate<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let LarsUpdate(param, grad, momentum, ratio) = self;
        for ((p, &g), b) in param.iter_mut().zip(grad).zip(momentum) {
            *b = 0.9 * *b + ratio * (g + 1e-4 * *p);
            *p -= 1e-3 * *b;
        }
    }
}

/// Runs `body` on every tensor of each thread's lanes, the threads at once, and returns
/// the seconds it took.
fn timed(shares: &mut [Lanes], body: &Body) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for lanes in shares.iter_mut() {
            scope.spawn(move || {
                for t in 0..lanes.len() {
                    body(t, lanes);
                }
            });
        }
    });
    start.elapsed().as_secs_f64()
}

/// A loop's work on tensor `t` of one thread's lanes.
type Body = dyn Fn(usize, &mut Lanes) + Sync;

fn main() {
    let thread_counts: Vec<usize> = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(n) => vec![n.parse().expect("a thread count")],
        None => vec![1, 2],
    };
    let elements = (TENSORS * ELEMENTS) as f64;
    println!(
        "synthetic: {TENSORS} tensors of {ELEMENTS} f32 per lane, loops compiled for {:?}",
        isa::vectorization()
    );
    println!(
        "{:<40} {:>8} {:>11} {:>10} {:>10}",
        "loop", "threads", "ns/element", "GB/s read", "GB/s moved"
    );
    let sum: &Body = &|t, l: &mut Lanes| {
        std::hint::black_box(isa::run(SumSquares(&l.param[t], &l.grad[t])));
    };
    let adabelief: &Body = &|t, l: &mut Lanes| {
        let Lanes {
            param,
            grad,
            first,
            second,
        } = l;
        isa::run(AdaBelief(
            &mut param[t],
            &grad[t],
            &mut first[t],
            &mut second[t],
        ));
    };
    // The second pass on tensor `t + shift` of the same thread: the same one, or one read
    // long before.
    let lars = |shift: usize| {
        move |t: usize, l: &mut Lanes| {
            let u = (t + shift) % l.len();
            let (p, g) = isa::run(SumSquares(&l.param[t], &l.grad[t]));
            let ratio = std::hint::black_box(p.sqrt() / (g.sqrt() + 1.0) * 1e-6);
            isa::run(LarsUpdate(
                &mut l.param[u],
                &l.grad[u],
                &mut l.first[u],
                ratio,
            ));
        }
    };
    for &threads in &thread_counts {
        let mut shares: Vec<Lanes> = (0..threads)
            .map(|_| Lanes::new(TENSORS / threads))
            .collect();
        let (same, other) = (lars(0), lars(TENSORS / threads / 2));
        // Each loop with the bytes it reads and writes per element.
        let loops: [(&str, &Body, f64, f64); 4] = [
            ("read 2 lanes (LARS's summing pass)", sum, 8.0, 0.0),
            ("AdaBelief-like update", adabelief, 16.0, 12.0),
            ("LARS, second pass on the same tensor", &same, 20.0, 8.0),
            ("LARS, second pass on another tensor", &other, 20.0, 8.0),
        ];
        for (name, body, read, written) in loops {
            timed(&mut shares, body);
            let seconds: f64 =
                (0..ROUNDS).map(|_| timed(&mut shares, body)).sum::<f64>() / ROUNDS as f64;
            println!(
                "{name:<40} {threads:>8} {:>11.3} {:>10.1} {:>10.1}",
                seconds * 1e9 / elements,
                read * elements / seconds / 1e9,
                (read + written) * elements / seconds / 1e9
            );
        }
    }
}
