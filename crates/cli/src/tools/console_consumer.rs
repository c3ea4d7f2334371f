//! `flumen console-consumer` (`kafka-console-consumer.sh`): prints records to stdout with
//! Kafka's `DefaultMessageFormatter` layout; `Processed a total of N messages` on stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

use super::{kafka_bool, usage};

/// Arguments of `flumen console-consumer`, spelled as `kafka-console-consumer.sh` spells them.
#[derive(clap::Args, Debug, Default)]
pub struct ConsoleConsumerArgs {
    /// The Kafka server to connect to (HOST:PORT[,HOST:PORT…]).
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Legacy (Kafka ≤ 1.x): the old consumer's ZooKeeper address; means the cluster at the
    /// default bootstrap address.
    #[arg(long, value_name = "HOST:2181")]
    pub zookeeper: Option<String>,
    /// The topic to consume.
    #[arg(long)]
    pub topic: Option<String>,
    /// A regular expression of topics to consume.
    #[arg(long)]
    pub include: Option<String>,
    /// Legacy spelling of --include (Kafka < 3.1).
    #[arg(long)]
    pub whitelist: Option<String>,
    /// The consumer group id (default a throw-away `console-consumer-NNNNN`).
    #[arg(long)]
    pub group: Option<String>,
    /// Start at the earliest offset when the group has no committed offset.
    #[arg(long = "from-beginning")]
    pub from_beginning: bool,
    /// Consume only this partition (manual assignment, no group); starts at the end unless
    /// --offset says otherwise.
    #[arg(long)]
    pub partition: Option<i32>,
    /// With --partition: earliest, latest (default) or an offset.
    #[arg(long, allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Exit after this many records.
    #[arg(long = "max-messages")]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this many ms.
    #[arg(long = "timeout-ms")]
    pub timeout_ms: Option<u64>,
    /// Skip records the formatter cannot print instead of stopping.
    #[arg(long = "skip-message-on-error")]
    pub skip_message_on_error: bool,
    /// Only Kafka's default formatter is built in.
    #[arg(long)]
    pub formatter: Option<String>,
    /// A formatter property `key=value` (repeatable): print.key, print.value,
    /// print.timestamp, print.partition, print.offset, print.headers, print.epoch,
    /// key.separator, line.separator, headers.separator, null.literal.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub property: Vec<String>,
    /// A formatter properties file.
    #[arg(long = "formatter-config", value_name = "FILE")]
    pub formatter_config: Option<std::path::PathBuf>,
    /// A consumer property `key=value` (repeatable; wins over --consumer.config).
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    pub consumer_property: Vec<String>,
    /// A consumer properties file.
    #[arg(long = "consumer.config", value_name = "FILE")]
    pub consumer_config: Option<std::path::PathBuf>,
    /// read_uncommitted (default) or read_committed.
    #[arg(long = "isolation-level")]
    pub isolation_level: Option<String>,
    /// Accepted for compatibility; bytes are printed raw.
    #[arg(long = "key-deserializer")]
    pub key_deserializer: Option<String>,
    /// Accepted for compatibility; bytes are printed raw.
    #[arg(long = "value-deserializer")]
    pub value_deserializer: Option<String>,
    /// Accepted for compatibility (test-only in Kafka).
    #[arg(long = "enable-systest-events", hide = true)]
    pub enable_systest_events: bool,
    /// How long to wait for the cluster before giving up (default $FLUMEN_CONNECT_TIMEOUT_MS,
    /// else 5000).
    #[arg(long = "connect-timeout-ms", value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
}

/// Kafka's `DefaultMessageFormatter` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatterConfig {
    /// `print.timestamp` (false).
    pub print_timestamp: bool,
    /// `print.partition` (false).
    pub print_partition: bool,
    /// `print.offset` (false).
    pub print_offset: bool,
    /// `print.epoch` (false).
    pub print_epoch: bool,
    /// `print.headers` (false).
    pub print_headers: bool,
    /// `print.key` (false).
    pub print_key: bool,
    /// `print.value` (true).
    pub print_value: bool,
    /// `key.separator` (TAB), between every printed field.
    pub key_separator: Vec<u8>,
    /// `line.separator` (`\n`).
    pub line_separator: Vec<u8>,
    /// `headers.separator` (`,`).
    pub headers_separator: Vec<u8>,
    /// `null.literal` (`null`).
    pub null_literal: Vec<u8>,
}

impl Default for FormatterConfig {
    fn default() -> Self {
        FormatterConfig {
            print_timestamp: false,
            print_partition: false,
            print_offset: false,
            print_epoch: false,
            print_headers: false,
            print_key: false,
            print_value: true,
            key_separator: b"\t".to_vec(),
            line_separator: b"\n".to_vec(),
            headers_separator: b",".to_vec(),
            null_literal: b"null".to_vec(),
        }
    }
}

/// Java-style escapes in separator properties (`\t`, `\n`, `\r`, `\\`).
fn unescape(s: &str) -> Vec<u8> {
    s.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\\\", "\\")
        .into_bytes()
}

impl FormatterConfig {
    /// Builds the formatter config from `--property` pairs; unknown names are refused.
    pub fn from_properties(props: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut c = FormatterConfig::default();
        for (k, v) in props {
            match k.as_str() {
                "print.timestamp" => c.print_timestamp = kafka_bool(Some(v)),
                "print.partition" => c.print_partition = kafka_bool(Some(v)),
                "print.offset" => c.print_offset = kafka_bool(Some(v)),
                "print.epoch" => c.print_epoch = kafka_bool(Some(v)),
                "print.headers" => c.print_headers = kafka_bool(Some(v)),
                "print.key" => c.print_key = kafka_bool(Some(v)),
                "print.value" => c.print_value = kafka_bool(Some(v)),
                "key.separator" => c.key_separator = unescape(v),
                "line.separator" => c.line_separator = unescape(v),
                "headers.separator" => c.headers_separator = unescape(v),
                "null.literal" => c.null_literal = v.as_bytes().to_vec(),
                "key.deserializer" | "value.deserializer" | "header.deserializer" => {}
                other
                    if other.starts_with("key.deserializer.")
                        || other.starts_with("value.deserializer.")
                        || other.starts_with("header.deserializer.") => {}
                other => {
                    return usage(format!(
                        "Unknown formatter property '{other}' (known: print.timestamp, \
                         print.partition, print.offset, print.epoch, print.headers, print.key, \
                         print.value, key.separator, line.separator, headers.separator, \
                         null.literal)"
                    ))
                }
            }
        }
        Ok(c)
    }
}

/// What the formatter needs of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's timestamp.
    pub timestamp: Timestamp,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Leader epoch, when known.
    pub epoch: Option<i32>,
    /// Headers in order (None = null value).
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    /// Key (None = null).
    pub key: Option<&'a [u8]>,
    /// Value (None = null).
    pub value: Option<&'a [u8]>,
}

/// Writes one record in `DefaultMessageFormatter`'s layout (Kafka 2.7+ field order).
pub fn format_record(out: &mut Vec<u8>, r: &RecordView<'_>, c: &FormatterConfig) {
    let mut fields: Vec<Vec<u8>> = Vec::with_capacity(7);
    if c.print_timestamp {
        fields.push(match r.timestamp {
            Timestamp::NotAvailable => b"NO_TIMESTAMP".to_vec(),
            Timestamp::CreateTime(ms) => format!("CreateTime:{ms}").into_bytes(),
            Timestamp::LogAppendTime(ms) => format!("LogAppendTime:{ms}").into_bytes(),
        });
    }
    if c.print_partition {
        fields.push(format!("Partition:{}", r.partition).into_bytes());
    }
    if c.print_offset {
        fields.push(format!("Offset:{}", r.offset).into_bytes());
    }
    if c.print_epoch {
        fields.push(match r.epoch {
            Some(e) => format!("Epoch:{e}").into_bytes(),
            None => b"Epoch:NOT_PRESENT".to_vec(),
        });
    }
    if c.print_headers {
        if r.headers.is_empty() {
            fields.push(b"NO_HEADERS".to_vec());
        } else {
            let mut h = Vec::new();
            for (i, (k, v)) in r.headers.iter().enumerate() {
                if i > 0 {
                    h.extend_from_slice(&c.headers_separator);
                }
                h.extend_from_slice(k.as_bytes());
                h.push(b':');
                h.extend_from_slice(v.unwrap_or(&c.null_literal));
            }
            fields.push(h);
        }
    }
    if c.print_key {
        fields.push(r.key.unwrap_or(&c.null_literal).to_vec());
    }
    if c.print_value {
        fields.push(r.value.unwrap_or(&c.null_literal).to_vec());
    }
    for (i, f) in fields.iter().enumerate() {
        out.extend_from_slice(f);
        if i + 1 < fields.len() {
            out.extend_from_slice(&c.key_separator);
        } else {
            out.extend_from_slice(&c.line_separator);
        }
    }
}

/// The line printed on stderr when the consumer stops.
pub fn total_line(count: u64) -> String {
    format!("Processed a total of {count} messages")
}

/// Parses `--offset`.
pub fn parse_offset(text: &str) -> anyhow::Result<Offset> {
    match text {
        "earliest" => Ok(Offset::Beginning),
        "latest" => Ok(Offset::End),
        n => match n.parse::<i64>() {
            Ok(v) if v >= 0 => Ok(Offset::Offset(v)),
            _ => usage(format!(
                "The provided offset value '{n}' is incorrect. Valid values are 'earliest', \
                 'latest', or a non-negative long."
            )),
        },
    }
}

/// Fails clearly when a named group cannot work because the cluster has no group
/// coordinator (instead of waiting for a join that never completes).
fn require_groups(
    consumer: &BaseConsumer,
    bootstrap: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    if super::groups_supported(consumer.client(), timeout) {
        return Ok(());
    }
    anyhow::bail!(
        "the cluster at {bootstrap} has no group coordinator (ListGroups is not supported), so \
         consumer groups cannot work there; leave out --group (or use --partition)"
    )
}

/// Kafka users often expect `--from-beginning` to rewind a named group; it only applies to a
/// group without committed offsets. Say so on stderr when the group already has some.
fn hint_if_resuming(
    consumer: &BaseConsumer,
    group: &str,
    metadata: &rdkafka::metadata::Metadata,
    topic: &str,
    timeout: Duration,
) {
    let Ok(tpl) = super::all_partitions(metadata, topic, Offset::Invalid) else {
        return;
    };
    let Ok(committed) = consumer.committed_offsets(tpl, timeout) else {
        return;
    };
    if committed
        .elements()
        .iter()
        .any(|e| matches!(e.offset(), Offset::Offset(_)))
    {
        eprintln!(
            "Note: group '{group}' already has committed offsets on '{topic}', so it resumes \
             there and --from-beginning does not apply (rewind with kafka-consumer-groups.sh \
             --reset-offsets --group {group} --topic {topic} --to-earliest --execute)."
        );
    }
}

/// Runs the tool.
pub fn run(args: ConsoleConsumerArgs) -> anyhow::Result<()> {
    if let Some(w) = &args.whitelist {
        super::deprecation_note("--whitelist", "--include");
        if args.include.is_some() {
            return usage("Exactly one of --include/--topic is required.");
        }
        let _ = w;
    }
    let include = args.include.clone().or(args.whitelist.clone());
    if args.topic.is_some() == include.is_some() {
        return usage("Exactly one of --include/--topic is required.");
    }
    if args.partition.is_some() && args.topic.is_none() {
        return usage("The topic is required when partition is specified.");
    }
    if args.partition.is_some() && args.group.is_some() {
        return usage("Options group and partition cannot be specified together.");
    }
    if args.offset.is_some() && args.partition.is_none() {
        return usage("The partition is required when offset is specified.");
    }
    if args.offset.is_some() && args.from_beginning {
        return usage("Options from-beginning and offset cannot be specified together.");
    }
    if let Some(f) = &args.formatter {
        if !f.ends_with("DefaultMessageFormatter") {
            return usage(format!(
                "Unsupported --formatter {f}: only Kafka's DefaultMessageFormatter is built in"
            ));
        }
    }
    let start_offset = args.offset.as_deref().map(parse_offset).transpose()?;
    let bootstrap = super::resolve_bootstrap(
        args.bootstrap_server.as_deref(),
        None,
        args.zookeeper.as_deref(),
    )?;

    let fmt_props =
        super::properties_with_overrides(args.formatter_config.as_deref(), &args.property)?;
    let formatter = FormatterConfig::from_properties(&fmt_props)?;

    let mut props =
        super::properties_with_overrides(args.consumer_config.as_deref(), &args.consumer_property)?;
    if let (Some(g), Some(p)) = (&args.group, props.get("group.id")) {
        if g != p {
            return usage(format!(
                "Group id from --group ({g}) conflicts with the consumer property group.id ({p})"
            ));
        }
    }
    let throwaway_group = args.group.is_none() && !props.contains_key("group.id");
    let group = match args
        .group
        .clone()
        .or_else(|| props.get("group.id").cloned())
    {
        Some(g) => g,
        None => {
            props
                .entry("enable.auto.commit".into())
                .or_insert_with(|| "false".into());
            format!("console-consumer-{}", super::random_below(100_000))
        }
    };
    let group_id = group.clone();
    props.insert("group.id".into(), group);
    props
        .entry("client.id".into())
        .or_insert_with(|| "console-consumer".into());
    if args.from_beginning {
        if props
            .get("auto.offset.reset")
            .is_some_and(|v| v != "earliest")
        {
            return usage(
                "Can't simultaneously specify --from-beginning and 'auto.offset.reset=latest'",
            );
        }
        props.insert("auto.offset.reset".into(), "earliest".into());
    } else {
        props
            .entry("auto.offset.reset".into())
            .or_insert_with(|| "latest".into());
    }
    if let Some(level) = &args.isolation_level {
        if level != "read_committed" && level != "read_uncommitted" {
            return usage(format!(
                "Invalid --isolation-level '{level}': read_committed or read_uncommitted"
            ));
        }
        props.insert("isolation.level".into(), level.clone());
    }
    super::consumer_defaults(&mut props);
    let timeout = super::connect_timeout(args.connect_timeout_ms);
    let consumer: BaseConsumer = super::client_config(&bootstrap, &props)
        .create()
        .map_err(|e| anyhow::anyhow!("invalid consumer configuration: {e}"))?;
    super::check_reachable(consumer.client(), &bootstrap, timeout)?;

    if let Some(topic) = &args.topic {
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| super::unreachable(&bootstrap, timeout, e))?;
        let t = md.topics().iter().find(|t| t.name() == topic);
        if t.is_none_or(|t| t.error().is_some() || t.partitions().is_empty()) {
            anyhow::bail!(
                "topic '{topic}' does not exist (create it with kafka-topics.sh --create --topic {topic})"
            );
        }
        match args.partition {
            Some(p) => {
                if !t.is_some_and(|t| t.partitions().iter().any(|x| x.id() == p)) {
                    anyhow::bail!("partition {p} of topic '{topic}' does not exist");
                }
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(topic, p, start_offset.unwrap_or(Offset::End))?;
                consumer.assign(&tpl)?;
            }
            None if throwaway_group && !super::groups_supported(consumer.client(), timeout) => {
                // No group coordinator: a throw-away group commits nothing, so reading every
                // partition directly is the same to the user.
                let start = if args.from_beginning {
                    Offset::Beginning
                } else {
                    Offset::End
                };
                consumer.assign(&super::all_partitions(&md, topic, start)?)?;
            }
            None => {
                require_groups(&consumer, &bootstrap, timeout)?;
                if args.from_beginning && !throwaway_group {
                    hint_if_resuming(&consumer, &group_id, &md, topic, timeout);
                }
                consumer.subscribe(&[topic])?;
            }
        }
    } else if let Some(pattern) = &include {
        // Kafka matches the whole topic name.
        let core = pattern.trim_start_matches('^').trim_end_matches('$');
        if throwaway_group && !super::groups_supported(consumer.client(), timeout) {
            let matcher = regex::Regex::new(&format!("^(?:{core})$")).map_err(|e| {
                super::UsageError(format!("Invalid --include pattern '{pattern}': {e}"))
            })?;
            let md = consumer
                .fetch_metadata(None, timeout)
                .map_err(|e| super::unreachable(&bootstrap, timeout, e))?;
            let start = if args.from_beginning {
                Offset::Beginning
            } else {
                Offset::End
            };
            let mut tpl = TopicPartitionList::new();
            for t in md.topics() {
                if !t.name().starts_with("__") && matcher.is_match(t.name()) {
                    for p in t.partitions() {
                        tpl.add_partition_offset(t.name(), p.id(), start)?;
                    }
                }
            }
            consumer.assign(&tpl)?;
        } else {
            require_groups(&consumer, &bootstrap, timeout)?;
            consumer.subscribe(&[&format!("^({core})$")])?;
        }
    }

    let interrupted = super::interrupt_flag();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(4096);
    let mut count: u64 = 0;
    let mut last = Instant::now();
    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut result = Ok(());
    'outer: loop {
        if args.max_messages.is_some_and(|m| count >= m) || interrupted.load(Ordering::SeqCst) {
            break;
        }
        if let Some(idle) = idle {
            if last.elapsed() >= idle {
                eprintln!(
                    "ERROR Error processing message, terminating consumer process: \
                     org.apache.kafka.common.errors.TimeoutException"
                );
                break;
            }
        }
        let mut polled = consumer.poll(Duration::ZERO);
        if polled.is_none() {
            if out.flush().is_err() {
                eprintln!("Unable to write to standard out, closing consumer.");
                break;
            }
            polled = consumer.poll(Duration::from_millis(100));
        }
        let msg = match polled {
            None => continue,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                // Transient errors (a broker restarting, end of partition) are not fatal.
                if matches!(
                    e.rdkafka_error_code(),
                    Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition)
                        | Some(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed)
                        | Some(rdkafka::types::RDKafkaErrorCode::GroupAuthorizationFailed)
                ) {
                    result = Err(anyhow::anyhow!("{e}"));
                    break 'outer;
                }
                continue;
            }
        };
        last = Instant::now();
        let headers: Vec<(&str, Option<&[u8]>)> = msg
            .headers()
            .map(|h| h.iter().map(|x| (x.key, x.value)).collect())
            .unwrap_or_default();
        let view = RecordView {
            timestamp: msg.timestamp(),
            partition: msg.partition(),
            offset: msg.offset(),
            epoch: None,
            headers,
            key: msg.key(),
            value: msg.payload(),
        };
        buf.clear();
        format_record(&mut buf, &view, &formatter);
        count += 1;
        if out.write_all(&buf).is_err() {
            eprintln!("Unable to write to standard out, closing consumer.");
            break;
        }
    }
    let _ = out.flush();
    drop(out);
    eprintln!("{}", total_line(count));
    // Closing commits the group's position when auto-commit is on.
    drop(consumer);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> RecordView<'a> {
        RecordView {
            timestamp: Timestamp::CreateTime(1718000000000),
            partition: 0,
            offset: 42,
            epoch: None,
            headers: vec![],
            key,
            value,
        }
    }

    fn cfg(pairs: &[(&str, &str)]) -> FormatterConfig {
        FormatterConfig::from_properties(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn fmt(r: &RecordView<'_>, c: &FormatterConfig) -> String {
        let mut out = Vec::new();
        format_record(&mut out, r, c);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn value_only_by_default() {
        assert_eq!(fmt(&view(Some(b"k"), Some(b"hello")), &cfg(&[])), "hello\n");
    }

    #[test]
    fn kafka_example_layout() {
        let c = cfg(&[
            ("print.key", "true"),
            ("print.timestamp", "true"),
            ("print.partition", "true"),
            ("print.offset", "true"),
        ]);
        assert_eq!(
            fmt(&view(Some(b"k1"), Some(b"hello")), &c),
            "CreateTime:1718000000000\tPartition:0\tOffset:42\tk1\thello\n"
        );
    }

    #[test]
    fn nulls_headers_and_separators() {
        let c = cfg(&[
            ("print.key", "true"),
            ("print.headers", "true"),
            ("key.separator", " - "),
            ("line.separator", "|"),
        ]);
        let mut r = view(None, None);
        assert_eq!(fmt(&r, &c), "NO_HEADERS - null - null|");
        r.headers = vec![("a", Some(b"1")), ("b", None)];
        assert_eq!(fmt(&r, &c), "a:1,b:null - null - null|");
    }

    #[test]
    fn key_without_value_ends_the_line() {
        let c = cfg(&[("print.key", "true"), ("print.value", "false")]);
        assert_eq!(fmt(&view(Some(b"k"), Some(b"v")), &c), "k\n");
    }

    #[test]
    fn log_append_time_and_no_timestamp() {
        let c = cfg(&[("print.timestamp", "TRUE")]);
        let mut r = view(None, Some(b"v"));
        r.timestamp = Timestamp::LogAppendTime(5);
        assert_eq!(fmt(&r, &c), "LogAppendTime:5\tv\n");
        r.timestamp = Timestamp::NotAvailable;
        assert_eq!(fmt(&r, &c), "NO_TIMESTAMP\tv\n");
    }

    #[test]
    fn escaped_separators() {
        let c = cfg(&[("print.key", "true"), ("key.separator", "\\t")]);
        assert_eq!(c.key_separator, b"\t");
    }

    #[test]
    fn unknown_formatter_property_is_refused() {
        assert!(FormatterConfig::from_properties(
            &[("print.keys".to_string(), "true".to_string())]
                .into_iter()
                .collect()
        )
        .is_err());
    }

    #[test]
    fn offsets_parse_as_kafka_says() {
        assert_eq!(parse_offset("earliest").unwrap(), Offset::Beginning);
        assert_eq!(parse_offset("latest").unwrap(), Offset::End);
        assert_eq!(parse_offset("7").unwrap(), Offset::Offset(7));
        assert_eq!(
            parse_offset("-1").unwrap_err().to_string(),
            "The provided offset value '-1' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long."
        );
    }

    #[test]
    fn total_line_is_always_plural() {
        assert_eq!(total_line(1), "Processed a total of 1 messages");
    }

    #[test]
    fn topic_xor_include() {
        let err = run(ConsoleConsumerArgs::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Exactly one of --include/--topic is required."
        );
    }
}
