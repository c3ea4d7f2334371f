//! Small crash-safe files: a single offset written to a temp file, fsynced, renamed over the
//! old one, and the directory fsynced.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::error::{IoContext, LogError};
use crate::types::Offset;

/// File name of the recovery point (the offset below which everything is known fsynced).
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// File name of the log start offset (advanced by DeleteRecords).
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";
/// Clean-shutdown marker: present only while the log is closed cleanly.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// fsyncs a directory so renames and unlinks in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("syncing directory {}", dir.display()))
}

/// Writes `offset` to `dir/name` atomically and durably. Format: `0\n<offset>\n`
/// (version line, then the value).
pub fn write(dir: &Path, name: &str, offset: Offset) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    (|| -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(format!("0\n{}\n", offset.0).as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })()
    .ctx(|| format!("writing checkpoint {}", path.display()))?;
    sync_dir(dir)
}

/// Reads a checkpoint; `None` if missing or unreadable (then the caller assumes the worst).
pub fn read(dir: &Path, name: &str) -> Option<Offset> {
    let text = fs::read_to_string(dir.join(name)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != "0" {
        return None;
    }
    lines.next()?.trim().parse().ok().map(Offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path(), "x"), None);
        write(d.path(), "x", Offset(42)).unwrap();
        assert_eq!(read(d.path(), "x"), Some(Offset(42)));
        fs::write(d.path().join("y"), "garbage").unwrap();
        assert_eq!(read(d.path(), "y"), None);
    }
}
