//! A minimal blocking Kafka protocol client for the requests rdkafka does not expose
//! (OffsetDelete): one TCP connection, one request at a time, codecs from `kafka-protocol`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The largest response accepted (64 MiB).
const MAX_RESPONSE: usize = 64 << 20;

/// One connection to one broker.
pub struct Connection {
    stream: TcpStream,
    correlation_id: i32,
}

impl Connection {
    /// Connects to `address` (`host:port`) within `timeout`; reads and writes are bounded by it
    /// too.
    pub fn connect(address: &str, timeout: Duration) -> anyhow::Result<Self> {
        let mut last = None;
        for addr in address
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {address}"))?
        {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    stream.set_nodelay(true)?;
                    return Ok(Connection {
                        stream,
                        correlation_id: 0,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(anyhow::anyhow!(
            "cannot connect to {address}: {}",
            last.map_or("no address".to_string(), |e| e.to_string())
        ))
    }

    /// Sends `request` at `version` and reads its response.
    pub fn call<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<R::Response> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("flumen-tools")));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.stream
            .write_all(&frame)
            .context("cannot send the request")?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .context("no response from the broker")?;
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > MAX_RESPONSE {
            anyhow::bail!("invalid response size {size}");
        }
        let mut buf = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut buf)
            .context("truncated response from the broker")?;
        let mut buf = Bytes::from(buf);
        let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version))?;
        if header.correlation_id != self.correlation_id {
            anyhow::bail!(
                "response correlation id {} does not match request {}",
                header.correlation_id,
                self.correlation_id
            );
        }
        R::Response::decode(&mut buf, version)
    }
}

/// Connects to the coordinator of `group`, asking the first reachable bootstrap broker.
pub fn group_coordinator(
    bootstrap: &str,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<Connection> {
    let mut last = None;
    for address in bootstrap
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        let address = address
            .trim_start_matches("PLAINTEXT://")
            .trim_start_matches("plaintext://");
        let mut conn = match Connection::connect(address, timeout) {
            Ok(c) => c,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_string()))
            .with_key_type(0);
        let response: FindCoordinatorResponse = conn.call(&request, 1)?;
        if let Some(e) = kafka_protocol::ResponseError::try_from_code(response.error_code) {
            anyhow::bail!("cannot find the coordinator of group '{group}': {e}");
        }
        let coordinator = format!("{}:{}", response.host.as_str(), response.port);
        return Connection::connect(&coordinator, timeout);
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no bootstrap address")))
}
