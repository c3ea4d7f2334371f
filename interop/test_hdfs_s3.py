"""The hdfs sink writing to S3 (`hdfs.path = s3://bucket/…`), against a real S3-compatible
server the test starts: moto_server (PyPI `moto[server]`, starts in about a second, accepts
any credentials). Objects are read back with boto3.

S3 has no append or rename: the sink stages each open file on the local disk and uploads it
to its final key when it closes, so the in-use (`.tmp`) name never exists in the bucket.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import boto3
import pytest

from agent_helpers import Agent, free_port, wait_until
from test_hdfs_local import SEED_LOG, bucket, flumelogs_conf, sequence_file_records

BUCKET = "flumen-test"


class Moto:
    def __init__(self, log: pathlib.Path):
        exe = pathlib.Path(sys.executable).parent / "moto_server"
        if not exe.exists():
            exe = shutil.which("moto_server")
        assert exe, "moto_server not installed: pip install -r interop/requirements.txt"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "wb")
        self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"moto_server exited: {log.read_text(errors='replace')}")
            try:
                self.s3.list_buckets()
                return True
            except Exception:
                return False

        wait_until(up, timeout=60, what="moto_server answering")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def objects(self, prefix=""):
        """{key: size} of every object under prefix."""
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def get(self, key) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    m = Moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        m.s3.create_bucket(Bucket=BUCKET)
        yield m
    finally:
        m.stop()


def s3_args(moto, stage: pathlib.Path):
    return (f"-Dfs.s3a.endpoint={moto.endpoint}", "-Dfs.s3a.path.style.access=true",
            "-Dfs.s3a.access.key=testing", "-Dfs.s3a.secret.key=testing",
            f"-Dfs.s3a.buffer.dir={stage}")


def staged_files(stage: pathlib.Path):
    return [p for p in stage.rglob("*") if p.is_file()] if stage.exists() else []


def test_flumelogs_lesson_on_s3(flumen_bin, tmp_path, moto):
    """The seed lesson with only the spool directory moved and
    hdfs.path = s3://flumen-test/flume/%y-%m-%d/%H%M/%S; credentials and endpoint by -D."""
    spool, stage = tmp_path / "spool", tmp_path / "stage"
    spool.mkdir()
    conf = flumelogs_conf(spool, f"s3://{BUCKET}/flume")
    agent = Agent(flumen_bin, tmp_path, conf, extra=s3_args(moto, stage))
    want = SEED_LOG.read_bytes()
    try:
        agent.wait_log("Agent started.")
        before = time.time()
        shutil.copy(SEED_LOG, tmp_path / "fred.txt")
        os.rename(tmp_path / "fred.txt", spool / "fred.txt")
        wait_until(lambda: (spool / "fred.txt.COMPLETED").exists(), timeout=30, what="spool file ingested")
        # rollCount 10: the full files are uploaded while the agent runs.
        wait_until(lambda: len(moto.objects("flume/")) >= 3, timeout=30, what="rolled files uploaded")
        after = time.time()
    finally:
        assert agent.stop() == 0, agent.text()
    objects = moto.objects("flume/")
    assert objects and not [k for k in objects if ".tmp" in k], objects
    buckets = {bucket(before), bucket(after)}
    for key in objects:
        d, name = key[len("flume/"):].rsplit("/", 1)
        assert d in buckets, key
        assert name.startswith("events-.") and name[len("events-."):].isdigit(), key
    # SequenceFile (the lesson's default fileType), 10 events a file, files in counter order
    # are the input.
    keys = sorted(objects, key=lambda k: int(k.rsplit(".", 1)[1]))
    records = [sequence_file_records(moto.get(k)) for k in keys]
    assert all(1 <= len(r) <= 10 for r in records), [len(r) for r in records]
    assert b"".join(v + b"\n" for r in records for _, v in r) == want
    assert staged_files(stage) == [], "staging files left after a clean stop"


def test_large_file_multipart_and_crash_recovery(flumen_bin, tmp_path, moto):
    """A file bigger than fs.s3a.multipart.threshold goes up in parts. The agent is killed
    (-9) while the file is open: the next start finds the staged in-use file and uploads it
    under its final name. Settings from core-site.xml in the --conf directory this time."""
    stage = tmp_path / "stage"
    (tmp_path / "core-site.xml").write_text(f"""<configuration>
 <property><name>fs.s3a.endpoint</name><value>{moto.endpoint}</value></property>
 <property><name>fs.s3a.path.style.access</name><value>true</value></property>
 <property><name>fs.s3a.access.key</name><value>testing</value></property>
 <property><name>fs.s3a.secret.key</name><value>testing</value></property>
 <property><name>fs.s3a.multipart.size</name><value>5M</value></property>
 <property><name>fs.s3a.multipart.threshold</name><value>5M</value></property>
 <property><name>fs.s3a.buffer.dir</name><value>{stage}</value></property>
</configuration>
""")

    def conf(total):
        return f"""
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 1000
a1.sources.r1.totalEvents = {total}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = s3a://{BUCKET}/big
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.rollCount = 0
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.hdfs.batchSize = 1000
"""
    # seq bodies are the numbers: 3M events are ~21 MB, more than the 12 MB waited for.
    agent = Agent(flumen_bin, tmp_path, conf(3_000_000))
    try:
        agent.wait_log("Agent started.")
        wait_until(lambda: sum(p.stat().st_size for p in staged_files(stage)) >= 12 << 20,
                   timeout=60, what="12 MB staged")
        assert not moto.objects("big/"), "nothing is uploaded before the file closes"
    finally:
        agent.proc.kill()
        agent.proc.wait()
    [left] = staged_files(stage)
    assert left.name.endswith(".tmp"), left
    size = left.stat().st_size
    # The next run has one event of its own; at start it uploads the leftover.
    agent = Agent(flumen_bin, tmp_path, conf(1))
    try:
        agent.wait_log("Agent started.")
        wait_until(lambda: any(s == size for s in moto.objects("big/").values()), timeout=60,
                   what="the leftover uploaded")
    finally:
        assert agent.stop() == 0, agent.text()
    objects = moto.objects("big/")
    assert len(objects) == 2 and not [k for k in objects if ".tmp" in k], objects
    [big] = [k for k, s in objects.items() if s == size]
    assert big == "big/" + left.name[:-len(".tmp")]
    head = moto.s3.head_object(Bucket=BUCKET, Key=big)
    assert head["ETag"].strip('"').endswith(f"-{(size + (5 << 20) - 1) // (5 << 20)}"), head["ETag"]
    numbers = moto.get(big).split(b"\n")
    assert numbers[-1] == b"", "the file ends with a whole event"
    assert [int(x) for x in numbers[:-1]] == list(range(len(numbers) - 1))
    [small] = [k for k in objects if k != big]
    assert moto.get(small) == b"0\n"
    assert staged_files(stage) == []
