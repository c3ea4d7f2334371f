//! Syslog sources: `syslogtcp`, `syslogudp` and `multiport_syslogtcp` (Flume's
//! `SyslogTcpSource`, `SyslogUDPSource`, `MultiportSyslogTCPSource`, `SyslogUtils`).
//!
//! TCP: one event per `\n`-terminated line (a `\r` stays in the data); UDP: one datagram is
//! one event. Parsing tries RFC 5424 first, then RFC 3164, and sets Flume's headers:
//! `Facility`, `Severity`, `priority` (`Priority` for multiport), `version` (`Version`),
//! `timestamp` (epoch ms), `host`, and `flume.syslog.status` = `Invalid` (no valid `<PRI>`:
//! the raw input is the body) or `Incomplete` (line cut at `eventSize`). Events the channel
//! refuses are dropped and logged, as in Flume (`ChannelWriteFail`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::{Datelike, TimeZone};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::monitoring::{now_ms, CounterGroup, SOURCE_COUNTERS};

/// Which of the three syslog sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogKind {
    /// `syslogtcp`
    Tcp,
    /// `syslogudp`
    Udp,
    /// `multiport_syslogtcp`
    MultiportTcp,
}

/// Which header fields are kept in the body (`keepFields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeepFields {
    /// `priority`: keep `<PRI>`.
    pub priority: bool,
    /// `version`: keep the RFC 5424 version.
    pub version: bool,
    /// `timestamp`: keep the timestamp text.
    pub timestamp: bool,
    /// `hostname`: keep the host name.
    pub hostname: bool,
}

/// Settings of the syslog sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// Which source.
    pub kind: SyslogKind,
    /// `host`: bind address. Required.
    pub host: String,
    /// `port` (or `ports` for multiport, whitespace list). Required.
    pub ports: Vec<u16>,
    /// `eventSize`: max bytes per event including `<PRI>`. Flume's default: 2500 (TCP),
    /// 65536 for UDP datagrams.
    pub event_size: usize,
    /// `keepFields`: `none`/`false` (Flume's default), `all`/`true`, or a list of
    /// `priority version timestamp hostname`.
    pub keep: KeepFields,
    /// `clientIPHeader`: header receiving the client's IP. Default: none.
    pub client_ip_header: Option<String>,
    /// `clientHostnameHeader`: header receiving the client's host name (Flumen: its IP,
    /// no reverse DNS lookup). Default: none.
    pub client_hostname_header: Option<String>,
    /// `portHeader` (multiport): header receiving the local port. Default: none.
    pub port_header: Option<String>,
    /// `batchSize` (multiport). Flume's default: 100.
    pub batch_size: usize,
}

impl SyslogConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context, kind: SyslogKind) -> Result<Self> {
        let host = ctx.require("host")?.to_string();
        let ports = if kind == SyslogKind::MultiportTcp {
            let list = ctx.list("ports");
            if list.is_empty() {
                return Err(ctx.error("ports", "required property is missing"));
            }
            list.iter()
                .map(|p| {
                    p.parse()
                        .map_err(|_| ctx.error("ports", format!("`{p}` is not a valid port")))
                })
                .collect::<Result<Vec<u16>>>()?
        } else {
            vec![ctx.require_number("port")?]
        };
        let default_size = if kind == SyslogKind::Udp { 65536 } else { 2500 };
        let event_size = ctx.number::<usize>("eventSize", default_size)?.max(10);
        let kf = ctx.string("keepFields", "none").to_ascii_lowercase();
        let keep = match kf.trim() {
            "none" | "false" | "" => KeepFields::default(),
            "all" | "true" => KeepFields {
                priority: true,
                version: true,
                timestamp: true,
                hostname: true,
            },
            list => {
                let mut k = KeepFields::default();
                for f in list.split_whitespace() {
                    match f {
                        "priority" => k.priority = true,
                        "version" => k.version = true,
                        "timestamp" => k.timestamp = true,
                        "hostname" => k.hostname = true,
                        other => {
                            return Err(ctx.error(
                                "keepFields",
                                format!(
                                "unknown field `{other}` (priority, version, timestamp, hostname)"
                            ),
                            ))
                        }
                    }
                }
                k
            }
        };
        let batch_size = ctx.number::<usize>("batchSize", 100)?.max(1);
        Ok(SyslogConfig {
            kind,
            host,
            ports,
            event_size,
            keep,
            client_ip_header: ctx.get("clientIPHeader").map(str::to_string),
            client_hostname_header: ctx.get("clientHostnameHeader").map(str::to_string),
            port_header: ctx.get("portHeader").map(str::to_string),
            batch_size,
        })
    }

    /// Binds every port.
    pub async fn build(self, name: &str) -> Result<SyslogSource> {
        let component = format!("source {name}");
        let mut tcp = Vec::new();
        let mut udp = None;
        for &port in &self.ports {
            let addr = super::resolve_bind(&component, &self.host, port).await?;
            let err = |source| FlowError::Start {
                component: component.clone(),
                message: format!("cannot listen on {addr}"),
                source,
            };
            if self.kind == SyslogKind::Udp {
                udp = Some(UdpSocket::bind(addr).await.map_err(err)?);
            } else {
                tcp.push((port, TcpListener::bind(addr).await.map_err(err)?));
            }
        }
        Ok(SyslogSource {
            config: Arc::new(self),
            tcp,
            udp,
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        })
    }
}

/// Parses one syslog message into an event with Flume's headers.
pub fn parse(raw: &[u8], keep: KeepFields, multiport: bool, incomplete: bool) -> Event {
    let mut e = Event::default();
    let (pri_key, ver_key) = if multiport {
        ("Priority", "Version")
    } else {
        ("priority", "version")
    };
    let pri = (|| {
        if raw.first() != Some(&b'<') {
            return None;
        }
        let end = raw.iter().take(5).position(|&b| b == b'>')?;
        let digits = &raw[1..end];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
        (v <= 191).then_some((v, end + 1))
    })();
    let Some((pri, mut at)) = pri else {
        e.headers.insert("Facility".into(), "0".into());
        e.headers.insert("Severity".into(), "0".into());
        e.headers
            .insert("flume.syslog.status".into(), "Invalid".into());
        e.body = Bytes::copy_from_slice(raw);
        return e;
    };
    e.headers.insert("Facility".into(), (pri / 8).to_string());
    e.headers.insert("Severity".into(), (pri % 8).to_string());
    e.headers.insert(
        pri_key.into(),
        String::from_utf8_lossy(&raw[1..at - 1]).into_owned(),
    );
    let mut kept: Vec<u8> = Vec::new();
    if keep.priority {
        kept.extend_from_slice(&raw[..at]);
    }
    // RFC 5424 version: digits followed by a space.
    let vlen = raw[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rfc5424 = false;
    if vlen > 0 && vlen <= 2 && raw.get(at + vlen) == Some(&b' ') {
        e.headers.insert(
            ver_key.into(),
            String::from_utf8_lossy(&raw[at..at + vlen]).into_owned(),
        );
        if keep.version {
            kept.extend_from_slice(&raw[at..at + vlen + 1]);
        }
        at += vlen + 1;
        rfc5424 = true;
    }
    let rest = &raw[at..];
    let text = String::from_utf8_lossy(rest);
    let mut body_start = 0usize;
    if rfc5424 {
        let mut parts = text.splitn(3, ' ');
        if let (Some(ts), Some(host)) = (parts.next(), parts.next()) {
            let ms = if ts == "-" {
                Some(now_ms())
            } else {
                chrono::DateTime::parse_from_rfc3339(ts)
                    .ok()
                    .map(|d| d.timestamp_millis())
            };
            if let Some(ms) = ms {
                e.headers.insert("timestamp".into(), ms.to_string());
                e.headers.insert("host".into(), host.to_string());
                if keep.timestamp {
                    kept.extend_from_slice(ts.as_bytes());
                    kept.push(b' ');
                }
                if keep.hostname {
                    kept.extend_from_slice(host.as_bytes());
                    kept.push(b' ');
                }
                body_start = (ts.len() + host.len() + 2).min(rest.len());
            }
        }
    } else if text.len() >= 16 {
        // RFC 3164: "Mmm dd hh:mm:ss HOST msg" (day padded with a space).
        let ts = &text[..15];
        if let Some(ms) = parse_3164(ts) {
            let after = &text[16..];
            let host = after.split(' ').next().unwrap_or_default();
            e.headers.insert("timestamp".into(), ms.to_string());
            e.headers.insert("host".into(), host.to_string());
            if keep.timestamp {
                kept.extend_from_slice(ts.as_bytes());
                kept.push(b' ');
            }
            if keep.hostname {
                kept.extend_from_slice(host.as_bytes());
                kept.push(b' ');
            }
            body_start = (16 + host.len() + 1).min(rest.len());
        }
    }
    if incomplete {
        e.headers
            .insert("flume.syslog.status".into(), "Incomplete".into());
    }
    let msg = &rest[body_start.min(rest.len())..];
    e.body = if kept.is_empty() {
        Bytes::copy_from_slice(msg)
    } else {
        kept.extend_from_slice(msg);
        kept.into()
    };
    e
}

/// An RFC 3164 timestamp in local time with the current year, moved a year back or forth
/// so it falls within 11 months back / 1 month ahead (as Flume).
fn parse_3164(ts: &str) -> Option<i64> {
    let now = chrono::Local::now();
    let with_year = format!("{} {}", now.year(), ts.replacen("  ", " 0", 1));
    let naive = chrono::NaiveDateTime::parse_from_str(&with_year, "%Y %b %d %H:%M:%S").ok()?;
    let mut t = chrono::Local.from_local_datetime(&naive).earliest()?;
    let month = chrono::Duration::days(31);
    if t > now + month {
        t = t.with_year(now.year() - 1)?;
    } else if t < now - chrono::Duration::days(335) {
        t = t.with_year(now.year() + 1)?;
    }
    Some(t.timestamp_millis())
}

/// A running syslog source.
pub struct SyslogSource {
    config: Arc<SyslogConfig>,
    tcp: Vec<(u16, TcpListener)>,
    udp: Option<UdpSocket>,
    counter: Arc<CounterGroup>,
}

impl Source for SyslogSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let this = *self;
            if let Some(sock) = this.udp {
                let (cfg, p, c, sd) = (
                    this.config.clone(),
                    processor.clone(),
                    this.counter.clone(),
                    shutdown.clone(),
                );
                tasks.spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let r = tokio::select! {
                            _ = sd.cancelled() => return,
                            r = sock.recv_from(&mut buf) => r,
                        };
                        let Ok((n, peer)) = r else { continue };
                        let data = &buf[..n.min(cfg.event_size)];
                        let mut e = parse(data, cfg.keep, false, false);
                        client_headers(&cfg, &mut e, peer, None);
                        deliver(&p, &c, vec![e]).await;
                    }
                });
            }
            for (port, listener) in this.tcp {
                let (cfg, p, c, sd) = (
                    this.config.clone(),
                    processor.clone(),
                    this.counter.clone(),
                    shutdown.clone(),
                );
                tasks.spawn(async move {
                    loop {
                        let accepted = tokio::select! {
                            _ = sd.cancelled() => return,
                            a = listener.accept() => a,
                        };
                        let Ok((stream, peer)) = accepted else {
                            continue;
                        };
                        c.add("OpenConnectionCount", 1);
                        let (cfg, p, c, sd) = (cfg.clone(), p.clone(), c.clone(), sd.clone());
                        tokio::spawn(async move {
                            let _ = tcp_connection(stream, peer, port, cfg, p, c.clone(), sd).await;
                            c.add("OpenConnectionCount", -1);
                        });
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
            this.counter.stop();
        })
    }
}

fn client_headers(
    cfg: &SyslogConfig,
    e: &mut Event,
    peer: std::net::SocketAddr,
    port: Option<u16>,
) {
    if let Some(h) = &cfg.client_ip_header {
        e.headers.insert(h.clone(), peer.ip().to_string());
    }
    if let Some(h) = &cfg.client_hostname_header {
        e.headers.insert(h.clone(), peer.ip().to_string());
    }
    if let (Some(h), Some(p)) = (&cfg.port_header, port) {
        e.headers.insert(h.clone(), p.to_string());
    }
}

async fn deliver(p: &ChannelProcessor, c: &CounterGroup, events: Vec<Event>) {
    let n = events.len() as i64;
    c.add("EventReceivedCount", n);
    match p.process_batch(events).await {
        Ok(()) => c.add("EventAcceptedCount", n),
        Err(error) => {
            c.add("ChannelWriteFail", 1);
            tracing::warn!(%error, events = n, "Syslog: the channel refused the events; dropped.");
        }
    }
}

async fn tcp_connection(
    mut stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    port: u16,
    cfg: Arc<SyslogConfig>,
    p: Arc<ChannelProcessor>,
    c: Arc<CounterGroup>,
    sd: CancellationToken,
) -> std::io::Result<()> {
    let multiport = cfg.kind == SyslogKind::MultiportTcp;
    let port_opt = multiport.then_some(port);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let n = tokio::select! {
            _ = sd.cancelled() => return Ok(()),
            r = stream.read_buf(&mut buf) => r?,
        };
        let mut events = Vec::new();
        loop {
            match memchr::memchr(b'\n', &buf) {
                Some(pos) if pos < cfg.event_size => {
                    let line = buf.split_to(pos + 1);
                    let mut e = parse(&line[..pos], cfg.keep, multiport, false);
                    client_headers(&cfg, &mut e, peer, port_opt);
                    events.push(e);
                }
                _ if buf.len() >= cfg.event_size => {
                    let part = buf.split_to(cfg.event_size);
                    let mut e = parse(&part, cfg.keep, multiport, true);
                    client_headers(&cfg, &mut e, peer, port_opt);
                    events.push(e);
                }
                _ => break,
            }
            if events.len() >= cfg.batch_size {
                deliver(&p, &c, std::mem::take(&mut events)).await;
            }
        }
        if !events.is_empty() {
            deliver(&p, &c, events).await;
        }
        if n == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(e: &Event) -> String {
        String::from_utf8_lossy(&e.body).into_owned()
    }

    #[test]
    fn rfc5424_headers() {
        let e = parse(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
            KeepFields::default(),
            false,
            false,
        );
        assert_eq!(e.headers["Facility"], "4");
        assert_eq!(e.headers["Severity"], "2");
        assert_eq!(e.headers["priority"], "34");
        assert_eq!(e.headers["version"], "1");
        assert_eq!(e.headers["host"], "mymachine.example.com");
        assert_eq!(e.headers["timestamp"], "1065910455003");
        assert_eq!(body(&e), "su - ID47 - 'su root' failed");
        let m = parse(
            b"<34>1 2003-10-11T22:14:15.003Z host x",
            KeepFields::default(),
            true,
            false,
        );
        assert_eq!(m.headers["Priority"], "34");
        assert_eq!(m.headers["Version"], "1");
    }

    #[test]
    fn rfc3164_and_invalid_and_keep_all() {
        let e = parse(
            b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
            KeepFields::default(),
            false,
            false,
        );
        assert_eq!(e.headers["Facility"], "1");
        assert_eq!(e.headers["Severity"], "5");
        assert_eq!(e.headers["host"], "10.0.0.99");
        assert!(e.headers["timestamp"].parse::<i64>().unwrap() > 0);
        assert!(!e.headers.contains_key("version"));
        assert_eq!(body(&e), "Use the BFG!");
        let all = KeepFields {
            priority: true,
            version: true,
            timestamp: true,
            hostname: true,
        };
        let k = parse(
            b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
            all,
            false,
            false,
        );
        assert_eq!(body(&k), "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!");
        let bad = parse(b"no pri here", KeepFields::default(), false, false);
        assert_eq!(bad.headers["flume.syslog.status"], "Invalid");
        assert_eq!(bad.headers["Facility"], "0");
        assert_eq!(body(&bad), "no pri here");
    }
}
