//! Small stream helpers: keep the tail of a child's stderr, and hold back the end of
//! a restore stream until its checksum is verified.

use std::io::{self, Write};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Most stderr kept for an error message.
pub const STDERR_TAIL: usize = 64 * 1024;

/// Reads `stream` to the end, keeping its last `STDERR_TAIL` bytes as text.
pub async fn read_tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_TAIL {
                    kept.drain(..kept.len() - STDERR_TAIL);
                }
            }
        }
    }
    if kept.len() > STDERR_TAIL {
        kept.drain(..kept.len() - STDERR_TAIL);
    }
    String::from_utf8_lossy(&kept).trim().to_string()
}

/// Bytes withheld from the restore command until the object's checksum is verified.
/// A restore client cannot finish (and commit) without the end of its input.
pub const HOLD_BACK: usize = 64 * 1024;

/// A writer that always keeps the last [`HOLD_BACK`] bytes written to it unsent.
pub struct HoldBack<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> HoldBack<W> {
    pub fn new(inner: W) -> Self {
        HoldBack {
            inner,
            pending: Vec::with_capacity(4 * HOLD_BACK),
        }
    }

    /// Gives the output back without sending the tail (the input failed verification).
    pub fn into_inner_unreleased(self) -> W {
        self.inner
    }

    /// Sends the withheld tail: call only once the input is verified.
    pub fn release(mut self) -> io::Result<W> {
        self.inner.write_all(&self.pending)?;
        self.pending.clear();
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for HoldBack<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(data);
        if self.pending.len() >= 4 * HOLD_BACK {
            let send = self.pending.len() - HOLD_BACK;
            self.inner.write_all(&self.pending[..send])?;
            self.pending.drain(..send);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing must not release the tail.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_sent_only_on_release() {
        let mut out = HoldBack::new(Vec::new());
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        for chunk in data.chunks(7_777) {
            out.write_all(chunk).unwrap();
        }
        assert!(out.inner.len() <= data.len() - HOLD_BACK);
        assert_eq!(out.inner[..], data[..out.inner.len()]);
        assert_eq!(out.release().unwrap(), data);
    }
}
