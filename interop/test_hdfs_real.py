"""The hdfs sink against a real HDFS (Apache Hadoop 2.7.3 NameNode + DataNode on loopback,
started by ../shared/tools/hdfs-local.sh), files read back with Hadoop's own shell.

Skipped, with the reason, only when java or the script is missing. The first start downloads
~220 MB through pip (~15 s); the jars are then kept in $XDG_CACHE_HOME (or ~/.cache)
/flumen-hdfs-jars so later runs start in a few seconds.
"""
import json
import os
import pathlib
import shutil
import subprocess
import time
import urllib.request

import pytest

from agent_helpers import Agent, free_port, wait_until
from test_hdfs_local import SEED_LOG, flumelogs_conf

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT.parent / "shared" / "tools" / "hdfs-local.sh"
JAR_CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "flumen-hdfs-jars"


class Hdfs:
    def __init__(self, base: pathlib.Path):
        self.base = base
        self.env = dict(os.environ, HDFS_BASE=str(base))
        for k in ("NN_RPC_PORT", "NN_HTTP_PORT", "DN_PORT", "DN_HTTP_PORT", "DN_IPC_PORT"):
            self.env[k] = str(free_port())
        self.url = f"hdfs://127.0.0.1:{self.env['NN_RPC_PORT']}"

    def run(self, *args, timeout=300, check=True):
        r = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"hdfs-local.sh {' '.join(args)} failed ({r.returncode}):\n"
                                 f"{r.stdout.decode(errors='replace')}\n{r.stderr.decode(errors='replace')}")
        return r.stdout

    def start(self):
        self.run("start")

    def stop(self):
        self.run("stop", timeout=60, check=False)

    def fs(self, *args) -> bytes:
        return self.run("fs", *args, timeout=120)

    def files(self, path: str):
        """(path, size) of every file under path."""
        r = subprocess.run(["bash", str(SCRIPT), "fs", "-ls", "-R", path], env=self.env,
                           capture_output=True, timeout=120)
        out = []
        for line in r.stdout.decode().splitlines():
            parts = line.split()
            if len(parts) >= 8 and not line.startswith("d"):
                out.append((parts[-1], int(parts[4])))
        return out


@pytest.fixture(scope="module")
def hdfs(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("java is not installed: the test HDFS cannot run")
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} is missing: the test HDFS cannot be started")
    base = tmp_path_factory.mktemp("hdfs")
    if (JAR_CACHE / "hadoop-hdfs-2.7.3.jar").exists():
        shutil.copytree(JAR_CACHE, base / "jars")
    h = Hdfs(base)
    try:
        h.start()
        if not (JAR_CACHE / "hadoop-hdfs-2.7.3.jar").exists():
            shutil.copytree(base / "jars", JAR_CACHE, dirs_exist_ok=True)
        yield h
    finally:
        h.stop()


def counter_of(path: str) -> int:
    return int(path.rsplit("/", 1)[1].split(".")[1])


def test_flumelogs_lesson_on_hdfs(flumen_bin, tmp_path, hdfs):
    """The lesson with fs.defaultFS pointing at the test HDFS: hdfs.path stays
    /user/maria_dev/flume/%y-%m-%d/%H%M/%S; only the spool directory moved."""
    spool = tmp_path / "spool"
    spool.mkdir()
    conf = flumelogs_conf(spool, pathlib.Path("/user/maria_dev/flume"))
    agent = Agent(flumen_bin, tmp_path, conf, extra=(f"-Dfs.defaultFS={hdfs.url}",))
    want = SEED_LOG.read_bytes()
    try:
        agent.wait_log("Agent started.")
        shutil.copy(SEED_LOG, tmp_path / "fred.txt")
        os.rename(tmp_path / "fred.txt", spool / "fred.txt")
        wait_until(lambda: (spool / "fred.txt.COMPLETED").exists(), timeout=120, what="spool file ingested")
        wait_until(lambda: sum(s for _, s in hdfs.files("/user/maria_dev/flume")) >= len(want),
                   timeout=240, what="all bytes in HDFS")
    finally:
        assert agent.stop() == 0, agent.text()
    files = hdfs.files("/user/maria_dev/flume")
    assert files and not [f for f, _ in files if f.endswith(".tmp")], files
    for f, _ in files:
        rel = f.split("/user/maria_dev/flume/", 1)[1]
        d, name = rel.rsplit("/", 1)
        assert len(d) == len("yy-mm-dd/HHM0/00") and d.endswith("0/00"), rel
        assert name.startswith("events-.")
    # Flume's default fileType, SequenceFile, read by Hadoop's own `-text` (arguments in
    # order): `timestamp<TAB>hex bytes of the BytesWritable` per event.
    paths = sorted((f for f, _ in files), key=counter_of)
    lines = hdfs.fs("-text", *paths).decode().splitlines()
    got = b"".join(bytes.fromhex(line.split("\t", 1)[1].replace(" ", "")) + b"\n" for line in lines)
    assert got == want


def test_sequence_file_readable_by_hadoop(flumen_bin, tmp_path, hdfs):
    """Default fileType (SequenceFile): `hdfs dfs -text` decodes it; core-site.xml found in
    the --conf directory (no -D)."""
    shutil.copy(hdfs.base / "conf" / "core-site.xml", tmp_path / "core-site.xml")
    spool = tmp_path / "spool"
    spool.mkdir()
    conf = flumelogs_conf(spool, pathlib.Path("/seq"), "a1.sinks.k1.hdfs.writeFormat = Text\n"
                          "a1.sinks.k1.hdfs.rollCount = 0\na1.sinks.k1.hdfs.rollSize = 0\n"
                          "a1.sinks.k1.hdfs.fileSuffix = .seq\n")
    # Every event read is written before the agent exits: it drains its channel on SIGTERM
    # (here for up to 120 s, not 10, as HDFS calls are slow on a busy machine).
    agent = Agent(flumen_bin, tmp_path, conf, extra=("--drain-timeout", "120"))
    try:
        agent.wait_log("Agent started.")
        shutil.copy(SEED_LOG, spool / "fred.txt")
        wait_until(lambda: (spool / "fred.txt.COMPLETED").exists(), timeout=120, what="spool file ingested")
    finally:
        assert agent.stop(timeout=180) == 0, agent.text()
    files = [f for f, _ in hdfs.files("/seq")]
    assert len(files) == 1 and files[0].endswith(".seq"), files
    text = hdfs.fs("-text", files[0]).decode()
    lines = text.splitlines()
    want = SEED_LOG.read_text().splitlines()
    assert len(lines) == len(want), text
    for line, w in zip(lines, want):
        key, value = line.split("\t", 1)
        assert key.isdigit() and abs(int(key) / 1000 - time.time()) < 600, line
        assert value == w


def test_hdfs_restart_mid_stream_loses_nothing(flumen_bin, tmp_path, hdfs):
    """seq -> memory -> hdfs; HDFS is stopped while events flow and started again: every
    number arrives exactly once."""
    total = 20000
    conf = f"""
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 10
a1.sources.r1.totalEvents = {total}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 200
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {hdfs.url}/restart
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.rollCount = 2000
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.batchSize = 10
a1.sinks.k1.hdfs.callTimeout = 5000
a1.sinks.k1.hdfs.retryInterval = 1
"""
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_log("Agent started.")
        wait_until(lambda: sum(s for _, s in hdfs.files("/restart")) > 0, timeout=120, what="first bytes")
        hdfs.stop()
        time.sleep(3)
        hdfs.start()

        def count():  # one shell run; Hadoop expands the glob
            return hdfs.run("fs", "-cat", "/restart/*", check=False).count(b"\n")

        wait_until(lambda: count() >= total, timeout=300, what=f"{total} events in HDFS")
    finally:
        assert agent.stop() == 0, agent.text()
    files = hdfs.files("/restart")
    assert not [f for f, _ in files if f.endswith(".tmp")], files
    numbers = [int(x) for x in hdfs.fs("-cat", "/restart/*").split()]
    assert sorted(numbers) == list(range(total)), f"{len(numbers)} numbers, {len(set(numbers))} distinct"


def web_files(hdfs, path):
    """(path, size) of every file under path, by WebHDFS LISTSTATUS."""
    out, stack = [], [path]
    while stack:
        d = stack.pop()
        url = f"http://127.0.0.1:{hdfs.env['NN_HTTP_PORT']}/webhdfs/v1{d}?op=LISTSTATUS&user.name=test"
        try:
            statuses = json.load(urllib.request.urlopen(url, timeout=10))["FileStatuses"]["FileStatus"]
        except (OSError, ValueError, KeyError):
            continue
        for st in statuses:
            p = f"{d}/{st['pathSuffix']}"
            if st["type"] == "DIRECTORY":
                stack.append(p)
            else:
                out.append((p, st["length"]))
    return out


def test_flumelogs_lesson_over_webhdfs(flumen_bin, tmp_path, hdfs):
    """The lesson with hdfs.path = webhdfs://127.0.0.1:<NameNode HTTP port>/…: the classic
    two-step CREATE/APPEND (307 to the DataNode), RENAME on close; Hadoop's shell reads the
    SequenceFiles back."""
    spool = tmp_path / "spool"
    spool.mkdir()
    web = f"webhdfs://127.0.0.1:{hdfs.env['NN_HTTP_PORT']}"
    conf = flumelogs_conf(spool, f"{web}/web/flume")
    agent = Agent(flumen_bin, tmp_path, conf)
    want = SEED_LOG.read_bytes()
    try:
        agent.wait_log("Agent started.")
        shutil.copy(SEED_LOG, tmp_path / "fred.txt")
        os.rename(tmp_path / "fred.txt", spool / "fred.txt")
        wait_until(lambda: (spool / "fred.txt.COMPLETED").exists(), timeout=30, what="spool file ingested")
        # Polled over WebHDFS itself (a shell run starts a JVM each time).
        wait_until(lambda: sum(s for _, s in web_files(hdfs, "/web/flume")) >= len(want),
                   timeout=60, what="all bytes in HDFS")
    finally:
        assert agent.stop() == 0, agent.text()
    files = hdfs.files("/web/flume")
    assert files and not [f for f, _ in files if f.endswith(".tmp")], files
    for f, _ in files:
        rel = f.split("/web/flume/", 1)[1]
        d, name = rel.rsplit("/", 1)
        assert len(d) == len("yy-mm-dd/HHM0/00") and d.endswith("0/00"), rel
        assert name.startswith("events-.")
    paths = sorted((f for f, _ in files), key=counter_of)
    lines = hdfs.fs("-text", *paths).decode().splitlines()
    got = b"".join(bytes.fromhex(line.split("\t", 1)[1].replace(" ", "")) + b"\n" for line in lines)
    assert got == want
