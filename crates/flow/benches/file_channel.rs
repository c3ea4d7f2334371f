//! File channel benchmark (issue 9): durable commit throughput against the memory channel,
//! fsyncs per second, the disk's fsync cost, and replay time.
//!
//! `cargo bench -p flumen-flow --bench file_channel` (env: `BENCH_DIR` for the data
//! directory, default the system temp dir; `EVENTS` per run, default 2000000; `PRODUCERS`,
//! default 4; `REPLAY_MB`, default 256; `REPLAY_REPEAT`, how many times the replay is
//! measured, default 3; `BATCHES`, the batch sizes of the throughput runs, default
//! `100,1000,10000`, empty for none). Prints one line per measurement.

#![allow(missing_docs)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flumen_flow::channel::{MemoryChannel, MemoryChannelConfig};
use flumen_flow::file_channel::{self, FileChannelConfig};
use flumen_flow::Event;

fn env(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn file_config(dir: &Path) -> FileChannelConfig {
    FileChannelConfig {
        checkpoint_dir: dir.join("cp"),
        data_dirs: vec![dir.join("data")],
        capacity: 1_000_000,
        transaction_capacity: 10_000,
        minimum_required_space: 1 << 20,
        ..FileChannelConfig::default()
    }
}

/// `producers` tasks put `events` events of 100 bytes in batches of `batch`; one task
/// takes them in batches of `batch`. Returns the elapsed time.
async fn run(ch: Arc<MemoryChannel>, events: usize, batch: usize, producers: usize) -> Duration {
    let body = Bytes::from(vec![b'x'; 100]);
    let start = Instant::now();
    let per = events / producers / batch;
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let ch = ch.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                loop {
                    let mut tx = ch.transaction();
                    tx.put_all((0..batch).map(|_| Event::new(body.clone())))
                        .expect("put");
                    match tx.commit().await {
                        Ok(()) => break,
                        Err(e) if e.is_channel_full() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    let total = per * batch * producers;
    let taker = {
        let ch = ch.clone();
        tokio::spawn(async move {
            let mut got = 0;
            while got < total {
                let mut tx = ch.transaction();
                got += tx.take_batch(batch).await.expect("take");
                tx.commit().await.expect("commit take");
            }
        })
    };
    for t in tasks {
        t.await.expect("producer");
    }
    taker.await.expect("taker");
    start.elapsed()
}

fn fsync_cost(dir: &Path) -> Duration {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("probe");
    let n = 200;
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&[0u8; 4096]).expect("write");
        f.sync_data().expect("sync");
    }
    let d = start.elapsed() / n;
    let _ = std::fs::remove_file(&path);
    d
}

/// This process's user + system CPU seconds (from /proc/self/stat), to tell CPU cost from
/// waiting on a loaded machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let base: PathBuf = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = base.join(format!("flumen-file-channel-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("bench dir");
    let events = env("EVENTS", 2_000_000);
    let producers = env("PRODUCERS", 4);
    let replay_mb = env("REPLAY_MB", 256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "fsync cost (4 KiB write + fdatasync) in {}: {:?}",
        root.display(),
        fsync_cost(&root)
    );
    let batches: Vec<usize> = std::env::var("BATCHES")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    for batch in batches {
        for kind in ["memory", "file"] {
            let dir = root.join(format!("{kind}-{batch}"));
            let (ch, log) = rt.block_on(async {
                let conf = if kind == "file" {
                    file_config(&dir).into_channel_config()
                } else {
                    MemoryChannelConfig {
                        capacity: 1_000_000,
                        transaction_capacity: 10_000,
                        ..Default::default()
                    }
                };
                let ch = file_channel::open(kind, conf).await.expect("open");
                let log = ch.file_log().cloned();
                (ch, log)
            });
            let fsyncs0 = log
                .as_ref()
                .map_or(0, |l| l.stats.fsyncs.load(Ordering::Relaxed));
            let d = rt.block_on(run(ch.clone(), events, batch, producers));
            let fsyncs = log
                .as_ref()
                .map_or(0, |l| l.stats.fsyncs.load(Ordering::Relaxed))
                - fsyncs0;
            let secs = d.as_secs_f64();
            println!(
                "{kind:6} batch {batch:4} producers {producers}: {:>10.0} events/s {:>7.1} MB/s (100-byte bodies), {fsyncs} fsyncs = {:.0}/s, {:.0} events per fsync",
                events as f64 / secs,
                events as f64 * 100.0 / secs / 1e6,
                fsyncs as f64 / secs,
                if fsyncs > 0 { events as f64 / fsyncs as f64 } else { 0.0 },
            );
            drop(log);
            drop(ch);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    // Replay: REPLAY_MB of 1000-byte events left in the channel, then reopen.
    let dir = root.join("replay");
    let conf = FileChannelConfig {
        max_file_size: 256 << 20,
        capacity: 4_000_000,
        ..file_config(&dir)
    };
    let n = replay_mb * 1000;
    rt.block_on(async {
        let ch = file_channel::open("replay", conf.clone().into_channel_config())
            .await
            .expect("open");
        let body = Bytes::from(vec![b'r'; 1000]);
        for _ in 0..n / 1000 {
            let mut tx = ch.transaction();
            tx.put_all((0..1000).map(|_| Event::new(body.clone())))
                .expect("put");
            tx.commit().await.expect("commit");
        }
        ch.file_log()
            .expect("log")
            .checkpoint()
            .expect("checkpoint");
        // More after the checkpoint, as a crash would find.
        let mut tx = ch.transaction();
        tx.put_all((0..1000).map(|_| Event::new(body.clone())))
            .expect("put");
        tx.commit().await.expect("commit");
    });
    // Reopen as after a crash (the log is left as it was: open writes no checkpoint, so
    // every reopen replays the same), REPLAY_REPEAT times.
    for _ in 0..env("REPLAY_REPEAT", 3) {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let start = Instant::now();
        let cpu0 = cpu_seconds();
        let ch = rt.block_on(async {
            file_channel::open("replay", conf.clone().into_channel_config())
                .await
                .expect("reopen")
        });
        let ready = start.elapsed();
        let cpu = cpu_seconds() - cpu0;
        let first = rt.block_on(async {
            let mut tx = ch.transaction();
            let n = tx.take_batch(1000).await.expect("take");
            tx.rollback();
            n
        });
        let first_take = start.elapsed();
        let log = ch.file_log().expect("log");
        log.wait_loaded();
        let loaded = start.elapsed();
        let cpu_loaded = cpu_seconds() - cpu0;
        let s = &log.stats;
        let ms = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        println!(
            "replay: {} events ({} MB of bodies): ready (takes accepted) in {ready:.2?} ({cpu:.2} s of CPU; first pass {} ms, {} ms CPU); first take of {first} events at {first_take:.2?}; all events queued at {loaded:.2?} ({cpu_loaded:.2} s of CPU; second pass {} ms, {} ms CPU); load average {}",
            ch.len(),
            ch.len() / 1000,
            ms(&s.replay_scan_ms),
            ms(&s.replay_scan_cpu_ms),
            ms(&s.replay_load_ms),
            ms(&s.replay_load_cpu_ms),
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        );
        drop(ch);
    }
    let _ = std::fs::remove_dir_all(&root);
}
