//! The write-ahead log: append with group commit, roll, replay, checkpoint, file removal.
//!
//! One log file is written at a time; files are numbered `log-1`, `log-2`, … and file `n`
//! lives in data directory `(n - 1) % dataDirs.len()`, so the directories share the load
//! round-robin. A transaction's records (its puts or takes, then a commit record) are
//! encoded into one buffer and written with one `write` under the writer lock.
//!
//! Group commit: a commit (of puts or of takes) then waits until the log is synced up to its
//! end. The first committer that finds no sync running becomes the syncer: it notes how far
//! the log is written, runs one `fdatasync`, and wakes every committer whose records lie
//! before that point. Commits arriving while a sync runs, puts and takes alike, queue up and
//! share the next one. A sink's take transaction is one batch, so a take costs at most one
//! shared fsync per batch, and after a crash only batches in flight are delivered again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::checkpoint::{self, Checkpoint};
use super::config::FileChannelConfig;
use super::record::{self, Pointer, Record, Stop, FILE_MAGIC, FRAME_HEADER, MAX_RECORD};
use crate::error::{FlowError, Result};
use crate::event::Event;

/// How long a free-space reading stays valid.
const SPACE_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Counts kept by the log (reported with the channel's metrics).
#[derive(Debug, Default)]
pub struct LogStats {
    /// fdatasync calls on log files.
    pub fsyncs: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Checkpoint writes that failed (Flume's CheckpointWriteErrorCount).
    pub checkpoint_errors: AtomicU64,
    /// Backup checkpoint writes that failed (CheckpointBackupWriteErrorCount).
    pub backup_checkpoint_errors: AtomicU64,
    /// Puts refused or failed (EventPutErrorCount).
    pub put_errors: AtomicU64,
    /// Take commits that failed (EventTakeErrorCount).
    pub take_errors: AtomicU64,
    /// Log files removed after all their events were taken.
    pub files_removed: AtomicU64,
}

struct Writer {
    file: Arc<File>,
    file_id: u32,
    /// Bytes written to the current file.
    offset: u64,
    /// Bytes written since the log was opened (all files): the group-commit clock.
    written: u64,
    files: BTreeMap<u32, PathBuf>,
    /// Put records committed and not yet committed as taken.
    live: BTreeSet<Pointer>,
    buf: Vec<u8>,
}

#[derive(Default)]
struct SyncState {
    synced: u64,
    syncing: bool,
    /// Log position (file id, offset in it) the last completed sync covers.
    synced_at: Pointer,
}

struct Space {
    checked: Option<Instant>,
    low: Option<(PathBuf, u64)>,
}

/// A file channel's write-ahead log.
pub struct FileLog {
    name: String,
    config: FileChannelConfig,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    synced_cv: Condvar,
    next_tx: AtomicU64,
    space: Mutex<Space>,
    min_space: AtomicU64,
    /// Counters.
    pub stats: LogStats,
    /// `in_use.lock` files held for the life of the log.
    _locks: Vec<File>,
}

impl std::fmt::Debug for FileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLog").field("name", &self.name).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Committed, untaken events in log order.
    pub events: Vec<(Pointer, Event)>,
    /// Whether a checkpoint was used (false: full replay).
    pub from_checkpoint: bool,
    /// Bytes of log read.
    pub bytes_read: u64,
}

impl FileLog {
    fn io(&self, message: impl Into<String>, source: io::Error) -> FlowError {
        io_err(&self.name, message, source)
    }

    /// Opens (or creates) the log of channel `name`: locks the directories, replays the
    /// log from the last good checkpoint (or from the start), cuts a torn tail, and starts
    /// a new log file. Blocking: call it off the async runtime.
    pub fn open(name: &str, config: FileChannelConfig) -> Result<(Arc<FileLog>, Recovered)> {
        let mut dirs: Vec<&Path> = vec![&config.checkpoint_dir];
        dirs.extend(config.data_dirs.iter().map(PathBuf::as_path));
        if let Some(b) = &config.backup_checkpoint_dir {
            dirs.push(b);
        }
        let mut locks = Vec::new();
        for d in &dirs {
            fs::create_dir_all(d)
                .map_err(|e| io_err(name, format!("cannot create {}", d.display()), e))?;
            let path = d.join("in_use.lock");
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| io_err(name, format!("cannot open {}", path.display()), e))?;
            match fs4::fs_std::FileExt::try_lock_exclusive(&f) {
                Ok(true) => locks.push(f),
                Ok(false) => {
                    return Err(io_err(
                        name,
                        format!("{} is in use by another file channel or agent", d.display()),
                        io::Error::new(io::ErrorKind::WouldBlock, "locked"),
                    ))
                }
                Err(e) => return Err(io_err(name, format!("cannot lock {}", path.display()), e)),
            }
        }
        let mut files = BTreeMap::new();
        for d in &config.data_dirs {
            let rd = fs::read_dir(d)
                .map_err(|e| io_err(name, format!("cannot list {}", d.display()), e))?;
            for entry in rd.flatten() {
                let fname = entry.file_name();
                let Some(id) = fname
                    .to_str()
                    .and_then(|s| s.strip_prefix("log-"))
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some(prev) = files.insert(id, entry.path()) {
                    tracing::warn!(channel = name, first = %prev.display(), second = %entry.path().display(), "Two log files with the same id; using the second.");
                }
            }
        }
        let mut checkpoints = vec![config.checkpoint_dir.clone()];
        checkpoints.extend(config.backup_checkpoint_dir.clone());
        let mut recovered = None;
        for dir in &checkpoints {
            match Checkpoint::read(dir) {
                Ok(None) => {}
                Ok(Some(cp)) => match replay(name, &files, Some(&cp)) {
                    Ok(r) => {
                        recovered = Some((r, cp.next_tx));
                        break;
                    }
                    Err(why) => {
                        tracing::warn!(channel = name, dir = %dir.display(), why, "Checkpoint does not match the log; trying the next one.")
                    }
                },
                Err(why) => {
                    tracing::warn!(
                        channel = name,
                        why,
                        "Checkpoint unusable; trying the backup or a full replay."
                    )
                }
            }
        }
        let ((rec, max_tx), next_tx) = match recovered {
            Some((r, next)) => (r, next),
            None => (
                replay(name, &files, None).map_err(|why| {
                    io_err(
                        name,
                        why,
                        io::Error::new(io::ErrorKind::InvalidData, "replay"),
                    )
                })?,
                0,
            ),
        };
        let next_tx = next_tx.max(max_tx + 1);
        let file_id = files.keys().next_back().copied().unwrap_or(0) + 1;
        let (path, file) = create_log_file(&config, file_id)
            .map_err(|e| io_err(name, "cannot create a log file", e))?;
        files.insert(file_id, path);
        let live = rec.events.iter().map(|(p, _)| *p).collect();
        let min_space = config.minimum_required_space;
        let log = Arc::new(FileLog {
            name: name.to_string(),
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                file_id,
                offset: FILE_MAGIC.len() as u64,
                written: 0,
                files,
                live,
                buf: Vec::new(),
            }),
            config,
            sync: Mutex::new(SyncState::default()),
            synced_cv: Condvar::new(),
            next_tx: AtomicU64::new(next_tx),
            space: Mutex::new(Space {
                checked: None,
                low: None,
            }),
            min_space: AtomicU64::new(min_space),
            stats: LogStats::default(),
            _locks: locks,
        });
        // A checkpoint now makes the replay just done the new starting point and removes
        // the files it emptied.
        log.checkpoint()?;
        spawn_checkpointer(&log);
        Ok((log, rec))
    }

    /// The settings the log was opened with.
    pub fn config(&self) -> &FileChannelConfig {
        &self.config
    }

    /// Changes `minimumRequiredSpace` (takes effect at the next put).
    pub fn set_minimum_required_space(&self, bytes: u64) {
        self.min_space.store(bytes, Ordering::Relaxed);
        lock(&self.space).checked = None;
    }

    /// Refuses puts while a directory has less than `minimumRequiredSpace` available.
    pub fn check_space(&self) -> Result<()> {
        let min = self.min_space.load(Ordering::Relaxed);
        let mut s = lock(&self.space);
        let stale = s.checked.is_none_or(|t| t.elapsed() >= SPACE_CHECK_EVERY);
        if stale {
            s.low = None;
            let mut dirs = vec![&self.config.checkpoint_dir];
            dirs.extend(self.config.data_dirs.iter());
            for d in dirs {
                match fs4::available_space(d) {
                    Ok(avail) if avail < min => {
                        s.low = Some((d.clone(), avail));
                        break;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, dir = %d.display(), "Cannot read free space.")
                    }
                }
            }
            s.checked = Some(Instant::now());
        }
        match &s.low {
            None => Ok(()),
            Some((dir, avail)) => Err(FlowError::DiskSpace {
                channel: self.name.clone(),
                dir: dir.display().to_string(),
                available: *avail,
                required: min,
            }),
        }
    }

    /// Appends one transaction's records under the writer lock; `encode` writes them into
    /// the buffer and returns their relative offsets. Returns the log's write clock after.
    fn append(
        &self,
        w: &mut Writer,
        encode: impl FnOnce(&mut Vec<u8>) -> Vec<u32>,
    ) -> Result<(u64, Vec<Pointer>)> {
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let rel = encode(&mut buf);
        let r = self.append_buf(w, &buf, &rel);
        if buf.capacity() <= 8 << 20 {
            w.buf = buf;
        }
        r
    }

    fn append_buf(&self, w: &mut Writer, buf: &[u8], rel: &[u32]) -> Result<(u64, Vec<Pointer>)> {
        let len = buf.len() as u64;
        if w.offset > FILE_MAGIC.len() as u64 && w.offset + len > self.config.max_file_size {
            self.roll(w)?;
        }
        if w.offset + len > u32::MAX as u64 {
            return Err(self.io(
                "transaction too large for one log file",
                io::Error::new(io::ErrorKind::InvalidInput, format!("{len} bytes")),
            ));
        }
        let base = w.offset;
        // Positioned writes: after a failed (partial) write the next one still starts
        // right after the last whole transaction.
        if let Err(e) = w.file.write_all_at(buf, base) {
            // Cut off whatever part of the transaction reached the file, so nothing half
            // written stays in front of later records.
            if let Err(e2) = w.file.set_len(base) {
                tracing::error!(error = %e2, channel = self.name, "Cannot cut a failed write off the log; rolling to a new file.");
                let _ = self.roll(w);
            }
            return Err(self.io(format!("cannot write to log file {}", w.file_id), e));
        }
        w.offset += len;
        w.written += len;
        let id = w.file_id;
        Ok((
            w.written,
            rel.iter()
                .map(|r| Pointer::new(id, (base + *r as u64) as u32))
                .collect(),
        ))
    }

    /// Closes the current file (synced) and starts the next one.
    fn roll(&self, w: &mut Writer) -> Result<()> {
        w.file
            .sync_data()
            .map_err(|e| self.io("cannot sync a log file before rolling", e))?;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        let id = w.file_id + 1;
        let (path, file) = create_log_file(&self.config, id)
            .map_err(|e| self.io("cannot create a log file", e))?;
        tracing::debug!(channel = self.name, file = %path.display(), "Rolled the log.");
        w.files.insert(id, path);
        w.file = Arc::new(file);
        w.file_id = id;
        w.offset = FILE_MAGIC.len() as u64;
        w.written += 1; // a new file is a new sync target
        Ok(())
    }

    /// Durably appends put records for `events` and a commit record (group commit);
    /// returns the events' pointers. Blocking.
    pub fn commit_puts(&self, events: &[Event]) -> Result<Vec<Pointer>> {
        if let Err(e) = self.check_space() {
            self.stats.put_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        let tx = self.next_tx.fetch_add(1, Ordering::Relaxed);
        let r = (|| {
            let (end, ptrs) = {
                let mut w = lock(&self.writer);
                let (end, ptrs) = self.append(&mut w, |buf| {
                    let mut rel = Vec::with_capacity(events.len());
                    for e in events {
                        rel.push(buf.len() as u32);
                        record::encode_put(buf, tx, e);
                    }
                    record::encode_commit(buf, tx);
                    rel
                })?;
                w.live.extend(ptrs.iter().copied());
                (end, ptrs)
            };
            if let Err(e) = self.sync_to(end) {
                let mut w = lock(&self.writer);
                for p in &ptrs {
                    w.live.remove(p);
                }
                return Err(e);
            }
            Ok(ptrs)
        })();
        if r.is_err() {
            self.stats.put_errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Durably appends take records for `taken` and a commit record (group commit, shared
    /// with concurrent put and take commits). Blocking.
    ///
    /// On error the pointers stay live and the caller returns the events to the queue; a
    /// take record that reached the disk anyway only marks events the sink already had.
    pub fn commit_takes(&self, taken: &[Pointer]) -> Result<()> {
        let tx = self.next_tx.fetch_add(1, Ordering::Relaxed);
        let r = (|| {
            let end = {
                let mut w = lock(&self.writer);
                let (end, _) = self.append(&mut w, |buf| {
                    for p in taken {
                        record::encode_take(buf, tx, *p);
                    }
                    record::encode_commit(buf, tx);
                    Vec::new()
                })?;
                for p in taken {
                    w.live.remove(p);
                }
                end
            };
            if let Err(e) = self.sync_to(end) {
                let mut w = lock(&self.writer);
                w.live.extend(taken.iter().copied());
                return Err(e);
            }
            Ok(())
        })();
        if r.is_err() {
            self.stats.take_errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// The log position (file id and offset) the last completed fsync covers: what a
    /// crash that loses every unsynced write would leave.
    pub fn synced_position(&self) -> Pointer {
        lock(&self.sync).synced_at
    }

    /// Waits until the log is synced up to write clock `end`, syncing it if no one is.
    fn sync_to(&self, end: u64) -> Result<()> {
        let mut s = lock(&self.sync);
        loop {
            if s.synced >= end {
                return Ok(());
            }
            if !s.syncing {
                break;
            }
            s = self.synced_cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.syncing = true;
        drop(s);
        let (file, target, at) = {
            let w = lock(&self.writer);
            (
                w.file.clone(),
                w.written,
                Pointer::new(w.file_id, w.offset as u32),
            )
        };
        let r = file.sync_data();
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        let mut s = lock(&self.sync);
        s.syncing = false;
        if r.is_ok() && target >= s.synced {
            s.synced = target;
            s.synced_at = at;
        }
        drop(s);
        self.synced_cv.notify_all();
        r.map_err(|e| self.io("cannot sync the log", e))
    }

    /// Writes a checkpoint (and its backup), then removes the log files no live event
    /// needs. Blocking.
    pub fn checkpoint(&self) -> Result<()> {
        let (cp, written) = {
            let w = lock(&self.writer);
            (
                Checkpoint {
                    position: Pointer::new(w.file_id, w.offset as u32),
                    next_tx: self.next_tx.load(Ordering::Relaxed),
                    live: w.live.iter().copied().collect(),
                },
                w.written,
            )
        };
        // The checkpoint may only claim what the log durably holds.
        self.sync_to(written)?;
        if let Err(e) = cp.write(&self.config.checkpoint_dir) {
            self.stats.checkpoint_errors.fetch_add(1, Ordering::Relaxed);
            return Err(self.io(
                format!(
                    "cannot write the checkpoint in {}",
                    self.config.checkpoint_dir.display()
                ),
                e,
            ));
        }
        if let Some(b) = &self.config.backup_checkpoint_dir {
            if let Err(error) = cp.write(b) {
                self.stats
                    .backup_checkpoint_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, channel = self.name, dir = %b.display(), "Cannot write the backup checkpoint.");
            }
        }
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        // Files before the oldest live event hold only taken events, and their takes are
        // synced: no replay (with or without a checkpoint) needs them.
        let keep_from = cp
            .live
            .first()
            .map_or(cp.position.file_id(), |p| p.file_id())
            .min(cp.position.file_id());
        let doomed: Vec<(u32, PathBuf)> = {
            let mut w = lock(&self.writer);
            let ids: Vec<u32> = w.files.range(..keep_from).map(|(id, _)| *id).collect();
            ids.into_iter()
                .filter_map(|id| w.files.remove(&id).map(|p| (id, p)))
                .collect()
        };
        for (id, path) in doomed {
            match fs::remove_file(&path) {
                Ok(()) => {
                    self.stats.files_removed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        channel = self.name,
                        file = id,
                        "Removed a fully taken log file."
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, file = %path.display(), "Cannot remove a log file.")
                }
            }
        }
        Ok(())
    }

    /// Number of log files on disk.
    pub fn file_count(&self) -> usize {
        lock(&self.writer).files.len()
    }
}

fn io_err(channel: &str, message: impl Into<String>, source: io::Error) -> FlowError {
    FlowError::Io {
        component: format!("channel {channel}"),
        message: message.into(),
        source,
    }
}

fn create_log_file(config: &FileChannelConfig, id: u32) -> io::Result<(PathBuf, File)> {
    let dir = &config.data_dirs[(id as usize - 1) % config.data_dirs.len()];
    let path = dir.join(format!("log-{id}"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    f.write_all(FILE_MAGIC)?;
    f.sync_all()?;
    checkpoint::sync_dir(dir)?;
    Ok((path, f))
}

/// Checkpoints every `checkpointInterval` on a thread of its own, until the log is dropped.
fn spawn_checkpointer(log: &Arc<FileLog>) {
    let weak: Weak<FileLog> = Arc::downgrade(log);
    let interval = log.config.checkpoint_interval;
    let name = log.name.clone();
    let r = std::thread::Builder::new()
        .name(format!("checkpoint-{name}"))
        .spawn(move || {
            let mut last = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(100).min(interval));
                if weak.strong_count() == 0 {
                    return;
                }
                if last.elapsed() >= interval {
                    let Some(log) = weak.upgrade() else { return };
                    if let Err(error) = log.checkpoint() {
                        tracing::error!(%error, channel = name, "Checkpoint failed.");
                    }
                    last = Instant::now();
                }
            }
        });
    if let Err(error) = r {
        tracing::error!(%error, channel = log.name, "Cannot start the checkpoint thread.");
    }
}

type Replayed = (Recovered, u64);

/// Bytes of a log file read at a time during replay (so replay memory is bounded by the
/// live events, not by the size of the log files). Tiny in unit tests, so that their
/// records straddle chunk boundaries.
const REPLAY_CHUNK: usize = if cfg!(test) { 100 } else { 16 << 20 };

/// How many bytes the frame at the start of `buf` needs: its header, then (once the header
/// is there) header plus record length; 0 for an impossible length (a torn frame, which
/// reading more will not mend).
fn frame_len(buf: &[u8]) -> usize {
    if buf.len() < FRAME_HEADER {
        return FRAME_HEADER;
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().unwrap_or_default()) as usize;
    if (9..=MAX_RECORD).contains(&len) {
        FRAME_HEADER + len
    } else {
        0
    }
}

/// Replays the log files in id order. With a checkpoint, records before its position only
/// supply the events of its live pointers; from the position on, transactions are applied
/// as their commit records appear. Files are read in chunks of [`REPLAY_CHUNK`] bytes.
/// Returns the live events and the highest transaction id seen, or why the checkpoint does
/// not fit the files.
fn replay(
    name: &str,
    files: &BTreeMap<u32, PathBuf>,
    cp: Option<&Checkpoint>,
) -> std::result::Result<Replayed, String> {
    let start = cp.map_or(Pointer(0), |c| c.position);
    // Live puts with the chunk their body lies in.
    let mut live: BTreeMap<Pointer, Option<(usize, Event)>> = BTreeMap::new();
    if let Some(cp) = cp {
        live.extend(cp.live.iter().map(|p| (*p, None)));
    }
    type Pending = (Vec<(Pointer, usize, Event)>, Vec<Pointer>);
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut max_tx = 0;
    let mut bytes_read = 0u64;
    // Size of every chunk read, by chunk number.
    let mut chunk_sizes: Vec<u64> = Vec::new();
    let last_id = files.keys().next_back().copied();
    for (&id, path) in files {
        let cannot = |e: io::Error| format!("cannot read {}: {e}", path.display());
        // Read sequentially from the start: the header, then chunk after chunk.
        let mut file = File::open(path).map_err(cannot)?;
        let size = file.metadata().map_err(cannot)?.len();
        bytes_read += size;
        let is_last = Some(id) == last_id;
        let mut magic = [0u8; FILE_MAGIC.len()];
        if size < FILE_MAGIC.len() as u64
            || file.read_exact(&mut magic).is_err()
            || &magic != FILE_MAGIC
        {
            tracing::warn!(channel = name, file = %path.display(), "Log file without a valid header; ignoring it.");
            continue;
        }
        // The window: file bytes [pos, pos + data.len()) in memory; `at` indexes it.
        let mut pos = FILE_MAGIC.len() as u64;
        let mut data = Bytes::new();
        let mut at = 0usize;
        let mut chunk = 0usize;
        loop {
            let rest = data.len() - at;
            let file_at = pos + at as u64;
            let need = frame_len(&data[at..]);
            let unread = size - (pos + data.len() as u64);
            if rest < need && unread > 0 {
                let more = (need - rest).max(REPLAY_CHUNK).min(unread as usize);
                let mut buf = Vec::with_capacity(rest + more);
                buf.extend_from_slice(&data[at..]);
                // The file's cursor is at pos + data.len(): the window's end.
                let got = (&mut file)
                    .take(more as u64)
                    .read_to_end(&mut buf)
                    .map_err(cannot)?;
                if got < more {
                    return Err(format!("{} shrank while being read", path.display()));
                }
                pos = file_at;
                at = 0;
                data = Bytes::from(buf);
                chunk = chunk_sizes.len();
                chunk_sizes.push(data.len() as u64);
                continue;
            }
            match record::decode(&data, at) {
                Ok((rec, n)) => {
                    let ptr = Pointer::new(id, file_at as u32);
                    if ptr < start {
                        if let Record::Put { event, .. } = rec {
                            if let Some(slot) = live.get_mut(&ptr) {
                                *slot = Some((chunk, event));
                            }
                        }
                    } else {
                        match rec {
                            Record::Put { tx, event } => {
                                max_tx = max_tx.max(tx);
                                pending.entry(tx).or_default().0.push((ptr, chunk, event));
                            }
                            Record::Take { tx, target } => {
                                max_tx = max_tx.max(tx);
                                pending.entry(tx).or_default().1.push(target);
                            }
                            Record::Commit { tx } => {
                                max_tx = max_tx.max(tx);
                                if let Some((puts, takes)) = pending.remove(&tx) {
                                    for (p, c, e) in puts {
                                        live.insert(p, Some((c, e)));
                                    }
                                    for t in takes {
                                        live.remove(&t);
                                    }
                                }
                            }
                            Record::Rollback { tx } => {
                                max_tx = max_tx.max(tx);
                                pending.remove(&tx);
                            }
                        }
                    }
                    at += n;
                }
                Err(Stop::End) => break,
                Err(Stop::Torn) => {
                    if is_last {
                        tracing::warn!(channel = name, file = %path.display(), offset = file_at, "Cutting the torn tail of the log.");
                        if let Err(e) = OpenOptions::new()
                            .write(true)
                            .open(path)
                            .and_then(|f| f.set_len(file_at).and_then(|()| f.sync_all()))
                        {
                            return Err(format!("cannot cut {}: {e}", path.display()));
                        }
                    } else {
                        tracing::error!(channel = name, file = %path.display(), offset = file_at, "Corrupt record inside the log; the rest of this file is skipped.");
                    }
                    break;
                }
            }
        }
    }
    // Bodies stay slices of the chunk buffers (no copy) when most of a chunk is live: its
    // buffer is freed once its last event is taken. Chunks mostly taken get their few live
    // bodies copied out, so a large buffer is not kept in memory for them.
    let mut live_bytes: HashMap<usize, u64> = HashMap::new();
    for (c, e) in live.values().flatten() {
        *live_bytes.entry(*c).or_default() += e.body.len() as u64;
    }
    let mut events = Vec::with_capacity(live.len());
    for (p, e) in live {
        match e {
            Some((c, mut e)) => {
                let size = chunk_sizes.get(c).copied().unwrap_or(0);
                if live_bytes.get(&c).copied().unwrap_or(0) * 2 < size {
                    e.body = Bytes::copy_from_slice(&e.body);
                }
                events.push((p, e));
            }
            None => {
                return Err(format!(
                    "the checkpoint lists an event at file {} offset {} that the log does not hold",
                    p.file_id(),
                    p.offset()
                ))
            }
        }
    }
    Ok((
        Recovered {
            events,
            from_checkpoint: cp.is_some(),
            bytes_read,
        },
        max_tx,
    ))
}
