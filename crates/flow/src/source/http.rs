//! `http`: accepts events as HTTP POSTs with Flume's JSONHandler body,
//! `[{"headers": {"k": "v"}, "body": "text"}, …]`; one request is one batch (Flume's
//! `HTTPSource`). Answers 200 when committed, 400 for invalid JSON, 503 when the channel is
//! full, 500 for other failures. A small HTTP/1.1 server (keep-alive, Content-Length
//! bodies) written for this source; TLS is not supported.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::{FlowError, Result};
use crate::event::Event;
use crate::monitoring::{CounterGroup, SOURCE_COUNTERS};

/// The largest request body accepted (bytes).
pub const MAX_BODY: usize = 64 << 20;

/// Settings of the `http` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `bind`. Flume's default: `0.0.0.0`.
    pub bind: String,
    /// `port`. Required.
    pub port: u16,
}

impl HttpConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let handler = ctx.string("handler", "org.apache.flume.source.http.JSONHandler");
        if handler != "org.apache.flume.source.http.JSONHandler" {
            return Err(ctx.error("handler", format!("handler `{handler}` is not supported (org.apache.flume.source.http.JSONHandler only)")));
        }
        if ctx.boolean("ssl", false) || ctx.boolean("enableSSL", false) {
            return Err(ctx.error("ssl", "TLS is not supported by Flumen's http source yet"));
        }
        Ok(HttpConfig {
            bind: ctx.string("bind", "0.0.0.0"),
            port: ctx.require_number("port")?,
        })
    }

    /// Binds the port.
    pub async fn build(self, name: &str) -> Result<HttpSource> {
        let component = format!("source {name}");
        let addr = super::resolve_bind(&component, &self.bind, self.port).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| FlowError::Start {
                component,
                message: format!("cannot listen on {addr}"),
                source,
            })?;
        Ok(HttpSource {
            listener,
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        })
    }
}

/// A running `http` source.
pub struct HttpSource {
    listener: TcpListener,
    counter: Arc<CounterGroup>,
}

impl Source for HttpSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    a = self.listener.accept() => a,
                };
                if let Ok((stream, _)) = accepted {
                    let (p, c, sd) = (processor.clone(), self.counter.clone(), shutdown.clone());
                    conns.spawn(async move {
                        let _ = connection(stream, p, c, sd).await;
                    });
                }
                while conns.try_join_next().is_some() {}
            }
            conns.shutdown().await;
            self.counter.stop();
        })
    }
}

async fn connection(
    mut stream: TcpStream,
    p: Arc<ChannelProcessor>,
    c: Arc<CounterGroup>,
    sd: CancellationToken,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        // Head.
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            if buf.len() > 64 * 1024 {
                return respond(&mut stream, 431, "Request Header Fields Too Large", false).await;
            }
            let n = tokio::select! {
                _ = sd.cancelled() => return Ok(()),
                r = stream.read_buf(&mut buf) => r?,
            };
            if n == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.advance(head_end + 4);
        let mut lines = head.split("\r\n");
        let request = lines.next().unwrap_or_default().to_string();
        let mut content_length = 0usize;
        let mut content_type = String::new();
        let mut close = request.ends_with("HTTP/1.0");
        let mut chunked = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => content_length = v.parse().unwrap_or(0),
                "content-type" => content_type = v.to_ascii_lowercase(),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
        if chunked {
            return respond(&mut stream, 411, "Length Required", true).await;
        }
        if content_length > MAX_BODY {
            return respond(&mut stream, 413, "Payload Too Large", true).await;
        }
        while buf.len() < content_length {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = buf.split_to(content_length).freeze();
        let method = request.split(' ').next().unwrap_or_default();
        let (status, reason) = if method == "TRACE" || method == "OPTIONS" {
            (403, "Forbidden")
        } else {
            handle(&body, &content_type, &p, &c).await
        };
        respond(&mut stream, status, reason, close).await?;
        if close {
            return Ok(());
        }
    }
}

async fn handle(
    body: &[u8],
    content_type: &str,
    p: &ChannelProcessor,
    c: &CounterGroup,
) -> (u16, &'static str) {
    if let Some(cs) = content_type
        .split(';')
        .find_map(|part| part.trim().strip_prefix("charset="))
    {
        let cs = cs.trim_matches('"');
        if cs != "utf-8" && cs != "utf8" {
            return (500, "Unsupported charset");
        }
    }
    let parsed: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return (400, "Bad Request"),
    };
    let Some(items) = parsed.as_array() else {
        return (400, "Bad Request");
    };
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let mut e = Event::default();
        if let Some(h) = item.get("headers").and_then(|h| h.as_object()) {
            for (k, v) in h {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                e.headers.insert(k.clone(), v);
            }
        }
        if let Some(b) = item.get("body") {
            e.body = match b {
                serde_json::Value::String(s) => s.clone().into_bytes().into(),
                serde_json::Value::Null => Default::default(),
                other => other.to_string().into_bytes().into(),
            };
        }
        events.push(e);
    }
    let n = events.len() as i64;
    c.add("AppendBatchReceivedCount", 1);
    c.add("EventReceivedCount", n);
    match p.process_batch(events).await {
        Ok(()) => {
            c.add("AppendBatchAcceptedCount", 1);
            c.add("EventAcceptedCount", n);
            (200, "OK")
        }
        Err(e) => {
            c.add("ChannelWriteFail", 1);
            tracing::warn!(error = %e, "http source: the channel refused the batch.");
            if e.is_channel_full() {
                (503, "Service Unavailable")
            } else {
                (500, "Internal Server Error")
            }
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    close: bool,
) -> std::io::Result<()> {
    let conn = if close { "close" } else { "keep-alive" };
    let r =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: {conn}\r\n\r\n");
    stream.write_all(r.as_bytes()).await
}
