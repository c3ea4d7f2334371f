"""Driver of bench/avro.sh (see there)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

FLUMEN = os.environ["FLUMEN"]
EVENTS = int(os.environ["EVENTS"])
OPTS = os.environ.get("AVRO_OPTS", "").split()
WORK = os.environ["WORK"]
CLK = os.sysconf("SC_CLK_TCK")
PAD = "x" * 93  # + the seq counter (7 digits for most events) = 100-byte bodies


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Agent:
    def __init__(self, name, conf_text, monitoring_port):
        self.conf = os.path.join(WORK, f"{name}.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.log = open(os.path.join(WORK, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            [FLUMEN, "agent", "-f", self.conf, "-n", "a1", "-Dflume.root.logger=WARN,console",
             "-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={monitoring_port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = monitoring_port

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK

    def counter(self, component, key):
        try:
            m = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5))
            return int(m[component][key])
        except (OSError, KeyError, ValueError):
            return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
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
    raise SystemExit(f"port {port} did not open")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    src_extra, sink_extra = "", ""
    if "deflate" in OPTS:
        src_extra += "a1.sources.r1.compression-type = deflate\n"
        sink_extra += "a1.sinks.k1.compression-type = deflate\n"
    if "tls" in OPTS:
        cert, key = os.path.join(WORK, "cert.pem"), os.path.join(WORK, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
        ks = os.path.join(WORK, "keystore.pem")
        with open(ks, "w") as f:
            f.write(open(cert).read() + open(key).read())
        src_extra += f"a1.sources.r1.ssl = true\na1.sources.r1.keystore = {ks}\n"
        sink_extra += f"a1.sinks.k1.ssl = true\na1.sinks.k1.truststore = {cert}\n"
    avro_port, mon_c, mon_s = free_port(), free_port(), free_port()
    collector = Agent("collector", (
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
        f"a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {avro_port}\n"
        "a1.sources.r1.channels = c1\n" + src_extra
        + "a1.channels.c1.type = memory\na1.channels.c1.capacity = 100000\n"
        "a1.channels.c1.transactionCapacity = 10000\n"
        "a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 10000\na1.sinks.k1.channel = c1\n"), mon_c)
    wait_port(avro_port)
    wait_port(mon_c)
    load0 = os.getloadavg()
    start = time.time()
    sender = Agent("sender", (
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
        f"a1.sources.r1.type = seq\na1.sources.r1.batchSize = 1000\na1.sources.r1.totalEvents = {EVENTS}\n"
        "a1.sources.r1.channels = c1\na1.sources.r1.interceptors = pad\n"
        "a1.sources.r1.interceptors.pad.type = search_replace\n"
        f"a1.sources.r1.interceptors.pad.searchPattern = ^\na1.sources.r1.interceptors.pad.replaceString = {PAD}\n"
        "a1.channels.c1.type = memory\na1.channels.c1.capacity = 100000\n"
        "a1.channels.c1.transactionCapacity = 10000\n"
        f"a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\n"
        f"a1.sinks.k1.port = {avro_port}\na1.sinks.k1.batch-size = 1000\n" + sink_extra), mon_s)
    try:
        done = 0
        deadline = time.time() + 900
        while done < EVENTS and time.time() < deadline:
            done = collector.counter("CHANNEL.c1", "EventTakeSuccessCount")
            time.sleep(0.02)
        end = time.time()
        load1 = os.getloadavg()
        secs = end - start
        print(f"avro {' '.join(OPTS) or 'plain'}: {done} events in {secs:.2f} s = {done / secs:,.0f} events/s; "
              f"cpu sender {sender.cpu_seconds():.2f} s, collector {collector.cpu_seconds():.2f} s; "
              f"load average before {load0[0]:.2f} after {load1[0]:.2f}; cores {os.cpu_count()}", flush=True)
        if done < EVENTS:
            raise SystemExit("timed out")
    finally:
        sender.stop()
        collector.stop()


if __name__ == "__main__":
    main()
