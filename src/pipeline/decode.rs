//! The blocking half of a restore: hash the stored bytes, decrypt, decompress, and
//! write into the restore command, withholding the tail until the hash is verified.

use std::io::{self, BufReader, Read, Write};

use age::x25519::Identity;

use super::restore::RestoreError;
use super::sink::HashingReader;
use super::tail::HoldBack;
use crate::storage::Store;
use crate::storage::manifest::ManifestObject;

/// What went wrong while decoding, before it is tied to a store and stderr.
#[derive(Debug)]
pub enum DecodeFailure {
    Corrupt {
        actual: String,
        actual_size: u64,
    },
    Decrypt(String),
    Decode(io::Error),
    /// Writing to the restore command failed: it exited or closed its input.
    CommandInput(io::Error),
}

impl DecodeFailure {
    pub fn into_error(self, store: &Store, object: &ManifestObject, stderr: &str) -> RestoreError {
        match self {
            DecodeFailure::Corrupt { actual, actual_size } => RestoreError::Corrupt {
                bucket: store.bucket().into(),
                key: object.key.clone(),
                expected: object.sha256.clone(),
                actual,
                expected_size: object.size,
                actual_size,
            },
            DecodeFailure::Decrypt(message) => RestoreError::Decrypt {
                key: object.key.clone(),
                message,
            },
            DecodeFailure::Decode(source) => RestoreError::Decode {
                key: object.key.clone(),
                source,
            },
            DecodeFailure::CommandInput(e) => RestoreError::RestoreFailed {
                database: object.database.clone(),
                status: format!("stopped reading its input ({e})"),
                stderr: stderr.to_string(),
            },
        }
    }
}

/// Decodes `source` into `out`, always withholding the tail until the stored bytes'
/// sha256 and size match `expected`. Returns the raw byte count (or why not) and, unless
/// released, the output still open, so the caller can kill the command before it sees
/// the end of its input.
pub fn decode_into<R: Read, W: Write>(
    source: R,
    expected: &ManifestObject,
    identities: &[Identity],
    encrypted: bool,
    out: Option<W>,
) -> (Result<u64, DecodeFailure>, Option<W>) {
    let Some(out) = out else {
        return (Err(DecodeFailure::CommandInput(io::Error::other("no stdin"))), None);
    };
    let mut hashing = HashingReader::new(source);
    let held = HoldBack::new(out);
    let (decoded, mut held) = decode_stream(&mut hashing, identities, encrypted, held);
    // Hash everything, even after a decode error: corruption is the likelier cause.
    let verified = hashing.finish();
    let failure = match (&verified, &decoded) {
        (Err(e), _) => Some(DecodeFailure::Decode(io::Error::new(e.kind(), e.to_string()))),
        (Ok((sha, size)), _) if *sha != expected.sha256 || *size != expected.size => Some(DecodeFailure::Corrupt {
            actual: sha.clone(),
            actual_size: *size,
        }),
        (Ok(_), _) => None,
    };
    if let Some(f) = failure {
        return (Err(f), held.map(HoldBack::into_inner_unreleased));
    }
    let raw = match decoded {
        Ok(raw) => raw,
        Err(f) => return (Err(f), held.map(HoldBack::into_inner_unreleased)),
    };
    match held.take().map(HoldBack::release) {
        Some(Ok(out)) => (Ok(raw), Some(out)),
        Some(Err(e)) => (Err(DecodeFailure::CommandInput(e)), None),
        None => (Ok(raw), None),
    }
}

type Held<W> = HoldBack<W>;

fn decode_stream<R: Read, W: Write>(
    source: &mut HashingReader<R>,
    identities: &[Identity],
    encrypted: bool,
    mut held: Held<W>,
) -> (Result<u64, DecodeFailure>, Option<Held<W>>) {
    let result = if encrypted {
        let decryptor = match age::Decryptor::new_buffered(BufReader::new(&mut *source)) {
            Ok(d) => d,
            Err(e) => return (Err(DecodeFailure::Decrypt(e.to_string())), Some(held)),
        };
        let plain = match decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)) {
            Ok(p) => p,
            Err(e) => return (Err(DecodeFailure::Decrypt(e.to_string())), Some(held)),
        };
        zstd_copy(plain, &mut held)
    } else {
        zstd_copy(&mut *source, &mut held)
    };
    (result, Some(held))
}

fn zstd_copy<R: Read, W: Write>(input: R, held: &mut Held<W>) -> Result<u64, DecodeFailure> {
    let mut decoder = zstd::Decoder::new(input).map_err(DecodeFailure::Decode)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DecodeFailure::Decode(e)),
        };
        if let Err(e) = held.write_all(&buf[..n]) {
            return Err(DecodeFailure::CommandInput(e));
        }
        total += n as u64;
    }
}
