//! `flumen console-producer` (`kafka-console-producer.sh`): one record per line of stdin.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use super::{kafka_bool, usage};

/// Arguments of `flumen console-producer`, spelled as `kafka-console-producer.sh` spells them.
#[derive(clap::Args, Debug, Default)]
pub struct ConsoleProducerArgs {
    /// The Kafka server to connect to (HOST:PORT[,HOST:PORT…]).
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Legacy spelling of --bootstrap-server (Kafka < 2.5).
    #[arg(long = "broker-list", value_name = "HOST:PORT")]
    pub broker_list: Option<String>,
    /// The topic to produce to.
    #[arg(long)]
    pub topic: Option<String>,
    /// Send each record and wait for its acknowledgement before reading the next line.
    #[arg(long)]
    pub sync: bool,
    /// Compression: none, gzip, snappy, lz4 or zstd (the flag alone means gzip).
    #[arg(long = "compression-codec", num_args = 0..=1, default_missing_value = "gzip")]
    pub compression_codec: Option<String>,
    /// `batch.size` (default 16384).
    #[arg(long = "batch-size")]
    pub batch_size: Option<u64>,
    /// `acks`: -1/all (default), 1 or 0.
    #[arg(long = "request-required-acks", allow_hyphen_values = true)]
    pub request_required_acks: Option<String>,
    /// `request.timeout.ms` (default 1500).
    #[arg(long = "request-timeout-ms")]
    pub request_timeout_ms: Option<u64>,
    /// `retries` (default 3).
    #[arg(long = "message-send-max-retries")]
    pub message_send_max_retries: Option<u64>,
    /// `retry.backoff.ms` (default 100).
    #[arg(long = "retry-backoff-ms")]
    pub retry_backoff_ms: Option<u64>,
    /// `linger.ms` (default 1000, Kafka's console-producer default).
    #[arg(long = "timeout")]
    pub timeout: Option<u64>,
    /// `metadata.max.age.ms` (default 300000).
    #[arg(long = "metadata-expiry-ms")]
    pub metadata_expiry_ms: Option<u64>,
    /// Accepted for compatibility (Java's `max.block.ms`).
    #[arg(long = "max-block-ms")]
    pub max_block_ms: Option<u64>,
    /// Accepted for compatibility (Java's `buffer.memory`).
    #[arg(long = "max-memory-bytes")]
    pub max_memory_bytes: Option<u64>,
    /// `batch.size` (legacy name).
    #[arg(long = "max-partition-memory-bytes")]
    pub max_partition_memory_bytes: Option<u64>,
    /// `socket.send.buffer.bytes` (default 102400).
    #[arg(long = "socket-buffer-size")]
    pub socket_buffer_size: Option<u64>,
    /// A producer property `key=value` (repeatable; wins over --producer.config).
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_property: Vec<String>,
    /// A producer properties file.
    #[arg(long = "producer.config", value_name = "FILE")]
    pub producer_config: Option<std::path::PathBuf>,
    /// A line-reader property `key=value` (repeatable): parse.key, key.separator,
    /// parse.headers, headers.delimiter, headers.separator, headers.key.separator,
    /// null.marker, ignore.error.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub property: Vec<String>,
    /// A line-reader properties file.
    #[arg(long = "reader-config", value_name = "FILE")]
    pub reader_config: Option<std::path::PathBuf>,
    /// Only Kafka's default line reader exists here; other classes are refused.
    #[arg(long = "line-reader")]
    pub line_reader: Option<String>,
    /// How long to wait for the cluster before giving up (default $FLUMEN_CONNECT_TIMEOUT_MS,
    /// else 5000).
    #[arg(long = "connect-timeout-ms", value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
}

/// How lines become records (Kafka's `LineMessageReader` properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// `parse.key` (default false).
    pub parse_key: bool,
    /// `key.separator` (default TAB).
    pub key_separator: String,
    /// `parse.headers` (default false).
    pub parse_headers: bool,
    /// `headers.delimiter` (default TAB): ends the headers section.
    pub headers_delimiter: String,
    /// `headers.separator` (default `,`): between headers.
    pub headers_separator: String,
    /// `headers.key.separator` (default `:`): between a header's key and value.
    pub headers_key_separator: String,
    /// `null.marker` (default none): a key, value or header value equal to it is null.
    pub null_marker: Option<String>,
    /// `ignore.error` (default false): a line without a separator becomes the value.
    pub ignore_error: bool,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            parse_key: false,
            key_separator: "\t".into(),
            parse_headers: false,
            headers_delimiter: "\t".into(),
            headers_separator: ",".into(),
            headers_key_separator: ":".into(),
            null_marker: None,
            ignore_error: false,
        }
    }
}

impl ReaderConfig {
    /// Builds the reader config from `--property` pairs, validating it as Kafka does.
    pub fn from_properties(props: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut c = ReaderConfig::default();
        for (k, v) in props {
            match k.as_str() {
                "parse.key" => c.parse_key = kafka_bool(Some(v)),
                "key.separator" => c.key_separator = v.clone(),
                "parse.headers" => c.parse_headers = kafka_bool(Some(v)),
                "headers.delimiter" => c.headers_delimiter = v.clone(),
                "headers.separator" => c.headers_separator = v.clone(),
                "headers.key.separator" => c.headers_key_separator = v.clone(),
                "null.marker" => c.null_marker = Some(v.clone()),
                "ignore.error" => c.ignore_error = kafka_bool(Some(v)),
                other => {
                    return usage(format!(
                        "Unknown reader property '{other}' (known: parse.key, key.separator, \
                         parse.headers, headers.delimiter, headers.separator, \
                         headers.key.separator, null.marker, ignore.error)"
                    ))
                }
            }
        }
        if c.parse_headers && c.headers_separator == c.headers_key_separator {
            return usage("headers.separator and headers.key.separator must differ");
        }
        if let Some(m) = &c.null_marker {
            if m == &c.key_separator || m == &c.headers_separator || m == &c.headers_key_separator {
                return usage("null.marker must differ from the separators");
            }
        }
        Ok(c)
    }

    fn nullable(&self, s: &str) -> Option<Vec<u8>> {
        if self.null_marker.as_deref() == Some(s) {
            None
        } else {
            Some(s.as_bytes().to_vec())
        }
    }
}

/// One record read from a line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineRecord {
    /// The key (None = null).
    pub key: Option<Vec<u8>>,
    /// The value (None = null).
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Splits one input line into a record, as Kafka's `LineMessageReader` does.
pub fn parse_line(line: &str, line_number: usize, c: &ReaderConfig) -> anyhow::Result<LineRecord> {
    let mut rest = line;
    let mut record = LineRecord::default();
    if c.parse_headers {
        match rest.split_once(c.headers_delimiter.as_str()) {
            Some((headers, tail)) => {
                rest = tail;
                for h in headers
                    .split(c.headers_separator.as_str())
                    .filter(|h| !h.is_empty())
                {
                    match h.split_once(c.headers_key_separator.as_str()) {
                        Some((k, v)) => record.headers.push((k.to_string(), c.nullable(v))),
                        None => record.headers.push((h.to_string(), None)),
                    }
                }
            }
            None if c.ignore_error => {}
            None => {
                anyhow::bail!("No headers delimiter found on line number {line_number}: '{line}'")
            }
        }
    }
    if c.parse_key {
        match rest.split_once(c.key_separator.as_str()) {
            Some((k, v)) => {
                record.key = c.nullable(k);
                record.value = c.nullable(v);
            }
            None if c.ignore_error => record.value = c.nullable(rest),
            None => anyhow::bail!("No key separator found on line number {line_number}: '{line}'"),
        }
    } else {
        record.value = c.nullable(rest);
    }
    Ok(record)
}

/// Logs delivery failures as Kafka's console producer does, and keeps going.
struct ConsoleContext;

impl ClientContext for ConsoleContext {}

impl ProducerContext for ConsoleContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            use rdkafka::Message;
            let key = message
                .key()
                .map_or("null".to_string(), |k| format!("{} bytes", k.len()));
            let value = message
                .payload()
                .map_or("null".to_string(), |v| format!("{} bytes", v.len()));
            eprintln!(
                "ERROR Error when sending message to topic {} with key: {key}, value: {value} with error: {error}",
                message.topic()
            );
        }
    }
}

/// Producer properties from the flags, over `--producer.config`, under `--producer-property`.
fn producer_properties(args: &ConsoleProducerArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let mut p = BTreeMap::new();
    // Kafka's console-producer defaults.
    p.insert("client.id".into(), "console-producer".into());
    p.insert("acks".into(), "-1".into());
    p.insert("request.timeout.ms".into(), "1500".into());
    p.insert("retries".into(), "3".into());
    p.insert("linger.ms".into(), "1000".into());
    if let Some(path) = &args.producer_config {
        p.extend(super::read_properties_file(path)?);
    }
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            p.insert(k.to_string(), v);
        }
    };
    set("compression.type", args.compression_codec.clone());
    set(
        "batch.size",
        args.batch_size
            .or(args.max_partition_memory_bytes)
            .map(|v| v.to_string()),
    );
    set("acks", args.request_required_acks.clone());
    set(
        "request.timeout.ms",
        args.request_timeout_ms.map(|v| v.to_string()),
    );
    set(
        "retries",
        args.message_send_max_retries.map(|v| v.to_string()),
    );
    set(
        "retry.backoff.ms",
        args.retry_backoff_ms.map(|v| v.to_string()),
    );
    set("linger.ms", args.timeout.map(|v| v.to_string()));
    set(
        "metadata.max.age.ms",
        args.metadata_expiry_ms.map(|v| v.to_string()),
    );
    set(
        "socket.send.buffer.bytes",
        args.socket_buffer_size.map(|v| v.to_string()),
    );
    for kv in &args.producer_property {
        let (k, v) = super::parse_key_value(kv)?;
        p.insert(k, v);
    }
    Ok(p)
}

/// Runs the tool.
pub fn run(args: ConsoleProducerArgs) -> anyhow::Result<()> {
    let Some(topic) = args.topic.clone() else {
        return usage("Missing required argument \"[topic]\"");
    };
    if let Some(reader) = &args.line_reader {
        if !reader.ends_with("LineMessageReader") {
            return usage(format!(
                "Unsupported --line-reader {reader}: only Kafka's line reader is built in"
            ));
        }
    }
    let bootstrap = super::resolve_bootstrap(
        args.bootstrap_server.as_deref(),
        args.broker_list.as_deref(),
        None,
    )?;
    let reader_props =
        super::properties_with_overrides(args.reader_config.as_deref(), &args.property)?;
    let reader = ReaderConfig::from_properties(&reader_props)?;
    let props = producer_properties(&args)?;
    let timeout = super::connect_timeout(args.connect_timeout_ms);
    let producer: ThreadedProducer<ConsoleContext> = super::client_config(&bootstrap, &props)
        .create_with_context(ConsoleContext)
        .map_err(|e| anyhow::anyhow!("invalid producer configuration: {e}"))?;
    super::check_reachable(producer.client(), &bootstrap, timeout)?;
    // A producer's metadata request lets the broker auto-create the topic, as Kafka does.
    let md = producer
        .client()
        .fetch_metadata(Some(&topic), timeout)
        .map_err(|e| super::unreachable(&bootstrap, timeout, e))?;
    if md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .is_none_or(|t| t.error().is_some() || t.partitions().is_empty())
    {
        anyhow::bail!(
            "topic '{topic}' does not exist (create it with kafka-topics.sh --create --topic {topic})"
        );
    }

    // Lines are read on a helper thread so that Ctrl-C (handled here) still flushes what was
    // typed, as Kafka's shutdown hook does.
    let interrupted = super::interrupt_flag();
    let lines = spawn_line_reader(std::io::stdin().is_terminal());
    let mut line_number = 0usize;
    let mut failed = false;
    // After Ctrl-C, the lines already read from stdin are still sent (Kafka reads and sends
    // each line on one thread, so a line it has read is never dropped): the reader hands
    // over what it holds without blocking, so a short wait per line suffices. Bounded by
    // the channel's capacity.
    let mut drain_left = 1024usize;
    loop {
        let draining = interrupted.load(std::sync::atomic::Ordering::SeqCst);
        if draining {
            if drain_left == 0 {
                break;
            }
            drain_left -= 1;
        }
        let wait = Duration::from_millis(if draining { 50 } else { 100 });
        let line = match lines.recv_timeout(wait) {
            Ok(line) => line.context("cannot read stdin")?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !draining => continue,
            Err(_) => break,
        };
        line_number += 1;
        let record = match parse_line(&line, line_number, &reader) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                failed = true;
                break;
            }
        };
        send(&producer, &topic, &record)?;
        if args.sync {
            producer
                .flush(Duration::from_secs(120))
                .context("the record was not acknowledged")?;
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("records were still unacknowledged when the producer closed")?;
    if failed {
        return Err(super::Reported.into());
    }
    Ok(())
}

/// Reads stdin line by line (without the line ending) on a helper thread, printing the `>`
/// prompt first when stdin is a terminal. The channel closes at end of input.
fn spawn_line_reader(interactive: bool) -> std::sync::mpsc::Receiver<std::io::Result<String>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    let _ = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            loop {
                if interactive {
                    print!(">");
                    let _ = std::io::stdout().flush();
                }
                let mut line = String::new();
                match input.read_line(&mut line) {
                    Ok(0) => return,
                    Ok(_) => {
                        if line.ends_with('\n') {
                            line.pop();
                            if line.ends_with('\r') {
                                line.pop();
                            }
                        }
                        if tx.send(Ok(line)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
    rx
}

fn send(
    producer: &ThreadedProducer<ConsoleContext>,
    topic: &str,
    record: &LineRecord,
) -> anyhow::Result<()> {
    let mut pending = BaseRecord::to(topic);
    if let Some(v) = &record.value {
        pending = pending.payload(v);
    }
    if let Some(k) = &record.key {
        pending = pending.key(k);
    }
    if !record.headers.is_empty() {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (k, v) in &record.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        pending = pending.headers(headers);
    }
    loop {
        match producer.send(pending) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                pending = back;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err((e, _)) => anyhow::bail!("cannot send to topic {topic}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_line_is_the_value() {
        let r = parse_line("hello world", 1, &ReaderConfig::default()).unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"hello world"[..]));
    }

    #[test]
    fn parse_key_splits_at_first_separator() {
        let c =
            ReaderConfig::from_properties(&props(&[("parse.key", "true"), ("key.separator", ":")]))
                .unwrap();
        let r = parse_line("k1:v:1", 1, &c).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v:1"[..]));
        let err = parse_line("novalue", 7, &c).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No key separator found on line number 7: 'novalue'"
        );
    }

    #[test]
    fn ignore_error_and_null_marker() {
        let c = ReaderConfig::from_properties(&props(&[
            ("parse.key", "true"),
            ("ignore.error", "true"),
            ("null.marker", "NULL"),
        ]))
        .unwrap();
        let r = parse_line("whole line", 1, &c).unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"whole line"[..]));
        let r = parse_line("k\tNULL", 2, &c).unwrap();
        assert_eq!(r.value, None);
    }

    #[test]
    fn headers_then_key_then_value() {
        let c = ReaderConfig::from_properties(&props(&[
            ("parse.key", "true"),
            ("parse.headers", "true"),
        ]))
        .unwrap();
        let r = parse_line("h1:v1,h2:v2\tkey\tvalue", 1, &c).unwrap();
        assert_eq!(
            r.headers,
            vec![
                ("h1".to_string(), Some(b"v1".to_vec())),
                ("h2".to_string(), Some(b"v2".to_vec()))
            ]
        );
        assert_eq!(r.key.as_deref(), Some(&b"key"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"value"[..]));
    }

    #[test]
    fn unknown_reader_property_is_refused() {
        assert!(ReaderConfig::from_properties(&props(&[("parse.keys", "true")])).is_err());
    }

    #[test]
    fn flags_map_to_producer_properties() {
        let args = ConsoleProducerArgs {
            compression_codec: Some("gzip".into()),
            request_required_acks: Some("1".into()),
            producer_property: vec!["linger.ms=5".into()],
            ..Default::default()
        };
        let p = producer_properties(&args).unwrap();
        assert_eq!(p["compression.type"], "gzip");
        assert_eq!(p["acks"], "1");
        assert_eq!(p["linger.ms"], "5");
        assert_eq!(p["client.id"], "console-producer");
    }
}
