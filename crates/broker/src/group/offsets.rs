//! The committed-offsets store: an append-only log of checksummed records, replayed at start.
//!
//! On disk: `<log.dirs>/flumen.offsets.log`, a sequence of records
//! `[u32 LE payload length][u32 LE CRC-32C of payload][payload: JSON OffsetRecord]`.
//! One OffsetCommit request is one record, so a request is applied whole or not at all.
//!
//! Durability: a commit is answered after its record was written to the file (the page
//! cache), which survives `kill -9` of the broker, as Kafka's acknowledged writes do. The file
//! is fsynced on compaction and on clean shutdown.
//!
//! Crash recovery: replay stops at the first record that is short or fails its checksum (a
//! torn tail after a crash) and the file is truncated there.
//!
//! Compaction: when the file has grown past [`COMPACT_MIN_BYTES`] and to more than twice its
//! size right after the last compaction, the live state is written to
//! `flumen.offsets.log.tmp`, fsynced, renamed over the log, and the directory is fsynced
//! (never rewritten in place). A crash leaves the old or the new file whole; a leftover
//! `.tmp` is ignored and overwritten.
//!
//! Every method does blocking file I/O: call it from a blocking thread.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::state::CommittedOffset;
use crate::error::{BrokerError, Result};

/// File name of the offsets log inside the log directory.
pub const OFFSETS_FILE: &str = "flumen.offsets.log";

/// The log is not compacted below this size.
pub const COMPACT_MIN_BYTES: u64 = 16 << 20;

/// One committed offset inside a record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OffsetEntry {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset.
    pub committed: CommittedOffset,
}

/// One record of the offsets log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum OffsetRecord {
    /// Offsets committed for a group.
    Commit {
        /// Group id.
        group: String,
        /// The offsets.
        entries: Vec<OffsetEntry>,
    },
    /// Offsets deleted (OffsetDelete or retention).
    Delete {
        /// Group id.
        group: String,
        /// (topic, partition) pairs.
        partitions: Vec<(String, i32)>,
    },
    /// A group deleted with all its offsets (DeleteGroups).
    DeleteGroup {
        /// Group id.
        group: String,
    },
}

/// Offsets by group, then by (topic, partition).
pub type OffsetsByGroup = HashMap<String, BTreeMap<(String, i32), CommittedOffset>>;

/// Applies a record to a state.
pub fn apply(state: &mut OffsetsByGroup, record: &OffsetRecord) {
    match record {
        OffsetRecord::Commit { group, entries } => {
            let g = state.entry(group.clone()).or_default();
            for e in entries {
                g.insert((e.topic.clone(), e.partition), e.committed.clone());
            }
        }
        OffsetRecord::Delete { group, partitions } => {
            if let Some(g) = state.get_mut(group) {
                for tp in partitions {
                    g.remove(tp);
                }
            }
        }
        OffsetRecord::DeleteGroup { group } => {
            state.remove(group);
        }
    }
}

#[derive(Debug)]
struct LogFile {
    file: File,
    len: u64,
    compacted_len: u64,
}

/// The offsets log (see the module docs).
#[derive(Debug)]
pub struct OffsetStore {
    path: PathBuf,
    log: Mutex<LogFile>,
}

fn err(path: &Path, reason: impl std::fmt::Display) -> BrokerError {
    BrokerError::Metadata {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn encode(record: &OffsetRecord, out: &mut Vec<u8>) {
    let payload = serde_json::to_vec(record).expect("offset records always serialize");
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

/// Parses records from `bytes`; returns them and the length of the valid prefix.
fn decode_all(bytes: &[u8]) -> (Vec<OffsetRecord>, usize) {
    let mut records = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= 8 {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice::<OffsetRecord>(payload) else {
            break;
        };
        records.push(record);
        pos += 8 + len;
    }
    (records, pos)
}

impl OffsetStore {
    /// Opens (or creates) the log in `dir` and replays it.
    pub fn open(dir: &Path) -> Result<(OffsetStore, OffsetsByGroup)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| err(dir, format!("cannot create directory: {e}")))?;
        let path = dir.join(OFFSETS_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| err(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| err(&path, e))?;
        let (records, valid) = decode_all(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid,
                size = bytes.len(),
                "Offsets log has a torn or corrupt tail; truncating it."
            );
            file.set_len(valid as u64).map_err(|e| err(&path, e))?;
        }
        file.seek(SeekFrom::Start(valid as u64))
            .map_err(|e| err(&path, e))?;
        let mut state = OffsetsByGroup::new();
        for r in &records {
            apply(&mut state, r);
        }
        state.retain(|_, g| !g.is_empty());
        let store = OffsetStore {
            path,
            log: Mutex::new(LogFile {
                file,
                len: valid as u64,
                compacted_len: valid as u64,
            }),
        };
        Ok((store, state))
    }

    fn lock(&self) -> MutexGuard<'_, LogFile> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends records (one write); `then` runs while the log is still locked, so the
    /// in-memory state changes in the same order as the file.
    pub fn append<T>(&self, records: &[OffsetRecord], then: impl FnOnce() -> T) -> Result<T> {
        let mut buf = Vec::new();
        for r in records {
            encode(r, &mut buf);
        }
        let mut log = self.lock();
        if let Err(e) = log.file.write_all(&buf) {
            // Drop a partial write so the next append starts on a record boundary.
            let len = log.len;
            let _ = log.file.set_len(len);
            let _ = log.file.seek(SeekFrom::Start(len));
            return Err(err(&self.path, e));
        }
        log.len += buf.len() as u64;
        Ok(then())
    }

    /// True if the log has grown enough to be worth compacting.
    pub fn wants_compaction(&self) -> bool {
        let log = self.lock();
        log.len >= COMPACT_MIN_BYTES && log.len > 2 * log.compacted_len
    }

    /// Rewrites the log as one Commit record per group of `live()` (called with the log
    /// locked, so no append can slip in between the snapshot and the rename).
    pub fn compact(&self, live: impl FnOnce() -> OffsetsByGroup) -> Result<()> {
        let mut log = self.lock();
        let state = live();
        let mut buf = Vec::new();
        for (group, offsets) in state {
            let entries = offsets
                .into_iter()
                .map(|((topic, partition), committed)| OffsetEntry {
                    topic,
                    partition,
                    committed,
                })
                .collect();
            encode(&OffsetRecord::Commit { group, entries }, &mut buf);
        }
        let tmp = self.path.with_extension("log.tmp");
        let mut f = File::create(&tmp).map_err(|e| err(&tmp, e))?;
        f.write_all(&buf).map_err(|e| err(&tmp, e))?;
        f.sync_all().map_err(|e| err(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| err(&self.path, format!("rename failed: {e}")))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| err(&self.path, e))?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| err(&self.path, e))?;
        *log = LogFile {
            file,
            len: buf.len() as u64,
            compacted_len: buf.len() as u64,
        };
        tracing::info!(path = %self.path.display(), bytes = buf.len(), "Offsets log compacted.");
        Ok(())
    }

    /// Fsyncs the log (clean shutdown).
    pub fn sync(&self) -> Result<()> {
        self.lock().file.sync_all().map_err(|e| err(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(group: &str, topic: &str, partition: i32, offset: i64) -> OffsetRecord {
        OffsetRecord::Commit {
            group: group.into(),
            entries: vec![OffsetEntry {
                topic: topic.into(),
                partition,
                committed: CommittedOffset {
                    offset,
                    leader_epoch: -1,
                    metadata: "m".into(),
                    commit_ms: 1,
                },
            }],
        }
    }

    #[test]
    fn replay_restores_commits_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let (store, state) = OffsetStore::open(dir.path()).unwrap();
        assert!(state.is_empty());
        store
            .append(
                &[
                    commit("g", "t", 0, 5),
                    commit("g", "t", 1, 7),
                    commit("h", "t", 0, 1),
                ],
                || (),
            )
            .unwrap();
        store.append(&[commit("g", "t", 0, 9)], || ()).unwrap();
        store
            .append(
                &[OffsetRecord::Delete {
                    group: "g".into(),
                    partitions: vec![("t".into(), 1)],
                }],
                || (),
            )
            .unwrap();
        store
            .append(&[OffsetRecord::DeleteGroup { group: "h".into() }], || ())
            .unwrap();
        drop(store);
        let (_store, state) = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(state.len(), 1);
        let g = &state["g"];
        assert_eq!(g.len(), 1);
        assert_eq!(g[&("t".to_string(), 0)].offset, 9);
        assert_eq!(g[&("t".to_string(), 0)].metadata, "m");
    }

    #[test]
    fn a_torn_tail_is_truncated_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = OffsetStore::open(dir.path()).unwrap();
        store.append(&[commit("g", "t", 0, 5)], || ()).unwrap();
        drop(store);
        let path = dir.path().join(OFFSETS_FILE);
        let good = std::fs::metadata(&path).unwrap().len();
        // Half a record, then a record with a bad checksum.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (store, state) = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(state["g"][&("t".to_string(), 0)].offset, 5);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
        store.append(&[commit("g", "t", 0, 6)], || ()).unwrap();
        drop(store);
        let (_s, state) = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(state["g"][&("t".to_string(), 0)].offset, 6);
    }

    #[test]
    fn compaction_keeps_the_live_state() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = OffsetStore::open(dir.path()).unwrap();
        for i in 0..100 {
            store.append(&[commit("g", "t", 0, i)], || ()).unwrap();
        }
        let before = std::fs::metadata(dir.path().join(OFFSETS_FILE))
            .unwrap()
            .len();
        let mut live = OffsetsByGroup::new();
        apply(&mut live, &commit("g", "t", 0, 99));
        store.compact(|| live.clone()).unwrap();
        store.append(&[commit("g", "t", 1, 3)], || ()).unwrap();
        let after = std::fs::metadata(dir.path().join(OFFSETS_FILE))
            .unwrap()
            .len();
        assert!(after < before / 10, "{after} vs {before}");
        drop(store);
        let (_s, state) = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(state["g"][&("t".to_string(), 0)].offset, 99);
        assert_eq!(state["g"][&("t".to_string(), 1)].offset, 3);
    }
}
