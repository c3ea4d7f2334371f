//! Thrift's binary and compact protocols, for the types Flume's service uses (plus the
//! skipping of any other type, so unknown fields are tolerated).
//!
//! Binary: big-endian fixed-width integers; a field is `type: u8, id: i16`; a strict
//! message header is `0x8001_0000 | type: i32`, the name, `seqid: i32` (the old header,
//! name first then `type: u8`, is read too). Compact: zig-zag varints; a field header packs
//! the id delta from the previous field and the type in one byte; a message header is
//! `0x82`, `version | type << 5`, `seqid` varint, name.

use super::{err, DecodeError};

/// Which Thrift protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `TBinaryProtocol`
    Binary,
    /// `TCompactProtocol` (Flume's default)
    Compact,
}

impl Protocol {
    /// Flume's name for it (the `protocol` property).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Binary => "binary",
            Protocol::Compact => "compact",
        }
    }
}

/// A Thrift type (the binary protocol's type ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TType {
    /// `bool`
    Bool,
    /// `byte`
    Byte,
    /// `double`
    Double,
    /// `i16`
    I16,
    /// `i32` (and enums)
    I32,
    /// `i64`
    I64,
    /// `string` / `binary`
    String,
    /// `struct`
    Struct,
    /// `map`
    Map,
    /// `set`
    Set,
    /// `list`
    List,
}

const BINARY_VERSION_1: u32 = 0x8001_0000;
const COMPACT_PROTOCOL_ID: u8 = 0x82;
const COMPACT_VERSION: u8 = 1;

impl TType {
    fn binary_id(self) -> u8 {
        match self {
            TType::Bool => 2,
            TType::Byte => 3,
            TType::Double => 4,
            TType::I16 => 6,
            TType::I32 => 8,
            TType::I64 => 10,
            TType::String => 11,
            TType::Struct => 12,
            TType::Map => 13,
            TType::Set => 14,
            TType::List => 15,
        }
    }
    fn from_binary(id: u8) -> Result<TType, DecodeError> {
        Ok(match id {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::String,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            t => return err(format!("unknown binary type id {t}")),
        })
    }
    /// The compact id (booleans: 1 = true in field headers, and the element type).
    fn compact_id(self) -> u8 {
        match self {
            TType::Bool => 1,
            TType::Byte => 3,
            TType::I16 => 4,
            TType::I32 => 5,
            TType::I64 => 6,
            TType::Double => 7,
            TType::String => 8,
            TType::List => 9,
            TType::Set => 10,
            TType::Map => 11,
            TType::Struct => 12,
        }
    }
    fn from_compact(id: u8) -> Result<TType, DecodeError> {
        Ok(match id {
            1 | 2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::I16,
            5 => TType::I32,
            6 => TType::I64,
            7 => TType::Double,
            8 => TType::String,
            9 => TType::List,
            10 => TType::Set,
            11 => TType::Map,
            12 => TType::Struct,
            t => return err(format!("unknown compact type id {t}")),
        })
    }
}

/// Writes a message in one protocol into a buffer.
#[derive(Debug)]
pub struct Writer {
    proto: Protocol,
    out: Vec<u8>,
    /// Compact: the last field id of each open struct.
    last: Vec<i16>,
    last_id: i16,
}

impl Writer {
    /// An empty writer.
    pub fn with_capacity(proto: Protocol, n: usize) -> Self {
        Writer {
            proto,
            out: Vec::with_capacity(n),
            last: Vec::new(),
            last_id: 0,
        }
    }

    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.out
    }

    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A message header: strict binary, or compact.
    pub fn message_begin(&mut self, name: &str, kind: u8, seqid: i32) {
        match self.proto {
            Protocol::Binary => {
                self.out
                    .extend_from_slice(&(BINARY_VERSION_1 | kind as u32).to_be_bytes());
                self.binary(name.as_bytes());
                self.out.extend_from_slice(&seqid.to_be_bytes());
            }
            Protocol::Compact => {
                self.out.push(COMPACT_PROTOCOL_ID);
                self.out.push(COMPACT_VERSION | (kind << 5));
                self.varint(seqid as u32 as u64);
                self.binary(name.as_bytes());
            }
        }
    }

    /// Opens a struct.
    pub fn struct_begin(&mut self) {
        self.last.push(self.last_id);
        self.last_id = 0;
    }

    /// Closes a struct (after [`Writer::field_stop`]).
    pub fn struct_end(&mut self) {
        self.last_id = self.last.pop().unwrap_or(0);
    }

    /// A field header (booleans are not written as fields here).
    pub fn field_begin(&mut self, t: TType, id: i16) {
        match self.proto {
            Protocol::Binary => {
                self.out.push(t.binary_id());
                self.out.extend_from_slice(&id.to_be_bytes());
            }
            Protocol::Compact => {
                let delta = id as i32 - self.last_id as i32;
                if (1..=15).contains(&delta) {
                    self.out.push(((delta as u8) << 4) | t.compact_id());
                } else {
                    self.out.push(t.compact_id());
                    self.zigzag(id as i64);
                }
                self.last_id = id;
            }
        }
    }

    /// The end of a struct's fields.
    pub fn field_stop(&mut self) {
        self.out.push(0);
    }

    /// An `i32`.
    pub fn i32(&mut self, v: i32) {
        match self.proto {
            Protocol::Binary => self.out.extend_from_slice(&v.to_be_bytes()),
            Protocol::Compact => self.zigzag(v as i64),
        }
    }

    /// A `binary` or `string`.
    pub fn binary(&mut self, b: &[u8]) {
        match self.proto {
            Protocol::Binary => self.out.extend_from_slice(&(b.len() as i32).to_be_bytes()),
            Protocol::Compact => self.varint(b.len() as u64),
        }
        self.out.extend_from_slice(b);
    }

    /// A map header.
    pub fn map_begin(&mut self, k: TType, v: TType, n: usize) {
        match self.proto {
            Protocol::Binary => {
                self.out.push(k.binary_id());
                self.out.push(v.binary_id());
                self.out.extend_from_slice(&(n as i32).to_be_bytes());
            }
            Protocol::Compact if n == 0 => self.out.push(0),
            Protocol::Compact => {
                self.varint(n as u64);
                self.out.push((k.compact_id() << 4) | v.compact_id());
            }
        }
    }

    /// A list header.
    pub fn list_begin(&mut self, e: TType, n: usize) {
        match self.proto {
            Protocol::Binary => {
                self.out.push(e.binary_id());
                self.out.extend_from_slice(&(n as i32).to_be_bytes());
            }
            Protocol::Compact if n < 15 => self.out.push(((n as u8) << 4) | e.compact_id()),
            Protocol::Compact => {
                self.out.push(0xf0 | e.compact_id());
                self.varint(n as u64);
            }
        }
    }
}

/// The deepest nesting skipped (a guard against hostile input).
const MAX_DEPTH: usize = 64;

/// Reads a message in one protocol from a buffer.
#[derive(Debug)]
pub struct Reader<'a> {
    proto: Protocol,
    buf: &'a [u8],
    pos: usize,
    last: Vec<i16>,
    last_id: i16,
    /// Compact: a boolean field's value, carried in its header.
    pending_bool: Option<bool>,
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(proto: Protocol, buf: &'a [u8]) -> Self {
        Reader {
            proto,
            buf,
            pos: 0,
            last: Vec::new(),
            last_id: 0,
            pending_bool: None,
        }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return err(format!("need {n} bytes, {} left", self.remaining()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.u8()?;
            if shift >= 64 {
                return err("varint too long");
            }
            n |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
            shift += 7;
        }
    }

    fn zigzag(&mut self) -> Result<i64, DecodeError> {
        let n = self.varint()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    fn size(&mut self) -> Result<usize, DecodeError> {
        let n = match self.proto {
            Protocol::Binary => i32::from_be_bytes(self.be()?) as i64,
            Protocol::Compact => self.varint()? as i64,
        };
        // Every element takes at least one byte: a larger count is a lie.
        if n < 0 || n as usize > self.remaining() {
            return err(format!("bad size {n} ({} bytes left)", self.remaining()));
        }
        Ok(n as usize)
    }

    /// A message header: name, type, seqid.
    pub fn message_begin(&mut self) -> Result<(String, u8, i32), DecodeError> {
        match self.proto {
            Protocol::Binary => {
                let first = i32::from_be_bytes(self.be()?);
                if first < 0 {
                    let v = first as u32;
                    if v & 0xffff_0000 != BINARY_VERSION_1 {
                        return err(format!("bad binary protocol version {v:#x}"));
                    }
                    let name = self.string()?;
                    let seqid = i32::from_be_bytes(self.be()?);
                    Ok((name, (v & 0xff) as u8, seqid))
                } else {
                    // Old header: the name's length was `first`.
                    let n = first as usize;
                    let name = String::from_utf8(self.take(n)?.to_vec())
                        .map_err(|_| DecodeError("message name is not UTF-8".into()))?;
                    let kind = self.u8()?;
                    let seqid = i32::from_be_bytes(self.be()?);
                    Ok((name, kind, seqid))
                }
            }
            Protocol::Compact => {
                let id = self.u8()?;
                if id != COMPACT_PROTOCOL_ID {
                    return err(format!(
                        "expected compact protocol id 0x82, got {id:#04x} (is the peer using the binary protocol?)"
                    ));
                }
                let vt = self.u8()?;
                if vt & 0x1f != COMPACT_VERSION {
                    return err(format!("bad compact protocol version {}", vt & 0x1f));
                }
                let seqid = self.varint()? as u32 as i32;
                let name = self.string()?;
                Ok((name, vt >> 5, seqid))
            }
        }
    }

    /// Enters a struct.
    pub fn struct_begin(&mut self) {
        self.last.push(self.last_id);
        self.last_id = 0;
    }

    /// Leaves a struct (after [`Reader::field_begin`] returned `None`).
    pub fn struct_end(&mut self) {
        self.last_id = self.last.pop().unwrap_or(0);
    }

    /// The next field's type and id, or `None` at the struct's end.
    pub fn field_begin(&mut self) -> Result<Option<(TType, i16)>, DecodeError> {
        let b = self.u8()?;
        if b == 0 {
            return Ok(None);
        }
        match self.proto {
            Protocol::Binary => {
                let t = TType::from_binary(b)?;
                let id = i16::from_be_bytes(self.be()?);
                Ok(Some((t, id)))
            }
            Protocol::Compact => {
                let t = TType::from_compact(b & 0x0f)?;
                let delta = b >> 4;
                let id = if delta == 0 {
                    self.zigzag()? as i16
                } else {
                    self.last_id.wrapping_add(delta as i16)
                };
                self.last_id = id;
                if t == TType::Bool {
                    self.pending_bool = Some(b & 0x0f == 1);
                }
                Ok(Some((t, id)))
            }
        }
    }

    /// An `i32`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        match self.proto {
            Protocol::Binary => Ok(i32::from_be_bytes(self.be()?)),
            Protocol::Compact => {
                let v = self.zigzag()?;
                i32::try_from(v).map_err(|_| DecodeError(format!("i32 out of range: {v}")))
            }
        }
    }

    /// A `binary`.
    pub fn binary(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.size()?;
        self.take(n)
    }

    /// A `string`.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.binary()?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))
    }

    /// A map header: key type, value type, count.
    pub fn map_begin(&mut self) -> Result<(TType, TType, usize), DecodeError> {
        match self.proto {
            Protocol::Binary => {
                let k = TType::from_binary(self.u8()?)?;
                let v = TType::from_binary(self.u8()?)?;
                let n = self.size()?;
                Ok((k, v, n))
            }
            Protocol::Compact => {
                let n = self.size()?;
                if n == 0 {
                    return Ok((TType::String, TType::String, 0));
                }
                let kv = self.u8()?;
                Ok((
                    TType::from_compact(kv >> 4)?,
                    TType::from_compact(kv & 0x0f)?,
                    n,
                ))
            }
        }
    }

    /// A list (or set) header: element type, count.
    pub fn list_begin(&mut self) -> Result<(TType, usize), DecodeError> {
        match self.proto {
            Protocol::Binary => {
                let e = TType::from_binary(self.u8()?)?;
                let n = self.size()?;
                Ok((e, n))
            }
            Protocol::Compact => {
                let b = self.u8()?;
                let e = TType::from_compact(b & 0x0f)?;
                let n = if b >> 4 == 15 {
                    self.size()?
                } else {
                    (b >> 4) as usize
                };
                Ok((e, n))
            }
        }
    }

    /// Skips a value of type `t`.
    pub fn skip(&mut self, t: TType) -> Result<(), DecodeError> {
        self.skip_depth(t, 0)
    }

    fn skip_depth(&mut self, t: TType, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return err("nesting too deep");
        }
        match t {
            TType::Bool => {
                if self.pending_bool.take().is_none() {
                    self.u8()?;
                }
            }
            TType::Byte => {
                self.u8()?;
            }
            TType::Double => {
                self.take(8)?;
            }
            TType::I16 | TType::I32 | TType::I64 => match self.proto {
                Protocol::Binary => {
                    let n = match t {
                        TType::I16 => 2,
                        TType::I32 => 4,
                        _ => 8,
                    };
                    self.take(n)?;
                }
                Protocol::Compact => {
                    self.varint()?;
                }
            },
            TType::String => {
                self.binary()?;
            }
            TType::Struct => {
                self.struct_begin();
                while let Some((ft, _)) = self.field_begin()? {
                    self.skip_depth(ft, depth + 1)?;
                }
                self.struct_end();
            }
            TType::Map => {
                let (k, v, n) = self.map_begin()?;
                for _ in 0..n {
                    self.skip_depth(k, depth + 1)?;
                    self.skip_depth(v, depth + 1)?;
                }
            }
            TType::Set | TType::List => {
                let (e, n) = self.list_begin()?;
                for _ in 0..n {
                    self.skip_depth(e, depth + 1)?;
                }
            }
        }
        // A pending boolean belongs to the field just skipped only.
        self.pending_bool = None;
        Ok(())
    }
}
