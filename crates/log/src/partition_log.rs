//! A partition log: an ordered list of segments, the last one active.
//!
//! Offsets kept in memory, in this order: `log_start <= log_end` and
//! `recovery_point <= log_end` (everything below the recovery point is fsynced). On a
//! single node the high watermark equals the log end offset.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::batch::{self, BatchHeader};
use crate::checkpoint::{self, CLEAN_SHUTDOWN_FILE, LOG_START_FILE, RECOVERY_POINT_FILE};
use crate::config::LogConfig;
use crate::error::{IoContext, LogError};
use crate::segment::{self, Segment};
use crate::types::{Offset, Timestamp, TimestampType};

/// Options of [`PartitionLog::append`].
#[derive(Clone, Copy, Debug)]
pub struct AppendOptions {
    /// The broker's clock: LogAppendTime stamp and `segment.ms` reference.
    pub now: Timestamp,
}

impl Default for AppendOptions {
    fn default() -> Self {
        AppendOptions {
            now: Timestamp::now(),
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub first_offset: Offset,
    /// Offset given to the last record.
    pub last_offset: Offset,
    /// Largest timestamp of the appended batches (-1 if none carried one).
    pub max_timestamp: Timestamp,
    /// Offset of the record holding `max_timestamp`.
    pub offset_of_max_timestamp: Offset,
    /// The broker time stamped into the batches when the topic uses LogAppendTime.
    pub log_append_time: Option<Timestamp>,
    /// Log start offset after the append.
    pub log_start_offset: Offset,
    /// Number of records appended.
    pub record_count: u64,
    /// Bytes appended.
    pub bytes: u64,
}

/// Options of [`PartitionLog::read`].
#[derive(Clone, Copy, Debug)]
pub struct ReadOptions {
    /// Fetch offset: reading starts with the batch holding it.
    pub offset: Offset,
    /// Byte limit; at least one whole batch is returned if one exists below the bound.
    pub max_bytes: u32,
    /// Exclusive upper bound on batch base offsets (e.g. the high watermark); `None` = log end.
    pub max_offset: Option<Offset>,
}

/// What a read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchInfo {
    /// Whole record batches, exactly as stored (possibly empty).
    pub records: Vec<u8>,
    /// High watermark (the log end offset on one node).
    pub high_watermark: Offset,
    /// Log start offset.
    pub log_start_offset: Offset,
}

/// A flush prepared by [`PartitionLog::begin_flush`]: the files to fsync, so the fsyncs can
/// run while the log itself is free for appends.
#[derive(Debug)]
pub struct PendingFlush {
    /// Files to fdatasync, with a duplicate of the handle that wrote them when still open.
    files: Vec<(PathBuf, Option<fs::File>)>,
    /// The partition directory, when segment files were created or removed since its last fsync.
    dir: Option<PathBuf>,
    dir_changes: u64,
    truncations: u64,
    upto: Offset,
    records: u64,
}

impl PendingFlush {
    /// The recovery point once this flush completes (the log end offset at `begin_flush`).
    pub fn offset(&self) -> Offset {
        self.upto
    }

    /// Runs the fsyncs. Safe to call without holding the log (it touches only files); a
    /// segment deleted meanwhile is skipped.
    pub fn sync(&self) -> Result<(), LogError> {
        for (path, handle) in &self.files {
            let result = match handle {
                Some(f) => f.sync_data(),
                None => match fs::File::open(path) {
                    Ok(f) => f.sync_data(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                },
            };
            result.ctx(|| format!("syncing {}", path.display()))?;
        }
        if let Some(dir) = &self.dir {
            checkpoint::sync_dir(dir)?;
        }
        Ok(())
    }
}

/// What a retention pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionInfo {
    /// Segments deleted.
    pub deleted_segments: usize,
    /// Bytes of `.log` deleted.
    pub deleted_bytes: u64,
    /// Log start offset afterwards.
    pub log_start_offset: Offset,
}

/// The log of one partition, in one directory `<log dir>/<topic>-<partition>/`.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset; never empty; the last one is active.
    segments: Vec<Segment>,
    log_start: Offset,
    recovery_point: Offset,
    /// Base of the segment that held the recovery point last written to disk.
    checkpointed_segment: Option<Offset>,
    unflushed_records: u64,
    last_flush: Timestamp,
    /// Segment files created or removed so far (directory changes).
    dir_changes: u64,
    /// `dir_changes` as of the last directory fsync.
    dir_synced: u64,
    /// Number of `truncate_to` calls that removed data (a pending flush from before one of
    /// them must not advance the recovery point over re-appended data).
    truncations: u64,
    /// The clean-shutdown marker is still on disk (removed before the first change).
    clean_marker: bool,
}

fn parse_segment_name(name: &str) -> Option<Offset> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok().map(Offset))
        .flatten()
}

impl PartitionLog {
    /// Opens the log in `dir`, creating it if missing and recovering it if it was not closed
    /// cleanly: segments from the one holding the recovery point on are re-scanned, and the
    /// log is truncated at the first short or corrupt batch.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        fs::create_dir_all(dir).ctx(|| format!("creating log directory {}", dir.display()))?;
        let mut bases = Vec::new();
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        for name in &names {
            if name.ends_with(".deleted") || name.ends_with(".tmp") || name.ends_with(".swap") {
                let p = dir.join(name);
                fs::remove_file(&p).ctx(|| format!("removing leftover {}", p.display()))?;
            } else if let Some(base) = parse_segment_name(name) {
                bases.push(base);
            }
        }
        // Index files whose .log is gone.
        for name in &names {
            for ext in [".index", ".timeindex"] {
                if let Some(stem) = name.strip_suffix(ext) {
                    if !names.contains(&format!("{stem}.log")) {
                        let p = dir.join(name);
                        fs::remove_file(&p).ctx(|| format!("removing orphan {}", p.display()))?;
                    }
                }
            }
        }
        bases.sort();
        let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let checkpointed_rp = checkpoint::read(dir, RECOVERY_POINT_FILE);
        let checkpointed_start = checkpoint::read(dir, LOG_START_FILE);
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments: Vec::new(),
            log_start: Offset(0),
            recovery_point: Offset(0),
            checkpointed_segment: None,
            unflushed_records: 0,
            last_flush: Timestamp::now(),
            dir_changes: 0,
            dir_synced: 0,
            truncations: 0,
            clean_marker: clean,
        };
        if bases.is_empty() {
            let start = checkpointed_start.unwrap_or(Offset(0)).max(Offset(0));
            log.segments.push(Segment::create(dir, start, &log.config)?);
            checkpoint::sync_dir(dir)?;
            log.log_start = start;
            log.recovery_point = start;
            return Ok(log);
        }
        let last = bases.len() - 1;
        let mut clean_ok = false;
        if clean {
            for i in 0..last {
                log.segments.push(Segment::open_closed(
                    dir,
                    bases[i],
                    bases[i + 1],
                    &log.config,
                )?);
            }
            if let Some(seg) = Segment::open_active_clean(dir, bases[last], &log.config)? {
                log.segments.push(seg);
                clean_ok = true;
            } else {
                tracing::warn!(dir = %dir.display(), "Clean-shutdown marker present but the active segment does not match its indexes; recovering it.");
                log.segments.clear();
            }
        }
        if !clean_ok {
            log.recover(&bases, checkpointed_rp)?;
        }
        let first_base = log.segments[0].base;
        let leo = log.log_end_offset();
        log.log_start = checkpointed_start
            .unwrap_or(first_base)
            .max(first_base)
            .min(leo);
        if checkpointed_rp.is_some_and(|rp| rp > leo) {
            // The checkpoint claims more than survived: lower it before anything is appended
            // again, or re-appended offsets below it would count as flushed after a crash.
            checkpoint::write(dir, RECOVERY_POINT_FILE, leo)?;
        }
        if checkpointed_start.is_some_and(|s| s > leo) {
            // Recovery cut the log below the DeleteRecords start: the offsets from the new
            // end on will be assigned again, so the old start must not come back later.
            checkpoint::write(dir, LOG_START_FILE, leo)?;
        }
        if clean_ok {
            log.recovery_point = leo;
            log.checkpointed_segment = Some(log.active().base);
        }
        log.active_mut().release_handle();
        Ok(log)
    }

    /// Unclean open: trust segments before the one holding the recovery point, re-scan the
    /// rest, truncate at the first invalid batch and drop every later segment.
    fn recover(
        &mut self,
        bases: &[Offset],
        recovery_point: Option<Offset>,
    ) -> Result<(), LogError> {
        let rp = recovery_point.unwrap_or(Offset(i64::MIN));
        let first_scanned = bases.partition_point(|&b| b <= rp).saturating_sub(1);
        tracing::info!(dir = %self.dir.display(), recovery_point = rp.0, segments = bases.len() - first_scanned, "Recovering log after an unclean shutdown.");
        for i in 0..first_scanned {
            self.segments.push(Segment::open_closed(
                &self.dir,
                bases[i],
                bases[i + 1],
                &self.config,
            )?);
        }
        let mut cut_at = None;
        for (i, &base) in bases.iter().enumerate().skip(first_scanned) {
            let (mut seg, mut invalid) = Segment::recover(&self.dir, base, &self.config)?;
            if let (None, Some(&next)) = (&invalid, bases.get(i + 1)) {
                if seg.next_offset != next {
                    // Whole batches at the end of this segment are gone while later segments
                    // survived: keeping them would leave a hole in the offsets.
                    invalid = Some(format!(
                        "segment ends at offset {} but the next one starts at {next}",
                        seg.next_offset
                    ));
                }
            }
            if let Some(reason) = invalid {
                tracing::warn!(segment = %seg.path("log").display(), reason, "Truncated the log at the first invalid batch.");
                cut_at = Some(i);
            }
            if i < bases.len() - 1 && cut_at.is_none() {
                // Indexes written now, fsynced by the next flush (which syncs every segment
                // above the recovery point).
                seg.seal_time_index();
                seg.write_indexes(false)?;
                seg.release_handle();
            }
            self.segments.push(seg);
            if cut_at.is_some() {
                break;
            }
        }
        if let Some(i) = cut_at {
            for &base in &bases[i + 1..] {
                Segment::delete_files(&self.dir, base)?;
            }
            self.dir_changes += 1;
        }
        // No fsync here: the recovery point stays where it was (clamped to the new end), so
        // a crash before the next flush simply repeats this recovery.
        let leo = self.log_end_offset();
        let first = self.segments[0].base;
        self.recovery_point = rp.max(first).min(leo);

        let holder = self.segment_index(self.recovery_point);
        self.checkpointed_segment = recovery_point.map(|_| self.segments[holder].base);
        Ok(())
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has a segment")
    }

    /// Directory of this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the clean-shutdown marker (durably) before the first change.
    fn mark_dirty(&mut self) -> Result<(), LogError> {
        if self.clean_marker {
            let p = self.dir.join(CLEAN_SHUTDOWN_FILE);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).ctx(|| format!("removing {}", p.display())),
            }
            checkpoint::sync_dir(&self.dir)?;
            self.clean_marker = false;
        }
        Ok(())
    }

    /// Validates `batches` (one or more magic-2 batches back to back), assigns offsets by
    /// rewriting their base offsets (and, for LogAppendTime topics, max timestamp, timestamp
    /// bit and CRC) in place, and appends them to the active segment. The data is in the page
    /// cache afterwards; see [`PartitionLog::needs_flush`] and [`PartitionLog::flush`].
    pub fn append(
        &mut self,
        batches: &mut [u8],
        options: AppendOptions,
    ) -> Result<AppendInfo, LogError> {
        if batches.is_empty() {
            return Err(LogError::corrupt("the append holds no record batch"));
        }
        let mut spans = Vec::new();
        let mut pos = 0usize;
        let mut records: u64 = 0;
        while pos < batches.len() {
            let rest = &batches[pos..];
            let size = BatchHeader::peek_size(rest)
                .unwrap_or(rest.len())
                .min(rest.len());
            let size = if size < batch::HEADER_LEN {
                rest.len().min(batch::HEADER_LEN.max(size))
            } else {
                size
            };
            let h = batch::validate(&rest[..size], Some(self.config.max_message_bytes))?;
            records += h.records_count as u64;
            spans.push((pos, h.size));
            pos += h.size;
        }
        self.mark_dirty()?;
        let now = options.now;
        self.maybe_roll(batches.len() as u64, records, now)?;
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let first = self.log_end_offset();
        let mut next = first;
        let mut headers = Vec::with_capacity(spans.len());
        let mut max_ts = (Timestamp::NONE, first);
        for &(at, size) in &spans {
            let b = &mut batches[at..at + size];
            batch::set_base_offset(b, next.0);
            if log_append_time {
                batch::set_log_append_time(b, now.0);
            }
            let h = BatchHeader::parse(b).expect("validated");
            let om = segment::offset_of_max_timestamp(&h, Some(b));
            if Timestamp(h.max_timestamp) > max_ts.0 {
                max_ts = (Timestamp(h.max_timestamp), om);
            }
            next = Offset(h.last_offset() + 1);
            headers.push((at, h, om));
        }
        if max_ts.0 == Timestamp::NONE {
            max_ts.1 = Offset(next.0 - 1);
        }
        self.active_mut().append(batches, &headers, now)?;
        self.unflushed_records += records;
        Ok(AppendInfo {
            first_offset: first,
            last_offset: Offset(next.0 - 1),
            max_timestamp: max_ts.0,
            offset_of_max_timestamp: max_ts.1,
            log_append_time: log_append_time.then_some(now),
            log_start_offset: self.log_start,
            record_count: records,
            bytes: batches.len() as u64,
        })
    }

    fn maybe_roll(
        &mut self,
        incoming_bytes: u64,
        incoming_records: u64,
        now: Timestamp,
    ) -> Result<(), LogError> {
        let a = self.active();
        if a.size == 0 {
            return Ok(());
        }
        let leo = self.log_end_offset();
        let too_big = a.size + incoming_bytes > self.config.effective_segment_bytes();
        let too_old = a
            .first_timestamp
            .is_some_and(|t| t.0 >= 0 && now.0.saturating_sub(t.0) > self.config.segment_ms);
        let overflow = leo.0 + incoming_records as i64 - a.base.0 > i32::MAX as i64;
        if too_big || too_old || overflow || a.index_full(&self.config) {
            self.roll()?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        if self.active().size == 0 {
            return Ok(());
        }
        let a = self.active_mut();
        a.seal_time_index();
        a.write_indexes(false)?;
        // The handle stays open until the next flush fsyncs through it (so a writeback
        // error is reported to this file description), then it is released. Older closed
        // segments let theirs go now, so a log holds at most two open files even if it is
        // never flushed.
        let n = self.segments.len();
        for seg in &mut self.segments[..n - 1] {
            seg.release_handle();
        }
        let seg = Segment::create(&self.dir, leo, &self.config)?;
        self.segments.push(seg);
        self.dir_changes += 1;
        Ok(())
    }

    /// Reads whole batches starting with the one holding `options.offset`.
    pub fn read(&self, options: ReadOptions) -> Result<FetchInfo, LogError> {
        let leo = self.log_end_offset();
        if options.offset < self.log_start || options.offset > leo {
            return Err(self.out_of_range(options.offset));
        }
        let limit = options.max_offset.map_or(leo, |m| m.min(leo));
        let mut out = Vec::new();
        let mut budget = options.max_bytes as u64;
        if options.offset < limit {
            let mut i = self.segment_index(options.offset);
            let mut target = options.offset;
            loop {
                let seg = &self.segments[i];
                if let Some((pos, base)) = seg.find(target)? {
                    if base >= limit {
                        break;
                    }
                    let (bytes, reached_end) = seg.read_from(pos, budget, limit, out.is_empty())?;
                    if bytes.is_empty() {
                        break;
                    }
                    budget = budget.saturating_sub(bytes.len() as u64);
                    if out.is_empty() {
                        out = bytes;
                    } else {
                        out.extend_from_slice(&bytes);
                    }
                    if !reached_end || budget == 0 {
                        break;
                    }
                }
                i += 1;
                if i == self.segments.len() {
                    break;
                }
                target = self.segments[i].base;
            }
        }
        Ok(FetchInfo {
            records: out,
            high_watermark: leo,
            log_start_offset: self.log_start,
        })
    }

    /// Segment and file position of the batch holding `offset` (or the next batch).
    pub fn lookup_offset(&self, offset: Offset) -> Result<Option<(Offset, u64)>, LogError> {
        if offset < self.log_start || offset > self.log_end_offset() {
            return Err(self.out_of_range(offset));
        }
        let seg = &self.segments[self.segment_index(offset)];
        Ok(seg.find(offset)?.map(|(pos, _)| (seg.base, pos)))
    }

    fn segment_index(&self, offset: Offset) -> usize {
        self.segments
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1)
    }

    fn out_of_range(&self, offset: Offset) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start: self.log_start,
            log_end: self.log_end_offset(),
        }
    }

    /// First offset kept.
    pub fn log_start_offset(&self) -> Offset {
        self.log_start
    }

    /// Next offset to be assigned.
    pub fn log_end_offset(&self) -> Offset {
        self.active().next_offset
    }

    /// High watermark: the log end offset (single node).
    pub fn high_watermark(&self) -> Offset {
        self.log_end_offset()
    }

    /// Offset below which every batch is known to be fsynced.
    pub fn recovery_point(&self) -> Offset {
        self.recovery_point
    }

    /// Offset and timestamp of the first record whose timestamp is `>= ts` (at or after the
    /// log start), `None` if there is none. Exact for uncompressed batches; for compressed
    /// batches it is the batch's first offset with the batch's max timestamp.
    pub fn offset_for_timestamp(
        &self,
        ts: Timestamp,
    ) -> Result<Option<(Offset, Timestamp)>, LogError> {
        for seg in &self.segments {
            if seg.next_offset <= self.log_start || seg.max_timestamp.0 < ts {
                continue;
            }
            if let Some(hit) = seg.find_timestamp(ts, self.log_start)? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// Offset and value of the largest timestamp in the log (ListOffsets -3).
    pub fn max_timestamp_offset(&self) -> Option<(Offset, Timestamp)> {
        let mut best: Option<(Offset, Timestamp)> = None;
        for seg in &self.segments {
            if seg.next_offset <= self.log_start || seg.max_timestamp.0 .0 < 0 {
                continue;
            }
            if best.is_none_or(|(_, t)| seg.max_timestamp.0 > t) {
                best = Some((seg.max_timestamp.1, seg.max_timestamp.0));
            }
        }
        best
    }

    /// Advances the log start offset to `offset` (DeleteRecords) and deletes closed segments
    /// wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: Offset) -> Result<Offset, LogError> {
        if offset > self.log_end_offset() || offset.0 < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset <= self.log_start {
            return Ok(self.log_start);
        }
        checkpoint::write(&self.dir, LOG_START_FILE, offset)?;
        self.log_start = offset;
        self.delete_leading(|s| s.next_offset <= offset)?;
        Ok(self.log_start)
    }

    fn delete_leading(
        &mut self,
        mut doomed: impl FnMut(&Segment) -> bool,
    ) -> Result<RetentionInfo, LogError> {
        let mut info = RetentionInfo::default();
        while self.segments.len() > 1 && doomed(&self.segments[0]) {
            let seg = self.segments.remove(0);
            info.deleted_segments += 1;
            info.deleted_bytes += seg.size;
            seg.delete()?;
            self.dir_changes += 1;
        }
        let first = self.segments[0].base;
        self.log_start = self.log_start.max(first);
        self.recovery_point = self.recovery_point.max(first).min(self.log_end_offset());
        info.log_start_offset = self.log_start;
        Ok(info)
    }

    /// Deletes whole closed segments past `retention.ms` (by their largest timestamp) or
    /// beyond `retention.bytes`. If every segment is past `retention.ms`, the active one is
    /// rolled first so it can go too (Kafka's behaviour).
    pub fn apply_retention(&mut self, now: Timestamp) -> Result<RetentionInfo, LogError> {
        let mut total = RetentionInfo::default();
        if self.config.retention_ms >= 0 {
            let cutoff = now.0.saturating_sub(self.config.retention_ms);
            let expired = |s: &Segment| {
                let ts = if s.max_timestamp.0 .0 >= 0 {
                    s.max_timestamp.0 .0
                } else {
                    s.modified_ms().unwrap_or(i64::MAX)
                };
                s.size > 0 && ts < cutoff
            };
            let n = self.segments.iter().take_while(|s| expired(s)).count();
            if n == self.segments.len() {
                self.mark_dirty()?;
                self.roll()?;
            }
            let mut left = n;
            let info = self.delete_leading(|_| {
                let go = left > 0;
                left = left.saturating_sub(1);
                go
            })?;
            total.deleted_segments += info.deleted_segments;
            total.deleted_bytes += info.deleted_bytes;
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            let info = self.delete_leading(|s| {
                let go = excess - s.size as i64 >= 0;
                if go {
                    excess -= s.size as i64;
                }
                go
            })?;
            total.deleted_segments += info.deleted_segments;
            total.deleted_bytes += info.deleted_bytes;
        }
        if total.deleted_segments > 0 {
            checkpoint::sync_dir(&self.dir)?;
            self.dir_synced = self.dir_changes;
        }
        total.log_start_offset = self.log_start;
        Ok(total)
    }

    /// Removes every batch from the one holding `offset` on (replica truncation, tests).
    /// Returns the new log end offset, which can be below `offset` when it fell mid-batch.
    pub fn truncate_to(&mut self, offset: Offset) -> Result<Offset, LogError> {
        if offset >= self.log_end_offset() {
            return Ok(self.log_end_offset());
        }
        if offset < self.log_start {
            return Err(self.out_of_range(offset));
        }
        self.mark_dirty()?;
        self.truncations += 1;
        while self.segments.len() > 1 && self.active().base >= offset {
            let seg = self.segments.pop().expect("more than one");
            seg.delete()?;
            self.dir_changes += 1;
        }
        let leo = self.active_mut().truncate_to(offset)?;
        if self.log_start > leo {
            self.log_start = leo;
            checkpoint::write(&self.dir, LOG_START_FILE, leo)?;
        }
        if self.recovery_point > leo {
            self.recovery_point = leo;
            checkpoint::write(&self.dir, RECOVERY_POINT_FILE, leo)?;
            self.checkpointed_segment = Some(self.active().base);
        }
        Ok(leo)
    }

    /// Whether `flush.messages` or `flush.ms` asks for an fsync now.
    pub fn needs_flush(&self, now: Timestamp) -> bool {
        if self.unflushed_records == 0 {
            return false;
        }
        self.config
            .flush_messages
            .is_some_and(|n| self.unflushed_records >= n)
            || self
                .config
                .flush_ms
                .is_some_and(|ms| now.0.saturating_sub(self.last_flush.0) >= ms as i64)
    }

    /// Records appended since the last flush.
    pub fn unflushed_records(&self) -> u64 {
        self.unflushed_records
    }

    /// fsyncs everything appended so far (one fsync covers every append since the last
    /// flush: group commit) and advances the recovery point. Equivalent to
    /// [`begin_flush`](Self::begin_flush), [`PendingFlush::sync`] and
    /// [`complete_flush`](Self::complete_flush) in a row.
    pub fn flush(&mut self) -> Result<(), LogError> {
        let pending = self.begin_flush()?;
        pending.sync()?;
        self.complete_flush(pending)
    }

    /// Prepares a flush of everything appended so far. The returned [`PendingFlush`] does
    /// the fsyncs in [`PendingFlush::sync`], which needs no access to the log: a broker can
    /// release the partition's lock while it runs, let more appends in, then call
    /// [`complete_flush`](Self::complete_flush) — group commit without blocking producers.
    pub fn begin_flush(&mut self) -> Result<PendingFlush, LogError> {
        let leo = self.log_end_offset();
        let mut files = Vec::new();
        if self.recovery_point < leo {
            let last = self.segments.len() - 1;
            for (i, seg) in self.segments.iter().enumerate() {
                if seg.next_offset <= self.recovery_point && i != last {
                    continue;
                }
                let handle = seg
                    .sync_handle()
                    .ctx(|| format!("duplicating handle of {}", seg.path("log").display()))?;
                files.push((seg.path("log"), handle));
                if i != last {
                    seg.write_indexes(false)?;
                    files.push((seg.path("index"), None));
                    files.push((seg.path("timeindex"), None));
                }
            }
        }
        Ok(PendingFlush {
            files,
            dir: (self.dir_changes > self.dir_synced).then(|| self.dir.clone()),
            dir_changes: self.dir_changes,
            truncations: self.truncations,
            upto: leo,
            records: self.unflushed_records,
        })
    }

    /// Records a flush whose [`PendingFlush::sync`] succeeded: advances the recovery point
    /// (to at most the current log end), and rewrites the recovery-point checkpoint when
    /// the recovery point moved into a new segment.
    pub fn complete_flush(&mut self, done: PendingFlush) -> Result<(), LogError> {
        let leo = self.log_end_offset();
        if done.truncations == self.truncations {
            self.recovery_point = self.recovery_point.max(done.upto.min(leo));
            self.unflushed_records = self.unflushed_records.saturating_sub(done.records);
        }
        self.last_flush = Timestamp::now();
        if done.dir.is_some() {
            self.dir_synced = self.dir_synced.max(done.dir_changes);
        }
        let last = self.segments.len() - 1;
        let rp = self.recovery_point;
        for seg in &mut self.segments[..last] {
            if seg.next_offset <= rp {
                seg.release_handle();
            }
        }
        let holder = self.segments[self.segment_index(rp)].base;
        if self.checkpointed_segment != Some(holder) {
            checkpoint::write(&self.dir, RECOVERY_POINT_FILE, rp)?;
            self.checkpointed_segment = Some(holder);
        }
        Ok(())
    }

    /// Replaces the configuration (takes effect on the next append / retention pass).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Closes the active segment's file handle (reopened on the next append) and drops the
    /// cached indexes of closed segments (reloaded on the next lookup). Lets a broker with
    /// many idle partitions keep few files open and little memory.
    pub fn release_handles(&mut self) {
        let last = self.segments.len() - 1;
        for seg in &mut self.segments[..last] {
            seg.drop_cached_indexes();
        }
        self.active_mut().release_handle();
    }

    /// Flushes, writes the indexes and recovery point, and leaves the clean-shutdown marker
    /// so the next open skips the recovery scan.
    pub fn close(mut self) -> Result<(), LogError> {
        self.flush()?;
        let a = self.active_mut();
        a.seal_time_index();
        a.write_indexes(true)?;
        a.release_handle();
        let leo = self.log_end_offset();
        checkpoint::write(&self.dir, RECOVERY_POINT_FILE, leo)?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        fs::File::create(&marker)
            .and_then(|f| f.sync_all())
            .ctx(|| format!("writing {}", marker.display()))?;
        checkpoint::sync_dir(&self.dir)
    }

    /// Bytes of `.log` data on disk.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.segments.iter().map(|s| s.base).collect()
    }
}
