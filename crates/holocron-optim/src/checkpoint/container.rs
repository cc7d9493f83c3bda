//! The file around a recorder's bytes: a header naming the format and the crate that wrote
//! it, and guarding the bytes with their length and a CRC-32, checked before the recorder
//! decodes a byte.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "HOLOCKPT"
//! 8       4     format version (1), little-endian
//! 12      8     payload length in bytes, little-endian
//! 20      4     CRC-32 (IEEE) of the version and the payload, little-endian
//! 24      2     length n of the crate version, little-endian
//! 26      n     the crate version that wrote the file, UTF-8 (e.g. "0.1.0")
//! 26 + n  ...   the payload: the recorder's file, byte for byte
//! ```
//!
//! A truncated, extended or altered file fails the length or the checksum and is refused
//! before decoding; the checksum guards against accidents, not against a crafted file.

use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"HOLOCKPT";
/// The version of this layout; a file of another version is refused.
pub(super) const FORMAT_VERSION: u32 = 1;
const FIXED_HEADER: usize = 26;
/// The longest crate version a header may name.
const MAX_VERSION_LEN: usize = 64;

/// The CRC-32 of everything after the fixed header: the crate version and the payload.
fn checksum(version: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(version);
    hasher.update(payload);
    hasher.finalize()
}

/// Writes `payload` in the container to `file`, flushed to the disk.
pub(super) fn write(file: &Path, payload: &[u8]) -> std::io::Result<()> {
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let mut header = Vec::with_capacity(FIXED_HEADER + version.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&checksum(version, payload).to_le_bytes());
    header.extend_from_slice(&(version.len() as u16).to_le_bytes());
    header.extend_from_slice(version);
    let mut out = std::fs::File::create(file)?;
    out.write_all(&header)?;
    out.write_all(payload)?;
    out.sync_all()
}

/// The payload of the container at `file`, once its header, length and checksum are
/// right; otherwise why not. Nothing is allocated beyond the file's own size.
pub(super) fn read(file: &Path) -> Result<Vec<u8>, String> {
    let mut input = std::fs::File::open(file).map_err(|err| err.to_string())?;
    let size = input.metadata().map_err(|err| err.to_string())?.len();
    let mut fixed = [0u8; FIXED_HEADER];
    input
        .read_exact(&mut fixed)
        .map_err(|_| format!("{size} bytes are too few for a checkpoint header"))?;
    if &fixed[0..8] != MAGIC {
        return Err("not a holocron-optim checkpoint (no HOLOCKPT header)".to_string());
    }
    let field = |range: core::ops::Range<usize>| fixed[range].to_vec();
    let format = u32::from_le_bytes(field(8..12).try_into().expect("4 bytes"));
    if format != FORMAT_VERSION {
        return Err(format!(
            "checkpoint format {format}, this crate reads format {FORMAT_VERSION}"
        ));
    }
    let length = u64::from_le_bytes(field(12..20).try_into().expect("8 bytes"));
    let checksum = u32::from_le_bytes(field(20..24).try_into().expect("4 bytes"));
    let version_len = usize::from(u16::from_le_bytes(field(24..26).try_into().expect("2")));
    if version_len > MAX_VERSION_LEN {
        return Err(format!("a header naming a {version_len}-byte version"));
    }
    let expected = (FIXED_HEADER + version_len) as u64 + length;
    if size != expected {
        return Err(format!(
            "the header announces {expected} bytes, the file has {size}"
        ));
    }
    let mut version = vec![0u8; version_len];
    input
        .read_exact(&mut version)
        .map_err(|err| err.to_string())?;
    let mut payload = Vec::with_capacity(length as usize);
    input
        .read_to_end(&mut payload)
        .map_err(|err| err.to_string())?;
    if payload.len() as u64 != length || self::checksum(&version, &payload) != checksum {
        return Err(format!(
            "checksum mismatch (written by holocron-optim {})",
            String::from_utf8_lossy(&version)
        ));
    }
    Ok(payload)
}
