//! Saving and loading optimizer state through Burn's file recorders, with checks that turn
//! a bad file into an error instead of a panic or a silently wrong state.
//!
//! [`save`] writes an optimizer's record together with the optimizer's name;
//! [`load`] reads it back and, before handing it to the optimizer, checks that
//!
//! - the file can be read and decoded by the recorder (not truncated or corrupt),
//! - it was saved by the same optimizer (and the same wrappers around it),
//! - every parameter it holds state for exists in the model, with the same rank and shape.
//!
//! Parameter ids are part of the model's own record: load the model's record before the
//! optimizer's, or the ids will not match. A parameter of the model that the record holds
//! no state for (a layer added since the save, or one that never had a gradient) simply
//! starts with fresh state, as it would have on its first step.
//!
//! Records of the plain [`Optimizer::to_record`](burn::optim::Optimizer::to_record) kind (as Burn's `Learner` checkpointer
//! writes them) load through Burn's recorders as usual; these functions add the checks.
//!
//! # Example
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::nn::{Linear, LinearConfig};
//! use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
//! use holocron_optim::{AdanConfig, LambConfig, checkpoint};
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let model: Linear<B> = LinearConfig::new(4, 2).init(&device);
//! let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
//! let path = std::env::temp_dir().join("holocron-optim-doc-checkpoint");
//!
//! let optim = LambConfig::new().init::<B, Linear<B>>();
//! checkpoint::save(&optim, &recorder, path.clone()).unwrap();
//!
//! let restored = checkpoint::load(LambConfig::new().init(), &model, &recorder, path.clone(), &device);
//! assert!(restored.is_ok());
//! let wrong = checkpoint::load(AdanConfig::new().init(), &model, &recorder, path, &device);
//! let Err(err) = wrong else { panic!("an Adan optimizer accepted a LAMB checkpoint") };
//! assert!(err.to_string().contains("was saved by Lamb, not by Adan"), "{err}");
//! ```

mod layout;

pub(crate) use layout::tensor_shape;
pub use layout::{CheckedRecord, MAX_STEP_COUNT, ModuleParams, ParamInfo, StateLayout};

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::record::{FileRecorder, PrecisionSettings, Record};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

/// What went wrong when loading a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointErrorKind {
    /// The file could not be written.
    Write,
    /// The file is missing, truncated or corrupt, or not a record of this optimizer's type.
    Unreadable,
    /// The file was saved by another optimizer or wrapper.
    WrongOptimizer,
    /// The record does not fit the model: unknown parameter, other rank or other shape.
    ModelMismatch,
}

/// An error from [`save`] or [`load`], with a message that says what and where.
#[derive(Debug, Clone)]
pub struct CheckpointError {
    /// The category of the error.
    pub kind: CheckpointErrorKind,
    /// What went wrong, naming the file or the parameter.
    pub message: String,
}

impl CheckpointError {
    pub(crate) fn new(kind: CheckpointErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CheckpointError {}

/// What [`save`] writes: the optimizer's name first (so that it can be read on its own),
/// then its record.
struct Envelope<R> {
    optimizer: String,
    record: R,
}

#[derive(Serialize, Deserialize, Clone)]
struct EnvelopeItem<I> {
    optimizer: String,
    record: I,
}

impl<B: Backend, R: Record<B>> Record<B> for Envelope<R> {
    type Item<S: PrecisionSettings> = EnvelopeItem<R::Item<S>>;

    fn into_item<S: PrecisionSettings>(self) -> Self::Item<S> {
        EnvelopeItem {
            optimizer: self.optimizer,
            record: self.record.into_item(),
        }
    }

    fn from_item<S: PrecisionSettings>(item: Self::Item<S>, device: &B::Device) -> Self {
        Envelope {
            optimizer: item.optimizer,
            record: R::from_item(item.record, device),
        }
    }
}

/// The first field of an [`Envelope`], readable whatever the record that follows.
struct EnvelopeName(String);

#[derive(Serialize, Deserialize, Clone)]
struct EnvelopeNameItem {
    optimizer: String,
}

impl<B: Backend> Record<B> for EnvelopeName {
    type Item<S: PrecisionSettings> = EnvelopeNameItem;

    fn into_item<S: PrecisionSettings>(self) -> Self::Item<S> {
        EnvelopeNameItem { optimizer: self.0 }
    }

    fn from_item<S: PrecisionSettings>(item: Self::Item<S>, _device: &B::Device) -> Self {
        EnvelopeName(item.optimizer)
    }
}

/// Saves the optimizer's record and name to `path` (the recorder adds its extension).
pub fn save<O, M, B, R>(optim: &O, recorder: &R, path: PathBuf) -> Result<(), CheckpointError>
where
    O: CheckedRecord<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
    R: FileRecorder<B>,
{
    let envelope = Envelope {
        optimizer: optim.checkpoint_name(),
        record: optim.to_record(),
    };
    recorder.record(envelope, path.clone()).map_err(|err| {
        CheckpointError::new(
            CheckpointErrorKind::Write,
            format!(
                "cannot write optimizer checkpoint {}: {err}",
                path.display()
            ),
        )
    })
}

/// Loads the record saved by [`save`] at `path` into `optim`, after checking it against
/// `module` (see the [module documentation](self)). The file is only read.
pub fn load<O, M, B, R>(
    optim: O,
    module: &M,
    recorder: &R,
    path: PathBuf,
    device: &B::Device,
) -> Result<O, CheckpointError>
where
    O: CheckedRecord<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
    R: FileRecorder<B>,
{
    let expected = optim.checkpoint_name();
    let file = path.with_extension(<R as FileRecorder<B>>::file_extension());
    let shown = file.display();
    let envelope = guarded(|| recorder.load::<Envelope<O::Record>>(path.clone(), device));
    let envelope = match envelope {
        Ok(envelope) => envelope,
        Err(reason) => {
            // A record of another optimizer does not decode as ours; its name still does.
            let name = guarded(|| recorder.load::<EnvelopeName>(path.clone(), device));
            return Err(match name {
                Ok(EnvelopeName(found)) if found != expected => {
                    wrong_optimizer(&shown, &found, &expected)
                }
                _ => CheckpointError::new(
                    CheckpointErrorKind::Unreadable,
                    format!(
                        "cannot read optimizer checkpoint {shown} (missing, truncated or corrupt?): {reason}"
                    ),
                ),
            });
        }
    };
    if envelope.optimizer != expected {
        return Err(wrong_optimizer(&shown, &envelope.optimizer, &expected));
    }
    optim
        .check_record(&envelope.record, &ModuleParams::of(module))
        .map_err(|err| CheckpointError {
            message: format!(
                "optimizer checkpoint {shown} does not fit the model: {}",
                err.message
            ),
            ..err
        })?;
    Ok(optim.load_record(envelope.record))
}

fn wrong_optimizer(file: &impl fmt::Display, found: &str, expected: &str) -> CheckpointError {
    CheckpointError::new(
        CheckpointErrorKind::WrongOptimizer,
        format!("optimizer checkpoint {file} was saved by {found}, not by {expected}"),
    )
}

/// Runs a recorder call, turning both its error and a panic inside it into a message.
fn guarded<T>(load: impl FnOnce() -> Result<T, burn::record::RecorderError>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(load)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.to_string()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the decoder panicked".to_string())),
    }
}
