//! Storage-engine benchmarks (issue 2 §4). Run through `bench/log.sh`, which also measures
//! `dd` on the same file system and prints the ratios. Data lives in a temporary directory
//! under `FLUMEN_BENCH_DIR` (default: the system temp dir) and is deleted afterwards.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use flumen_log::batch::build_batch;
use flumen_log::{AppendOptions, LogConfig, Offset, PartitionLog, ReadOptions, Timestamp};

const MIB: usize = 1 << 20;
const GIB: u64 = 1 << 30;

fn bench_root() -> PathBuf {
    std::env::var_os("FLUMEN_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("flumen-log-bench-")
        .tempdir_in(bench_root())
        .expect("bench temp dir")
}

/// A valid uncompressed batch of about `size` bytes made of 16 KiB records (or one record
/// for small sizes).
fn batch_of(size: usize, ts: i64) -> Vec<u8> {
    let record = (16 * 1024).min(size);
    let n = (size / record).max(1);
    let value = vec![0x5au8; record - 80];
    let values: Vec<&[u8]> = (0..n).map(|_| value.as_slice()).collect();
    build_batch(ts, &values)
}

fn config() -> LogConfig {
    LogConfig {
        max_message_bytes: 8 << 20,
        ..LogConfig::default()
    }
}

/// Like `dd bs=<batch> count=<n>` into a new file: each iteration opens a fresh log,
/// appends `total` bytes of `batch` (fsyncing each append if `sync`) and is timed up to the
/// last append; the log is deleted outside the timed region, before its pages reach the disk.
fn timed_fresh_log(batch: &mut [u8], total: u64, iters: u64, sync: bool) -> Duration {
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        let dir = scratch();
        let mut log = PartitionLog::open(dir.path(), config()).unwrap();
        let n = total / batch.len() as u64;
        let t = Instant::now();
        for _ in 0..n {
            log.append(batch, AppendOptions { now: Timestamp(1) })
                .unwrap();
            if sync {
                log.flush().unwrap();
            }
        }
        elapsed += t.elapsed();
        drop(log);
        drop(dir);
    }
    elapsed
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, size, total, sync) in [
        ("page_cache/1MiB", MIB, GIB, false),
        ("page_cache/16KiB", 16 * 1024, GIB, false),
        ("fsync_each/1MiB", MIB, 128 * MIB as u64, true),
    ] {
        let mut batch = batch_of(size, 1);
        let n = total / batch.len() as u64;
        g.throughput(Throughput::Bytes(n * batch.len() as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|iters| timed_fresh_log(&mut batch, total, iters, sync))
        });
    }
    g.finish();
}

/// Fills a log with `total` bytes of batches of `batch_size`, timestamps = batch index.
fn fill(dir: &std::path::Path, cfg: LogConfig, total: u64, batch_size: usize) -> PartitionLog {
    let mut log = PartitionLog::open(dir, cfg).unwrap();
    let template = batch_of(batch_size, 0);
    let mut i = 0i64;
    while log.size_bytes() + template.len() as u64 <= total {
        let mut b = batch_of(batch_size, i);
        log.append(&mut b, AppendOptions { now: Timestamp(1) })
            .unwrap();
        i += 1;
    }
    log
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let dir = scratch();
    let log = fill(
        dir.path(),
        LogConfig {
            max_message_bytes: 8 << 20,
            ..LogConfig::default()
        },
        GIB,
        MIB,
    );
    g.throughput(Throughput::Bytes(log.size_bytes()));
    g.bench_function("sequential_1GiB_warm", |b| {
        b.iter(|| {
            let mut next = Offset(0);
            let mut bytes = 0usize;
            loop {
                let f = log
                    .read(ReadOptions {
                        offset: next,
                        max_bytes: MIB as u32,
                        max_offset: None,
                    })
                    .unwrap();
                if f.records.is_empty() {
                    break;
                }
                bytes += f.records.len();
                // The last batch's last offset + 1 (header fields at 0 and 23).
                let mut pos = 0;
                while pos < f.records.len() {
                    let h = flumen_log::batch::BatchHeader::parse(&f.records[pos..]).unwrap();
                    next = Offset(h.last_offset() + 1);
                    pos += h.size;
                }
            }
            bytes
        })
    });
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let dir = scratch();
    let cfg = LogConfig {
        max_message_bytes: 8 << 20,
        ..LogConfig::default()
    };
    let log = fill(dir.path(), cfg.clone(), GIB, MIB);
    let size = log.size_bytes();
    drop(log); // unclean: no marker, no recovery point, so every open scans everything
    g.throughput(Throughput::Bytes(size));
    g.bench_function("scan_1GiB_unclean", |b| {
        b.iter(|| {
            let log = PartitionLog::open(dir.path(), cfg.clone()).unwrap();
            assert_eq!(log.size_bytes(), size);
            log.log_end_offset()
        })
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let dir = scratch();
    // A full 1 GiB segment of 4 KiB batches (one index entry every 4 KiB).
    let log = fill(dir.path(), LogConfig::default(), GIB - 8192, 4096);
    assert_eq!(log.segment_count(), 1);
    let end = log.log_end_offset().0;
    let batches = end; // one record per batch
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Floor: one positioned read of a batch header from the same (cached) file.
    let file = std::fs::File::open(dir.path().join(format!("{:020}.log", 0))).unwrap();
    let len = log.size_bytes();
    g.bench_function("pread_61_bytes_baseline", |b| {
        use std::os::unix::fs::FileExt;
        let mut hb = [0u8; 61];
        b.iter(|| {
            let pos = rand() % (len - 61);
            file.read_exact_at(&mut hb, pos).unwrap();
            hb[0]
        })
    });
    g.bench_function("offset_in_full_1GiB_segment", |b| {
        b.iter(|| {
            let o = (rand() % end as u64) as i64;
            log.lookup_offset(Offset(o)).unwrap()
        })
    });
    g.bench_function("timestamp_in_full_1GiB_segment", |b| {
        b.iter(|| {
            let t = (rand() % batches as u64) as i64;
            log.offset_for_timestamp(Timestamp(t)).unwrap()
        })
    });
    drop(log);
    drop(dir);
    // The harder case: batches of 16 records of 100 bytes (~1.9 KB), so only every third
    // batch has an index entry and a timestamp lookup must find a record inside a batch.
    let dir = scratch();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let value = [0x5au8; 100];
    let values: Vec<&[u8]> = vec![&value; 16];
    let mut i = 0i64;
    while log.size_bytes() < 256 << 20 {
        let mut b = build_batch(16 * i, &values);
        log.append(&mut b, AppendOptions { now: Timestamp(1) })
            .unwrap();
        i += 1;
    }
    let end = log.log_end_offset().0;
    g.bench_function("offset_16_record_batches_256MiB", |b| {
        b.iter(|| {
            let o = (rand() % end as u64) as i64;
            log.lookup_offset(Offset(o)).unwrap()
        })
    });
    g.bench_function("timestamp_16_record_batches_256MiB", |b| {
        b.iter(|| {
            let t = (rand() % end as u64) as i64;
            log.offset_for_timestamp(Timestamp(t)).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, append, read, recovery, lookup);
criterion_main!(benches);
