//! The broker's persisted metadata: cluster id, topics (ids, partition counts, config
//! overrides) and the producer-id high-water mark.
//!
//! On disk: one JSON file, `<log.dirs>/flumen.meta.json`. It is never rewritten in place: a
//! new version is written to `flumen.meta.json.tmp`, fsynced, renamed over the old one, and
//! the directory is fsynced. A crash leaves either the old or the new file whole; a leftover
//! `.tmp` is ignored (and overwritten by the next save).
//!
//! Every method here does blocking file I/O: call it from a blocking thread.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};

/// File name of the metadata file inside the log directory.
pub const META_FILE: &str = "flumen.meta.json";

/// Producer ids are reserved from the persisted high-water mark in blocks of this size, so
/// that an id is never handed out twice across restarts without a write per InitProducerId.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// A persisted topic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    /// The topic id (UUID, as text).
    pub id: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Topic config overrides (Kafka names).
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// Everything the metadata file holds.
#[derive(Clone, Debug, Serialize, Deserialize, Default, PartialEq)]
pub struct MetaState {
    /// Format version (1).
    pub version: u32,
    /// The cluster id, generated on first start.
    pub cluster_id: String,
    /// Producer ids below this may have been handed out.
    pub producer_id_high_water: i64,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicRecord>,
}

/// The metadata file plus its in-memory copy.
#[derive(Debug)]
pub struct MetaStore {
    path: PathBuf,
    state: Mutex<MetaState>,
}

fn meta_err(path: &Path, reason: impl std::fmt::Display) -> BrokerError {
    BrokerError::Metadata {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl MetaStore {
    /// Opens (or creates) the metadata file in `dir`.
    pub fn open(dir: &Path) -> Result<MetaStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| meta_err(dir, format!("cannot create directory: {e}")))?;
        let path = dir.join(META_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<MetaState>(&bytes).map_err(|e| meta_err(&path, e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetaState {
                version: 1,
                cluster_id: new_cluster_id(),
                producer_id_high_water: 0,
                topics: BTreeMap::new(),
            },
            Err(e) => return Err(meta_err(&path, e)),
        };
        let store = MetaStore {
            path,
            state: Mutex::new(state),
        };
        store.save()?;
        Ok(store)
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> MetaState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MetaState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` and persists the result; if persisting fails the change is undone.
    pub fn update<T>(&self, change: impl FnOnce(&mut MetaState) -> T) -> Result<T> {
        let mut state = self.lock();
        let before = state.clone();
        let out = change(&mut state);
        if *state != before {
            if let Err(e) = write_atomically(&self.path, &state) {
                *state = before;
                return Err(e);
            }
        }
        Ok(out)
    }

    fn save(&self) -> Result<()> {
        let state = self.lock();
        write_atomically(&self.path, &state)
    }
}

fn new_cluster_id() -> String {
    // Kafka cluster ids are 22-character URL-safe base64 of a UUID.
    let id = uuid::Uuid::new_v4();
    let mut s = String::new();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | *b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            s.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        s.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    s
}

/// Writes `state` to `path` crash-safely: temp file, fsync, rename, fsync directory.
fn write_atomically(path: &Path, state: &MetaState) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| meta_err(path, e))?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| meta_err(&tmp, e))?;
    f.write_all(&bytes).map_err(|e| meta_err(&tmp, e))?;
    f.sync_all().map_err(|e| meta_err(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| meta_err(path, format!("rename failed: {e}")))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_reopen_and_cluster_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(dir.path()).unwrap();
        let cluster = store.snapshot().cluster_id;
        assert_eq!(cluster.len(), 22);
        store
            .update(|s| {
                s.topics.insert(
                    "t".into(),
                    TopicRecord {
                        id: uuid::Uuid::new_v4().to_string(),
                        partitions: 3,
                        configs: BTreeMap::new(),
                    },
                );
            })
            .unwrap();
        drop(store);
        // A stale temp file from a crash is ignored.
        std::fs::write(dir.path().join("flumen.meta.json.tmp"), b"garbage").unwrap();
        let again = MetaStore::open(dir.path()).unwrap();
        let s = again.snapshot();
        assert_eq!(s.cluster_id, cluster);
        assert_eq!(s.topics["t"].partitions, 3);
    }
}
