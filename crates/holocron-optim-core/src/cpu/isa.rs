//! The instruction set the CPU loops are compiled for, picked at run time.
//!
//! A default build targets the architecture's baseline (SSE2 on x86-64), and a library
//! cannot ask its users for `-C target-cpu=native`. So each rule's chunk loop is compiled
//! once more inside a function that enables AVX2 and FMA, and once more for AVX-512, and
//! the first step picks the widest the CPU has. The arithmetic is the same: Rust never
//! fuses a multiply and an add on its own, and every sum adds its terms in the order the
//! code writes, so each path gives the same bits (a test runs every path the machine has).
//! On aarch64 the baseline is NEON already.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction set the CPU loops (the fused path on ndarray) run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vectorization {
    /// The architecture's baseline: SSE2 on x86-64, NEON on aarch64.
    Baseline,
    /// AVX2 and FMA (x86-64).
    Avx2,
    /// AVX-512 F, VL, DQ and BW (x86-64).
    Avx512,
}

/// The environment variable that asks for a narrower [`Vectorization`] than the CPU's
/// widest: `baseline`, `avx2` or `avx512`, read once, at the first step.
pub const VECTORIZATION_VAR: &str = "HOLOCRON_OPTIM_VECTORIZATION";

impl Vectorization {
    /// The widest the CPU has.
    pub fn widest() -> Vectorization {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx512dq") && has!("avx512bw") {
                return Vectorization::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Vectorization::Avx2;
            }
        }
        Vectorization::Baseline
    }

    /// Every instruction set the CPU has, narrowest first.
    pub fn available() -> Vec<Vectorization> {
        let widest = Vectorization::widest();
        [
            Vectorization::Baseline,
            Vectorization::Avx2,
            Vectorization::Avx512,
        ]
        .into_iter()
        .filter(|v| *v <= widest)
        .collect()
    }

    fn parse(name: &str) -> Option<Vectorization> {
        match name.trim().to_ascii_lowercase().as_str() {
            "baseline" => Some(Vectorization::Baseline),
            "avx2" => Some(Vectorization::Avx2),
            "avx512" => Some(Vectorization::Avx512),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn of_code(code: u8) -> Option<Vectorization> {
        [
            Vectorization::Baseline,
            Vectorization::Avx2,
            Vectorization::Avx512,
        ]
        .into_iter()
        .find(|v| v.code() == code)
    }
}

/// The choice, once made (0: not yet).
static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// The instruction set the CPU loops run with in this process: the CPU's widest, or the
/// narrower one [`VECTORIZATION_VAR`] names. A name the variable cannot mean, or an
/// instruction set the CPU lacks, is reported on standard error and the widest is used.
///
/// ```
/// use holocron_optim_core::cpu::isa::{Vectorization, vectorization};
///
/// let running = vectorization();
/// assert!(Vectorization::available().contains(&running));
/// println!("the CPU loops run with {running:?}");
/// ```
pub fn vectorization() -> Vectorization {
    if let Some(chosen) = Vectorization::of_code(CHOSEN.load(Ordering::Relaxed)) {
        return chosen;
    }
    let widest = Vectorization::widest();
    let chosen = match std::env::var(VECTORIZATION_VAR) {
        Err(_) => widest,
        Ok(name) => match Vectorization::parse(&name) {
            Some(asked) if asked <= widest => asked,
            Some(asked) => {
                eprintln!(
                    "holocron-optim: {VECTORIZATION_VAR}={name}: this CPU has no {asked:?}; using {widest:?}"
                );
                widest
            }
            None => {
                eprintln!(
                    "holocron-optim: {VECTORIZATION_VAR}={name} is not one of baseline, avx2, avx512; using {widest:?}"
                );
                widest
            }
        },
    };
    CHOSEN.store(chosen.code(), Ordering::Relaxed);
    chosen
}

/// Makes every later step of this process use `vectorization`, which the CPU must have.
/// For tests: other tests of the process see it too, which is harmless, since every
/// instruction set gives the same bits (the test of that is the one caller).
#[doc(hidden)]
pub fn force(vectorization: Vectorization) {
    assert!(vectorization <= Vectorization::widest());
    CHOSEN.store(vectorization.code(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::Vectorization;

    #[test]
    fn names_of_the_variable() {
        assert_eq!(Vectorization::parse(" AVX2 "), Some(Vectorization::Avx2));
        assert_eq!(Vectorization::parse("avx512"), Some(Vectorization::Avx512));
        assert_eq!(
            Vectorization::parse("baseline"),
            Some(Vectorization::Baseline)
        );
        assert_eq!(Vectorization::parse("sse2"), None);
        for v in Vectorization::available() {
            assert_eq!(Vectorization::of_code(v.code()), Some(v));
        }
        assert_eq!(Vectorization::of_code(0), None);
    }
}

/// A loop over one chunk, to be compiled for each instruction set: `run` must be
/// `#[inline(always)]`, and so must everything it calls, so that the whole loop is compiled
/// inside the function that enables the instruction set.
pub trait ChunkLoop {
    /// What the loop returns (a chunk's sums, or nothing).
    type Output;

    /// Runs the loop over the chunk.
    fn run(self) -> Self::Output;
}

/// Chunks run per instruction set, indexed by [`Vectorization`] (for tests: they check
/// that a forced one ran).
#[doc(hidden)]
pub static CHUNKS_RUN: [std::sync::atomic::AtomicUsize; 3] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; 3];

/// Runs `chunk` compiled for [`vectorization`].
#[inline(always)]
pub fn run<L: ChunkLoop>(chunk: L) -> L::Output {
    let vectorization = vectorization();
    CHUNKS_RUN[vectorization as usize].fetch_add(1, Ordering::Relaxed);
    match vectorization {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `vectorization` never answers an instruction set the CPU lacks.
        Vectorization::Avx512 => unsafe { with_avx512(chunk) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Vectorization::Avx2 => unsafe { with_avx2(chunk) },
        _ => chunk.run(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn with_avx2<L: ChunkLoop>(chunk: L) -> L::Output {
    chunk.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512dq,avx512bw")]
fn with_avx512<L: ChunkLoop>(chunk: L) -> L::Output {
    chunk.run()
}
