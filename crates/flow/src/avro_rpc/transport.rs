//! The byte stream under the Avro frames, layered as Flume's Netty pipelines are:
//!
//! ```text
//! TCP ─ TLS (optional: Netty's SslHandler is first in the pipeline)
//!     ─ zlib stream (optional: `compression-type = deflate`, Netty's ZlibEncoder/ZlibDecoder
//!       with the ZLIB wrapper; every write is compressed and ended with a sync flush)
//!     ─ Netty frames (serial, buffer count, buffers)
//! ```
//!
//! [`FrameConn`] reads whole frames out of one reused buffer: a frame with one buffer (what
//! this crate writes) is handed out as a slice of that buffer, so the events decoded from it
//! share its memory instead of being copied one by one.

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::MAX_FRAME;

pub use crate::tls::Stream;

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The zlib state of a compressed connection (one stream each way).
struct Zlib {
    deflate: Compress,
    inflate: Decompress,
    /// Compressed bytes read but not inflated yet.
    raw_in: BytesMut,
    /// Compressed bytes of the frame being written.
    raw_out: Vec<u8>,
    /// The peer finished its zlib stream; anything after it is ignored.
    ended: bool,
}

/// A connection carrying Netty frames, over an optional zlib stream, over a [`Stream`].
pub struct FrameConn {
    stream: Box<dyn Stream>,
    zlib: Option<Box<Zlib>>,
    /// Frame bytes received (inflated when compressed) and not yet handed out.
    rbuf: BytesMut,
    /// The frame being written (header then payload), reused.
    wbuf: Vec<u8>,
}

impl std::fmt::Debug for FrameConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameConn")
            .field("compressed", &self.zlib.is_some())
            .finish_non_exhaustive()
    }
}

fn invalid(m: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, m.into())
}

impl FrameConn {
    /// Frames over `stream`; `deflate_level` (0–9) turns the zlib layer on.
    pub fn new(stream: Box<dyn Stream>, deflate_level: Option<u32>) -> Self {
        FrameConn {
            stream,
            zlib: deflate_level.map(|level| {
                Box::new(Zlib {
                    deflate: Compress::new(Compression::new(level.min(9)), true),
                    inflate: Decompress::new(true),
                    raw_in: BytesMut::new(),
                    raw_out: Vec::new(),
                    ended: false,
                })
            }),
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
        }
    }

    /// Writes one frame holding a single buffer that `encode` appends to the given vector
    /// (which is reused from frame to frame), then flushes.
    pub async fn write_frame_with(
        &mut self,
        serial: i32,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> std::io::Result<()> {
        self.wbuf.clear();
        self.wbuf.extend_from_slice(&serial.to_be_bytes());
        self.wbuf.extend_from_slice(&1i32.to_be_bytes());
        self.wbuf.extend_from_slice(&0i32.to_be_bytes());
        encode(&mut self.wbuf);
        let len = self.wbuf.len() - 12;
        if len > MAX_FRAME {
            return Err(invalid(format!(
                "frame of {len} bytes is larger than {MAX_FRAME}"
            )));
        }
        self.wbuf[8..12].copy_from_slice(&(len as i32).to_be_bytes());
        match self.zlib.as_deref_mut() {
            None => self.stream.write_all(&self.wbuf).await?,
            Some(z) => {
                z.raw_out.clear();
                deflate_sync(&mut z.deflate, &self.wbuf, &mut z.raw_out)?;
                self.stream.write_all(&z.raw_out).await?;
            }
        }
        self.stream.flush().await
    }

    /// Writes one frame holding `payload` as a single buffer.
    pub async fn write_frame(&mut self, serial: i32, payload: &[u8]) -> std::io::Result<()> {
        self.write_frame_with(serial, |b| b.extend_from_slice(payload))
            .await
    }

    /// Reads one frame: its serial and the concatenation of its buffers. `Ok(None)` at a
    /// clean end of stream (between frames).
    pub async fn read_frame(&mut self) -> std::io::Result<Option<(i32, Bytes)>> {
        loop {
            if let Some(frame) = self.parse_frame()? {
                return Ok(Some(frame));
            }
            if self.fill().await? == 0 {
                return if self.rbuf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed in the middle of a frame",
                    ))
                };
            }
        }
    }

    /// Closes the write side (TLS: sends close_notify).
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Cuts a complete frame off the front of `rbuf`, if there is one.
    fn parse_frame(&mut self) -> std::io::Result<Option<(i32, Bytes)>> {
        let b = &self.rbuf[..];
        if b.len() < 8 {
            return Ok(None);
        }
        let serial = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let count = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        if !(0..=1_000_000).contains(&count) {
            return Err(invalid(format!("bad Netty frame buffer count {count}")));
        }
        let mut pos = 8;
        let mut total = 0usize;
        for _ in 0..count {
            if b.len() < pos + 4 {
                return Ok(None);
            }
            let len = i32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
            if len < 0 || total + len as usize > MAX_FRAME {
                return Err(invalid(format!("bad Netty frame buffer length {len}")));
            }
            total += len as usize;
            pos += 4 + len as usize;
            if b.len() < pos {
                // Make room for the rest of this buffer in one go (capped: the length is
                // the peer's claim, not yet data).
                self.rbuf.reserve((pos - b.len()).min(4 << 20));
                return Ok(None);
            }
        }
        let frame = self.rbuf.split_to(pos).freeze();
        let payload = if count == 1 {
            frame.slice(12..)
        } else {
            let mut v = Vec::with_capacity(total);
            let mut p = 8;
            for _ in 0..count {
                let len = i32::from_be_bytes([frame[p], frame[p + 1], frame[p + 2], frame[p + 3]])
                    as usize;
                v.extend_from_slice(&frame[p + 4..p + 4 + len]);
                p += 4 + len;
            }
            Bytes::from(v)
        };
        Ok(Some((serial, payload)))
    }

    /// Reads more from the stream into `rbuf` (inflating when compressed); returns the
    /// number of bytes read from the stream (0 at its end).
    async fn fill(&mut self) -> std::io::Result<usize> {
        match self.zlib.as_deref_mut() {
            None => {
                self.rbuf.reserve(READ_CHUNK);
                self.stream.read_buf(&mut self.rbuf).await
            }
            Some(z) => {
                z.raw_in.reserve(READ_CHUNK);
                let n = self.stream.read_buf(&mut z.raw_in).await?;
                inflate_into(z, &mut self.rbuf)?;
                Ok(n)
            }
        }
    }
}

/// Compresses `input` into `out` and ends with a sync flush (what Netty's ZlibEncoder does
/// for every write), so the peer can inflate the whole frame now.
fn deflate_sync(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    let start_in = c.total_in();
    loop {
        let consumed = (c.total_in() - start_in) as usize;
        out.reserve((input.len() - consumed) / 2 + 1024);
        c.compress_vec(&input[consumed..], out, FlushCompress::Sync)
            .map_err(|e| invalid(format!("deflate failed: {e}")))?;
        let consumed = (c.total_in() - start_in) as usize;
        if consumed == input.len() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

/// Inflates all of `z.raw_in` onto the end of `out`.
fn inflate_into(z: &mut Zlib, out: &mut BytesMut) -> std::io::Result<()> {
    let mut pos = 0;
    while pos < z.raw_in.len() && !z.ended {
        let old = out.len();
        let room = READ_CHUNK.max((z.raw_in.len() - pos) * 4);
        out.resize(old + room, 0);
        let (in0, out0) = (z.inflate.total_in(), z.inflate.total_out());
        let status = z
            .inflate
            .decompress(&z.raw_in[pos..], &mut out[old..], FlushDecompress::None)
            .map_err(|e| {
                invalid(format!(
                    "inflate failed (is the peer's compression-type deflate too?): {e}"
                ))
            })?;
        let consumed = (z.inflate.total_in() - in0) as usize;
        let produced = (z.inflate.total_out() - out0) as usize;
        out.truncate(old + produced);
        pos += consumed;
        if status == Status::StreamEnd {
            z.ended = true;
        }
        if consumed == 0 && produced == 0 {
            break;
        }
    }
    if z.ended {
        z.raw_in.clear();
    } else {
        let _ = z.raw_in.split_to(pos);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(level: Option<u32>) -> (FrameConn, FrameConn) {
        let (a, b) = tokio::io::duplex(1024);
        (
            FrameConn::new(Box::new(a), level),
            FrameConn::new(Box::new(b), level),
        )
    }

    #[tokio::test]
    async fn frames_round_trip_plain_and_deflated() {
        for level in [None, Some(0), Some(6), Some(9)] {
            let (mut a, mut b) = pair(level).await;
            let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            let big2 = big.clone();
            let w = tokio::spawn(async move {
                a.write_frame(1, b"hello").await.unwrap();
                a.write_frame(2, &big2).await.unwrap();
                a.write_frame(3, b"").await.unwrap();
                a.shutdown().await;
            });
            assert_eq!(
                b.read_frame().await.unwrap(),
                Some((1, Bytes::from_static(b"hello")))
            );
            assert_eq!(b.read_frame().await.unwrap().unwrap().1, &big[..]);
            assert_eq!(b.read_frame().await.unwrap(), Some((3, Bytes::new())));
            assert_eq!(b.read_frame().await.unwrap(), None, "{level:?}");
            w.await.unwrap();
        }
    }

    #[tokio::test]
    async fn deflated_stream_is_a_zlib_stream_with_sync_flushes() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut conn = FrameConn::new(Box::new(a), Some(6));
        conn.write_frame(7, b"abcabcabc").await.unwrap();
        let mut raw = vec![0u8; 1 << 16];
        let n = b.read(&mut raw).await.unwrap();
        let raw = &raw[..n];
        assert_eq!(raw[0], 0x78, "zlib header");
        assert_eq!(&raw[n - 4..], &[0, 0, 0xff, 0xff], "sync flush marker");
        // An independent inflater (flate2's reader) reads the frame back.
        let mut d = flate2::Decompress::new(true);
        let mut out = vec![0u8; 1024];
        d.decompress(raw, &mut out, FlushDecompress::Sync).unwrap();
        let out = &out[..d.total_out() as usize];
        assert_eq!(&out[..12], &[0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 9]);
        assert_eq!(&out[12..], b"abcabcabc");
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error_and_multi_buffer_frames_concatenate() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut conn = FrameConn::new(Box::new(b), None);
        let mut raw = Vec::new();
        raw.extend_from_slice(&5i32.to_be_bytes());
        raw.extend_from_slice(&2i32.to_be_bytes());
        raw.extend_from_slice(&2i32.to_be_bytes());
        raw.extend_from_slice(b"ab");
        raw.extend_from_slice(&1i32.to_be_bytes());
        raw.extend_from_slice(b"c");
        raw.extend_from_slice(&6i32.to_be_bytes());
        a.write_all(&raw).await.unwrap();
        drop(a);
        assert_eq!(
            conn.read_frame().await.unwrap(),
            Some((5, Bytes::from_static(b"abc")))
        );
        assert!(conn.read_frame().await.is_err());
    }

    #[tokio::test]
    async fn garbage_on_a_deflate_connection_is_an_error() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut conn = FrameConn::new(Box::new(b), Some(6));
        a.write_all(&crate::avro_rpc::encode_frame(1, b"plain"))
            .await
            .unwrap();
        drop(a);
        let e = conn.read_frame().await.unwrap_err();
        assert!(e.to_string().contains("inflate failed"), "{e}");
    }
}
