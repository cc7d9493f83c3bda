//! Saving and loading optimizer state through Burn's file recorders, with checks that turn
//! a bad file into an error instead of a panic or a silently wrong state.
//!
//! [`save`] writes an optimizer's record together with the optimizer's name;
//! [`load`] reads it back and, before handing it to the optimizer, checks that
//!
//! - the file is a regular file whose header, length and checksum are right (not
//!   truncated, extended or corrupt; see the format below), and the recorder decodes it,
//! - the Bin formats are decoded by a reader that checks each declared length against the
//!   bytes left (Burn's decoder allocates whatever a file declares),
//! - every tensor in it holds as many bytes as its shape and element type declare (checked
//!   before a tensor is built from them: Burn's ndarray backend would build an array over
//!   too few bytes unchecked, and a step would then write past it),
//! - it was saved by the same optimizer (and the same wrappers around it),
//! - the model has the parameters it holds state for, with the same rank and shape; the
//!   state of a parameter the model no longer has (a layer removed since the save) is
//!   dropped, and a record none of whose parameters the model has is refused.
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

mod audit;
mod bin_format;
mod container;
mod layout;

pub(crate) use layout::tensor_shape;
pub use layout::{CheckedRecord, MAX_STEP_COUNT, ModuleParams, ParamInfo, StateLayout};

use std::cell::OnceCell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::AutodiffModule;
use burn::record::{BurnRecord, FileRecorder, PrecisionSettings, Record, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

/// What went wrong when loading a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointErrorKind {
    /// The file could not be written.
    Write,
    /// The file is missing, not a regular file, truncated, extended or corrupt (its length or
    /// checksum is wrong), or not a record of this optimizer's type.
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

/// The first field of an [`EnvelopeItem`], readable whatever the record that follows.
#[derive(Serialize, Deserialize, Clone)]
struct EnvelopeNameItem {
    optimizer: String,
}

/// Saves the optimizer's record and name to `path` with the recorder's extension added
/// (`ck/optim.step-2` is written as `ck/optim.step-2.mpk`; a path that already ends with the
/// extension is written as it is).
///
/// The record goes to a temporary file in the same folder, which is flushed to the disk and
/// then renamed over the target: a save that fails returns an error and leaves any previous
/// checkpoint at that path as it was.
pub fn save<O, M, B, R>(optim: &O, recorder: &R, path: PathBuf) -> Result<(), CheckpointError>
where
    O: CheckedRecord<M, B>,
    M: AutodiffModule<B>,
    B: AutodiffBackend,
    R: FileRecorder<B>,
{
    let file = file_of::<B, R>(&path);
    let failed = |what: &str, err: &dyn fmt::Display| {
        CheckpointError::new(
            CheckpointErrorKind::Write,
            format!(
                "cannot write optimizer checkpoint {}: {what}: {err}",
                file.display()
            ),
        )
    };
    // Burn's file recorders replace the last extension of the path they are given with
    // theirs ("x.partial" is written as "x.bin.gz").
    let stem = temporary_beside(&file);
    let recorded = stem.with_extension(<R as FileRecorder<B>>::file_extension());
    let temporary = temporary_beside(&file);
    let envelope = Envelope {
        optimizer: optim.checkpoint_name(),
        record: optim.to_record(),
    };
    let written = recorder
        .record(envelope, stem)
        .map_err(|err| failed("writing", &err))
        .and_then(|()| std::fs::read(&recorded).map_err(|err| failed("reading back", &err)))
        .and_then(|payload| {
            container::write(&temporary, &payload).map_err(|err| failed("writing", &err))
        })
        .and_then(|()| std::fs::rename(&temporary, &file).map_err(|err| failed("replacing", &err)));
    let _ = std::fs::remove_file(&recorded);
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written?;
    // The rename is durable once the folder's entry is; where a folder cannot be opened
    // for that (some platforms), the file itself is already complete.
    let folder = file.parent().filter(|f| !f.as_os_str().is_empty());
    if let Some(Ok(folder)) = folder.map(std::fs::File::open) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// The file [`save`] writes and [`load`] reads for `path`: `path` with the recorder's
/// extension appended, unless it ends with it already.
pub fn file_of<B: Backend, R: FileRecorder<B>>(path: &Path) -> PathBuf {
    let extension = <R as FileRecorder<B>>::file_extension();
    if path.extension().is_some_and(|e| e == extension) {
        path.to_path_buf()
    } else {
        let mut name = path.as_os_str().to_owned();
        name.push(".");
        name.push(extension);
        PathBuf::from(name)
    }
}

/// A fresh name in `file`'s folder for the writes that replace it, ending in `.partial`.
fn temporary_beside(file: &Path) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    file.with_file_name(format!(".{name}.{}-{unique}.partial", std::process::id()))
}

/// The payload of a checked container, and, once a recorder needs it, the same bytes in a
/// file of their own (recorders read from a path; Burn's Bin formats are decoded from
/// memory and never write it).
struct Payload {
    bytes: Vec<u8>,
    extension: &'static str,
    decodable: OnceCell<Decodable>,
}

impl Payload {
    /// The path to give a recorder: the payload is written out at the first call.
    fn recorder_path(&self) -> Result<&Path, burn::record::RecorderError> {
        if self.decodable.get().is_none() {
            let decodable = Decodable::new(&self.bytes, self.extension)
                .map_err(|err| burn::record::RecorderError::Unknown(err.to_string()))?;
            let _ = self.decodable.set(decodable);
        }
        Ok(&self.decodable.get().expect("set above").stem)
    }
}

/// A payload's bytes in a temporary file, removed when dropped: `stem` is the path to give
/// the recorder, which reads `stem` with its extension in place of `.payload`.
struct Decodable {
    stem: PathBuf,
    file: PathBuf,
}

impl Decodable {
    fn new(payload: &[u8], extension: &str) -> std::io::Result<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let stem = std::env::temp_dir().join(format!(
            "holocron-optim-load-{}-{unique}.payload",
            std::process::id()
        ));
        let file = stem.with_extension(extension);
        std::fs::write(&file, payload)?;
        Ok(Self { stem, file })
    }
}

impl Drop for Decodable {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
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
    let file = file_of::<B, R>(&path);
    let shown = file.display();
    // Only a regular file is opened: a FIFO would block the read forever, a folder or a
    // device would be read as garbage.
    match std::fs::metadata(&file) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return Err(CheckpointError::new(
                CheckpointErrorKind::Unreadable,
                format!("optimizer checkpoint {shown} is not a regular file"),
            ));
        }
        Err(err) => {
            return Err(CheckpointError::new(
                CheckpointErrorKind::Unreadable,
                format!("cannot read optimizer checkpoint {shown} (missing?): {err}"),
            ));
        }
    }
    let unreadable = |reason: &dyn fmt::Display| {
        CheckpointError::new(
            CheckpointErrorKind::Unreadable,
            format!("cannot read optimizer checkpoint {shown} (truncated or corrupt?): {reason}"),
        )
    };
    let payload = Payload {
        bytes: container::read(&file).map_err(|reason| unreadable(&reason))?,
        extension: <R as FileRecorder<B>>::file_extension(),
        decodable: OnceCell::new(),
    };
    type Item<O, M, B, R> = BurnRecord<EnvelopeItem<RecordItem<O, M, B, R>>, B>;
    let decode = || decode_item::<Item<O, M, B, R>, B, R>(recorder, &payload, true);
    let envelope = match guarded(decode) {
        Ok(BurnRecord { item, .. }) => item,
        Err(reason) => {
            // A record of another optimizer does not decode as ours; its name still does.
            let name = guarded(|| {
                decode_item::<BurnRecord<EnvelopeNameItem, B>, B, R>(recorder, &payload, false)
            });
            return Err(match name {
                Ok(BurnRecord {
                    item: EnvelopeNameItem { optimizer: found },
                    ..
                }) if found != expected => wrong_optimizer(&shown, &found, &expected),
                _ => CheckpointError::new(
                    CheckpointErrorKind::Unreadable,
                    format!(
                        "cannot decode optimizer checkpoint {shown} (written with another recorder or precision, or not by this crate's types?): {reason}"
                    ),
                ),
            });
        }
    };
    if envelope.optimizer != expected {
        return Err(wrong_optimizer(&shown, &envelope.optimizer, &expected));
    }
    // A tensor is built from its bytes only once they are as many as its shape declares.
    audit::audit(&envelope.record).map_err(|reason| {
        CheckpointError::new(
            CheckpointErrorKind::Unreadable,
            format!("optimizer checkpoint {shown} is inconsistent: {reason}"),
        )
    })?;
    // Building the record panics on what Burn cannot read back (a parameter id that is not
    // one): a crafted file is refused, not a crash.
    let envelope: Envelope<O::Record> =
        guarded(|| Ok(Envelope::from_item::<R::Settings>(envelope, device))).map_err(|reason| {
            CheckpointError::new(
                CheckpointErrorKind::Unreadable,
                format!("optimizer checkpoint {shown} is inconsistent: {reason}"),
            )
        })?;
    let record = optim
        .fit_record(envelope.record, &ModuleParams::of(module))
        .map_err(|err| CheckpointError {
            message: format!(
                "optimizer checkpoint {shown} does not fit the model: {}",
                err.message
            ),
            ..err
        })?;
    Ok(optim.load_record(record))
}

/// The decoded (not yet built) form of an optimizer's record, as recorder `R` stores it.
type RecordItem<O, M, B, R> =
    <<O as burn::optim::Optimizer<M, B>>::Record as Record<B>>::Item<<R as Recorder<B>>::Settings>;

/// `T` from a checkpoint's payload: Burn's Bin
/// formats through [`bin_format`], which checks every length against the bytes before
/// using it (Burn's own decoder allocates whatever a file declares), the others through the
/// recorder. `whole`: the payload must end with `T` (a record), else `T` may be its start
/// (the optimizer's name).
fn decode_item<T, B, R>(
    recorder: &R,
    payload: &Payload,
    whole: bool,
) -> Result<T, burn::record::RecorderError>
where
    T: serde::de::DeserializeOwned,
    B: Backend,
    R: FileRecorder<B>,
{
    let unknown = |err: audit::Malformed| burn::record::RecorderError::Unknown(err.to_string());
    match <R as FileRecorder<B>>::file_extension() {
        "bin" => bin_format::decode(&payload.bytes, whole).map_err(unknown),
        "bin.gz" => bin_format::gunzip(&payload.bytes)
            .and_then(|bytes| bin_format::decode(&bytes, whole))
            .map_err(unknown),
        _ => recorder.load_item(&mut payload.recorder_path()?.to_path_buf()),
    }
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

#[cfg(test)]
mod tests {
    use std::cell::OnceCell;

    use burn::backend::NdArray;
    use burn::record::{
        BinFileRecorder, FileRecorder, FullPrecisionSettings, NamedMpkFileRecorder,
    };

    use super::{Payload, decode_item};

    /// `value` saved by recorder `R`, decoded from its bytes as `load` does, with whether a
    /// temporary file was written for it.
    fn decoded_through<R: FileRecorder<NdArray> + Default>(value: &str) -> (String, bool) {
        let recorder = R::default();
        let dir = std::env::temp_dir().join(format!("holocron-payload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stem = dir.join(R::file_extension().replace('.', "-"));
        recorder.record(value.to_string(), stem.clone()).unwrap();
        let file = stem.with_extension(R::file_extension());
        let payload = Payload {
            bytes: std::fs::read(&file).unwrap(),
            extension: R::file_extension(),
            decodable: OnceCell::new(),
        };
        std::fs::remove_file(&file).unwrap();
        let _ = std::fs::remove_dir(&dir);
        type Item = burn::record::BurnRecord<String, NdArray>;
        let item = decode_item::<Item, NdArray, R>(&recorder, &payload, true).unwrap();
        (item.item, payload.decodable.get().is_some())
    }

    /// The Bin format is decoded from the payload in memory: no temporary copy is written;
    /// a recorder that reads only from a path gets one.
    #[test]
    fn only_recorders_that_read_a_path_get_a_temporary_file() {
        let value = "a record";
        assert_eq!(
            decoded_through::<BinFileRecorder<FullPrecisionSettings>>(value),
            (value.to_string(), false)
        );
        assert_eq!(
            decoded_through::<NamedMpkFileRecorder<FullPrecisionSettings>>(value),
            (value.to_string(), true)
        );
    }
}
