//! The `hdfs` sink's properties (Flume's `HDFSEventSink.configure`), with Flume's defaults.

use std::time::Duration;

use jiff::tz::TimeZone;

use super::bucket_path::{EscapePattern, RoundUnit, Rounding, TimeResolver};
use super::format::{Codec, FileType, FormatConfig, WriteFormat};
use crate::config::types::{self, Resolved};
use crate::config::Context;
use crate::error::Result;

/// What to do with an event whose `timestamp` header is missing or not a number while the
/// path needs one (Flumen's `hdfs.missingTimestampPolicy`; Flume knows only `retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingTimestamp {
    /// `retry`: fail the batch and retry it, as Flume does (the sink is stuck until the
    /// event is removed); logged as a clear, rate-limited error naming the headers.
    Retry,
    /// `deadLetter`: write the event under `hdfs.deadLetterPath` and go on.
    DeadLetter,
    /// `localTime`: bucket the event by the sink's clock instead.
    LocalTime,
}

/// Settings of the `hdfs` sink.
#[derive(Debug, Clone)]
pub struct HdfsConfig {
    /// `hdfs.path`: the directory, with escapes. Required.
    pub path: String,
    /// `hdfs.filePrefix`, with escapes. Flume's default: `FlumeData`.
    pub file_prefix: String,
    /// `hdfs.fileSuffix`. Flume's default: empty (then the codec's extension, if any).
    pub file_suffix: String,
    /// `hdfs.inUsePrefix`: prefix while a file is open. Flume's default: empty.
    pub in_use_prefix: String,
    /// `hdfs.inUseSuffix`: suffix while a file is open. Flume's default: `.tmp`; empty when
    /// `hdfs.emptyInUseSuffix = true` (Flume's default: false).
    pub in_use_suffix: String,
    /// `hdfs.rollInterval`: seconds from file open to roll; 0 disables. Flume's default: 30.
    pub roll_interval: Duration,
    /// `hdfs.rollSize`: body bytes per file; 0 disables. Flume's default: 1024.
    pub roll_size: u64,
    /// `hdfs.rollCount`: events per file; 0 disables. Flume's default: 10.
    pub roll_count: u64,
    /// `hdfs.idleTimeout`: seconds without writes before a file is closed; 0 disables.
    /// Flume's default: 0.
    pub idle_timeout: Duration,
    /// `hdfs.batchSize`: events per transaction. Flume's default: 100.
    pub batch_size: usize,
    /// `hdfs.fileType`, `hdfs.codeC`, `hdfs.writeFormat`, `serializer`,
    /// `serializer.appendNewline`. Flume's defaults: SequenceFile, none, Writable, TEXT, true.
    pub format: FormatConfig,
    /// `hdfs.maxOpenFiles`: open buckets before the least recently used one is closed.
    /// Flume's default: 5000.
    pub max_open_files: usize,
    /// `hdfs.callTimeout`: milliseconds allowed per store operation. Flume's default: 30000.
    pub call_timeout: Duration,
    /// `hdfs.closeTries`: attempts to close/rename a file; 0 = until it works. Flume's
    /// default: 0.
    pub close_tries: u32,
    /// `hdfs.retryInterval`: seconds between close attempts. Flume's default: 180.
    pub retry_interval: Duration,
    /// `hdfs.round*`, `hdfs.timeZone` (default: the system zone), `hdfs.useLocalTimeStamp`
    /// (default false).
    pub time: TimeResolver,
    /// `hdfs.missingTimestampPolicy`: `retry` (default, Flume's behaviour), `deadLetter`,
    /// `localTime`.
    pub missing_timestamp: MissingTimestamp,
    /// `hdfs.deadLetterPath`: where `deadLetter` puts events. Default: `_deadletter` under the
    /// literal part of `hdfs.path`.
    pub dead_letter_path: String,
    /// Warnings found while reading (logged when the sink is built).
    pub warnings: Vec<String>,
}

impl HdfsConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let mut warnings = Vec::new();
        let path = ctx.require("hdfs.path")?.trim().to_string();
        EscapePattern::parse(&path).map_err(|e| ctx.error("hdfs.path", e.to_string()))?;
        let file_prefix = ctx.string("hdfs.filePrefix", "FlumeData");
        EscapePattern::parse(&file_prefix)
            .map_err(|e| ctx.error("hdfs.filePrefix", e.to_string()))?;
        let empty_in_use_suffix = ctx.boolean("hdfs.emptyInUseSuffix", false);
        let in_use_suffix = if empty_in_use_suffix {
            if ctx.get("hdfs.inUseSuffix").is_some() {
                warnings.push("hdfs.emptyInUseSuffix is true: hdfs.inUseSuffix is ignored".into());
            }
            String::new()
        } else {
            ctx.string("hdfs.inUseSuffix", ".tmp")
        };
        let batch_size = ctx.number::<usize>("hdfs.batchSize", 100)?;
        if batch_size == 0 {
            return Err(ctx.error("hdfs.batchSize", "must be greater than 0"));
        }
        let ft = ctx.string("hdfs.fileType", "SequenceFile");
        let file_type = match ft.trim() {
            "SequenceFile" => FileType::SequenceFile,
            "DataStream" => FileType::DataStream,
            "CompressedStream" => FileType::CompressedStream,
            other => {
                return Err(ctx.error(
                    "hdfs.fileType",
                    format!("`{other}` is not one of SequenceFile, DataStream, CompressedStream"),
                ))
            }
        };
        let codec = match ctx
            .get("hdfs.codeC")
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(v) => Some(Codec::parse(v).ok_or_else(|| {
                ctx.error(
                    "hdfs.codeC",
                    format!("codec `{v}` is not supported (supported: gzip, bzip2, snappy; lzo and lzop need the GPL hadoop-lzo native library and are not provided)"),
                )
            })?),
        };
        match (file_type, codec) {
            (FileType::DataStream, Some(_)) => {
                return Err(ctx.error(
                    "hdfs.codeC",
                    "a codec cannot be used with hdfs.fileType = DataStream (use CompressedStream)",
                ))
            }
            (FileType::CompressedStream, None) => {
                return Err(ctx.error(
                    "hdfs.codeC",
                    "hdfs.fileType = CompressedStream requires hdfs.codeC",
                ))
            }
            (FileType::SequenceFile, Some(_)) => {
                return Err(ctx.error(
                    "hdfs.codeC",
                    "compressed SequenceFiles are not supported yet (use CompressedStream, or no codec)",
                ))
            }
            _ => {}
        }
        let wf = ctx.string("hdfs.writeFormat", "Writable");
        let write_format = match wf.trim() {
            "Writable" => WriteFormat::Writable,
            "Text" => WriteFormat::Text,
            other => {
                return Err(ctx.error(
                    "hdfs.writeFormat",
                    format!("`{other}` is not one of Writable, Text"),
                ))
            }
        };
        let ser = ctx.string("serializer", "TEXT");
        let serializer = match types::serializer(&ser) {
            Resolved::Builtin(s) => s,
            other => return Err(ctx.error("serializer", types::describe(&other, &ser))),
        };
        let file_suffix = {
            let s = ctx.string("hdfs.fileSuffix", "");
            match (s.is_empty(), codec) {
                (true, Some(c)) => c.extension().to_string(),
                _ => s,
            }
        };
        // Rounding.
        let round = ctx.boolean("hdfs.round", false);
        let round_value = ctx.number::<u32>("hdfs.roundValue", 1)?;
        let unit = ctx.string("hdfs.roundUnit", "second");
        let unit = match unit.trim().to_ascii_lowercase().as_str() {
            "second" => Some(RoundUnit::Second),
            "minute" => Some(RoundUnit::Minute),
            "hour" => Some(RoundUnit::Hour),
            other => {
                warnings.push(format!(
                    "Rounding unit is not valid, please set one of minute, hour, or second. Rounding will be disabled (hdfs.roundUnit = `{other}`)"
                ));
                None
            }
        };
        if let Some(u) = unit {
            let max = if u == RoundUnit::Hour { 24 } else { 60 };
            if round && !(1..=max).contains(&round_value) {
                return Err(ctx.error(
                    "hdfs.roundValue",
                    format!("Round value must be > 0 and <= {max} (got {round_value})"),
                ));
            }
        }
        let rounding = match (round, unit) {
            (true, Some(unit)) => Some(Rounding {
                unit,
                value: round_value,
            }),
            _ => None,
        };
        let zone = match ctx.get("hdfs.timeZone").map(str::trim) {
            None | Some("") => TimeZone::system(),
            Some(z) => TimeZone::get(z)
                .map_err(|e| ctx.error("hdfs.timeZone", format!("unknown time zone `{z}`: {e}")))?,
        };
        let policy = ctx.string("hdfs.missingTimestampPolicy", "retry");
        let missing_timestamp = match policy.trim().to_ascii_lowercase().as_str() {
            "retry" => MissingTimestamp::Retry,
            "deadletter" => MissingTimestamp::DeadLetter,
            "localtime" => MissingTimestamp::LocalTime,
            other => {
                return Err(ctx.error(
                    "hdfs.missingTimestampPolicy",
                    format!("`{other}` is not one of retry, deadLetter, localTime"),
                ))
            }
        };
        let dead_letter_path = match ctx.get("hdfs.deadLetterPath") {
            Some(p) => p.trim().to_string(),
            None => {
                let lit = EscapePattern::parse(&path)
                    .map(|p| p.literal_prefix().to_string())
                    .unwrap_or_default();
                let root = match lit.rfind('/') {
                    Some(i) => &lit[..i],
                    None => "",
                };
                format!("{root}/_deadletter")
            }
        };
        if EscapePattern::parse(&dead_letter_path)
            .map(|p| p.needs_time())
            .unwrap_or(true)
        {
            return Err(ctx.error(
                "hdfs.deadLetterPath",
                "must not contain time escapes (its events have no usable timestamp)",
            ));
        }
        let close_tries = ctx.number::<i64>("hdfs.closeTries", 0)?.max(0) as u32;
        let retry_secs = ctx.number::<i64>("hdfs.retryInterval", 180)?;
        let config = HdfsConfig {
            path,
            file_prefix,
            file_suffix,
            in_use_prefix: ctx.string("hdfs.inUsePrefix", ""),
            in_use_suffix,
            roll_interval: Duration::from_secs(ctx.number::<u64>("hdfs.rollInterval", 30)?),
            roll_size: ctx.number::<u64>("hdfs.rollSize", 1024)?,
            roll_count: ctx.number::<u64>("hdfs.rollCount", 10)?,
            idle_timeout: Duration::from_secs(ctx.number::<u64>("hdfs.idleTimeout", 0)?),
            batch_size,
            format: FormatConfig {
                file_type,
                codec,
                write_format,
                serializer,
                append_newline: ctx.boolean("serializer.appendNewline", true),
            },
            max_open_files: ctx.number::<usize>("hdfs.maxOpenFiles", 5000)?.max(1),
            call_timeout: Duration::from_millis(ctx.number::<u64>("hdfs.callTimeout", 30000)?),
            // ≤ 0 means a single attempt in Flume.
            close_tries: if retry_secs <= 0 { 1 } else { close_tries },
            retry_interval: Duration::from_secs(retry_secs.max(0) as u64),
            time: TimeResolver {
                zone,
                rounding,
                use_local_time: ctx.boolean("hdfs.useLocalTimeStamp", false),
            },
            missing_timestamp,
            dead_letter_path,
            warnings,
        };
        let mut config = config;
        config.warnings.extend(config.tiny_file_warning());
        Ok(config)
    }

    /// A warning when the roll settings would make many tiny files (Flume's defaults do:
    /// 10 events or 1 KiB or 30 s per file).
    pub fn tiny_file_warning(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.roll_count > 0 && self.roll_count < 10_000 {
            why.push(format!("hdfs.rollCount = {} events", self.roll_count));
        }
        if self.roll_size > 0 && self.roll_size < 16 * 1024 * 1024 {
            why.push(format!("hdfs.rollSize = {} bytes", self.roll_size));
        }
        if why.is_empty() {
            return None;
        }
        Some(format!(
            "these roll settings make small files ({}): many small files burden an HDFS NameNode; consider hdfs.rollCount = 0 and hdfs.rollSize near the block size (134217728), with hdfs.rollInterval bounding the latency",
            why.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_flumes() {
        let ctx = Context::from_pairs("sink k1", &[("hdfs.path", "/flume/%y")]);
        let c = HdfsConfig::from_context(&ctx).unwrap();
        assert_eq!(c.file_prefix, "FlumeData");
        assert_eq!(c.in_use_suffix, ".tmp");
        assert_eq!(c.roll_interval, Duration::from_secs(30));
        assert_eq!((c.roll_size, c.roll_count, c.batch_size), (1024, 10, 100));
        assert_eq!(c.format.file_type, FileType::SequenceFile);
        assert_eq!(c.max_open_files, 5000);
        assert_eq!(c.call_timeout, Duration::from_millis(30000));
        assert_eq!(c.dead_letter_path, "/flume/_deadletter");
        assert!(c.tiny_file_warning().is_some());
    }

    #[test]
    fn invalid_combinations_are_rejected() {
        let err = |pairs: &[(&str, &str)]| {
            let mut all = vec![("hdfs.path", "/x")];
            all.extend_from_slice(pairs);
            HdfsConfig::from_context(&Context::from_pairs("sink k1", &all))
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(&[("hdfs.fileType", "DataStream"), ("hdfs.codeC", "gzip")]).contains("hdfs.codeC")
        );
        assert!(err(&[("hdfs.fileType", "CompressedStream")]).contains("requires hdfs.codeC"));
        assert!(err(&[
            ("hdfs.round", "true"),
            ("hdfs.roundValue", "61"),
            ("hdfs.roundUnit", "minute")
        ])
        .contains("hdfs.roundValue"));
        assert!(err(&[("hdfs.timeZone", "Nowhere/Special")]).contains("hdfs.timeZone"));
        assert!(err(&[("hdfs.batchSize", "0")]).contains("hdfs.batchSize"));
        let err = HdfsConfig::from_context(&Context::from_pairs("sink k1", &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hdfs.path"), "{err}");
        let ok = HdfsConfig::from_context(&Context::from_pairs(
            "sink k1",
            &[
                ("hdfs.path", "/x"),
                ("hdfs.fileType", "CompressedStream"),
                ("hdfs.codeC", "gzip"),
                ("hdfs.roundUnit", "day"),
                ("hdfs.round", "true"),
            ],
        ))
        .unwrap();
        assert_eq!(ok.file_suffix, ".gz");
        assert!(ok.time.rounding.is_none());
        assert!(ok.warnings.iter().any(|w| w.contains("Rounding unit")));
    }
}
