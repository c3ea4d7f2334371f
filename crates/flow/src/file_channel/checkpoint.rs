//! The checkpoint: the set of live put pointers and the log position it is valid at.
//!
//! Layout: `FLMCKP01`, file id `u32`, offset `u32` (replay restarts there), next transaction
//! id `u64`, pointer count `u64`, the pointers (`u64` each, in log order), and a CRC-32C of
//! everything before it. It is written to `checkpoint.tmp`, fsynced, renamed over
//! `checkpoint` and the directory fsynced, so a crash leaves either the old or the new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::record::Pointer;

const MAGIC: &[u8; 8] = b"FLMCKP01";
/// The checkpoint's file name inside checkpointDir (and backupCheckpointDir).
pub const FILE_NAME: &str = "checkpoint";

/// A decoded checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Records before this position are reflected in `live`.
    pub position: Pointer,
    /// The next transaction id to use.
    pub next_tx: u64,
    /// Put records committed and not yet taken, in log order.
    pub live: Vec<Pointer>,
}

impl Checkpoint {
    /// Serializes the checkpoint with its checksum.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(36 + self.live.len() * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.position.file_id().to_le_bytes());
        out.extend_from_slice(&self.position.offset().to_le_bytes());
        out.extend_from_slice(&self.next_tx.to_le_bytes());
        out.extend_from_slice(&(self.live.len() as u64).to_le_bytes());
        for p in &self.live {
            out.extend_from_slice(&p.0.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a checkpoint; `None` when it is truncated or its checksum does not match.
    pub fn decode(buf: &[u8]) -> Option<Checkpoint> {
        if buf.len() < 36 || &buf[..8] != MAGIC {
            return None;
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        if crc32c::crc32c(body).to_le_bytes() != crc {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().unwrap_or_default());
        let count = u64_at(24) as usize;
        if body.len() != 32 + count.checked_mul(8)? {
            return None;
        }
        Some(Checkpoint {
            position: Pointer::new(u32_at(8), u32_at(12)),
            next_tx: u64_at(16),
            live: (0..count).map(|i| Pointer(u64_at(32 + i * 8))).collect(),
        })
    }

    /// Writes the checkpoint into `dir` crash-safely (temp file, fsync, rename, dir fsync).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join("checkpoint.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(FILE_NAME))?;
        sync_dir(dir)
    }

    /// Reads the checkpoint of `dir`: `Ok(None)` when there is none, an error message when
    /// it exists but is unreadable or corrupt.
    pub fn read(dir: &Path) -> Result<Option<Checkpoint>, String> {
        let path = dir.join(FILE_NAME);
        match fs::read(&path) {
            Ok(buf) => Checkpoint::decode(&buf)
                .map(Some)
                .ok_or_else(|| format!("{} is corrupt (bad length or checksum)", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let cp = Checkpoint {
            position: Pointer::new(4, 800),
            next_tx: 99,
            live: vec![Pointer::new(2, 8), Pointer::new(3, 100)],
        };
        let buf = cp.encode();
        assert_eq!(Checkpoint::decode(&buf), Some(cp.clone()));
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 1;
            assert_eq!(Checkpoint::decode(&bad), None, "flip at {i}");
            assert_eq!(Checkpoint::decode(&buf[..i]), None, "cut at {i}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::read(dir.path()), Ok(None));
        cp.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()), Ok(Some(cp)));
        fs::write(dir.path().join(FILE_NAME), b"junk").unwrap();
        assert!(Checkpoint::read(dir.path()).is_err());
    }
}
