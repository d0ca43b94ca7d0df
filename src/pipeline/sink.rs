//! The blocking half of a backup: dump bytes -> zstd -> (age) -> sha256 -> part buffers,
//! and the reader that hashes a stored object on its way back.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use age::x25519::Recipient;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedSender;

use crate::storage::PartSizing;

/// Read size from the dump's stdout.
const READ_CHUNK: usize = 256 * 1024;

/// Cuts the stored byte stream into parts, hashing it on the way. A new part buffer
/// is taken from `free` (a fixed pool), so memory stays at pool size x part size.
pub struct PartSink {
    sizing: PartSizing,
    part: u32,
    buf: Vec<u8>,
    free: Receiver<Vec<u8>>,
    full: UnboundedSender<Vec<u8>>,
    hasher: Sha256,
    size: u64,
    sent_any: bool,
}

fn upload_stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped")
}

impl PartSink {
    pub fn new(sizing: PartSizing, free: Receiver<Vec<u8>>, full: UnboundedSender<Vec<u8>>) -> Self {
        PartSink {
            sizing,
            part: 1,
            buf: Vec::with_capacity(sizing.part_size(1)),
            free,
            full,
            hasher: Sha256::new(),
            size: 0,
            sent_any: false,
        }
    }

    fn send_part(&mut self) -> io::Result<()> {
        let next = self.free.recv().map_err(|_| upload_stopped())?;
        let full = std::mem::replace(&mut self.buf, next);
        self.full.send(full).map_err(|_| upload_stopped())?;
        self.sent_any = true;
        self.part += 1;
        self.buf.clear();
        let target = self.sizing.part_size(self.part);
        if self.buf.capacity() < target {
            self.buf.reserve_exact(target - self.buf.len());
        }
        Ok(())
    }

    /// Sends the last part (S3 needs at least one, even empty). Returns sha256 and size.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        if !self.buf.is_empty() || !self.sent_any {
            let last = std::mem::take(&mut self.buf);
            self.full.send(last).map_err(|_| upload_stopped())?;
        }
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }
}

impl Write for PartSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let target = self.sizing.part_size(self.part);
        let room = target.saturating_sub(self.buf.len());
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        if self.buf.len() >= target {
            self.send_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads `source` on its own thread, a few chunks ahead, so the dump command keeps
/// writing while the caller compresses (as the zstd CLI's I/O thread does). Chunk
/// buffers are recycled: no allocation or zeroing per read.
pub struct ReadAhead {
    chunks: Receiver<io::Result<(Vec<u8>, usize)>>,
    free: SyncSender<Vec<u8>>,
}

/// Chunks read ahead (each up to READ_CHUNK bytes).
const READ_AHEAD: usize = 8;

impl ReadAhead {
    pub fn spawn(mut source: impl Read + Send + 'static) -> Self {
        let (tx, chunks) = sync_channel(READ_AHEAD);
        let (free, free_rx) = sync_channel::<Vec<u8>>(READ_AHEAD + 1);
        for _ in 0..=READ_AHEAD {
            let _ = free.try_send(vec![0u8; READ_CHUNK]);
        }
        std::thread::spawn(move || {
            // Ends when the input ends or the consumer is gone.
            while let Ok(mut buf) = free_rx.recv() {
                match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Ok((buf, n))).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                        let _ = tx.send(Ok((buf, 0)));
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        ReadAhead { chunks, free }
    }

    /// Feeds every chunk to `f`, in order, until the end of input. Returns the byte count.
    pub fn for_each(self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
        let mut total = 0u64;
        for message in self.chunks.iter() {
            let (buf, n) = message?;
            f(&buf[..n])?;
            total += n as u64;
            let _ = self.free.try_send(buf);
        }
        Ok(total)
    }
}

/// What the blocking half produced.
pub struct Compressed {
    pub raw_size: u64,
    pub sha256: String,
    pub size: u64,
    /// The last [`RAW_TAIL`] bytes of the raw dump (MariaDB writes its GTID position there).
    pub tail: Vec<u8>,
}

/// How much of the end of the raw dump is kept.
pub const RAW_TAIL: usize = 4096;

/// Appends `chunk` to `tail`, keeping only its last [`RAW_TAIL`] bytes.
fn keep_tail(tail: &mut Vec<u8>, chunk: &[u8]) {
    tail.extend_from_slice(&chunk[chunk.len().saturating_sub(RAW_TAIL)..]);
    let excess = tail.len().saturating_sub(RAW_TAIL);
    tail.drain(..excess);
}

/// Compresses (and encrypts to `recipients`, if any) all of `input` into `sink`.
pub fn compress(input: ReadAhead, sink: PartSink, level: i32, recipients: &[Recipient]) -> io::Result<Compressed> {
    let mut tail = Vec::with_capacity(2 * RAW_TAIL);
    let (raw_size, sink) = if recipients.is_empty() {
        let mut zstd = zstd::Encoder::new(sink, level)?;
        zstd.include_checksum(true)?;
        let raw = input.for_each(|chunk| {
            keep_tail(&mut tail, chunk);
            zstd.write_all(chunk)
        })?;
        (raw, zstd.finish()?)
    } else {
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("age: {e}")))?;
        let age = encryptor.wrap_output(sink)?;
        let mut zstd = zstd::Encoder::new(age, level)?;
        zstd.include_checksum(true)?;
        let raw = input.for_each(|chunk| {
            keep_tail(&mut tail, chunk);
            zstd.write_all(chunk)
        })?;
        (raw, zstd.finish()?.finish()?)
    };
    let (sha256, size) = sink.finish()?;
    Ok(Compressed {
        raw_size,
        sha256,
        size,
        tail,
    })
}

/// Hashes and counts every byte read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Reads what is left, then returns hex sha256 and size of everything read.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_tail_keeps_the_last_bytes_across_chunks() {
        let mut tail = Vec::new();
        keep_tail(&mut tail, &[1u8; 3000]);
        keep_tail(&mut tail, &[2u8; 3000]);
        assert_eq!(tail.len(), RAW_TAIL);
        assert!(tail[..RAW_TAIL - 3000].iter().all(|b| *b == 1) && tail[RAW_TAIL - 3000..].iter().all(|b| *b == 2));
        keep_tail(&mut tail, &[3u8; 9000]);
        assert_eq!(tail, vec![3u8; RAW_TAIL]);
    }
}
