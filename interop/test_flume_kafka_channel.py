"""Flume's Kafka channel (`org.apache.flume.channel.kafka.KafkaChannel`) through the real
binaries and a real `flumen serve`, in Flume's three uses: with a source and a sink (a
durable channel that survives kill -9), without a sink (puts land in the topic, read back
with the Python client), without a source (a producer feeds the sinks)."""
import io
import os
import signal
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from agent_helpers import Agent, free_port, netcat_lines, wait_until

CHANNEL = "org.apache.flume.channel.kafka.KafkaChannel"


def kafka_channel(agent, name, broker, topic, extra="", fast_takeover=False):
    text = (f"{agent}.channels.{name}.type = {CHANNEL}\n"
            f"{agent}.channels.{name}.kafka.bootstrap.servers = {broker.bootstrap}\n"
            f"{agent}.channels.{name}.kafka.topic = {topic}\n"
            f"{agent}.channels.{name}.kafka.producer.linger.ms = 1\n" + extra)
    if fast_takeover:
        # A member killed with -9 leaves the group after this (librdkafka's default: 45 s).
        text += (f"{agent}.channels.{name}.kafka.consumer.session.timeout.ms = 6000\n"
                 f"{agent}.channels.{name}.kafka.consumer.heartbeat.interval.ms = 1000\n")
    return text


def netcat_source(port, channels="c1", extra=""):
    return (f"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
            f"a1.sources.r1.channels = {channels}\na1.sources.r1.max-line-length = 1000\n" + extra)


def file_roll(out, serializer="text"):
    return ("a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\n"
            f"a1.sinks.k1.sink.directory = {out}\na1.sinks.k1.sink.rollInterval = 0\n"
            f"a1.sinks.k1.sink.serializer = {serializer}\na1.sinks.k1.sink.batchSize = 50\n")


def output_lines(out, torn=None):
    """Lines of every output file; a partial last line (file_roll cut by kill -9) goes to
    `torn`."""
    lines = []
    for p in sorted(out.iterdir()):
        parts = p.read_text().split("\n")
        if parts[-1] and torn is not None:
            torn.append(parts[-1])
        lines.extend(parts[:-1])
    return lines


def read_topic(broker, topic, n, timeout=30):
    """The first `n` records of partition 0 of `topic`: (key, value) pairs."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check",
                  "enable.auto.commit": False})
    got = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])

        def poll():
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append((m.key(), m.value()))
            return len(got) >= n
        wait_until(poll, timeout, f"{n} records in {topic}")
    finally:
        c.close()
    return got


def decode_avro_flume_event(data):
    """An `AvroFlumeEvent` (headers map, body bytes) decoded with the Avro library."""
    import avro.io
    import avro.schema
    schema = avro.schema.parse(
        '{"type":"record","name":"AvroFlumeEvent","namespace":"org.apache.flume.source.avro",'
        '"fields":[{"name":"headers","type":{"type":"map","values":"string"}},'
        '{"name":"body","type":"bytes"}]}')
    r = avro.io.DatumReader(schema)
    rec = r.read(avro.io.BinaryDecoder(io.BytesIO(data)))
    return rec["headers"], rec["body"]


def test_netcat_kafka_channel_file_roll_keeps_headers(broker, flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    conf = ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
            + netcat_source(port, extra="a1.sources.r1.interceptors = s\n"
                            "a1.sources.r1.interceptors.s.type = static\n"
                            "a1.sources.r1.interceptors.s.key = app\n"
                            "a1.sources.r1.interceptors.s.value = web\n")
            + kafka_channel("a1", "c1", broker, "chan-basic")
            + file_roll(out, "header_and_text"))
    a = Agent(flumen_bin, tmp_path, conf)
    try:
        a.wait_port(port)
        want = [f"line {i}" for i in range(300)]
        for i in range(0, 300, 100):
            assert netcat_lines(port, [f"{w}\n".encode() for w in want[i:i + 100]]) == b"OK\n" * 100
        wait_until(lambda: len(output_lines(out)) >= 300, 60, "300 lines in file_roll")
        rows = output_lines(out)
        assert [r.split("} ", 1)[1] for r in rows] == want
        # parseAsFlumeEvent (the default) carries the headers through the topic.
        assert all(r.startswith("{app=web}") for r in rows), rows[0]
        # The topic holds AvroFlumeEvents.
        headers, body = decode_avro_flume_event(read_topic(broker, "chan-basic", 1)[0][1])
        assert (headers, body) == ({"app": "web"}, b"line 0")
    finally:
        assert a.stop() == 0
    # The consumer committed its position in group `flume` (Flume's default) at each take.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "flume"})
    try:
        committed = c.committed([TopicPartition("chan-basic", 0)], timeout=10)
    finally:
        c.close()
    assert committed[0].offset == 300


def test_kafka_channel_survives_kill_9(broker, flumen_bin, tmp_path):
    """Every line the netcat source acknowledged (committed to the channel) before a kill -9
    arrives after the agent starts again: at least once."""
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    conf = ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n" + netcat_source(port)
            + kafka_channel("a1", "c1", broker, "chan-restart", fast_takeover=True) + file_roll(out))
    want = []
    outstanding = 0  # lines still in the channel at the kills
    a = Agent(flumen_bin, tmp_path, conf)
    try:
        for round_ in range(3):
            a.wait_port(port, timeout=30)
            lines = [f"r{round_}-{i:05d}" for i in range(2500)]
            for i in range(0, len(lines), 250):
                reply = netcat_lines(port, [f"{w}\n".encode() for w in lines[i:i + 250]])
                assert reply == b"OK\n" * 250, reply[-200:]
                if i == 0:
                    # The consumer is running before the kill: takes are in flight.
                    wait_until(lambda: lines[0] in output_lines(out), 60, "the round's first line")
            want += lines
            # Kill while the sink is still taking (or just after): by pid.
            os.kill(a.proc.pid, signal.SIGKILL)
            a.proc.wait(timeout=10)
            outstanding += len(set(lines) - set(output_lines(out)))
            a.log.close()
            a = Agent(flumen_bin, tmp_path, conf)
        a.wait_port(port, timeout=30)
        wait_until(lambda: set(want) <= set(output_lines(out)), 90,
                   f"all {len(want)} lines after 3 kills")
        got = output_lines(out)
        assert set(got) - set(want) == set(), "only lines sent arrive"
        print(f"{outstanding} lines were in the channel at the kills; {len(got) - len(set(got))} duplicates")
    finally:
        assert a.stop() == 0


def test_kafka_channel_without_sink_writes_the_topic(broker, flumen_bin, tmp_path):
    """No sink: puts just land in the topics (one AvroFlumeEvent channel, one plain); the
    Python client reads them back."""
    port = free_port()
    conf = ("a1.sources = r1\na1.channels = c1 c2\n"
            + netcat_source(port, channels="c1 c2",
                            extra="a1.sources.r1.interceptors = s\n"
                                  "a1.sources.r1.interceptors.s.type = static\n"
                                  "a1.sources.r1.interceptors.s.key = key\n"
                                  "a1.sources.r1.interceptors.s.value = host-7\n")
            + kafka_channel("a1", "c1", broker, "chan-nosink-avro")
            + kafka_channel("a1", "c2", broker, "chan-nosink-raw",
                            "a1.channels.c2.parseAsFlumeEvent = false\n"))
    a = Agent(flumen_bin, tmp_path, conf)
    try:
        a.wait_port(port)
        lines = [f"event {i}" for i in range(40)]
        assert netcat_lines(port, [f"{w}\n".encode() for w in lines]) == b"OK\n" * 40
        avro_records = read_topic(broker, "chan-nosink-avro", 40)
        raw_records = read_topic(broker, "chan-nosink-raw", 40)
    finally:
        assert a.stop() == 0
    assert [v for _, v in raw_records] == [w.encode() for w in lines]
    # Record key = the `key` header.
    assert {k for k, _ in raw_records} == {b"host-7"}
    decoded = [decode_avro_flume_event(v) for _, v in avro_records]
    assert [b for _, b in decoded] == [w.encode() for w in lines]
    assert decoded[0][0] == {"key": "host-7"}
    # No consumer ever joined the channel's group (no sink, no take).
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "flume"})
    try:
        committed = c.committed([TopicPartition("chan-nosink-avro", 0)], timeout=10)
    finally:
        c.close()
    assert committed[0].offset < 0, committed


def test_kafka_channel_without_source_feeds_the_sinks(broker, flumen_bin, tmp_path):
    """No source: a producer writes plain records; the sink takes them (parseAsFlumeEvent =
    false), and records produced after the agent started arrive too."""
    out = tmp_path / "out"
    out.mkdir()
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 1})
    first = [f"before {i}" for i in range(200)]
    for w in first:
        p.produce("chan-nosource", w.encode())
    assert p.flush(30) == 0
    conf = ("a1.channels = c1\na1.sinks = k1\n"
            + kafka_channel("a1", "c1", broker, "chan-nosource",
                            "a1.channels.c1.parseAsFlumeEvent = false\n"
                            "a1.channels.c1.kafka.consumer.group.id = nosource\n")
            + file_roll(out))
    a = Agent(flumen_bin, tmp_path, conf)
    try:
        wait_until(lambda: len(output_lines(out)) >= 200, 60, "the first 200 records")
        second = [f"after {i}" for i in range(100)]
        for w in second:
            p.produce("chan-nosource", w.encode())
        assert p.flush(30) == 0
        wait_until(lambda: len(output_lines(out)) >= 300, 60, "all 300 records")
        assert output_lines(out) == first + second
    finally:
        assert a.stop() == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "nosource"})
    try:
        committed = c.committed([TopicPartition("chan-nosource", 0)], timeout=10)
    finally:
        c.close()
    assert committed[0].offset == 300


def test_two_agents_share_the_channel_through_rebalances(broker, flumen_bin, tmp_path):
    """A second agent joins the channel's group mid-stream (a rebalance moves partitions),
    then leaves again: every line arrives at least once, in one output or the other."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("chan-shared", num_partitions=4, replication_factor=1)])["chan-shared"].result(30)
    out_a, out_b = tmp_path / "out_a", tmp_path / "out_b"
    out_a.mkdir()
    out_b.mkdir()
    port = free_port()
    conf_a = ("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n" + netcat_source(port)
              + kafka_channel("a1", "c1", broker, "chan-shared") + file_roll(out_a))
    conf_b = ("a1.channels = c1\na1.sinks = k1\n"
              + kafka_channel("a1", "c1", broker, "chan-shared") + file_roll(out_b))
    want = []
    a = Agent(flumen_bin, tmp_path, conf_a)
    b = None
    try:
        a.wait_port(port)

        def send(prefix, n):
            lines = [f"{prefix}-{i:05d}" for i in range(n)]
            for i in range(0, n, 250):
                reply = netcat_lines(port, [f"{w}\n".encode() for w in lines[i:i + 250]])
                assert reply == b"OK\n" * 250, reply[-200:]
            want.extend(lines)

        def arrived():
            return set(want) <= set(output_lines(out_a)) | set(output_lines(out_b))

        send("one", 1000)
        b = Agent(flumen_bin, tmp_path, conf_b)
        # Keep sending until the rebalance gave b partitions and b took lines from them.
        deadline = time.time() + 90
        k = 0
        while not output_lines(out_b):
            assert time.time() < deadline, f"b took nothing:\n{b.text()}"
            send(f"two{k}", 250)
            k += 1
            time.sleep(0.2)
        wait_until(arrived, 90, "lines sent while both agents run")
        assert b.stop() == 0  # b leaves: a takes all partitions again
        send("four", 1000)
        wait_until(arrived, 90, "every line after the rebalances")
        got = output_lines(out_a) + output_lines(out_b)
        assert set(got) == set(want)
    finally:
        if b is not None:
            b.stop()
        assert a.stop() == 0
