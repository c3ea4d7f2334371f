"""Flume's Kafka sink and Kafka source through the real binary and a real `flumen serve`:
netcat → memory → Kafka sink → topic → Kafka source → memory → file_roll."""
from confluent_kafka import Consumer, TopicPartition

from agent_helpers import Agent, free_port, netcat_lines, read_dir, wait_until


def test_netcat_kafka_sink_topic_kafka_source_file_roll(broker, flumen_bin, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    producer_conf = (
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
        f"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"
        "a1.sources.r1.channels = c1\n"
        "a1.sources.r1.interceptors = s\na1.sources.r1.interceptors.s.type = static\n"
        "a1.sources.r1.interceptors.s.key = key\na1.sources.r1.interceptors.s.value = web-1\n"
        "a1.channels.c1.type = memory\n"
        "a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\na1.sinks.k1.channel = c1\n"
        f"a1.sinks.k1.kafka.bootstrap.servers = {broker.bootstrap}\n"
        "a1.sinks.k1.kafka.topic = flume-events\na1.sinks.k1.flumeBatchSize = 10\n"
        "a1.sinks.k1.kafka.producer.acks = all\na1.sinks.k1.kafka.producer.linger.ms = 1\n"
    )
    consumer_conf = (
        "a2.sources = r1\na2.channels = c1\na2.sinks = k1\n"
        "a2.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\na2.sources.r1.channels = c1\n"
        f"a2.sources.r1.kafka.bootstrap.servers = {broker.bootstrap}\n"
        "a2.sources.r1.kafka.topics = flume-events\na2.sources.r1.kafka.consumer.group.id = flume-test\n"
        "a2.sources.r1.kafka.consumer.auto.offset.reset = earliest\n"
        "a2.sources.r1.batchSize = 100\na2.sources.r1.batchDurationMillis = 100\n"
        "a2.channels.c1.type = memory\n"
        "a2.sinks.k1.type = file_roll\na2.sinks.k1.channel = c1\n"
        f"a2.sinks.k1.sink.directory = {out}\na2.sinks.k1.sink.rollInterval = 0\n"
        "a2.sinks.k1.sink.serializer = header_and_text\n"
    )
    a1 = Agent(flumen_bin, tmp_path, producer_conf, name="a1")
    a2 = Agent(flumen_bin, tmp_path, consumer_conf, name="a2")
    try:
        a1.wait_port(port)
        lines = [f"event {i}\n".encode() for i in range(50)]
        assert netcat_lines(port, lines) == b"OK\n" * 50

        # The topic holds the bodies, keyed by the `key` header.
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "check", "enable.auto.commit": False})
        try:
            c.assign([TopicPartition("flume-events", 0, 0)])
            got = []

            def poll():
                m = c.poll(0.2)
                if m is not None and not m.error():
                    got.append((m.key(), m.value()))
                return len(got) >= 50
            wait_until(poll, 20, "50 records in the topic")
        finally:
            c.close()
        assert got[0] == (b"web-1", b"event 0")
        assert [v for _, v in got] == [f"event {i}".encode() for i in range(50)]

        # The Kafka source adds topic/partition/offset/timestamp headers and keeps the key.
        def all_arrived():
            text = read_dir(out)
            return text.count("\n") >= 50 and text
        text = wait_until(all_arrived, 20, "50 events in file_roll")
        rows = text.splitlines()
        assert len(rows) == 50
        assert [r.split("} ", 1)[1] for r in rows] == [f"event {i}" for i in range(50)]
        first = rows[0]
        for h in ("topic=flume-events", "partition=0", "offset=0", "key=web-1", "timestamp="):
            assert h in first, first
    finally:
        assert a1.stop() == 0
        assert a2.stop() == 0
