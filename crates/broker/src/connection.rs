//! One client connection: size-prefixed frames in, responses out in request order.
//!
//! A reader task reads frames (checking the size prefix against `socket.request.max.bytes`
//! before allocating) into a small bounded queue, so clients can pipeline; this task handles
//! them one at a time, in order, as Kafka does, and writes each response before the next
//! request is handled (buffered: the socket is flushed when no request is waiting). Requests
//! on one connection are therefore applied in order, which idempotent producers rely on.
//!
//! A malformed frame, an unknown API key or an unsupported version closes this connection
//! only (Kafka's behaviour, which old clients' version probing relies on). ApiVersions with a
//! version newer than supported gets Kafka's KIP-511 answer instead: a v0 body with
//! UNSUPPORTED_VERSION and the supported ApiVersions range.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::dispatch::{self, RequestContext};

/// How many received requests may wait while one is being handled.
const PIPELINE_DEPTH: usize = 32;

/// Why a connection is closed.
#[derive(Debug)]
enum Close {
    /// Peer went away or I/O failed.
    Io(std::io::Error),
    /// A protocol violation: logged, then closed.
    Protocol(String),
}

/// Serves one connection until the peer closes it, it misbehaves, or shutdown is requested
/// (then requests already received are answered before closing).
pub async fn serve(broker: Arc<Broker>, stream: TcpStream, shutdown: CancellationToken) {
    let peer_addr = stream.peer_addr().ok();
    let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let max = broker.config.socket_request_max_bytes;
    let (tx, mut rx) = mpsc::channel::<Bytes>(PIPELINE_DEPTH);
    let reader_shutdown = shutdown.clone();
    let reader_peer = peer.clone();
    let reader = tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                _ = reader_shutdown.cancelled() => break,
                f = read_frame(&mut rd, max) => f,
            };
            match frame {
                Ok(Some(frame)) => {
                    if tx.send(frame).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(Close::Io(e)) => {
                    tracing::debug!(peer = %reader_peer, error = %e, "Connection read failed.");
                    break;
                }
                Err(Close::Protocol(reason)) => {
                    tracing::warn!(peer = %reader_peer, reason, "Closing connection.");
                    break;
                }
            }
        }
    });
    let mut out = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(frame) = rx.recv().await {
        match handle_frame_from(&broker, frame, peer_addr).await {
            Ok(Some((prefix, body))) => {
                let written = match out.write_all(&prefix).await {
                    Ok(()) => out.write_all(&body).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    tracing::debug!(peer, error = %e, "Connection write failed.");
                    break;
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(peer, reason, "Closing connection.");
                break;
            }
        }
        if rx.is_empty() && out.flush().await.is_err() {
            break;
        }
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
    reader.abort();
}

async fn read_frame(
    rd: &mut (impl AsyncReadExt + Unpin),
    max: u32,
) -> Result<Option<Bytes>, Close> {
    let mut len = [0u8; 4];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Close::Io(e)),
    }
    let size = i32::from_be_bytes(len);
    if size < 8 {
        return Err(Close::Protocol(format!("invalid frame size {size}")));
    }
    if size as u32 > max {
        return Err(Close::Protocol(format!(
            "frame of {size} bytes exceeds socket.request.max.bytes {max}"
        )));
    }
    // Read into spare capacity: no zero-filling of the frame buffer.
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let want = (size - buf.len()) as u64;
        let n = (&mut *rd)
            .take(want)
            .read_buf(&mut buf)
            .await
            .map_err(Close::Io)?;
        if n == 0 {
            return Err(Close::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(Some(buf.freeze()))
}

/// The supported ApiVersions range, for the KIP-511 fallback.
fn api_versions_range() -> (i16, i16) {
    dispatch::find(ApiKey::ApiVersions as i16)
        .map(|h| (h.min_version, h.max_version))
        .unwrap_or((0, 3))
}

/// A response ready to write: the size prefix with the response header, then the body.
pub type Response = (Bytes, BytesMut);

/// Handles one request frame from an unknown peer; returns the framed response (`None`: no
/// response), or the reason to close the connection.
pub async fn handle_frame(broker: &Arc<Broker>, frame: Bytes) -> Result<Option<Response>, String> {
    handle_frame_from(broker, frame, None).await
}

/// Handles one request frame received from `peer`; returns the framed response (`None`: no
/// response), or the reason to close the connection.
pub async fn handle_frame_from(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: Option<std::net::SocketAddr>,
) -> Result<Option<Response>, String> {
    if frame.len() < 8 {
        return Err(format!(
            "request of {} bytes is shorter than a header",
            frame.len()
        ));
    }
    let api_key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let correlation_id = (&frame[4..8]).get_i32();
    let Some(row) = dispatch::find(api_key) else {
        return Err(format!("unsupported API key {api_key}"));
    };
    if api_key == ApiKey::ApiVersions as i16 && version > row.max_version {
        let (min, max) = api_versions_range();
        let body = ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(min)
                .with_max_version(max)]);
        let mut buf = BytesMut::new();
        body.encode(&mut buf, 0).map_err(|e| e.to_string())?;
        return Ok(Some((frame_prefix(correlation_id, 0, buf.len()), buf)));
    }
    if version < row.min_version || version > row.max_version {
        return Err(format!(
            "{} v{version} is not supported (supported: v{}-v{})",
            dispatch::api_name(row.key),
            row.min_version,
            row.max_version
        ));
    }
    let mut buf = frame;
    let header_version = row.key.request_header_version(version);
    let header = RequestHeader::decode(&mut buf, header_version)
        .map_err(|e| format!("bad request header: {e}"))?;
    let ctx = RequestContext {
        broker: broker.clone(),
        header,
        api_key: row.key,
        version,
        peer,
    };
    match (row.handle)(ctx, buf).await {
        Ok(Some(body)) => {
            let hv = row.key.response_header_version(version);
            Ok(Some((frame_prefix(correlation_id, hv, body.len()), body)))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            if matches!(e, crate::error::BrokerError::Decode { .. }) {
                Err(e.to_string())
            } else {
                tracing::error!(error = %e, "Request failed.");
                Err(e.to_string())
            }
        }
    }
}

/// The size prefix and response header for a body of `body_len` bytes.
fn frame_prefix(correlation_id: i32, header_version: i16, body_len: usize) -> Bytes {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_len = header.compute_size(header_version).unwrap_or(4);
    let mut out = BytesMut::with_capacity(4 + header_len);
    out.put_i32((header_len + body_len) as i32);
    // Encoding a response header cannot fail: it only holds an i32 and empty tagged fields.
    let _ = header.encode(&mut out, header_version);
    out.freeze()
}
