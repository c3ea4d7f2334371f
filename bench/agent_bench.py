"""Driver of bench/agent.sh: generates the data, runs the agent, measures. See agent.sh."""
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

AGENT_CMD = os.environ["AGENT_CMD"]
LINES = int(os.environ["LINES"])
SEQ_EVENTS = int(os.environ["SEQ_EVENTS"])
# seq's bodySize (a Flumen extension: the counter zero-padded to N bytes); 0 = plain counter.
SEQ_BODY_SIZE = int(os.environ.get("SEQ_BODY_SIZE", "0"))
# seq's inFlightBatches (a Flumen extension: batches committing at once); 0 = the default (1).
SEQ_IN_FLIGHT = int(os.environ.get("SEQ_IN_FLIGHT", "0"))
WORK = os.environ["WORK"]
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def data_file():
    """LINES Apache combined-log lines of ~104 bytes, generated once (deterministic)."""
    path = os.path.join(WORK, f"access-{LINES}.log")
    if os.path.exists(path):
        return path
    os.makedirs(WORK, exist_ok=True)
    rnd = random.Random(42)
    paths = ["/index.html", "/images/logo.png", "/api/v1/items", "/css/site.css", "/login", "/search?q=x"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        buf = []
        for i in range(LINES):
            line = '%d.%d.%d.%d - - [%02d/%s/2024:%02d:%02d:%02d +0000] "GET %s HTTP/1.1" %d %d "-" "curl/8.%d"' % (
                rnd.randrange(1, 255), rnd.randrange(256), rnd.randrange(256), rnd.randrange(256),
                rnd.randrange(1, 29), rnd.choice(months), rnd.randrange(24), rnd.randrange(60), rnd.randrange(60),
                rnd.choice(paths), rnd.choice([200, 200, 200, 304, 404]), rnd.randrange(100, 99999), rnd.randrange(10))
            buf.append(line.ljust(103)[:103])
            if len(buf) == 100000:
                f.write("\n".join(buf) + "\n")
                buf = []
        if buf:
            f.write("\n".join(buf) + "\n")
    os.rename(tmp, path)
    return path


class Agent:
    def __init__(self, conf_text, name="a1", extra=""):
        self.dir = os.path.join(WORK, "run")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "agent.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        cmd = AGENT_CMD.replace("{conf}", self.conf).replace("{name}", name) + extra
        self.log = open(os.path.join(self.dir, "agent.log"), "w")
        self.proc = subprocess.Popen(shlex.split(cmd), stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def cpu_seconds(self):
        # The agent may be a wrapper script: sum the whole process group.
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid:  # pgrp
                    total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / CLK

    def status(self, key):
        best = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[2]) != self.proc.pid:
                        continue
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith(key + ":"):
                            best = max(best, int(line.split()[1]))
            except OSError:
                pass
        return best / 1024  # MiB

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"agent did not open port {port}")


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def wait_output(out_dir, expected, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if dir_bytes(out_dir) >= expected:
            return time.time()
        time.sleep(0.01)
    raise SystemExit(f"output reached only {dir_bytes(out_dir)} of {expected} bytes")


def fresh(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


CHANNEL = """
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 10000
"""
if os.environ.get("CHANNEL_TYPE") == "file":  # bench/file_channel.sh: same scenarios, durable
    CHANNEL = CHANNEL.replace("type = memory", "type = file") + (
        f"a1.channels.c1.checkpointDir = {WORK}/fc/checkpoint\na1.channels.c1.dataDirs = {WORK}/fc/data\n")

FILE_ROLL = """
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 10000
"""


def report(name, amount, unit, secs, agent, idle):
    cpu = agent.cpu_seconds()
    peak = agent.status("VmHWM")
    rate = amount / secs
    print(f"{name:10s} {rate:12.1f} {unit}  {secs:7.2f} s  cpu {cpu:6.2f} s  peak RSS {peak:6.1f} MiB  idle RSS {idle:5.1f} MiB",
          flush=True)


def bench_netcat():
    data = data_file()
    size = os.path.getsize(data)
    out = fresh(os.path.join(WORK, "out-netcat"))
    port = free_port()
    agent = Agent(f"a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
                  f"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
                  f"a1.sources.r1.max-line-length = 512\na1.sources.r1.channels = c1\n" + CHANNEL + FILE_ROLL.format(out=out))
    try:
        wait_port(port)
        time.sleep(0.5)
        idle = agent.status("VmRSS")
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        oks = [0]

        def reader():
            want = LINES * 3
            got = 0
            while got < want:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            oks[0] = got // 3

        t = threading.Thread(target=reader)
        start = time.time()
        t.start()
        with open(data, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                sock.sendall(chunk)
        t.join()
        end = wait_output(out, size)
        sock.close()
        assert oks[0] == LINES, f"got {oks[0]} OKs for {LINES} lines"
        report("netcat", size / 2**20, "MiB/s", end - start, agent, idle)
    finally:
        agent.stop()


def bench_spooldir():
    data = data_file()
    size = os.path.getsize(data)
    out = fresh(os.path.join(WORK, "out-spool"))
    spool = fresh(os.path.join(WORK, "spool"))
    staged = os.path.join(WORK, "staged.log")
    shutil.copyfile(data, staged)
    agent = Agent(f"a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
                  f"a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {spool}\n"
                  f"a1.sources.r1.batchSize = 10000\na1.sources.r1.pollDelay = 50\n"
                  f"a1.sources.r1.deserializer.maxLineLength = 4096\na1.sources.r1.channels = c1\n"
                  + CHANNEL + FILE_ROLL.format(out=out))
    try:
        time.sleep(1.0)
        idle = agent.status("VmRSS")
        start = time.time()
        os.rename(staged, os.path.join(spool, "access.log"))
        end = wait_output(out, size)
        report("spooldir", size / 2**20, "MiB/s", end - start, agent, idle)
    finally:
        agent.stop()


def bench_seq():
    port = free_port()
    conf = (f"a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = seq\na1.sources.r1.batchSize = 10000\n"
            f"a1.sources.r1.totalEvents = {SEQ_EVENTS}\na1.sources.r1.channels = c1\n"
            + (f"a1.sources.r1.bodySize = {SEQ_BODY_SIZE}\n" if SEQ_BODY_SIZE else "")
            + (f"a1.sources.r1.inFlightBatches = {SEQ_IN_FLIGHT}\n" if SEQ_IN_FLIGHT else "") +
            f"a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 10000\na1.sinks.k1.channel = c1\n" + CHANNEL)
    # The end is seen through Flume's JSON counters (monitoring over HTTP).
    start = time.time()
    agent = Agent(conf, extra=f" -Dflume.monitoring.type=http -Dflume.monitoring.port={port}")
    try:
        wait_port(port)
        idle = agent.status("VmRSS")  # already running: an upper bound of idle
        done = 0
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                m = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5))
                done = int(m["CHANNEL.c1"]["EventTakeSuccessCount"])
            except (OSError, KeyError, ValueError):
                pass
            if done >= SEQ_EVENTS:
                break
            time.sleep(0.02)
        end = time.time()
        report("seq", SEQ_EVENTS, "events/s", end - start, agent, idle)
    finally:
        agent.stop()


if __name__ == "__main__":
    print(f"agent: {AGENT_CMD}\nlines: {LINES}  seq events: {SEQ_EVENTS}  cores: {os.cpu_count()}", flush=True)
    for s in sys.argv[1:]:
        {"netcat": bench_netcat, "spooldir": bench_spooldir, "seq": bench_seq}[s]()
