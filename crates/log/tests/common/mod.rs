//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

use flumen_log::batch::{build_batch, BatchHeader};
use flumen_log::{AppendOptions, Offset, PartitionLog, ReadOptions, Timestamp};

/// A batch of `n` records of `value_len` bytes, timestamps from `ts`.
pub fn batch(ts: i64, n: usize, value_len: usize) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..n)
        .map(|i| vec![b'a' + (i % 26) as u8; value_len])
        .collect();
    let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
    build_batch(ts, &refs)
}

/// Appends a batch at time `now`, returns (first, last).
pub fn append(log: &mut PartitionLog, ts: i64, n: usize, value_len: usize) -> (Offset, Offset) {
    let mut b = batch(ts, n, value_len);
    let info = log
        .append(&mut b, AppendOptions { now: Timestamp(ts) })
        .unwrap();
    (info.first_offset, info.last_offset)
}

/// Splits a read result into batch headers.
pub fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).expect("whole batch");
        pos += h.size;
        out.push(h);
    }
    assert_eq!(pos, bytes.len(), "read returned a partial batch");
    out
}

/// Reads everything from `from` to the end, batch by batch; returns (base, last) pairs.
pub fn read_all(log: &PartitionLog, from: Offset) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut next = from;
    for _ in 0..100_000 {
        let f = log
            .read(ReadOptions {
                offset: next,
                max_bytes: 1 << 20,
                max_offset: None,
            })
            .unwrap();
        if f.records.is_empty() {
            break;
        }
        for h in headers(&f.records) {
            out.push((h.base_offset, h.last_offset()));
            next = Offset(h.last_offset() + 1);
        }
    }
    out
}
