"""Benchmarks of `flumen serve` (issue 3 §5), driven by independent librdkafka clients
(kcat and confluent-kafka). Run through bench/broker.sh; prints a Markdown table.

Each figure stands beside the broker's own CPU seconds (utime+stime from /proc/<pid>/stat)
because clients and broker share the machine."""
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import resource
import subprocess
import sys
import tempfile
import time

FLUMEN = os.environ.get("FLUMEN_BIN", os.path.join(os.path.dirname(__file__), "..", "target", "release", "flumen"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, data_dir, port):
        self.data_dir, self.port = data_dir, port
        self.bootstrap = f"127.0.0.1:{port}"

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [FLUMEN, "serve", "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
             "--override", f"log.dirs={self.data_dir}"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        for line in self.proc.stderr:
            if "Broker ready." in line:
                self.ready_ms = (time.monotonic() - t0) * 1000
                break
        else:
            raise RuntimeError("broker exited before ready")
        # keep draining stderr so the broker never blocks on a full pipe
        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stderr, stdout=subprocess.DEVNULL)
        return self

    def cpu(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status(self, key):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # MiB
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=300)
        self.drain.wait(timeout=10)


def children_cpu():
    """utime + stime of every finished child process of this script (kcat runs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


CLIENT_CPU = []


def timed(broker, fn):
    """Runs fn; returns (wall seconds, broker CPU seconds). The client's (kcat's) CPU seconds
    of the same run are appended to CLIENT_CPU."""
    k0, c0, t0 = children_cpu(), broker.cpu(), time.monotonic()
    fn()
    secs, cpu = time.monotonic() - t0, broker.cpu() - c0
    CLIENT_CPU.append(children_cpu() - k0)
    return secs, cpu


def kcat(*args, stdin=None):
    out = subprocess.run(["kcat", *args], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.decode())
    return out.stdout


def make_file(path, n, size):
    line = b"x" * size + b"\n"
    with open(path, "wb") as f:
        for _ in range(n // 10000):
            f.write(line * 10000)


def produce(broker, topic, path, acks):
    def run():
        kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-l", path,
             "-X", f"acks={acks}", "-X", "linger.ms=5", "-X", "batch.size=1000000",
             "-X", "batch.num.messages=100000", "-X", "queue.buffering.max.messages=2000000",
             "-X", "queue.buffering.max.kbytes=2000000")
    return timed(broker, run)


def consume(broker, topic, expect):
    def run():
        out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
                   "-f", "%o\n", "-X", "fetch.message.max.bytes=10485760", "-X", "fetch.max.bytes=52428800",
                   "-X", "queued.max.messages.kbytes=1000000")
        last = out.rsplit(b"\n", 2)[-2]
        assert int(last) == expect - 1, (last, expect)
    return timed(broker, run)


def latency_producer(bootstrap, topic, rate, seconds):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": 1})
    # warm-up (connection, metadata): empty values, not measured
    for _ in range(100):
        p.produce(topic, value=b"")
        p.poll(0.01)
    p.flush(10)
    n = rate * seconds
    start = time.monotonic()
    for i in range(n):
        due = start + i / rate
        while time.monotonic() < due:
            p.poll(0)
            time.sleep(max(0, min(0.0005, due - time.monotonic())))
        p.produce(topic, value=str(time.time_ns()).encode())
        p.poll(0)
    p.flush(10)


def latency(broker, rate=1000, seconds=10):
    from confluent_kafka import Consumer, TopicPartition
    topic = "bench-latency"
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        f.result(30)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench", "fetch.wait.max.ms": 100,
                  "fetch.min.bytes": 1, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    c.poll(0.5)
    proc = mp.Process(target=latency_producer, args=(broker.bootstrap, topic, rate, seconds))
    c0 = broker.cpu()
    proc.start()
    lat = []
    deadline = time.monotonic() + seconds + 20
    while len(lat) < rate * seconds and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        v = m.value()
        if v:
            lat.append((time.time_ns() - int(v)) / 1e6)
    proc.join(30)
    cpu = broker.cpu() - c0
    if os.environ.get("BENCH_DEBUG"):
        slow = [(i, round(x)) for i, x in enumerate(lat) if x > 5]
        print("slow records (index, ms):", slow[:20], len(slow), file=sys.stderr)
    c.close()
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    return len(lat), pct(0.5), pct(0.99), pct(0.999), cpu


def metadata_partitions(broker, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    for f in a.create_topics([NewTopic("bench-wide", num_partitions=partitions, replication_factor=1)],
                             request_timeout=120).values():
        f.result(120)


def full_metadata_ms(broker, partitions):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.list_topics(timeout=30)  # connect
    best = None
    for _ in range(5):
        t0 = time.monotonic()
        md = a.list_topics(timeout=30)
        ms = (time.monotonic() - t0) * 1000
        assert len(md.topics["bench-wide"].partitions) == partitions
        best = ms if best is None else min(best, ms)
    return best


def main():
    work = tempfile.mkdtemp(prefix="flumen-bench-", dir=os.environ.get("BENCH_TMP", "/var/tmp"))
    rows = []
    try:
        f100 = os.path.join(work, "r100.txt")
        f1k = os.path.join(work, "r1k.txt")
        make_file(f100, 1_000_000, 100)
        make_file(f1k, 200_000, 1024)
        b = Broker(os.path.join(work, "data"), free_port()).start()
        rows.append(("start to ready (empty data dir)", f"{b.ready_ms:.0f} ms", "≤ 100 ms", ""))
        time.sleep(0.5)
        rows.append(("idle memory (VmRSS)", f"{b.status('VmRSS'):.1f} MiB", "≤ 20 MiB", ""))
        kcat("-b", b.bootstrap, "-L")
        secs, cpu = produce(b, "bench-100", f100, 1)
        rows.append(("kcat produce 1,000,000 × 100 B, acks=1", f"{1e6/secs:,.0f} rec/s ({secs:.2f} s)", "≥ 2,000,000 rec/s",
                     f"{cpu:.2f} s ({cpu:.2f} s per million; target ≤ 0.15)", f"{CLIENT_CPU[-1]:.2f} s"))
        secs, cpu = produce(b, "bench-1k", f1k, "all")
        mb = 200_000 * 1024 / 1e6
        rows.append(("kcat produce 200,000 × 1 KiB, acks=all", f"{mb/secs:,.0f} MB/s ({secs:.2f} s)", "≥ 500 MB/s", f"{cpu:.2f} s", f"{CLIENT_CPU[-1]:.2f} s"))
        secs, cpu = consume(b, "bench-100", 1_000_000)
        rows.append(("kcat consume 1,000,000 × 100 B from start", f"{1e6/secs:,.0f} rec/s ({secs:.2f} s)", "≥ 2,000,000 rec/s", f"{cpu:.2f} s", f"{CLIENT_CPU[-1]:.2f} s"))
        secs, cpu = consume(b, "bench-1k", 200_000)
        rows.append(("kcat consume 200,000 × 1 KiB from start", f"{mb/secs:,.0f} MB/s ({secs:.2f} s)", "≥ 1 GB/s", f"{cpu:.2f} s", f"{CLIENT_CPU[-1]:.2f} s"))
        n, p50, p99, p999, cpu = latency(b)
        rows.append(("produce→consume latency at 1,000 rec/s (confluent-kafka, 10 s)",
                     f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, p99.9 {p999:.2f} ms ({n} records)", "p99 ≤ 5 ms", f"{cpu:.2f} s"))
        rows.append(("peak memory under these loads (VmHWM)", f"{b.status('VmHWM'):.1f} MiB", "≤ 100 MiB", ""))
        t0 = time.monotonic()
        metadata_partitions(b, 10_000)
        rows.append(("create a topic with 10,000 partitions", f"{(time.monotonic()-t0)*1000:.0f} ms", "", ""))
        rows.append(("full Metadata response, 10,000 partitions (best of 5, confluent-kafka list_topics)",
                     f"{full_metadata_ms(b, 10_000):.0f} ms", "≤ 100 ms", ""))
        b.stop()
        b2 = Broker(b.data_dir, free_port()).start()
        rows.append(("restart to ready with 10,000 partitions (+ data above)", f"{b2.ready_ms:.0f} ms", "≤ 2 s", ""))
        b2.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| measurement | result | target | broker CPU | kcat CPU |")
    print("|---|---|---|---|---|")
    for r in rows:
        r = tuple(r) + ("",) * (5 - len(r))
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
