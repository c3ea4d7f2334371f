//! Flume's Thrift RPC: the subset of Apache Thrift that Flume's `ThriftSourceProtocol`
//! needs, written by hand — the binary and compact protocols (structs, maps, lists,
//! binary/string, i32 enums, message headers with sequence ids, skipping of unknown fields)
//! and the framed transport.
//!
//! Flume's `flume.thrift`:
//!
//! ```text
//! struct ThriftFlumeEvent { 1: required map<string,string> headers, 2: required binary body }
//! enum Status { OK, FAILED, ERROR, UNKNOWN }
//! service ThriftSourceProtocol {
//!   Status append(1: ThriftFlumeEvent event),
//!   Status appendBatch(1: list<ThriftFlumeEvent> events),
//! }
//! ```
//!
//! A framed message is `length: i32 BE` then the message: a header (name, type, seqid), the
//! arguments struct of the call (`append_args { 1: event }`, `appendBatch_args { 1: events }`)
//! or the result struct of the reply (`{ 0: Status success }`), or a
//! `TApplicationException { 1: string message, 2: i32 type }` for an exception.

mod codec;

pub use codec::{Protocol, Reader, TType, Writer};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::event::{Event, Headers};

/// The largest frame accepted (Thrift's framed transports refuse larger ones too).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Message type `CALL`.
pub const CALL: u8 = 1;
/// Message type `REPLY`.
pub const REPLY: u8 = 2;
/// Message type `EXCEPTION`.
pub const EXCEPTION: u8 = 3;
/// Message type `ONEWAY`.
pub const ONEWAY: u8 = 4;

/// `TApplicationException` type `UNKNOWN_METHOD`.
pub const UNKNOWN_METHOD: i32 = 1;
/// `TApplicationException` type `PROTOCOL_ERROR`.
pub const PROTOCOL_ERROR: i32 = 7;

/// Malformed Thrift data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed Thrift RPC data: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub(crate) fn err<T>(m: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(m.into()))
}

/// Flume's Thrift `Status` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK` (0)
    Ok = 0,
    /// `FAILED` (1): the channel refused the events; the sender retries.
    Failed = 1,
    /// `ERROR` (2): any other failure.
    Error = 2,
    /// `UNKNOWN` (3)
    Unknown = 3,
}

impl Status {
    /// Flume's name of the status (`OK`, `FAILED`, `ERROR`, `UNKNOWN`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Failed => "FAILED",
            Status::Error => "ERROR",
            Status::Unknown => "UNKNOWN",
        }
    }

    fn from_i32(v: i32) -> Result<Status, DecodeError> {
        Ok(match v {
            0 => Status::Ok,
            1 => Status::Failed,
            2 => Status::Error,
            3 => Status::Unknown,
            s => return err(format!("bad Status {s}")),
        })
    }
}

/// The two messages of `ThriftSourceProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `append(1: ThriftFlumeEvent event)`
    Append,
    /// `appendBatch(1: list<ThriftFlumeEvent> events)`
    AppendBatch,
}

impl Method {
    /// The message name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Method::Append => "append",
            Method::AppendBatch => "appendBatch",
        }
    }
}

/// A decoded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Which message.
    pub method: Method,
    /// The sequence id to echo in the reply.
    pub seqid: i32,
    /// The event (`append`) or events (`appendBatch`).
    pub events: Vec<Event>,
}

/// A call that cannot be served, with what to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCall {
    /// The message name, when the header could be read.
    pub name: String,
    /// The sequence id, when the header could be read.
    pub seqid: i32,
    /// The `TApplicationException` type to answer.
    pub kind: i32,
    /// What is wrong.
    pub error: DecodeError,
}

fn write_event(w: &mut Writer, e: &Event) {
    w.struct_begin();
    w.field_begin(TType::Map, 1);
    w.map_begin(TType::String, TType::String, e.headers.len());
    for (k, v) in &e.headers {
        w.binary(k.as_bytes());
        w.binary(v.as_bytes());
    }
    w.field_begin(TType::String, 2);
    w.binary(&e.body);
    w.field_stop();
    w.struct_end();
}

fn read_event(r: &mut Reader<'_>) -> Result<Event, DecodeError> {
    let mut headers = None;
    let mut body = None;
    r.struct_begin();
    while let Some((t, id)) = r.field_begin()? {
        match (id, t) {
            (1, TType::Map) => {
                let (kt, vt, n) = r.map_begin()?;
                let mut h = Headers::new();
                if n > 0 && (kt != TType::String || vt != TType::String) {
                    return err(format!(
                        "headers must be map<string,string>, not {kt:?},{vt:?}"
                    ));
                }
                for _ in 0..n {
                    let k = r.string()?;
                    let v = r.string()?;
                    h.insert(k, v);
                }
                headers = Some(h);
            }
            (2, TType::String) => body = Some(bytes::Bytes::copy_from_slice(r.binary()?)),
            _ => r.skip(t)?,
        }
    }
    r.struct_end();
    match (headers, body) {
        (Some(headers), Some(body)) => Ok(Event { headers, body }),
        (None, _) => err("ThriftFlumeEvent without its required field headers"),
        (_, None) => err("ThriftFlumeEvent without its required field body"),
    }
}

/// Encodes a call of `method` carrying `events` (`append` sends the first one).
pub fn encode_call(proto: Protocol, method: Method, seqid: i32, events: &[Event]) -> Vec<u8> {
    let size = 64 + events.iter().map(|e| e.byte_size() + 16).sum::<usize>();
    let mut w = Writer::with_capacity(proto, size);
    w.message_begin(method.name(), CALL, seqid);
    w.struct_begin();
    match method {
        Method::Append => {
            w.field_begin(TType::Struct, 1);
            write_event(&mut w, events.first().expect("append needs an event"));
        }
        Method::AppendBatch => {
            w.field_begin(TType::List, 1);
            w.list_begin(TType::Struct, events.len());
            for e in events {
                write_event(&mut w, e);
            }
        }
    }
    w.field_stop();
    w.struct_end();
    w.into_inner()
}

/// Decodes a call to `ThriftSourceProtocol`.
pub fn decode_call(proto: Protocol, payload: &[u8]) -> Result<Call, BadCall> {
    let mut r = Reader::new(proto, payload);
    let (name, kind, seqid) = r.message_begin().map_err(|error| BadCall {
        name: String::new(),
        seqid: 0,
        kind: PROTOCOL_ERROR,
        error,
    })?;
    let bad = |kind, error| BadCall {
        name: name.clone(),
        seqid,
        kind,
        error,
    };
    if kind != CALL {
        return Err(bad(
            PROTOCOL_ERROR,
            DecodeError(format!("message type {kind} is not a call")),
        ));
    }
    let method = match name.as_str() {
        "append" => Method::Append,
        "appendBatch" => Method::AppendBatch,
        other => {
            return Err(bad(
                UNKNOWN_METHOD,
                DecodeError(format!("Invalid method name: '{other}'")),
            ))
        }
    };
    let events = read_args(&mut r, method).map_err(|e| bad(PROTOCOL_ERROR, e))?;
    Ok(Call {
        method,
        seqid,
        events,
    })
}

fn read_args(r: &mut Reader<'_>, method: Method) -> Result<Vec<Event>, DecodeError> {
    let mut events = None;
    r.struct_begin();
    while let Some((t, id)) = r.field_begin()? {
        match (method, id, t) {
            (Method::Append, 1, TType::Struct) => events = Some(vec![read_event(r)?]),
            (Method::AppendBatch, 1, TType::List) => {
                let (et, n) = r.list_begin()?;
                if n > 0 && et != TType::Struct {
                    return err(format!("events must be a list of structs, not {et:?}"));
                }
                let mut v = Vec::with_capacity(n.min(1 << 16));
                for _ in 0..n {
                    v.push(read_event(r)?);
                }
                events = Some(v);
            }
            _ => r.skip(t)?,
        }
    }
    r.struct_end();
    // A missing argument is null in Thrift: Flume's handler would fail on it.
    events.ok_or_else(|| DecodeError(format!("{} without its argument", method.name())))
}

/// Encodes the reply `{ 0: Status success }` to `method`.
pub fn encode_reply(proto: Protocol, name: &str, seqid: i32, status: Status) -> Vec<u8> {
    let mut w = Writer::with_capacity(proto, 32);
    w.message_begin(name, REPLY, seqid);
    w.struct_begin();
    w.field_begin(TType::I32, 0);
    w.i32(status as i32);
    w.field_stop();
    w.struct_end();
    w.into_inner()
}

/// Encodes a `TApplicationException` reply.
pub fn encode_exception(
    proto: Protocol,
    name: &str,
    seqid: i32,
    kind: i32,
    message: &str,
) -> Vec<u8> {
    let mut w = Writer::with_capacity(proto, 64 + message.len());
    w.message_begin(name, EXCEPTION, seqid);
    w.struct_begin();
    w.field_begin(TType::String, 1);
    w.binary(message.as_bytes());
    w.field_begin(TType::I32, 2);
    w.i32(kind);
    w.field_stop();
    w.struct_end();
    w.into_inner()
}

/// Decodes a reply to the call `seqid`: `Ok(status)`, or `Err(message)` for an exception.
pub fn decode_reply(
    proto: Protocol,
    payload: &[u8],
    seqid: i32,
) -> Result<Result<Status, String>, DecodeError> {
    let mut r = Reader::new(proto, payload);
    let (name, kind, got) = r.message_begin()?;
    if got != seqid {
        return err(format!("reply to seqid {got}, expected {seqid}"));
    }
    let mut status = None;
    let mut message = None;
    r.struct_begin();
    while let Some((t, id)) = r.field_begin()? {
        match (kind, id, t) {
            (REPLY, 0, TType::I32) => status = Some(Status::from_i32(r.i32()?)?),
            (EXCEPTION, 1, TType::String) => message = Some(r.string()?),
            _ => r.skip(t)?,
        }
    }
    r.struct_end();
    match kind {
        REPLY => match status {
            Some(s) => Ok(Ok(s)),
            None => Ok(Err(format!("{name} failed: unknown result"))),
        },
        EXCEPTION => Ok(Err(message.unwrap_or_else(|| "remote exception".into()))),
        k => err(format!("message type {k} is not a reply")),
    }
}

/// Reads one frame (`length: i32 BE`, then the message). `Ok(None)` at a clean end of
/// stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = i32::from_be_bytes(head);
    if len < 0 || len as usize > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad Thrift frame length {len} (first bytes {head:02x?}: is the peer using the framed transport?)"),
        ));
    }
    // Grows as bytes arrive: a length alone does not make us allocate it.
    let mut out = Vec::with_capacity((len as usize).min(1 << 20));
    r.take(len as u64).read_to_end(&mut out).await?;
    if out.len() != len as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(out))
}

/// Writes one frame holding `payload`.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> std::io::Result<()> {
    let mut f = Vec::with_capacity(payload.len() + 4);
    f.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    f.extend_from_slice(payload);
    w.write_all(&f).await?;
    w.flush().await
}

/// The protocol a message seems to be written in, from its first byte: `0x82` compact,
/// `0x80` strict binary, `0x00` old-style binary (a name length).
pub fn sniff(payload: &[u8]) -> Option<Protocol> {
    match payload.first() {
        Some(0x82) => Some(Protocol::Compact),
        Some(0x80) | Some(0x00) => Some(Protocol::Binary),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
