//! Broker configuration: Kafka's `server.properties` keys.
//!
//! [`BrokerConfig::from_properties`] takes the key/value pairs of a properties file (after
//! `--override`s were applied) and returns the typed configuration. Unknown keys are returned
//! as warnings; invalid values are an error naming the key and the value, so the broker
//! refuses to start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flumen_log::TimestampType;

use crate::error::{BrokerError, Result};

/// Kafka's `message.max.bytes` default: 1 MiB plus 12 bytes of log overhead.
pub const DEFAULT_MESSAGE_MAX_BYTES: u32 = 1_048_588;
/// Seven days in milliseconds (Kafka's default retention and roll time).
pub const SEVEN_DAYS_MS: i64 = 7 * 24 * 3600 * 1000;

/// A listener address as written in `listeners` (`PLAINTEXT://host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Host name or address; empty means all interfaces.
    pub host: String,
    /// TCP port; 0 picks a free one.
    pub port: u16,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The broker's configuration, with Kafka's key names in each field's doc.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// `listeners`: where to accept connections. Default `PLAINTEXT://localhost:9092`
    /// (Flumen's default; Kafka binds all interfaces).
    pub listener: Listener,
    /// `advertised.listeners`: the address given to clients in Metadata. Default: the listener
    /// address, with an empty or wildcard host replaced by `127.0.0.1`.
    pub advertised_listener: Option<Listener>,
    /// `log.dirs` (first entry) or `log.dir`: where partition logs and metadata live.
    /// Default `./flumen-data` (Flumen's default).
    pub log_dir: PathBuf,
    /// `node.id` or `broker.id`: this broker's id. Default 1.
    pub node_id: i32,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    /// Default 1 (Kafka's).
    pub num_partitions: i32,
    /// `default.replication.factor`: only 1 is valid on a single node. Default 1.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`: create unknown topics on Metadata/Produce. Default true.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`: allow DeleteTopics. Default true (Kafka's).
    pub delete_topic_enable: bool,
    /// `log.retention.ms` (else `log.retention.minutes`, else `log.retention.hours`):
    /// default 7 days (Kafka's 168 hours); -1 keeps forever.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`: per-partition size limit. Default -1 (none).
    pub log_retention_bytes: i64,
    /// `log.segment.bytes`: segment size before rolling. Default 1 GiB (Kafka's).
    pub log_segment_bytes: u64,
    /// `log.roll.ms` (else `log.roll.hours`): segment age before rolling. Default 7 days.
    pub log_roll_ms: i64,
    /// `log.retention.check.interval.ms`: how often retention runs. Default 300000 (5 min).
    pub log_retention_check_interval_ms: u64,
    /// `log.flush.interval.messages`: fsync after this many messages. Default none
    /// (Kafka's Long.MAX: rely on the page cache).
    pub log_flush_interval_messages: Option<u64>,
    /// `log.flush.interval.ms`: fsync data older than this. Default none (Kafka's).
    pub log_flush_interval_ms: Option<u64>,
    /// `log.flush.scheduler.interval.ms`: how often the flusher checks `flush.ms`.
    /// Default 1000 here (Kafka's Long.MAX disables it; we run it when flush.ms is set).
    pub log_flush_scheduler_interval_ms: u64,
    /// `message.max.bytes`: the largest record batch accepted. Default 1048588 (Kafka's).
    pub message_max_bytes: u32,
    /// `socket.request.max.bytes`: the largest request frame. Default 104857600 (100 MiB).
    pub socket_request_max_bytes: u32,
    /// `log.message.timestamp.type`: CreateTime or LogAppendTime. Default CreateTime.
    pub log_message_timestamp_type: TimestampType,
    /// `fetch.max.bytes`: broker cap on a Fetch response. Default 57671680 (55 MiB, Kafka's).
    pub fetch_max_bytes: u32,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listener: Listener {
                host: "localhost".into(),
                port: 9092,
            },
            advertised_listener: None,
            log_dir: PathBuf::from("./flumen-data"),
            node_id: 1,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            log_retention_ms: SEVEN_DAYS_MS,
            log_retention_bytes: -1,
            log_segment_bytes: 1 << 30,
            log_roll_ms: SEVEN_DAYS_MS,
            log_retention_check_interval_ms: 300_000,
            log_flush_interval_messages: None,
            log_flush_interval_ms: None,
            log_flush_scheduler_interval_ms: 1000,
            message_max_bytes: DEFAULT_MESSAGE_MAX_BYTES,
            socket_request_max_bytes: 104_857_600,
            log_message_timestamp_type: TimestampType::CreateTime,
            fetch_max_bytes: 57_671_680,
        }
    }
}

/// Kafka broker keys that are accepted and ignored (they have no meaning on one node or are
/// not implemented yet); they do not trigger the unknown-key warning.
const IGNORED_KEYS: &[&str] = &[
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "offsets.topic.replication.factor",
    "offsets.topic.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "group.initial.rebalance.delay.ms",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "min.insync.replicas",
    "log.cleaner.enable",
    "log.cleanup.policy",
    "compression.type",
    "unclean.leader.election.enable",
    "log.index.interval.bytes",
    "log.index.size.max.bytes",
];

/// Every key the broker understands (besides [`IGNORED_KEYS`]).
const KNOWN_KEYS: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "log.dir",
    "node.id",
    "broker.id",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "delete.topic.enable",
    "log.retention.hours",
    "log.retention.minutes",
    "log.retention.ms",
    "log.retention.bytes",
    "log.segment.bytes",
    "log.roll.hours",
    "log.roll.ms",
    "log.retention.check.interval.ms",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.flush.scheduler.interval.ms",
    "message.max.bytes",
    "socket.request.max.bytes",
    "log.message.timestamp.type",
    "fetch.max.bytes",
];

/// Parses a Java properties text into ordered key/value pairs (comments `#`/`!`, separators
/// `=`, `:` or whitespace, trailing-backslash continuation lines).
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = if logical.is_empty() {
            raw.trim_start()
        } else {
            raw.trim()
        };
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let sep = entry.find(['=', ':', ' ', '\t']);
        let (key, value) = match sep {
            Some(i) => {
                let rest = entry[i..].trim_start_matches([' ', '\t']);
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                (entry[..i].trim().to_string(), rest.trim().to_string())
            }
            None => (entry.trim().to_string(), String::new()),
        };
        if !key.is_empty() {
            out.push((key, value));
        }
    }
    out
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> BrokerError {
    BrokerError::InvalidConfig {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| invalid(key, value, "not a valid number"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "expected true or false")),
    }
}

/// Parses `PLAINTEXT://host:port` (the first entry of a comma list).
pub fn parse_listener(key: &str, value: &str) -> Result<Listener> {
    let first = value.split(',').next().unwrap_or("").trim();
    let addr = match first.split_once("://") {
        Some((proto, rest)) => {
            let proto = proto.to_ascii_uppercase();
            if proto != "PLAINTEXT" && proto != "TCP" {
                return Err(invalid(
                    key,
                    value,
                    "only PLAINTEXT listeners are supported",
                ));
            }
            rest
        }
        None => first,
    };
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| invalid(key, value, "expected [ipv6]:port"))?;
        (h.to_string(), p)
    } else {
        let (h, p) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, "expected host:port"))?;
        (h.to_string(), p)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(key, value, "the port is not a number in 0..65535"))?;
    Ok(Listener { host, port })
}

/// Parses a non-negative flush interval; Kafka's Long.MAX (or any value ≥ 2^62) means never.
fn parse_flush(key: &str, value: &str) -> Result<Option<u64>> {
    let n: i64 = parse_num(key, value)?;
    if n < 1 {
        return Err(invalid(key, value, "must be at least 1"));
    }
    Ok(if n >= (1 << 62) { None } else { Some(n as u64) })
}

/// Parses a timestamp type name.
pub fn parse_timestamp_type(key: &str, value: &str) -> Result<TimestampType> {
    match value.trim() {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        _ => Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
    }
}

impl BrokerConfig {
    /// Reads a properties file (if any) and applies `key=value` overrides on top.
    /// Returns the configuration and the unknown keys (to be warned about).
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<(BrokerConfig, Vec<String>)> {
        let mut pairs = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| BrokerError::ConfigFile {
                        path: path.display().to_string(),
                        source,
                    })?;
                parse_properties(&text)
            }
            None => Vec::new(),
        };
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| invalid("--override", o, "expected key=value"))?;
            pairs.push((k.trim().to_string(), v.trim().to_string()));
        }
        Self::from_properties(&pairs)
    }

    /// Builds the configuration from key/value pairs (later pairs win).
    pub fn from_properties(pairs: &[(String, String)]) -> Result<(BrokerConfig, Vec<String>)> {
        let map: BTreeMap<&str, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut c = BrokerConfig::default();
        let mut unknown = Vec::new();
        for key in map.keys() {
            if !KNOWN_KEYS.contains(key) && !IGNORED_KEYS.contains(key) {
                unknown.push(key.to_string());
            }
        }
        let get = |k: &str| map.get(k).copied();
        if let Some(v) = get("listeners") {
            c.listener = parse_listener("listeners", v)?;
        }
        if let Some(v) = get("advertised.listeners") {
            let l = parse_listener("advertised.listeners", v)?;
            if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                return Err(invalid(
                    "advertised.listeners",
                    v,
                    "clients cannot connect to a wildcard address",
                ));
            }
            c.advertised_listener = Some(l);
        }
        if let Some(v) = get("log.dirs").or(get("log.dir")) {
            let first = v.split(',').next().unwrap_or("").trim();
            if first.is_empty() {
                return Err(invalid("log.dirs", v, "empty path"));
            }
            c.log_dir = PathBuf::from(first);
        }
        for key in ["broker.id", "node.id"] {
            if let Some(v) = get(key) {
                let id: i32 = parse_num(key, v)?;
                if id < 0 {
                    return Err(invalid(key, v, "must be 0 or more"));
                }
                c.node_id = id;
            }
        }
        if let Some(v) = get("num.partitions") {
            c.num_partitions = parse_num("num.partitions", v)?;
            if c.num_partitions < 1 {
                return Err(invalid("num.partitions", v, "must be at least 1"));
            }
        }
        if let Some(v) = get("default.replication.factor") {
            let rf: i16 = parse_num("default.replication.factor", v)?;
            if rf != 1 {
                return Err(invalid(
                    "default.replication.factor",
                    v,
                    "only 1 is valid: this broker is a single node",
                ));
            }
        }
        if let Some(v) = get("auto.create.topics.enable") {
            c.auto_create_topics_enable = parse_bool("auto.create.topics.enable", v)?;
        }
        if let Some(v) = get("delete.topic.enable") {
            c.delete_topic_enable = parse_bool("delete.topic.enable", v)?;
        }
        let retention = if let Some(v) = get("log.retention.ms") {
            Some(parse_num::<i64>("log.retention.ms", v)?)
        } else if let Some(v) = get("log.retention.minutes") {
            Some(parse_num::<i64>("log.retention.minutes", v)?.saturating_mul(60_000))
        } else if let Some(v) = get("log.retention.hours") {
            Some(parse_num::<i64>("log.retention.hours", v)?.saturating_mul(3_600_000))
        } else {
            None
        };
        if let Some(r) = retention {
            if r < -1 || r == 0 {
                return Err(invalid(
                    "log.retention.ms",
                    &r.to_string(),
                    "must be -1 (forever) or positive",
                ));
            }
            c.log_retention_ms = r;
        }
        if let Some(v) = get("log.retention.bytes") {
            c.log_retention_bytes = parse_num("log.retention.bytes", v)?;
            if c.log_retention_bytes < -1 {
                return Err(invalid("log.retention.bytes", v, "must be -1 or more"));
            }
        }
        if let Some(v) = get("log.segment.bytes") {
            c.log_segment_bytes = parse_num("log.segment.bytes", v)?;
            if c.log_segment_bytes < 14 || c.log_segment_bytes > i32::MAX as u64 {
                return Err(invalid(
                    "log.segment.bytes",
                    v,
                    "must be between 14 and 2147483647",
                ));
            }
        }
        let roll = if let Some(v) = get("log.roll.ms") {
            Some(parse_num::<i64>("log.roll.ms", v)?)
        } else if let Some(v) = get("log.roll.hours") {
            Some(parse_num::<i64>("log.roll.hours", v)?.saturating_mul(3_600_000))
        } else {
            None
        };
        if let Some(r) = roll {
            if r < 1 {
                return Err(invalid("log.roll.ms", &r.to_string(), "must be positive"));
            }
            c.log_roll_ms = r;
        }
        if let Some(v) = get("log.retention.check.interval.ms") {
            c.log_retention_check_interval_ms = parse_num("log.retention.check.interval.ms", v)?;
            if c.log_retention_check_interval_ms < 1 {
                return Err(invalid(
                    "log.retention.check.interval.ms",
                    v,
                    "must be positive",
                ));
            }
        }
        if let Some(v) = get("log.flush.interval.messages") {
            c.log_flush_interval_messages = parse_flush("log.flush.interval.messages", v)?;
        }
        if let Some(v) = get("log.flush.interval.ms") {
            c.log_flush_interval_ms = parse_flush("log.flush.interval.ms", v)?;
        }
        if let Some(v) = get("log.flush.scheduler.interval.ms") {
            c.log_flush_scheduler_interval_ms = parse_num("log.flush.scheduler.interval.ms", v)?;
            if c.log_flush_scheduler_interval_ms < 1 {
                return Err(invalid(
                    "log.flush.scheduler.interval.ms",
                    v,
                    "must be positive",
                ));
            }
        }
        if let Some(v) = get("message.max.bytes") {
            c.message_max_bytes = parse_num("message.max.bytes", v)?;
            if c.message_max_bytes < 61 {
                return Err(invalid(
                    "message.max.bytes",
                    v,
                    "must be at least 61 (one batch header)",
                ));
            }
        }
        if let Some(v) = get("socket.request.max.bytes") {
            c.socket_request_max_bytes = parse_num("socket.request.max.bytes", v)?;
            if c.socket_request_max_bytes < 64 {
                return Err(invalid(
                    "socket.request.max.bytes",
                    v,
                    "must be at least 64",
                ));
            }
        }
        if let Some(v) = get("log.message.timestamp.type") {
            c.log_message_timestamp_type = parse_timestamp_type("log.message.timestamp.type", v)?;
        }
        if let Some(v) = get("fetch.max.bytes") {
            c.fetch_max_bytes = parse_num("fetch.max.bytes", v)?;
            if c.fetch_max_bytes < 1024 {
                return Err(invalid("fetch.max.bytes", v, "must be at least 1024"));
            }
        }
        Ok((c, unknown))
    }

    /// The host and port given to clients.
    pub fn advertised(&self, bound_port: u16) -> Listener {
        match &self.advertised_listener {
            Some(l) => Listener {
                host: l.host.clone(),
                port: if l.port == 0 { bound_port } else { l.port },
            },
            None => {
                let host = match self.listener.host.as_str() {
                    "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
                    h => h.to_string(),
                };
                Listener {
                    host,
                    port: bound_port,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_serve_localhost_9092_in_flumen_data() {
        let (c, unknown) = BrokerConfig::from_properties(&[]).unwrap();
        assert_eq!(
            c.listener,
            Listener {
                host: "localhost".into(),
                port: 9092
            }
        );
        assert_eq!(c.log_dir, PathBuf::from("./flumen-data"));
        assert!(unknown.is_empty());
    }

    #[test]
    fn properties_parser_handles_separators_comments_and_continuations() {
        let text = "# comment\n! other\nlisteners = PLAINTEXT://127.0.0.1:9093\nlog.dirs:/tmp/a\nnum.partitions 3\nlong.key=a,\\\n   b\n";
        let p = parse_properties(text);
        assert_eq!(
            p,
            pairs(&[
                ("listeners", "PLAINTEXT://127.0.0.1:9093"),
                ("log.dirs", "/tmp/a"),
                ("num.partitions", "3"),
                ("long.key", "a,b"),
            ])
        );
    }

    #[test]
    fn unknown_keys_are_reported_and_invalid_values_refused() {
        let (c, unknown) =
            BrokerConfig::from_properties(&pairs(&[("num.partitions", "4"), ("no.such.key", "1")]))
                .unwrap();
        assert_eq!(c.num_partitions, 4);
        assert_eq!(unknown, vec!["no.such.key".to_string()]);
        let err = BrokerConfig::from_properties(&pairs(&[("num.partitions", "many")])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("num.partitions") && msg.contains("many"),
            "{msg}"
        );
        let err = BrokerConfig::from_properties(&pairs(&[("default.replication.factor", "3")]))
            .unwrap_err();
        assert!(err.to_string().contains("single node"));
    }

    #[test]
    fn retention_precedence_is_ms_then_minutes_then_hours() {
        let (c, _) = BrokerConfig::from_properties(&pairs(&[
            ("log.retention.hours", "1"),
            ("log.retention.minutes", "2"),
        ]))
        .unwrap();
        assert_eq!(c.log_retention_ms, 120_000);
        let (c, _) = BrokerConfig::from_properties(&pairs(&[
            ("log.retention.hours", "1"),
            ("log.retention.ms", "5"),
        ]))
        .unwrap();
        assert_eq!(c.log_retention_ms, 5);
    }

    #[test]
    fn overrides_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(&path, "num.partitions=2\nlisteners=PLAINTEXT://:9099\n").unwrap();
        let (c, _) = BrokerConfig::load(Some(&path), &["num.partitions=7".to_string()]).unwrap();
        assert_eq!(c.num_partitions, 7);
        assert_eq!(
            c.listener,
            Listener {
                host: "".into(),
                port: 9099
            }
        );
        assert_eq!(c.advertised(9099).host, "127.0.0.1");
    }
}
