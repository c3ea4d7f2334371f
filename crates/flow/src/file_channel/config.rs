//! Settings of the `file` channel (Flume's `FileChannelConfiguration`).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Context;
use crate::error::Result;

/// Flume's `maxFileSize` default and ceiling (bytes).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 2_146_435_071;
/// Flume's `minimumRequiredSpace` default (bytes).
pub const DEFAULT_MINIMUM_REQUIRED_SPACE: u64 = 524_288_000;
/// Flume's floor for `minimumRequiredSpace` (1 MiB).
pub const MINIMUM_REQUIRED_SPACE_FLOOR: u64 = 1 << 20;

/// Keys Flume's file channel knows and Flumen reads.
const KNOWN: &[&str] = &[
    "type",
    "checkpointDir",
    "dataDirs",
    "useDualCheckpoints",
    "backupCheckpointDir",
    "checkpointInterval",
    "maxFileSize",
    "minimumRequiredSpace",
    "capacity",
    "transactionCapacity",
    "keep-alive",
    "checkpointOnClose",
    "takeSyncDelay",
    "fsyncPerTransaction",
    "fsyncInterval",
];

/// Settings of the `file` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChannelConfig {
    /// `checkpointDir`: where the checkpoint is written. Flume's default:
    /// `~/.flume/file-channel/checkpoint`.
    pub checkpoint_dir: PathBuf,
    /// `dataDirs`: comma-separated directories for the log files, used round-robin (one
    /// file in each in turn). Flume's default: `~/.flume/file-channel/data`.
    pub data_dirs: Vec<PathBuf>,
    /// `useDualCheckpoints`: also write the checkpoint to `backupCheckpointDir`. Flume's
    /// default: false.
    pub use_dual_checkpoints: bool,
    /// `backupCheckpointDir`: the backup checkpoint's directory (required with dual
    /// checkpoints, must differ from checkpointDir). Flume's default: none.
    pub backup_checkpoint_dir: Option<PathBuf>,
    /// `checkpointInterval`: time between checkpoints. Flume's default: 30000 ms.
    pub checkpoint_interval: Duration,
    /// `checkpointOnClose`: write a checkpoint when the channel closes. Flume's default: true.
    pub checkpoint_on_close: bool,
    /// `maxFileSize`: a log file is rolled once it reaches this size. Flume's default and
    /// maximum: 2146435071 bytes.
    pub max_file_size: u64,
    /// `minimumRequiredSpace`: puts are refused while a data or checkpoint directory has
    /// less free space. Flume's default: 524288000 bytes (500 MiB), floor 1 MiB.
    pub minimum_required_space: u64,
    /// `capacity`: the most events the channel holds. Flume's default: 1000000.
    pub capacity: usize,
    /// `transactionCapacity`: the most puts or takes in one transaction. Flume's default:
    /// 10000.
    pub transaction_capacity: usize,
    /// `keep-alive`: seconds a commit waits for room. Flume's default: 3.
    pub keep_alive: Duration,
    /// `takeSyncDelay` (a Flumen extension, milliseconds): a take commit returns once its
    /// record is written (safe from a process crash) and is fsynced with the next group
    /// commit, or by the channel after at most this long (safe from power loss; a take
    /// lost to power loss only delivers its events again). 0: every take commit waits for
    /// its fsync, as in Flume. Puts always wait for theirs. Default: 100.
    pub take_sync_delay: Duration,
    /// `fsyncPerTransaction` (undocumented in Flume): false makes no commit wait for an
    /// fsync; the log is then synced every `fsyncInterval`, and a power loss may lose the
    /// commits of that last interval (a crash of the process loses nothing). Flume's
    /// default: true.
    pub fsync_per_transaction: bool,
    /// `fsyncInterval` (seconds; undocumented in Flume): how often the log is synced when
    /// `fsyncPerTransaction` is false. Flume's default: 5.
    pub fsync_interval: Duration,
}

fn home_default(rest: &str) -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".flume/file-channel").join(rest)
}

impl Default for FileChannelConfig {
    fn default() -> Self {
        FileChannelConfig {
            checkpoint_dir: home_default("checkpoint"),
            data_dirs: vec![home_default("data")],
            use_dual_checkpoints: false,
            backup_checkpoint_dir: None,
            checkpoint_interval: Duration::from_millis(30_000),
            checkpoint_on_close: true,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            minimum_required_space: DEFAULT_MINIMUM_REQUIRED_SPACE,
            capacity: 1_000_000,
            transaction_capacity: 10_000,
            keep_alive: Duration::from_secs(3),
            take_sync_delay: Duration::from_millis(100),
            fsync_per_transaction: true,
            fsync_interval: Duration::from_secs(5),
        }
    }
}

impl FileChannelConfig {
    /// Reads and validates the properties; unknown Flume-only keys (encryption, replay
    /// tuning, …) are logged by name and otherwise ignored.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let d = Self::default();
        for key in ctx.keys() {
            if !KNOWN.contains(&key) {
                tracing::warn!(
                    component = ctx.component(),
                    key,
                    "Property `{key}` of the file channel is not supported by Flumen and is ignored."
                );
            }
        }
        let checkpoint_dir = ctx
            .get("checkpointDir")
            .map(|s| PathBuf::from(s.trim()))
            .unwrap_or(d.checkpoint_dir);
        let data_dirs = match ctx.get("dataDirs") {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => d.data_dirs,
        };
        if data_dirs.is_empty() {
            return Err(ctx.error("dataDirs", "no directory given"));
        }
        let use_dual_checkpoints = ctx.boolean("useDualCheckpoints", false);
        let backup_checkpoint_dir = ctx
            .get("backupCheckpointDir")
            .map(|s| PathBuf::from(s.trim()));
        if use_dual_checkpoints {
            match &backup_checkpoint_dir {
                None => {
                    return Err(ctx.error(
                        "backupCheckpointDir",
                        "useDualCheckpoints is true but backupCheckpointDir is not set",
                    ))
                }
                Some(b) if *b == checkpoint_dir => {
                    return Err(ctx.error(
                        "backupCheckpointDir",
                        "the backup checkpoint directory must differ from checkpointDir",
                    ))
                }
                Some(_) => {}
            }
        }
        let positive = |key: &str, default: i64| -> Result<i64> {
            match ctx.number::<i64>(key, default)? {
                v if v <= 0 => Err(ctx.error(key, format!("must be positive, not {v}"))),
                v => Ok(v),
            }
        };
        let checkpoint_interval =
            Duration::from_millis(positive("checkpointInterval", 30_000)? as u64);
        let max_file_size = (positive("maxFileSize", DEFAULT_MAX_FILE_SIZE as i64)? as u64)
            .min(DEFAULT_MAX_FILE_SIZE);
        let minimum_required_space = ctx
            .number::<u64>("minimumRequiredSpace", DEFAULT_MINIMUM_REQUIRED_SPACE)?
            .max(MINIMUM_REQUIRED_SPACE_FLOOR);
        let capacity = positive("capacity", d.capacity as i64)? as usize;
        let transaction_capacity =
            positive("transactionCapacity", d.transaction_capacity as i64)? as usize;
        if transaction_capacity > capacity {
            return Err(ctx.error(
                "transactionCapacity",
                format!("File Channel transaction capacity cannot be greater than the capacity of the channel ({transaction_capacity} > {capacity})"),
            ));
        }
        let keep_alive = Duration::from_secs(ctx.number::<u64>("keep-alive", 3)?);
        let take_sync_delay = Duration::from_millis(ctx.number::<u64>("takeSyncDelay", 100)?);
        let fsync_interval = Duration::from_secs(positive("fsyncInterval", 5)? as u64);
        Ok(FileChannelConfig {
            checkpoint_dir,
            data_dirs,
            use_dual_checkpoints,
            backup_checkpoint_dir: if use_dual_checkpoints {
                backup_checkpoint_dir
            } else {
                None
            },
            checkpoint_interval,
            checkpoint_on_close: ctx.boolean("checkpointOnClose", true),
            max_file_size,
            minimum_required_space,
            capacity,
            transaction_capacity,
            keep_alive,
            take_sync_delay,
            fsync_per_transaction: ctx.boolean("fsyncPerTransaction", true),
            fsync_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flume_keys() {
        let ctx = Context::from_pairs(
            "channel c1",
            &[
                ("type", "file"),
                ("checkpointDir", "/tmp/cp"),
                ("dataDirs", " /d1 , /d2,"),
                ("useDualCheckpoints", "true"),
                ("backupCheckpointDir", "/tmp/bcp"),
                ("checkpointInterval", "1000"),
                ("maxFileSize", "99999999999"),
                ("minimumRequiredSpace", "5"),
                ("capacity", "50"),
                ("transactionCapacity", "10"),
                ("keep-alive", "1"),
                ("takeSyncDelay", "0"),
                ("encryption.activeKey", "key-0"),
            ],
        );
        let c = FileChannelConfig::from_context(&ctx).unwrap();
        assert_eq!(
            c.data_dirs,
            vec![PathBuf::from("/d1"), PathBuf::from("/d2")]
        );
        assert_eq!(c.backup_checkpoint_dir, Some(PathBuf::from("/tmp/bcp")));
        assert_eq!(c.checkpoint_interval, Duration::from_secs(1));
        assert_eq!(c.max_file_size, DEFAULT_MAX_FILE_SIZE);
        assert_eq!(c.minimum_required_space, MINIMUM_REQUIRED_SPACE_FLOOR);
        assert_eq!((c.capacity, c.transaction_capacity), (50, 10));
        assert_eq!(c.take_sync_delay, Duration::ZERO);
        let d = FileChannelConfig::from_context(&Context::from_pairs("channel c1", &[])).unwrap();
        assert_eq!(d.take_sync_delay, Duration::from_millis(100));
        assert!(d.fsync_per_transaction);
        let ctx = Context::from_pairs(
            "channel c1",
            &[("fsyncPerTransaction", "false"), ("fsyncInterval", "2")],
        );
        let f = FileChannelConfig::from_context(&ctx).unwrap();
        assert!(!f.fsync_per_transaction);
        assert_eq!(f.fsync_interval, Duration::from_secs(2));
    }

    #[test]
    fn rejects_bad_settings() {
        let bad = [
            vec![("useDualCheckpoints", "true")],
            vec![
                ("useDualCheckpoints", "true"),
                ("checkpointDir", "/a"),
                ("backupCheckpointDir", "/a"),
            ],
            vec![("capacity", "10"), ("transactionCapacity", "11")],
            vec![("capacity", "0")],
            vec![("dataDirs", " , ")],
            vec![("fsyncInterval", "0")],
        ];
        for pairs in bad {
            let ctx = Context::from_pairs("channel c1", &pairs);
            assert!(FileChannelConfig::from_context(&ctx).is_err(), "{pairs:?}");
        }
    }
}
