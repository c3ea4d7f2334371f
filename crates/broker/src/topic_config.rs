//! Topic-level configuration: Kafka's topic config names, their defaults (from the broker
//! configuration, as Kafka's synonyms), validation, and the mapping to [`LogConfig`].

use std::collections::BTreeMap;

use flumen_log::{LogConfig, TimestampType};

use crate::config::{parse_timestamp_type, BrokerConfig};

/// Kafka's DescribeConfigs `config_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// BOOLEAN
    Boolean = 1,
    /// STRING
    String = 2,
    /// INT
    Int = 3,
    /// SHORT
    Short = 4,
    /// LONG
    Long = 5,
    /// DOUBLE
    Double = 6,
    /// LIST
    List = 7,
}

/// Kafka's DescribeConfigs `config_source` values.
pub mod source {
    /// DYNAMIC_TOPIC_CONFIG
    pub const DYNAMIC_TOPIC: i8 = 1;
    /// STATIC_BROKER_CONFIG
    pub const STATIC_BROKER: i8 = 4;
    /// DEFAULT_CONFIG
    pub const DEFAULT: i8 = 5;
}

/// One topic config Kafka lists.
#[derive(Debug)]
pub struct ConfigDef {
    /// Topic config name (`retention.ms`).
    pub name: &'static str,
    /// The broker key that supplies its default (`log.retention.ms`), if any.
    pub broker_key: Option<&'static str>,
    /// Value type.
    pub kind: ConfigType,
    /// Kafka's default when the broker key is not set.
    pub default: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";

/// Every topic config Kafka lists, in Kafka's order.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        broker_key: Some("log.cleanup.policy"),
        kind: ConfigType::List,
        default: "delete",
        doc: "delete or compact (compaction is not implemented: treated as delete)",
    },
    ConfigDef {
        name: "compression.type",
        broker_key: Some("compression.type"),
        kind: ConfigType::String,
        default: "producer",
        doc: "Batches are stored as the producer compressed them",
    },
    ConfigDef {
        name: "delete.retention.ms",
        broker_key: Some("log.cleaner.delete.retention.ms"),
        kind: ConfigType::Long,
        default: "86400000",
        doc: "How long tombstones are kept on compacted topics",
    },
    ConfigDef {
        name: "file.delete.delay.ms",
        broker_key: Some("log.segment.delete.delay.ms"),
        kind: ConfigType::Long,
        default: "60000",
        doc: "Delay before deleting a file from the filesystem",
    },
    ConfigDef {
        name: "flush.messages",
        broker_key: Some("log.flush.interval.messages"),
        kind: ConfigType::Long,
        default: LONG_MAX,
        doc: "fsync after this many messages",
    },
    ConfigDef {
        name: "flush.ms",
        broker_key: Some("log.flush.interval.ms"),
        kind: ConfigType::Long,
        default: LONG_MAX,
        doc: "fsync data older than this",
    },
    ConfigDef {
        name: "follower.replication.throttled.replicas",
        broker_key: None,
        kind: ConfigType::List,
        default: "",
        doc: "Unused on a single node",
    },
    ConfigDef {
        name: "index.interval.bytes",
        broker_key: Some("log.index.interval.bytes"),
        kind: ConfigType::Int,
        default: "4096",
        doc: "Bytes between offset index entries",
    },
    ConfigDef {
        name: "leader.replication.throttled.replicas",
        broker_key: None,
        kind: ConfigType::List,
        default: "",
        doc: "Unused on a single node",
    },
    ConfigDef {
        name: "local.retention.bytes",
        broker_key: Some("log.local.retention.bytes"),
        kind: ConfigType::Long,
        default: "-2",
        doc: "Tiered storage (not implemented)",
    },
    ConfigDef {
        name: "local.retention.ms",
        broker_key: Some("log.local.retention.ms"),
        kind: ConfigType::Long,
        default: "-2",
        doc: "Tiered storage (not implemented)",
    },
    ConfigDef {
        name: "max.compaction.lag.ms",
        broker_key: Some("log.cleaner.max.compaction.lag.ms"),
        kind: ConfigType::Long,
        default: LONG_MAX,
        doc: "Compaction (not implemented)",
    },
    ConfigDef {
        name: "max.message.bytes",
        broker_key: Some("message.max.bytes"),
        kind: ConfigType::Int,
        default: "1048588",
        doc: "The largest record batch accepted",
    },
    ConfigDef {
        name: "message.timestamp.after.max.ms",
        broker_key: Some("log.message.timestamp.after.max.ms"),
        kind: ConfigType::Long,
        default: LONG_MAX,
        doc: "Largest allowed future timestamp skew",
    },
    ConfigDef {
        name: "message.timestamp.before.max.ms",
        broker_key: Some("log.message.timestamp.before.max.ms"),
        kind: ConfigType::Long,
        default: LONG_MAX,
        doc: "Largest allowed past timestamp skew",
    },
    ConfigDef {
        name: "message.timestamp.type",
        broker_key: Some("log.message.timestamp.type"),
        kind: ConfigType::String,
        default: "CreateTime",
        doc: "CreateTime or LogAppendTime",
    },
    ConfigDef {
        name: "min.cleanable.dirty.ratio",
        broker_key: Some("log.cleaner.min.cleanable.ratio"),
        kind: ConfigType::Double,
        default: "0.5",
        doc: "Compaction (not implemented)",
    },
    ConfigDef {
        name: "min.compaction.lag.ms",
        broker_key: Some("log.cleaner.min.compaction.lag.ms"),
        kind: ConfigType::Long,
        default: "0",
        doc: "Compaction (not implemented)",
    },
    ConfigDef {
        name: "min.insync.replicas",
        broker_key: Some("min.insync.replicas"),
        kind: ConfigType::Int,
        default: "1",
        doc: "Only 1 is meaningful on a single node",
    },
    ConfigDef {
        name: "preallocate",
        broker_key: Some("log.preallocate"),
        kind: ConfigType::Boolean,
        default: "false",
        doc: "Preallocate segment files",
    },
    ConfigDef {
        name: "remote.storage.enable",
        broker_key: None,
        kind: ConfigType::Boolean,
        default: "false",
        doc: "Tiered storage (not implemented)",
    },
    ConfigDef {
        name: "retention.bytes",
        broker_key: Some("log.retention.bytes"),
        kind: ConfigType::Long,
        default: "-1",
        doc: "Per-partition size limit; -1 for none",
    },
    ConfigDef {
        name: "retention.ms",
        broker_key: Some("log.retention.ms"),
        kind: ConfigType::Long,
        default: "604800000",
        doc: "How long data is kept; -1 for forever",
    },
    ConfigDef {
        name: "segment.bytes",
        broker_key: Some("log.segment.bytes"),
        kind: ConfigType::Int,
        default: "1073741824",
        doc: "Segment size before rolling",
    },
    ConfigDef {
        name: "segment.index.bytes",
        broker_key: Some("log.index.size.max.bytes"),
        kind: ConfigType::Int,
        default: "10485760",
        doc: "Offset index size",
    },
    ConfigDef {
        name: "segment.jitter.ms",
        broker_key: Some("log.roll.jitter.ms"),
        kind: ConfigType::Long,
        default: "0",
        doc: "Random jitter subtracted from segment.ms",
    },
    ConfigDef {
        name: "segment.ms",
        broker_key: Some("log.roll.ms"),
        kind: ConfigType::Long,
        default: "604800000",
        doc: "Segment age before rolling",
    },
    ConfigDef {
        name: "unclean.leader.election.enable",
        broker_key: Some("unclean.leader.election.enable"),
        kind: ConfigType::Boolean,
        default: "false",
        doc: "Unused on a single node",
    },
];

/// Looks a topic config up by name.
pub fn def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The broker-level value of a topic config: (value, source).
pub fn broker_default(def: &ConfigDef, broker: &BrokerConfig) -> (String, i8) {
    let from_broker = match def.name {
        "retention.ms" => Some(broker.log_retention_ms.to_string()),
        "retention.bytes" => Some(broker.log_retention_bytes.to_string()),
        "segment.bytes" => Some(broker.log_segment_bytes.to_string()),
        "segment.ms" => Some(broker.log_roll_ms.to_string()),
        "max.message.bytes" => Some(broker.message_max_bytes.to_string()),
        "flush.messages" => broker.log_flush_interval_messages.map(|v| v.to_string()),
        "flush.ms" => broker.log_flush_interval_ms.map(|v| v.to_string()),
        "message.timestamp.type" => Some(
            match broker.log_message_timestamp_type {
                TimestampType::CreateTime => "CreateTime",
                TimestampType::LogAppendTime => "LogAppendTime",
            }
            .to_string(),
        ),
        _ => None,
    };
    match from_broker {
        Some(v) if v != def.default => (v, source::STATIC_BROKER),
        Some(v) => (v, source::DEFAULT),
        None => (def.default.to_string(), source::DEFAULT),
    }
}

/// Checks a topic config value; the error says why it is refused.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let def = def(name).ok_or_else(|| format!("unknown topic config `{name}`"))?;
    let ok = match def.kind {
        ConfigType::Boolean => matches!(value, "true" | "false"),
        ConfigType::Int => value.parse::<i32>().is_ok(),
        ConfigType::Short => value.parse::<i16>().is_ok(),
        ConfigType::Long => value.parse::<i64>().is_ok(),
        ConfigType::Double => value.parse::<f64>().is_ok(),
        ConfigType::String | ConfigType::List => true,
    };
    if !ok {
        return Err(format!(
            "invalid value {value:?} for `{name}`: expected {:?}",
            def.kind
        ));
    }
    let n = value.parse::<i64>().unwrap_or(0);
    let range_ok = match name {
        "retention.ms" | "retention.bytes" => n >= -1,
        "segment.bytes" => n >= 14,
        "segment.ms" | "flush.messages" | "flush.ms" => n >= 1,
        "max.message.bytes" => n >= 0,
        "index.interval.bytes" | "segment.index.bytes" => n >= 4,
        "min.insync.replicas" => n >= 1,
        _ => true,
    };
    if !range_ok {
        return Err(format!("value {value} for `{name}` is out of range"));
    }
    match name {
        "message.timestamp.type" => parse_timestamp_type(name, value)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "cleanup.policy" => {
            if value
                .split(',')
                .all(|p| matches!(p.trim(), "delete" | "compact"))
            {
                Ok(())
            } else {
                Err(format!(
                    "invalid value {value:?} for `cleanup.policy`: expected delete and/or compact"
                ))
            }
        }
        "compression.type" => {
            if matches!(
                value,
                "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd"
            ) {
                Ok(())
            } else {
                Err(format!("invalid value {value:?} for `compression.type`"))
            }
        }
        _ => Ok(()),
    }
}

/// The effective value of a topic config: the topic override, else the broker's.
pub fn effective(
    name: &str,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerConfig,
) -> Option<String> {
    if let Some(v) = overrides.get(name) {
        return Some(v.clone());
    }
    def(name).map(|d| broker_default(d, broker).0)
}

fn flush_opt(v: Option<String>) -> Option<u64> {
    v.and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n >= 1 && *n < (1 << 62))
        .map(|n| n as u64)
}

/// Builds the storage engine's per-partition configuration.
pub fn log_config(overrides: &BTreeMap<String, String>, broker: &BrokerConfig) -> LogConfig {
    let get = |n: &str| effective(n, overrides, broker);
    let num = |n: &str| get(n).and_then(|v| v.parse::<i64>().ok());
    let mut c = LogConfig::default();
    if let Some(v) = num("segment.bytes") {
        c.segment_bytes = v.max(14) as u64;
    }
    if let Some(v) = num("segment.ms") {
        c.segment_ms = v;
    }
    if let Some(v) = num("retention.ms") {
        c.retention_ms = v;
    }
    if let Some(v) = num("retention.bytes") {
        c.retention_bytes = v;
    }
    if let Some(v) = num("max.message.bytes") {
        c.max_message_bytes = v.clamp(0, u32::MAX as i64) as u32;
    }
    if let Some(v) = num("index.interval.bytes") {
        c.index_interval_bytes = v.clamp(4, u32::MAX as i64) as u32;
    }
    if let Some(v) = num("segment.index.bytes") {
        c.segment_index_bytes = v.clamp(4, u32::MAX as i64) as u32;
    }
    c.flush_messages = flush_opt(get("flush.messages"));
    c.flush_ms = flush_opt(get("flush.ms"));
    if let Some(t) = get("message.timestamp.type") {
        if let Ok(t) = parse_timestamp_type("message.timestamp.type", &t) {
            c.message_timestamp_type = t;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_keys_supply_topic_defaults_and_overrides_win() {
        let broker = BrokerConfig {
            log_retention_ms: 1000,
            ..BrokerConfig::default()
        };
        let mut over = BTreeMap::new();
        let c = log_config(&over, &broker);
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(
            broker_default(def("retention.ms").unwrap(), &broker),
            ("1000".into(), source::STATIC_BROKER)
        );
        over.insert("retention.ms".to_string(), "5".to_string());
        assert_eq!(log_config(&over, &broker).retention_ms, 5);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(validate("retention.ms", "abc")
            .unwrap_err()
            .contains("retention.ms"));
        assert!(validate("no.such", "1").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("segment.bytes", "1").is_err());
    }
}
