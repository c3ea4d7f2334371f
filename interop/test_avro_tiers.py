"""Multi-tier flows through the real binary (issue 10): agents chained over Avro RPC.

Fan-in with compression and TLS on, a collector killed (`kill -9`) and restarted mid-stream,
a fan-out collector with a multiplexing selector, load-balancing and failover sink groups over
two collectors. Every wait polls with a deadline."""
import os
import signal
import subprocess

from agent_helpers import Agent, free_port, netcat_lines, read_dir, wait_until
from test_avro_rpc import make_cert


def out_lines(*dirs):
    return sorted(l for d in dirs for l in read_dir(d).splitlines())


def collector(port, out, channel="memory", tmp=None, source_extra="", name="c"):
    text = ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
            "a1.sources.r1.channels = c1\n" + source_extra
            + f"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = {out}\n"
            "a1.sinks.k1.sink.rollInterval = 0\n")
    if channel == "file":
        text += ("a1.channels.c1.type = file\n"
                 f"a1.channels.c1.checkpointDir = {tmp / (name + '-cp')}\n"
                 f"a1.channels.c1.dataDirs = {tmp / (name + '-data')}\n"
                 "a1.channels.c1.checkpointInterval = 500\na1.channels.c1.transactionCapacity = 1000\n")
    else:
        text += ("a1.channels.c1.type = memory\na1.channels.c1.capacity = 10000\n"
                 "a1.channels.c1.transactionCapacity = 1000\n")
    return text


def avro_sink(name, port, extra=""):
    return (f"a1.sinks.{name}.type = avro\na1.sinks.{name}.channel = c1\n"
            f"a1.sinks.{name}.hostname = 127.0.0.1\na1.sinks.{name}.port = {port}\n"
            f"a1.sinks.{name}.batch-size = 20\na1.sinks.{name}.connect-timeout = 2000\n"
            f"a1.sinks.{name}.request-timeout = 5000\n" + extra)


def sender(nc_port, sinks_text, sinks="k1", group=""):
    return ("a1.sources = r1\na1.channels = c1\n" f"a1.sinks = {sinks}\n"
            f"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {nc_port}\n"
            "a1.sources.r1.channels = c1\na1.sources.r1.max-line-length = 1024\n"
            "a1.channels.c1.type = memory\na1.channels.c1.capacity = 100000\n"
            "a1.channels.c1.transactionCapacity = 1000\n" + sinks_text + group)


def subdir(tmp, name):
    d = tmp / name
    d.mkdir()
    return d


def test_fan_in_with_deflate_and_tls(flumen_bin, tmp_path):
    """Two netcat agents, one with deflate + TLS, one with deflate only, into two collector
    sources (one TLS, one plain) feeding one channel: every line once."""
    cert, _key, ks = make_cert(tmp_path)
    out = subdir(tmp_path, "out")
    tls_port, plain_port, nc1, nc2 = free_port(), free_port(), free_port(), free_port()
    text = ("a1.sources = r1 r2\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {tls_port}\n"
            "a1.sources.r1.channels = c1\na1.sources.r1.compression-type = deflate\n"
            f"a1.sources.r1.ssl = true\na1.sources.r1.keystore = {ks}\na1.sources.r1.keystore-type = PEM\n"
            f"a1.sources.r2.type = avro\na1.sources.r2.bind = 127.0.0.1\na1.sources.r2.port = {plain_port}\n"
            "a1.sources.r2.channels = c1\na1.sources.r2.compression-type = deflate\n"
            "a1.channels.c1.type = memory\na1.channels.c1.capacity = 10000\n"
            "a1.channels.c1.transactionCapacity = 1000\n"
            f"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = {out}\n"
            "a1.sinks.k1.sink.rollInterval = 0\n")
    col = Agent(flumen_bin, subdir(tmp_path, "col"), text)
    s1 = Agent(flumen_bin, subdir(tmp_path, "s1"), sender(nc1, avro_sink("k1", tls_port, (
        f"a1.sinks.k1.compression-type = deflate\na1.sinks.k1.ssl = true\na1.sinks.k1.truststore = {cert}\n"))))
    s2 = Agent(flumen_bin, subdir(tmp_path, "s2"), sender(nc2, avro_sink("k1", plain_port, (
        "a1.sinks.k1.compression-type = deflate\n"))))
    try:
        col.wait_port(tls_port)
        s1.wait_port(nc1)
        s2.wait_port(nc2)
        a = [f"tls-{i}\n".encode() for i in range(300)]
        b = [f"zip-{i}\n".encode() for i in range(300)]
        assert netcat_lines(nc1, a) == b"OK\n" * 300
        assert netcat_lines(nc2, b) == b"OK\n" * 300
        want = sorted(l.decode().rstrip("\n") for l in a + b)
        wait_until(lambda: out_lines(out) == want, timeout=30, what="every line once at the collector")
    finally:
        assert s1.stop() == 0
        assert s2.stop() == 0
        assert col.stop() == 0


def test_collector_killed_and_restarted_mid_stream_loses_nothing(flumen_bin, tmp_path):
    out = subdir(tmp_path, "out")
    port, nc = free_port(), free_port()
    conf = collector(port, out, channel="file", tmp=tmp_path)
    col = Agent(flumen_bin, subdir(tmp_path, "col1"), conf)
    snd = Agent(flumen_bin, subdir(tmp_path, "snd"), sender(nc, avro_sink("k1", port)))
    col2 = None
    try:
        col.wait_port(port)
        snd.wait_port(nc)
        lines = [f"line-{i:05d}\n".encode() for i in range(3000)]
        # The first third flows; the collector is killed once some of it has arrived.
        for k in range(10):
            assert netcat_lines(nc, lines[k * 100:(k + 1) * 100]) == b"OK\n" * 100
        wait_until(lambda: len(out_lines(out)) >= 300, timeout=30, what="the first lines at the collector")
        os.kill(col.proc.pid, signal.SIGKILL)
        col.proc.wait(timeout=10)
        col.log.close()
        # The rest is sent while the collector is down: the sender keeps it and retries.
        for k in range(10, 30):
            assert netcat_lines(nc, lines[k * 100:(k + 1) * 100]) == b"OK\n" * 100
        snd.wait_log("Failed to send events", timeout=30)
        col2 = Agent(flumen_bin, subdir(tmp_path, "col2"), conf)
        col2.wait_port(port, timeout=30)
        want = sorted(l.decode().rstrip("\n") for l in lines)
        # At least once: nothing lost; a batch in flight at the kill may arrive twice.
        wait_until(lambda: sorted(set(out_lines(out))) == want, timeout=45,
                   what="every line at the collector after its restart")
        assert len(out_lines(out)) <= len(want) + 1000
    finally:
        assert snd.stop() == 0
        if col.proc.poll() is None:
            col.proc.kill()
        if col2:
            assert col2.stop() == 0


def test_fan_out_collector_multiplexes_on_a_header(flumen_bin, tmp_path):
    eu, us = subdir(tmp_path, "eu"), subdir(tmp_path, "us")
    port = free_port()
    text = ("a1.sources = r1\na1.channels = ceu cus\na1.sinks = keu kus\n"
            f"a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
            "a1.sources.r1.channels = ceu cus\na1.sources.r1.selector.type = multiplexing\n"
            "a1.sources.r1.selector.header = dc\na1.sources.r1.selector.mapping.eu = ceu\n"
            "a1.sources.r1.selector.mapping.us = cus\na1.sources.r1.selector.default = ceu\n"
            "a1.channels.ceu.type = memory\na1.channels.cus.type = memory\n"
            f"a1.sinks.keu.type = file_roll\na1.sinks.keu.channel = ceu\na1.sinks.keu.sink.directory = {eu}\n"
            "a1.sinks.keu.sink.rollInterval = 0\n"
            f"a1.sinks.kus.type = file_roll\na1.sinks.kus.channel = cus\na1.sinks.kus.sink.directory = {us}\n"
            "a1.sinks.kus.sink.rollInterval = 0\n")
    col = Agent(flumen_bin, subdir(tmp_path, "col"), text)
    try:
        col.wait_port(port)
        for dc in ("eu", "us"):
            data = tmp_path / f"{dc}.txt"
            data.write_text("".join(f"{dc}-{i}\n" for i in range(50)))
            hdr = tmp_path / f"{dc}.hdr"
            hdr.write_text(f"dc={dc}\n")
            r = subprocess.run([flumen_bin, "avro-client", "-H", "127.0.0.1", "-p", str(port), "-F", str(data),
                                "-R", str(hdr)], capture_output=True, timeout=30)
            assert r.returncode == 0, r.stderr
        data = tmp_path / "none.txt"
        data.write_text("no-header\n")
        r = subprocess.run([flumen_bin, "avro-client", "-H", "127.0.0.1", "-p", str(port), "-F", str(data)],
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        want_eu = sorted([f"eu-{i}" for i in range(50)] + ["no-header"])
        want_us = sorted(f"us-{i}" for i in range(50))
        wait_until(lambda: out_lines(eu) == want_eu and out_lines(us) == want_us, timeout=20,
                   what="each dc's lines in its own sink")
    finally:
        assert col.stop() == 0


def run_group(flumen_bin, tmp_path, group_text):
    """A sender with a sink group over two collectors; collector A is stopped half way."""
    out_a, out_b = subdir(tmp_path, "a"), subdir(tmp_path, "b")
    pa, pb, nc = free_port(), free_port(), free_port()
    col_a = Agent(flumen_bin, subdir(tmp_path, "cola"), collector(pa, out_a))
    col_b = Agent(flumen_bin, subdir(tmp_path, "colb"), collector(pb, out_b))
    snd = Agent(flumen_bin, subdir(tmp_path, "snd"),
                sender(nc, avro_sink("k1", pa) + avro_sink("k2", pb), sinks="k1 k2", group=group_text))
    try:
        col_a.wait_port(pa)
        col_b.wait_port(pb)
        snd.wait_port(nc)
        first = [f"first-{i}\n".encode() for i in range(400)]
        assert netcat_lines(nc, first) == b"OK\n" * 400
        want = sorted(l.decode().rstrip("\n") for l in first)
        wait_until(lambda: out_lines(out_a, out_b) == want, timeout=20, what="the first lines")
        got_a_first = len(out_lines(out_a))
        assert col_a.stop() == 0  # the collector stops; the group must route around it
        second = [f"second-{i}\n".encode() for i in range(400)]
        assert netcat_lines(nc, second) == b"OK\n" * 400
        want = sorted(want + [l.decode().rstrip("\n") for l in second])
        wait_until(lambda: sorted(set(out_lines(out_a, out_b))) == want, timeout=30,
                   what="every line at the collector still running")
        assert len(out_lines(out_a, out_b)) == len(want), "a line arrived twice"
        return got_a_first, len(out_lines(out_b))
    finally:
        assert snd.stop() == 0
        col_a.stop()
        assert col_b.stop() == 0


def test_load_balancing_group_over_two_collectors(flumen_bin, tmp_path):
    got_a, got_b = run_group(flumen_bin, tmp_path, (
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = load_balance\n"
        "a1.sinkgroups.g1.processor.selector = round_robin\na1.sinkgroups.g1.processor.backoff = true\n"))
    assert got_a > 0 and got_b > 0  # both collectors got a share


def test_failover_group_over_two_collectors(flumen_bin, tmp_path):
    got_a, got_b = run_group(flumen_bin, tmp_path, (
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n"
        "a1.sinkgroups.g1.processor.priority.k1 = 10\na1.sinkgroups.g1.processor.priority.k2 = 5\n"))
    assert got_a == 400  # the preferred collector took everything while it was up
    assert got_b == 400
