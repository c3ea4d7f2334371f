//! `spooldir`: ingests the files dropped into a directory, line by line, then marks each
//! one done (renames it with `fileSuffix`, deletes it, or records it in `trackerDir`)
//! (Flume's `SpoolDirectorySource` with the LINE deserializer).
//!
//! Where Flume's source dies (a file modified after pick-up, or a completed name re-used),
//! Flumen quarantines the file (renames it to `<name>.QUARANTINED`), logs an error naming
//! the file and the rule, and carries on with the next file. A batch is re-read and
//! retried when the channel refuses it (250 ms doubling to `maxBackoff`), and a file is
//! marked done only after its last batch was committed (at-least-once). The read position is
//! kept in memory only: after a restart a half-read file is read again from its start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use regex::Regex;
use tokio_util::sync::CancellationToken;

use super::{sleep_or_shutdown, BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::monitoring::{CounterGroup, SOURCE_COUNTERS};

/// Name of the file in `trackerDir` holding the committed position of the file being
/// ingested (`<byte offset>\t<path>`), so a restart resumes where the last batch was committed.
pub const POSITION_FILE: &str = ".flumen-spool-position";

/// Records the committed position crash-safely: written to a temporary file, then renamed
/// over the position file, so a kill at any moment leaves either the old or the new position
/// (a truncate-and-write could leave an empty file, and the whole file would be read again).
fn write_position(position_file: &Path, line: &str) -> std::io::Result<()> {
    let tmp = position_file.with_extension("tmp");
    std::fs::write(&tmp, line)?;
    std::fs::rename(&tmp, position_file)
}

fn read_position(position_file: &Path, path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(position_file).ok()?;
    let (pos, p) = text.trim_end_matches('\n').split_once('\t')?;
    (Path::new(p) == path).then(|| pos.parse().ok()).flatten()
}

/// Suffix given to files that break the spooling rules.
pub const QUARANTINE_SUFFIX: &str = ".QUARANTINED";

/// What happens to a file once fully ingested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Rename to `<name><fileSuffix>` (deletePolicy=never, trackingPolicy=rename).
    Rename,
    /// Delete (deletePolicy=immediate).
    Delete,
    /// Create `<trackerDir>/<name><fileSuffix>` (trackingPolicy=tracker_dir).
    TrackerDir,
}

/// Order in which files are picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOrder {
    /// Oldest modification time first (ties: smaller name). Flume's default.
    Oldest,
    /// Youngest first.
    Youngest,
    /// Any order.
    Random,
}

/// Settings of the `spooldir` source.
#[derive(Debug, Clone)]
pub struct SpoolDirConfig {
    /// `spoolDir`: the directory. Required; must exist.
    pub spool_dir: PathBuf,
    /// `fileSuffix`. Flume's default: `.COMPLETED`.
    pub file_suffix: String,
    /// From `deletePolicy` (`never`/`immediate`, Flume's default `never`) and
    /// `trackingPolicy` (`rename`/`tracker_dir`, default `rename`).
    pub completion: Completion,
    /// `trackerDir`, relative to spoolDir when not absolute. Flume's default: `.flumespool`.
    pub tracker_dir: PathBuf,
    /// `fileHeaderKey` when `fileHeader=true` (absolute path header). Flume's default: off,
    /// key `file`.
    pub file_header: Option<String>,
    /// `basenameHeaderKey` when `basenameHeader=true`. Flume's default: off, key `basename`.
    pub basename_header: Option<String>,
    /// `includePattern` (whole-name match). Flume's default: `^.*$`.
    pub include: Regex,
    /// `ignorePattern` (whole-name match; wins over include). Flume's default: `^$`.
    pub ignore: Regex,
    /// `consumeOrder`. Flume's default: `oldest`.
    pub consume_order: ConsumeOrder,
    /// `pollDelay` ms between scans. Flume's default: 500.
    pub poll_delay: Duration,
    /// `recursiveDirectorySearch`. Flume's default: false.
    pub recursive: bool,
    /// `maxBackoff` ms, cap of the retry sleep when the channel refuses. Flume's default: 4000.
    pub max_backoff: Duration,
    /// `batchSize`. Flume's default: 100.
    pub batch_size: usize,
    /// `deserializer.maxLineLength` (or the deprecated `bufferMaxLineLength`): the longest
    /// event, in bytes; longer lines are cut. Flume's default: 2048 (characters).
    pub max_line_length: usize,
}

fn whole(ctx: &Context, key: &str, default: &str) -> Result<Regex> {
    let src = ctx.get(key).unwrap_or(default);
    Regex::new(&format!("^(?:{src})$"))
        .map_err(|e| ctx.error(key, format!("invalid regex `{src}`: {e}")))
}

impl SpoolDirConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let spool_dir = PathBuf::from(ctx.require("spoolDir")?);
        let delete = ctx.string("deletePolicy", "never").to_ascii_lowercase();
        let tracking = ctx.string("trackingPolicy", "rename").to_ascii_lowercase();
        let completion = match (delete.as_str(), tracking.as_str()) {
            ("immediate", _) => Completion::Delete,
            ("never", "rename") => Completion::Rename,
            ("never", "tracker_dir") => Completion::TrackerDir,
            ("never", other) => {
                return Err(ctx.error(
                    "trackingPolicy",
                    format!("`{other}` is not one of rename, tracker_dir"),
                ))
            }
            (other, _) => {
                return Err(ctx.error(
                    "deletePolicy",
                    format!("`{other}` is not one of never, immediate"),
                ))
            }
        };
        let tracker = PathBuf::from(ctx.string("trackerDir", ".flumespool"));
        let tracker_dir = if tracker.is_absolute() {
            tracker
        } else {
            spool_dir.join(tracker)
        };
        let consume_order = match ctx
            .string("consumeOrder", "oldest")
            .to_ascii_lowercase()
            .as_str()
        {
            "oldest" => ConsumeOrder::Oldest,
            "youngest" => ConsumeOrder::Youngest,
            "random" => ConsumeOrder::Random,
            other => {
                return Err(ctx.error(
                    "consumeOrder",
                    format!("`{other}` is not one of oldest, youngest, random"),
                ))
            }
        };
        let deser = ctx.string("deserializer", "LINE");
        if !deser.eq_ignore_ascii_case("LINE")
            && deser != "org.apache.flume.serialization.LineDeserializer$Builder"
        {
            return Err(ctx.error(
                "deserializer",
                format!("`{deser}` is not supported (LINE only)"),
            ));
        }
        let charset = ctx.string("inputCharset", "UTF-8").to_ascii_uppercase();
        if !["UTF-8", "UTF8", "US-ASCII", "ISO-8859-1"].contains(&charset.as_str()) {
            return Err(ctx.error(
                "inputCharset",
                format!("`{charset}` is not supported (UTF-8 only)"),
            ));
        }
        let batch_size = ctx.number::<usize>("batchSize", 100)?;
        if batch_size == 0 {
            return Err(ctx.error("batchSize", "must be at least 1"));
        }
        let max_line_length = match ctx.get("deserializer.maxLineLength") {
            Some(_) => ctx.number("deserializer.maxLineLength", 2048)?,
            None => ctx.number("bufferMaxLineLength", 2048)?,
        };
        if max_line_length == 0 {
            return Err(ctx.error("deserializer.maxLineLength", "must be at least 1"));
        }
        Ok(SpoolDirConfig {
            spool_dir,
            file_suffix: ctx.string("fileSuffix", ".COMPLETED"),
            completion,
            tracker_dir,
            file_header: ctx
                .boolean("fileHeader", false)
                .then(|| ctx.string("fileHeaderKey", "file")),
            basename_header: ctx
                .boolean("basenameHeader", false)
                .then(|| ctx.string("basenameHeaderKey", "basename")),
            include: whole(ctx, "includePattern", "^.*$")?,
            ignore: whole(ctx, "ignorePattern", "^$")?,
            consume_order,
            poll_delay: Duration::from_millis(ctx.number("pollDelay", 500)?),
            recursive: ctx.boolean("recursiveDirectorySearch", false),
            max_backoff: Duration::from_millis(ctx.number("maxBackoff", 4000)?),
            batch_size,
            max_line_length,
        })
    }

    /// Checks the directory (exists, writable when files are renamed) and creates the
    /// tracker directory when used.
    pub fn build(self, name: &str) -> Result<SpoolDirSource> {
        let component = format!("source {name}");
        let err = |message: String, source| FlowError::Start {
            component: component.clone(),
            message,
            source,
        };
        let meta = std::fs::metadata(&self.spool_dir).map_err(|e| {
            err(
                format!("spoolDir {} is not readable", self.spool_dir.display()),
                e,
            )
        })?;
        if !meta.is_dir() {
            return Err(err(
                format!("spoolDir {} is not a directory", self.spool_dir.display()),
                std::io::Error::from(std::io::ErrorKind::NotADirectory),
            ));
        }
        if self.completion == Completion::Rename {
            let canary = self.spool_dir.join(format!(
                "flume-spooldir-perm-check-{}.canary",
                std::process::id()
            ));
            std::fs::write(&canary, b"testing flume file permissions\n")
                .and_then(|_| std::fs::remove_file(&canary))
                .map_err(|e| {
                    err(
                        format!(
                            "Unable to read and modify files in the spooling directory: {}",
                            self.spool_dir.display()
                        ),
                        e,
                    )
                })?;
        }
        std::fs::create_dir_all(&self.tracker_dir).map_err(|e| {
            err(
                format!("cannot create trackerDir {}", self.tracker_dir.display()),
                e,
            )
        })?;
        Ok(SpoolDirSource {
            name: name.to_string(),
            config: Arc::new(self),
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        })
    }
}

/// A running `spooldir` source.
pub struct SpoolDirSource {
    name: String,
    config: Arc<SpoolDirConfig>,
    counter: Arc<CounterGroup>,
}

#[derive(Debug, Clone)]
struct Candidate {
    path: PathBuf,
    mtime: SystemTime,
    size: u64,
}

/// Lists the files ready for ingestion, in consume order.
fn scan(cfg: &SpoolDirConfig) -> std::io::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let mut dirs = vec![cfg.spool_dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if cfg.recursive && !cfg.ignore.is_match(&name) {
                    dirs.push(entry.path());
                }
                continue;
            }
            if !meta.is_file()
                || name.ends_with(&cfg.file_suffix)
                || name.ends_with(QUARANTINE_SUFFIX)
                || name.ends_with(".canary")
                || !cfg.include.is_match(&name)
                || cfg.ignore.is_match(&name)
            {
                continue;
            }
            let path = entry.path();
            if cfg.completion == Completion::TrackerDir && tracker_marker(cfg, &path).exists() {
                continue;
            }
            out.push(Candidate {
                path,
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                size: meta.len(),
            });
        }
    }
    match cfg.consume_order {
        ConsumeOrder::Oldest | ConsumeOrder::Random => {
            out.sort_by(|a, b| a.mtime.cmp(&b.mtime).then(a.path.cmp(&b.path)))
        }
        ConsumeOrder::Youngest => {
            out.sort_by(|a, b| b.mtime.cmp(&a.mtime).then(a.path.cmp(&b.path)))
        }
    }
    Ok(out)
}

fn tracker_marker(cfg: &SpoolDirConfig, path: &Path) -> PathBuf {
    let rel = path.strip_prefix(&cfg.spool_dir).unwrap_or(path);
    let mut p = cfg.tracker_dir.join(rel).into_os_string();
    p.push(&cfg.file_suffix);
    PathBuf::from(p)
}

/// What happened to a file after its last event was committed.
#[derive(Debug)]
enum Outcome {
    Done(String),
    Quarantined(String),
}

/// Marks a fully ingested file done, or quarantines it when it breaks the rules.
fn complete(cfg: &SpoolDirConfig, file: &Candidate) -> std::io::Result<Outcome> {
    let meta = std::fs::metadata(&file.path)?;
    let rule = if meta.modified().unwrap_or(SystemTime::UNIX_EPOCH) != file.mtime {
        Some(format!(
            "File has been modified since being read: {}",
            file.path.display()
        ))
    } else if meta.len() != file.size {
        Some(format!(
            "File has changed size since being read: {}",
            file.path.display()
        ))
    } else {
        None
    };
    let target = match cfg.completion {
        Completion::Rename => {
            let mut t = file.path.clone().into_os_string();
            t.push(&cfg.file_suffix);
            Some(PathBuf::from(t))
        }
        Completion::TrackerDir => Some(tracker_marker(cfg, &file.path)),
        Completion::Delete => None,
    };
    let rule = rule.or_else(|| {
        target.as_ref().filter(|t| t.exists()).map(|t| {
            format!(
                "File name has been re-used with different files. Spooling assumptions violated for {}",
                t.display()
            )
        })
    });
    if let Some(rule) = rule {
        let mut q = file.path.clone().into_os_string();
        q.push(QUARANTINE_SUFFIX);
        let mut q = PathBuf::from(q);
        let mut i = 1;
        while q.exists() {
            let mut p = file.path.clone().into_os_string();
            p.push(format!(".{i}{QUARANTINE_SUFFIX}"));
            q = PathBuf::from(p);
            i += 1;
        }
        std::fs::rename(&file.path, &q)?;
        return Ok(Outcome::Quarantined(format!(
            "{rule}; the file was moved to {} and spooling continues with the next file",
            q.display()
        )));
    }
    match (cfg.completion, target) {
        (Completion::Delete, _) => {
            std::fs::remove_file(&file.path)?;
            Ok(Outcome::Done(format!("deleted {}", file.path.display())))
        }
        (Completion::TrackerDir, Some(t)) => {
            if let Some(parent) = t.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(&t)?;
            Ok(Outcome::Done(format!(
                "marked {} done in {}",
                file.path.display(),
                t.display()
            )))
        }
        (_, Some(t)) => {
            std::fs::rename(&file.path, &t)?;
            Ok(Outcome::Done(format!(
                "Preparing to move file {} to {}",
                file.path.display(),
                t.display()
            )))
        }
        (_, None) => unreachable!("rename always has a target"),
    }
}

/// Reads a file in large chunks (the next chunk is read ahead on a blocking thread while
/// the current one is cut into events) and cuts lines out of them without copying.
struct LineReader {
    /// Bytes of the file consumed by the lines returned so far.
    consumed: u64,
    file: Option<std::fs::File>,
    pending: Option<tokio::task::JoinHandle<(std::fs::File, std::io::Result<Vec<u8>>)>>,
    buf: BytesMut,
    eof: bool,
    emitted_any: bool,
    max_line: usize,
}

const CHUNK: usize = 1 << 20;

impl LineReader {
    fn new(file: std::fs::File, max_line: usize) -> Self {
        LineReader {
            consumed: 0,
            file: Some(file),
            pending: None,
            buf: BytesMut::new(),
            eof: false,
            emitted_any: false,
            max_line,
        }
    }

    fn read_ahead(&mut self) {
        if let Some(mut file) = self.file.take() {
            self.pending = Some(tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let mut v = vec![0u8; CHUNK];
                let r = file.read(&mut v).map(|n| {
                    v.truncate(n);
                    v
                });
                (file, r)
            }));
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        self.read_ahead();
        let Some(pending) = self.pending.take() else {
            self.eof = true;
            return Ok(());
        };
        let (file, data) = pending.await.map_err(std::io::Error::other)?;
        let data = data?;
        if data.is_empty() {
            self.eof = true;
            return Ok(());
        }
        self.file = Some(file);
        self.read_ahead();
        self.buf.extend_from_slice(&data);
        Ok(())
    }

    /// Up to `max` next lines; empty when the file is exhausted.
    async fn next_lines(&mut self, max: usize, out: &mut Vec<Bytes>) -> std::io::Result<()> {
        while out.len() < max {
            let pos = memchr_nl(&self.buf[..self.buf.len().min(self.max_line + 1)]);
            match pos {
                Some(p) if p <= self.max_line => {
                    let line = self.buf.split_to(p + 1).freeze();
                    out.push(line.slice(..p));
                    self.consumed += p as u64 + 1;
                    self.emitted_any = true;
                }
                _ if self.buf.len() > self.max_line => {
                    tracing::warn!(
                        max = self.max_line,
                        "Line length exceeds max, truncating line!"
                    );
                    out.push(self.buf.split_to(self.max_line).freeze());
                    self.consumed += self.max_line as u64;
                    self.emitted_any = true;
                }
                _ if !self.eof => self.fill().await?,
                _ => {
                    if !self.buf.is_empty() || !self.emitted_any {
                        // Last line without newline; an empty file gives one empty event.
                        let rest = self.buf.split().freeze();
                        self.consumed += rest.len() as u64;
                        out.push(rest);
                        self.emitted_any = true;
                    }
                    break;
                }
            }
        }
        Ok(())
    }
}

fn memchr_nl(hay: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', hay)
}

impl Source for SpoolDirSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            while !shutdown.is_cancelled() {
                let cfg = self.config.clone();
                let files = match tokio::task::spawn_blocking(move || scan(&cfg)).await {
                    Ok(Ok(f)) => f,
                    Ok(Err(error)) => {
                        tracing::error!(source = %self.name, %error, dir = %self.config.spool_dir.display(), "Cannot list the spooling directory.");
                        Vec::new()
                    }
                    Err(_) => Vec::new(),
                };
                if files.is_empty() {
                    if !sleep_or_shutdown(self.config.poll_delay, &shutdown).await {
                        break;
                    }
                    continue;
                }
                for file in files {
                    if shutdown.is_cancelled() {
                        break;
                    }
                    if let Err(error) = self.ingest(&file, &processor, &shutdown).await {
                        self.counter.add("GenericProcessingFail", 1);
                        tracing::error!(source = %self.name, %error, file = %file.path.display(), "Could not ingest file; will retry.");
                        sleep_or_shutdown(self.config.poll_delay, &shutdown).await;
                        break;
                    }
                }
            }
            self.counter.stop();
        })
    }
}

impl SpoolDirSource {
    async fn ingest(
        &self,
        file: &Candidate,
        processor: &ChannelProcessor,
        shutdown: &CancellationToken,
    ) -> std::io::Result<()> {
        let cfg = &self.config;
        let path = file.path.clone();
        let position_file = cfg.tracker_dir.join(POSITION_FILE);
        let pf = position_file.clone();
        let (f, start) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            use std::io::Seek;
            let mut f = std::fs::File::open(&path)?;
            let start = read_position(&pf, &path)
                .filter(|&p| p <= f.metadata().map(|m| m.len()).unwrap_or(0));
            if let Some(pos) = start {
                f.seek(std::io::SeekFrom::Start(pos))?;
            }
            Ok((f, start))
        })
        .await
        .map_err(std::io::Error::other)??;
        let start = match start {
            Some(pos) => {
                tracing::info!(source = %self.name, file = %file.path.display(), pos, "Resuming file ingestion at its committed position.");
                pos
            }
            None => {
                tracing::info!(source = %self.name, file = %file.path.display(), "Opening file for ingestion.");
                0
            }
        };
        let mut reader = LineReader::new(f, cfg.max_line_length);
        if start > 0 {
            reader.emitted_any = true;
        }
        let abs = std::fs::canonicalize(&file.path)
            .unwrap_or_else(|_| file.path.clone())
            .display()
            .to_string();
        let base = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut lines = Vec::with_capacity(cfg.batch_size);
        loop {
            if shutdown.is_cancelled() {
                return Ok(()); // the committed position is saved: resumed at the next start
            }
            lines.clear();
            reader.next_lines(cfg.batch_size, &mut lines).await?;
            if lines.is_empty() {
                break;
            }
            let events: Vec<Event> = lines
                .iter()
                .map(|l| {
                    let mut e = Event::new(l.clone());
                    if let Some(k) = &cfg.file_header {
                        e.headers.insert(k.clone(), abs.clone());
                    }
                    if let Some(k) = &cfg.basename_header {
                        e.headers.insert(k.clone(), base.clone());
                    }
                    e
                })
                .collect();
            let n = events.len() as i64;
            self.counter.add("EventReceivedCount", n);
            self.counter.add("AppendBatchReceivedCount", 1);
            let mut backoff = Duration::from_millis(250);
            loop {
                match processor.process_batch(events.clone()).await {
                    Ok(()) => break,
                    Err(error) => {
                        self.counter.add("ChannelWriteFail", 1);
                        tracing::warn!(source = %self.name, %error, "The channel is full, and cannot write data now. The source will try again after {} ms", backoff.as_millis());
                        if !sleep_or_shutdown(backoff, shutdown).await {
                            return Ok(()); // uncommitted: the file is read again next time
                        }
                        backoff = (backoff * 2).min(cfg.max_backoff);
                    }
                }
            }
            self.counter.add("EventAcceptedCount", n);
            self.counter.add("AppendBatchAcceptedCount", 1);
            let (pf, line) = (
                position_file.clone(),
                format!("{}\t{}\n", start + reader.consumed, file.path.display()),
            );
            if let Ok(Err(error)) =
                tokio::task::spawn_blocking(move || write_position(&pf, &line)).await
            {
                tracing::warn!(source = %self.name, %error, "Cannot record the read position.");
            }
        }
        // Complete the file first, then forget its position: a kill in between leaves a
        // position naming a file that is no longer there, which is ignored; the other order
        // would read the whole file again.
        let cfg2 = cfg.clone();
        let f2 = file.clone();
        let outcome = tokio::task::spawn_blocking(move || complete(&cfg2, &f2))
            .await
            .map_err(std::io::Error::other)??;
        let pf = position_file.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(pf)).await;
        match outcome {
            Outcome::Done(msg) => tracing::info!(source = %self.name, "{msg}"),
            Outcome::Quarantined(msg) => {
                self.counter.add("GenericProcessingFail", 1);
                tracing::error!(source = %self.name, spool_dir = %cfg.spool_dir.display(), "{msg}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_cut_and_last_line_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"one\r\ntwo\n0123456789abc\nlast").unwrap();
        let mut r = LineReader::new(std::fs::File::open(&p).unwrap(), 10);
        let mut out = Vec::new();
        r.next_lines(100, &mut out).await.unwrap();
        assert_eq!(
            out,
            vec![
                Bytes::from("one\r"),
                "two".into(),
                "0123456789".into(),
                "abc".into(),
                "last".into()
            ]
        );
        let p = dir.path().join("empty");
        std::fs::write(&p, b"").unwrap();
        let mut r = LineReader::new(std::fs::File::open(&p).unwrap(), 10);
        let mut out = Vec::new();
        r.next_lines(100, &mut out).await.unwrap();
        assert_eq!(out, vec![Bytes::new()]);
    }

    #[test]
    fn scan_filters_and_orders() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.log", "a.log", "x.tmp", ".hidden", "c.log.COMPLETED"] {
            std::fs::write(dir.path().join(n), b"x\n").unwrap();
        }
        let ctx = Context::from_pairs(
            "source r1",
            &[
                ("spoolDir", dir.path().to_str().unwrap()),
                ("ignorePattern", r".*\.tmp"),
            ],
        );
        let cfg = SpoolDirConfig::from_context(&ctx).unwrap();
        let names: Vec<String> = scan(&cfg)
            .unwrap()
            .iter()
            .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["a.log", "b.log"]);
    }

    #[test]
    fn modified_file_is_quarantined_and_delete_policy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"x\n").unwrap();
        let ctx = Context::from_pairs("source r1", &[("spoolDir", dir.path().to_str().unwrap())]);
        let cfg = SpoolDirConfig::from_context(&ctx).unwrap();
        let c = scan(&cfg).unwrap().remove(0);
        std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        let f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        match complete(&cfg, &c).unwrap() {
            Outcome::Quarantined(m) => {
                assert!(m.contains("File has been modified since being read"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(dir.path().join("b.log"), b"y\n").unwrap();
        let ctx = Context::from_pairs(
            "source r1",
            &[
                ("spoolDir", dir.path().to_str().unwrap()),
                ("deletePolicy", "IMMEDIATE"),
            ],
        );
        let cfg = SpoolDirConfig::from_context(&ctx).unwrap();
        let c = scan(&cfg).unwrap().remove(0);
        assert!(matches!(complete(&cfg, &c).unwrap(), Outcome::Done(_)));
        assert!(!dir.path().join("b.log").exists());
        let ctx = Context::from_pairs(
            "source r1",
            &[("spoolDir", "/x"), ("deletePolicy", "sometimes")],
        );
        assert!(SpoolDirConfig::from_context(&ctx)
            .unwrap_err()
            .to_string()
            .contains("deletePolicy"));
    }

    #[tokio::test]
    async fn resumes_at_the_committed_position() {
        use crate::agent::{plan, start_with};
        use crate::config::Properties;
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(spool.join(".flumespool")).unwrap();
        let file = spool.join("a.log");
        std::fs::write(&file, b"one\ntwo\nthree\n").unwrap();
        std::fs::write(
            spool.join(".flumespool").join(POSITION_FILE),
            format!("4\t{}\n", file.display()),
        )
        .unwrap();
        let text = format!(
            "a1.sources = r1\na1.channels = c1\na1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {}\n\
             a1.sources.r1.channels = c1\na1.sources.r1.pollDelay = 10\na1.channels.c1.type = memory\n",
            spool.display()
        );
        let p = plan(&Properties::parse_str(&text, &Default::default()), "a1");
        let agent = start_with(&p, &Default::default(), &Default::default())
            .await
            .unwrap();
        // The source renames the file, then forgets its position: wait (bounded) for both.
        let position = spool.join(".flumespool").join(POSITION_FILE);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while (!spool.join("a.log.COMPLETED").exists() || position.exists())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let channels = agent.stop_for_reload().await;
        let mut tx = channels["c1"].transaction();
        tx.take_batch(10).await.unwrap();
        let bodies: Vec<_> = tx.taken().iter().map(|e| e.body.clone()).collect();
        assert_eq!(bodies, vec![Bytes::from("two"), Bytes::from("three")]);
        assert!(!spool.join(".flumespool").join(POSITION_FILE).exists());
    }

    #[test]
    fn reused_name_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"x\n").unwrap();
        std::fs::write(dir.path().join("a.log.COMPLETED"), b"old\n").unwrap();
        let ctx = Context::from_pairs("source r1", &[("spoolDir", dir.path().to_str().unwrap())]);
        let cfg = SpoolDirConfig::from_context(&ctx).unwrap();
        let c = scan(&cfg).unwrap().remove(0);
        match complete(&cfg, &c).unwrap() {
            Outcome::Quarantined(m) => assert!(m.contains("File name has been re-used"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(dir.path().join("a.log.QUARANTINED").exists());
    }
}
