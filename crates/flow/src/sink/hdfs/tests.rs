//! Tests of the hdfs sink against the local file system and a store that fails on demand.

use std::sync::atomic::{AtomicBool, Ordering};

use super::storage::LocalStorage;
use super::*;
use crate::channel::MemoryChannelConfig;
use crate::config::Context;

fn quick_channel() -> Arc<MemoryChannel> {
    MemoryChannelConfig {
        keep_alive: Duration::from_millis(10),
        ..MemoryChannelConfig::default()
    }
    .build("c1")
}

fn channel_with(events: Vec<Event>) -> Arc<MemoryChannel> {
    let ch = quick_channel();
    let mut tx = ch.transaction();
    tx.put_all(events).unwrap();
    futures_commit(tx);
    ch
}

fn futures_commit(tx: crate::channel::Transaction) {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async { tx.commit().await.unwrap() })
    });
}

fn event(body: &str, ts: i64) -> Event {
    let mut e = Event::new(body.to_string());
    e.headers.insert("timestamp".into(), ts.to_string());
    e
}

fn config(pairs: &[(&str, &str)]) -> HdfsConfig {
    HdfsConfig::from_context(&Context::from_pairs("sink k1", pairs)).unwrap()
}

/// Every file under `dir` (relative path → content).
fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

async fn drain(sink: &mut HdfsSink) {
    for _ in 0..1000 {
        if sink.process().await.unwrap() == Status::Backoff {
            return;
        }
    }
    panic!("sink did not drain");
}

// 2012-06-12 18:34:34.123 UTC
const TS: i64 = 1339526074123;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_lesson_layout_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flume");
    let path = format!("{}/%y-%m-%d/%H%M/%S", root.display());
    let c = config(&[
        ("hdfs.path", &path),
        ("hdfs.filePrefix", "events-"),
        ("hdfs.round", "true"),
        ("hdfs.roundValue", "10"),
        ("hdfs.roundUnit", "minute"),
        ("hdfs.timeZone", "UTC"),
        ("hdfs.fileType", "DataStream"),
    ]);
    let events: Vec<Event> = (0..25)
        .map(|i| event(&format!("line {i}"), TS + i))
        .collect();
    let ch = channel_with(events);
    let mut sink = c.build("k1", ch.clone()).unwrap();
    drain(&mut sink).await;
    // While open, the newest file carries the in-use suffix.
    assert!(files(&root).iter().any(|(n, _)| n.ends_with(".tmp")));
    sink.stop().await;
    let got = files(&root);
    // rollCount = 10 (Flume's default): 10 + 10 + 5 events, consecutive counters.
    assert_eq!(got.len(), 3, "{got:?}");
    let mut counters = Vec::new();
    let mut all = String::new();
    for (name, body) in &got {
        let (dir, file) = name.rsplit_once('/').unwrap();
        assert_eq!(dir, "12-06-12/1830/00");
        let n: i64 = file.strip_prefix("events-.").unwrap().parse().unwrap();
        counters.push(n);
        all.push_str(std::str::from_utf8(body).unwrap());
    }
    assert_eq!(counters[1], counters[0] + 1);
    assert_eq!(counters[2], counters[0] + 2);
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort_by_key(|l| l[5..].parse::<u32>().unwrap());
    let want: Vec<String> = (0..25).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want);
    assert_eq!(ch.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_file_and_suffixes() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&[
        ("hdfs.path", dir.path().to_str().unwrap()),
        ("hdfs.fileSuffix", ".seq"),
        ("hdfs.inUsePrefix", "_"),
        ("hdfs.rollCount", "0"),
        ("hdfs.rollSize", "0"),
    ]);
    let ch = channel_with(vec![event("a", 5), event("bc", 6)]);
    let mut sink = c.build("k1", ch).unwrap();
    drain(&mut sink).await;
    let open = files(dir.path());
    assert!(open[0].0.starts_with("_FlumeData.") && open[0].0.ends_with(".seq.tmp"));
    sink.stop().await;
    let got = files(dir.path());
    assert_eq!(got.len(), 1);
    assert!(got[0].0.starts_with("FlumeData.") && got[0].0.ends_with(".seq"));
    let b = &got[0].1;
    assert_eq!(&b[..4], b"SEQ\x06");
    // First record after the 16-byte sync of the header: len 13, key 8, ts 5, "a".
    let hdr_end = b.windows(4).position(|w| w == [0, 0, 0, 13]).unwrap();
    assert_eq!(&b[hdr_end + 8..hdr_end + 16], &5i64.to_be_bytes());
}

/// A store whose writes fail (after writing half of the data) while `fail` is set.
#[derive(Debug, Default)]
struct Flaky {
    inner: LocalStorage,
    fail: Arc<AtomicBool>,
}

struct FlakyFile {
    inner: Box<dyn OutputFile>,
    fail: Arc<AtomicBool>,
}

impl OutputFile for FlakyFile {
    fn write(&mut self, data: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            if self.fail.load(Ordering::SeqCst) {
                let half = data[..data.len() / 2].to_vec();
                self.inner.write(half).await?;
                return Err(io::Error::other("injected failure"));
            }
            self.inner.write(data).await
        })
    }
    fn close(self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
        self.inner.close()
    }
}

impl Storage for Flaky {
    fn create<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Box<dyn OutputFile>>> {
        Box::pin(async move {
            let inner = self.inner.create(path).await?;
            Ok(Box::new(FlakyFile {
                inner,
                fail: self.fail.clone(),
            }) as Box<dyn OutputFile>)
        })
    }
    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if self.fail.load(Ordering::SeqCst) {
                return Err(io::Error::other("injected failure"));
            }
            self.inner.rename(from, to).await
        })
    }
    fn len<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(async move {
            if self.fail.load(Ordering::SeqCst) {
                return Err(io::Error::other("injected failure"));
            }
            self.inner.len(path).await
        })
    }
    fn truncate<'a>(&'a self, path: &'a str, len: u64) -> BoxFuture<'a, io::Result<()>> {
        self.inner.truncate(path, len)
    }
    fn list_files<'a>(
        &'a self,
        dir: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, io::Result<Vec<String>>> {
        self.inner.list_files(dir, limit)
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_writes_lose_nothing_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&[
        ("hdfs.path", dir.path().to_str().unwrap()),
        ("hdfs.fileType", "DataStream"),
        ("hdfs.rollCount", "0"),
        ("hdfs.rollSize", "0"),
        ("hdfs.batchSize", "10"),
    ]);
    let ch = quick_channel();
    let flaky = Arc::new(Flaky::default());
    let fail = flaky.fail.clone();
    let mut sink = c.build_with_store("k1", ch.clone(), flaky);
    let mut next = 0;
    let mut put = |n: usize| {
        let mut tx = ch.transaction();
        tx.put_all((0..n).map(|i| event(&format!("e{}", next + i), TS)))
            .unwrap();
        next += n;
        futures_commit(tx);
    };
    put(10);
    assert_eq!(sink.process().await.unwrap(), Status::Ready);
    put(10);
    fail.store(true, Ordering::SeqCst);
    assert!(
        sink.process().await.is_err(),
        "the injected failure fails the batch"
    );
    assert_eq!(ch.len(), 10, "the failed batch is back in the channel");
    assert!(
        sink.process().await.is_err(),
        "repair fails while the store is down"
    );
    fail.store(false, Ordering::SeqCst);
    drain(&mut sink).await;
    put(5);
    drain(&mut sink).await;
    sink.stop().await;
    let got = files(dir.path());
    assert_eq!(got.len(), 2, "the repaired file and the next one: {got:?}");
    let all: String = got
        .iter()
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
        .collect();
    let mut lines: Vec<u32> = all.lines().map(|l| l[1..].parse().unwrap()).collect();
    lines.sort();
    assert_eq!(lines, (0..25).collect::<Vec<_>>(), "{all}");
    assert!(got.iter().all(|(n, _)| !n.ends_with(".tmp")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_are_renamed_and_timestamps_policies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    std::fs::create_dir_all(root.join("12/1830")).unwrap();
    std::fs::write(root.join("12/1830/events-.123.tmp"), "old\n").unwrap();
    std::fs::write(root.join("12/1830/other.tmp"), "not ours\n").unwrap();
    let path = format!("{}/%y/%H%M", root.display());
    let pairs = |policy: &'static str| {
        vec![
            ("hdfs.path".to_string(), path.clone()),
            ("hdfs.filePrefix".into(), "events-".into()),
            ("hdfs.fileType".into(), "DataStream".into()),
            ("hdfs.timeZone".into(), "UTC".into()),
            ("hdfs.round".into(), "true".into()),
            ("hdfs.roundValue".into(), "10".into()),
            ("hdfs.roundUnit".into(), "minute".into()),
            ("hdfs.missingTimestampPolicy".into(), policy.to_string()),
        ]
    };
    let mk = |p: Vec<(String, String)>| {
        let v: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        config(&v)
    };
    // retry (Flume's behaviour): the batch fails and stays in the channel.
    let ch = channel_with(vec![event("ok", TS), Event::new("no timestamp")]);
    let mut sink = mk(pairs("retry")).build("k1", ch.clone()).unwrap();
    let err = sink.process().await.unwrap_err().to_string();
    assert!(err.contains("Expected timestamp"), "{err}");
    assert_eq!(ch.len(), 2);
    assert!(
        root.join("12/1830/events-.123").exists(),
        "leftover renamed"
    );
    assert!(
        root.join("12/1830/other.tmp").exists(),
        "not ours: untouched"
    );
    sink.stop().await;
    // deadLetter: the event goes aside and the rest proceeds.
    let mut sink = mk(pairs("deadLetter")).build("k1", ch.clone()).unwrap();
    drain(&mut sink).await;
    sink.stop().await;
    let got = files(&root);
    let dead: Vec<_> = got
        .iter()
        .filter(|(n, _)| n.starts_with("_deadletter/events-."))
        .collect();
    assert_eq!(dead.len(), 1, "{got:?}");
    assert_eq!(dead[0].1, b"no timestamp\n");
    assert_eq!(ch.len(), 0);
}

#[tokio::test]
async fn a_bucket_opened_again_in_the_same_millisecond_gets_a_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&[("hdfs.path", dir.path().to_str().unwrap())]);
    let mut sink = c.build_with_store("k1", quick_channel(), Arc::new(LocalStorage));
    let bucket = || BucketWriter {
        dir: "d".into(),
        prefix: "p".into(),
        counter: 1_000,
        file: None,
        last_write: Instant::now(),
        last_used: 0,
    };
    // The same bucket discarded (failed batch) and opened again with the same clock value.
    let first = sink.new_file(&mut bucket());
    let second = sink.new_file(&mut bucket());
    assert_ne!(first.final_path, second.final_path);
    assert_ne!(first.tmp_path, second.tmp_path);
}
