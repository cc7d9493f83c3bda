//! A step's chunks run in parallel with the calling thread at work from the start.
//!
//! A training loop calls the optimizer from a thread outside rayon's pool, once per parameter
//! tensor and pass. Handed to the pool (`into_par_iter`), each call waits until a sleeping
//! worker wakes, and the caller sleeps until the pool wakes it back: on a 2-core virtual
//! machine that round trip cost close to half of a ResNet-18 step with LAMB (62 tensors, two
//! passes each), and a second thread made ResNet steps no faster than one.
//! Here the caller takes chunks itself from the start and asks the pool for helpers that
//! take chunks as they wake: a helper that wakes after the last chunk was taken does nothing,
//! and the caller does not wait for it.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Runs `pass` on every job, on the calling thread and on as many of rayon's threads as
/// there are beside it, and returns what each job returned, in the jobs' order.
pub(super) fn run_jobs<J: Send, const K: usize>(
    jobs: Vec<J>,
    pass: &(impl Fn(J) -> [f64; K] + Sync),
) -> Vec<[f64; K]> {
    let count = jobs.len();
    let helpers = (rayon::current_num_threads().saturating_sub(1)).min(count.saturating_sub(1));
    if helpers == 0 {
        return jobs.into_iter().map(pass).collect();
    }
    let jobs: Vec<Mutex<Option<J>>> = jobs.into_iter().map(|j| Mutex::new(Some(j))).collect();
    let results: Vec<OnceLock<[f64; K]>> = (0..count).map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let panic: Mutex<Option<Box<dyn Any + Send>>> = Mutex::new(None);
    let work = || {
        let taking = || {
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= count {
                    break;
                }
                let job = lock(&jobs[c]).take().expect("each job is taken once");
                let _ = results[c].set(pass(job));
            }
        };
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(taking)) {
            // The other threads stop at their next job.
            next.store(count, Ordering::Relaxed);
            lock(&panic).get_or_insert(payload);
        }
    };
    let work: &(dyn Fn() + Sync) = &work;
    let handshake = Arc::new(Handshake::default());
    for _ in 0..helpers {
        let handshake = Arc::clone(&handshake);
        let work = Work::of(work);
        rayon::spawn(move || {
            if handshake.enter() {
                // SAFETY: the caller does not return, and so `work` and what it borrows stay
                // alive, while a helper is between `enter` and `leave` (`close_and_wait`); a
                // helper that could not enter never reads the pointer.
                unsafe { work.call() };
                handshake.leave();
            }
        });
    }
    work();
    handshake.close_and_wait();
    if let Some(payload) = lock(&panic).take() {
        panic::resume_unwind(payload);
    }
    results
        .into_iter()
        .map(|r| r.into_inner().expect("every job ran"))
        .collect()
}

/// The caller's work, for its helpers: a pointer, since a helper may run after the caller
/// returned (and then does not read it).
struct Work(*const (dyn Fn() + Sync));

// SAFETY: the pointee is `Sync`, and `run_jobs` keeps it alive while a helper uses it.
unsafe impl Send for Work {}

impl Work {
    fn of(work: &(dyn Fn() + Sync)) -> Self {
        let work: *const (dyn Fn() + Sync + '_) = work;
        // SAFETY: only the pointer's lifetime bound changes; `call` says when it may be read.
        Work(unsafe {
            std::mem::transmute::<*const (dyn Fn() + Sync + '_), *const (dyn Fn() + Sync)>(work)
        })
    }

    /// # Safety
    ///
    /// The work this was made of must still be alive.
    unsafe fn call(&self) {
        // SAFETY: as the caller promises.
        unsafe { (*self.0)() }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which helpers are at work, and whether the caller has closed the run.
#[derive(Default)]
struct Handshake {
    /// Twice the number of helpers between `enter` and `leave`, plus [`CLOSED`].
    state: AtomicUsize,
}

/// The bit of [`Handshake::state`] that says no helper may enter any more.
const CLOSED: usize = 1;

impl Handshake {
    /// Whether a helper may work: false once the caller closed the run.
    fn enter(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 2,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// A helper is done.
    fn leave(&self) {
        self.state.fetch_sub(2, Ordering::AcqRel);
    }

    /// Lets no more helpers in and waits for those at work, which are finishing their last
    /// job: a short wait, spun rather than slept.
    fn close_and_wait(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        let mut spins = 0u32;
        while self.state.load(Ordering::Acquire) != CLOSED {
            if spins < 1 << 12 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run_jobs;

    /// Every job runs once and its result keeps its place, under 1 to 4 threads, with more
    /// and fewer jobs than threads.
    #[test]
    fn every_job_runs_once_in_place() {
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for count in [0, 1, 2, 3, 64] {
                let ran = std::sync::atomic::AtomicUsize::new(0);
                let results = pool.install(|| {
                    run_jobs((0..count).collect(), &|j: usize| {
                        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        [j as f64 * 2.0]
                    })
                });
                let expected: Vec<[f64; 1]> = (0..count).map(|j| [j as f64 * 2.0]).collect();
                assert_eq!(results, expected, "{threads} threads, {count} jobs");
                assert_eq!(ran.into_inner(), count, "{threads} threads, {count} jobs");
            }
        }
    }

    /// A job's panic reaches the caller, whichever thread ran it.
    #[test]
    fn a_panic_reaches_the_caller() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| {
                run_jobs((0..32).collect(), &|j: usize| {
                    assert!(j != 17, "job 17 fails");
                    [0.0]
                })
            })
        }));
        let payload = outcome.expect_err("the panic is passed on");
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        assert_eq!(message, Some("job 17 fails"));
    }

    /// Called from outside any pool (as a training loop calls the optimizer), with the
    /// global pool's threads as helpers.
    #[test]
    fn runs_from_outside_the_pool() {
        let results = run_jobs((0..100).collect(), &|j: usize| [j as f64, 1.0]);
        assert_eq!(results.len(), 100);
        assert!(
            results
                .iter()
                .enumerate()
                .all(|(j, r)| *r == [j as f64, 1.0])
        );
    }
}
