"""`flumen serve` driven by confluent-kafka (librdkafka), kafka-python and aiokafka:
codecs produced by one client family and consumed by another, keys/headers/timestamps
byte for byte, idempotence, offsets by time, long-poll wake-up, admin APIs, restarts."""
import asyncio
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def ck_consume(bootstrap, topic, count, partition=0, offset=0, timeout=60, **conf):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False, **conf})
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            out.append(m)
        return out
    finally:
        c.close()


def ck_create(bootstrap, topic, partitions=1, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})]).values():
        f.result(timeout=20)
    return admin


def records(n):
    # binary keys and values, several headers (one with a null value), explicit timestamps
    return [
        (bytes([i % 256, 0, 255]) + b"key%d" % i, b"\x00\xff value %d " % i * 3,
         [("h1", b"v%d" % i), ("empty", b""), ("none", None)], 1_600_000_000_000 + i)
        for i in range(200)
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_produces_kafka_python_consumes(broker, codec):
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KTP

    topic = f"ck-to-kp-{codec}"
    ck_create(broker.bootstrap, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 5})
    sent = records(200)
    for k, v, h, ts in sent:
        p.produce(topic, key=k, value=v, headers=h, timestamp=ts)
    assert p.flush(20) == 0
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=5000)
    c.assign([KTP(topic, 0)])
    c.seek(KTP(topic, 0), 0)
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 200 and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            got.extend(recs)
    c.close()
    assert len(got) == 200
    for r, (k, v, h, ts) in zip(got, sent):
        assert (r.key, r.value, r.timestamp) == (k, v, ts)
        assert [(hk, hv) for hk, hv in r.headers] == [(hk, hv) for hk, hv in h]


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_produces_confluent_consumes(broker, codec):
    from kafka import KafkaProducer

    topic = f"kp-to-ck-{codec}"
    ck_create(broker.bootstrap, topic)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=5)
    sent = records(200)
    for k, v, h, ts in sent:
        p.send(topic, key=k, value=v, headers=[(hk, hv) for hk, hv in h if hv is not None], timestamp_ms=ts)
    p.flush(timeout=20)
    p.close()
    got = ck_consume(broker.bootstrap, topic, 200)
    assert len(got) == 200
    for m, (k, v, h, ts) in zip(got, sent):
        assert (m.key(), m.value(), m.timestamp()[1]) == (k, v, ts)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_aiokafka_round_trip(broker, codec):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as ATP

    topic = f"aio-{codec}"
    ck_create(broker.bootstrap, topic)

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=5)
        await p.start()
        try:
            for i in range(100):
                await p.send(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)], timestamp_ms=1_700_000_000_000 + i)
            await p.flush()
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
        await c.start()
        try:
            c.assign([ATP(topic, 0)])
            got = []
            deadline = time.monotonic() + 60
            while len(got) < 100 and time.monotonic() < deadline:
                for recs in (await c.getmany(timeout_ms=500)).values():
                    got.extend(recs)
            return got
        finally:
            await c.stop()

    got = asyncio.run(asyncio.wait_for(run(), 60))
    assert [(r.key, r.value, r.timestamp, list(r.headers)) for r in got] == [
        (b"k%d" % i, b"v%d" % i, 1_700_000_000_000 + i, [("h", b"%d" % i)]) for i in range(100)
    ]
    # and confluent-kafka reads what aiokafka wrote
    assert [m.value() for m in ck_consume(broker.bootstrap, topic, 100)] == [b"v%d" % i for i in range(100)]


def test_idempotent_producer_and_restart(broker):
    topic = "idem"
    ck_create(broker.bootstrap, topic, partitions=2)
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all",
                  "max.in.flight.requests.per.connection": 5, "linger.ms": 1})
    for i in range(2000):
        p.produce(topic, value=b"%d" % i, partition=i % 2)
    assert p.flush(20) == 0
    broker.restart()
    for i in range(2000, 2100):
        p.produce(topic, value=b"%d" % i, partition=i % 2)
    assert p.flush(30) == 0
    got = ck_consume(broker.bootstrap, topic, 1050, partition=0)
    assert [int(m.value()) for m in got] == list(range(0, 2100, 2))


def test_offsets_for_times_and_listing(broker):
    topic = "times"
    ck_create(broker.bootstrap, topic)
    for codec in ("none", "zstd"):
        p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 50})
        base = 1_000_000 if codec == "none" else 2_000_000
        for i in range(50):
            p.produce(topic, value=b"x", timestamp=base + i * 10)
        assert p.flush(20) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    try:
        q = lambda ts: c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0].offset
        assert q(1_000_000) == 0
        assert q(1_000_105) == 11  # uncompressed batch, mid-batch
        assert q(2_000_205) == 71  # compressed batch, mid-batch
        assert q(9_000_000) == -1  # past every timestamp: end
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (lo, hi) == (0, 100)
    finally:
        c.close()


def test_waiting_consumer_is_woken_by_a_new_record(broker):
    topic = "wake"
    ck_create(broker.bootstrap, topic)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "fetch.wait.max.ms": 20000})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        assert c.poll(1.0) is None  # the fetch is now parked on the broker
        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        p.produce(topic, value=b"hello")
        assert p.flush(10) == 0
        start = time.monotonic()
        m = None
        while m is None and time.monotonic() - start < 10:
            m = c.poll(0.1)
        # woken by the append, long before the 20 s fetch.wait.max.ms
        assert m is not None and m.value() == b"hello"
    finally:
        c.close()


def test_admin_create_describe_alter_delete(broker):
    admin = ck_create(broker.bootstrap, "adm", partitions=2, config={"retention.ms": "123456"})
    # errors Kafka would give
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("adm", 1, 1)])["adm"].result(10)
    assert e.value.args[0].name() == "TOPIC_ALREADY_EXISTS"
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("bad name!", 1, 1)])["bad name!"].result(10)
    assert e.value.args[0].name() == "TOPIC_EXCEPTION"  # librdkafka name of INVALID_TOPIC_EXCEPTION (17)
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("rf3", 1, 3)])["rf3"].result(10)
    assert e.value.args[0].name() == "INVALID_REPLICATION_FACTOR"
    # validate_only creates nothing
    admin.create_topics([NewTopic("dry", 1, 1)], validate_only=True)["dry"].result(10)
    assert "dry" not in admin.list_topics(timeout=10).topics
    # describe configs: every config, with sources
    res = ConfigResource("topic", "adm")
    cfg = admin.describe_configs([res])[res].result(10)
    assert cfg["retention.ms"].value == "123456"
    assert cfg["retention.ms"].source == 1  # dynamic topic config
    assert cfg["segment.bytes"].value == "1073741824"
    assert cfg["cleanup.policy"].value == "delete"
    # incremental alter
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
    inc = ConfigResource("topic", "adm", incremental_configs=[
        ConfigEntry("retention.ms", "999", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([inc])[inc].result(10)
    cfg = admin.describe_configs([res])[res].result(10)
    assert (cfg["retention.ms"].value, cfg["max.message.bytes"].value) == ("999", "2000")
    # max.message.bytes is enforced
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 100000, "retries": 0})
    errors = []
    p.produce("adm", value=b"x" * 5000, on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert errors and errors[0] is not None and errors[0].name() == "MSG_SIZE_TOO_LARGE"
    # broker configs
    bres = ConfigResource("broker", "1")
    bcfg = admin.describe_configs([bres])[bres].result(10)
    assert bcfg["num.partitions"].value == "1"
    # partitions
    admin.create_partitions([NewPartitions("adm", 4)])["adm"].result(10)
    assert len(admin.list_topics(timeout=10).topics["adm"].partitions) == 4
    with pytest.raises(KafkaException) as e:
        admin.create_partitions([NewPartitions("adm", 2)])["adm"].result(10)
    assert e.value.args[0].name() == "INVALID_PARTITIONS"
    # cluster
    cluster = admin.describe_cluster(request_timeout=10).result(10)
    assert cluster.cluster_id and cluster.controller.id == 1
    # topics persist across a restart, with their configs
    broker.restart()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    md = admin.list_topics(timeout=10)
    assert len(md.topics["adm"].partitions) == 4
    cfg = admin.describe_configs([res])[res].result(10)
    assert cfg["retention.ms"].value == "999"
    assert admin.describe_cluster(request_timeout=10).result(10).cluster_id == cluster.cluster_id
    # delete
    admin.delete_topics(["adm"])["adm"].result(10)
    assert "adm" not in admin.list_topics(timeout=10).topics
    with pytest.raises(KafkaException) as e:
        admin.delete_topics(["adm"])["adm"].result(10)
    assert e.value.args[0].name() == "UNKNOWN_TOPIC_OR_PART"


def test_delete_records_moves_the_start(broker):
    topic = "delrec"
    admin = ck_create(broker.bootstrap, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(10):
        p.produce(topic, value=b"%d" % i)
        p.flush(10)
    res = admin.delete_records([TopicPartition(topic, 0, 4)])
    for f in res.values():
        assert f.result(10).low_watermark == 4
    got = ck_consume(broker.bootstrap, topic, 6, offset=-2)  # OFFSET_BEGINNING
    assert [int(m.value()) for m in got] == list(range(4, 10))


def test_kill_9_under_acks_all_loses_no_acked_record(broker):
    topic = "crash"
    ck_create(broker.bootstrap, topic)
    acked = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 1,
                  "message.timeout.ms": 3000, "retries": 0})

    def on_delivery(err, msg):
        if err is None:
            acked.append(int(msg.value()))

    deadline = time.monotonic() + 1.5
    i = 0
    while time.monotonic() < deadline:
        p.produce(topic, value=b"%d" % i, on_delivery=on_delivery)
        p.poll(0)
        i += 1
        if i % 1000 == 0:
            p.flush(0.01)
    p.poll(0.2)
    broker.kill()
    p.flush(5)
    assert len(acked) > 100
    broker.log.close()
    broker.start()
    got = ck_consume(broker.bootstrap, topic, max(acked) + 1, timeout=30)
    values = {int(m.value()) for m in got}
    assert set(acked) <= values


def test_retention_runs_in_the_background(broker_factory):
    b = broker_factory("log.retention.check.interval.ms=200")
    topic = "retained"
    ck_create(b.bootstrap, topic, config={"segment.bytes": "2000", "retention.ms": "300"})
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(60):
        p.produce(topic, value=b"x" * 200)
        p.flush(10)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "unused"})
    try:
        deadline = time.monotonic() + 60
        lo = 0
        while time.monotonic() < deadline:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
            if lo > 0:
                break
            time.sleep(0.2)
        # every closed segment is older than retention.ms: Kafka rolls and keeps an empty
        # active segment, so the log may start at its end
        assert hi == 60 and 0 < lo <= 60
    finally:
        c.close()
    # the log goes on at the next offset (the record itself expires 300 ms later)
    offsets = []
    p.produce(topic, value=b"after", on_delivery=lambda err, msg: offsets.append((err, msg.offset())))
    assert p.flush(10) == 0
    assert offsets == [(None, 60)]
