//! One segment: a `.log` file of record batches named by its base offset, plus its indexes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::index::{read_optional, BatchInfo, Indexes, OffsetIndex, TimeIndex};
use crate::storage::{FileStorage, Storage};
use crate::types::{FilePosition, Offset, RelativeOffset, Timestamp};

/// File name of a segment file: the base offset on 20 digits plus the extension.
pub fn file_name(base: Offset, ext: &str) -> String {
    format!("{:020}.{ext}", base.0)
}

/// Overwrites a file with `bytes` without truncating it to zero first (ext4 forces a
/// writeback on truncate-to-zero), and skips the write when the file already holds `bytes`.
fn write_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = file.metadata()?.len();
    if len == bytes.len() as u64 {
        let mut old = vec![0u8; bytes.len()];
        if file.read_exact_at(&mut old, 0).is_ok() && old == bytes {
            return Ok(());
        }
    }
    file.write_all_at(bytes, 0)?;
    if len != bytes.len() as u64 {
        file.set_len(bytes.len() as u64)?;
    }
    Ok(())
}

/// How a scan over a segment's batches ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEnd {
    /// Position just after the last batch accepted.
    pub valid_end: u64,
    /// Why the scan stopped before the end of the file, if it did because of bad data.
    pub invalid: Option<String>,
}

/// Walks the batches of `storage` from `from` up to `len`. With `verify`, each batch must be
/// whole, magic 2, and pass its CRC and count checks, and `visit` receives the whole batch;
/// otherwise `visit` gets what of the batch is in the read buffer (at least the header; the
/// whole batch when its length equals `header.size`).
/// `visit` returns `Ok(true)` to go on, `Ok(false)` to stop, `Err(reason)` to stop as invalid.
pub fn scan(
    storage: &dyn Storage,
    len: u64,
    from: u64,
    verify: bool,
    chunk: usize,
    mut visit: impl FnMut(u64, &BatchHeader, &[u8]) -> Result<bool, String>,
) -> io::Result<ScanEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_pos = from; // file position of buf[0]
    let mut pos = from;
    let invalid = |valid_end: u64, reason: String| ScanEnd {
        valid_end,
        invalid: Some(reason),
    };
    while pos < len {
        let need_header = HEADER_LEN.min((len - pos) as usize);
        if pos + need_header as u64 > buf_pos + buf.len() as u64 || pos < buf_pos {
            let n = chunk.max(HEADER_LEN).min((len - pos) as usize);
            buf.resize(n, 0);
            storage.read_at(&mut buf, pos)?;
            buf_pos = pos;
        }
        let at = (pos - buf_pos) as usize;
        let avail = &buf[at..];
        if avail.len() < HEADER_LEN {
            return Ok(invalid(
                pos,
                format!(
                    "{} trailing bytes, shorter than a batch header",
                    avail.len()
                ),
            ));
        }
        if avail[16] as i8 != 2 {
            return Ok(invalid(
                pos,
                format!("magic {} at position {pos}", avail[16] as i8),
            ));
        }
        let header = BatchHeader::parse(avail).expect("header length checked");
        if header.size < HEADER_LEN {
            return Ok(invalid(
                pos,
                format!("batch length {} at position {pos}", header.size),
            ));
        }
        if pos + header.size as u64 > len {
            return Ok(invalid(
                pos,
                format!(
                    "batch of {} bytes at position {pos} runs past the end ({len})",
                    header.size
                ),
            ));
        }
        let keep_going = if verify {
            if at + header.size > buf.len() {
                let n = chunk.max(header.size).min((len - pos) as usize);
                buf.resize(n, 0);
                storage.read_at(&mut buf, pos)?;
                buf_pos = pos;
            }
            let at = (pos - buf_pos) as usize;
            let whole = &buf[at..at + header.size];
            if let Err(e) = batch::validate(whole, None) {
                return Ok(invalid(pos, format!("at position {pos}: {e}")));
            }
            visit(pos, &header, whole)
        } else {
            visit(pos, &header, &avail[..header.size.min(avail.len())])
        };
        match keep_going {
            Ok(true) => pos += header.size as u64,
            Ok(false) => {
                return Ok(ScanEnd {
                    valid_end: pos,
                    invalid: None,
                })
            }
            Err(reason) => return Ok(invalid(pos, reason)),
        }
    }
    Ok(ScanEnd {
        valid_end: pos,
        invalid: None,
    })
}

/// What a verified scan of a whole segment learned.
#[derive(Debug, Default, Clone)]
pub struct Rebuilt {
    /// Rebuilt indexes.
    pub indexes: Indexes,
    /// Position after the last valid batch.
    pub valid_end: u64,
    /// Why the scan stopped early, if it did.
    pub invalid: Option<String>,
    /// Offset after the last valid batch.
    pub next_offset: Offset,
    /// Largest batch max timestamp and the offset holding it.
    pub max_timestamp: (Timestamp, Offset),
    /// Max timestamp of the first batch (for segment.ms).
    pub first_timestamp: Option<Timestamp>,
    /// Bytes since the last offset-index entry.
    pub bytes_since_index: u64,
}

/// Tracks index entries while batches are added (shared by append and rebuild).
#[derive(Debug, Clone)]
struct IndexBuilder {
    interval: u64,
}

impl IndexBuilder {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        indexes: &mut Indexes,
        bytes_since_index: &mut u64,
        max_ts: &mut (Timestamp, Offset),
        base: Offset,
        position: u64,
        header: &BatchHeader,
        whole: Option<&[u8]>,
        offset_of_max: Offset,
    ) {
        let ts = Timestamp(header.max_timestamp);
        if ts > max_ts.0 {
            *max_ts = (ts, offset_of_max);
        }
        if *bytes_since_index > self.interval {
            indexes.offset.append_with(
                RelativeOffset((header.base_offset - base.0) as u32),
                FilePosition(position as u32),
                batch_info(header, whole),
            );
            if max_ts.0 .0 >= 0 {
                indexes
                    .time
                    .maybe_append(max_ts.0, RelativeOffset((max_ts.1 .0 - base.0) as u32));
            }
            *bytes_since_index = 0;
        } else {
            let answer = batch_info(header, whole).answer_timestamp;
            indexes.offset.note_unindexed(header.max_timestamp, answer);
        }
        *bytes_since_index += header.size as u64;
    }
}

/// The in-memory description of a batch for its index entry (see [`BatchInfo`]); `whole` is
/// the whole batch when at hand (needed for the answer of a one-record batch).
fn batch_info(header: &BatchHeader, whole: Option<&[u8]>) -> BatchInfo {
    let answer_timestamp = if header.compression() != 0 || header.is_log_append_time() {
        header.max_timestamp
    } else if header.records_count == 1 && header.last_offset_delta == 0 {
        let mut records = whole
            .filter(|b| b.len() == header.size)
            .map(|b| batch::Records::new(header, b));
        match records.as_mut().map(|r| (r.next(), r.next())) {
            Some((Some(Ok(r)), None)) if r.offset_delta == 0 => r.timestamp,
            _ => BatchInfo::NO_ANSWER,
        }
    } else {
        BatchInfo::NO_ANSWER
    };
    BatchInfo {
        size: u32::try_from(header.size).unwrap_or(0),
        last_delta: header.last_offset_delta.max(0) as u32,
        max_timestamp: header.max_timestamp,
        answer_timestamp,
        gap_batches: u32::MAX,
        gap_max_timestamp: i64::MAX,
        gap_answer_timestamp: BatchInfo::NO_ANSWER,
    }
}

/// The first record of an uncompressed batch with timestamp >= `ts` and offset >= `min_offset`.
fn first_record_at_or_after(
    h: &BatchHeader,
    bytes: &[u8],
    ts: Timestamp,
    min_offset: Offset,
) -> Result<Option<(Offset, Timestamp)>, LogError> {
    for r in batch::Records::new(h, bytes) {
        let r = r?;
        let off = Offset(h.base_offset + r.offset_delta as i64);
        if r.timestamp >= ts.0 && off >= min_offset {
            return Ok(Some((off, Timestamp(r.timestamp))));
        }
    }
    Ok(None)
}

/// Offset of the record holding a batch's max timestamp: exact for uncompressed batches,
/// the batch's last offset otherwise (Kafka's "shallow" answer).
pub fn offset_of_max_timestamp(header: &BatchHeader, whole: Option<&[u8]>) -> Offset {
    if header.is_log_append_time() {
        return Offset(header.base_offset);
    }
    if let (0, Some(bytes)) = (header.compression(), whole) {
        let mut best: Option<(i64, i32)> = None;
        for r in batch::Records::new(header, bytes).flatten() {
            if best.is_none_or(|(t, _)| r.timestamp > t) {
                best = Some((r.timestamp, r.offset_delta));
            }
        }
        if let Some((_, delta)) = best {
            return Offset(header.base_offset + delta as i64);
        }
    }
    Offset(header.last_offset())
}

/// Scans a whole segment, verifying every batch, and rebuilds its indexes.
/// Batches must start at `base` and follow each other without gaps.
pub fn rebuild(storage: &dyn Storage, base: Offset, interval: u32) -> io::Result<Rebuilt> {
    let builder = IndexBuilder {
        interval: interval as u64,
    };
    let mut r = Rebuilt {
        next_offset: base,
        max_timestamp: (Timestamp::NONE, base),
        ..Rebuilt::default()
    };
    let end = scan(
        storage,
        storage.len(),
        0,
        true,
        1 << 20,
        |pos, header, whole| {
            if header.base_offset != r.next_offset.0 {
                return Err(format!(
                    "batch at position {pos} has base offset {} where {} was expected",
                    header.base_offset, r.next_offset
                ));
            }
            if header.last_offset() - base.0 > i32::MAX as i64 {
                return Err(format!(
                    "offset {} too far from segment base {base}",
                    header.last_offset()
                ));
            }
            let om = offset_of_max_timestamp(header, Some(whole));
            builder.add(
                &mut r.indexes,
                &mut r.bytes_since_index,
                &mut r.max_timestamp,
                base,
                pos,
                header,
                Some(whole),
                om,
            );
            if r.first_timestamp.is_none() {
                r.first_timestamp = Some(Timestamp(header.max_timestamp));
            }
            r.next_offset = Offset(header.last_offset() + 1);
            Ok(true)
        },
    )?;
    r.valid_end = end.valid_end;
    r.invalid = end.invalid;
    Ok(r)
}

/// Where the last few reads of a segment stopped: (offset of the next batch, its position).
/// A consumer's next fetch starts where its previous one stopped, so its batch is found
/// without reading the `.log`. Four slots: a few consumers (groups) read one partition.
#[derive(Debug, Default)]
struct ReadCache {
    slots: Mutex<([(i64, u64); 4], usize)>,
}

impl ReadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, ([(i64, u64); 4], usize)> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// Position of the batch whose base offset is `offset`, if remembered.
    fn get(&self, offset: Offset) -> Option<u64> {
        let g = self.lock();
        g.0.iter()
            .find(|&&(o, p)| o == offset.0 && p != 0)
            .map(|&(_, p)| p)
    }
    /// Remembers that the batch at `pos` (never 0) starts with `offset`.
    fn put(&self, offset: Offset, pos: u64) {
        let mut g = self.lock();
        if g.0.iter().any(|&(o, p)| o == offset.0 && p == pos) {
            return;
        }
        let slot = g.1;
        g.0[slot] = (offset.0, pos);
        g.1 = (slot + 1) % 4;
    }
    /// Forgets everything (after a truncation).
    fn clear(&self) {
        *self.lock() = Default::default();
    }
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first batch; also the file name.
    pub base: Offset,
    dir: PathBuf,
    /// Open `.log` handle; `None` while idle (opened on demand).
    log: Option<Box<dyn Storage>>,
    /// Bytes in the `.log`.
    pub size: u64,
    /// Offset after the last batch (the next segment's base for closed segments).
    pub next_offset: Offset,
    /// Largest batch max timestamp in the segment and the offset holding it.
    pub max_timestamp: (Timestamp, Offset),
    /// Reference time for `segment.ms`: the broker clock at the segment's first append, or
    /// after a reopen the first batch's max timestamp (Kafka's rule).
    pub first_timestamp: Option<Timestamp>,
    bytes_since_index: u64,
    indexes: OnceLock<Indexes>,
    index_interval: u32,
    read_cache: ReadCache,
}

impl Segment {
    /// Path of this segment's file with extension `ext`.
    pub fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(file_name(self.base, ext))
    }

    /// Creates a new empty segment (files included).
    pub fn create(dir: &Path, base: Offset, config: &LogConfig) -> Result<Segment, LogError> {
        let seg = Segment::new(dir, base, config);
        let path = seg.path("log");
        let storage =
            FileStorage::open(&path, true).ctx(|| format!("creating {}", path.display()))?;
        if storage.len() != 0 {
            return Err(LogError::Io {
                context: format!("creating {}", path.display()),
                source: io::Error::new(io::ErrorKind::AlreadyExists, "segment file not empty"),
            });
        }
        for ext in ["index", "timeindex"] {
            let p = seg.path(ext);
            fs::write(&p, []).ctx(|| format!("creating {}", p.display()))?;
        }
        let _ = seg.indexes.set(Indexes::default());
        Ok(seg)
    }

    fn new(dir: &Path, base: Offset, config: &LogConfig) -> Segment {
        Segment {
            base,
            dir: dir.to_path_buf(),
            log: None,
            size: 0,
            next_offset: base,
            max_timestamp: (Timestamp::NONE, base),
            first_timestamp: None,
            bytes_since_index: 0,
            indexes: OnceLock::new(),
            index_interval: config.index_interval_bytes,
            read_cache: ReadCache::default(),
        }
    }

    /// Opens an existing segment, verifying every batch (unclean recovery). Truncates the
    /// file at the first invalid batch; returns the segment and the reason it was cut, if it was.
    pub fn recover(
        dir: &Path,
        base: Offset,
        config: &LogConfig,
    ) -> Result<(Segment, Option<String>), LogError> {
        let mut seg = Segment::new(dir, base, config);
        let path = seg.path("log");
        let mut storage =
            FileStorage::open(&path, false).ctx(|| format!("opening {}", path.display()))?;
        let r = rebuild(&storage, base, config.index_interval_bytes)
            .ctx(|| format!("scanning {}", path.display()))?;
        if r.valid_end < storage.len() {
            storage
                .set_len(r.valid_end)
                .ctx(|| format!("truncating {}", path.display()))?;
        }
        seg.size = r.valid_end;
        seg.next_offset = r.next_offset;
        seg.max_timestamp = r.max_timestamp;
        seg.first_timestamp = r.first_timestamp;
        seg.bytes_since_index = r.bytes_since_index;
        let _ = seg.indexes.set(r.indexes);
        seg.log = Some(Box::new(storage));
        Ok((seg, r.invalid))
    }

    /// Opens a trusted closed segment lazily: reads only its size and the tail of its time
    /// index. `next_offset` is the next segment's base. Bad index files are rebuilt.
    pub fn open_closed(
        dir: &Path,
        base: Offset,
        next_offset: Offset,
        config: &LogConfig,
    ) -> Result<Segment, LogError> {
        let mut seg = Segment::new(dir, base, config);
        let path = seg.path("log");
        seg.size = fs::metadata(&path)
            .ctx(|| format!("reading size of {}", path.display()))?
            .len();
        seg.next_offset = next_offset;
        let tpath = seg.path("timeindex");
        let tail = read_optional(&tpath).ctx(|| format!("reading {}", tpath.display()))?;
        let span = (next_offset.0 - base.0).max(0) as u64;
        match tail
            .as_deref()
            .and_then(|b| TimeIndex::from_bytes(b, span.max(1)))
        {
            // An empty time index is valid: the batches may carry no timestamps (-1).
            Some(t) => {
                if let Some((ts, o)) = t.last() {
                    seg.max_timestamp = (ts, Offset(base.0 + o.0 as i64));
                }
            }
            _ => {
                // Missing or corrupt time index: rebuild both indexes.
                let storage = FileStorage::open_read_only(&path)
                    .ctx(|| format!("opening {}", path.display()))?;
                let r = rebuild(&storage, base, config.index_interval_bytes)
                    .ctx(|| format!("scanning {}", path.display()))?;
                seg.max_timestamp = r.max_timestamp;
                let mut indexes = r.indexes;
                if seg.max_timestamp.0 .0 >= 0 {
                    let rel = RelativeOffset((seg.max_timestamp.1 .0 - base.0) as u32);
                    indexes.time.maybe_append(seg.max_timestamp.0, rel);
                }
                seg.write_indexes_of(&indexes)?;
                let _ = seg.indexes.set(indexes);
            }
        }
        Ok(seg)
    }

    /// Opens the last segment after a clean shutdown: trusts its indexes and scans only the
    /// batches after the last index entry. Returns `None` if something is off (then recover).
    pub fn open_active_clean(
        dir: &Path,
        base: Offset,
        config: &LogConfig,
    ) -> Result<Option<Segment>, LogError> {
        let mut seg = Segment::new(dir, base, config);
        let path = seg.path("log");
        let storage =
            FileStorage::open(&path, false).ctx(|| format!("opening {}", path.display()))?;
        let len = storage.len();
        let read = |ext: &str| {
            let p = seg.path(ext);
            read_optional(&p).ctx(|| format!("reading {}", p.display()))
        };
        let (Some(ib), Some(tb)) = (read("index")?, read("timeindex")?) else {
            return Ok(None);
        };
        let span = i32::MAX as u64;
        let (Some(offset), Some(time)) = (
            OffsetIndex::from_bytes(&ib, len.max(1), span),
            TimeIndex::from_bytes(&tb, span),
        ) else {
            return Ok(None);
        };
        let (start_rel, start_pos) = offset
            .last()
            .map_or((0, 0), |(o, p)| (o.0 as i64, p.0 as u64));
        let mut next = Offset(base.0 + start_rel);
        let mut max_ts = time.last().map_or((Timestamp::NONE, base), |(t, o)| {
            (t, Offset(base.0 + o.0 as i64))
        });
        let mut since = 0u64;
        let end = scan(&storage, len, start_pos, true, 1 << 20, |_, h, whole| {
            if h.base_offset != next.0 {
                return Err(format!("unexpected base offset {}", h.base_offset));
            }
            let ts = Timestamp(h.max_timestamp);
            if ts > max_ts.0 {
                max_ts = (ts, offset_of_max_timestamp(h, Some(whole)));
            }
            next = Offset(h.last_offset() + 1);
            since += h.size as u64;
            Ok(true)
        })
        .ctx(|| format!("scanning {}", path.display()))?;
        if end.invalid.is_some() || end.valid_end != len {
            return Ok(None);
        }
        if len > 0 {
            let mut hb = [0u8; HEADER_LEN];
            storage
                .read_at(&mut hb, 0)
                .ctx(|| format!("reading {}", path.display()))?;
            seg.first_timestamp = BatchHeader::parse(&hb).map(|h| Timestamp(h.max_timestamp));
        }
        seg.size = len;
        seg.next_offset = next;
        seg.max_timestamp = max_ts;
        seg.bytes_since_index = since;
        let _ = seg.indexes.set(Indexes { offset, time });
        Ok(Some(seg))
    }

    /// The indexes, loaded (or rebuilt) on first use.
    pub fn indexes(&self) -> &Indexes {
        self.indexes.get_or_init(|| match self.load_indexes() {
            Ok(i) => i,
            Err(error) => {
                tracing::warn!(%error, segment = %self.path("log").display(), "Cannot load or rebuild indexes; scanning without them.");
                Indexes::default()
            }
        })
    }

    fn load_indexes(&self) -> Result<Indexes, LogError> {
        let span = (self.next_offset.0 - self.base.0).max(1) as u64;
        let ip = self.path("index");
        let tp = self.path("timeindex");
        let ib = read_optional(&ip).ctx(|| format!("reading {}", ip.display()))?;
        let tb = read_optional(&tp).ctx(|| format!("reading {}", tp.display()))?;
        let offset = ib.and_then(|b| OffsetIndex::from_bytes(&b, self.size.max(1), span));
        let time = tb.and_then(|b| TimeIndex::from_bytes(&b, span));
        if let (Some(offset), Some(time)) = (offset, time) {
            return Ok(Indexes { offset, time });
        }
        tracing::info!(segment = %self.path("log").display(), "Rebuilding missing or corrupt index files.");
        let r = self
            .with_storage(|s| rebuild(s, self.base, self.index_interval))
            .ctx(|| format!("rebuilding indexes of {}", self.path("log").display()))?;
        let mut indexes = r.indexes;
        if self.max_timestamp.0 .0 >= 0 {
            let rel = RelativeOffset((self.max_timestamp.1 .0 - self.base.0) as u32);
            indexes.time.maybe_append(self.max_timestamp.0, rel);
        }
        self.write_indexes_of(&indexes)?;
        Ok(indexes)
    }

    /// Runs `f` on the `.log` storage, opening the file read-only if it is idle.
    pub fn with_storage<R>(&self, f: impl FnOnce(&dyn Storage) -> io::Result<R>) -> io::Result<R> {
        match &self.log {
            Some(s) => f(s.as_ref()),
            None => {
                let s = FileStorage::open_read_only(&self.path("log"))?;
                f(&s)
            }
        }
    }

    fn storage_mut(&mut self) -> Result<&mut Box<dyn Storage>, LogError> {
        if self.log.is_none() {
            let path = self.path("log");
            let s =
                FileStorage::open(&path, false).ctx(|| format!("opening {}", path.display()))?;
            self.log = Some(Box::new(s));
        }
        Ok(self.log.as_mut().expect("just opened"))
    }

    /// Forgets the in-memory indexes of a closed segment (reloaded from the files on the next
    /// lookup).
    pub fn drop_cached_indexes(&mut self) {
        self.indexes = OnceLock::new();
    }

    /// Closes the `.log` handle (it is reopened on demand).
    pub fn release_handle(&mut self) {
        self.log = None;
    }

    /// Whether an index is full (a reason to roll).
    pub fn index_full(&self, config: &LogConfig) -> bool {
        let i = self.indexes();
        i.offset.len() >= config.max_index_entries()
            || i.time.len() >= config.max_time_index_entries()
    }

    /// Appends already validated batches (offsets assigned). `headers` are the batches'
    /// positions inside `bytes`, their headers and the offset of their max timestamp.
    pub fn append(
        &mut self,
        bytes: &[u8],
        headers: &[(usize, BatchHeader, Offset)],
        now: Timestamp,
    ) -> Result<(), LogError> {
        let path = self.path("log");
        let path_for_err = || format!("appending to {}", path.display());
        let start = self.size;
        let storage = self.storage_mut()?;
        if let Err(e) = storage.append(bytes) {
            // Leave no partial batch behind.
            let _ = storage.set_len(start);
            return Err(e).ctx(path_for_err);
        }
        self.indexes();
        let builder = IndexBuilder {
            interval: self.index_interval as u64,
        };
        let indexes = self.indexes.get_mut().expect("indexes loaded");
        for &(at, ref h, om) in headers {
            builder.add(
                indexes,
                &mut self.bytes_since_index,
                &mut self.max_timestamp,
                self.base,
                start + at as u64,
                h,
                Some(&bytes[at..at + h.size]),
                om,
            );
            self.next_offset = Offset(h.last_offset() + 1);
        }
        if self.first_timestamp.is_none() {
            self.first_timestamp = Some(now);
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Adds the final time-index entry (the segment's max timestamp), as Kafka does when a
    /// segment stops being active.
    pub fn seal_time_index(&mut self) {
        self.indexes();
        let (ts, off) = self.max_timestamp;
        let rel = RelativeOffset((off.0 - self.base.0) as u32);
        if let Some(i) = self.indexes.get_mut() {
            i.time.maybe_append(ts, rel);
        }
    }

    /// Writes both index files from memory (optionally fsyncing them).
    pub fn write_indexes(&self, sync: bool) -> Result<(), LogError> {
        self.write_indexes_of(self.indexes())?;
        if sync {
            for ext in ["index", "timeindex"] {
                let p = self.path(ext);
                fs::File::open(&p)
                    .and_then(|f| f.sync_all())
                    .ctx(|| format!("syncing {}", p.display()))?;
            }
        }
        Ok(())
    }

    fn write_indexes_of(&self, indexes: &Indexes) -> Result<(), LogError> {
        for (ext, bytes) in [
            ("index", indexes.offset.to_bytes()),
            ("timeindex", indexes.time.to_bytes()),
        ] {
            let p = self.path(ext);
            write_in_place(&p, &bytes).ctx(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    }

    /// A duplicate of the open `.log` handle, if the file is open (for fsync elsewhere).
    pub fn sync_handle(&self) -> io::Result<Option<fs::File>> {
        match &self.log {
            Some(s) => s.sync_handle(),
            None => Ok(None),
        }
    }

    /// fsyncs the `.log`.
    pub fn sync(&self) -> Result<(), LogError> {
        self.with_storage(|s| s.sync())
            .ctx(|| format!("syncing {}", self.path("log").display()))
    }

    /// Position and base offset of the batch holding `target` (or the first batch after it),
    /// `None` if the segment has no batch with last offset >= target.
    ///
    /// Answered from memory when the target lies in a batch an index entry describes, or is
    /// where an earlier read of this segment stopped; otherwise one read of the `.log` from
    /// the closest known batch boundary.
    pub fn find(&self, target: Offset) -> Result<Option<(u64, Offset)>, LogError> {
        if target >= self.next_offset {
            return Ok(None);
        }
        let rel = (target.0 - self.base.0).clamp(0, u32::MAX as i64) as u32;
        let index = &self.indexes().offset;
        let mut start = 0;
        let found = index.lookup_entry(RelativeOffset(rel));
        if let Some((i, e)) = found.and_then(|i| Some((i, index.entry(i)?))) {
            start = e.position.0 as u64;
            if e.info.is_known() {
                let last = e.offset.0 as u64 + e.info.last_delta as u64;
                if rel as u64 <= last {
                    return Ok(Some((start, Offset(self.base.0 + e.offset.0 as i64))));
                }
                // The target is in a later batch before the next entry: the very next one
                // when it starts with the target or is the only batch before the next entry.
                start += e.info.size as u64;
                let gap = match index.entry(i + 1) {
                    Some(n) => n.info.is_known().then_some(n.info.gap_batches),
                    None => index.trailing().map(|t| t.0),
                };
                if rel as u64 == last + 1 || gap == Some(1) {
                    return Ok(Some((start, Offset(self.base.0 + last as i64 + 1))));
                }
            }
        }
        if let Some(pos) = self.read_cache.get(target) {
            return Ok(Some((pos, target)));
        }
        let chunk = (self.index_interval as usize).clamp(512, 1 << 16) + 2 * HEADER_LEN;
        let mut found = None;
        self.with_storage(|s| {
            // One read of an index interval plus a header reaches every batch that can hold
            // the target (a syscall costs more here than copying a few KiB).
            scan(s, self.size, start, false, chunk, |pos, h, _| {
                if h.last_offset() >= target.0 {
                    found = Some((pos, Offset(h.base_offset)));
                    return Ok(false);
                }
                Ok(true)
            })
            .map(|_| ())
        })
        .ctx(|| format!("reading {}", self.path("log").display()))?;
        Ok(found)
    }

    /// Reads whole batches from `pos` (a batch start): at most `max_bytes` but at least the
    /// first batch if `at_least_one`, stopping before any batch whose base offset is
    /// `>= limit`. Returns the bytes and whether the segment's end was reached.
    pub fn read_from(
        &self,
        pos: u64,
        max_bytes: u64,
        limit: Offset,
        at_least_one: bool,
    ) -> Result<(Vec<u8>, bool), LogError> {
        let ctx = || format!("reading {}", self.path("log").display());
        if pos >= self.size {
            return Ok((Vec::new(), true));
        }
        self.with_storage(|s| {
            let avail = self.size - pos;
            let mut want = max_bytes.min(avail);
            if at_least_one {
                let mut hb = [0u8; 12];
                s.read_at(&mut hb, pos)?;
                let first = BatchHeader::peek_size(&hb).unwrap_or(0) as u64;
                want = want.max(first.min(avail));
            }
            let mut buf = vec![0u8; want as usize];
            s.read_at(&mut buf, pos)?;
            let mut cut = 0usize;
            let mut hit_limit = false;
            let mut next = None;
            while cut + HEADER_LEN <= buf.len() {
                let Some(h) = BatchHeader::parse(&buf[cut..]) else {
                    break;
                };
                if h.base_offset >= limit.0 {
                    hit_limit = true;
                    break;
                }
                if cut + h.size > buf.len() || h.size < HEADER_LEN {
                    break;
                }
                cut += h.size;
                next = Some(h.last_offset() + 1);
            }
            buf.truncate(cut);
            if let Some(next) = next {
                if pos + (cut as u64) < self.size {
                    // The next fetch of this reader most likely starts there.
                    self.read_cache.put(Offset(next), pos + cut as u64);
                }
            }
            Ok((buf, !hit_limit && pos + cut as u64 >= self.size))
        })
        .ctx(ctx)
    }

    /// Reads one whole batch at `pos`.
    pub fn read_batch(&self, pos: u64, header: &BatchHeader) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; header.size];
        self.with_storage(|s| s.read_at(&mut buf, pos))
            .ctx(|| format!("reading {}", self.path("log").display()))?;
        Ok(buf)
    }

    /// First record with timestamp >= `ts` and offset >= `min_offset` in this segment.
    ///
    /// The time index gives where to start; from there the batches the offset index describes
    /// are walked in memory while they follow each other. The `.log` is read only to cross
    /// batches no entry describes, or to find the exact record inside an uncompressed batch
    /// of several records.
    pub fn find_timestamp(
        &self,
        ts: Timestamp,
        min_offset: Offset,
    ) -> Result<Option<(Offset, Timestamp)>, LogError> {
        if self.max_timestamp.0 < ts {
            return Ok(None);
        }
        let indexes = self.indexes();
        let start_offset = match indexes.time.lookup_before(ts) {
            Some(rel) => Offset(self.base.0 + rel.0 as i64).max(min_offset),
            None => min_offset.max(self.base),
        };
        let rel = (start_offset.0 - self.base.0).clamp(0, u32::MAX as i64) as u32;
        let index = &indexes.offset;
        let mut from = 0;
        let mut i = index.lookup_entry(RelativeOffset(rel));
        while let Some(e) = i.and_then(|i| index.entry(i)) {
            from = e.position.0 as u64;
            if !e.info.is_known() {
                break;
            }
            let base = Offset(self.base.0 + e.offset.0 as i64);
            if e.info.max_timestamp >= ts.0 && base.0 + e.info.last_delta as i64 >= min_offset.0 {
                if e.info.answer_timestamp == BatchInfo::NO_ANSWER {
                    // Several records: read just this batch to find the exact one.
                    let mut bytes = vec![0u8; e.info.size as usize];
                    self.with_storage(|s| s.read_at(&mut bytes, from))
                        .ctx(|| format!("reading {}", self.path("log").display()))?;
                    let h = BatchHeader::parse(&bytes).ok_or_else(|| {
                        LogError::corrupt(format!("short batch at position {from}"))
                    })?;
                    if h.compression() != 0 || h.is_log_append_time() {
                        let first = Offset(h.base_offset).max(min_offset);
                        return Ok(Some((first, Timestamp(h.max_timestamp))));
                    }
                    return first_record_at_or_after(&h, &bytes, ts, min_offset);
                }
                return Ok((e.info.answer_timestamp >= ts.0)
                    .then_some((base.max(min_offset), Timestamp(e.info.answer_timestamp))));
            }
            from += e.info.size as u64;
            if from >= self.size {
                return Ok(None);
            }
            // Go on in memory past the batches without entry before the next entry when none
            // of them reaches `ts`.
            let next = i.map_or(0, |i| i + 1);
            match index.entry(next) {
                // No batch of the gap qualifies: all below `ts` or below `min_offset`.
                Some(n)
                    if n.info.is_known()
                        && (n.info.gap_max_timestamp < ts.0
                            || self.base.0 + (n.offset.0 as i64) <= min_offset.0) =>
                {
                    i = Some(next);
                }
                // The gap is one batch, it qualifies, and its answer is known.
                Some(n)
                    if n.info.is_known()
                        && n.info.gap_batches == 1
                        && n.info.gap_answer_timestamp != BatchInfo::NO_ANSWER =>
                {
                    let gap_base = Offset(base.0 + e.info.last_delta as i64 + 1);
                    let t = n.info.gap_answer_timestamp;
                    return Ok((t >= ts.0).then_some((gap_base.max(min_offset), Timestamp(t))));
                }
                None if index.trailing().is_some_and(|(c, m)| c == 0 || m < ts.0) => {
                    return Ok(None);
                }
                _ => break,
            }
        }
        // One read usually covers the index entry, the batch found and its records.
        let chunk = (4 * self.index_interval as usize).clamp(4096, 1 << 16);
        let mut hit: Option<(u64, BatchHeader, Option<Vec<u8>>)> = None;
        self.with_storage(|s| {
            scan(s, self.size, from, false, chunk, |p, h, bytes| {
                if h.max_timestamp >= ts.0 && h.last_offset() >= min_offset.0 {
                    let whole = (bytes.len() == h.size).then(|| bytes.to_vec());
                    hit = Some((p, *h, whole));
                    return Ok(false);
                }
                Ok(true)
            })
        })
        .ctx(|| format!("reading {}", self.path("log").display()))?;
        let Some((pos, h, whole)) = hit else {
            return Ok(None);
        };
        if h.compression() != 0 || h.is_log_append_time() {
            let first = Offset(h.base_offset).max(min_offset);
            return Ok(Some((first, Timestamp(h.max_timestamp))));
        }
        let bytes = match whole {
            Some(b) => b,
            None => self.read_batch(pos, &h)?,
        };
        first_record_at_or_after(&h, &bytes, ts, min_offset)
    }

    /// Truncates the segment so it ends before the batch holding `offset`; returns the new
    /// next offset. Indexes are rebuilt from the remaining bytes.
    pub fn truncate_to(&mut self, offset: Offset) -> Result<Offset, LogError> {
        let Some((pos, base)) = self.find(offset)? else {
            return Ok(self.next_offset);
        };
        let new_next = base;
        let path = self.path("log");
        let (base, interval) = (self.base, self.index_interval);
        let storage = self.storage_mut()?;
        storage
            .set_len(pos)
            .ctx(|| format!("truncating {}", path.display()))?;
        let r = rebuild(storage.as_ref(), base, interval)
            .ctx(|| format!("scanning {}", path.display()))?;
        self.size = pos;
        self.next_offset = new_next;
        self.max_timestamp = r.max_timestamp;
        self.first_timestamp = r.first_timestamp;
        self.bytes_since_index = r.bytes_since_index;
        self.indexes = OnceLock::from(r.indexes);
        self.read_cache.clear();
        Ok(new_next)
    }

    /// Removes the files of segment `base` in `dir` without opening it.
    pub fn delete_files(dir: &Path, base: Offset) -> Result<(), LogError> {
        for ext in ["log", "index", "timeindex"] {
            let p = dir.join(file_name(base, ext));
            let d = dir.join(format!("{}.deleted", file_name(base, ext)));
            match fs::rename(&p, &d) {
                Ok(()) => fs::remove_file(&d).ctx(|| format!("removing {}", d.display()))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx(|| format!("renaming {}", p.display())),
            }
        }
        Ok(())
    }

    /// Removes the segment's files (renamed `.deleted` first, so a crash in between leaves
    /// files the loader knows to remove).
    pub fn delete(mut self) -> Result<(), LogError> {
        self.log = None;
        Segment::delete_files(&self.dir, self.base)
    }

    /// Last-modified time of the `.log` in ms (retention fallback for segments without timestamps).
    pub fn modified_ms(&self) -> Option<i64> {
        let m = fs::metadata(self.path("log")).ok()?.modified().ok()?;
        m.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    fn batch_at(base: i64, n: usize) -> Vec<u8> {
        let vals: Vec<Vec<u8>> = (0..n).map(|i| vec![b'v'; 10 + i]).collect();
        let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
        let mut b = batch::build_batch(1_000 + base, &refs);
        batch::set_base_offset(&mut b, base);
        b
    }

    /// Writes batches to a storage that forgets unsynced writes, crashes it at every
    /// possible torn length, and checks that a rebuild keeps exactly the synced batches plus
    /// any whole batch that happened to reach the disk.
    #[test]
    fn crash_drops_only_unsynced_batches() {
        let synced: Vec<Vec<u8>> = (0..5).map(|i| batch_at(i * 3, 3)).collect();
        let unsynced = batch_at(15, 4);
        for keep in 0..=unsynced.len() {
            let mut s = MemStorage::new();
            for b in &synced {
                s.append(b).unwrap();
            }
            s.sync().unwrap();
            s.append(&unsynced).unwrap();
            s.crash(keep);
            let r = rebuild(&s, Offset(0), 64).unwrap();
            let synced_len: usize = synced.iter().map(|b| b.len()).sum();
            if keep == unsynced.len() {
                assert_eq!(r.valid_end as usize, synced_len + unsynced.len());
                assert_eq!(r.next_offset, Offset(19));
            } else {
                assert_eq!(r.valid_end as usize, synced_len, "keep {keep}");
                assert_eq!(r.next_offset, Offset(15));
                assert_eq!(r.invalid.is_some(), keep > 0);
            }
            assert_eq!(s.contents().len(), synced_len + keep);
        }
    }
}
