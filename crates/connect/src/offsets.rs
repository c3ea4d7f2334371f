//! The standalone offset store (`offset.storage.file.filename`).
//!
//! Entries are Kafka's key/value JSON pairs: the key `["<connector>",{<source partition>}]`,
//! the value `{<source offset>}` — for the file source `["local-file-source",{"filename":"f"}]`
//! → `{"position":1234}`. Flumen also stores sink positions in it
//! (`{"kafka_partition":0,"kafka_topic":"t"}` → `{"kafka_offset":5}`), so a sink resumes
//! even against a broker without a group coordinator.
//!
//! On-disk layout: one JSON document `{"offsets":[[key,value],…]}` (not Kafka's Java
//! serialization). A flush writes `<file>.tmp`, fsyncs it, renames it over `<file>` and fsyncs
//! the folder, so a crash leaves either the old or the new file, never a torn one. A missing,
//! empty or unreadable file means "no offsets", as in Kafka (logged as a warning).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use crate::error::{ConnectError, Result};

/// Source offsets of every connector of the worker, persisted in one file.
#[derive(Debug)]
pub struct OffsetStore {
    path: PathBuf,
    state: Mutex<State>,
    /// Serializes file writes (held while writing; never across an `.await`).
    write_lock: Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Key JSON text → value.
    data: BTreeMap<String, Value>,
    /// Bumped on every change; the last generation written is `written`.
    generation: u64,
    written: u64,
}

fn key(connector: &str, partition: &Value) -> String {
    Value::Array(vec![
        Value::String(connector.to_string()),
        partition.clone(),
    ])
    .to_string()
}

impl OffsetStore {
    /// Opens (or starts) the store at `path`. Blocking: call off the async runtime.
    pub fn open(path: &Path) -> Self {
        let mut data = BTreeMap::new();
        match std::fs::read(path) {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) => match parse(&bytes) {
                Some(d) => data = d,
                None => {
                    tracing::warn!(path = %path.display(), "Offset file is not readable; starting without stored offsets.")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "Cannot read the offset file; starting without stored offsets.")
            }
        }
        Self {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                data,
                ..State::default()
            }),
            write_lock: Mutex::new(()),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored offset of one partition of a connector.
    pub fn get(&self, connector: &str, partition: &Value) -> Option<Value> {
        self.lock().data.get(&key(connector, partition)).cloned()
    }

    /// Sets (or with `None` removes) one offset in memory; [`flush`](Self::flush) persists it.
    pub fn put(&self, connector: &str, partition: &Value, offset: Option<Value>) {
        let k = key(connector, partition);
        let mut s = self.lock();
        let changed = match offset {
            Some(v) => s.data.insert(k, v.clone()).as_ref() != Some(&v),
            None => s.data.remove(&k).is_some(),
        };
        if changed {
            s.generation += 1;
        }
    }

    /// Every `(partition, offset)` stored for `connector`.
    pub fn entries(&self, connector: &str) -> Vec<(Value, Value)> {
        self.lock()
            .data
            .iter()
            .filter_map(|(k, v)| {
                let Ok(Value::Array(mut parts)) = serde_json::from_str::<Value>(k) else {
                    return None;
                };
                if parts.len() != 2 || parts[0].as_str() != Some(connector) {
                    return None;
                }
                Some((parts.pop()?, v.clone()))
            })
            .collect()
    }

    /// Removes every offset of `connector` (in memory).
    pub fn remove_connector(&self, connector: &str) {
        for (partition, _) in self.entries(connector) {
            self.put(connector, &partition, None);
        }
    }

    /// Writes the file if anything changed since the last write (temp file, fsync, rename,
    /// fsync of the folder). Blocking.
    pub fn flush(&self) -> Result<()> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (generation, text) = {
            let s = self.lock();
            if s.generation == s.written {
                return Ok(());
            }
            let pairs: Vec<Value> = s
                .data
                .iter()
                .map(|(k, v)| {
                    Value::Array(vec![
                        serde_json::from_str(k).unwrap_or(Value::Null),
                        v.clone(),
                    ])
                })
                .collect();
            let mut doc = serde_json::Map::new();
            doc.insert("offsets".into(), Value::Array(pairs));
            (s.generation, Value::Object(doc).to_string())
        };
        self.write_file(text.as_bytes())
            .map_err(|source| ConnectError::OffsetStore {
                path: self.path.clone(),
                source,
            })?;
        let mut s = self.lock();
        s.written = s.written.max(generation);
        Ok(())
    }

    fn write_file(&self, bytes: &[u8]) -> std::io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)?;
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn parse(bytes: &[u8]) -> Option<BTreeMap<String, Value>> {
    let doc: Value = serde_json::from_slice(bytes).ok()?;
    let mut out = BTreeMap::new();
    for pair in doc.get("offsets")?.as_array()? {
        let pair = pair.as_array()?;
        if pair.len() != 2 || !pair[0].is_array() {
            return None;
        }
        out.insert(pair[0].to_string(), pair[1].clone());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn put_flush_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("connect.offsets");
        let store = OffsetStore::open(&path);
        assert_eq!(store.get("a", &json!({"filename":"f"})), None);
        store.put("a", &json!({"filename":"f"}), Some(json!({"position":30})));
        store.put(
            "b",
            &json!({"kafka_topic":"t","kafka_partition":0}),
            Some(json!({"kafka_offset":5})),
        );
        store.flush().unwrap();
        assert!(!dir.path().join("sub/connect.offsets.tmp").exists());
        let again = OffsetStore::open(&path);
        assert_eq!(
            again.get("a", &json!({"filename":"f"})),
            Some(json!({"position":30}))
        );
        assert_eq!(
            again.entries("b"),
            vec![(
                json!({"kafka_partition":0,"kafka_topic":"t"}),
                json!({"kafka_offset":5})
            )]
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#"["a",{"filename":"f"}]"#), "{text}");
        again.remove_connector("a");
        again.flush().unwrap();
        assert!(OffsetStore::open(&path).entries("a").is_empty());
    }

    #[test]
    fn corrupt_or_empty_file_means_no_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        std::fs::write(&path, b"").unwrap();
        assert!(OffsetStore::open(&path).entries("a").is_empty());
        std::fs::write(&path, b"{\"offsets\":[[1,").unwrap();
        let store = OffsetStore::open(&path);
        assert!(store.entries("a").is_empty());
        // A corrupt file is replaced on the next flush.
        store.put("a", &json!({"filename":"f"}), Some(json!({"position":1})));
        store.flush().unwrap();
        assert_eq!(OffsetStore::open(&path).entries("a").len(), 1);
    }

    #[test]
    fn flush_without_change_does_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        let store = OffsetStore::open(&path);
        store.flush().unwrap();
        assert!(!path.exists());
        store.put("a", &json!({"filename":"f"}), Some(json!({"position":1})));
        store.flush().unwrap();
        std::fs::remove_file(&path).unwrap();
        store.put("a", &json!({"filename":"f"}), Some(json!({"position":1})));
        store.flush().unwrap();
        assert!(!path.exists(), "an unchanged value is not rewritten");
    }
}
