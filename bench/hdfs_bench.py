"""Driver of bench/hdfs.sh (see there). Reuses the agent benchmark's data and process helpers."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_bench import CHANNEL, Agent, data_file, fresh  # noqa: E402

SEQ_EVENTS = int(os.environ["SEQ_EVENTS"])
# seq's bodySize (zero-padded counter); 0 = the plain counter (1-8 digits).
SEQ_BODY_SIZE = int(os.environ.get("SEQ_BODY_SIZE", "0"))
WORK = os.environ["WORK"]

HDFS_SINK = """
a1.sinks.k1.type = hdfs
a1.sinks.k1.channel = c1
a1.sinks.k1.hdfs.path = {path}
a1.sinks.k1.hdfs.filePrefix = bench
a1.sinks.k1.hdfs.fileType = DataStream
a1.sinks.k1.hdfs.rollCount = 0
a1.sinks.k1.hdfs.rollSize = 134217728
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.hdfs.batchSize = 10000
a1.sinks.k1.hdfs.useLocalTimeStamp = true
"""


def tree_bytes(d):
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def wait_tree(d, expected, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if tree_bytes(d) >= expected:
            return time.time()
        time.sleep(0.01)
    raise SystemExit(f"output reached only {tree_bytes(d)} of {expected} bytes")


def report(name, nbytes, events, secs, agent):
    cpu = agent.cpu_seconds()
    peak = agent.status("VmHWM")
    print(f"{name:10s} {nbytes / 2**20 / secs:9.1f} MiB/s  {events / secs:12.0f} events/s  "
          f"{secs:7.2f} s  agent cpu {cpu:6.2f} s  peak RSS {peak:6.1f} MiB", flush=True)


def bench_seq():
    out = fresh(os.path.join(WORK, "out-seq"))
    # seq bodies are 0, 1, 2, ... (zero-padded to bodySize); DataStream adds a newline.
    if SEQ_BODY_SIZE >= 8:
        expected = (SEQ_BODY_SIZE + 1) * SEQ_EVENTS
    else:
        expected = sum(max(len(str(i)), SEQ_BODY_SIZE) + 1 for i in range(SEQ_EVENTS))
    conf = (f"a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = seq\na1.sources.r1.batchSize = 10000\n"
            f"a1.sources.r1.totalEvents = {SEQ_EVENTS}\na1.sources.r1.channels = c1\n"
            f"a1.sources.r1.bodySize = {SEQ_BODY_SIZE}\n"
            + CHANNEL + HDFS_SINK.format(path=out + "/%Y-%m-%d/%H"))
    start = time.time()
    agent = Agent(conf)
    try:
        end = wait_tree(out, expected)
        report("seq", expected, SEQ_EVENTS, end - start, agent)
    finally:
        agent.stop()


def spool_run(name, path, measure):
    data = data_file()
    size = os.path.getsize(data)
    spool = fresh(os.path.join(WORK, "spool"))
    staged = os.path.join(WORK, "staged.log")
    shutil.copyfile(data, staged)
    agent = Agent(f"a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
                  f"a1.sources.r1.type = spooldir\na1.sources.r1.spoolDir = {spool}\n"
                  f"a1.sources.r1.batchSize = 10000\na1.sources.r1.pollDelay = 50\n"
                  f"a1.sources.r1.deserializer.maxLineLength = 4096\na1.sources.r1.channels = c1\n"
                  + CHANNEL + HDFS_SINK.format(path=path))
    try:
        time.sleep(1.0)
        start = time.time()
        os.rename(staged, os.path.join(spool, "access.log"))
        end = measure(size)
        report(name, size, int(os.environ["LINES"]), end - start, agent)
    finally:
        agent.stop()
    return size


def bench_spooldir():
    out = fresh(os.path.join(WORK, "out-spool"))
    spool_run("spooldir", out + "/%Y-%m-%d/%H", lambda size: wait_tree(out, size))


def bench_hdfs():
    url = os.environ["HDFS_URL"]
    tool = os.environ["HDFS_TOOL"]
    target = f"/bench-{int(time.time())}"

    def hdfs_bytes():
        r = subprocess.run(["bash", tool, "fs", "-du", "-s", f"{url}{target}"], capture_output=True)
        try:
            return int(r.stdout.split()[0])
        except (IndexError, ValueError):
            return 0

    def measure(size):
        deadline = time.time() + 600
        while time.time() < deadline:
            if hdfs_bytes() >= size:
                return time.time()
            time.sleep(0.2)
        raise SystemExit("HDFS output incomplete")

    size = spool_run("hdfs", f"{url}{target}", measure)
    data = data_file()
    start = time.time()
    subprocess.run(["bash", tool, "fs", "-put", data, f"{url}{target}-put"], check=True)
    secs = time.time() - start
    print(f"{'fs -put':10s} {size / 2**20 / secs:9.1f} MiB/s  (Hadoop's shell, JVM start included) {secs:7.2f} s",
          flush=True)


def bench_s3():
    """seq -> memory -> hdfs with hdfs.path = s3://bench/… against moto_server (started here,
    MOTO_SERVER = its path). Rate = bytes / (agent start .. every object uploaded: the agent
    is stopped once every byte is staged or uploaded, and its last file goes up on stop)."""
    import re
    import socket
    import urllib.request
    moto = os.environ.get("MOTO_SERVER", os.path.join(os.path.dirname(__file__), "..", "interop", ".venv", "bin", "moto_server"))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(os.path.join(WORK, "moto.log"), "w")
    server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(f"{endpoint}/bench", method="PUT")).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("moto_server did not start")
                time.sleep(0.1)

        def bucket_bytes():
            xml = urllib.request.urlopen(f"{endpoint}/bench?list-type=2").read().decode()
            return sum(int(x) for x in re.findall(r"<Size>(\d+)</Size>", xml))

        stage = fresh(os.path.join(WORK, "s3-stage"))
        expected = (max(SEQ_BODY_SIZE, 8) + 1) * SEQ_EVENTS if SEQ_BODY_SIZE >= 8 else \
            sum(max(len(str(i)), SEQ_BODY_SIZE) + 1 for i in range(SEQ_EVENTS))
        conf = (f"a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
                f"a1.sources.r1.type = seq\na1.sources.r1.batchSize = 10000\n"
                f"a1.sources.r1.totalEvents = {SEQ_EVENTS}\na1.sources.r1.channels = c1\n"
                f"a1.sources.r1.bodySize = {SEQ_BODY_SIZE}\n"
                + CHANNEL + HDFS_SINK.format(path="s3://bench/%Y-%m-%d/%H"))
        start = time.time()
        agent = Agent(conf, extra=f" -Dfs.s3a.endpoint={endpoint} -Dfs.s3a.path.style.access=true"
                      f" -Dfs.s3a.access.key=bench -Dfs.s3a.secret.key=bench -Dfs.s3a.buffer.dir={stage}")
        try:
            deadline = time.time() + 600
            # Equality: an object whose staging file is not yet deleted counts twice.
            while bucket_bytes() + tree_bytes(stage) != expected:
                if time.time() > deadline:
                    raise SystemExit("S3 output incomplete")
                time.sleep(0.05)
            cpu = agent.cpu_seconds()
            peak = agent.status("VmHWM")
        finally:
            agent.stop()
        end = time.time()
        got = bucket_bytes()
        if got != expected:
            raise SystemExit(f"bucket holds {got} bytes, expected {expected}")
        secs = end - start
        print(f"{'s3 (moto)':10s} {expected / 2**20 / secs:9.1f} MiB/s  {SEQ_EVENTS / secs:12.0f} events/s  "
              f"{secs:7.2f} s  agent cpu {cpu:6.2f} s (before the last upload)  peak RSS {peak:6.1f} MiB", flush=True)
    finally:
        server.terminate()
        server.wait()
        log.close()


if __name__ == "__main__":
    print(f"agent: {os.environ['AGENT_CMD']}\nseq events: {SEQ_EVENTS}  lines: {os.environ['LINES']}  "
          f"cores: {os.cpu_count()}", flush=True)
    for s in sys.argv[1:]:
        {"seq": bench_seq, "spooldir": bench_spooldir, "hdfs": bench_hdfs, "s3": bench_s3}[s]()
