//! File formats of the hdfs sink (`hdfs.fileType`): how events become the bytes of a file.
//!
//! * `DataStream`: the serializer's output as is (`text`: body + `\n`; `header_and_text`:
//!   `{k=v, …} body\n`; `avro_event`: an Avro object container file, as Flume's
//!   `FlumeEventAvroEventSerializer` writes it: schema `Event {headers: map<string>,
//!   body: bytes}`, codec `null`, one block per batch (Flume flushes a block at each batch's
//!   `sync()`), the container header with the first batch).
//! * `CompressedStream`: the same bytes compressed with `hdfs.codeC`. As in Flume
//!   (`HDFSCompressedDataStream.sync()` calls `finish()`), every flushed batch is one complete
//!   compressed member (gzip members concatenate into a valid `.gz`), so a batch that is rolled
//!   back can be cut off the file without corrupting what was committed before it.
//! * `SequenceFile`: Hadoop's `SequenceFile` version 6, uncompressed, key
//!   `org.apache.hadoop.io.LongWritable` (the event's `timestamp` header, else the clock),
//!   value `org.apache.hadoop.io.BytesWritable` (`hdfs.writeFormat = Writable`) or
//!   `org.apache.hadoop.io.Text` (`Text`). Layout: `SEQ` 0x06, key and value class names
//!   (vint length + UTF-8), two booleans (compressed, block-compressed: both false), metadata
//!   count 0 (int), a 16-byte sync marker; then records `int recordLen, int keyLen, key,
//!   value`, with `int -1` + sync marker written every 2000 bytes and at each batch end
//!   (Flume's `HDFSSequenceFile.sync()` calls `writer.sync()`), exactly as Hadoop's writer.

use std::io::Write as _;

use crate::config::types::SerializerType;
use crate::event::{headers_to_string, Event};

/// `hdfs.fileType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// `SequenceFile` (Flume's default).
    SequenceFile,
    /// `DataStream`: uncompressed serializer output.
    DataStream,
    /// `CompressedStream`: serializer output compressed with `hdfs.codeC`.
    CompressedStream,
}

/// `hdfs.codeC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `gzip` (`org.apache.hadoop.io.compress.GzipCodec`), extension `.gz`.
    Gzip,
    /// `snappy` (Hadoop's block format around raw Snappy), extension `.snappy`.
    Snappy,
    /// `bzip2` (`org.apache.hadoop.io.compress.BZip2Codec`), extension `.bz2`: one bzip2
    /// stream per batch, concatenated (as Flume's `finish()` at every sync writes them).
    Bzip2,
}

impl Codec {
    /// Parses a Flume `hdfs.codeC` value (alias or Hadoop class name).
    pub fn parse(v: &str) -> Option<Codec> {
        match v.trim().to_ascii_lowercase().as_str() {
            "gzip" | "gzipcodec" | "org.apache.hadoop.io.compress.gzipcodec" => Some(Codec::Gzip),
            "snappy" | "snappycodec" | "org.apache.hadoop.io.compress.snappycodec" => {
                Some(Codec::Snappy)
            }
            "bzip2" | "bzip2codec" | "org.apache.hadoop.io.compress.bzip2codec" => {
                Some(Codec::Bzip2)
            }
            _ => None,
        }
    }

    /// The codec's default file extension (used when `hdfs.fileSuffix` is empty).
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Snappy => ".snappy",
            Codec::Bzip2 => ".bz2",
        }
    }
}

/// `hdfs.writeFormat`: the SequenceFile value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFormat {
    /// `Writable`: `BytesWritable` (Flume's default).
    Writable,
    /// `Text`: `Text`.
    Text,
}

/// Everything that decides the bytes of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatConfig {
    /// `hdfs.fileType`.
    pub file_type: FileType,
    /// `hdfs.codeC` (required for CompressedStream, forbidden for DataStream).
    pub codec: Option<Codec>,
    /// `hdfs.writeFormat`.
    pub write_format: WriteFormat,
    /// `serializer` (DataStream / CompressedStream).
    pub serializer: SerializerType,
    /// `serializer.appendNewline` (Flume's default: true).
    pub append_newline: bool,
}

const SYNC_INTERVAL: u64 = 2000;

/// Encodes events for one open file. Bytes for the current batch accumulate in an internal
/// buffer; [`Encoder::finish_batch`] returns them ready to write.
#[derive(Debug)]
pub struct Encoder {
    cfg: FormatConfig,
    /// Uncompressed bytes of the current batch (DataStream/CompressedStream) or encoded
    /// records (SequenceFile).
    buf: Vec<u8>,
    /// SequenceFile: the sync marker, the position of the last sync and of the file end.
    sync: [u8; 16],
    pos: u64,
    last_sync: u64,
    /// avro_event: the records of the current block and their count.
    avro_block: Vec<u8>,
    avro_count: i64,
}

/// Flume's `Event` schema, as `FlumeEventAvroEventSerializer` declares it.
pub const AVRO_EVENT_SCHEMA: &str = r#"{"type":"record","name":"Event","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}"#;

fn avro_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn avro_bytes(out: &mut Vec<u8>, b: &[u8]) {
    avro_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

impl Encoder {
    /// A new encoder for a new file.
    pub fn new(cfg: &FormatConfig) -> Self {
        let mut sync = [0u8; 16];
        sync.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Encoder {
            cfg: cfg.clone(),
            buf: Vec::with_capacity(64 * 1024),
            sync,
            pos: 0,
            last_sync: 0,
            avro_block: Vec::new(),
            avro_count: 0,
        }
    }

    fn avro(&self) -> bool {
        self.cfg.file_type != FileType::SequenceFile
            && self.cfg.serializer == SerializerType::AvroEvent
    }

    /// The Avro container header: magic, metadata (schema, codec), sync marker.
    fn avro_header(&mut self) {
        self.buf.extend_from_slice(b"Obj\x01");
        avro_long(&mut self.buf, 2);
        avro_bytes(&mut self.buf, b"avro.schema");
        avro_bytes(&mut self.buf, AVRO_EVENT_SCHEMA.as_bytes());
        avro_bytes(&mut self.buf, b"avro.codec");
        avro_bytes(&mut self.buf, b"null");
        avro_long(&mut self.buf, 0);
        self.buf.extend_from_slice(&self.sync);
    }

    /// The file header (SequenceFile), or nothing; to be written first.
    pub fn header(&mut self) -> Vec<u8> {
        if self.cfg.file_type != FileType::SequenceFile {
            return Vec::new();
        }
        let mut h = b"SEQ\x06".to_vec();
        write_string(&mut h, "org.apache.hadoop.io.LongWritable");
        write_string(
            &mut h,
            match self.cfg.write_format {
                WriteFormat::Writable => "org.apache.hadoop.io.BytesWritable",
                WriteFormat::Text => "org.apache.hadoop.io.Text",
            },
        );
        h.push(0); // compressed
        h.push(0); // block compressed
        h.extend_from_slice(&0i32.to_be_bytes()); // metadata entries
        h.extend_from_slice(&self.sync);
        self.pos = h.len() as u64;
        h
    }

    /// Adds one event; `timestamp_ms` is the SequenceFile key.
    pub fn append(&mut self, e: &Event, timestamp_ms: i64) {
        match self.cfg.file_type {
            FileType::SequenceFile => {
                if self.pos + self.buf.len() as u64 >= self.last_sync + SYNC_INTERVAL {
                    self.write_sync();
                }
                let value_len = match self.cfg.write_format {
                    WriteFormat::Writable => 4 + e.body.len(),
                    WriteFormat::Text => vlong_len(e.body.len() as i64) + e.body.len(),
                };
                self.buf
                    .extend_from_slice(&((8 + value_len) as i32).to_be_bytes());
                self.buf.extend_from_slice(&8i32.to_be_bytes());
                self.buf.extend_from_slice(&timestamp_ms.to_be_bytes());
                match self.cfg.write_format {
                    WriteFormat::Writable => self
                        .buf
                        .extend_from_slice(&(e.body.len() as i32).to_be_bytes()),
                    WriteFormat::Text => write_vlong(&mut self.buf, e.body.len() as i64),
                }
                self.buf.extend_from_slice(&e.body);
            }
            _ if self.avro() => {
                // The container header goes with the file's first batch (through the codec).
                if self.pos == 0 && self.buf.is_empty() {
                    self.avro_header();
                }
                let b = &mut self.avro_block;
                if !e.headers.is_empty() {
                    avro_long(b, e.headers.len() as i64);
                    for (k, v) in e.headers.iter() {
                        avro_bytes(b, k.as_bytes());
                        avro_bytes(b, v.as_bytes());
                    }
                }
                avro_long(b, 0);
                avro_bytes(b, &e.body);
                self.avro_count += 1;
            }
            _ => {
                if self.cfg.serializer == SerializerType::HeaderAndText {
                    self.buf
                        .extend_from_slice(headers_to_string(&e.headers).as_bytes());
                    self.buf.push(b' ');
                }
                self.buf.extend_from_slice(&e.body);
                if self.cfg.append_newline {
                    self.buf.push(b'\n');
                }
            }
        }
    }

    fn write_sync(&mut self) {
        let at = self.pos + self.buf.len() as u64;
        if at != self.last_sync {
            self.buf.extend_from_slice(&(-1i32).to_be_bytes());
            self.buf.extend_from_slice(&self.sync);
            self.last_sync = self.pos + self.buf.len() as u64;
        }
    }

    /// True when the current batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.avro_count == 0
    }

    /// Ends the current batch: the bytes to write (compressed as configured). Call
    /// [`Encoder::committed`] with their length once they are written.
    pub fn finish_batch(&mut self) -> std::io::Result<Vec<u8>> {
        if self.avro_count > 0 {
            avro_long(&mut self.buf, self.avro_count);
            avro_long(&mut self.buf, self.avro_block.len() as i64);
            self.buf.append(&mut self.avro_block);
            self.buf.extend_from_slice(&self.sync);
            self.avro_count = 0;
        }
        if self.buf.is_empty() {
            return Ok(Vec::new());
        }
        if self.cfg.file_type == FileType::SequenceFile {
            self.write_sync();
        }
        // The next batch is likely as big as this one: no regrowth from 64 KiB each time.
        let next = Vec::with_capacity(self.buf.len().max(64 * 1024));
        let raw = std::mem::replace(&mut self.buf, next);
        let out = match (self.cfg.file_type, self.cfg.codec) {
            (FileType::CompressedStream, Some(Codec::Gzip)) => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 4 + 64),
                    flate2::Compression::default(),
                );
                enc.write_all(&raw)?;
                enc.finish()?
            }
            (FileType::CompressedStream, Some(Codec::Snappy)) => snappy_blocks(&raw)?,
            (FileType::CompressedStream, Some(Codec::Bzip2)) => {
                // Hadoop's BZip2Codec writes 900k blocks (level 9), as `bzip2` does.
                let mut enc = bzip2::write::BzEncoder::new(
                    Vec::with_capacity(raw.len() / 4 + 64),
                    bzip2::Compression::best(),
                );
                enc.write_all(&raw)?;
                enc.finish()?
            }
            _ => raw,
        };
        Ok(out)
    }

    /// Records that `n` bytes returned by [`Encoder::finish_batch`] are in the file.
    pub fn committed(&mut self, n: usize) {
        self.pos += n as u64;
    }

    /// Forgets the current batch and rewinds to `file_len` (after a failed write).
    pub fn rewind(&mut self, file_len: u64, last_sync: u64) {
        self.buf.clear();
        self.avro_block.clear();
        self.avro_count = 0;
        self.pos = file_len;
        self.last_sync = last_sync;
    }

    /// The file length once everything finished so far is written (header included).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The position of the last sync marker (SequenceFile), to rewind to.
    pub fn last_sync(&self) -> u64 {
        self.last_sync
    }
}

/// Hadoop's `BlockCompressorStream` framing for Snappy: per block, the uncompressed length
/// (int), then one chunk: compressed length (int) and raw Snappy bytes.
fn snappy_blocks(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    let mut enc = snap::raw::Encoder::new();
    for chunk in raw.chunks(64 * 1024) {
        let c = enc.compress_vec(chunk).map_err(std::io::Error::other)?;
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// Hadoop's `Text.writeString`: vint length + UTF-8.
fn write_string(out: &mut Vec<u8>, s: &str) {
    write_vlong(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn vlong_len(i: i64) -> usize {
    if (-112..=127).contains(&i) {
        return 1;
    }
    let v = if i < 0 { !i } else { i };
    1 + (8 - (v.leading_zeros() as usize) / 8)
}

/// Hadoop's `WritableUtils.writeVLong`.
fn write_vlong(out: &mut Vec<u8>, i: i64) {
    if (-112..=127).contains(&i) {
        out.push(i as u8);
        return;
    }
    let (v, base) = if i < 0 { (!i, -120i32) } else { (i, -112i32) };
    let n = 8 - (v.leading_zeros() as i32) / 8;
    out.push((base - n) as u8);
    for idx in (0..n).rev() {
        out.push((v >> (idx * 8)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(file_type: FileType, codec: Option<Codec>, wf: WriteFormat) -> FormatConfig {
        FormatConfig {
            file_type,
            codec,
            write_format: wf,
            serializer: SerializerType::Text,
            append_newline: true,
        }
    }

    /// Reads an Avro zigzag long.
    fn read_long(b: &[u8], i: &mut usize) -> i64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let x = b[*i];
            *i += 1;
            v |= ((x & 0x7f) as u64) << shift;
            shift += 7;
            if x < 0x80 {
                return (v >> 1) as i64 ^ -((v & 1) as i64);
            }
        }
    }

    fn read_bytes<'a>(b: &'a [u8], i: &mut usize) -> &'a [u8] {
        let n = read_long(b, i) as usize;
        *i += n;
        &b[*i - n..*i]
    }

    #[test]
    fn avro_event_container() {
        let mut c = cfg(FileType::DataStream, None, WriteFormat::Writable);
        c.serializer = SerializerType::AvroEvent;
        let mut enc = Encoder::new(&c);
        assert!(
            enc.header().is_empty(),
            "the container header goes with the first batch"
        );
        let mut e = Event::new("hello");
        e.headers.insert("k".into(), "v".into());
        enc.append(&e, 0);
        enc.append(&Event::new(vec![0u8, 255]), 0);
        let first = enc.finish_batch().unwrap();
        enc.committed(first.len());
        enc.append(&Event::new("again"), 0);
        let second = enc.finish_batch().unwrap();
        let file = [first, second].concat();
        let mut i = 4;
        assert_eq!(&file[..4], b"Obj\x01");
        assert_eq!(read_long(&file, &mut i), 2);
        let mut meta = std::collections::BTreeMap::new();
        for _ in 0..2 {
            let k = read_bytes(&file, &mut i).to_vec();
            meta.insert(k, read_bytes(&file, &mut i).to_vec());
        }
        assert_eq!(read_long(&file, &mut i), 0);
        assert_eq!(meta[&b"avro.schema"[..]], AVRO_EVENT_SCHEMA.as_bytes());
        assert_eq!(meta[&b"avro.codec"[..]], b"null");
        let sync = file[i..i + 16].to_vec();
        i += 16;
        let mut events = Vec::new();
        while i < file.len() {
            let count = read_long(&file, &mut i);
            let size = read_long(&file, &mut i) as usize;
            let end = i + size;
            for _ in 0..count {
                let mut headers = Vec::new();
                loop {
                    let n = read_long(&file, &mut i);
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let k = String::from_utf8(read_bytes(&file, &mut i).to_vec()).unwrap();
                        let v = String::from_utf8(read_bytes(&file, &mut i).to_vec()).unwrap();
                        headers.push((k, v));
                    }
                }
                events.push((headers, read_bytes(&file, &mut i).to_vec()));
            }
            assert_eq!(i, end);
            assert_eq!(file[i..i + 16], sync[..]);
            i += 16;
        }
        assert_eq!(
            events,
            vec![
                (vec![("k".to_string(), "v".to_string())], b"hello".to_vec()),
                (vec![], vec![0, 255]),
                (vec![], b"again".to_vec()),
            ]
        );
    }

    #[test]
    fn vlongs_match_hadoop() {
        let enc = |i| {
            let mut v = Vec::new();
            write_vlong(&mut v, i);
            assert_eq!(v.len(), vlong_len(i), "{i}");
            v
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(127), [127]);
        assert_eq!(enc(-112), [0x90]);
        assert_eq!(enc(128), [0x8f, 0x80]); // -113, 1 byte follows
        assert_eq!(enc(300), [0x8e, 0x01, 0x2c]);
        assert_eq!(enc(-113), [0x87, 0x70]); // -121: negative, 1 byte of !i = 112
    }

    #[test]
    fn sequence_file_bytes() {
        let mut e = Encoder::new(&cfg(FileType::SequenceFile, None, WriteFormat::Writable));
        let h = e.header();
        assert_eq!(&h[..4], b"SEQ\x06");
        assert_eq!(h[4] as usize, "org.apache.hadoop.io.LongWritable".len());
        assert!(h
            .windows(34)
            .any(|w| w == b"org.apache.hadoop.io.BytesWritable"));
        let sync = h[h.len() - 16..].to_vec();
        assert_eq!(&h[h.len() - 22..h.len() - 16], &[0, 0, 0, 0, 0, 0]);
        e.append(&Event::new("abc"), 1339526074123);
        let b = e.finish_batch().unwrap();
        // recordLen = 8 + 4 + 3, keyLen = 8, key, value = len + bytes, then the batch sync.
        assert_eq!(&b[..8], &[0, 0, 0, 15, 0, 0, 0, 8]);
        assert_eq!(&b[8..16], &1339526074123i64.to_be_bytes());
        assert_eq!(&b[16..23], &[0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(&b[23..27], &[0xff; 4]);
        assert_eq!(&b[27..], &sync[..]);
        e.committed(b.len());
        // Text values: vint length.
        let mut t = Encoder::new(&cfg(FileType::SequenceFile, None, WriteFormat::Text));
        t.header();
        t.append(&Event::new("xy"), 1);
        let b = t.finish_batch().unwrap();
        assert_eq!(&b[..8], &[0, 0, 0, 11, 0, 0, 0, 8]);
        assert_eq!(&b[16..19], &[2, b'x', b'y']);
    }

    #[test]
    fn sequence_file_syncs_every_2000_bytes() {
        let mut e = Encoder::new(&cfg(FileType::SequenceFile, None, WriteFormat::Writable));
        let h = e.header();
        let sync = h[h.len() - 16..].to_vec();
        for _ in 0..100 {
            e.append(&Event::new(vec![b'x'; 80]), 0);
        }
        let b = e.finish_batch().unwrap();
        let markers = b.windows(16).filter(|w| *w == &sync[..]).count();
        // 100 records of 104 bytes = 10400 bytes: a sync roughly every 2000 bytes + the end.
        assert!((5..=7).contains(&markers), "{markers}");
    }

    #[test]
    fn gzip_batches_are_members() {
        use std::io::Read as _;
        let mut e = Encoder::new(&cfg(
            FileType::CompressedStream,
            Some(Codec::Gzip),
            WriteFormat::Writable,
        ));
        e.append(&Event::new("one"), 0);
        let mut file = e.finish_batch().unwrap();
        e.append(&Event::new("two"), 0);
        file.extend(e.finish_batch().unwrap());
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&file[..])
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "one\ntwo\n");
        let mut sn = Encoder::new(&cfg(
            FileType::CompressedStream,
            Some(Codec::Snappy),
            WriteFormat::Writable,
        ));
        sn.append(&Event::new("hello"), 0);
        let b = sn.finish_batch().unwrap();
        assert_eq!(&b[..4], &6u32.to_be_bytes());
        let n = u32::from_be_bytes(b[4..8].try_into().unwrap()) as usize;
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&b[8..8 + n])
            .unwrap();
        assert_eq!(raw, b"hello\n");
    }

    #[test]
    fn bzip2_batches_are_concatenated_streams() {
        use std::io::Read as _;
        assert_eq!(
            Codec::parse("org.apache.hadoop.io.compress.BZip2Codec"),
            Some(Codec::Bzip2)
        );
        assert_eq!(Codec::parse("bzip2").map(Codec::extension), Some(".bz2"));
        let mut e = Encoder::new(&cfg(
            FileType::CompressedStream,
            Some(Codec::Bzip2),
            WriteFormat::Writable,
        ));
        e.append(&Event::new("one"), 0);
        let mut file = e.finish_batch().unwrap();
        assert_eq!(&file[..4], b"BZh9");
        e.append(&Event::new("two"), 0);
        file.extend(e.finish_batch().unwrap());
        let mut s = String::new();
        bzip2::read::MultiBzDecoder::new(&file[..])
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "one\ntwo\n");
    }
}
