//! The write-ahead log: append with group commit, roll, replay, checkpoint, file removal.
//!
//! One log file is written at a time; files are numbered `log-1`, `log-2`, … and file `n`
//! lives in data directory `(n - 1) % dataDirs.len()`, so the directories share the load
//! round-robin. A transaction's records (its puts or takes, then a commit record) are
//! encoded into one buffer and written with one `write` under the writer lock.
//!
//! Group commit: a put commit then waits until the log is synced up to its end. The first
//! committer that finds no sync running becomes the syncer: it notes how far the log is
//! written, runs one `fdatasync`, and wakes every committer whose records lie before that
//! point. Commits arriving while a sync runs queue up and share the next one. A take commit
//! does not wait (unless `takeSyncDelay` is 0): its record rides on the next put's sync, or
//! the checkpoint thread syncs it within `takeSyncDelay`; losing an unsynced take to power
//! loss only delivers its events again.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::checkpoint::{self, Checkpoint};
use super::config::FileChannelConfig;
use super::record::{self, Meta, Pointer, Record, FILE_MAGIC, FRAME_HEADER, MAX_RECORD};
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
    /// Replay at open: milliseconds of its first pass (finding the live puts).
    pub replay_scan_ms: AtomicU64,
    /// Replay at open: milliseconds of its second pass (reading the live events).
    pub replay_load_ms: AtomicU64,
    /// Replay at open: CPU milliseconds (user + system, whole process) of the first pass.
    pub replay_scan_cpu_ms: AtomicU64,
    /// Replay at open: CPU milliseconds (user + system, whole process) of the second pass.
    pub replay_load_cpu_ms: AtomicU64,
}

/// This process's user + system CPU time in milliseconds (Linux `/proc/self/stat`; 0
/// elsewhere), to tell replay's CPU cost from waiting on a busy machine.
fn process_cpu_ms() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // Clock ticks of 1/100 s on Linux.
    f.iter().sum::<u64>() * 10
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
    live: LiveSet,
}

/// Marks a dead entry (a taken put) in [`LiveSet`]. No pointer has this bit: file ids
/// stay far below 2^31.
const DEAD: u64 = 1 << 63;

/// The live put pointers in log order. Pointers grow with write order, so a put appends;
/// a take marks its pointer dead (found by binary search), and dead pointers at the
/// front are dropped (takes come mostly from the front).
#[derive(Debug, Default)]
struct LiveSet {
    /// Pointers, with [`DEAD`] set on taken ones.
    ptrs: VecDeque<u64>,
    /// Live pointers.
    len: usize,
}

impl LiveSet {
    fn from_sorted(ptrs: impl Iterator<Item = Pointer>) -> Self {
        let ptrs: VecDeque<u64> = ptrs.map(|p| p.0).collect();
        LiveSet {
            len: ptrs.len(),
            ptrs,
        }
    }

    fn search(&self, p: Pointer) -> std::result::Result<usize, usize> {
        self.ptrs.binary_search_by_key(&p.0, |v| v & !DEAD)
    }

    fn insert(&mut self, p: Pointer) {
        if self.ptrs.back().is_none_or(|b| b & !DEAD < p.0) {
            self.ptrs.push_back(p.0);
            self.len += 1;
            return;
        }
        match self.search(p) {
            Ok(i) => {
                if self.ptrs[i] & DEAD != 0 {
                    self.ptrs[i] = p.0;
                    self.len += 1;
                }
            }
            Err(i) => {
                self.ptrs.insert(i, p.0);
                self.len += 1;
            }
        }
    }

    /// Inserts a transaction's puts (in log order; usually all after the last one).
    fn insert_all(&mut self, ps: &[Pointer]) {
        match (ps.first(), self.ptrs.back()) {
            (Some(first), Some(b)) if b & !DEAD >= first.0 => {
                ps.iter().for_each(|p| self.insert(*p))
            }
            _ => {
                self.ptrs.extend(ps.iter().map(|p| p.0));
                self.len += ps.len();
            }
        }
    }

    fn remove(&mut self, p: Pointer) {
        // Takes come in queue order: the front, mostly.
        if self.ptrs.front() == Some(&p.0) {
            self.ptrs.pop_front();
            self.len -= 1;
        } else if let Ok(i) = self.search(p) {
            if self.ptrs[i] & DEAD == 0 {
                self.ptrs[i] |= DEAD;
                self.len -= 1;
            }
        }
        while self.ptrs.front().is_some_and(|f| f & DEAD != 0) {
            self.ptrs.pop_front();
        }
    }

    fn to_vec(&self) -> Vec<Pointer> {
        let mut out = Vec::with_capacity(self.len);
        out.extend(
            self.ptrs
                .iter()
                .filter(|p| *p & DEAD == 0)
                .map(|p| Pointer(*p)),
        );
        out
    }
}

/// Whether replay is still reading the recovered events (shared by the log and the
/// thread reading them).
#[derive(Debug)]
struct LoadState {
    loading: Mutex<bool>,
    cv: Condvar,
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
    /// Whether replay still reads the live events into the queue: puts wait, so that they
    /// queue behind the recovered events.
    load_state: Arc<LoadState>,
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

/// What replay's first pass found: the live events, located but not yet read
/// ([`Recovered::load`] reads them).
#[derive(Debug)]
pub struct Recovered {
    live: Vec<Found>,
    files: BTreeMap<u32, PathBuf>,
    state: Arc<LoadState>,
    /// Whether a checkpoint was used (false: full replay).
    pub from_checkpoint: bool,
    /// Bytes of log read by the first pass.
    pub bytes_read: u64,
}

impl Recovered {
    /// Number of committed, untaken events.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when the log holds no live event.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Reads the live events (blocking), handing them to `sink` in log order, a batch at a
    /// time, until `sink` returns false; then marks the log loaded (puts wait until then),
    /// also when reading fails. Returns how many events were handed over.
    ///
    /// Only `log`'s statistics are written (through a weak reference, after the load), so
    /// the load keeps no log (nor its directory locks) alive.
    pub fn load(
        self,
        log: &Weak<FileLog>,
        mut sink: impl FnMut(Vec<(Pointer, Event)>) -> bool,
    ) -> std::result::Result<usize, String> {
        struct Done(Arc<LoadState>);
        impl Drop for Done {
            fn drop(&mut self) {
                *lock(&self.0.loading) = false;
                self.0.cv.notify_all();
            }
        }
        let _done = Done(self.state.clone());
        let started = Instant::now();
        let cpu0 = process_cpu_ms();
        let mut n = 0;
        let r = load(&self.files, &self.live, |batch| {
            n += batch.len();
            sink(batch)
        });
        if let Some(log) = log.upgrade() {
            let s = &log.stats;
            s.replay_load_ms
                .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            s.replay_load_cpu_ms
                .store(process_cpu_ms().saturating_sub(cpu0), Ordering::Relaxed);
        }
        r.map(|()| n)
    }
}

impl FileLog {
    fn io(&self, message: impl Into<String>, source: io::Error) -> FlowError {
        io_err(&self.name, message, source)
    }

    /// Opens (or creates) the log of channel `name`: locks the directories, replays the
    /// log from the last good checkpoint (or from the start), cuts a torn tail, and starts
    /// a new log file. Blocking: call it off the async runtime.
    pub fn open(name: &str, config: FileChannelConfig) -> Result<(Arc<FileLog>, Recovered)> {
        let started = Instant::now();
        let cpu0 = process_cpu_ms();
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
                Ok(Some(cp)) => match scan(name, &files, Some(&cp)) {
                    Ok(r) => {
                        recovered = Some((r, cp.next_tx, true));
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
        let invalid = |why: String| {
            io_err(
                name,
                why,
                io::Error::new(io::ErrorKind::InvalidData, "replay"),
            )
        };
        let (scanned, next_tx, from_checkpoint) = match recovered {
            Some(r) => r,
            None => (scan(name, &files, None).map_err(invalid)?, 0, false),
        };
        let stats = LogStats::default();
        stats
            .replay_scan_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        stats
            .replay_scan_cpu_ms
            .store(process_cpu_ms().saturating_sub(cpu0), Ordering::Relaxed);
        let next_tx = next_tx.max(scanned.max_tx + 1);
        let file_id = files.keys().next_back().copied().unwrap_or(0) + 1;
        let (path, file) = create_log_file(&config, file_id)
            .map_err(|e| io_err(name, "cannot create a log file", e))?;
        files.insert(file_id, path);
        let live = LiveSet::from_sorted(scanned.live.iter().map(|(p, _)| *p));
        let load_state = Arc::new(LoadState {
            loading: Mutex::new(true),
            cv: Condvar::new(),
        });
        let rec = Recovered {
            live: scanned.live,
            files: files.clone(),
            state: load_state.clone(),
            from_checkpoint,
            bytes_read: scanned.bytes_read,
        };
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
            load_state,
            stats,
            _locks: locks,
        });
        // No checkpoint here: the one replay started from stays valid (files after it are
        // kept until a newer checkpoint), so the channel is ready sooner; the checkpoint
        // thread writes the next one.
        spawn_checkpointer(&log);
        Ok((log, rec))
    }

    /// True while replay still reads recovered events into the queue (puts wait).
    pub fn is_loading(&self) -> bool {
        *lock(&self.load_state.loading)
    }

    /// Waits until the recovered events are in the queue (blocking).
    pub fn wait_loaded(&self) {
        let st = &self.load_state;
        let mut l = lock(&st.loading);
        while *l {
            l = st.cv.wait(l).unwrap_or_else(|e| e.into_inner());
        }
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
    /// returns the events' pointers. Without `fsyncPerTransaction` it returns once they
    /// are written (synced every `fsyncInterval`, as Flume). Blocking.
    pub fn commit_puts(&self, events: &[Event]) -> Result<Vec<Pointer>> {
        if let Err(e) = self.check_space() {
            self.stats.put_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        // Puts queue behind the recovered events.
        self.wait_loaded();
        let tx = self.next_tx.fetch_add(1, Ordering::Relaxed);
        let r = with_encode_buf(|buf| {
            // Encoded (and checksummed) before the writer lock is taken.
            let mut rel = Vec::with_capacity(events.len());
            for e in events {
                rel.push(buf.len() as u32);
                record::encode_put(buf, tx, e);
            }
            record::encode_commit(buf, tx);
            let mut w = lock(&self.writer);
            let (end, ptrs) = self.append_buf(&mut w, buf, &rel)?;
            w.live.insert_all(&ptrs);
            drop(w);
            if !self.config.fsync_per_transaction {
                return Ok(ptrs);
            }
            if let Err(e) = self.sync_to(end) {
                let mut w = lock(&self.writer);
                for p in &ptrs {
                    w.live.remove(*p);
                }
                return Err(e);
            }
            Ok(ptrs)
        });
        if r.is_err() {
            self.stats.put_errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Appends a take record for `taken` (one record: all or nothing). With
    /// `takeSyncDelay` 0 it then waits for its fsync (group commit, shared with concurrent
    /// commits), as Flume does; otherwise it returns once written: the record is already
    /// safe from a crash of the process (it is in the page cache), and the next group
    /// fsync, or the background one after at most `takeSyncDelay`, makes it safe from power
    /// loss. A take lost that way only delivers its events again (at-least-once), and
    /// checkpoints sync before they count takes. Blocking.
    ///
    /// On error the pointers stay live and the caller returns the events to the queue; a
    /// take record that reached the disk anyway only marks events the sink already had.
    pub fn commit_takes(&self, taken: &[Pointer]) -> Result<()> {
        let tx = self.next_tx.fetch_add(1, Ordering::Relaxed);
        let r = with_encode_buf(|buf| {
            record::encode_takes(buf, tx, taken);
            let mut w = lock(&self.writer);
            let (end, _) = self.append_buf(&mut w, buf, &[])?;
            for p in taken {
                w.live.remove(*p);
            }
            drop(w);
            if !self.config.take_sync_delay.is_zero() || !self.config.fsync_per_transaction {
                return Ok(());
            }
            if let Err(e) = self.sync_to(end) {
                let mut w = lock(&self.writer);
                for p in taken {
                    w.live.insert(*p);
                }
                return Err(e);
            }
            Ok(())
        });
        if r.is_err() {
            self.stats.take_errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Syncs whatever was written and not yet synced (take records with a
    /// `takeSyncDelay`; every commit without `fsyncPerTransaction`). Blocking.
    pub fn sync_pending(&self) -> Result<()> {
        let written = lock(&self.writer).written;
        self.sync_to(written)
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
                    live: w.live.to_vec(),
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

/// Runs `f` with this thread's (cleared) record encoding buffer; the buffer is kept for
/// the thread's next transaction unless it grew past 8 MiB.
fn with_encode_buf<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let r = f(&mut buf);
    if buf.capacity() <= 8 << 20 {
        BUF.with(|b| *b.borrow_mut() = buf);
    }
    r
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

/// Checkpoints every `checkpointInterval` on a thread of its own, and syncs what commits
/// left unsynced (take records after `takeSyncDelay`; everything every `fsyncInterval`
/// without `fsyncPerTransaction`), until the log is dropped.
fn spawn_checkpointer(log: &Arc<FileLog>) {
    let weak: Weak<FileLog> = Arc::downgrade(log);
    let c = &log.config;
    let interval = c.checkpoint_interval;
    let background_sync = if !c.fsync_per_transaction {
        Some(c.fsync_interval)
    } else {
        Some(c.take_sync_delay).filter(|d| !d.is_zero())
    };
    let tick = [
        Some(Duration::from_millis(100)),
        Some(interval),
        background_sync,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(interval);
    let name = log.name.clone();
    let r = std::thread::Builder::new()
        .name(format!("checkpoint-{name}"))
        .spawn(move || {
            let (mut last, mut last_sync) = (Instant::now(), Instant::now());
            loop {
                std::thread::sleep(tick);
                let Some(log) = weak.upgrade() else { return };
                if last.elapsed() >= interval {
                    if let Err(error) = log.checkpoint() {
                        tracing::error!(%error, channel = name, "Checkpoint failed.");
                    }
                    (last, last_sync) = (Instant::now(), Instant::now());
                } else if background_sync.is_some_and(|d| last_sync.elapsed() >= d) {
                    if let Err(error) = log.sync_pending() {
                        tracing::error!(%error, channel = name, "Cannot sync the log; trying again.");
                    }
                    last_sync = Instant::now();
                }
            }
        });
    if let Err(error) = r {
        tracing::error!(%error, channel = log.name, "Cannot start the checkpoint thread.");
    }
}

/// Bytes of a log file the replay scan reads at a time into its one reused buffer, and
/// the most bytes event loading reads at once. Tiny in unit tests, so that their records
/// straddle chunk boundaries.
const SCAN_CHUNK: usize = if cfg!(test) { 100 } else { 32 << 20 };
/// See [`SCAN_CHUNK`].
const LOAD_RUN: u64 = if cfg!(test) { 100 } else { 32 << 20 };
/// Loading reads across a gap of up to this many bytes between two live records instead
/// of starting a new read.
const LOAD_GAP: u64 = 4096;

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

/// A live put: its pointer and the length of its frame.
type Found = (Pointer, u32);

/// What replay's first pass found.
#[derive(Debug, Default)]
struct Scanned {
    /// Committed, untaken puts in log order.
    live: Vec<Found>,
    max_tx: u64,
    bytes_read: u64,
}

fn not_held(p: Pointer) -> String {
    format!(
        "the checkpoint lists an event at file {} offset {} that the log does not hold",
        p.file_id(),
        p.offset()
    )
}

/// Replay's first pass: finds the live puts without keeping any event, reading each log
/// file sequentially through one reused buffer.
///
/// With a checkpoint, files before its position are read only from their first live put
/// on (files without one are skipped) and only the records at the checkpoint's live
/// pointers are checked (checksum, kind); from the position on, every record is checked
/// and transactions are applied as their commits appear. A torn or corrupt record ends
/// its file (the tail of the last file is cut off). Returns why the checkpoint does not
/// fit the files, if it does not.
fn scan(
    name: &str,
    files: &BTreeMap<u32, PathBuf>,
    cp: Option<&Checkpoint>,
) -> std::result::Result<Scanned, String> {
    let start = cp.map_or(Pointer(0), |c| c.position);
    let mut cp_live: Vec<Pointer> = cp.map(|c| c.live.clone()).unwrap_or_default();
    if !cp_live.windows(2).all(|w| w[0] < w[1]) {
        cp_live.sort_unstable();
        cp_live.dedup();
    }
    let mut li = 0usize;
    let mut pre: Vec<Found> = Vec::with_capacity(cp_live.len());
    let mut post: Vec<Found> = Vec::new();
    let mut taken: HashSet<Pointer> = HashSet::new();
    type Pending = (Vec<Found>, Vec<Pointer>);
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut max_tx = 0u64;
    let mut bytes_read = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let last_id = files.keys().next_back().copied();
    let magic_len = FILE_MAGIC.len() as u64;
    for (&id, path) in files {
        if let Some(p) = cp_live.get(li).filter(|p| p.file_id() < id) {
            return Err(not_held(*p));
        }
        let file_live_end = li + cp_live[li..].partition_point(|p| p.file_id() == id);
        let in_file = &cp_live[li..file_live_end];
        let (begin, stop) = if id < start.file_id() {
            match (in_file.first(), in_file.last()) {
                (Some(first), Some(last)) => (first.offset() as u64, Some(*last)),
                _ => continue,
            }
        } else if id == start.file_id() {
            let first = in_file.first().map_or(start.offset(), |p| p.offset());
            (first.min(start.offset()) as u64, None)
        } else {
            (magic_len, None)
        };
        let begin = begin.max(magic_len);
        let cannot = |e: io::Error| format!("cannot read {}: {e}", path.display());
        let mut file = File::open(path).map_err(cannot)?;
        let size = file.metadata().map_err(cannot)?.len();
        let mut magic = [0u8; FILE_MAGIC.len()];
        if size < magic_len || file.read_exact(&mut magic).is_err() || &magic != FILE_MAGIC {
            tracing::warn!(channel = name, file = %path.display(), "Log file without a valid header; ignoring it.");
            continue;
        }
        file.seek(SeekFrom::Start(begin)).map_err(cannot)?;
        bytes_read += size.saturating_sub(begin);
        let is_last = Some(id) == last_id;
        // The window: file bytes [pos, pos + buf.len()) are in `buf`; `at` indexes it.
        let mut pos = begin;
        let mut at = 0usize;
        buf.clear();
        loop {
            let rest = buf.len() - at;
            let file_at = pos + at as u64;
            let need = frame_len(&buf[at..]);
            let unread = size.saturating_sub(pos + buf.len() as u64);
            if rest < need && unread > 0 {
                buf.copy_within(at.., 0);
                buf.truncate(rest);
                pos = file_at;
                at = 0;
                let more = (need - rest).max(SCAN_CHUNK).min(unread as usize);
                // The file's cursor is at the window's end.
                let got = (&mut file)
                    .take(more as u64)
                    .read_to_end(&mut buf)
                    .map_err(cannot)?;
                if got < more {
                    return Err(format!("{} shrank while being read", path.display()));
                }
                continue;
            }
            if rest == 0 {
                break; // the end of the file, at a record boundary
            }
            let ptr = Pointer::new(id, file_at as u32);
            let torn = if need == 0 || rest < need {
                true
            } else if ptr < start {
                // Before the checkpoint: only the checkpoint's live puts matter.
                match cp_live[li..file_live_end].first() {
                    Some(p) if *p == ptr => match record::check(&buf[at..at + need]) {
                        Ok((Meta::Put(_), _)) => {
                            pre.push((ptr, need as u32));
                            li += 1;
                        }
                        _ => return Err(not_held(ptr)),
                    },
                    Some(p) if *p < ptr => return Err(not_held(*p)),
                    _ => {}
                }
                if stop == Some(ptr) {
                    break;
                }
                false
            } else {
                match record::check(&buf[at..at + need]) {
                    Ok((meta, _)) => {
                        match meta {
                            Meta::Put(tx) => {
                                max_tx = max_tx.max(tx);
                                pending.entry(tx).or_default().0.push((ptr, need as u32));
                            }
                            Meta::Take(tx, target) => {
                                max_tx = max_tx.max(tx);
                                pending.entry(tx).or_default().1.push(target);
                            }
                            Meta::Commit(tx) => {
                                max_tx = max_tx.max(tx);
                                if let Some((puts, takes)) = pending.remove(&tx) {
                                    post.extend(puts);
                                    taken.extend(takes);
                                }
                            }
                            Meta::Rollback(tx) => {
                                max_tx = max_tx.max(tx);
                                pending.remove(&tx);
                            }
                            Meta::Takes(tx, targets) => {
                                max_tx = max_tx.max(tx);
                                taken.extend(targets);
                            }
                        }
                        false
                    }
                    Err(_) => true,
                }
            };
            if torn {
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
            at += need;
        }
    }
    if let Some(p) = cp_live.get(li) {
        return Err(not_held(*p));
    }
    if !post.windows(2).all(|w| w[0].0 < w[1].0) {
        post.sort_unstable_by_key(|f| f.0);
    }
    let mut live = pre;
    live.extend(post);
    if !taken.is_empty() {
        live.retain(|(p, _)| !taken.contains(p));
    }
    Ok(Scanned {
        live,
        max_tx,
        bytes_read,
    })
}

/// A run of live puts read with one `read`: file bytes `[start, end)` hold
/// `live[first..first + count]`.
#[derive(Debug, Clone, Copy)]
struct Run {
    file_id: u32,
    start: u64,
    end: u64,
    first: usize,
    count: usize,
}

/// Groups the live puts into runs of at most [`LOAD_RUN`] bytes (a single larger record
/// gets a run of its own), reading across gaps of up to [`LOAD_GAP`] bytes.
fn plan_runs(live: &[Found]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (i, (p, len)) in live.iter().enumerate() {
        let (off, end) = (p.offset() as u64, p.offset() as u64 + *len as u64);
        match runs.last_mut() {
            Some(r)
                if r.file_id == p.file_id()
                    && off >= r.end
                    && off - r.end <= LOAD_GAP
                    && end - r.start <= LOAD_RUN =>
            {
                r.end = end;
                r.count += 1;
            }
            _ => runs.push(Run {
                file_id: p.file_id(),
                start: off,
                end,
                first: i,
                count: 1,
            }),
        }
    }
    runs
}

/// Reads one run and decodes its events (bodies are slices of the run's buffer, or
/// copies when most of the buffer is not live).
fn load_run(
    files: &BTreeMap<u32, PathBuf>,
    live: &[Found],
    run: Run,
) -> std::result::Result<Vec<(Pointer, Event)>, String> {
    let path = files
        .get(&run.file_id)
        .ok_or_else(|| format!("log file {} disappeared", run.file_id))?;
    let cannot = |e: io::Error| format!("cannot read {}: {e}", path.display());
    let mut file = File::open(path).map_err(cannot)?;
    file.seek(SeekFrom::Start(run.start)).map_err(cannot)?;
    let size = (run.end - run.start) as usize;
    let mut buf = Vec::with_capacity(size);
    let got = file
        .take(size as u64)
        .read_to_end(&mut buf)
        .map_err(cannot)?;
    if got < size {
        return Err(format!("{} shrank while being read", path.display()));
    }
    let data = Bytes::from(buf);
    let found = &live[run.first..run.first + run.count];
    let live_bytes: u64 = found.iter().map(|(_, n)| *n as u64).sum();
    let copy = live_bytes * 2 < size as u64;
    let mut out = Vec::with_capacity(found.len());
    for (p, len) in found {
        match record::decode(&data, (p.offset() as u64 - run.start) as usize) {
            Ok((Record::Put { mut event, .. }, n)) if n == *len as usize => {
                if copy {
                    event.body = Bytes::copy_from_slice(&event.body);
                }
                out.push((*p, event));
            }
            _ => {
                return Err(format!(
                    "the event at file {} offset {} changed since it was first read",
                    p.file_id(),
                    p.offset()
                ))
            }
        }
    }
    Ok(out)
}

/// Replay's second pass: reads the live events, several runs at a time on
/// `available_parallelism` threads, and hands them to `sink` in log order.
fn load(
    files: &BTreeMap<u32, PathBuf>,
    live: &[Found],
    mut sink: impl FnMut(Vec<(Pointer, Event)>) -> bool,
) -> std::result::Result<(), String> {
    let runs = plan_runs(live);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
        .min(runs.len());
    if threads <= 1 {
        for run in runs {
            if !sink(load_run(files, live, run)?) {
                break;
            }
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, failed, runs) = (&next, &failed, &runs);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= runs.len() || failed.load(Ordering::Relaxed) {
                    return;
                }
                let r = load_run(files, live, runs[i]);
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                if tx.send((i, r)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        // Hand the runs over in order.
        let mut waiting: BTreeMap<usize, Vec<(Pointer, Event)>> = BTreeMap::new();
        let mut want = 0;
        for (i, r) in rx {
            let events = match r {
                Ok(events) => events,
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            };
            waiting.insert(i, events);
            while let Some(events) = waiting.remove(&want) {
                if !sink(events) {
                    failed.store(true, Ordering::Relaxed);
                    return Ok(());
                }
                want += 1;
            }
        }
        if want < runs.len() {
            return Err("loading the log's events stopped early".to_string());
        }
        Ok(())
    })
}

#[cfg(test)]
mod live_set_tests {
    use super::*;

    #[test]
    fn live_set_keeps_log_order_through_takes_and_returns() {
        let p = |i: u32| Pointer::new(1, i);
        let mut s = LiveSet::default();
        for i in [10, 20, 30, 40, 50] {
            s.insert(p(i));
        }
        s.remove(p(10)); // front
        s.remove(p(30)); // middle
        s.remove(p(99)); // unknown
        assert_eq!(s.to_vec(), vec![p(20), p(40), p(50)]);
        s.insert(p(30)); // a failed take commit returns it
        s.insert(p(5)); // out of order
        assert_eq!(s.to_vec(), vec![p(5), p(20), p(30), p(40), p(50)]);
        for i in [5, 20, 30, 40] {
            s.remove(p(i));
        }
        assert_eq!(s.to_vec(), vec![p(50)]);
        assert_eq!((s.len, s.ptrs.len()), (1, 1));
        s.insert_all(&[p(60), p(70)]);
        s.insert_all(&[p(55), p(65)]); // behind the last one
        assert_eq!(s.to_vec(), vec![p(50), p(55), p(60), p(65), p(70)]);
        for i in [55, 60, 65, 70] {
            s.remove(p(i));
        }
        s.remove(p(50));
        assert!(s.to_vec().is_empty());
    }
}
