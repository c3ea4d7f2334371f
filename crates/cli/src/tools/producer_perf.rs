//! `flumen producer-perf-test` (`kafka-producer-perf-test.sh`): produces N records as fast as
//! allowed and reports throughput and latency percentiles in Kafka's words.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::usage;

/// Arguments of `flumen producer-perf-test`, spelled as `kafka-producer-perf-test.sh` does.
#[derive(clap::Args, Debug, Default)]
pub struct ProducerPerfArgs {
    /// The topic to produce to.
    #[arg(long)]
    pub topic: Option<String>,
    /// How many records to produce.
    #[arg(long = "num-records", allow_negative_numbers = true)]
    pub num_records: Option<i64>,
    /// Records per second at most; -1 for no limit.
    #[arg(long, allow_negative_numbers = true)]
    pub throughput: Option<f64>,
    /// Record size in bytes (random uppercase letters).
    #[arg(long = "record-size")]
    pub record_size: Option<usize>,
    /// A UTF-8 file of payloads, one picked at random per record.
    #[arg(long = "payload-file")]
    pub payload_file: Option<std::path::PathBuf>,
    /// The delimiter between payloads in --payload-file (default `\n`).
    #[arg(long = "payload-delimiter")]
    pub payload_delimiter: Option<String>,
    /// Payloads are increasing integers as text.
    #[arg(long = "payload-monotonic")]
    pub payload_monotonic: bool,
    /// Producer properties `k=v` (several after one flag, e.g. `bootstrap.servers=H:P acks=1`).
    #[arg(long = "producer-props", num_args = 1.., value_name = "KEY=VALUE")]
    pub producer_props: Vec<String>,
    /// A producer properties file (--producer-props wins).
    #[arg(long = "producer.config", value_name = "FILE")]
    pub producer_config: Option<std::path::PathBuf>,
    /// The Kafka server (a convenience; `bootstrap.servers` in --producer-props also works).
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Accepted for compatibility; librdkafka's statistics are not printed.
    #[arg(long = "print-metrics")]
    pub print_metrics: bool,
    /// Produce inside transactions with this id.
    #[arg(long = "transactional-id")]
    pub transactional_id: Option<String>,
    /// How long each transaction stays open (default 3000 with --transactional-id).
    #[arg(long = "transaction-duration-ms")]
    pub transaction_duration_ms: Option<u64>,
    /// Print only the final result, as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the cluster before giving up (default $FLUMEN_CONNECT_TIMEOUT_MS,
    /// else 5000).
    #[arg(long = "connect-timeout-ms", value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
}

/// Latency statistics, as Kafka's `ProducerPerformance.Stats` keeps them.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    iteration: u64,
    sampling: u64,
    latencies: Vec<u32>,
    count: u64,
    bytes: u64,
    max_latency: u32,
    total_latency: u64,
    window_start: Instant,
    window_count: u64,
    window_bytes: u64,
    window_max: u32,
    window_total: u64,
    errors: u64,
}

/// The final result.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Records acknowledged.
    pub records: u64,
    /// Records per second.
    pub records_per_sec: f64,
    /// MiB per second.
    pub mb_per_sec: f64,
    /// Mean latency, ms.
    pub avg_latency: f64,
    /// Max latency, ms.
    pub max_latency: f64,
    /// Percentiles 50, 95, 99, 99.9 (ms).
    pub percentiles: [u32; 4],
}

impl Stats {
    /// Stats for `num_records` records, sampling at most ~500k latencies.
    pub fn new(num_records: u64) -> Self {
        let sampling = (num_records / num_records.clamp(1, 500_000)).max(1);
        let now = Instant::now();
        Stats {
            start: now,
            iteration: 0,
            sampling,
            latencies: Vec::with_capacity((num_records / sampling + 1) as usize),
            count: 0,
            bytes: 0,
            max_latency: 0,
            total_latency: 0,
            window_start: now,
            window_count: 0,
            window_bytes: 0,
            window_max: 0,
            window_total: 0,
            errors: 0,
        }
    }

    /// Records one acknowledged record.
    pub fn record(&mut self, latency_ms: u32, bytes: usize) {
        self.count += 1;
        self.bytes += bytes as u64;
        self.total_latency += latency_ms as u64;
        self.max_latency = self.max_latency.max(latency_ms);
        self.window_count += 1;
        self.window_bytes += bytes as u64;
        self.window_total += latency_ms as u64;
        self.window_max = self.window_max.max(latency_ms);
        if self.iteration.is_multiple_of(self.sampling) {
            self.latencies.push(latency_ms);
        }
        self.iteration += 1;
    }

    /// Kafka's periodic line for the current window, then starts a new window.
    pub fn window_line(&mut self) -> String {
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let line = window_text(
            self.window_count,
            self.window_count as f64 / secs,
            self.window_bytes as f64 / secs / (1024.0 * 1024.0),
            if self.window_count == 0 {
                0.0
            } else {
                self.window_total as f64 / self.window_count as f64
            },
            self.window_max as f64,
        );
        self.window_start = Instant::now();
        self.window_count = 0;
        self.window_bytes = 0;
        self.window_max = 0;
        self.window_total = 0;
        line
    }

    /// The final result.
    pub fn summary(&mut self) -> Summary {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        self.latencies.sort_unstable();
        Summary {
            records: self.count,
            records_per_sec: self.count as f64 / secs,
            mb_per_sec: self.bytes as f64 / secs / (1024.0 * 1024.0),
            avg_latency: if self.count == 0 {
                0.0
            } else {
                self.total_latency as f64 / self.count as f64
            },
            max_latency: self.max_latency as f64,
            percentiles: percentiles(&self.latencies, [0.5, 0.95, 0.99, 0.999]),
        }
    }
}

/// Percentiles of a sorted sample, index = floor(p × count), as Kafka computes them.
pub fn percentiles(sorted: &[u32], ps: [f64; 4]) -> [u32; 4] {
    ps.map(|p| {
        if sorted.is_empty() {
            0
        } else {
            let i = ((p * sorted.len() as f64) as usize).min(sorted.len() - 1);
            sorted[i]
        }
    })
}

/// Kafka's periodic line.
pub fn window_text(count: u64, rps: f64, mbps: f64, avg: f64, max: f64) -> String {
    format!(
        "{count} records sent, {rps:.1} records/sec ({mbps:.2} MB/sec), {avg:.1} ms avg latency, {max:.1} ms max latency."
    )
}

/// Kafka's final line (3.x: records/sec with six decimals).
pub fn summary_text(s: &Summary) -> String {
    format!(
        "{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
        s.records,
        s.records_per_sec,
        s.mb_per_sec,
        s.avg_latency,
        s.max_latency,
        s.percentiles[0],
        s.percentiles[1],
        s.percentiles[2],
        s.percentiles[3]
    )
}

/// The final result as one JSON object (`--json`).
pub fn summary_json(s: &Summary) -> String {
    serde_json::json!({
        "records_sent": s.records,
        "records_per_sec": s.records_per_sec,
        "mb_per_sec": s.mb_per_sec,
        "avg_latency_ms": s.avg_latency,
        "max_latency_ms": s.max_latency,
        "p50_ms": s.percentiles[0],
        "p95_ms": s.percentiles[1],
        "p99_ms": s.percentiles[2],
        "p999_ms": s.percentiles[3],
    })
    .to_string()
}

struct PerfContext {
    stats: Mutex<Stats>,
}

impl ClientContext for PerfContext {}

impl ProducerContext for PerfContext {
    type DeliveryOpaque = Box<(Instant, usize)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (sent, bytes) = *opaque;
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => stats.record(sent.elapsed().as_millis() as u32, bytes),
            Err((e, _)) => {
                stats.errors += 1;
                if stats.errors <= 5 {
                    eprintln!("ERROR Error when sending message: {e}");
                }
            }
        }
    }
}

/// Random uppercase letters A–Z from a fixed seed, as Kafka's tool fills its payload.
pub fn random_payload(size: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

/// Runs the tool.
pub fn run(args: ProducerPerfArgs) -> anyhow::Result<()> {
    let Some(topic) = args.topic.clone() else {
        return usage("argument --topic is required");
    };
    let Some(num_records) = args.num_records else {
        return usage("argument --num-records is required");
    };
    let Some(throughput) = args.throughput else {
        return usage("argument --throughput is required");
    };
    let sources = super::count_set(&[
        args.record_size.is_some(),
        args.payload_file.is_some(),
        args.payload_monotonic,
    ]);
    if sources != 1 {
        return usage(
            "Exactly one of the following arguments is required: --record-size, --payload-file, --payload-monotonic",
        );
    }
    let num_records = num_records.max(0) as u64;
    let payloads: Vec<Vec<u8>> = if let Some(path) = &args.payload_file {
        let abs = std::fs::canonicalize(path)
            .with_context(|| format!("File does not exist: {}", path.display()))?;
        if !args.json {
            println!("Reading payloads from: {}", abs.display());
        }
        let text = std::fs::read_to_string(&abs)
            .with_context(|| format!("cannot read {}", abs.display()))?;
        let delim = args
            .payload_delimiter
            .clone()
            .unwrap_or_else(|| "\n".into());
        let delim = delim.replace("\\n", "\n").replace("\\t", "\t");
        let list: Vec<Vec<u8>> = text
            .split(delim.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        if list.is_empty() {
            anyhow::bail!("File does not contain any payloads: {}", abs.display());
        }
        if !args.json {
            println!("Number of messages read: {}", list.len());
        }
        list
    } else if let Some(size) = args.record_size {
        vec![random_payload(size)]
    } else {
        Vec::new()
    };

    let mut props =
        super::properties_with_overrides(args.producer_config.as_deref(), &args.producer_props)?;
    if let Some(id) = &args.transactional_id {
        props.insert("transactional.id".into(), id.clone());
    }
    let Some(bootstrap) = args
        .bootstrap_server
        .clone()
        .or_else(|| props.get("bootstrap.servers").cloned())
    else {
        return usage(
            "Missing bootstrap.servers: pass --producer-props bootstrap.servers=HOST:PORT (or --bootstrap-server)",
        );
    };
    let timeout = super::connect_timeout(args.connect_timeout_ms);
    let producer: BaseProducer<PerfContext> = super::client_config(&bootstrap, &props)
        .create_with_context(PerfContext {
            stats: Mutex::new(Stats::new(num_records)),
        })
        .map_err(|e| anyhow::anyhow!("invalid producer configuration: {e}"))?;
    super::check_reachable(producer.client(), &bootstrap, timeout)?;
    let transactional = args.transactional_id.is_some();
    let txn_duration = Duration::from_millis(args.transaction_duration_ms.unwrap_or(3000));
    if transactional {
        producer.init_transactions(Duration::from_secs(30))?;
        producer.begin_transaction()?;
    }
    let mut txn_start = Instant::now();

    let interrupted = super::interrupt_flag();
    let mut bar = super::ProgressBar::new(!args.json);
    let periodic = !args.json && !bar.enabled();
    let start = Instant::now();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut last_report = Instant::now();
    for i in 0..num_records {
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let monotonic;
        let payload: &[u8] = if args.payload_monotonic {
            monotonic = i.to_string().into_bytes();
            &monotonic
        } else if payloads.len() == 1 {
            &payloads[0]
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            &payloads[(seed % payloads.len() as u64) as usize]
        };
        let mut record = BaseRecord::<(), [u8], Box<(Instant, usize)>>::with_opaque_to(
            &topic,
            Box::new((Instant::now(), payload.len())),
        )
        .payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => anyhow::bail!("cannot send to topic {topic}: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
        if transactional && txn_start.elapsed() >= txn_duration {
            producer.commit_transaction(Duration::from_secs(30))?;
            producer.begin_transaction()?;
            txn_start = Instant::now();
        }
        if throughput > 0.0 {
            let due = Duration::from_secs_f64((i + 1) as f64 / throughput);
            let elapsed = start.elapsed();
            if due > elapsed {
                // Keep serving callbacks while waiting.
                producer.poll(due - elapsed);
            }
        }
        if periodic && last_report.elapsed() >= Duration::from_secs(5) {
            let line = producer.context().stats.lock().map(|mut s| s.window_line());
            if let Ok(line) = line {
                println!("{line}");
            }
            last_report = Instant::now();
        }
        if bar.enabled() {
            let acked = producer.context().stats.lock().map_or(0, |s| s.count);
            bar.draw(i + 1, num_records, &format!("sent, {acked} acknowledged"));
        }
    }
    if transactional {
        producer.commit_transaction(Duration::from_secs(30))?;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("records were still unacknowledged after 120 s")?;
    bar.clear();
    let mut stats = producer
        .context()
        .stats
        .lock()
        .map_err(|_| anyhow::anyhow!("statistics lock poisoned"))?;
    let summary = stats.summary();
    if args.json {
        println!("{}", summary_json(&summary));
    } else {
        println!("{}", summary_text(&summary));
    }
    if stats.errors > 0 {
        anyhow::bail!("{} records failed", stats.errors);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_line_matches_kafka() {
        let s = Summary {
            records: 1000000,
            records_per_sec: 199880.071957,
            mb_per_sec: 19.06,
            avg_latency: 3.24,
            max_latency: 412.0,
            percentiles: [1, 12, 40, 380],
        };
        assert_eq!(
            summary_text(&s),
            "1000000 records sent, 199880.071957 records/sec (19.06 MB/sec), 3.24 ms avg latency, 412.00 ms max latency, 1 ms 50th, 12 ms 95th, 40 ms 99th, 380 ms 99.9th."
        );
        let j: serde_json::Value = serde_json::from_str(&summary_json(&s)).unwrap();
        assert_eq!(j["records_sent"], 1000000);
        assert_eq!(j["p999_ms"], 380);
    }

    #[test]
    fn periodic_line_matches_kafka() {
        assert_eq!(
            window_text(500, 99.96, 0.0953, 2.5, 10.0),
            "500 records sent, 100.0 records/sec (0.10 MB/sec), 2.5 ms avg latency, 10.0 ms max latency."
        );
    }

    #[test]
    fn percentile_index_is_floor_of_p_times_count() {
        let sample: Vec<u32> = (0..1000).collect();
        assert_eq!(
            percentiles(&sample, [0.5, 0.95, 0.99, 0.999]),
            [500, 950, 990, 999]
        );
        assert_eq!(percentiles(&[], [0.5, 0.95, 0.99, 0.999]), [0; 4]);
    }

    #[test]
    fn stats_sample_and_sum() {
        let mut s = Stats::new(4);
        for l in [1, 2, 3, 10] {
            s.record(l, 100);
        }
        let sum = s.summary();
        assert_eq!(sum.records, 4);
        assert_eq!(sum.avg_latency, 4.0);
        assert_eq!(sum.max_latency, 10.0);
        assert_eq!(sum.percentiles, [3, 10, 10, 10]);
    }

    #[test]
    fn payload_is_uppercase_letters() {
        let p = random_payload(100);
        assert_eq!(p.len(), 100);
        assert!(p.iter().all(|b| b.is_ascii_uppercase()));
    }

    #[test]
    fn exactly_one_payload_source() {
        let err = run(ProducerPerfArgs {
            topic: Some("t".into()),
            num_records: Some(1),
            throughput: Some(-1.0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("Exactly one of"));
    }
}
