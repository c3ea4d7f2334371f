"""The seed's Flume lesson: example.conf run as written (only the port changed), a telnet-like
client gets `OK` per line, and the logger sink prints Flume's event line."""
import os
import pathlib
import socket

from agent_helpers import Agent, free_port

SEED = pathlib.Path(__file__).resolve().parent.parent / "examples" / "example.conf"

EVENT_LINE = "Event: { headers:{} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D          Hello world!. }"


def example_conf(port: int) -> str:
    text = SEED.read_text()
    assert "a1.sources.r1.port = 44444" in text
    return text.replace("a1.sources.r1.port = 44444", f"a1.sources.r1.port = {port}")


def test_seed_example_ok_per_line_and_event_line(flumen_bin, tmp_path):
    port = free_port()
    agent = Agent(flumen_bin, tmp_path, example_conf(port))
    try:
        agent.wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rwb")
            f.write(b"Hello world!\r\n")  # telnet sends CR LF; Flume keeps the CR
            f.flush()
            assert f.readline() == b"OK\n"
            f.write(b"second line\r\n")
            f.flush()
            assert f.readline() == b"OK\n"
        log = agent.wait_log(EVENT_LINE)
        assert "org.apache.flume.sink.LoggerSink" in log
        agent.wait_log("73 65 63 6F 6E 64 20 6C 69 6E 65 0D")
    finally:
        assert agent.stop() == 0


def test_invoked_as_flume_ng(flumen_bin, tmp_path):
    link = tmp_path / "flume-ng"
    os.symlink(flumen_bin, link)
    port = free_port()
    agent = Agent(flumen_bin, tmp_path, example_conf(port), argv0=str(link))
    try:
        agent.wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"abc\n")
            assert s.recv(16) == b"OK\n"
        agent.wait_log("Event: { headers:{} body: 61 62 63" + " " * 40 + "abc }")
    finally:
        assert agent.stop() == 0


def test_netcat_max_line_length_and_pipelined_oks(flumen_bin, tmp_path):
    port = free_port()
    conf = example_conf(port) + "a1.sources.r1.max-line-length = 10\n"
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"".join(b"l%d\n" % i for i in range(500)))
            got = b""
            while got.count(b"\n") < 500:
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
            assert got == b"OK\n" * 500
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"0123456789abcdef\n")
            reply = s.recv(200)
            assert reply == b"FAILED: Event exceeds the maximum length (10 chars, including newline)\n"
            assert s.recv(10) == b""  # connection closed
    finally:
        agent.stop()


def test_netcat_failed_when_channel_full(flumen_bin, tmp_path):
    port = free_port()
    # No sink drains c1 (capacity 2, keep-alive 0): the third line is refused.
    conf = (example_conf(port).replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channel = c9")
            .replace("capacity = 1000", "capacity = 2").replace("transactionCapacity = 100", "transactionCapacity = 2")
            + "a1.channels.c1.keep-alive = 0\n")
    agent = Agent(flumen_bin, tmp_path, conf)
    try:
        agent.wait_port(port)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            f = s.makefile("rwb")
            for line, want in ((b"a\n", b"OK\n"), (b"b\n", b"OK\n")):
                f.write(line)
                f.flush()
                assert f.readline() == want
            f.write(b"c\n")
            f.flush()
            reply = f.readline()
            assert reply.startswith(b"FAILED: Space for commit to queue couldn't be acquired"), reply
            f.write(b"d\n")  # the connection stays open
            f.flush()
            assert f.readline().startswith(b"FAILED: ")
    finally:
        agent.stop()
