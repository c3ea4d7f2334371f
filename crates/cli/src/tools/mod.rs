//! Kafka's command-line tools (`kafka-topics.sh`, the console producer and consumer, …),
//! rebuilt as ordinary Kafka clients on `rdkafka`, so they work against Flumen and against
//! any Kafka cluster.
//!
//! Flags, legacy spellings and output texts follow Kafka's own tools (see
//! `kafka-tools-and-connect.md`): tutorials and grading scripts grep those texts, so they are
//! kept byte for byte. Each tool is one module; this one holds what they share: where the
//! cluster is (`--bootstrap-server` and the legacy spellings), how long to wait for it, client
//! property files, and the two error kinds the binary turns into exit code 1.

pub mod console_consumer;
pub mod console_producer;
pub mod consumer_groups;
pub mod consumer_perf;
pub mod install_links;
pub mod producer_perf;
pub mod topics;
pub mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::ClientConfig;

/// The bootstrap address that legacy `--zookeeper HOST:2181` stands for: the
/// `FLUMEN_BOOTSTRAP_SERVER` environment variable, else Kafka's `localhost:9092`.
pub fn default_bootstrap() -> String {
    std::env::var("FLUMEN_BOOTSTRAP_SERVER")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "localhost:9092".to_string())
}

/// How long a tool waits to reach the cluster before giving up with a clear message:
/// `--connect-timeout-ms`, else `FLUMEN_CONNECT_TIMEOUT_MS`, else 5000 ms (Flumen's default;
/// Kafka's tools have no such bound and may wait forever).
pub fn connect_timeout(flag: Option<u64>) -> Duration {
    let ms = flag
        .or_else(|| {
            std::env::var("FLUMEN_CONNECT_TIMEOUT_MS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(5000);
    Duration::from_millis(ms)
}

/// A usage error: the message is printed on stderr with a hint to `--help`, exit code 1
/// (Kafka prints the message and the usage text, and exits 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A failure the tool already reported in Kafka's words: exit code 1, nothing more printed.
#[derive(Debug)]
pub struct Reported;

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failure already reported")
    }
}

impl std::error::Error for Reported {}

/// Shorthand for returning a [`UsageError`].
pub fn usage<T>(message: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(message.into()).into())
}

/// Prints the one-line note for a legacy flag.
pub fn deprecation_note(flag: &str, instead: &str) {
    eprintln!("Note: {flag} is deprecated; use {instead} instead (accepted for old tutorials).");
}

/// Where the cluster is, from the modern flag and the legacy ones.
///
/// `--bootstrap-server` wins; `--broker-list HOST:PORT` is a real broker address;
/// `--zookeeper HOST:2181` names no broker, so it means [`default_bootstrap`]. Each legacy
/// flag prints a one-line deprecation note.
pub fn resolve_bootstrap(
    bootstrap_server: Option<&str>,
    broker_list: Option<&str>,
    zookeeper: Option<&str>,
) -> anyhow::Result<String> {
    if zookeeper.is_some() {
        deprecation_note("--zookeeper", "--bootstrap-server");
    }
    if broker_list.is_some() {
        deprecation_note("--broker-list", "--bootstrap-server");
    }
    if let Some(b) = bootstrap_server {
        return Ok(b.to_string());
    }
    if let Some(b) = broker_list {
        return Ok(b.to_string());
    }
    if zookeeper.is_some() {
        return Ok(default_bootstrap());
    }
    usage("Missing required argument \"[bootstrap-server]\"")
}

/// Parses `key=value` (the form of `--property`, `--config`, `--producer-property`, …).
pub fn parse_key_value(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => usage(format!(
            "Invalid property '{text}': expected the form key=value"
        )),
    }
}

/// Parses Java `.properties` text: `key=value` or `key: value` lines, `#`/`!` comments,
/// `\` line continuations.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let continued = line.ends_with('\\') && !line.ends_with("\\\\");
        if continued {
            pending.push_str(&line[..line.len() - 1]);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let key = entry[..split].trim().to_string();
        let value = entry.get(split + 1..).unwrap_or("").trim().to_string();
        if !key.is_empty() {
            out.insert(key, value);
        }
    }
    out
}

/// Reads a client properties file (`--command-config`, `--producer.config`, …).
pub fn read_properties_file(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read properties file {}", path.display()))?;
    Ok(parse_properties(&text))
}

/// How many of the flags are set (mutually exclusive actions and options are checked so).
pub fn count_set(flags: &[bool]) -> usize {
    flags.iter().filter(|f| **f).count()
}

/// A tool's client properties: the properties file if one is given (else none), then the
/// `key=value` overrides (`--property`, `--producer-property`, …) in order, later ones winning.
pub fn properties_with_overrides(
    file: Option<&Path>,
    overrides: &[String],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut props = match file {
        Some(path) => read_properties_file(path)?,
        None => BTreeMap::new(),
    };
    for kv in overrides {
        let (k, v) = parse_key_value(kv)?;
        props.insert(k, v);
    }
    Ok(props)
}

/// Java client properties that librdkafka spells differently, and those it has no use for
/// (`None`: dropped).
const JAVA_TO_LIBRDKAFKA: &[(&str, Option<&str>)] = &[
    ("key.serializer", None),
    ("value.serializer", None),
    ("key.deserializer", None),
    ("value.deserializer", None),
    ("max.block.ms", None),
    ("buffer.memory", None),
    ("delivery.timeout.ms", Some("message.timeout.ms")),
    ("send.buffer.bytes", Some("socket.send.buffer.bytes")),
    ("receive.buffer.bytes", Some("socket.receive.buffer.bytes")),
    (
        "max.partition.fetch.bytes",
        Some("max.partition.fetch.bytes"),
    ),
    ("partitioner.class", None),
    ("interceptor.classes", None),
];

/// Builds an rdkafka client configuration from Java-style client properties: known Java
/// spellings are translated, Java-only keys dropped, the rest passed through (librdkafka
/// rejects unknown names with a message naming the key).
pub fn client_config(bootstrap: &str, props: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in props {
        if key == "bootstrap.servers" {
            continue;
        }
        match JAVA_TO_LIBRDKAFKA.iter().find(|(java, _)| java == key) {
            Some((_, None)) => {}
            Some((_, Some(name))) => {
                config.set(*name, value);
            }
            None => {
                config.set(key, value);
            }
        }
    }
    config
}

/// librdkafka pauses a partition's fetching for `fetch.queue.backoff.ms` (default 1000 ms)
/// whenever a fetch leaves more than `queued.min.messages` records queued, so a consumer that
/// drains faster than that idles for the rest of each second; the Java consumer has no such
/// pause. Consumers default to 10 ms (a `--consumer-property` still overrides it).
pub fn consumer_defaults(props: &mut BTreeMap<String, String>) {
    props
        .entry("fetch.queue.backoff.ms".into())
        .or_insert_with(|| "10".into());
}

/// Explains an unreachable cluster, naming the address and the bound waited.
pub fn unreachable(bootstrap: &str, timeout: Duration, error: impl fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "could not reach a Kafka broker at {bootstrap} within {} ms ({error}). Is the broker \
         running? (wait longer with --connect-timeout-ms or FLUMEN_CONNECT_TIMEOUT_MS)",
        timeout.as_millis()
    )
}

/// Checks that the cluster answers a metadata request within `timeout`.
pub fn check_reachable<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    bootstrap: &str,
    timeout: Duration,
) -> anyhow::Result<rdkafka::metadata::Metadata> {
    client
        .fetch_metadata(None, timeout)
        .map_err(|e| unreachable(bootstrap, timeout, e))
}

/// Whether the cluster has a group coordinator (answers ListGroups). A broker without one
/// cannot run subscriptions; the tools then fall back to assigning partitions directly where
/// the user asked for no particular group.
pub fn groups_supported<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    timeout: Duration,
) -> bool {
    match client.fetch_group_list(None, timeout) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::UnsupportedFeature)
        ),
    }
}

/// Every partition of `topic` from the cluster metadata, at `offset`.
pub fn all_partitions(
    metadata: &rdkafka::metadata::Metadata,
    topic: &str,
    offset: rdkafka::Offset,
) -> anyhow::Result<rdkafka::TopicPartitionList> {
    let mut tpl = rdkafka::TopicPartitionList::new();
    if let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), offset)?;
        }
    }
    Ok(tpl)
}

/// A small runtime for awaiting rdkafka's admin futures on the tool's own thread.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A pseudo-random number in `0..bound` (for `console-consumer-NNNNN` group ids).
pub fn random_below(bound: u32) -> u32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) % bound.max(1)
}

/// Sets up a flag that becomes true on Ctrl-C or SIGTERM. The handlers are installed before
/// this returns (so an early Ctrl-C is never lost); a helper thread waits for them.
pub fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return flag;
    };
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        let _guard = rt.enter();
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(i), Ok(t)) => Some((i, t)),
            _ => None,
        }
    };
    let set = flag.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                #[cfg(unix)]
                {
                    let Some((mut int, mut term)) = signals else {
                        return std::future::pending::<()>().await;
                    };
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                #[cfg(not(unix))]
                {
                    let _ = tokio::signal::ctrl_c().await;
                }
            });
            set.store(true, Ordering::SeqCst);
        });
    flag
}

/// Parses a Kafka boolean property: true only if the text equals "true", ignoring case.
pub fn kafka_bool(value: Option<&String>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A one-line live progress bar, drawn on stdout only when it is a terminal (the perf tools
/// print Kafka's periodic lines instead when piped).
pub struct ProgressBar {
    enabled: bool,
    last_draw: std::time::Instant,
}

impl ProgressBar {
    /// A bar that draws only if stdout is a terminal and `wanted`.
    pub fn new(wanted: bool) -> Self {
        use std::io::IsTerminal;
        ProgressBar {
            enabled: wanted && std::io::stdout().is_terminal(),
            last_draw: std::time::Instant::now(),
        }
    }

    /// Whether the bar is shown (then the periodic lines are not).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Redraws the bar (at most five times a second).
    pub fn draw(&mut self, done: u64, total: u64, detail: &str) {
        use std::io::Write;
        if !self.enabled || self.last_draw.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last_draw = std::time::Instant::now();
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\r\x1b[K{}", progress_line(done, total, detail));
        let _ = out.flush();
    }

    /// Erases the bar so the final lines start on a clean line.
    pub fn clear(&mut self) {
        use std::io::Write;
        if self.enabled {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[K");
            let _ = out.flush();
        }
    }
}

/// The text of a progress bar: `[#####---------------]  25% 250/1000 <detail>`.
pub fn progress_line(done: u64, total: u64, detail: &str) -> String {
    const WIDTH: u64 = 30;
    let total = total.max(1);
    let done = done.min(total);
    let filled = (done * WIDTH / total) as usize;
    format!(
        "[{}{}] {:>3}% {done}/{total} {detail}",
        "#".repeat(filled),
        "-".repeat(WIDTH as usize - filled),
        done * 100 / total
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_bar_text() {
        assert_eq!(
            progress_line(250, 1000, "x"),
            "[#######-----------------------]  25% 250/1000 x"
        );
        assert!(progress_line(5, 0, "").contains("100%"));
    }

    use super::*;

    #[test]
    fn properties_parse_java_syntax() {
        let p = parse_properties(
            "# comment\n! other\nbootstrap.servers=localhost:9092\nacks : all\nlong=a,\\\n  b\n\n",
        );
        assert_eq!(p["bootstrap.servers"], "localhost:9092");
        assert_eq!(p["acks"], "all");
        assert_eq!(p["long"], "a,b");
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn key_value_needs_equals() {
        assert_eq!(
            parse_key_value("print.key=true").unwrap(),
            ("print.key".to_string(), "true".to_string())
        );
        assert_eq!(parse_key_value("a=b=c").unwrap().1, "b=c");
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn bootstrap_precedence() {
        assert_eq!(
            resolve_bootstrap(Some("h:1"), Some("h:2"), Some("z:2181")).unwrap(),
            "h:1"
        );
        assert_eq!(resolve_bootstrap(None, Some("h:2"), None).unwrap(), "h:2");
        assert!(resolve_bootstrap(None, None, None).is_err());
        let zk = resolve_bootstrap(None, None, Some("localhost:2181")).unwrap();
        assert_eq!(zk, default_bootstrap());
    }

    #[test]
    fn kafka_booleans() {
        assert!(kafka_bool(Some(&"TRUE".to_string())));
        assert!(!kafka_bool(Some(&"yes".to_string())));
        assert!(!kafka_bool(None));
    }

    #[test]
    fn java_properties_are_translated() {
        let mut props = BTreeMap::new();
        props.insert("key.serializer".to_string(), "x".to_string());
        props.insert("delivery.timeout.ms".to_string(), "1000".to_string());
        props.insert("acks".to_string(), "1".to_string());
        let c = client_config("h:1", &props);
        assert_eq!(c.get("key.serializer"), None);
        assert_eq!(c.get("message.timeout.ms"), Some("1000"));
        assert_eq!(c.get("acks"), Some("1"));
        assert_eq!(c.get("bootstrap.servers"), Some("h:1"));
    }
}
