"""Cross-client compression matrix against `flumen serve`: every codec (gzip, snappy, lz4,
zstd) produced by one client family (confluent-kafka/librdkafka, kcat, kafka-python, aiokafka,
KafkaJS) and read back by every other consumer family (confluent-kafka, kafka-python,
aiokafka, KafkaJS), keys, headers and timestamps compared byte for byte.

KafkaJS's snappy, lz4 and zstd come from interop/js/common.js (kafkajs-snappy, lz4js and the
wasm zstd-codec: no native build). Producers that cannot send a null header value (KafkaJS,
kafka-python, aiokafka, kcat) send only non-null ones; kcat cannot set a timestamp, so its
records are checked for one CreateTime seen identically by every consumer."""
import asyncio
import pathlib
import struct
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from js_util import JsConsumer, decoded, js_produce, js_record

CODECS = ["gzip", "snappy", "lz4", "zstd"]
PRODUCERS = ["confluent", "kcat", "kafka-python", "aiokafka", "kafkajs"]
CONSUMERS = ["confluent", "kafka-python", "aiokafka", "kafkajs"]
N = 40
TS0 = 1_650_000_000_000


def create(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        f.result(timeout=20)


def records(producer):
    """(key, value, headers, timestamp) sent by this producer family."""
    out = []
    for i in range(N):
        if producer == "kcat":  # text lines: key and value split at the first ':'; one header on all
            out.append((b"key-%d" % i, b"value %d \x01\x7f end" % i, [("via", b"kcat"), ("empty", b"")], None))
            continue
        headers = [("h1", b"v%d" % i), ("bin", bytes([0, i, 255])), ("bin", b"again"), ("empty", b"")]
        if producer == "confluent":
            headers.append(("none", None))
        key = None if i == 7 else bytes([i, 0, 255]) + b"key"  # one null key
        out.append((key, bytes(range(256)) * 2 + b"#%d" % i, headers, TS0 + i))
    return out


def produce(producer, bootstrap, topic, codec, sent):
    if producer == "confluent":
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20})
        for k, v, h, ts in sent:
            p.produce(topic, key=k, value=v, headers=h, timestamp=ts)
        assert p.flush(20) == 0
    elif producer == "kcat":
        data = b"".join(k + b":" + v + b"\n" for k, v, _, _ in sent)
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", "0", "-z", codec, "-K", ":",
                        "-H", "via=kcat", "-H", "empty=", "-X", "linger.ms=20"],
                       input=data, check=True, timeout=30)
    elif producer == "kafka-python":
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=20)
        for k, v, h, ts in sent:
            p.send(topic, key=k, value=v, headers=h, timestamp_ms=ts, partition=0)
        p.flush(timeout=20)
        p.close(timeout=10)
    elif producer == "aiokafka":
        from aiokafka import AIOKafkaProducer

        async def go():
            p = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=20)
            await p.start()
            try:
                futs = [await p.send(topic, key=k, value=v, headers=h, timestamp_ms=ts, partition=0)
                        for k, v, h, ts in sent]
                await asyncio.wait_for(asyncio.gather(*futs), 20)
            finally:
                await p.stop()
        asyncio.run(go())
    else:
        js_produce(bootstrap, topic, [js_record(k, v, h, ts, 0) for k, v, h, ts in sent], codec=codec)


def consume(consumer, bootstrap, topic):
    """All N records of partition 0 from offset 0 as (key, value, headers, timestamp)."""
    deadline = time.monotonic() + 30
    if consumer == "confluent":
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            got = []
            while len(got) < N and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None:
                    assert m.error() is None, m.error()
                    got.append((m.key(), m.value(), list(m.headers() or []), m.timestamp()[1]))
            return got
        finally:
            c.close()
    if consumer == "kafka-python":
        from kafka import KafkaConsumer
        from kafka.structs import TopicPartition as KTP
        c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        try:
            c.assign([KTP(topic, 0)])
            c.seek(KTP(topic, 0), 0)
            got = []
            while len(got) < N and time.monotonic() < deadline:
                for recs in c.poll(timeout_ms=500).values():
                    got.extend((r.key, r.value, [(hk, hv) for hk, hv in r.headers], r.timestamp) for r in recs)
            return got
        finally:
            c.close()
    if consumer == "aiokafka":
        from aiokafka import AIOKafkaConsumer, TopicPartition as ATP

        async def go():
            c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
            await c.start()
            try:
                c.assign([ATP(topic, 0)])
                await c.seek_to_beginning(ATP(topic, 0))
                got = []
                while len(got) < N and time.monotonic() < deadline:
                    for recs in (await c.getmany(timeout_ms=500)).values():
                        got.extend((r.key, r.value, [(hk, hv) for hk, hv in r.headers], r.timestamp) for r in recs)
                return got
            finally:
                await c.stop()
        return asyncio.run(go())
    c = JsConsumer(bootstrap, f"js-{topic}", [topic], count=N)
    try:
        c.wait(lambda m: len(m.records()) >= N, what=f"{N} records")
    finally:
        c.close()
    return [decoded(r) for r in c.records()]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_produced_by_one_family_consumed_by_every_other(broker, producer, codec):
    topic = f"x-{producer}-{codec}"
    create(broker.bootstrap, topic)
    sent = records(producer)
    produce(producer, broker.bootstrap, topic, codec, sent)
    seen = {}
    for consumer in CONSUMERS:
        if consumer == producer:
            continue
        got = consume(consumer, broker.bootstrap, topic)
        assert len(got) == N, f"{consumer} read {len(got)} of {N}"
        if producer == "kcat":
            stamps = {g[3] for g in got}
            assert len(stamps) >= 1 and all(ts > TS0 for ts in stamps), stamps
            seen.setdefault("kcat-ts", [g[3] for g in got])
            assert [g[3] for g in got] == seen["kcat-ts"], f"{consumer} saw other timestamps"
            got = [(k, v, h, None) for k, v, h, _ in got]
        # null header values: every consumer family reads them as None
        assert got == sent, f"{producer} -> {consumer} ({codec}) differs"
        seen[consumer] = True
    # the stored batches really are compressed with this codec
    assert stored_codecs(broker.data_dir, topic) == {codec}


def stored_codecs(data_dir, topic):
    """The codec of every record batch in the partition's segment files (Kafka's on-disk format:
    attributes at byte 21 of each batch, codec in its low 3 bits), so a producer that silently
    fell back to no compression fails the test."""
    names = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
    codecs = set()
    for seg in sorted(pathlib.Path(data_dir, f"{topic}-0").glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 23 <= len(data):
            length = struct.unpack(">i", data[pos + 8:pos + 12])[0]
            if length <= 0:
                break
            codecs.add(names.get(struct.unpack(">h", data[pos + 21:pos + 23])[0] & 7))
            pos += 12 + length
    return codecs
