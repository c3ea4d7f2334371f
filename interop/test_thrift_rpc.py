"""Flume's Thrift RPC through the real binary, proven against an independent implementation:
thriftpy2 parses Flume's published `flume.thrift` (interop/flume.thrift) at run time and does
all the encoding (compact and binary protocols, framed transport) on the Python side."""
import pathlib
import signal
import socket
import subprocess
import threading
import time

import pytest
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.rpc import make_client, make_server
from thriftpy2.transport import TFramedTransportFactory

from agent_helpers import Agent, fan_in, free_port, netcat_lines, read_dir, wait_until

flume = thriftpy2.load(str(pathlib.Path(__file__).with_name("flume.thrift")), module_name="flume_thrift")

PROTOCOLS = {"compact": TCompactProtocolFactory, "binary": TBinaryProtocolFactory}


def client(port, protocol):
    return make_client(flume.ThriftSourceProtocol, "127.0.0.1", port, proto_factory=PROTOCOLS[protocol](),
                       trans_factory=TFramedTransportFactory(), timeout=20000)


def event(body, **headers):
    return flume.ThriftFlumeEvent(headers=headers, body=body)


class PyServer:
    """A thriftpy2 server of ThriftSourceProtocol that records the events it gets."""

    def __init__(self, port, protocol, status=None):
        self.events = []
        self.calls = []
        self.status = flume.Status.OK if status is None else status
        outer = self

        class Handler:
            def append(self, event):
                outer.calls.append("append")
                outer.events.append(event)
                return outer.status

            def appendBatch(self, events):
                outer.calls.append("appendBatch")
                outer.events.extend(events)
                return outer.status

        self.server = make_server(flume.ThriftSourceProtocol, Handler(), "127.0.0.1", port,
                                  proto_factory=PROTOCOLS[protocol](), trans_factory=TFramedTransportFactory(),
                                  client_timeout=60000)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            self.server.serve()
        except OSError:
            pass  # closed

    def close(self):
        self.server.close()
        self.thread.join(timeout=5)


def memory(name="c1", capacity=10000, tx=1000):
    return (f"a1.channels.{name}.type = memory\na1.channels.{name}.capacity = {capacity}\n"
            f"a1.channels.{name}.transactionCapacity = {tx}\n")


def collector_conf(port, out, protocol=None, channel=None):
    return ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = thrift\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
            + (f"a1.sources.r1.protocol = {protocol}\n" if protocol else "")
            + "a1.sources.r1.channels = c1\n" + (channel or memory())
            + f"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = {out}\n"
            "a1.sinks.k1.sink.rollInterval = 0\na1.sinks.k1.sink.serializer = header_and_text\n")


def sender_conf(nc_port, thrift_port, protocol=None, batch=10, headers=False):
    return ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {nc_port}\n"
            "a1.sources.r1.channels = c1\n"
            + ("a1.sources.r1.interceptors = i1\na1.sources.r1.interceptors.i1.type = static\n"
               "a1.sources.r1.interceptors.i1.key = dc\na1.sources.r1.interceptors.i1.value = eu-1\n"
               if headers else "")
            + memory()
            + f"a1.sinks.k1.type = thrift\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\n"
            f"a1.sinks.k1.port = {thrift_port}\na1.sinks.k1.batch-size = {batch}\n"
            + (f"a1.sinks.k1.protocol = {protocol}\n" if protocol else "")
            + "a1.sinks.k1.connect-timeout = 2000\na1.sinks.k1.request-timeout = 5000\n")


@pytest.mark.parametrize("protocol", ["compact", "binary"])
def test_python_client_to_thrift_source_file_roll(flumen_bin, tmp_path, protocol):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    # compact is Flume's default: leave the property out for it.
    agent = Agent(flumen_bin, tmp_path, collector_conf(port, out, protocol if protocol == "binary" else None))
    try:
        agent.wait_port(port)
        c = client(port, protocol)
        assert c.appendBatch([event(b"first", h="1"), event(b"second")]) == flume.Status.OK
        assert c.append(event(b"third", k="v", a="b")) == flume.Status.OK
        assert c.appendBatch([]) == flume.Status.OK
        assert c.append(event(b"\xc3\xa9t\xc3\xa9", unicode="\u00e9")) == flume.Status.OK
        c.close()
        want = "{h=1} first\n{} second\n{a=b, k=v} third\n{unicode=\u00e9} \u00e9t\u00e9\n"
        wait_until(lambda: read_dir(out) == want, what=f"file_roll output {want!r}, got {read_dir(out)!r}")
    finally:
        assert agent.stop() == 0


def test_thrift_source_answers_failed_when_the_channel_is_full(flumen_bin, tmp_path):
    port = free_port()
    # No sink: the channel (capacity 5) fills up and stays full.
    conf = ("a1.sources = r1\na1.channels = c1\n"
            f"a1.sources.r1.type = thrift\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
            "a1.sources.r1.channels = c1\n" + memory(capacity=5, tx=5) + "a1.channels.c1.keep-alive = 1\n")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        c = client(port, "compact")
        assert c.appendBatch([event(b"a%d" % i) for i in range(3)]) == flume.Status.OK
        # 3 + 3 > 5: refused, so that the sender keeps its events and retries.
        assert c.appendBatch([event(b"b%d" % i) for i in range(3)]) == flume.Status.FAILED
        assert c.append(event(b"c")) == flume.Status.OK
        assert c.append(event(b"d")) == flume.Status.OK
        assert c.append(event(b"e")) == flume.Status.FAILED
        c.close()
    finally:
        assert agent.stop() == 0


@pytest.mark.parametrize("protocol", ["compact", "binary"])
def test_thrift_sink_retries_until_python_server_is_up(flumen_bin, tmp_path, protocol):
    nc_port, thrift_port = free_port(), free_port()
    agent = Agent(flumen_bin, tmp_path, sender_conf(nc_port, thrift_port, protocol, batch=3, headers=True))
    server = None
    try:
        agent.wait_port(nc_port)
        lines = [f"line {i}\n".encode() for i in range(10)]
        assert netcat_lines(nc_port, lines) == b"OK\n" * 10
        agent.wait_log("Failed to send events", timeout=10)  # the next tier is down
        server = PyServer(thrift_port, protocol)
        wait_until(lambda: len(server.events) >= 10, timeout=30, what="10 events at the Python server")
        time.sleep(0.3)
        assert sorted(e.body for e in server.events) == sorted(l.rstrip(b"\n") for l in lines)
        assert all(e.headers == {"dc": "eu-1"} for e in server.events)
        assert set(server.calls) == {"appendBatch"}
    finally:
        assert agent.stop() == 0
        if server:
            server.close()


def test_thrift_sink_keeps_events_while_server_answers_failed(flumen_bin, tmp_path):
    nc_port, thrift_port = free_port(), free_port()
    server = PyServer(thrift_port, "compact", status=flume.Status.FAILED)
    agent = Agent(flumen_bin, tmp_path, sender_conf(nc_port, thrift_port, batch=5))
    try:
        agent.wait_port(nc_port)
        lines = [f"l{i}\n".encode() for i in range(5)]
        assert netcat_lines(nc_port, lines) == b"OK\n" * 5
        agent.wait_log("FAILED", timeout=15)
        server.status = flume.Status.OK
        # The refused batch was rolled back and is sent again, whole.
        wait_until(lambda: server.calls.count("appendBatch") >= 2, timeout=30, what="a retry")
        assert [e.body for e in server.events[-5:]] == [l.rstrip(b"\n") for l in lines]
    finally:
        assert agent.stop() == 0
        server.close()


def test_two_agents_fan_in_to_collector(flumen_bin, tmp_path):
    (tmp_path / "out").mkdir()
    port = free_port()
    fan_in(flumen_bin, tmp_path, collector_conf(port, tmp_path / "out"), lambda nc: sender_conf(nc, port), port,
           lines_per_sender=300)


def complete_lines(out):
    """Lines of every output file; a kill -9 may leave a partial last line (not committed,
    so sent again after the restart), which is left out."""
    lines = []
    for p in sorted(out.iterdir()):
        lines.extend(p.read_text().split("\n")[:-1])
    return lines


def test_collector_killed_and_restarted_mid_stream_loses_nothing(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cdir, sdir = tmp_path / "collector", tmp_path / "sender"
    cdir.mkdir()
    sdir.mkdir()
    thrift_port, nc_port = free_port(), free_port()
    # A durable channel at the collector: what it acknowledged survives the kill.
    file_channel = ("a1.channels.c1.type = file\n"
                    f"a1.channels.c1.checkpointDir = {cdir / 'cp'}\na1.channels.c1.dataDirs = {cdir / 'data'}\n"
                    "a1.channels.c1.transactionCapacity = 1000\n")
    conf = collector_conf(thrift_port, out, channel=file_channel)
    collector = Agent(flumen_bin, cdir, conf)
    sender = Agent(flumen_bin, sdir, sender_conf(nc_port, thrift_port, batch=20))
    want = [f"{{}} m{i:05d}" for i in range(3000)]
    replies = []

    def send():
        with socket.create_connection(("127.0.0.1", nc_port), timeout=30) as s:
            for chunk in range(30):
                s.sendall(b"".join(f"m{i:05d}\n".encode() for i in range(chunk * 100, chunk * 100 + 100)))
                time.sleep(0.05)
            got = b""
            deadline = time.time() + 30
            while got.count(b"\n") < 3000 and time.time() < deadline:
                data = s.recv(65536)
                if not data:
                    break
                got += data
            replies.append(got)

    restarted = None
    try:
        collector.wait_port(thrift_port)
        sender.wait_port(nc_port)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        wait_until(lambda: len(complete_lines(out)) > 0, timeout=30, what="the first lines at the collector")
        collector.proc.send_signal(signal.SIGKILL)
        collector.proc.wait()
        collector.log.close()
        mid = len(set(complete_lines(out)))
        restarted = Agent(flumen_bin, cdir, conf)
        restarted.wait_port(thrift_port, timeout=30)
        t.join(timeout=60)
        assert replies and replies[0] == b"OK\n" * 3000
        wait_until(lambda: set(complete_lines(out)) >= set(want), timeout=60,
                   what=f"all 3000 lines after the restart ({mid} before the kill)")
        assert mid < 3000, "the kill came after everything arrived: not mid-stream"
        assert set(complete_lines(out)) == set(want)
    finally:
        assert sender.stop() == 0
        if restarted:
            assert restarted.stop() == 0
        elif collector.proc.poll() is None:
            collector.stop()


def make_cert(d: pathlib.Path):
    """A self-signed certificate for localhost and 127.0.0.1: returns (cert.pem, keystore.pem)."""
    cert, key, ks = d / "cert.pem", d / "key.pem", d / "keystore.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    ks.write_text(cert.read_text() + key.read_text())
    return cert, ks


@pytest.mark.parametrize("protocol", ["compact", "binary"])
def test_tls_python_client_and_tls_sink_to_tls_source(flumen_bin, tmp_path, protocol):
    """thriftpy2's TSSLSocket client and a Flumen thrift sink with `ssl = true`, both to a TLS
    thrift source (Flume's keystore/truststore properties, PEM stores)."""
    out = tmp_path / "out"
    out.mkdir()
    cert, ks = make_cert(tmp_path)
    port, nc_port = free_port(), free_port()
    (tmp_path / "collector").mkdir()
    (tmp_path / "sender").mkdir()
    collector = Agent(flumen_bin, tmp_path / "collector", collector_conf(port, out, protocol) + (
        f"a1.sources.r1.ssl = true\na1.sources.r1.keystore = {ks}\na1.sources.r1.keystore-type = PEM\n"
        "a1.sources.r1.keystore-password = unused\na1.sources.r1.exclude-protocols = SSLv3\n"))
    sender = None
    try:
        collector.wait_port(port)
        c = make_client(flume.ThriftSourceProtocol, "127.0.0.1", port, proto_factory=PROTOCOLS[protocol](),
                        trans_factory=TFramedTransportFactory(), timeout=20000, cafile=str(cert))
        assert c.appendBatch([event(b"py secret", h="1")]) == flume.Status.OK
        c.close()
        wait_until(lambda: read_dir(out) == "{h=1} py secret\n", what="the TLS client's event in file_roll")
        sender = Agent(flumen_bin, tmp_path / "sender", sender_conf(nc_port, port, protocol, batch=4) + (
            f"a1.sinks.k1.ssl = true\na1.sinks.k1.truststore = {cert}\na1.sinks.k1.truststore-type = PEM\n"
            "a1.sinks.k1.truststore-password = unused\n"))
        sender.wait_port(nc_port)
        lines = [f"tls line {i}\n".encode() for i in range(10)]
        assert netcat_lines(nc_port, lines) == b"OK\n" * 10
        want = "{h=1} py secret\n" + "".join("{} " + l.decode() for l in lines)
        wait_until(lambda: sorted(read_dir(out).splitlines()) == sorted(want.splitlines()),
                   timeout=30, what=f"the sink's 10 TLS events in file_roll, got {read_dir(out)!r}")
    finally:
        if sender:
            assert sender.stop() == 0
        assert collector.stop() == 0
