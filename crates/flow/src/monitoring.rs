//! Flume's counters (`SourceCounter`, `ChannelCounter`, `SinkCounter`) and the HTTP monitor
//! (`-Dflume.monitoring.type=http -Dflume.monitoring.port=P`).
//!
//! `GET /metrics` answers Flume's JSON (`{"CHANNEL.c1":{"ChannelSize":"0",…}}`, every value a
//! string, as Flume's Gson dump). The same counters in Prometheus text format are served at
//! `/metrics` when the request asks for `text/plain` or OpenMetrics (what a Prometheus
//! scraper sends), at `/metrics?format=prometheus`, and at `/prometheus`.
//!
//! The HTTP side is a small hand-written HTTP/1.1 responder (one request per connection,
//! `Connection: close`), shared with nothing else: two GET routes do not justify pulling a
//! web framework into the agent's build.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Flume's SourceCounter attribute names, in MBean order.
pub const SOURCE_COUNTERS: &[&str] = &[
    "EventReceivedCount",
    "EventAcceptedCount",
    "AppendReceivedCount",
    "AppendAcceptedCount",
    "AppendBatchReceivedCount",
    "AppendBatchAcceptedCount",
    "OpenConnectionCount",
    "EventReadFail",
    "ChannelWriteFail",
    "GenericProcessingFail",
];

/// Flume's SinkCounter attribute names.
pub const SINK_COUNTERS: &[&str] = &[
    "ConnectionCreatedCount",
    "ConnectionClosedCount",
    "ConnectionFailedCount",
    "BatchEmptyCount",
    "BatchUnderflowCount",
    "BatchCompleteCount",
    "EventDrainAttemptCount",
    "EventDrainSuccessCount",
    "EventWriteFail",
    "ChannelReadFail",
];

/// Flume's ChannelCounter attribute names (size, capacity and fill are computed).
pub const CHANNEL_COUNTERS: &[&str] = &[
    "EventPutAttemptCount",
    "EventPutSuccessCount",
    "EventTakeAttemptCount",
    "EventTakeSuccessCount",
];

/// A group of named counters of one component, with its start and stop times.
#[derive(Debug)]
pub struct CounterGroup {
    /// `SOURCE`, `CHANNEL` or `SINK`.
    pub kind: &'static str,
    /// The component's name.
    pub name: String,
    names: &'static [&'static str],
    values: Box<[AtomicI64]>,
    start_time: AtomicI64,
    stop_time: AtomicI64,
}

impl CounterGroup {
    /// A zeroed group.
    pub fn new(kind: &'static str, name: &str, names: &'static [&'static str]) -> Self {
        CounterGroup {
            kind,
            name: name.to_string(),
            names,
            values: names.iter().map(|_| AtomicI64::new(0)).collect(),
            start_time: AtomicI64::new(0),
            stop_time: AtomicI64::new(0),
        }
    }

    /// Adds `n` to counter `name` (a name of this group's table).
    pub fn add(&self, name: &str, n: i64) {
        if let Some(i) = self.names.iter().position(|x| *x == name) {
            self.values[i].fetch_add(n, Ordering::Relaxed);
        } else {
            debug_assert!(false, "unknown counter {name}");
        }
    }

    /// The value of counter `name`.
    pub fn get(&self, name: &str) -> i64 {
        self.names
            .iter()
            .position(|x| *x == name)
            .map(|i| self.values[i].load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Records the start (resets every counter, as Flume does on (re)start).
    pub fn start(&self) {
        for v in self.values.iter() {
            v.store(0, Ordering::Relaxed);
        }
        self.start_time.store(now_ms(), Ordering::Relaxed);
        self.stop_time.store(0, Ordering::Relaxed);
    }

    /// Records the stop.
    pub fn stop(&self) {
        self.stop_time.store(now_ms(), Ordering::Relaxed);
    }

    /// The attributes as Flume's JSON shows them (every value a string).
    pub fn attributes(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .names
            .iter()
            .zip(self.values.iter())
            .map(|(n, v)| (n.to_string(), v.load(Ordering::Relaxed).to_string()))
            .collect();
        out.push((
            "StartTime".into(),
            self.start_time.load(Ordering::Relaxed).to_string(),
        ));
        out.push((
            "StopTime".into(),
            self.stop_time.load(Ordering::Relaxed).to_string(),
        ));
        out.push(("Type".into(), self.kind.to_string()));
        out
    }
}

/// Something that shows up in the monitoring output.
pub trait Monitored: Send + Sync {
    /// `SOURCE`, `CHANNEL` or `SINK`.
    fn kind(&self) -> &'static str;
    /// The component's name.
    fn name(&self) -> &str;
    /// Attribute name → value, as strings.
    fn attributes(&self) -> Vec<(String, String)>;
}

impl Monitored for CounterGroup {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn attributes(&self) -> Vec<(String, String)> {
        CounterGroup::attributes(self)
    }
}

/// Every monitored component of the agent. As in Flume, components stay listed after
/// they stop (with StopTime set).
#[derive(Default, Clone)]
pub struct Registry {
    items: Arc<Mutex<Vec<Arc<dyn Monitored>>>>,
}

impl Registry {
    /// Adds (or replaces, by kind and name) a component.
    pub fn register(&self, item: Arc<dyn Monitored>) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.retain(|i| !(i.kind() == item.kind() && i.name() == item.name()));
        items.push(item);
    }

    /// Flume's JSON document.
    pub fn json(&self) -> String {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let mut doc = serde_json::Map::new();
        for item in items.iter() {
            let mut obj = serde_json::Map::new();
            for (k, v) in item.attributes() {
                obj.insert(k, serde_json::Value::String(v));
            }
            doc.insert(
                format!("{}.{}", item.kind(), item.name()),
                serde_json::Value::Object(obj),
            );
        }
        serde_json::Value::Object(doc).to_string()
    }

    /// The same counters in Prometheus text format.
    pub fn prometheus(&self) -> String {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let mut lines: Vec<(String, String)> = Vec::new();
        for item in items.iter() {
            for (k, v) in item.attributes() {
                if k == "Type" {
                    continue;
                }
                let metric = format!("flume_{}_{}", item.kind().to_ascii_lowercase(), snake(&k));
                lines.push((metric, format!("{{component=\"{}\"}} {}", item.name(), v)));
            }
        }
        lines.sort();
        let mut out = String::new();
        let mut last = String::new();
        for (metric, rest) in lines {
            if metric != last {
                let kind = if metric.ends_with("_count")
                    || metric.ends_with("_fail")
                    || metric.ends_with("_fail_count")
                {
                    "counter"
                } else {
                    "gauge"
                };
                out.push_str(&format!("# TYPE {metric} {kind}\n"));
                last = metric.clone();
            }
            out.push_str(&metric);
            out.push_str(&rest);
            out.push('\n');
        }
        out
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Binds the HTTP monitor (at start, so a busy port fails the agent's start clearly).
pub async fn bind_http(bind: &str, port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind((bind, port)).await
}

/// Serves `/metrics` until `shutdown`.
pub async fn serve_http(listener: TcpListener, registry: Registry, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            let head_end = loop {
                let n = match tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    stream.read(&mut chunk),
                )
                .await
                {
                    Ok(Ok(n)) if n > 0 => n,
                    _ => return,
                };
                buf.extend_from_slice(&chunk[..n]);
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p;
                }
                if buf.len() > 65536 {
                    return;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.lines();
            let request = lines.next().unwrap_or_default();
            let mut parts = request.split_whitespace();
            let method = parts.next().unwrap_or_default();
            let target = parts.next().unwrap_or_default();
            let accept = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("accept"))
                .map(|(_, v)| v.trim().to_ascii_lowercase())
                .unwrap_or_default();
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let (status, ctype, body) = match (method, path) {
                ("TRACE" | "OPTIONS", _) => ("403 Forbidden", "text/plain", String::new()),
                (_, "/metrics")
                    if query.contains("format=prometheus")
                        || (!accept.contains("json")
                            && (accept.contains("openmetrics")
                                || accept.starts_with("text/plain"))) =>
                {
                    (
                        "200 OK",
                        "text/plain; version=0.0.4; charset=utf-8",
                        registry.prometheus(),
                    )
                }
                (_, "/prometheus") => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    registry.prometheus(),
                ),
                (_, "/metrics") => ("200 OK", "application/json;charset=utf-8", registry.json()),
                (_, "/") => (
                    "200 OK",
                    "text/html",
                    "<html><body><a href=\"/metrics\">Metrics</a></body></html>".to_string(),
                ),
                _ => ("404 Not Found", "text/plain", "Not Found".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_strings_and_prometheus_is_snake_case() {
        let reg = Registry::default();
        let g = Arc::new(CounterGroup::new("SOURCE", "r1", SOURCE_COUNTERS));
        g.start();
        g.add("EventAcceptedCount", 3);
        reg.register(g);
        let v: serde_json::Value = serde_json::from_str(&reg.json()).unwrap();
        assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "3");
        assert_eq!(v["SOURCE.r1"]["Type"], "SOURCE");
        assert!(reg
            .prometheus()
            .contains("flume_source_event_accepted_count{component=\"r1\"} 3\n"));
    }
}
