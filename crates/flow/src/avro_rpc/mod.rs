//! Flume's Avro RPC: the Avro binary encoding (by hand: zig-zag varints, strings, bytes,
//! maps, arrays, unions), Netty framing, the Avro IPC handshake and the messages of
//! Flume's `AvroSourceProtocol` (`append`, `appendBatch` of `AvroFlumeEvent`).
//!
//! A Netty frame is `serial: i32 BE`, `count: i32 BE`, then `count` × (`len: i32 BE`,
//! bytes). A call is the concatenation of the frame's buffers: on the first call of a
//! connection a `HandshakeRequest`, then call metadata (`map<bytes>`), the message name
//! and the parameters; the reply is (`HandshakeResponse` on the first call), metadata, an
//! error flag and the response (`Status`) or the error (`union {string}`).

pub mod md5;
pub mod transport;

pub use transport::FrameConn;

use crate::event::{Event, Headers};

/// Flume's `AvroSourceProtocol` as Java's `Protocol.toString()` prints it (what its hash
/// is computed over).
pub const PROTOCOL_JSON: &str = r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro","types":[{"type":"enum","name":"Status","symbols":["OK","FAILED","UNKNOWN"]},{"type":"record","name":"AvroFlumeEvent","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}],"messages":{"append":{"request":[{"name":"event","type":"AvroFlumeEvent"}],"response":"Status"},"appendBatch":{"request":[{"name":"events","type":{"type":"array","items":"AvroFlumeEvent"}}],"response":"Status"}}}"#;

/// The MD5 of [`PROTOCOL_JSON`].
pub fn protocol_hash() -> [u8; 16] {
    md5::md5(PROTOCOL_JSON.as_bytes())
}

/// The largest frame or buffer accepted (Flume's default `maxFrameLength`-like guard).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// A malformed Avro datum or frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed Avro RPC data: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn err<T>(m: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(m.into()))
}

/// Writes a `long` (zig-zag varint).
pub fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Writes `bytes` (or a `string`): length then data.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Writes a `map<string>`: one block then the end marker.
pub fn put_string_map(out: &mut Vec<u8>, m: &Headers) {
    if !m.is_empty() {
        put_long(out, m.len() as i64);
        for (k, v) in m {
            put_bytes(out, k.as_bytes());
            put_bytes(out, v.as_bytes());
        }
    }
    out.push(0);
}

/// Writes an `AvroFlumeEvent`.
pub fn put_event(out: &mut Vec<u8>, e: &Event) {
    put_string_map(out, &e.headers);
    put_bytes(out, &e.body);
}

/// A cursor over an Avro datum.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The shared buffer `buf` is, when there is one: event bodies are then slices of it
    /// rather than copies.
    owner: Option<&'a bytes::Bytes>,
}

impl<'a> Reader<'a> {
    /// Reads from `buf` (event bodies are copied out).
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            owner: None,
        }
    }
    /// Reads from a shared buffer (event bodies are slices of it, no copy).
    pub fn from_bytes(buf: &'a bytes::Bytes) -> Self {
        Reader {
            buf,
            pos: 0,
            owner: Some(buf),
        }
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// A `long` / `int`.
    pub fn long(&mut self) -> Result<i64, DecodeError> {
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return err("truncated varint");
            };
            self.pos += 1;
            if shift >= 64 {
                return err("varint too long");
            }
            n |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }
    /// `n` raw bytes (a `fixed`).
    pub fn fixed(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return err(format!("need {n} bytes, {} left", self.remaining()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// `bytes`.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.long()?;
        if n < 0 {
            return err("negative length");
        }
        self.fixed(n as usize)
    }
    /// `string`.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))
    }
    /// A `boolean`.
    pub fn boolean(&mut self) -> Result<bool, DecodeError> {
        Ok(self.fixed(1)?[0] != 0)
    }
    /// The count of the next array or map block (a negative count is followed by the
    /// block's byte size, which is skipped).
    pub fn block_count(&mut self) -> Result<usize, DecodeError> {
        let n = self.long()?;
        if n < 0 {
            self.long()?;
            Ok(n.unsigned_abs() as usize)
        } else {
            Ok(n as usize)
        }
    }
    /// A `map<string>`.
    pub fn string_map(&mut self) -> Result<Headers, DecodeError> {
        let mut m = Headers::new();
        loop {
            let n = self.block_count()?;
            if n == 0 {
                return Ok(m);
            }
            for _ in 0..n {
                let k = self.string()?;
                let v = self.string()?;
                m.insert(k, v);
            }
        }
    }
    /// A `map<bytes>` (call metadata), skipped.
    pub fn skip_bytes_map(&mut self) -> Result<(), DecodeError> {
        loop {
            let n = self.block_count()?;
            if n == 0 {
                return Ok(());
            }
            for _ in 0..n {
                self.bytes()?;
                self.bytes()?;
            }
        }
    }
    /// An `AvroFlumeEvent`.
    pub fn event(&mut self) -> Result<Event, DecodeError> {
        let headers = self.string_map()?;
        let b = self.bytes()?;
        let body = match self.owner {
            Some(o) => o.slice_ref(b),
            None => bytes::Bytes::copy_from_slice(b),
        };
        Ok(Event { headers, body })
    }
    /// An `array<AvroFlumeEvent>`.
    pub fn events(&mut self) -> Result<Vec<Event>, DecodeError> {
        let mut v = Vec::new();
        loop {
            let n = self.block_count()?;
            if n == 0 {
                return Ok(v);
            }
            v.reserve(n.min(1 << 16));
            for _ in 0..n {
                v.push(self.event()?);
            }
        }
    }
}

/// The bytes of a Netty frame holding `payload` as a single buffer.
pub fn encode_frame(serial: i32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 12);
    f.extend_from_slice(&serial.to_be_bytes());
    f.extend_from_slice(&1i32.to_be_bytes());
    f.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `HandshakeMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Both protocols known.
    Both,
    /// The server knows the client's protocol; the client learns the server's.
    Client,
    /// The server needs the client's protocol.
    None,
}

/// A decoded `HandshakeRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// `clientHash`.
    pub client_hash: [u8; 16],
    /// `clientProtocol`.
    pub client_protocol: Option<String>,
    /// `serverHash`.
    pub server_hash: [u8; 16],
}

/// Writes a `HandshakeRequest` (meta null).
pub fn put_handshake_request(out: &mut Vec<u8>, h: &HandshakeRequest) {
    out.extend_from_slice(&h.client_hash);
    match &h.client_protocol {
        None => put_long(out, 0),
        Some(p) => {
            put_long(out, 1);
            put_bytes(out, p.as_bytes());
        }
    }
    out.extend_from_slice(&h.server_hash);
    put_long(out, 0); // meta: null
}

impl Reader<'_> {
    fn optional_bytes_map(&mut self) -> Result<(), DecodeError> {
        match self.long()? {
            0 => Ok(()),
            1 => self.skip_bytes_map(),
            b => err(format!("bad union branch {b} for meta")),
        }
    }
    /// A `HandshakeRequest`.
    pub fn handshake_request(&mut self) -> Result<HandshakeRequest, DecodeError> {
        let client_hash: [u8; 16] = self.fixed(16)?.try_into().expect("16");
        let client_protocol = match self.long()? {
            0 => None,
            1 => Some(self.string()?),
            b => return err(format!("bad union branch {b} for clientProtocol")),
        };
        let server_hash: [u8; 16] = self.fixed(16)?.try_into().expect("16");
        self.optional_bytes_map()?;
        Ok(HandshakeRequest {
            client_hash,
            client_protocol,
            server_hash,
        })
    }
    /// A `HandshakeResponse`: its match (the protocol and hash are not needed: Flume's
    /// protocol has one version).
    pub fn handshake_response(&mut self) -> Result<Match, DecodeError> {
        let m = match self.long()? {
            0 => Match::Both,
            1 => Match::Client,
            2 => Match::None,
            b => return err(format!("bad HandshakeMatch {b}")),
        };
        match self.long()? {
            0 => {}
            1 => {
                self.bytes()?;
            }
            b => return err(format!("bad union branch {b} for serverProtocol")),
        }
        match self.long()? {
            0 => {}
            1 => {
                self.fixed(16)?;
            }
            b => return err(format!("bad union branch {b} for serverHash")),
        }
        self.optional_bytes_map()?;
        Ok(m)
    }
}

/// Writes a `HandshakeResponse`: `BOTH` with nulls, or `CLIENT`/`NONE` with this
/// server's protocol and hash.
pub fn put_handshake_response(out: &mut Vec<u8>, m: Match) {
    match m {
        Match::Both => {
            put_long(out, 0);
            put_long(out, 0);
            put_long(out, 0);
        }
        Match::Client | Match::None => {
            put_long(out, if m == Match::Client { 1 } else { 2 });
            put_long(out, 1);
            put_bytes(out, PROTOCOL_JSON.as_bytes());
            put_long(out, 1);
            out.extend_from_slice(&protocol_hash());
        }
    }
    put_long(out, 0); // meta: null
}

/// Flume's `Status` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `FAILED`
    Failed,
    /// `UNKNOWN`
    Unknown,
}

/// A decoded call to `AvroSourceProtocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A handshake-only ping (empty message name).
    Ping,
    /// `append` (false) or `appendBatch` (true), with their events.
    Append(Vec<Event>, bool),
}

/// Decodes a call's body after the handshake: metadata, message name, parameters.
pub fn decode_call(r: &mut Reader<'_>) -> Result<Call, DecodeError> {
    r.skip_bytes_map()?;
    let name = r.string()?;
    match name.as_str() {
        "" => Ok(Call::Ping),
        "append" => Ok(Call::Append(vec![r.event()?], false)),
        "appendBatch" => Ok(Call::Append(r.events()?, true)),
        other => err(format!("unknown message `{other}`")),
    }
}

/// Writes an `appendBatch` call (metadata, name, events).
pub fn put_append_batch(out: &mut Vec<u8>, events: &[Event]) {
    out.push(0); // empty metadata
    put_bytes(out, b"appendBatch");
    if !events.is_empty() {
        put_long(out, events.len() as i64);
        for e in events {
            put_event(out, e);
        }
    }
    out.push(0);
}

/// Writes a reply: empty metadata, no error, the status.
pub fn put_status_reply(out: &mut Vec<u8>, s: Status) {
    out.push(0); // metadata
    out.push(0); // error flag: false
    put_long(out, s as i64);
}

/// Writes an error reply (`union {string}` branch 0, a system error).
pub fn put_error_reply(out: &mut Vec<u8>, message: &str) {
    out.push(0);
    out.push(1);
    put_long(out, 0);
    put_bytes(out, message.as_bytes());
}

/// Decodes a reply after the handshake: `Ok(status)` or `Err(message)` for an error.
pub fn decode_reply(r: &mut Reader<'_>) -> Result<Result<Status, String>, DecodeError> {
    r.skip_bytes_map()?;
    if r.boolean()? {
        let _branch = r.long()?;
        return Ok(Err(r.string().unwrap_or_else(|_| "remote error".into())));
    }
    Ok(Ok(match r.long()? {
        0 => Status::Ok,
        1 => Status::Failed,
        2 => Status::Unknown,
        s => return err(format!("bad Status {s}")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_longs() {
        for (v, enc) in [
            (0i64, vec![0u8]),
            (-1, vec![1]),
            (1, vec![2]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
        ] {
            let mut out = Vec::new();
            put_long(&mut out, v);
            assert_eq!(out, enc, "{v}");
            assert_eq!(Reader::new(&out).long().unwrap(), v);
        }
        for v in [i64::MIN, i64::MAX, 123456789, -987654321] {
            let mut out = Vec::new();
            put_long(&mut out, v);
            assert_eq!(Reader::new(&out).long().unwrap(), v);
        }
    }

    #[test]
    fn event_round_trip_and_negative_blocks() {
        let mut e = Event::new(&b"hello"[..]);
        e.headers.insert("host".into(), "a".into());
        let mut out = Vec::new();
        put_append_batch(&mut out, std::slice::from_ref(&e));
        let mut r = Reader::new(&out);
        assert_eq!(
            decode_call(&mut r).unwrap(),
            Call::Append(vec![e.clone()], true)
        );
        assert_eq!(r.remaining(), 0);
        // A block with a negative count and a byte size, as Java's blocking encoders write.
        let mut out = vec![0u8];
        put_bytes(&mut out, b"appendBatch");
        put_long(&mut out, -1);
        let mut ev = Vec::new();
        put_event(&mut ev, &e);
        put_long(&mut out, ev.len() as i64);
        out.extend_from_slice(&ev);
        out.push(0);
        assert_eq!(
            decode_call(&mut Reader::new(&out)).unwrap(),
            Call::Append(vec![e], true)
        );
    }

    #[test]
    fn handshake_round_trip() {
        let h = HandshakeRequest {
            client_hash: protocol_hash(),
            client_protocol: Some(PROTOCOL_JSON.into()),
            server_hash: [7; 16],
        };
        let mut out = Vec::new();
        put_handshake_request(&mut out, &h);
        assert_eq!(Reader::new(&out).handshake_request().unwrap(), h);
        for m in [Match::Both, Match::Client, Match::None] {
            let mut out = Vec::new();
            put_handshake_response(&mut out, m);
            assert_eq!(Reader::new(&out).handshake_response().unwrap(), m);
        }
    }

    #[test]
    fn replies() {
        let mut out = Vec::new();
        put_status_reply(&mut out, Status::Failed);
        assert_eq!(
            decode_reply(&mut Reader::new(&out)).unwrap(),
            Ok(Status::Failed)
        );
        let mut out = Vec::new();
        put_error_reply(&mut out, "boom");
        assert_eq!(
            decode_reply(&mut Reader::new(&out)).unwrap(),
            Err("boom".into())
        );
    }

    proptest::proptest! {
        /// Untrusted bytes never panic the decoders (they return errors), and a valid
        /// batch decodes back whatever the bytes around it.
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let b = bytes::Bytes::from(data.clone());
            let mut r = Reader::from_bytes(&b);
            let _ = r.handshake_request();
            let _ = decode_call(&mut r);
            let _ = decode_call(&mut Reader::new(&data));
            let _ = decode_reply(&mut Reader::new(&data));
            let _ = Reader::new(&data).handshake_response();
        }
    }
}
