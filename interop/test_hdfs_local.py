"""The seed's second Flume lesson, flumelogs.conf (spooldir -> memory -> hdfs), run unchanged
except that the spool directory and the target root are moved into the test folder. With no
Hadoop around, paths without a scheme go to the local disk."""
import os
import pathlib
import shutil
import time

from agent_helpers import Agent, wait_until

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SEED_CONF = EXAMPLES / "flumelogs.conf"
SEED_LOG = EXAMPLES / "access_log_small.txt"


def flumelogs_conf(spool: pathlib.Path, root: pathlib.Path, extra: str = "") -> str:
    text = SEED_CONF.read_text()
    assert "/home/maria_dev/spool" in text and "/user/maria_dev/flume/" in text
    text = text.replace("/home/maria_dev/spool", str(spool))
    text = text.replace("/user/maria_dev/flume/", f"{root}/")
    return text + extra


def bucket(t: float) -> str:
    """yy-mm-dd/HHM0/00 of a local time, rounded down to 10 minutes (hdfs.round*)."""
    lt = time.localtime(t)
    return f"{lt.tm_year % 100:02d}-{lt.tm_mon:02d}-{lt.tm_mday:02d}/{lt.tm_hour:02d}{lt.tm_min // 10}0/00"


def output_files(root: pathlib.Path):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def read_vint(b: bytes, i: int):
    """Hadoop's WritableUtils.readVLong: (value, next index)."""
    first = b[i] - 256 if b[i] > 127 else b[i]
    if first >= -112:
        return first, i + 1
    neg = first < -120
    n = (-119 - first) if neg else (-111 - first)
    v = int.from_bytes(b[i + 1:i + n], "big")
    return (~v if neg else v), i + n


def sequence_file_records(data: bytes):
    """(key, value) records of an uncompressed Hadoop SequenceFile (version 6) with a
    LongWritable key and a BytesWritable or Text value, checked field by field."""
    assert data[:4] == b"SEQ\x06", data[:4]
    i = 4
    names = []
    for _ in range(2):
        n, i = read_vint(data, i)
        names.append(data[i:i + n].decode())
        i += n
    assert names[0] == "org.apache.hadoop.io.LongWritable", names
    assert data[i:i + 2] == b"\x00\x00", "not compressed"
    i += 2
    assert int.from_bytes(data[i:i + 4], "big") == 0, "no metadata"
    i += 4
    sync = data[i:i + 16]
    i += 16
    out = []
    while i < len(data):
        rec_len = int.from_bytes(data[i:i + 4], "big", signed=True)
        i += 4
        if rec_len == -1:
            assert data[i:i + 16] == sync
            i += 16
            continue
        key_len = int.from_bytes(data[i:i + 4], "big")
        assert key_len == 8
        key = int.from_bytes(data[i + 4:i + 12], "big", signed=True)
        value = data[i + 12:i + 4 + rec_len]
        if names[1] == "org.apache.hadoop.io.BytesWritable":
            assert int.from_bytes(value[:4], "big") == len(value) - 4
            value = value[4:]
        else:
            n, j = read_vint(value, 0)
            value = value[j:]
            assert len(value) == n
        out.append((key, value))
        i += 4 + rec_len
    assert i == len(data)
    return out


def counter_of(p: pathlib.Path) -> int:
    return int(p.name.split(".")[1])


def test_flumelogs_lesson_on_local_disk(flumen_bin, tmp_path):
    env_dir = os.environ.pop("HADOOP_CONF_DIR", None)
    spool, root = tmp_path / "spool", tmp_path / "flume"
    spool.mkdir()
    agent = Agent(flumen_bin, tmp_path, flumelogs_conf(spool, root))
    if env_dir is not None:
        os.environ["HADOOP_CONF_DIR"] = env_dir
    try:
        agent.wait_log("Agent started.")
        before = time.time()
        # cp access_log_small.txt spool/fred.txt, as the lesson does (copy then rename in).
        shutil.copy(SEED_LOG, tmp_path / "fred.txt")
        os.rename(tmp_path / "fred.txt", spool / "fred.txt")
        want = SEED_LOG.read_bytes()
        wait_until(lambda: (spool / "fred.txt.COMPLETED").exists(), timeout=60, what="spool file renamed")
        # SequenceFile records are larger than the lines: all bytes are in when the output
        # is at least as big as the input.
        wait_until(lambda: sum(p.stat().st_size for p in output_files(root)) >= len(want),
                   timeout=60, what="all events in the target folder")
        time.sleep(0.5)
        after = time.time()
    finally:
        assert agent.stop() == 0
    files = output_files(root)
    assert files, agent.text()
    assert not [p for p in files if p.name.endswith(".tmp")], f"in-use files left: {files}"
    buckets = {bucket(before), bucket(after)}
    for p in files:
        rel = p.relative_to(root)
        assert str(rel.parent) in buckets, rel
        assert p.name.startswith("events-.") and p.name[len("events-."):].isdigit(), p.name
    # The lesson keeps Flume's default fileType, SequenceFile: one record per line, keyed by
    # the timestamp header. Each file holds at most hdfs.rollCount (10) events, and the files
    # in counter order are the input.
    files.sort(key=counter_of)
    records = [sequence_file_records(p.read_bytes()) for p in files]
    assert all(1 <= len(r) <= 10 for r in records), [len(r) for r in records]
    keys = [k for r in records for k, _ in r]
    assert all(before * 1000 - 1000 <= k <= after * 1000 + 1000 for k in keys), keys
    assert b"".join(v + b"\n" for r in records for _, v in r) == want


def test_missing_timestamp_dead_letter(flumen_bin, tmp_path):
    """The interceptor removed so events have no timestamp:
    hdfs.missingTimestampPolicy = deadLetter routes them aside with a clear error."""
    spool, root = tmp_path / "spool", tmp_path / "flume"
    spool.mkdir()
    conf = flumelogs_conf(spool, root, "a1.sinks.k1.hdfs.missingTimestampPolicy = deadLetter\n"
                          "a1.sinks.k1.hdfs.fileType = DataStream\n")
    conf = conf.replace("a1.sources.r1.interceptors = timestampInterceptor\n", "")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_log("Agent started.")
        shutil.copy(SEED_LOG, spool / "fred.txt")
        want = SEED_LOG.read_bytes()
        dead = root / "_deadletter"
        wait_until(lambda: sum(p.stat().st_size for p in output_files(dead)) >= len(want),
                   timeout=60, what="events in the dead-letter folder")
        log = agent.wait_log("Expected timestamp in the Flume event headers")
        # Rate-limited: one error for 39 events.
        assert log.count("Expected timestamp in the Flume event headers") == 1, log
    finally:
        assert agent.stop() == 0
    files = sorted(output_files(dead), key=counter_of)
    assert b"".join(p.read_bytes() for p in files) == want


def test_avro_event_files_read_by_the_avro_library(flumen_bin, tmp_path):
    """serializer = avro_event in the hdfs sink (DataStream) and in file_roll (they share the
    encoder; file_roll with sink.codeC = gzip too): Avro's own reader gets every event back."""
    import gzip

    from avro.datafile import DataFileReader
    from avro.io import DatumReader

    out_hdfs, out_roll, out_gz = tmp_path / "hdfs", tmp_path / "roll", tmp_path / "gz"
    out_roll.mkdir()
    out_gz.mkdir()
    total = 500
    conf = f"""
a1.sources = r1
a1.channels = c1 c2 c3
a1.sinks = k1 k2 k3
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 50
a1.sources.r1.totalEvents = {total}
a1.sources.r1.channels = c1 c2 c3
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.channels.c3.type = memory
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {out_hdfs}
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.fileSuffix = .avro
a1.sinks.k1.hdfs.rollCount = 0
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.serializer = avro_event
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c2
a1.sinks.k2.sink.directory = {out_roll}
a1.sinks.k2.sink.rollInterval = 0
a1.sinks.k2.sink.serializer = avro_event
a1.sinks.k3.type = file_roll
a1.sinks.k3.channel = c3
a1.sinks.k3.sink.directory = {out_gz}
a1.sinks.k3.sink.rollInterval = 0
a1.sinks.k3.sink.codeC = gzip
"""
    want = [str(i).encode() for i in range(total)]

    def events(path):
        with DataFileReader(open(path, "rb"), DatumReader()) as r:
            return [d["body"] for d in r]

    def hdfs_done():
        files = output_files(out_hdfs)  # still in use (.avro.tmp) until the agent stops
        try:
            return len(files) == 1 and len(events(files[0])) == total
        except Exception:
            return False

    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_log("Agent started.")
        wait_until(hdfs_done, timeout=30, what="all events in the hdfs sink's Avro file")
        wait_until(lambda: [p for p in out_roll.iterdir() if events(p) == want], timeout=30,
                   what="all events in file_roll's Avro file")
        wait_until(lambda: [p for p in out_gz.iterdir() if p.name.endswith(".gz")
                            and gzip.decompress(p.read_bytes()).split() == want],
                   timeout=30, what="all events in file_roll's gzip file")
    finally:
        assert agent.stop() == 0, agent.text()
    [f] = output_files(out_hdfs)
    assert f.name.endswith(".avro"), f
    assert events(f) == want


def test_bzip2_compressed_stream_read_by_python_bz2(flumen_bin, tmp_path):
    """hdfs.codeC = bzip2 with CompressedStream: one bzip2 stream per batch (as Flume's
    finish() per sync), named .bz2; Python's bz2 (an independent reader of concatenated
    streams) gets every event back after a clean stop."""
    import bz2

    out = tmp_path / "out"
    total = 500
    conf = f"""
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 50
a1.sources.r1.totalEvents = {total}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {out}
a1.sinks.k1.hdfs.fileType = CompressedStream
a1.sinks.k1.hdfs.codeC = bzip2
a1.sinks.k1.hdfs.batchSize = 50
a1.sinks.k1.hdfs.rollCount = 0
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollInterval = 0
"""
    want = [str(i).encode() for i in range(total)]

    def in_use_done():
        files = output_files(out)
        try:
            return len(files) == 1 and bz2.decompress(files[0].read_bytes()).split() == want
        except Exception:
            return False

    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_log("Agent started.")
        wait_until(in_use_done, timeout=60, what="all events in the in-use .bz2 file")
    finally:
        assert agent.stop() == 0, agent.text()
    [f] = output_files(out)
    assert f.name.endswith(".bz2"), f
    data = f.read_bytes()
    assert data[:4] == b"BZh9"
    assert data.count(b"BZh9") > 1, "one stream per batch"
    assert bz2.decompress(data).split() == want
