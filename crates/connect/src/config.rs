//! Worker and connector configuration: Connect's properties (and JSON connector files).
//!
//! The properties syntax is `java.util.Properties` (Flumen's parser from `flumen-flow`);
//! values are trimmed as Kafka's `ConfigDef` does. Connector files may also be JSON (Kafka
//! 3.7+): a flat string map, or the `POST /connectors` body shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::converter::Converter;
use crate::error::{ConnectError, Result};

/// A flat configuration: key → value, as Connect's REST API shows it.
pub type Props = BTreeMap<String, String>;

/// Reads a `.properties` file into a map (the last occurrence of a key wins).
pub fn load_properties(path: &Path) -> Result<Props> {
    let bytes = std::fs::read(path).map_err(|source| ConnectError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    parse_properties(&bytes, &path.display().to_string()).map_err(|message| ConnectError::BadFile {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses properties text (ISO-8859-1 bytes, Java's rules).
pub fn parse_properties(bytes: &[u8], file: &str) -> std::result::Result<Props, String> {
    let parsed = flumen_flow::config::properties::parse(bytes, file)?;
    Ok(parsed
        .into_iter()
        .map(|p| (p.key.trim().to_string(), p.value.trim().to_string()))
        .collect())
}

/// Reads a connector file: a flat JSON object, a JSON object shaped like the
/// `POST /connectors` body, or else Java properties (Kafka 3.7's order). `name` is required.
pub fn load_connector_file(path: &Path) -> Result<Props> {
    let bytes = std::fs::read(path).map_err(|source| ConnectError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| ConnectError::BadFile {
        path: path.to_path_buf(),
        message,
    };
    let props = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(obj)) => {
            if let Some(serde_json::Value::Object(config)) = obj.get("config") {
                let name = obj
                    .get("name")
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| bad("connector JSON has a \"config\" but no \"name\"".into()))?;
                let mut props = json_string_map(config).map_err(bad)?;
                match props.get("name") {
                    Some(n) if n != name => {
                        return Err(bad(format!(
                            "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                        )))
                    }
                    _ => {
                        props.insert("name".into(), name.to_string());
                    }
                }
                props
            } else {
                json_string_map(&obj).map_err(bad)?
            }
        }
        _ => parse_properties(&bytes, &path.display().to_string()).map_err(bad)?,
    };
    if props.get("name").is_none_or(|n| n.is_empty()) {
        return Err(bad(
            "Connector configuration must contain a \"name\" (Missing required configuration \"name\" which has no default value.)".into(),
        ));
    }
    Ok(props)
}

/// A JSON object of strings (numbers and booleans are accepted and turned into text).
pub fn json_string_map(
    obj: &serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<Props, String> {
    obj.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.trim().to_string())),
            serde_json::Value::Number(n) => Ok((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Ok((k.clone(), b.to_string())),
            other => Err(format!(
                "configuration value of {k} must be a string, got {other}"
            )),
        })
        .collect()
}

/// The standalone worker's settings (`connect-standalone.properties`).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `bootstrap.servers`. Default `localhost:9092` (Kafka's `WorkerConfig` default).
    pub bootstrap_servers: String,
    /// `key.converter` (+ `key.converter.*`). Required by Kafka; Flumen defaults to
    /// `JsonConverter` with schemas on when absent, and warns.
    pub key_converter: Converter,
    /// `value.converter` (+ `value.converter.*`). Same default as `key_converter`.
    pub value_converter: Converter,
    /// `offset.storage.file.filename`. Required in standalone mode (Kafka's rule).
    pub offset_file: PathBuf,
    /// `offset.flush.interval.ms`: how often positions are stored. Default 60000 (Kafka's).
    pub offset_flush_interval: Duration,
    /// `offset.flush.timeout.ms`: how long a source task waits for the broker to acknowledge
    /// the records sent before storing their position (the commit is skipped and tried again
    /// at the next interval when it takes longer). Default 5000 (Kafka's).
    pub offset_flush_timeout: Duration,
    /// `listeners` (first one; `rest.host.name`/`rest.port` mapped onto it when absent).
    /// Default `http://:8083` (Kafka's), i.e. every interface, port 8083.
    pub rest_addr: String,
    /// `producer.*` keys (prefix removed), passed to the source tasks' librdkafka producer.
    pub producer: Props,
    /// `consumer.*` keys (prefix removed), passed to the sink tasks' librdkafka consumer.
    pub consumer: Props,
    /// Every key as written.
    pub raw: Props,
}

impl WorkerConfig {
    /// Builds the worker config from its properties.
    pub fn from_props(raw: Props) -> Result<Self> {
        let get = |k: &str| raw.get(k).filter(|v| !v.is_empty()).cloned();
        let bootstrap_servers = get("bootstrap.servers").unwrap_or_else(|| "localhost:9092".into());
        let key_converter = Converter::from_props(&raw, "key.converter")?.unwrap_or_else(|| {
            tracing::warn!("key.converter is not set; using JsonConverter (schemas.enable=true).");
            Converter::Json {
                schemas_enable: true,
            }
        });
        let value_converter =
            Converter::from_props(&raw, "value.converter")?.unwrap_or_else(|| {
                tracing::warn!(
                    "value.converter is not set; using JsonConverter (schemas.enable=true)."
                );
                Converter::Json {
                    schemas_enable: true,
                }
            });
        let offset_file = get("offset.storage.file.filename")
            .map(PathBuf::from)
            .ok_or_else(|| ConnectError::Missing {
                key: "offset.storage.file.filename".into(),
            })?;
        let offset_flush_interval =
            Duration::from_millis(parse_num(&raw, "offset.flush.interval.ms", 60_000)?);
        let offset_flush_timeout =
            Duration::from_millis(parse_num(&raw, "offset.flush.timeout.ms", 5_000)?);
        let rest_addr = match get("listeners") {
            Some(l) => listener_addr(l.split(',').next().unwrap_or_default().trim())?,
            None => {
                let host = get("rest.host.name").unwrap_or_default();
                let port = parse_num(&raw, "rest.port", 8083)?;
                format!("{}:{port}", if host.is_empty() { "0.0.0.0" } else { &host })
            }
        };
        if let Some(p) = get("plugin.path") {
            tracing::info!(plugin_path = %p, "plugin.path is accepted; the file connectors and converters are built in.");
        }
        let prefixed = |prefix: &str| -> Props {
            raw.iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
                .collect()
        };
        Ok(Self {
            bootstrap_servers,
            key_converter,
            value_converter,
            offset_file,
            offset_flush_interval,
            offset_flush_timeout,
            rest_addr,
            producer: prefixed("producer."),
            consumer: prefixed("consumer."),
            raw,
        })
    }
}

/// `http://host:port` (host may be empty: every interface) → `host:port`.
fn listener_addr(listener: &str) -> Result<String> {
    let invalid = |reason: &str| ConnectError::Invalid {
        key: "listeners".into(),
        value: listener.into(),
        reason: reason.into(),
    };
    let rest = listener
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// listeners are supported"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected http://HOST:PORT"))?;
    let port: u16 = port
        .trim_end_matches('/')
        .parse()
        .map_err(|_| invalid("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(if host.is_empty() {
        format!("0.0.0.0:{port}")
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// A non-negative number key with a default.
pub fn parse_num(props: &Props, key: &str, default: u64) -> Result<u64> {
    match props.get(key).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConnectError::Invalid {
            key: key.into(),
            value: v.clone(),
            reason: "Not a number of type LONG".into(),
        }),
    }
}

/// Which built-in connector a `connector.class` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorClass {
    /// `org.apache.kafka.connect.file.FileStreamSourceConnector`.
    FileStreamSource,
    /// `org.apache.kafka.connect.file.FileStreamSinkConnector`.
    FileStreamSink,
}

impl ConnectorClass {
    /// Resolves a full class name or an alias (`FileStreamSource`, `FileStreamSourceConnector`).
    pub fn resolve(class: &str) -> Result<Self> {
        let simple = class.rsplit('.').next().unwrap_or(class);
        let full_ok = !class.contains('.') || class.starts_with("org.apache.kafka.connect.file.");
        match simple {
            "FileStreamSource" | "FileStreamSourceConnector" if full_ok => {
                Ok(Self::FileStreamSource)
            }
            "FileStreamSink" | "FileStreamSinkConnector" if full_ok => Ok(Self::FileStreamSink),
            _ => Err(ConnectError::UnknownConnectorClass(class.to_string())),
        }
    }

    /// The full Java class name.
    pub fn class_name(self) -> &'static str {
        match self {
            Self::FileStreamSource => "org.apache.kafka.connect.file.FileStreamSourceConnector",
            Self::FileStreamSink => "org.apache.kafka.connect.file.FileStreamSinkConnector",
        }
    }

    /// `source` or `sink`, as the REST API reports it.
    pub fn kind(self) -> &'static str {
        match self {
            Self::FileStreamSource => "source",
            Self::FileStreamSink => "sink",
        }
    }
}

/// A validated connector configuration.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// `name` (required, unique in the worker).
    pub name: String,
    /// `connector.class` resolved.
    pub class: ConnectorClass,
    /// `tasks.max` (default 1, Kafka's). `FileStreamSource` always runs one task (as Kafka's
    /// does); `FileStreamSink` runs `tasks.max` tasks that share the topics' partitions and
    /// append whole lines to the same file.
    pub tasks_max: u32,
    /// `file`: the file to tail or append to; absent or empty = stdin / stdout.
    pub file: Option<PathBuf>,
    /// `topic` (source; required).
    pub topic: String,
    /// `topics` (sink; one of `topics` or `topics.regex`).
    pub topics: Vec<String>,
    /// `topics.regex` (sink).
    pub topics_regex: Option<regex::Regex>,
    /// `batch.size`: most lines per poll (source). Default 2000 (Kafka's).
    pub batch_size: usize,
    /// The key converter: the connector's `key.converter` if set, else the worker's.
    pub key_converter: Converter,
    /// The value converter: the connector's `value.converter` if set, else the worker's.
    pub value_converter: Converter,
    /// Per-connector `producer.override.*` (prefix removed).
    pub producer_overrides: Props,
    /// Per-connector `consumer.override.*` (prefix removed).
    pub consumer_overrides: Props,
    /// Every key as given.
    pub raw: Props,
}

impl ConnectorConfig {
    /// Validates a connector's properties against the worker's defaults; every problem is
    /// listed (REST answers 400 with all of them).
    pub fn from_props(raw: Props, worker: &WorkerConfig) -> Result<Self> {
        let get = |k: &str| raw.get(k).filter(|v| !v.is_empty()).cloned();
        let mut errors = Vec::new();
        let name = get("name").unwrap_or_default();
        if name.is_empty() {
            errors.push(
                "Missing required configuration \"name\" which has no default value.".to_string(),
            );
        }
        let class = match get("connector.class") {
            None => {
                errors.push("Missing required configuration \"connector.class\" which has no default value.".into());
                None
            }
            Some(c) => match ConnectorClass::resolve(&c) {
                Ok(c) => Some(c),
                Err(e) => return Err(e),
            },
        };
        let tasks_max = match parse_num(&raw, "tasks.max", 1) {
            Ok(0) => {
                errors.push(
                    "Invalid value 0 for configuration tasks.max: Value must be at least 1".into(),
                );
                1
            }
            Ok(n) => n.min(u32::MAX as u64) as u32,
            Err(e) => {
                errors.push(e.to_string());
                1
            }
        };
        let batch_size = match parse_num(&raw, "batch.size", 2000) {
            Ok(0) => {
                errors.push(
                    "Invalid value 0 for configuration batch.size: Value must be at least 1".into(),
                );
                1
            }
            Ok(n) => n as usize,
            Err(e) => {
                errors.push(e.to_string());
                2000
            }
        };
        let topic = get("topic").unwrap_or_default();
        let topics: Vec<String> = get("topics")
            .map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut topics_regex = None;
        if let Some(r) = get("topics.regex") {
            match regex::Regex::new(&format!("^(?:{r})$")) {
                Ok(re) => topics_regex = Some(re),
                Err(e) => errors.push(format!(
                    "Invalid value {r} for configuration topics.regex: {e}"
                )),
            }
        }
        match class {
            Some(ConnectorClass::FileStreamSource) if topic.is_empty() => errors.push(
                "Missing required configuration \"topic\" which has no default value.".into(),
            ),
            Some(ConnectorClass::FileStreamSink) => {
                if topics.is_empty() && topics_regex.is_none() {
                    errors.push("Must configure one of topics or topics.regex".into());
                } else if !topics.is_empty() && topics_regex.is_some() {
                    errors.push(
                        "topics and topics.regex are mutually exclusive options, but both are set."
                            .into(),
                    );
                }
            }
            _ => {}
        }
        let key_converter = match Converter::from_props(&raw, "key.converter") {
            Ok(c) => c.unwrap_or(worker.key_converter),
            Err(e) => {
                errors.push(e.to_string());
                worker.key_converter
            }
        };
        let value_converter = match Converter::from_props(&raw, "value.converter") {
            Ok(c) => c.unwrap_or(worker.value_converter),
            Err(e) => {
                errors.push(e.to_string());
                worker.value_converter
            }
        };
        if !errors.is_empty() {
            return Err(ConnectError::InvalidConfig(errors));
        }
        let prefixed = |prefix: &str| -> Props {
            raw.iter()
                .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
                .collect()
        };
        Ok(Self {
            name,
            class: class.expect("checked above"),
            tasks_max,
            file: get("file").map(PathBuf::from),
            topic,
            topics,
            topics_regex,
            batch_size,
            key_converter,
            value_converter,
            producer_overrides: prefixed("producer.override."),
            consumer_overrides: prefixed("consumer.override."),
            raw,
        })
    }
}

/// One configuration key as `GET /connector-plugins/{plugin}/config` and the validate
/// endpoint describe it (Kafka's `ConfigKeyInfo`).
struct ConfigKey {
    name: &'static str,
    kind: &'static str,
    required: bool,
    default: Option<&'static str>,
    importance: &'static str,
    doc: &'static str,
    group: &'static str,
}

const fn key(
    name: &'static str,
    kind: &'static str,
    required: bool,
    default: Option<&'static str>,
    importance: &'static str,
    doc: &'static str,
    group: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        kind,
        required,
        default,
        importance,
        doc,
        group,
    }
}

/// Kafka's `ConnectorConfig` keys every connector has (the ones Flumen uses).
const COMMON_KEYS: &[ConfigKey] = &[
    key("name", "STRING", true, None, "HIGH", "Globally unique name to use for this connector.", "Common"),
    key("connector.class", "STRING", true, None, "HIGH", "Name or alias of the class for this connector. Must be a subclass of org.apache.kafka.connect.connector.Connector.", "Common"),
    key("tasks.max", "INT", false, Some("1"), "HIGH", "Maximum number of tasks to use for this connector.", "Common"),
    key("key.converter", "CLASS", false, None, "LOW", "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.", "Common"),
    key("value.converter", "CLASS", false, None, "LOW", "Converter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.", "Common"),
    key("header.converter", "CLASS", false, None, "LOW", "HeaderConverter class used to convert between Kafka Connect format and the serialized form that is written to Kafka.", "Common"),
];

/// `SinkConnectorConfig`'s topic keys.
const SINK_KEYS: &[ConfigKey] = &[
    key(
        "topics",
        "LIST",
        false,
        Some(""),
        "HIGH",
        "List of topics to consume, separated by commas",
        "Common",
    ),
    key(
        "topics.regex",
        "STRING",
        false,
        Some(""),
        "HIGH",
        "Regular expression giving topics to consume.",
        "Common",
    ),
];

/// `FileStreamSourceConnector`'s own keys.
const FILE_SOURCE_KEYS: &[ConfigKey] = &[
    key("file", "STRING", false, None, "HIGH", "Source filename. If not specified, the standard input will be used", ""),
    key("topic", "LIST", true, None, "HIGH", "The topic to publish data to", ""),
    key("batch.size", "INT", false, Some("2000"), "LOW", "The maximum number of records the source task can read from the file each time it is polled", ""),
];

/// `FileStreamSinkConnector`'s own keys.
const FILE_SINK_KEYS: &[ConfigKey] = &[key(
    "file",
    "STRING",
    false,
    None,
    "HIGH",
    "Destination filename. If not specified, the standard output will be used",
    "",
)];

impl ConfigKey {
    fn definition(&self, order: usize) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "type": self.kind,
            "required": self.required,
            "default_value": self.default,
            "importance": self.importance,
            "documentation": self.doc,
            "group": if self.group.is_empty() { serde_json::Value::Null } else { self.group.into() },
            "width": "NONE",
            "display_name": self.name,
            "dependents": [],
            "order": order as i64,
        })
    }
}

impl ConnectorClass {
    fn own_keys(self) -> &'static [ConfigKey] {
        match self {
            Self::FileStreamSource => FILE_SOURCE_KEYS,
            Self::FileStreamSink => FILE_SINK_KEYS,
        }
    }

    /// `GET /connector-plugins/{plugin}/config`: the connector's own keys.
    pub fn config_keys(self) -> serde_json::Value {
        self.own_keys()
            .iter()
            .enumerate()
            .map(|(i, k)| k.definition(i + 1))
            .collect()
    }

    /// `PUT /connector-plugins/{plugin}/config/validate`: every key (Kafka's common ones,
    /// the sink's topic keys, the connector's own) with its value and errors, in Kafka's
    /// `ConfigInfos` shape.
    pub fn validate(self, props: &Props, worker: &WorkerConfig) -> serde_json::Value {
        let mut keys: Vec<&ConfigKey> = COMMON_KEYS.iter().collect();
        if self == Self::FileStreamSink {
            keys.extend(SINK_KEYS);
        }
        keys.extend(self.own_keys());
        let mut errors: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let messages = match ConnectorConfig::from_props(props.clone(), worker) {
            Ok(_) => Vec::new(),
            Err(ConnectError::InvalidConfig(m)) => m,
            Err(e) => vec![e.to_string()],
        };
        for m in messages {
            let mut hit: Vec<&str> = keys
                .iter()
                .map(|k| k.name)
                .filter(|n| {
                    m.contains(&format!("\"{n}\""))
                        || m.contains(&format!("configuration {n}:"))
                        || m.contains(&format!("configuration {n}."))
                        || (*n == "topics" || *n == "topics.regex") && m.contains("topics.regex")
                })
                .collect();
            if hit.is_empty() {
                hit.push(if m.contains("converter") {
                    if m.contains("key.converter") {
                        "key.converter"
                    } else {
                        "value.converter"
                    }
                } else {
                    "connector.class"
                });
            }
            for n in hit {
                errors.entry(n).or_default().push(m.clone());
            }
        }
        let error_count: usize = errors.values().map(Vec::len).sum();
        let mut groups: Vec<&str> = Vec::new();
        for k in &keys {
            if !k.group.is_empty() && !groups.contains(&k.group) {
                groups.push(k.group);
            }
        }
        let configs: Vec<serde_json::Value> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                serde_json::json!({
                    "definition": k.definition(i + 1),
                    "value": {
                        "name": k.name,
                        "value": props.get(k.name).map(String::as_str).or(k.default),
                        "recommended_values": [],
                        "errors": errors.get(k.name).cloned().unwrap_or_default(),
                        "visible": true,
                    }
                })
            })
            .collect();
        serde_json::json!({
            "name": self.class_name(),
            "error_count": error_count,
            "groups": groups,
            "configs": configs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(extra: &[(&str, &str)]) -> WorkerConfig {
        let mut p = Props::new();
        p.insert(
            "offset.storage.file.filename".into(),
            "/tmp/x.offsets".into(),
        );
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        WorkerConfig::from_props(p).unwrap()
    }

    #[test]
    fn seed_worker_file_parses() {
        let text = b"bootstrap.servers=sandbox.hortonworks.com:6667\nkey.converter=org.apache.kafka.connect.json.JsonConverter\nvalue.converter=org.apache.kafka.connect.json.JsonConverter\nkey.converter.schemas.enable=true\nvalue.converter.schemas.enable=false\noffset.storage.file.filename=/tmp/connect.offsets\noffset.flush.interval.ms=10000\n";
        let w = WorkerConfig::from_props(parse_properties(text, "w").unwrap()).unwrap();
        assert_eq!(w.bootstrap_servers, "sandbox.hortonworks.com:6667");
        assert_eq!(
            w.key_converter,
            Converter::Json {
                schemas_enable: true
            }
        );
        assert_eq!(
            w.value_converter,
            Converter::Json {
                schemas_enable: false
            }
        );
        assert_eq!(w.offset_flush_interval, Duration::from_secs(10));
        assert_eq!(w.rest_addr, "0.0.0.0:8083");
    }

    #[test]
    fn listeners_and_legacy_rest_port() {
        assert_eq!(
            worker(&[("listeners", "http://127.0.0.1:9000")]).rest_addr,
            "127.0.0.1:9000"
        );
        assert_eq!(
            worker(&[("listeners", "http://:9001")]).rest_addr,
            "0.0.0.0:9001"
        );
        assert_eq!(worker(&[("rest.port", "9002")]).rest_addr, "0.0.0.0:9002");
        let mut p = Props::new();
        p.insert("listeners".into(), "ftp://x:1".into());
        p.insert("offset.storage.file.filename".into(), "/x".into());
        assert!(WorkerConfig::from_props(p).is_err());
    }

    #[test]
    fn offset_file_is_required() {
        let e = WorkerConfig::from_props(Props::new()).unwrap_err();
        assert!(
            e.to_string().contains("offset.storage.file.filename"),
            "{e}"
        );
    }

    #[test]
    fn class_aliases() {
        for c in [
            "FileStreamSource",
            "FileStreamSourceConnector",
            "org.apache.kafka.connect.file.FileStreamSourceConnector",
        ] {
            assert_eq!(
                ConnectorClass::resolve(c).unwrap(),
                ConnectorClass::FileStreamSource
            );
        }
        assert_eq!(
            ConnectorClass::resolve("FileStreamSink").unwrap(),
            ConnectorClass::FileStreamSink
        );
        assert!(ConnectorClass::resolve("com.example.FileStreamSink").is_err());
        assert!(ConnectorClass::resolve("Jdbc").is_err());
    }

    #[test]
    fn connector_validation_lists_every_problem() {
        let w = worker(&[]);
        let mut p = Props::new();
        p.insert("name".into(), "s".into());
        p.insert("connector.class".into(), "FileStreamSink".into());
        p.insert("tasks.max".into(), "x".into());
        let e = ConnectorConfig::from_props(p.clone(), &w)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("2 error(s)") && e.contains("Must configure one of topics"),
            "{e}"
        );
        p.insert("tasks.max".into(), "1".into());
        p.insert("topics".into(), "a, b".into());
        let c = ConnectorConfig::from_props(p, &w).unwrap();
        assert_eq!(c.topics, vec!["a", "b"]);
        assert_eq!(c.batch_size, 2000);
    }

    #[test]
    fn json_connector_files() {
        let dir = tempfile::tempdir().unwrap();
        let flat = dir.path().join("a.json");
        std::fs::write(
            &flat,
            r#"{"name":"a","connector.class":"FileStreamSource","tasks.max":1}"#,
        )
        .unwrap();
        let p = load_connector_file(&flat).unwrap();
        assert_eq!(p["tasks.max"], "1");
        let post = dir.path().join("b.json");
        std::fs::write(
            &post,
            r#"{"name":"b","config":{"connector.class":"FileStreamSink"}}"#,
        )
        .unwrap();
        assert_eq!(load_connector_file(&post).unwrap()["name"], "b");
        let props = dir.path().join("c.properties");
        std::fs::write(&props, "connector.class=FileStreamSink\n").unwrap();
        assert!(load_connector_file(&props)
            .unwrap_err()
            .to_string()
            .contains("name"));
    }
}
