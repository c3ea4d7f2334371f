//! `TAILDIR`: follows files matching per-group patterns, line by line, remembering each
//! file's position in Flume's JSON position file (Flume's `TaildirSource`).
//!
//! Files are tracked by inode. Unlike Flume (which re-reads a renamed file from 0 when its
//! new name still matches, and ignores it otherwise), Flumen follows a rename: the inode
//! keeps its position under the new name, and a rotated file that no longer matches is
//! still read to its end through the open handle before it is dropped. The position file
//! keeps Flume's exact format, `[{"inode":2496272,"pos":1243,"file":"/var/log/app/a.log"}]`,
//! so a Flume position file is adopted. A position is advanced only after the batch was
//! committed to the channels (at-least-once).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use regex::Regex;
use tokio_util::sync::CancellationToken;

use super::{sleep_or_shutdown, BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::{Event, Headers};
use crate::monitoring::{CounterGroup, SOURCE_COUNTERS};

/// One file group: a directory and a file-name pattern.
#[derive(Debug, Clone)]
pub struct FileGroup {
    /// The group's name.
    pub name: String,
    /// The directory (literal part of `filegroups.<g>`).
    pub dir: PathBuf,
    /// The file-name regex (last component of `filegroups.<g>`), matched on the whole name.
    pub pattern: Regex,
    /// `headers.<g>.<key>`: static headers of the group's events.
    pub headers: Headers,
}

/// Settings of the `TAILDIR` source.
#[derive(Debug, Clone)]
pub struct TaildirConfig {
    /// `filegroups` and `filegroups.<g>`. Required.
    pub groups: Vec<FileGroup>,
    /// `positionFile`. Flume's default: `~/.flume/taildir_position.json`.
    pub position_file: PathBuf,
    /// `byteOffsetHeader`: add header `byteoffset`. Flume's default: false.
    pub byte_offset_header: bool,
    /// `skipToEnd`: start files absent from the position file at their end. Flume's default: false.
    pub skip_to_end: bool,
    /// `idleTimeout` ms: a trailing line without newline is emitted after this long without
    /// new data. Flume's default: 120000.
    pub idle_timeout: Duration,
    /// `writePosInterval` ms between position-file writes. Flume's default: 3000.
    pub write_pos_interval: Duration,
    /// `batchSize`. Flume's default: 100.
    pub batch_size: usize,
    /// `backoffSleepIncrement` ms. Flume's default: 1000.
    pub backoff_increment: Duration,
    /// `maxBackoffSleep` ms. Flume's default: 5000.
    pub max_backoff: Duration,
    /// `fileHeaderKey` when `fileHeader=true`. Flume's default: off, key `file`.
    pub file_header: Option<String>,
}

impl TaildirConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let names = ctx.list("filegroups");
        if names.is_empty() {
            return Err(ctx.error("filegroups", "required property is missing"));
        }
        let mut groups = Vec::new();
        for g in names {
            let key = format!("filegroups.{g}");
            let path = PathBuf::from(ctx.require(&key)?);
            let (Some(dir), Some(pat)) = (path.parent(), path.file_name()) else {
                return Err(ctx.error(
                    &key,
                    "must be an absolute path whose last component is a file-name regex",
                ));
            };
            if !path.is_absolute() {
                return Err(ctx.error(&key, "must be an absolute path"));
            }
            let pat = pat.to_string_lossy();
            let pattern = Regex::new(&format!("^(?:{pat})$"))
                .map_err(|e| ctx.error(&key, format!("invalid file-name regex `{pat}`: {e}")))?;
            let hctx = ctx.sub(&format!("headers.{g}."), ctx.component());
            let headers = hctx
                .keys()
                .map(|k| (k.to_string(), hctx.get(k).unwrap_or_default().to_string()))
                .collect();
            groups.push(FileGroup {
                name: g,
                dir: dir.to_path_buf(),
                pattern,
                headers,
            });
        }
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
        let batch_size = ctx.number::<usize>("batchSize", 100)?;
        if batch_size == 0 {
            return Err(ctx.error("batchSize", "must be at least 1"));
        }
        Ok(TaildirConfig {
            groups,
            position_file: PathBuf::from(ctx.string(
                "positionFile",
                &format!("{home}/.flume/taildir_position.json"),
            )),
            byte_offset_header: ctx.boolean("byteOffsetHeader", false),
            skip_to_end: ctx.boolean("skipToEnd", false),
            idle_timeout: Duration::from_millis(ctx.number("idleTimeout", 120000)?),
            write_pos_interval: Duration::from_millis(ctx.number("writePosInterval", 3000)?),
            batch_size,
            backoff_increment: Duration::from_millis(ctx.number("backoffSleepIncrement", 1000)?),
            max_backoff: Duration::from_millis(ctx.number("maxBackoffSleep", 5000)?),
            file_header: ctx
                .boolean("fileHeader", false)
                .then(|| ctx.string("fileHeaderKey", "file")),
        })
    }

    /// Checks the group directories, creates the position file's directory and loads it.
    pub fn build(self, name: &str) -> Result<TaildirSource> {
        let component = format!("source {name}");
        for g in &self.groups {
            if !g.dir.is_dir() {
                return Err(FlowError::Start {
                    component: component.clone(),
                    message: format!(
                        "directory {} of file group {} does not exist",
                        g.dir.display(),
                        g.name
                    ),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
        }
        if let Some(parent) = self.position_file.parent() {
            std::fs::create_dir_all(parent).map_err(|source| FlowError::Start {
                component: component.clone(),
                message: format!(
                    "cannot create the directory of positionFile {}",
                    self.position_file.display()
                ),
                source,
            })?;
        }
        let positions = match std::fs::read(&self.position_file) {
            Ok(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => parse_positions(&bytes)
                .map_err(|e| FlowError::Start {
                    component: component.clone(),
                    message: format!("cannot parse positionFile {}", self.position_file.display()),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?,
            _ => HashMap::new(),
        };
        Ok(TaildirSource {
            name: name.to_string(),
            reader: Some(Reader {
                config: Arc::new(self),
                files: BTreeMap::new(),
                positions,
                first_scan: true,
            }),
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        })
    }
}

/// Parses Flume's position file: inode → (pos, file).
pub fn parse_positions(bytes: &[u8]) -> std::result::Result<HashMap<u64, (u64, String)>, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let arr = v.as_array().ok_or("not a JSON array")?;
    let mut out = HashMap::new();
    for item in arr {
        let inode = item["inode"].as_u64().ok_or("entry without inode")?;
        let pos = item["pos"].as_u64().ok_or("entry without pos")?;
        let file = item["file"]
            .as_str()
            .ok_or("entry without file")?
            .to_string();
        out.insert(inode, (pos, file));
    }
    Ok(out)
}

struct TailFile {
    path: PathBuf,
    group: usize,
    pos: u64,
    file: Option<std::fs::File>,
    /// False once its name no longer matches: read to the end, then dropped.
    matched: bool,
    last_data: Instant,
}

struct Reader {
    config: Arc<TaildirConfig>,
    files: BTreeMap<u64, TailFile>,
    positions: HashMap<u64, (u64, String)>,
    first_scan: bool,
}

/// A batch read from one file, not yet committed.
struct Batch {
    inode: u64,
    events: Vec<Event>,
    end: u64,
}

impl Reader {
    /// Finds matching files, follows renames, drops finished orphans.
    fn update(&mut self) {
        let mut seen = Vec::new();
        for (gi, g) in self.config.groups.iter().enumerate() {
            let Ok(entries) = std::fs::read_dir(&g.dir) else {
                continue;
            };
            let mut found: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !g.pattern.is_match(&name) {
                    continue;
                }
                let Ok(meta) = std::fs::metadata(e.path()) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                found.push((
                    meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                    meta.ino(),
                    e.path(),
                ));
            }
            found.sort();
            for (_, ino, path) in found {
                seen.push(ino);
                match self.files.get_mut(&ino) {
                    Some(t) => {
                        if t.path != path {
                            tracing::info!(from = %t.path.display(), to = %path.display(), "Followed a renamed file (same inode).");
                            t.path = path;
                        }
                        t.matched = true;
                        t.group = gi;
                    }
                    None => {
                        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                        let pos = match self.positions.remove(&ino) {
                            Some((pos, _)) if pos <= size => pos,
                            Some(_) => 0,
                            None if self.first_scan && self.config.skip_to_end => size,
                            None => 0,
                        };
                        tracing::info!(file = %path.display(), inode = ino, pos, "Tailing file.");
                        self.files.insert(
                            ino,
                            TailFile {
                                path,
                                group: gi,
                                pos,
                                file: None,
                                matched: true,
                                last_data: Instant::now(),
                            },
                        );
                    }
                }
            }
        }
        self.first_scan = false;
        for (ino, t) in self.files.iter_mut() {
            if !seen.contains(ino) && t.matched {
                t.matched = false;
                if t.file.is_none() {
                    // Not open: nothing more can be read from it.
                    t.pos = u64::MAX;
                }
            }
        }
    }

    /// Reads up to batchSize complete lines from the first file with data.
    fn read(&mut self) -> std::io::Result<Option<Batch>> {
        let cfg = self.config.clone();
        let mut finished = Vec::new();
        let mut result = None;
        for (&ino, t) in self.files.iter_mut() {
            if t.pos == u64::MAX {
                finished.push(ino);
                continue;
            }
            if t.file.is_none() {
                match std::fs::File::open(&t.path) {
                    Ok(f) if f.metadata().map(|m| m.ino()).unwrap_or(0) == ino => t.file = Some(f),
                    _ => {
                        finished.push(ino);
                        continue;
                    }
                }
            }
            let f = t.file.as_mut().expect("opened above");
            let size = f.metadata()?.len();
            if size < t.pos {
                tracing::info!(file = %t.path.display(), "File was truncated; reading from the start.");
                t.pos = 0;
            }
            if size == t.pos {
                if !t.matched {
                    finished.push(ino);
                }
                continue;
            }
            f.seek(SeekFrom::Start(t.pos))?;
            let want = (size - t.pos)
                .min(cfg.batch_size as u64 * 4096)
                .min(16 << 20) as usize;
            let mut buf = vec![0u8; want];
            let n = read_full(f, &mut buf)?;
            buf.truncate(n);
            let data = Bytes::from(buf);
            let idle = t.last_data.elapsed() >= cfg.idle_timeout || !t.matched;
            let mut events = Vec::new();
            let mut start = 0usize;
            while events.len() < cfg.batch_size && start < data.len() {
                let Some(nl) = memchr::memchr(b'\n', &data[start..]) else {
                    if idle && n as u64 == size - t.pos {
                        // Idle (or rotated away) with a partial last line: emit it.
                        events.push(make_event(
                            &cfg,
                            t,
                            data.slice(start..),
                            t.pos + start as u64,
                        ));
                        start = data.len();
                    }
                    break;
                };
                let mut end = start + nl;
                let next = end + 1;
                if end > start && data[end - 1] == b'\r' {
                    end -= 1;
                }
                events.push(make_event(
                    &cfg,
                    t,
                    data.slice(start..end),
                    t.pos + start as u64,
                ));
                start = next;
            }
            if events.is_empty() {
                continue;
            }
            t.last_data = Instant::now();
            result = Some(Batch {
                inode: ino,
                events,
                end: t.pos + start as u64,
            });
            break;
        }
        for ino in finished {
            if let Some(t) = self.files.get(&ino) {
                if !t.matched {
                    tracing::info!(file = %t.path.display(), "Closed a file that no longer matches.");
                    self.files.remove(&ino);
                }
            }
        }
        Ok(result)
    }

    fn commit(&mut self, batch: &Batch) {
        if let Some(t) = self.files.get_mut(&batch.inode) {
            t.pos = batch.end;
        }
    }

    /// Flume's position-file JSON, keys in Flume's order.
    fn positions_json(&self) -> String {
        let items: Vec<String> = self
            .files
            .iter()
            .filter(|(_, t)| t.matched && t.pos != u64::MAX)
            .map(|(ino, t)| {
                format!(
                    "{{\"inode\":{ino},\"pos\":{},\"file\":{}}}",
                    t.pos,
                    serde_json::Value::String(t.path.display().to_string())
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }
}

fn make_event(cfg: &TaildirConfig, t: &TailFile, body: Bytes, offset: u64) -> Event {
    let mut e = Event::new(body);
    if !cfg.groups[t.group].headers.is_empty() {
        e.headers = cfg.groups[t.group].headers.clone();
    }
    if cfg.byte_offset_header {
        e.headers.insert("byteoffset".into(), offset.to_string());
    }
    if let Some(k) = &cfg.file_header {
        e.headers.insert(k.clone(), t.path.display().to_string());
    }
    e
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn write_positions(path: &Path, json: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}

/// A running `TAILDIR` source.
pub struct TaildirSource {
    name: String,
    reader: Option<Reader>,
    counter: Arc<CounterGroup>,
}

impl Source for TaildirSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }

    fn run(
        mut self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut reader = self.reader.take().expect("built");
            let cfg = reader.config.clone();
            let mut last_write = Instant::now();
            let mut last_scan: Option<Instant> = None;
            let mut backoffs = 0u32;
            while !shutdown.is_cancelled() {
                let rescan = last_scan.is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
                let (r, batch) = match tokio::task::spawn_blocking(move || {
                    if rescan {
                        reader.update();
                    }
                    let b = reader.read();
                    (reader, b)
                })
                .await
                {
                    Ok(v) => v,
                    Err(error) => {
                        tracing::error!(source = %self.name, %error, "TAILDIR reader failed.");
                        return;
                    }
                };
                reader = r;
                if rescan {
                    last_scan = Some(Instant::now());
                }
                match batch {
                    Ok(Some(batch)) => {
                        backoffs = 0;
                        let n = batch.events.len() as i64;
                        self.counter.add("EventReceivedCount", n);
                        self.counter.add("AppendBatchReceivedCount", 1);
                        let mut wait = Duration::from_secs(1);
                        loop {
                            match processor.process_batch(batch.events.clone()).await {
                                Ok(()) => {
                                    reader.commit(&batch);
                                    self.counter.add("EventAcceptedCount", n);
                                    self.counter.add("AppendBatchAcceptedCount", 1);
                                    break;
                                }
                                Err(error) => {
                                    self.counter.add("ChannelWriteFail", 1);
                                    tracing::warn!(source = %self.name, %error, "Unable to put batch; retrying in {} ms.", wait.as_millis());
                                    if !sleep_or_shutdown(wait, &shutdown).await {
                                        break;
                                    }
                                    wait = (wait * 2).min(Duration::from_secs(5));
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        backoffs += 1;
                        // Flume sleeps min(n × increment, max); Flumen polls at least every
                        // 500 ms so new data is picked up promptly.
                        let d = (cfg.backoff_increment * backoffs)
                            .min(cfg.max_backoff)
                            .min(Duration::from_millis(500));
                        if !sleep_or_shutdown(d, &shutdown).await {
                            break;
                        }
                        last_scan = None;
                    }
                    Err(error) => {
                        self.counter.add("EventReadFail", 1);
                        tracing::error!(source = %self.name, %error, "Unable to read files.");
                        if !sleep_or_shutdown(cfg.max_backoff, &shutdown).await {
                            break;
                        }
                    }
                }
                if last_write.elapsed() >= cfg.write_pos_interval {
                    last_write = Instant::now();
                    let json = reader.positions_json();
                    let path = cfg.position_file.clone();
                    if let Ok(Err(error)) =
                        tokio::task::spawn_blocking(move || write_positions(&path, &json)).await
                    {
                        tracing::warn!(source = %self.name, %error, "Cannot write the position file.");
                    }
                }
            }
            let json = reader.positions_json();
            let path = cfg.position_file.clone();
            if let Ok(Err(error)) =
                tokio::task::spawn_blocking(move || write_positions(&path, &json)).await
            {
                tracing::warn!(source = %self.name, %error, "Cannot write the position file.");
            }
            self.counter.stop();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(dir: &Path, extra: &[(&str, &str)]) -> Reader {
        let pattern = format!("{}/app.*\\.log", dir.display());
        let pos = dir.join("pos/p.json");
        let pos = pos.to_str().unwrap();
        let mut pairs = vec![
            ("filegroups", "g1"),
            ("filegroups.g1", pattern.as_str()),
            ("positionFile", pos),
            ("headers.g1.topic", "t1"),
            ("byteOffsetHeader", "true"),
        ];
        pairs.extend_from_slice(extra);
        let ctx = Context::from_pairs("source r1", &pairs);
        TaildirConfig::from_context(&ctx)
            .unwrap()
            .build("r1")
            .unwrap()
            .reader
            .take()
            .unwrap()
    }

    fn drain(r: &mut Reader) -> Vec<String> {
        let mut out = Vec::new();
        r.update();
        while let Some(b) = r.read().unwrap() {
            for e in &b.events {
                out.push(format!(
                    "{}@{}",
                    String::from_utf8_lossy(&e.body),
                    e.headers["byteoffset"]
                ));
                assert_eq!(e.headers["topic"], "t1");
            }
            r.commit(&b);
        }
        out
    }

    #[test]
    fn tails_follows_rename_and_resumes_from_position_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("app.log"), b"a\r\nbb\npartial").unwrap();
        std::fs::write(d.join("other.txt"), b"x\n").unwrap();
        let mut r = reader(d, &[]);
        assert_eq!(drain(&mut r), vec!["a@0", "bb@3"]);
        // Rotation by rename: the old inode is read to its end, the new file from 0.
        std::fs::OpenOptions::new()
            .append(true)
            .open(d.join("app.log"))
            .unwrap();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(d.join("app.log"))
                .unwrap();
            f.write_all(b"-end\n").unwrap();
        }
        std::fs::rename(d.join("app.log"), d.join("app.log.1")).unwrap();
        std::fs::write(d.join("app.log"), b"new\n").unwrap();
        let got = drain(&mut r);
        assert!(got.contains(&"partial-end@6".to_string()), "{got:?}");
        assert!(got.contains(&"new@0".to_string()), "{got:?}");
        let json = r.positions_json();
        assert!(json.starts_with("[{\"inode\":"), "{json}");
        assert!(
            json.contains(&format!(
                "\"pos\":4,\"file\":\"{}\"",
                d.join("app.log").display()
            )),
            "{json}"
        );
        // Restart from the position file: nothing is read again.
        write_positions(&r.config.position_file, &json).unwrap();
        let mut r2 = reader(d, &[]);
        assert!(drain(&mut r2).is_empty());
        std::fs::write(d.join("app.log"), b"new\nmore\n").unwrap();
        assert_eq!(drain(&mut r2), vec!["more@4"]);
    }
}
