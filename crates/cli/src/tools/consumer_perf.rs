//! `flumen consumer-perf-test` (`kafka-consumer-perf-test.sh`): consumes N records and prints
//! Kafka's CSV-style summary.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::ClientContext;

use super::usage;

/// Arguments of `flumen consumer-perf-test`, spelled as `kafka-consumer-perf-test.sh` does.
#[derive(clap::Args, Debug, Default)]
pub struct ConsumerPerfArgs {
    /// The Kafka server to connect to (HOST:PORT[,HOST:PORT…]).
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Legacy spelling of --bootstrap-server (Kafka 2.x–3.x).
    #[arg(long = "broker-list", value_name = "HOST:PORT")]
    pub broker_list: Option<String>,
    /// Legacy (Kafka ≤ 1.x): a ZooKeeper address; means the cluster at the default bootstrap
    /// address.
    #[arg(long, value_name = "HOST:2181")]
    pub zookeeper: Option<String>,
    /// The topic to consume.
    #[arg(long)]
    pub topic: Option<String>,
    /// How many records to consume.
    #[arg(long)]
    pub messages: Option<u64>,
    /// The consumer group (default `perf-consumer-NNNNN`).
    #[arg(long)]
    pub group: Option<String>,
    /// `fetch.max.bytes` (default 1048576).
    #[arg(long = "fetch-size")]
    pub fetch_size: Option<u64>,
    /// `socket.receive.buffer.bytes` (default 2097152).
    #[arg(long = "socket-buffer-size")]
    pub socket_buffer_size: Option<u64>,
    /// Start at the end of the log instead of the beginning.
    #[arg(long = "from-latest")]
    pub from_latest: bool,
    /// A consumer properties file.
    #[arg(long = "consumer.config", value_name = "FILE")]
    pub consumer_config: Option<std::path::PathBuf>,
    /// Give up when no record arrives for this many ms (default 10000).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// With --show-detailed-stats: ms between rows (default 5000).
    #[arg(long = "reporting-interval")]
    pub reporting_interval: Option<u64>,
    /// Print a row per reporting interval instead of one summary row.
    #[arg(long = "show-detailed-stats")]
    pub show_detailed_stats: bool,
    /// Java date format of the time columns (default `yyyy-MM-dd HH:mm:ss:SSS`).
    #[arg(long = "date-format")]
    pub date_format: Option<String>,
    /// Leave out the header line.
    #[arg(long = "hide-header")]
    pub hide_header: bool,
    /// Accepted for compatibility; librdkafka's statistics are not printed.
    #[arg(long = "print-metrics")]
    pub print_metrics: bool,
    /// Accepted for compatibility (removed in Kafka 4.0).
    #[arg(long, hide = true)]
    pub threads: Option<u32>,
    /// Accepted for compatibility (removed in Kafka 4.0).
    #[arg(long = "num-fetch-threads", hide = true)]
    pub num_fetch_threads: Option<u32>,
    /// Print only the final result, as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the cluster before giving up (default $FLUMEN_CONNECT_TIMEOUT_MS,
    /// else 5000).
    #[arg(long = "connect-timeout-ms", value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
}

/// The summary header line.
pub const HEADER: &str = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";
/// The header line with --show-detailed-stats.
pub const DETAILED_HEADER: &str = "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Bytes consumed (keys and values).
    pub bytes: u64,
    /// Records consumed.
    pub messages: u64,
    /// Wall time of the run, ms.
    pub elapsed_ms: u64,
    /// Time spent joining the group, ms.
    pub rebalance_ms: u64,
}

/// The numeric columns after the two time columns (4 decimals, comma+space separated).
pub fn stats_columns(m: &Measured) -> String {
    let mb = m.bytes as f64 / (1024.0 * 1024.0);
    let secs = (m.elapsed_ms as f64 / 1000.0).max(1e-9);
    let fetch_ms = m.elapsed_ms.saturating_sub(m.rebalance_ms);
    let fetch_secs = fetch_ms as f64 / 1000.0;
    let (fetch_mbps, fetch_rps) = if fetch_ms == 0 {
        (0.0, 0.0)
    } else {
        (mb / fetch_secs, m.messages as f64 / fetch_secs)
    };
    format!(
        "{mb:.4}, {:.4}, {}, {:.4}, {}, {fetch_ms}, {fetch_mbps:.4}, {fetch_rps:.4}",
        mb / secs,
        m.messages,
        m.messages as f64 / secs,
        m.rebalance_ms
    )
}

/// Translates a Java `SimpleDateFormat` pattern (the common letters) to chrono's.
pub fn java_date_format(pattern: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y".to_string(),
            ('y', _) => "%Y".to_string(),
            ('M', _) => "%m".to_string(),
            ('d', _) => "%d".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', _) => "%3f".to_string(),
            ('a', _) => "%p".to_string(),
            ('Z', _) => "%z".to_string(),
            ('%', _) => "%%".repeat(n),
            (other, _) => other.to_string().repeat(n),
        };
        out.push_str(&piece);
        i += n;
    }
    out
}

fn format_time(t: SystemTime, chrono_fmt: &str) -> String {
    let dt: chrono::DateTime<chrono::Local> = t.into();
    dt.format(chrono_fmt).to_string()
}

struct PerfConsumerContext {
    assigned_at: Mutex<Option<Instant>>,
}

impl ClientContext for PerfConsumerContext {}

impl ConsumerContext for PerfConsumerContext {
    fn post_rebalance(
        &self,
        _base: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if matches!(rebalance, Rebalance::Assign(_)) {
            if let Ok(mut a) = self.assigned_at.lock() {
                a.get_or_insert_with(Instant::now);
            }
        }
    }
}

/// Runs the tool.
pub fn run(args: ConsumerPerfArgs) -> anyhow::Result<()> {
    let Some(topic) = args.topic.clone() else {
        return usage("Missing required argument \"[topic]\"");
    };
    let Some(count) = args.messages else {
        return usage("Missing required argument \"[messages]\"");
    };
    let bootstrap = super::resolve_bootstrap(
        args.bootstrap_server.as_deref(),
        args.broker_list.as_deref(),
        args.zookeeper.as_deref(),
    )?;
    let mut props = super::properties_with_overrides(args.consumer_config.as_deref(), &[])?;
    let throwaway_group = args.group.is_none() && !props.contains_key("group.id");
    let group = args
        .group
        .clone()
        .or_else(|| props.get("group.id").cloned())
        .unwrap_or_else(|| format!("perf-consumer-{}", super::random_below(100_000)));
    props.insert("group.id".into(), group);
    props.insert(
        "auto.offset.reset".into(),
        if args.from_latest {
            "latest"
        } else {
            "earliest"
        }
        .into(),
    );
    props
        .entry("enable.auto.commit".into())
        .or_insert_with(|| "false".into());
    if let Some(f) = args.fetch_size {
        props.insert("fetch.max.bytes".into(), f.to_string());
    }
    if let Some(s) = args.socket_buffer_size {
        props.insert("socket.receive.buffer.bytes".into(), s.to_string());
    }
    super::consumer_defaults(&mut props);
    let timeout = super::connect_timeout(args.connect_timeout_ms);
    let consumer: BaseConsumer<PerfConsumerContext> = super::client_config(&bootstrap, &props)
        .create_with_context(PerfConsumerContext {
            assigned_at: Mutex::new(None),
        })
        .map_err(|e| anyhow::anyhow!("invalid consumer configuration: {e}"))?;
    super::check_reachable(consumer.client(), &bootstrap, timeout)?;
    let md = consumer
        .fetch_metadata(Some(&topic), timeout)
        .map_err(|e| super::unreachable(&bootstrap, timeout, e))?;
    if md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .is_none_or(|t| t.error().is_some() || t.partitions().is_empty())
    {
        anyhow::bail!("topic '{topic}' does not exist");
    }

    let date_fmt = java_date_format(
        args.date_format
            .as_deref()
            .unwrap_or("yyyy-MM-dd HH:mm:ss:SSS"),
    );
    let idle = Duration::from_millis(args.timeout.unwrap_or(10_000));
    let interval = Duration::from_millis(args.reporting_interval.unwrap_or(5000));
    if !args.hide_header && !args.json {
        if args.show_detailed_stats {
            println!("{DETAILED_HEADER}");
        } else if !super::ProgressBar::new(true).enabled() {
            println!("{HEADER}");
        }
    }
    let start_wall = SystemTime::now();
    let start = Instant::now();
    if throwaway_group && !super::groups_supported(consumer.client(), timeout) {
        // No group coordinator: read every partition directly (nothing is committed anyway).
        let start = if args.from_latest {
            rdkafka::Offset::End
        } else {
            rdkafka::Offset::Beginning
        };
        consumer.assign(&super::all_partitions(&md, &topic, start)?)?;
        if let Ok(mut a) = consumer.context().assigned_at.lock() {
            *a = Some(Instant::now());
        }
    } else {
        consumer.subscribe(&[&topic])?;
    }
    let interrupted = super::interrupt_flag();
    let mut bar = super::ProgressBar::new(!args.json && !args.show_detailed_stats);
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut last_record = Instant::now();
    let mut last_report = Instant::now();
    let (mut report_messages, mut report_bytes) = (0u64, 0u64);
    let mut timed_out = false;
    while messages < count && !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        if last_record.elapsed() >= idle {
            timed_out = true;
            break;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            messages += 1;
            bytes += (m.payload_len() + m.key().map_or(0, |k| k.len())) as u64;
            last_record = Instant::now();
        }
        bar.draw(messages, count, "records consumed");
        if args.show_detailed_stats && last_report.elapsed() >= interval {
            let window = Measured {
                bytes: bytes - report_bytes,
                messages: messages - report_messages,
                elapsed_ms: last_report.elapsed().as_millis() as u64,
                rebalance_ms: 0,
            };
            println!(
                "{}, 0, {}",
                format_time(SystemTime::now(), &date_fmt),
                stats_columns(&window)
            );
            last_report = Instant::now();
            report_messages = messages;
            report_bytes = bytes;
        }
    }
    let elapsed_ms = start.elapsed().as_millis() as u64;
    let end_wall = SystemTime::now();
    bar.clear();
    if bar.enabled() && !args.hide_header {
        println!("{HEADER}");
    }
    let rebalance_ms = consumer
        .context()
        .assigned_at
        .lock()
        .ok()
        .and_then(|a| *a)
        .map_or(0, |t| t.duration_since(start).as_millis() as u64);
    let measured = Measured {
        bytes,
        messages,
        elapsed_ms,
        rebalance_ms,
    };
    if timed_out {
        println!(
            "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded. You can use the --timeout option to increase the timeout.",
            idle.as_millis()
        );
    }
    if args.json {
        let mb = bytes as f64 / (1024.0 * 1024.0);
        let secs = (elapsed_ms as f64 / 1000.0).max(1e-9);
        println!(
            "{}",
            serde_json::json!({
                "start_time": format_time(start_wall, &date_fmt),
                "end_time": format_time(end_wall, &date_fmt),
                "data_consumed_mb": mb,
                "mb_per_sec": mb / secs,
                "messages": messages,
                "messages_per_sec": messages as f64 / secs,
                "rebalance_time_ms": rebalance_ms,
                "fetch_time_ms": elapsed_ms.saturating_sub(rebalance_ms),
                "timed_out": timed_out,
            })
        );
    } else if !args.show_detailed_stats {
        println!(
            "{}, {}, {}",
            format_time(start_wall, &date_fmt),
            format_time(end_wall, &date_fmt),
            stats_columns(&measured)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_have_four_decimals() {
        let m = Measured {
            bytes: 1024 * 1024 * 10,
            messages: 1000,
            elapsed_ms: 2000,
            rebalance_ms: 1000,
        };
        assert_eq!(
            stats_columns(&m),
            "10.0000, 5.0000, 1000, 500.0000, 1000, 1000, 10.0000, 1000.0000"
        );
    }

    #[test]
    fn default_date_format() {
        assert_eq!(
            java_date_format("yyyy-MM-dd HH:mm:ss:SSS"),
            "%Y-%m-%d %H:%M:%S:%3f"
        );
        let t = SystemTime::UNIX_EPOCH;
        assert_eq!(format_time(t, &java_date_format("SSS")), "000");
    }

    #[test]
    fn header_has_ten_columns() {
        assert_eq!(HEADER.split(", ").count(), 10);
        assert_eq!(DETAILED_HEADER.split(", ").count(), 10);
    }
}
