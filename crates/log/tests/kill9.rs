//! Reopening after `kill -9` of a writer process keeps every batch that `append` reported.
//!
//! The test re-executes its own binary (`std::env::current_exe()`) with `FLUMEN_LOG_WRITER_DIR`
//! set; in that mode the test function becomes a writer that appends forever and prints
//! `ACKED <first> <last>` after each append returns. The parent kills it with SIGKILL by pid,
//! reads every ack line it printed, and reopens the log.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use flumen_log::*;

const WRITER_ENV: &str = "FLUMEN_LOG_WRITER_DIR";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        flush_messages: Some(500),
        ..LogConfig::default()
    }
}

/// Writer mode: append until killed (bounded to 60 s and 1,000,000 batches in case the
/// parent died).
fn writer(dir: &str) {
    let mut log = PartitionLog::open(std::path::Path::new(dir), config()).unwrap();
    let start = Instant::now();
    for i in 0..1_000_000u64 {
        if start.elapsed() > Duration::from_secs(60) {
            break;
        }
        let (first, last) = append(
            &mut log,
            1_000_000 + i as i64,
            1 + (i % 5) as usize,
            20 + (i % 300) as usize,
        );
        if log.needs_flush(Timestamp::now()) {
            log.flush().unwrap();
        }
        println!("\nACKED {} {}", first.0, last.0);
    }
}

#[test]
fn kill_9_keeps_every_acknowledged_batch() {
    if let Ok(dir) = std::env::var(WRITER_ENV) {
        writer(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked_end = Offset(0);
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill_9_keeps_every_acknowledged_batch",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acks: Vec<(i64, i64)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let want = 300 + 700 * round;
        while acks.len() < want && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.rfind("ACKED ").map(|i| &line[i + 6..]) {
                        let mut it = rest.split(' ').map(|s| s.parse::<i64>().unwrap());
                        acks.push((it.next().unwrap(), it.next().unwrap()));
                    }
                }
                _ => break,
            }
        }
        // SIGKILL by pid (Child::kill sends SIGKILL on Unix).
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // Acks already printed before the kill count too.
        for line in lines.map_while(Result::ok) {
            if let Some(rest) = line.rfind("ACKED ").map(|i| &line[i + 6..]) {
                let mut it = rest.split(' ').map(|s| s.parse::<i64>());
                if let (Some(Ok(a)), Some(Ok(b))) = (it.next(), it.next()) {
                    acks.push((a, b));
                }
            }
        }
        child.wait().unwrap();
        assert!(
            acks.len() >= want.min(50),
            "round {round}: writer acknowledged only {} batches",
            acks.len()
        );
        assert_eq!(
            acks[0].0, acked_end.0,
            "round {round}: writer resumed at the old end"
        );
        let log = PartitionLog::open(dir.path(), config()).unwrap();
        let last = acks.last().unwrap().1;
        assert!(
            log.log_end_offset().0 > last,
            "round {round}: end {} but {last} was acked",
            log.log_end_offset()
        );
        let read = read_all(&log, Offset(0));
        let bases: std::collections::HashSet<(i64, i64)> = read.iter().copied().collect();
        for a in &acks {
            assert!(bases.contains(a), "round {round}: acked batch {a:?} lost");
        }
        acked_end = log.log_end_offset();
        drop(log);
    }
}
