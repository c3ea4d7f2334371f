//! Property test: random appends, reads, rolls, retention, DeleteRecords, truncation,
//! flushes and reopens (clean and unclean) against a simple in-memory model.

mod common;

use common::*;
use flumen_log::batch::BatchHeader;
use flumen_log::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
        ts: i64,
        batches: usize,
    },
    Read {
        at: u16,
        max_bytes: u32,
        bound: Option<u16>,
    },
    Roll,
    BeginFlush,
    CompleteFlush,
    RetainBytes(u16),
    RetainTime(i64),
    DeleteBefore(u16),
    Truncate(u16),
    Flush,
    Reopen {
        clean: bool,
    },
    /// Unclean stop that tears the tail of the active segment.
    TornTail(u16),
    /// Power loss that tears the tail of any segment not yet flushed (and so drops every
    /// later batch).
    TornSegment(u16, u16),
    TimeLookup(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1usize..6, 0usize..120, 0i64..2000, 1usize..3)
            .prop_map(|(records, value_len, ts, batches)| Op::Append { records, value_len, ts, batches }),
        4 => (any::<u16>(), 0u32..1500, proptest::option::of(any::<u16>()))
            .prop_map(|(at, max_bytes, bound)| Op::Read { at, max_bytes, bound }),
        1 => Just(Op::Roll),
        1 => (0u16..4000).prop_map(Op::RetainBytes),
        1 => (0i64..2500).prop_map(Op::RetainTime),
        1 => any::<u16>().prop_map(Op::DeleteBefore),
        1 => any::<u16>().prop_map(Op::Truncate),
        1 => Just(Op::Flush),
        1 => Just(Op::BeginFlush),
        1 => Just(Op::CompleteFlush),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => any::<u16>().prop_map(Op::TornTail),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Op::TornSegment(a, b)),
        2 => (0i64..2200).prop_map(Op::TimeLookup),
    ]
}

/// The model: batches as stored, and the log start offset.
#[derive(Default)]
struct Model {
    batches: Vec<Vec<u8>>,
    log_start: i64,
    end: i64,
}

impl Model {
    fn header(b: &[u8]) -> BatchHeader {
        BatchHeader::parse(b).unwrap()
    }
    /// Records (offset, timestamp) at or after the log start.
    fn records(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for b in &self.batches {
            let h = Model::header(b);
            for r in flumen_log::batch::Records::new(&h, b) {
                let r = r.unwrap();
                let o = h.base_offset + r.offset_delta as i64;
                if o >= self.log_start {
                    out.push((o, r.timestamp));
                }
            }
        }
        out
    }
    fn expected_read(&self, offset: i64, max_bytes: u32, limit: i64) -> Vec<u8> {
        let mut out = Vec::new();
        if offset >= limit {
            return out;
        }
        for b in &self.batches {
            let h = Model::header(b);
            if h.last_offset() < offset {
                continue;
            }
            if h.base_offset >= limit {
                break;
            }
            if !out.is_empty() && out.len() + b.len() > max_bytes as usize {
                break;
            }
            out.extend_from_slice(b);
        }
        out
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 150,
        retention_ms: -1,
        segment_index_bytes: 48,
        ..LogConfig::default()
    }
}

fn pick(sel: u16, lo: i64, hi: i64) -> i64 {
    // Mostly inside [lo, hi], sometimes just outside.
    let span = (hi - lo + 3).max(1);
    lo - 1 + (sel as i64 % span)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = scratch_dir();
    let mut log = Some(PartitionLog::open(dir.path(), config()).unwrap());
    let mut m = Model::default();
    let mut pending: Option<PendingFlush> = None;
    let mut truncated_since_begin = false;
    for op in ops {
        let l = log.as_mut().unwrap();
        match op {
            Op::Append {
                records,
                value_len,
                ts,
                batches,
            } => {
                let mut buf = Vec::new();
                for k in 0..batches {
                    buf.extend_from_slice(&batch(ts + k as i64, records, value_len));
                }
                let info = l
                    .append(&mut buf, AppendOptions { now: Timestamp(ts) })
                    .unwrap();
                prop_assert_eq!(info.first_offset, Offset(m.end));
                let mut pos = 0;
                while pos < buf.len() {
                    let h = Model::header(&buf[pos..]);
                    m.batches.push(buf[pos..pos + h.size].to_vec());
                    pos += h.size;
                }
                m.end = info.last_offset.0 + 1;
            }
            Op::Read {
                at,
                max_bytes,
                bound,
            } => {
                let offset = pick(at, m.log_start, m.end);
                let max_offset = bound.map(|b| Offset(pick(b, m.log_start, m.end)));
                let r = l.read(ReadOptions {
                    offset: Offset(offset),
                    max_bytes,
                    max_offset,
                });
                if offset < m.log_start || offset > m.end {
                    let out_of_range = matches!(r, Err(LogError::OffsetOutOfRange { .. }));
                    prop_assert!(out_of_range);
                } else {
                    let limit = max_offset.map_or(m.end, |o| o.0.min(m.end));
                    let f = r.unwrap();
                    prop_assert_eq!(f.records, m.expected_read(offset, max_bytes, limit));
                    prop_assert_eq!(f.high_watermark, Offset(m.end));
                    prop_assert_eq!(f.log_start_offset, Offset(m.log_start));
                }
            }
            Op::Roll => l.roll().unwrap(),
            Op::RetainBytes(limit) => {
                let mut cfg = config();
                cfg.retention_bytes = limit as i64;
                l.set_config(cfg);
                let before = l.size_bytes();
                let info = l.apply_retention(Timestamp(0)).unwrap();
                l.set_config(config());
                prop_assert_eq!(l.size_bytes(), before - info.deleted_bytes);
                apply_new_start(&mut m, l)?;
            }
            Op::RetainTime(now) => {
                let mut cfg = config();
                cfg.retention_ms = 100;
                l.set_config(cfg);
                l.apply_retention(Timestamp(now)).unwrap();
                l.set_config(config());
                apply_new_start(&mut m, l)?;
            }
            Op::DeleteBefore(sel) => {
                let target = pick(sel, m.log_start, m.end);
                let r = l.delete_records_before(Offset(target));
                if target > m.end || target < 0 {
                    prop_assert!(r.is_err());
                } else {
                    let start = r.unwrap();
                    prop_assert_eq!(start, Offset(target.max(m.log_start)));
                    m.log_start = start.0;
                    // Batches wholly below the new start may stay on disk (inside a segment) but
                    // reads never return them; the model keeps what reads can return.
                    m.batches
                        .retain(|b| Model::header(b).last_offset() >= m.log_start);
                }
            }
            Op::Truncate(sel) => {
                let target = pick(sel, m.log_start, m.end);
                let r = l.truncate_to(Offset(target));
                if target >= m.end {
                    prop_assert_eq!(r.unwrap(), Offset(m.end));
                } else if target < m.log_start {
                    prop_assert!(r.is_err());
                } else {
                    let new_end = r.unwrap();
                    let keep = m
                        .batches
                        .iter()
                        .take_while(|b| Model::header(b).last_offset() < target)
                        .count();
                    let want = Model::header(&m.batches[keep]).base_offset;
                    m.batches.truncate(keep);
                    prop_assert_eq!(new_end.0, want);
                    m.end = new_end.0;
                    m.log_start = m.log_start.min(m.end);
                    truncated_since_begin = true;
                }
            }
            Op::Flush => {
                l.flush().unwrap();
                prop_assert_eq!(l.recovery_point(), Offset(m.end));
            }
            Op::BeginFlush => {
                pending = Some(l.begin_flush().unwrap());
                truncated_since_begin = false;
            }
            Op::CompleteFlush => {
                if let Some(p) = pending.take() {
                    let upto = p.offset();
                    p.sync().unwrap();
                    let before = l.recovery_point();
                    l.complete_flush(p).unwrap();
                    let want = if truncated_since_begin {
                        before
                    } else {
                        before.max(upto.min(Offset(m.end)))
                    };
                    prop_assert_eq!(l.recovery_point(), want);
                }
            }
            Op::TornTail(sel) => {
                pending = None;
                let l = log.take().unwrap();
                let active = *l.segment_bases().last().unwrap();
                drop(l);
                let path = dir.path().join(format!("{:020}.log", active.0));
                let len = std::fs::metadata(&path).unwrap().len();
                // (When DeleteRecords moved the start past every batch, the model holds none;
                // then this is only an unclean reopen.)
                if len > 0 && !m.batches.is_empty() {
                    let last = m.batches.last().unwrap().len() as u64;
                    let cut = 1 + sel as u64 % last.min(len);
                    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    f.set_len(len - cut).unwrap();
                    let torn = m.batches.pop().unwrap();
                    m.end = Model::header(&torn).base_offset;
                    m.log_start = m.log_start.min(m.end);
                }
                log = Some(PartitionLog::open(dir.path(), config()).unwrap());
            }
            Op::TornSegment(which, sel) => {
                pending = None;
                let l = log.take().unwrap();
                let bases = l.segment_bases();
                let rp = l.recovery_point();
                let end = l.log_end_offset();
                drop(l);
                // Segments (base, end) holding unflushed data whose last batch the model has.
                let candidates: Vec<(Offset, Offset)> = bases
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| (b, bases.get(i + 1).copied().unwrap_or(end)))
                    .filter(|&(b, e)| e > b && e > rp && e.0 > m.log_start)
                    .collect();
                if !candidates.is_empty() {
                    let (base, seg_end) = candidates[which as usize % candidates.len()];
                    let idx = m
                        .batches
                        .iter()
                        .position(|b| Model::header(b).last_offset() == seg_end.0 - 1)
                        .expect("the segment's last batch is in the model");
                    let last = m.batches[idx].len() as u64;
                    let path = dir.path().join(format!("{:020}.log", base.0));
                    let len = std::fs::metadata(&path).unwrap().len();
                    let cut = 1 + sel as u64 % last;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(len - cut)
                        .unwrap();
                    m.end = Model::header(&m.batches[idx]).base_offset;
                    m.batches.truncate(idx);
                    m.log_start = m.log_start.min(m.end);
                }
                log = Some(PartitionLog::open(dir.path(), config()).unwrap());
            }
            Op::Reopen { clean } => {
                pending = None;
                let l = log.take().unwrap();
                if clean {
                    l.close().unwrap();
                } else {
                    drop(l);
                }
                log = Some(PartitionLog::open(dir.path(), config()).unwrap());
            }
            Op::TimeLookup(ts) => {
                let got = l.offset_for_timestamp(Timestamp(ts)).unwrap();
                let want = m
                    .records()
                    .into_iter()
                    .find(|&(_, t)| t >= ts)
                    .map(|(o, t)| (Offset(o), Timestamp(t)));
                prop_assert_eq!(got, want, "lookup {}", ts);
            }
        }
        let l = log.as_ref().unwrap();
        prop_assert_eq!(l.log_end_offset(), Offset(m.end));
        prop_assert_eq!(l.log_start_offset(), Offset(m.log_start));
        prop_assert!(l.log_start_offset() <= l.log_end_offset());
        prop_assert!(l.recovery_point() <= l.log_end_offset());
        let all = l
            .read(ReadOptions {
                offset: Offset(m.log_start),
                max_bytes: u32::MAX,
                max_offset: None,
            })
            .unwrap();
        prop_assert_eq!(all.records, m.expected_read(m.log_start, u32::MAX, m.end));
    }
    Ok(())
}

/// After retention: the log's new start must be a batch boundary; drop model batches below.
fn apply_new_start(m: &mut Model, l: &PartitionLog) -> Result<(), TestCaseError> {
    let start = l.log_start_offset().0;
    prop_assert!(start >= m.log_start);
    if start > m.log_start {
        let boundary = start == m.end
            || m.batches
                .iter()
                .any(|b| Model::header(b).base_offset == start);
        prop_assert!(boundary, "new log start {} is not a batch boundary", start);
        m.batches.retain(|b| Model::header(b).base_offset >= start);
        m.log_start = start;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 2000, ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
