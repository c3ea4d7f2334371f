"""Flume's Avro RPC through the real binary, proven against an independent implementation:
Python's `avro` package encodes and decodes every datum (schemas from Flume's `flume.avdl`
and Avro's handshake schemas); only the Netty framing is built by hand here.
`compression-type = deflate` is checked against Python's `zlib` (a zlib stream with a sync
flush per write under the frames, as Netty's ZlibEncoder/ZlibDecoder), `ssl` against
Python's `ssl` with certificates made by `openssl` and Java's `keytool`."""
import hashlib
import io
import pathlib
import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib

import avro.io
import pytest
import avro.protocol
import avro.schema

from agent_helpers import Agent, fan_in, free_port, netcat_lines, read_dir, wait_until

# Flume's flume.avdl (AvroSourceProtocol), as JSON.
FLUME_PROTOCOL = avro.protocol.parse("""
{"protocol": "AvroSourceProtocol", "namespace": "org.apache.flume.source.avro",
 "types": [
   {"type": "enum", "name": "Status", "symbols": ["OK", "FAILED", "UNKNOWN"]},
   {"type": "record", "name": "AvroFlumeEvent", "fields": [
     {"name": "headers", "type": {"type": "map", "values": "string"}},
     {"name": "body", "type": "bytes"}]}],
 "messages": {
   "append": {"request": [{"name": "event", "type": "AvroFlumeEvent"}], "response": "Status"},
   "appendBatch": {"request": [{"name": "events", "type": {"type": "array", "items": "AvroFlumeEvent"}}],
                   "response": "Status"}}}
""")
EVENT = FLUME_PROTOCOL.types_dict["AvroFlumeEvent"]
STATUS = FLUME_PROTOCOL.types_dict["Status"]
EVENTS = avro.schema.parse('{"type": "array", "items": ' + str(EVENT) + '}')

# Avro's IPC handshake schemas (Avro specification).
_MD5 = '{"type": "fixed", "name": "MD5", "namespace": "org.apache.avro.ipc", "size": 16}'
HS_REQ = avro.schema.parse('{"type": "record", "name": "HandshakeRequest", "namespace": "org.apache.avro.ipc", "fields": ['
                           '{"name": "clientHash", "type": ' + _MD5 + '},'
                           '{"name": "clientProtocol", "type": ["null", "string"]},'
                           '{"name": "serverHash", "type": "MD5"},'
                           '{"name": "meta", "type": ["null", {"type": "map", "values": "bytes"}]}]}')
HS_RESP = avro.schema.parse('{"type": "record", "name": "HandshakeResponse", "namespace": "org.apache.avro.ipc", "fields": ['
                            '{"name": "match", "type": {"type": "enum", "name": "HandshakeMatch", "symbols": ["BOTH", "CLIENT", "NONE"]}},'
                            '{"name": "serverProtocol", "type": ["null", "string"]},'
                            '{"name": "serverHash", "type": ["null", ' + _MD5 + ']},'
                            '{"name": "meta", "type": ["null", {"type": "map", "values": "bytes"}]}]}')
META = avro.schema.parse('{"type": "map", "values": "bytes"}')
ERRORS = avro.schema.parse('["string"]')


def enc(schema, datum, buf):
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buf))


def dec(schema, buf):
    return avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(buf))


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed")
        out += chunk
    return out


def read_frame(sock):
    serial, count = struct.unpack(">ii", recv_exact(sock, 8))
    data = b""
    for _ in range(count):
        (n,) = struct.unpack(">i", recv_exact(sock, 4))
        data += recv_exact(sock, n)
    return serial, data


class ZlibSocket:
    """A socket carrying one zlib stream each way, as Netty's ZlibEncoder/ZlibDecoder with the
    ZLIB wrapper: every write is compressed and ended with a sync flush."""

    def __init__(self, sock, level=6):
        self.sock, self.c, self.d = sock, zlib.compressobj(level), zlib.decompressobj()
        self.pending = b""
        self.raw_in = b""  # the first compressed bytes received, for checks

    def sendall(self, data):
        self.sock.sendall(self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH))

    def recv(self, n):
        while not self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            if len(self.raw_in) < 64:
                self.raw_in += chunk[:64]
            self.pending += self.d.decompress(chunk)
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        self.sock.close()


def make_cert(d: pathlib.Path, names=("DNS:localhost", "IP:127.0.0.1")):
    """A self-signed certificate: returns (cert.pem, key.pem, keystore.pem = both)."""
    cert, key, ks = d / "cert.pem", d / "key.pem", d / "keystore.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=" + ",".join(names)], check=True, capture_output=True)
    ks.write_text(cert.read_text() + key.read_text())
    return cert, key, ks


def write_frame(sock, serial, payload, split=True):
    # Several buffers per frame, as Netty's transceiver writes them.
    parts = [payload[:7], payload[7:]] if split and len(payload) > 7 else [payload]
    sock.sendall(struct.pack(">ii", serial, len(parts)) + b"".join(struct.pack(">i", len(p)) + p for p in parts))


class PyClient:
    """An Avro IPC client of AvroSourceProtocol."""

    def __init__(self, port, deflate=False, tls_ca=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls_ca is not None:
            ctx = ssl.create_default_context(cafile=str(tls_ca))
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        if deflate:
            self.sock = ZlibSocket(self.sock)
        self.serial = 0
        self.handshaken = False
        self.matches = []

    def call(self, message, datum):
        buf = io.BytesIO()
        if not self.handshaken:
            # An unknown server hash: the server must answer CLIENT with its protocol.
            enc(HS_REQ, {"clientHash": FLUME_PROTOCOL.md5, "clientProtocol": str(FLUME_PROTOCOL),
                         "serverHash": b"\0" * 16, "meta": None}, buf)
        enc(META, {}, buf)
        enc(avro.schema.parse('"string"'), message, buf)
        if message == "append":
            enc(EVENT, datum, buf)
        else:
            enc(EVENTS, datum, buf)
        self.serial += 1
        write_frame(self.sock, self.serial, buf.getvalue())
        serial, data = read_frame(self.sock)
        assert serial == self.serial
        r = io.BytesIO(data)
        if not self.handshaken:
            hs = dec(HS_RESP, r)
            self.matches.append(hs["match"])
            if hs["match"] != "NONE":
                self.handshaken = True
                if hs["serverProtocol"] is not None:
                    assert hashlib.md5(hs["serverProtocol"].encode()).digest() == hs["serverHash"]
                    assert set(avro.protocol.parse(hs["serverProtocol"]).messages) == {"append", "appendBatch"}
        dec(META, r)
        is_error = avro.io.BinaryDecoder(r).read_boolean()
        assert not is_error, dec(ERRORS, r)
        return dec(STATUS, r)

    def close(self):
        self.sock.close()


class PyServer:
    """An Avro IPC server of AvroSourceProtocol that records the events it gets."""

    def __init__(self, port, status="OK", deflate=False, tls=None):
        self.lsock = socket.create_server(("127.0.0.1", port))
        self.lsock.settimeout(0.2)
        self.events, self.handshakes, self.status = [], [], status
        self.deflate, self.wires = deflate, []
        self.tls = None
        if tls is not None:  # (cert.pem, key.pem)
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(str(tls[0]), str(tls[1]))
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag:
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(30)
        handshaken = False
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            if self.deflate:
                conn = ZlibSocket(conn)
            self.wires.append(conn)
            while not self.stop_flag:
                serial, data = read_frame(conn)
                r, out = io.BytesIO(data), io.BytesIO()
                if not handshaken:
                    hs = dec(HS_REQ, r)
                    self.handshakes.append(hs)
                    if hs["clientProtocol"] is None and hs["clientHash"] != FLUME_PROTOCOL.md5:
                        # As Java's Responder: unknown client, no protocol -> NONE, call not served.
                        enc(HS_RESP, {"match": "NONE", "serverProtocol": str(FLUME_PROTOCOL),
                                      "serverHash": FLUME_PROTOCOL.md5, "meta": None}, out)
                        write_frame(conn, serial, out.getvalue())
                        continue
                    if hs["clientProtocol"] is not None:
                        assert avro.protocol.parse(hs["clientProtocol"]).messages.keys() == {"append", "appendBatch"}
                    enc(HS_RESP, {"match": "CLIENT", "serverProtocol": str(FLUME_PROTOCOL),
                                  "serverHash": FLUME_PROTOCOL.md5, "meta": None}, out)
                    handshaken = True
                dec(META, r)
                name = avro.io.BinaryDecoder(r).read_utf8()
                if name == "append":
                    self.events.append(dec(EVENT, r))
                elif name == "appendBatch":
                    self.events.extend(dec(EVENTS, r))
                assert r.read() == b""
                enc(META, {}, out)
                avro.io.BinaryEncoder(out).write_boolean(False)
                enc(STATUS, self.status, out)
                write_frame(conn, serial, out.getvalue())
        except (EOFError, OSError, zlib.error):
            pass
        finally:
            conn.close()

    def close(self):
        self.stop_flag = True
        self.thread.join(timeout=5)
        self.lsock.close()


def memory(name="c1"):
    return (f"a1.channels.{name}.type = memory\na1.channels.{name}.capacity = 10000\n"
            f"a1.channels.{name}.transactionCapacity = 1000\n")


def collector_conf(port, out):
    return ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = avro\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
            "a1.sources.r1.channels = c1\n" + memory()
            + f"a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.directory = {out}\n"
            "a1.sinks.k1.sink.rollInterval = 0\na1.sinks.k1.sink.serializer = header_and_text\n")


def sender_conf(nc_port, avro_port, batch=10):
    return ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            f"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {nc_port}\n"
            "a1.sources.r1.channels = c1\n" + memory()
            + f"a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\n"
            f"a1.sinks.k1.port = {avro_port}\na1.sinks.k1.batch-size = {batch}\n"
            "a1.sinks.k1.connect-timeout = 2000\na1.sinks.k1.request-timeout = 5000\n")


def test_python_client_to_avro_source_file_roll(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    agent = Agent(flumen_bin, tmp_path, collector_conf(port, out))
    try:
        agent.wait_port(port)
        c = PyClient(port)
        assert c.call("appendBatch", [{"headers": {"h": "1"}, "body": b"first"},
                                      {"headers": {}, "body": b"second"}]) == "OK"
        assert c.call("append", {"headers": {"k": "v", "a": "b"}, "body": b"third"}) == "OK"
        assert c.call("appendBatch", []) == "OK"
        assert c.matches == ["CLIENT"]  # we sent a wrong server hash: the server told its protocol
        c.close()
        want = "{h=1} first\n{} second\n{a=b, k=v} third\n"
        wait_until(lambda: read_dir(out) == want, what=f"file_roll output {want!r}, got {read_dir(out)!r}")
    finally:
        assert agent.stop() == 0


def test_avro_sink_retries_until_python_server_is_up(flumen_bin, tmp_path):
    nc_port, avro_port = free_port(), free_port()
    agent = Agent(flumen_bin, tmp_path, sender_conf(nc_port, avro_port, batch=3))
    server = None
    try:
        agent.wait_port(nc_port)
        lines = [f"line {i}\n".encode() for i in range(10)]
        assert netcat_lines(nc_port, lines) == b"OK\n" * 10
        agent.wait_log("Failed to send events", timeout=60)  # the next tier is down
        server = PyServer(avro_port)
        wait_until(lambda: len(server.events) >= 10, timeout=60, what="10 events at the Python server")
        time.sleep(0.3)
        assert sorted(e["body"] for e in server.events) == sorted(l.rstrip(b"\n") for l in lines)
        assert all(e["headers"] == {} for e in server.events)
        # When our hash is unknown to this server, it answered NONE and the sink resent its protocol.
        first = server.handshakes[0]
        assert first["clientProtocol"] is None
        if first["clientHash"] != FLUME_PROTOCOL.md5:
            assert server.handshakes[1]["clientProtocol"] is not None
    finally:
        assert agent.stop() == 0
        if server:
            server.close()


def test_two_agents_fan_in_to_collector(flumen_bin, tmp_path):
    (tmp_path / "out").mkdir()
    port = free_port()
    fan_in(flumen_bin, tmp_path, collector_conf(port, tmp_path / "out"), lambda nc: sender_conf(nc, port), port,
           lines_per_sender=200)


def test_avro_client_sends_file_with_headers(flumen_bin, tmp_path):
    port = free_port()
    server = PyServer(port)
    try:
        data = tmp_path / "data.txt"
        data.write_text("one\ntwo\n\nfour")
        hdr = tmp_path / "headers.txt"
        hdr.write_text("host=web1\ndc = eu\n")
        r = subprocess.run([flumen_bin, "avro-client", "-H", "127.0.0.1", "-p", str(port), "-F", str(data),
                            "-R", str(hdr)], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert [e["body"] for e in server.events] == [b"one", b"two", b"", b"four"]
        assert all(e["headers"] == {"host": "web1", "dc": "eu"} for e in server.events)
        r = subprocess.run([flumen_bin, "avro-client", "-H", "127.0.0.1", "-p", str(port)],
                           input=b"from stdin\n", capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert server.events[-1] == {"headers": {}, "body": b"from stdin"}
    finally:
        server.close()


def test_avro_client_fails_when_nothing_listens(flumen_bin, tmp_path):
    r = subprocess.run([flumen_bin, "avro-client", "-H", "127.0.0.1", "-p", str(free_port())],
                       input=b"x\n", capture_output=True, timeout=60)
    assert r.returncode != 0
    assert b"cannot connect" in r.stderr


def test_python_deflate_client_to_deflate_source(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    conf = collector_conf(port, out) + "a1.sources.r1.compression-type = deflate\n"
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        c = PyClient(port, deflate=True)
        big = b"y" * 100_000
        assert c.call("appendBatch", [{"headers": {"z": "1"}, "body": b"zipped"},
                                      {"headers": {}, "body": big}]) == "OK"
        assert c.call("append", {"headers": {}, "body": b"again"}) == "OK"
        assert c.sock.raw_in[:1] == b"\x78"  # the replies are a zlib stream too
        c.close()
        want = "{z=1} zipped\n{} " + "y" * 100_000 + "\n{} again\n"
        wait_until(lambda: read_dir(out) == want, what="the deflated events in file_roll")
        # A client without compression gets nothing in.
        plain = socket.create_connection(("127.0.0.1", port), timeout=10)
        write_frame(plain, 1, b"\0" * 40)
        plain.settimeout(10)
        try:
            assert plain.recv(100) == b""  # the source closes the connection
        except ConnectionResetError:
            pass
        plain.close()
        assert read_dir(out) == want
    finally:
        assert agent.stop() == 0


def test_deflate_sink_to_python_deflate_server(flumen_bin, tmp_path):
    nc_port, avro_port = free_port(), free_port()
    server = PyServer(avro_port, deflate=True)
    conf = sender_conf(nc_port, avro_port, batch=5) + (
        "a1.sinks.k1.compression-type = deflate\na1.sinks.k1.compression-level = 9\n")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(nc_port)
        lines = [f"deflated line {i}\n".encode() for i in range(20)]
        assert netcat_lines(nc_port, lines) == b"OK\n" * 20
        wait_until(lambda: len(server.events) >= 20, timeout=20, what="20 events at the Python server")
        assert sorted(e["body"] for e in server.events) == sorted(l.rstrip(b"\n") for l in lines)
        assert server.wires[0].raw_in[:1] == b"\x78"  # a zlib stream (CMF 0x78: deflate, 32K window)
    finally:
        assert agent.stop() == 0
        server.close()


def test_python_tls_client_to_tls_deflate_source(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cert, _key, ks = make_cert(tmp_path)
    port = free_port()
    conf = collector_conf(port, out) + (
        "a1.sources.r1.compression-type = deflate\na1.sources.r1.ssl = true\n"
        f"a1.sources.r1.keystore = {ks}\na1.sources.r1.keystore-type = PEM\n"
        "a1.sources.r1.keystore-password = unused\n")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        c = PyClient(port, deflate=True, tls_ca=cert)
        assert c.call("appendBatch", [{"headers": {}, "body": b"secret"}]) == "OK"
        c.close()
        wait_until(lambda: read_dir(out) == "{} secret\n", what="the TLS event in file_roll")
    finally:
        assert agent.stop() == 0


def test_tls_sink_to_python_tls_server(flumen_bin, tmp_path):
    cert, key, _ks = make_cert(tmp_path)
    nc_port, avro_port = free_port(), free_port()
    server = PyServer(avro_port, tls=(cert, key))
    conf = sender_conf(nc_port, avro_port, batch=5) + (
        f"a1.sinks.k1.ssl = true\na1.sinks.k1.truststore = {cert}\na1.sinks.k1.truststore-type = PEM\n")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(nc_port)
        lines = [f"tls line {i}\n".encode() for i in range(12)]
        assert netcat_lines(nc_port, lines) == b"OK\n" * 12
        wait_until(lambda: len(server.events) >= 12, timeout=20, what="12 events at the Python TLS server")
        assert sorted(e["body"] for e in server.events) == sorted(l.rstrip(b"\n") for l in lines)
    finally:
        assert agent.stop() == 0
        server.close()


@pytest.mark.parametrize("keyalg", ["RSA", "EC"])
def test_java_keystore_is_refused_and_the_documented_conversion_works(flumen_bin, tmp_path, keyalg):
    """A JKS made by keytool: the source refuses it naming the conversion; the documented
    commands (docs/agent.md) turn it into PEM files that work for the source and the sink."""
    jks = tmp_path / "keystore.jks"
    alg = ["-keyalg", "RSA", "-keysize", "2048"] if keyalg == "RSA" else ["-keyalg", "EC", "-groupname", "secp256r1"]
    subprocess.run(["keytool", "-genkeypair", *alg, "-alias", "flume",
                    "-keystore", str(jks), "-storetype", "JKS", "-storepass", "changeit", "-keypass", "changeit",
                    "-dname", "CN=localhost", "-ext", "san=dns:localhost,ip:127.0.0.1", "-validity", "2"],
                   check=True, capture_output=True, timeout=60)
    out = tmp_path / "out"
    out.mkdir()
    port, nc_port = free_port(), free_port()
    ssl_props = "a1.sources.r1.ssl = true\na1.sources.r1.keystore-password = changeit\n"
    bad = Agent(flumen_bin, tmp_path, collector_conf(port, out) + ssl_props
                + f"a1.sources.r1.keystore = {jks}\na1.sources.r1.keystore-type = JKS\n")
    assert bad.proc.wait(timeout=30) != 0
    bad.stop()
    assert "keytool -importkeystore" in bad.text() and "openssl pkcs12" in bad.text(), bad.text()
    # The commands of docs/agent.md.
    subprocess.run(["keytool", "-importkeystore", "-srckeystore", str(jks), "-srcstoretype", "JKS",
                    "-destkeystore", "keystore.p12", "-deststoretype", "PKCS12",
                    "-srcstorepass", "changeit", "-deststorepass", "changeit"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=60)
    if keyalg == "RSA":
        subprocess.run("openssl pkcs12 -in keystore.p12 -nodes -out keystore.pem -passin pass:changeit",
                       shell=True, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    else:
        subprocess.run("openssl pkcs12 -in keystore.p12 -nokeys -out keystore.pem -passin pass:changeit; "
                       "openssl pkcs12 -in keystore.p12 -nodes -nocerts -passin pass:changeit "
                       "| openssl ec >> keystore.pem",
                       shell=True, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    with open(tmp_path / "truststore.pem", "wb") as f:
        subprocess.run(["keytool", "-list", "-rfc", "-keystore", str(jks), "-storepass", "changeit"],
                       stdout=f, check=True, timeout=60)
    collector = Agent(flumen_bin, tmp_path, collector_conf(port, out) + ssl_props
                      + f"a1.sources.r1.keystore = {tmp_path / 'keystore.pem'}\n")
    sender = Agent(flumen_bin, tmp_path, sender_conf(nc_port, port) + (
        f"a1.sinks.k1.ssl = true\na1.sinks.k1.truststore = {tmp_path / 'truststore.pem'}\n"))
    try:
        collector.wait_port(port)
        sender.wait_port(nc_port)
        assert netcat_lines(nc_port, [b"via converted keystore\n"]) == b"OK\n"
        wait_until(lambda: read_dir(out) == "{} via converted keystore\n", timeout=20,
                   what="the event over TLS with the converted stores")
    finally:
        c, s = collector.stop(), sender.stop()
        assert (c, s) == (0, 0), collector.text()
