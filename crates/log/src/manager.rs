//! The log directory: one sub-directory per partition, `<topic>-<partition>`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::partition_log::PartitionLog;
use crate::types::TopicPartition;

/// Suffix of a partition directory being deleted.
const DELETED_SUFFIX: &str = ".deleted";

/// Owns a log directory. Partition logs are opened on request, so a directory with many
/// partitions costs nothing until they are used.
#[derive(Debug)]
pub struct LogManager {
    root: PathBuf,
}

impl LogManager {
    /// Opens (creating if missing) the log directory `root` and removes leftovers of
    /// interrupted deletions.
    pub fn open(root: &Path) -> Result<LogManager, LogError> {
        fs::create_dir_all(root).ctx(|| format!("creating log directory {}", root.display()))?;
        for entry in fs::read_dir(root).ctx(|| format!("listing {}", root.display()))? {
            let entry = entry.ctx(|| format!("listing {}", root.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(DELETED_SUFFIX) {
                let p = entry.path();
                fs::remove_dir_all(&p).ctx(|| format!("removing {}", p.display()))?;
            }
        }
        Ok(LogManager {
            root: root.to_path_buf(),
        })
    }

    /// The log directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of a partition's log.
    pub fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.root.join(tp.to_string())
    }

    /// Every partition with a directory on disk, sorted.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<TopicPartition> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| TopicPartition::parse_dir_name(&e.file_name().to_string_lossy()))
            .collect();
        out.sort();
        out
    }

    /// Opens (creating if missing, recovering if needed) a partition's log.
    pub fn open_log(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<PartitionLog, LogError> {
        PartitionLog::open(&self.partition_dir(tp), config)
    }

    /// Deletes a partition's log: renames its directory to `<name>.deleted` (durably), then
    /// removes it. A crash in between leaves a `.deleted` directory that `open` removes.
    /// The caller must have dropped the partition's `PartitionLog` first.
    pub fn delete_log(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let dir = self.partition_dir(tp);
        let doomed = self.root.join(format!("{tp}{DELETED_SUFFIX}"));
        match fs::remove_dir_all(&doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx(|| format!("removing {}", doomed.display())),
        }
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).ctx(|| format!("renaming {}", dir.display())),
        }
        checkpoint::sync_dir(&self.root)?;
        fs::remove_dir_all(&doomed).ctx(|| format!("removing {}", doomed.display()))
    }
}
