"""More sources end to end: syslogtcp/syslogudp (RFC 5424 and 3164 headers), http (JSON
handler, 400, 503 when the channel is full), netcatudp, exec."""
import json
import socket
import urllib.error
import urllib.request

from agent_helpers import Agent, free_port, read_dir, wait_until


def pipeline(source_lines, out, capacity=1000, sink="file_roll"):
    sink_conf = (f"a1.sinks.k1.type = file_roll\na1.sinks.k1.sink.directory = {out}\n"
                 "a1.sinks.k1.sink.rollInterval = 0\na1.sinks.k1.sink.serializer = header_and_text\n")
    if sink == "none":
        sink_conf = ""
    return ("a1.sources = r1\na1.channels = c1\n" + ("a1.sinks = k1\na1.sinks.k1.channel = c1\n" if sink_conf else "")
            + source_lines + "a1.sources.r1.channels = c1\n"
            + f"a1.channels.c1.type = memory\na1.channels.c1.capacity = {capacity}\n"
            + f"a1.channels.c1.transactionCapacity = {min(capacity, 100)}\na1.channels.c1.keep-alive = 0\n"
            + sink_conf)


def test_syslog_tcp_and_udp_headers(flumen_bin, tmp_path):
    out_t, out_u = tmp_path / "t", tmp_path / "u"
    out_t.mkdir()
    out_u.mkdir()
    tport, uport = free_port(), free_port()
    tcp = Agent(flumen_bin, tmp_path, pipeline(
        f"a1.sources.r1.type = syslogtcp\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.port = {tport}\n", out_t))
    udp = Agent(flumen_bin, tmp_path, pipeline(
        f"a1.sources.r1.type = syslogudp\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.port = {uport}\n"
        "a1.sources.r1.keepFields = all\n", out_u))
    try:
        tcp.wait_port(tport)
        with socket.create_connection(("127.0.0.1", tport)) as s:
            s.sendall(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed\n"
                      b"not syslog\n")
        want = ("{Facility=4, Severity=2, host=mymachine.example.com, priority=34, timestamp=1065910455003, "
                "version=1} su - ID47 - 'su root' failed\n"
                "{Facility=0, Severity=0, flume.syslog.status=Invalid} not syslog\n")
        wait_until(lambda: read_dir(out_t) == want, what=f"syslogtcp events {want!r}, got {read_dir(out_t)!r}")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp.wait_log("Starting Source r1")
        udp.wait_log("Starting Source r1")
        u.sendto(b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", ("127.0.0.1", uport))
        wait_until(lambda: "Use the BFG!" in read_dir(out_u), what="syslogudp event")
        line = read_dir(out_u)
        assert "Facility=1, Severity=5, host=10.0.0.99, priority=13, timestamp=" in line
        assert line.endswith("} <13>Feb  5 17:32:18 10.0.0.99 Use the BFG!\n"), line
    finally:
        assert tcp.stop() == 0
        assert udp.stop() == 0


def post(port, payload, content_type="application/json"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=payload, method="POST",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_http_source_json_and_errors(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    agent = Agent(flumen_bin, tmp_path, pipeline(
        f"a1.sources.r1.type = http\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n", out))
    try:
        agent.wait_port(port)
        events = [{"headers": {"a": "1"}, "body": "first"}, {"body": "second"}]
        assert post(port, json.dumps(events).encode(), "application/json; charset=UTF-8") == 200
        assert post(port, b"{not json") == 400
        wait_until(lambda: read_dir(out) == "{a=1} first\n{} second\n", what="http events")
    finally:
        assert agent.stop() == 0


def test_http_source_503_when_channel_full(flumen_bin, tmp_path):
    port = free_port()
    # No sink: the channel (capacity 2) fills up.
    agent = Agent(flumen_bin, tmp_path, pipeline(
        f"a1.sources.r1.type = http\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
        "a1.sinks = k1\na1.sinks.k1.type = null\na1.sinks.k1.channel = c9\n", tmp_path, capacity=2, sink="none"))
    try:
        agent.wait_port(port)
        assert post(port, json.dumps([{"body": "a"}, {"body": "b"}]).encode()) == 200
        assert post(port, json.dumps([{"body": "c"}]).encode()) == 503
    finally:
        agent.stop()


def test_netcatudp_and_exec(flumen_bin, tmp_path):
    out_u, out_e = tmp_path / "u", tmp_path / "e"
    out_u.mkdir()
    out_e.mkdir()
    uport = free_port()
    udp = Agent(flumen_bin, tmp_path, pipeline(
        f"a1.sources.r1.type = netcatudp\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {uport}\n"
        "a1.sources.r1.remoteAddress = from\n", out_u))
    exe = Agent(flumen_bin, tmp_path, pipeline(
        "a1.sources.r1.type = exec\na1.sources.r1.shell = /bin/sh -c\n"
        "a1.sources.r1.command = printf 'one\\\\ntwo\\\\r\\\\n'\na1.sources.r1.batchSize = 10\n", out_e))
    try:
        udp.wait_log("Starting Source r1")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.sendto(b"hello udp\nrest is dropped", ("127.0.0.1", uport))
        sender = "/127.0.0.1:%d" % u.getsockname()[1]
        wait_until(lambda: read_dir(out_u) == "{from=%s} hello udp\n" % sender, what="netcatudp event")
        wait_until(lambda: read_dir(out_e) == "{} one\n{} two\n", what=f"exec events, got {read_dir(out_e)!r}")
    finally:
        assert udp.stop() == 0
        assert exe.stop() == 0


def test_multiport_syslogtcp(flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    p1, p2 = free_port(), free_port()
    agent = Agent(flumen_bin, tmp_path, pipeline(
        f"a1.sources.r1.type = multiport_syslogtcp\na1.sources.r1.host = 127.0.0.1\na1.sources.r1.ports = {p1} {p2}\n"
        "a1.sources.r1.portHeader = port\n", out))
    try:
        agent.wait_port(p1)
        agent.wait_port(p2)
        for p in (p1, p2):
            with socket.create_connection(("127.0.0.1", p)) as s:
                s.sendall(b"<34>1 2003-10-11T22:14:15.003Z host1 hello\n")
        wait_until(lambda: len(read_dir(out).splitlines()) == 2, what="two events")
        for p in (p1, p2):
            assert ("{Facility=4, Priority=34, Severity=2, Version=1, host=host1, port=%d, timestamp=1065910455003} hello"
                    % p) in read_dir(out)
    finally:
        assert agent.stop() == 0
