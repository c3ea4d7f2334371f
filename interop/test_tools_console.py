"""The console producer and consumer through the real binary: the seed's `fred` lesson exactly
as typed (modern and legacy flags), formatter properties, partitions and offsets, errors."""
import subprocess
import time

import pytest

from tools_util import HOW, tool


def create(flumen_bin, tmp_path, bs, topic, partitions=1):
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-topics.sh", "--create", "--topic", topic,
               "--bootstrap-server", bs, "--partitions", str(partitions), "--replication-factor", "1")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("how", HOW)
def test_fred_lesson_modern_flags(flumen_bin, broker, tmp_path, how):
    bs = broker.bootstrap
    # kafka-topics.sh --create --bootstrap-server H:P --replication-factor 1 --partitions 1 --topic fred
    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--create", "--bootstrap-server", bs,
               "--replication-factor", "1", "--partitions", "1", "--topic", "fred")
    assert out.stdout == "Created topic fred.\n", out.stderr
    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--list", "--bootstrap-server", bs)
    assert out.stdout.splitlines() == ["fred"]
    # kafka-console-producer.sh --bootstrap-server H:P --topic fred  (lines typed, then Ctrl-D)
    out = tool(flumen_bin, tmp_path, how, "kafka-console-producer.sh", "--bootstrap-server", bs,
               "--topic", "fred", stdin="hello fred\nthis is a test\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "", "no '>' prompt when stdin is not a terminal"
    # kafka-console-consumer.sh --bootstrap-server H:P --topic fred --from-beginning
    out = tool(flumen_bin, tmp_path, how, "kafka-console-consumer.sh", "--bootstrap-server", bs,
               "--topic", "fred", "--from-beginning", "--max-messages", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello fred\nthis is a test\n"
    assert out.stderr.strip().splitlines()[-1] == "Processed a total of 2 messages"


@pytest.mark.parametrize("how", HOW)
def test_fred_lesson_legacy_flags(flumen_bin, broker, tmp_path, how):
    bs = broker.bootstrap
    env = {"FLUMEN_BOOTSTRAP_SERVER": bs}
    # kafka-topics.sh --create --zookeeper localhost:2181 --replication-factor 1 --partitions 1 --topic fred
    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--create", "--zookeeper",
               "localhost:2181", "--replication-factor", "1", "--partitions", "1", "--topic", "fred",
               env=env)
    assert out.stdout == "Created topic fred.\n", out.stderr
    assert "deprecated" in out.stderr
    out = tool(flumen_bin, tmp_path, how, "kafka-topics.sh", "--list", "--zookeeper",
               "localhost:2181", env=env)
    assert out.stdout.splitlines() == ["fred"]
    # kafka-console-producer.sh --broker-list H:P --topic fred
    out = tool(flumen_bin, tmp_path, how, "kafka-console-producer.sh", "--broker-list", bs,
               "--topic", "fred", stdin="one\ntwo\nthree\n")
    assert out.returncode == 0, out.stderr
    assert "--broker-list is deprecated" in out.stderr
    # kafka-console-consumer.sh --bootstrap-server H:P --whitelist fred --from-beginning
    out = tool(flumen_bin, tmp_path, how, "kafka-console-consumer.sh", "--bootstrap-server", bs,
               "--whitelist", "fred", "--from-beginning", "--max-messages", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "one\ntwo\nthree\n"
    assert "--whitelist is deprecated" in out.stderr
    assert "Processed a total of 3 messages" in out.stderr


def test_keys_and_formatter_properties(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "keyed")
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh",
               "--bootstrap-server", bs, "--topic", "keyed", "--property", "parse.key=true",
               "--property", "key.separator=:", "--request-required-acks", "1",
               "--compression-codec", "gzip", stdin="k1:v1\nk2:v:2\n")
    assert out.returncode == 0, out.stderr
    out = tool(flumen_bin, tmp_path, "kafka-name", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "keyed", "--from-beginning",
               "--max-messages", "2", "--property", "print.key=true", "--property",
               "print.offset=true", "--property", "print.partition=true", "--property",
               "print.timestamp=true", "--property", "key.separator= | ")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    ts, part, off, key, value = lines[0].split(" | ")
    assert ts.startswith("CreateTime:") and int(ts.split(":")[1]) > 0
    assert (part, off, key, value) == ("Partition:0", "Offset:0", "k1", "v1")
    assert lines[1].split(" | ")[2:] == ["Offset:1", "k2", "v:2"]


def test_missing_key_separator_is_an_error(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "strict")
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh",
               "--bootstrap-server", bs, "--topic", "strict", "--property", "parse.key=true",
               stdin="no separator here\n")
    assert out.returncode != 0
    assert "No key separator found on line number 1: 'no separator here'" in out.stderr


def test_partition_and_offset(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "numbers")
    lines = "".join(f"{i}\n" for i in range(10))
    assert tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh",
                "--bootstrap-server", bs, "--topic", "numbers", stdin=lines).returncode == 0
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "numbers", "--partition", "0", "--offset", "7",
               "--timeout-ms", "3000")
    assert out.stdout == "7\n8\n9\n"
    assert "Processed a total of 3 messages" in out.stderr
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "numbers", "--partition", "0", "--offset",
               "bogus")
    assert out.returncode == 1
    assert "The provided offset value 'bogus' is incorrect" in out.stderr


def test_timeout_with_nothing_to_read(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "quiet")
    start = time.monotonic()
    out = tool(flumen_bin, tmp_path, "kafka-name", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "quiet", "--timeout-ms", "1500")
    assert out.returncode == 0
    assert out.stdout == ""
    assert out.stderr.strip().splitlines()[-1] == "Processed a total of 0 messages"
    assert time.monotonic() - start < 30


def test_consumer_sees_records_produced_while_it_runs(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "live")
    consumer = subprocess.Popen(
        [flumen_bin, "console-consumer", "--bootstrap-server", bs, "--topic", "live",
         "--max-messages", "1", "--timeout-ms", "20000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        got = ""
        while time.monotonic() < deadline and consumer.poll() is None:
            tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh",
                 "--bootstrap-server", bs, "--topic", "live", "--timeout", "0", stdin="ping\n")
            try:
                got, err = consumer.communicate(timeout=1)
            except subprocess.TimeoutExpired:
                continue
        assert got == "ping\n"
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(timeout=5)


def test_unknown_topic_and_bad_property(flumen_bin, broker, tmp_path):
    bs = broker.bootstrap
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "nosuch", "--timeout-ms", "1000")
    assert out.returncode != 0
    assert "topic 'nosuch' does not exist" in out.stderr
    create(flumen_bin, tmp_path, bs, "props")
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "props", "--property", "print.kee=true")
    assert out.returncode == 1
    assert "print.kee" in out.stderr
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh",
               "--bootstrap-server", bs, "--topic", "props", "--producer-property",
               "no.such.setting=1", stdin="x\n")
    assert out.returncode != 0
    assert "no.such.setting" in out.stderr


def test_unreachable_broker_fails_fast(flumen_bin, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, extra in [("kafka-console-producer.sh", []), ("kafka-console-consumer.sh", [])]:
        start = time.monotonic()
        out = tool(flumen_bin, tmp_path, "kafka-name", name, "--bootstrap-server",
                   f"127.0.0.1:{port}", "--topic", "t", *extra, stdin="x\n",
                   env={"FLUMEN_CONNECT_TIMEOUT_MS": "1000"}, timeout=30)
        assert out.returncode != 0
        assert "could not reach a Kafka broker" in out.stderr
        assert time.monotonic() - start < 15


def test_ctrl_c_prints_the_total(flumen_bin, broker, tmp_path):
    import signal
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "intr")
    tool(flumen_bin, tmp_path, "subcommand", "kafka-console-producer.sh", "--bootstrap-server", bs,
         "--topic", "intr", stdin="a\nb\n")
    consumer = subprocess.Popen(
        [flumen_bin, "console-consumer", "--bootstrap-server", bs, "--topic", "intr",
         "--from-beginning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait (bounded) until both records are out, then Ctrl-C.
        got = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and got.count("\n") < 2:
            got += consumer.stdout.readline()
        consumer.send_signal(signal.SIGINT)
        rest, err = consumer.communicate(timeout=15)
        assert got + rest == "a\nb\n"
        assert err.strip().splitlines()[-1] == "Processed a total of 2 messages"
        assert consumer.returncode == 0
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(timeout=5)


def test_prompt_only_on_a_terminal(flumen_bin, broker, tmp_path):
    import os
    import pty
    import select
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "tty")
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(flumen_bin, [flumen_bin, "console-producer", "--bootstrap-server", bs, "--topic",
                              "tty"])
    out = b""

    def read_for(seconds, until=None):
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and out.endswith(until)):
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    out += os.read(fd, 1000)
                except OSError:
                    return

    try:
        read_for(15, until=b">")
        os.write(fd, b"typed line\n")
        read_for(5, until=b"\r\n>")
        os.write(fd, b"\x04")
        read_for(10)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert out == b">typed line\r\n>"
    assert os.waitstatus_to_exitcode(status) == 0
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "tty", "--from-beginning", "--max-messages", "1")
    assert out.stdout == "typed line\n"


def test_named_group_without_coordinator_fails_clearly(flumen_bin, broker, tmp_path):
    from tools_util import groups_supported
    if groups_supported(flumen_bin, broker.bootstrap):
        pytest.skip("the broker has a group coordinator")
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "ng")
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "ng", "--group", "g", "--timeout-ms", "1000")
    assert out.returncode != 0
    assert "no group coordinator" in out.stderr


def test_ctrl_c_on_the_producer_keeps_what_was_typed(flumen_bin, broker, tmp_path):
    import signal
    bs = broker.bootstrap
    create(flumen_bin, tmp_path, bs, "typed")
    producer = subprocess.Popen(
        [flumen_bin, "console-producer", "--bootstrap-server", bs, "--topic", "typed"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        producer.stdin.write("first\nsecond\n")
        producer.stdin.flush()
        # Ctrl-C once the tool has read what was typed (its stdin pipe is empty: it reads
        # only after its Ctrl-C handler is in place), while the records still linger
        # (1 s linger.ms of Kafka's defaults). A fixed sleep raced the tool's start.
        import array
        import fcntl
        import termios
        unread = array.array("i", [1])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and producer.poll() is None:
            fcntl.ioctl(producer.stdin.fileno(), termios.FIONREAD, unread)
            if unread[0] == 0:
                break
            time.sleep(0.01)
        assert unread[0] == 0, "the producer did not read its input"
        producer.send_signal(signal.SIGINT)
        producer.communicate(timeout=30)
        assert producer.returncode == 0
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(timeout=5)
    out = tool(flumen_bin, tmp_path, "subcommand", "kafka-console-consumer.sh",
               "--bootstrap-server", bs, "--topic", "typed", "--from-beginning", "--max-messages",
               "2", "--timeout-ms", "15000")
    assert out.stdout == "first\nsecond\n"
