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
        wait_until(lambda: sum(p.stat().st_size for p in output_files(root)) >= len(want),
                   timeout=20, what="all events in the target folder")
        wait_until(lambda: (spool / "fred.txt.COMPLETED").exists(), timeout=10, what="spool file renamed")
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
    # One bucket writer per directory: counters are consecutive, each file holds at most
    # hdfs.rollCount (10) events, and the files in counter order are the input.
    files.sort(key=counter_of)
    assert all(p.read_bytes().count(b"\n") <= 10 for p in files)
    assert b"".join(p.read_bytes() for p in files) == want


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
                   timeout=20, what="events in the dead-letter folder")
        log = agent.wait_log("Expected timestamp in the Flume event headers")
        # Rate-limited: one error for 39 events.
        assert log.count("Expected timestamp in the Flume event headers") == 1, log
    finally:
        assert agent.stop() == 0
    files = sorted(output_files(dead), key=counter_of)
    assert b"".join(p.read_bytes() for p in files) == want
