//! `file_roll`: writes events to files in a directory, starting a new file every
//! `sink.rollInterval` seconds (Flume's `RollingFileSink`).
//!
//! File names: `<prefix><T>-<n>[.<ext>]` with T the epoch ms when the sink was configured
//! and n = 1, 2, … per roll (`DEFAULT` path manager), or `<prefix><yyyyMMddHHmmss>-<n>`
//! (`ROLLTIME`). A batch is serialized on the runtime thread, written and flushed on a
//! blocking thread, and only then is the take committed.
//!
//! Serializers and compression are the hdfs sink's ([`crate::sink::hdfs::format`]):
//! `sink.serializer` = `TEXT`, `header_and_text` or `avro_event` (an Avro container file per
//! file), and, a Flumen extension, `sink.codeC` = `gzip` or `snappy` compresses each file
//! as the hdfs sink's `CompressedStream` does (one compressed member per batch).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BoxFuture, Sink, Status};
use crate::channel::MemoryChannel;
use crate::config::types::{self, Resolved, SerializerType};
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::monitoring::{now_ms, CounterGroup, SINK_COUNTERS};
use crate::sink::hdfs::format::{Codec, Encoder, FileType, FormatConfig, WriteFormat};

/// How file names are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathManager {
    /// `DEFAULT`: `<prefix><configure ms>-<n>`.
    Default,
    /// `ROLLTIME`: `<prefix><yyyyMMddHHmmss>-<n>` (UTC).
    RollTime,
}

/// Settings of the `file_roll` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRollConfig {
    /// `sink.directory`: where files are written. Required; must exist.
    pub directory: PathBuf,
    /// `sink.rollInterval`: seconds per file; 0 = never roll. Flume's default: 30.
    pub roll_interval: Duration,
    /// `sink.serializer`: `text`, `header_and_text` or `avro_event`. Flume's default: `TEXT`.
    pub serializer: SerializerType,
    /// `sink.codeC`: `gzip` or `snappy` (Hadoop's framing), a Flumen extension sharing the
    /// hdfs sink's `CompressedStream` code. Default: none.
    pub codec: Option<Codec>,
    /// `sink.serializer.appendNewline`: end each event with `\n`. Flume's default: true.
    pub append_newline: bool,
    /// `sink.batchSize`: events per transaction. Flume's default: 100.
    pub batch_size: usize,
    /// `sink.pathManager`. Flume's default: `DEFAULT`.
    pub path_manager: PathManager,
    /// `sink.pathManager.prefix`. Flume's default: empty.
    pub prefix: String,
    /// `sink.pathManager.extension`. Flume's default: empty (no extension); with
    /// `sink.codeC`, the codec's (`gz`, `snappy`).
    pub extension: String,
}

impl FileRollConfig {
    fn format(&self) -> FormatConfig {
        FormatConfig {
            file_type: if self.codec.is_some() {
                FileType::CompressedStream
            } else {
                FileType::DataStream
            },
            codec: self.codec,
            write_format: WriteFormat::Writable,
            serializer: self.serializer,
            append_newline: self.append_newline,
        }
    }
}

impl FileRollConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let directory = PathBuf::from(ctx.require("sink.directory")?);
        let ser = ctx.string("sink.serializer", "TEXT");
        let serializer = match types::serializer(&ser) {
            Resolved::Builtin(s) => s,
            other => return Err(ctx.error("sink.serializer", types::describe(&other, &ser))),
        };
        let pm = ctx.string("sink.pathManager", "DEFAULT");
        let path_manager = match pm.to_ascii_uppercase().as_str() {
            "DEFAULT" => PathManager::Default,
            "ROLLTIME" => PathManager::RollTime,
            _ => {
                return Err(ctx.error(
                    "sink.pathManager",
                    format!("`{pm}` is not one of DEFAULT, ROLLTIME"),
                ))
            }
        };
        let codec = match ctx
            .get("sink.codeC")
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(v) => Some(Codec::parse(v).ok_or_else(|| {
                ctx.error(
                    "sink.codeC",
                    format!("`{v}` is not one of gzip, bzip2, snappy"),
                )
            })?),
        };
        let extension = match (ctx.string("sink.pathManager.extension", ""), codec) {
            (e, Some(c)) if e.is_empty() => c.extension().trim_start_matches('.').to_string(),
            (e, _) => e,
        };
        let batch_size = ctx.number::<usize>("sink.batchSize", 100)?;
        if batch_size == 0 {
            return Err(ctx.error("sink.batchSize", "must be at least 1"));
        }
        Ok(FileRollConfig {
            directory,
            roll_interval: Duration::from_secs(ctx.number("sink.rollInterval", 30)?),
            serializer,
            codec,
            append_newline: ctx.boolean("sink.serializer.appendNewline", true),
            batch_size,
            path_manager,
            prefix: ctx.string("sink.pathManager.prefix", ""),
            extension,
        })
    }

    /// Checks the directory and creates the sink (the first file opens on first use).
    pub fn build(self, name: &str, channel: Arc<MemoryChannel>) -> Result<FileRollSink> {
        let meta = std::fs::metadata(&self.directory).map_err(|source| FlowError::Start {
            component: format!("sink {name}"),
            message: format!(
                "sink.directory {} is not accessible",
                self.directory.display()
            ),
            source,
        })?;
        if !meta.is_dir() {
            return Err(FlowError::Start {
                component: format!("sink {name}"),
                message: format!(
                    "sink.directory {} is not a directory",
                    self.directory.display()
                ),
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            });
        }
        let format = self.format();
        Ok(FileRollSink {
            name: name.to_string(),
            channel,
            seed: now_ms(),
            config: self,
            file_index: 0,
            last_stamp: String::new(),
            writer: None,
            opened: Instant::now(),
            encoder: Encoder::new(&format),
            counter: Arc::new(CounterGroup::new("SINK", name, SINK_COUNTERS)),
        })
    }
}

/// A running `file_roll` sink.
pub struct FileRollSink {
    name: String,
    channel: Arc<MemoryChannel>,
    config: FileRollConfig,
    seed: i64,
    file_index: u64,
    last_stamp: String,
    writer: Option<std::io::BufWriter<std::fs::File>>,
    opened: Instant,
    /// Encodes the open file's batches (a new one per file).
    encoder: Encoder,
    counter: Arc<CounterGroup>,
}

impl FileRollSink {
    fn next_path(&mut self) -> PathBuf {
        let stamp = match self.config.path_manager {
            PathManager::Default => self.seed.to_string(),
            PathManager::RollTime => rolltime_stamp(),
        };
        if stamp != self.last_stamp {
            if self.config.path_manager == PathManager::RollTime {
                self.file_index = 0;
            }
            self.last_stamp = stamp.clone();
        }
        self.file_index += 1;
        let mut name = format!("{}{}-{}", self.config.prefix, stamp, self.file_index);
        if !self.config.extension.is_empty() {
            name.push('.');
            name.push_str(&self.config.extension);
        }
        self.config.directory.join(name)
    }

    /// Writes `buf` (opening or rolling the file first if needed) off the runtime.
    async fn write(&mut self, roll: bool, buf: Vec<u8>) -> std::io::Result<()> {
        let next = if self.writer.is_none() || roll {
            Some(self.next_path())
        } else {
            None
        };
        let mut writer = self.writer.take();
        let (writer, result, opened) = tokio::task::spawn_blocking(move || {
            let mut opened = false;
            let r = (|| {
                if let Some(path) = next {
                    if let Some(mut w) = writer.take() {
                        w.flush()?;
                    }
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?;
                    writer = Some(std::io::BufWriter::with_capacity(256 * 1024, f));
                    opened = true;
                }
                let w = writer.as_mut().expect("opened above");
                w.write_all(&buf)?;
                w.flush()
            })();
            (writer, r, opened)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.writer = writer;
        if opened {
            self.opened = Instant::now();
            self.counter.add("ConnectionCreatedCount", 1);
            if roll {
                self.counter.add("ConnectionClosedCount", 1);
            }
        }
        result
    }
}

fn rolltime_stamp() -> String {
    let secs = now_ms() / 1000;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since epoch (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl Sink for FileRollSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn channel(&self) -> &Arc<MemoryChannel> {
        &self.channel
    }
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }
    fn process(&mut self) -> BoxFuture<'_, Result<Status>> {
        Box::pin(async move {
            let roll = self.writer.is_some()
                && !self.config.roll_interval.is_zero()
                && self.opened.elapsed() >= self.config.roll_interval;
            let mut tx = self.channel.transaction();
            let n = tx.take_batch(self.config.batch_size).await?;
            self.counter.add("EventDrainAttemptCount", n as i64);
            if roll || self.writer.is_none() {
                self.encoder = Encoder::new(&self.config.format());
            }
            for e in tx.taken() {
                self.encoder.append(e, 0);
            }
            let component = format!("sink {}", self.name);
            let io_err = |source| FlowError::Io {
                component: component.clone(),
                message: "Failed to process transaction".into(),
                source,
            };
            let buf = match self.encoder.finish_batch() {
                Ok(b) => b,
                Err(e) => return Err(io_err(e)),
            };
            if n > 0 || roll || self.writer.is_none() {
                let len = buf.len();
                let res = self.write(roll, buf).await;
                if let Err(e) = res {
                    let (pos, sync) = (self.encoder.position(), self.encoder.last_sync());
                    self.encoder.rewind(pos, sync);
                    self.counter.add("EventWriteFail", 1);
                    return Err(io_err(e)); // dropping tx rolls back
                }
                self.encoder.committed(len);
            }
            tx.commit().await?;
            let batch = self.config.batch_size;
            match n {
                0 => self.counter.add("BatchEmptyCount", 1),
                n if n < batch => self.counter.add("BatchUnderflowCount", 1),
                _ => self.counter.add("BatchCompleteCount", 1),
            }
            self.counter.add("EventDrainSuccessCount", n as i64);
            Ok(if n == 0 {
                Status::Backoff
            } else {
                Status::Ready
            })
        })
    }
    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(mut w) = self.writer.take() {
                let _ = tokio::task::spawn_blocking(move || w.flush()).await;
                self.counter.add("ConnectionClosedCount", 1);
            }
            self.counter.stop();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::MemoryChannelConfig;
    use crate::event::Event;

    #[tokio::test]
    async fn writes_text_and_header_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let ch = MemoryChannelConfig::default().build("c1");
        let mut tx = ch.transaction();
        let mut e = Event::new("hello");
        e.headers.insert("k".into(), "v".into());
        tx.put_all([e, Event::new("world")]).unwrap();
        tx.commit().await.unwrap();
        let ctx = Context::from_pairs(
            "sink k1",
            &[
                ("sink.directory", dir.path().to_str().unwrap()),
                ("sink.serializer", "header_and_text"),
            ],
        );
        let mut sink = FileRollConfig::from_context(&ctx)
            .unwrap()
            .build("k1", ch.clone())
            .unwrap();
        assert_eq!(sink.process().await.unwrap(), Status::Ready);
        sink.stop().await;
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with("-1"), "{name}");
        assert_eq!(
            std::fs::read_to_string(&files[0]).unwrap(),
            "{k=v} hello\n{} world\n"
        );
        assert_eq!(ch.len(), 0);
    }

    /// Two batches through the sink with `pairs`; the one file it wrote.
    async fn run_two_batches(pairs: &[(&str, &str)]) -> (String, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let ch = MemoryChannelConfig::default().build("c1");
        let d = dir.path().to_str().unwrap().to_string();
        let mut all = vec![("sink.directory", d.as_str()), ("sink.batchSize", "2")];
        all.extend_from_slice(pairs);
        let ctx = Context::from_pairs("sink k1", &all);
        let mut sink = FileRollConfig::from_context(&ctx)
            .unwrap()
            .build("k1", ch.clone())
            .unwrap();
        for batch in [["a", "b"], ["c", "d"]] {
            let mut tx = ch.transaction();
            tx.put_all(batch.iter().map(|b| Event::new(*b))).unwrap();
            tx.commit().await.unwrap();
            assert_eq!(sink.process().await.unwrap(), Status::Ready);
        }
        sink.stop().await;
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        (name, std::fs::read(&files[0]).unwrap())
    }

    #[tokio::test]
    async fn gzip_and_avro_share_the_hdfs_encoders() {
        use std::io::Read as _;
        let (name, data) = run_two_batches(&[("sink.codeC", "gzip")]).await;
        assert!(name.ends_with("-1.gz"), "{name}");
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a\nb\nc\nd\n");
        let (name, data) = run_two_batches(&[
            ("sink.serializer", "avro_event"),
            ("sink.pathManager.extension", "avro"),
        ])
        .await;
        assert!(name.ends_with("-1.avro"), "{name}");
        assert_eq!(&data[..4], b"Obj\x01");
        let sync = &data[data.len() - 16..];
        // Header sync + one block per batch, each ending with the file's sync marker.
        assert_eq!(data.windows(16).filter(|w| *w == sync).count(), 3);
        let bad = Context::from_pairs("sink k1", &[("sink.directory", "/"), ("sink.codeC", "lzo")]);
        assert!(FileRollConfig::from_context(&bad).is_err());
    }

    #[test]
    fn missing_directory_is_a_config_error() {
        let ctx = Context::from_pairs("sink k1", &[]);
        let err = FileRollConfig::from_context(&ctx).unwrap_err().to_string();
        assert!(err.contains("sink k1: property `sink.directory`"), "{err}");
        assert_eq!(rolltime_stamp().len(), 14);
    }
}
