"""Driver of bench/rpc.sh: sender (seq → memory → RPC sink) → collector (RPC source → memory
→ null). The seq bodies are padded to 100 bytes by a search_replace interceptor."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

FLUMEN = os.environ["FLUMEN"]
EVENTS = int(os.environ["EVENTS"])
PROTOCOL = os.environ["PROTOCOL"]
WORK = os.environ["WORK"]
CLK = os.sysconf("SC_CLK_TCK")
CHANNEL = ("a1.channels.c1.type = memory\na1.channels.c1.capacity = 100000\n"
           "a1.channels.c1.transactionCapacity = 10000\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Agent:
    def __init__(self, name, conf, extra=()):
        d = os.path.join(WORK, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "agent.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.log = open(os.path.join(d, "agent.log"), "w")
        self.proc = subprocess.Popen([FLUMEN, "agent", "-f", path, "-n", "a1",
                                      "-Dflume.root.logger=WARN,console", *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
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
    raise SystemExit(f"port {port} not open")


def accepted(port):
    try:
        m = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5))
        return int(m["SOURCE.r1"]["EventAcceptedCount"])
    except (OSError, KeyError, ValueError):
        return 0


def bench(kind):
    shutil.rmtree(WORK, ignore_errors=True)
    rpc_port, mon_port = free_port(), free_port()
    proto = f"a1.sources.r1.protocol = {PROTOCOL}\n" if kind == "thrift" else ""
    collector = Agent("collector",
                      "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
                      f"a1.sources.r1.type = {kind}\na1.sources.r1.bind = 127.0.0.1\n"
                      f"a1.sources.r1.port = {rpc_port}\na1.sources.r1.channels = c1\n" + proto
                      + "a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 1000\na1.sinks.k1.channel = c1\n"
                      + CHANNEL,
                      [f"-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={mon_port}"])
    sender = None
    try:
        wait_port(rpc_port)
        wait_port(mon_port)
        pad = "x" * 93  # + up to 7 digits of the seq number: 100-byte bodies
        sender = Agent("sender",
                       "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
                       f"a1.sources.r1.type = seq\na1.sources.r1.batchSize = 1000\n"
                       f"a1.sources.r1.totalEvents = {EVENTS}\na1.sources.r1.channels = c1\n"
                       "a1.sources.r1.interceptors = i1\na1.sources.r1.interceptors.i1.type = search_replace\n"
                       "a1.sources.r1.interceptors.i1.searchPattern = ^\n"
                       f"a1.sources.r1.interceptors.i1.replaceString = {pad}\n"
                       f"a1.sinks.k1.type = {kind}\na1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = {rpc_port}\n"
                       "a1.sinks.k1.batch-size = 1000\na1.sinks.k1.channel = c1\n"
                       + (f"a1.sinks.k1.protocol = {PROTOCOL}\n" if kind == "thrift" else "") + CHANNEL)
        start = None
        deadline = time.time() + 900
        done = 0
        while time.time() < deadline and done < EVENTS:
            done = accepted(mon_port)
            if start is None and done > 0:
                start = (time.time(), done)
            time.sleep(0.01)
        end = time.time()
        if done < EVENTS:
            raise SystemExit(f"only {done} of {EVENTS} events arrived")
        secs = end - start[0]
        n = EVENTS - start[1]
        load = os.getloadavg()
        print(f"{kind}{' ' + PROTOCOL if kind == 'thrift' else ''}: {n / secs:,.0f} events/s "
              f"({n} events in {secs:.2f} s); cpu sender {sender.cpu_seconds():.2f} s, "
              f"collector {collector.cpu_seconds():.2f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
              flush=True)
    finally:
        if sender:
            sender.stop()
        collector.stop()


if __name__ == "__main__":
    print(f"flumen: {FLUMEN}  events: {EVENTS}  cores: {os.cpu_count()}", flush=True)
    for k in sys.argv[1:]:
        bench(k)
