"""Consumer groups against `flumen serve` with confluent-kafka (librdkafka), kafka-python,
aiokafka and kcat: groups sharing a topic, partitions split among members, hand-over when a
member leaves or is killed, cooperative-sticky rebalancing, committed offsets across a broker
kill -9, and the group admin APIs.

Brokers run with group.initial.rebalance.delay.ms=100 and group.min.session.timeout.ms=500 so
rebalances take a fraction of a second; every wait is bounded in time."""
import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

GROUP_OVERRIDES = ("group.initial.rebalance.delay.ms=100", "group.min.session.timeout.ms=500")
FAST = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 200}


@pytest.fixture
def gbroker(broker_factory):
    return broker_factory(*GROUP_OVERRIDES)


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        f.result(timeout=20)
    return admin


def produce(bootstrap, topic, partitions, start, count):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
    for i in range(start, start + count):
        p.produce(topic, value=b"%d" % i, partition=i % partitions)
    assert p.flush(20) == 0
    return set(range(start, start + count))


def ck_consumer(bootstrap, group, **conf):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     **FAST, **conf})


def poll_until(consumers, done, timeout=30, seen=None):
    """Polls every confluent consumer round-robin until done(seen) or the deadline."""
    seen = seen if seen is not None else [set() for _ in consumers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(seen):
        for i, c in enumerate(consumers):
            m = c.poll(0.05)
            if m is not None and m.error() is None:
                seen[i].add(int(m.value()))
    return seen


def assignment(c):
    return {tp.partition for tp in c.assignment()}


# --- two groups on one topic each receive everything ---------------------------------------

def test_three_groups_with_three_client_families_each_receive_everything(gbroker):
    from aiokafka import AIOKafkaConsumer
    from kafka import KafkaConsumer

    topic = "shared"
    create(gbroker.bootstrap, topic, 3)
    want = produce(gbroker.bootstrap, topic, 3, 0, 300)

    ck = ck_consumer(gbroker.bootstrap, "g-ck")
    ck.subscribe([topic])
    got_ck = poll_until([ck], lambda s: s[0] >= want)[0]
    ck.close()

    kp = KafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id="g-kp", auto_offset_reset="earliest",
                       session_timeout_ms=2000, heartbeat_interval_ms=200)
    got_kp = set()
    deadline = time.monotonic() + 30
    while got_kp < want and time.monotonic() < deadline:
        for recs in kp.poll(timeout_ms=200).values():
            got_kp.update(int(r.value) for r in recs)
    kp.close()

    async def aio():
        c = AIOKafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id="g-aio",
                             auto_offset_reset="earliest", session_timeout_ms=2000, heartbeat_interval_ms=200)
        await c.start()
        got = set()
        try:
            deadline = time.monotonic() + 30
            while got < want and time.monotonic() < deadline:
                for recs in (await c.getmany(timeout_ms=200)).values():
                    got.update(int(r.value) for r in recs)
        finally:
            await c.stop()
        return got

    got_aio = asyncio.run(aio())
    assert got_ck == want and got_kp == want and got_aio == want


# --- three members split six partitions ------------------------------------------------------

def check_split(sets):
    assert all(sets), f"every member owns partitions: {sets}"
    union = set().union(*sets)
    assert union == set(range(6)), sets
    assert sum(len(s) for s in sets) == 6, f"disjoint: {sets}"


def test_confluent_three_members_split_six_partitions(gbroker):
    create(gbroker.bootstrap, "six-ck", 6)
    want = produce(gbroker.bootstrap, "six-ck", 6, 0, 600)
    cs = [ck_consumer(gbroker.bootstrap, "split-ck") for _ in range(3)]
    for c in cs:
        c.subscribe(["six-ck"])
    seen = poll_until(cs, lambda s: set().union(*s) >= want and all(assignment(c) for c in cs))
    sets = [assignment(c) for c in cs]
    for c in cs:
        c.close()
    check_split(sets)
    assert set().union(*seen) == want


def test_kafka_python_three_members_split_six_partitions(gbroker):
    from kafka import KafkaConsumer

    create(gbroker.bootstrap, "six-kp", 6)
    want = produce(gbroker.bootstrap, "six-kp", 6, 0, 600)
    stop = threading.Event()
    seen = [set() for _ in range(3)]
    owned = [set() for _ in range(3)]

    def run(i):
        c = KafkaConsumer("six-kp", bootstrap_servers=gbroker.bootstrap, group_id="split-kp",
                          auto_offset_reset="earliest", session_timeout_ms=2000, heartbeat_interval_ms=200)
        try:
            while not stop.is_set():
                for recs in c.poll(timeout_ms=100).values():
                    seen[i].update(int(r.value) for r in recs)
                owned[i] = {tp.partition for tp in c.assignment()}
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not (set().union(*seen) >= want and all(owned)
                                                and sum(len(o) for o in owned) == 6):
        time.sleep(0.1)
    sets = [set(o) for o in owned]
    stop.set()
    for t in threads:
        t.join(timeout=20)
    check_split(sets)
    assert set().union(*seen) == want


def test_aiokafka_three_members_split_six_partitions(gbroker):
    from aiokafka import AIOKafkaConsumer

    create(gbroker.bootstrap, "six-aio", 6)
    want = produce(gbroker.bootstrap, "six-aio", 6, 0, 600)

    async def main():
        cs = [AIOKafkaConsumer("six-aio", bootstrap_servers=gbroker.bootstrap, group_id="split-aio",
                               auto_offset_reset="earliest", session_timeout_ms=2000, heartbeat_interval_ms=200)
              for _ in range(3)]
        for c in cs:
            await c.start()
        seen = set()
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                for c in cs:
                    for recs in (await c.getmany(timeout_ms=50)).values():
                        seen.update(int(r.value) for r in recs)
                sets = [{tp.partition for tp in c.assignment()} for c in cs]
                if seen >= want and all(sets) and sum(len(s) for s in sets) == 6:
                    break
            return sets, seen
        finally:
            for c in cs:
                await c.stop()

    sets, seen = asyncio.run(main())
    check_split(sets)
    assert seen == want


# --- hand-over when a member leaves or is killed ----------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 1000, "heartbeat.interval.ms": 200})
    c.subscribe([sys.argv[3]])
    while True:
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        print(int(m.value()), flush=True)
        c.commit(message=m, asynchronous=False)
""")


def test_leaving_and_killed_members_hand_over_their_partitions_without_skipping(gbroker, tmp_path):
    topic, group = "handover", "g-handover"
    create(gbroker.bootstrap, topic, 4)
    want = produce(gbroker.bootstrap, topic, 4, 0, 400)
    conf = {"enable.auto.commit": False}
    a = ck_consumer(gbroker.bootstrap, group, **conf)
    b = ck_consumer(gbroker.bootstrap, group, **conf)
    a.subscribe([topic])
    b.subscribe([topic])
    seen = [set(), set()]

    # Both members consume (committing what they processed) until each owns partitions.
    def step(c, i):
        m = c.poll(0.05)
        if m is not None and m.error() is None:
            seen[i].add(int(m.value()))
            c.commit(message=m, asynchronous=False)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (assignment(a) and assignment(b) and seen[1]):
        step(a, 0)
        step(b, 1)
    assert assignment(a) and assignment(b)
    b.close()  # LeaveGroup: a takes everything over without waiting for a session timeout
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (seen[0] | seen[1] >= want and len(assignment(a)) == 4):
        step(a, 0)
    assert len(assignment(a)) == 4
    assert seen[0] | seen[1] == want, "nothing skipped after the leave"

    # A second member is started in a child process and killed with SIGKILL once it consumes.
    out = open(tmp_path / "child.out", "w+")
    child = subprocess.Popen([sys.executable, "-c", CHILD, gbroker.bootstrap, group, topic], stdout=out)
    try:
        # Keep producing until the child (owning some partitions after the rebalance) consumes.
        next_value = 400
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.path.getsize(out.name) < 20:
            want |= produce(gbroker.bootstrap, topic, 4, next_value, 8)
            next_value += 8
            for _ in range(10):
                step(a, 0)
        assert os.path.getsize(out.name) >= 20, "the child consumed"
        want |= produce(gbroker.bootstrap, topic, 4, next_value, 200)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    deadline = time.monotonic() + 40
    child_seen = set()
    while time.monotonic() < deadline:
        step(a, 0)
        out.seek(0)
        child_seen = {int(line) for line in out.read().split()}
        if seen[0] | seen[1] | child_seen >= want and len(assignment(a)) == 4:
            break
    a.close()
    assert seen[0] | seen[1] | child_seen == want, "nothing skipped after the kill"


# --- cooperative-sticky --------------------------------------------------------------------

def test_cooperative_sticky_rebalances_without_revoking_unaffected_partitions(gbroker):
    topic = "coop"
    create(gbroker.bootstrap, topic, 6)
    events = {"a": [], "b": []}

    def cbs(name):
        def on_assign(c, parts):
            events[name].append(("assign", {p.partition for p in parts}))

        def on_revoke(c, parts):
            events[name].append(("revoke", {p.partition for p in parts}))

        return {"on_assign": on_assign, "on_revoke": on_revoke}

    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = ck_consumer(gbroker.bootstrap, "g-coop", **conf)
    a.subscribe([topic], **cbs("a"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(assignment(a)) < 6:
        a.poll(0.05)
    assert len(assignment(a)) == 6
    b = ck_consumer(gbroker.bootstrap, "g-coop", **conf)
    b.subscribe([topic], **cbs("b"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (assignment(b) and len(assignment(a)) + len(assignment(b)) == 6):
        a.poll(0.05)
        b.poll(0.05)
    kept, moved = assignment(a), assignment(b)
    history = list(events["a"])
    b.close()
    a.close()
    assert kept and moved and not kept & moved and kept | moved == set(range(6)), (kept, moved)
    revoked = set().union(*[p for kind, p in history if kind == "revoke"] or [set()])
    # a gave up exactly the moved partitions (incrementally); the ones it kept were never revoked.
    assert revoked & kept == set(), history
    assert moved <= revoked, history


# --- committed offsets survive kill -9 -------------------------------------------------------

def test_committed_offsets_and_metadata_survive_broker_kill_9(broker_factory):
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KTP

    b = broker_factory(*GROUP_OVERRIDES)
    create(b.bootstrap, "durable", 3)
    produce(b.bootstrap, "durable", 3, 0, 30)
    c = ck_consumer(b.bootstrap, "g-durable", **{"enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("durable", p, 5 + p, metadata=f"meta-{p}") for p in range(3)],
             asynchronous=False)
    c.close()
    kp = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="g-durable-kp", enable_auto_commit=False)
    kp.commit({KTP("durable", 1): OffsetAndMetadata(17, "kp-meta", -1)})
    kp.close()

    async def aio_commit():
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import OffsetAndMetadata as AOM
        from aiokafka.structs import TopicPartition as ATP

        c = AIOKafkaConsumer(bootstrap_servers=b.bootstrap, group_id="g-durable-aio", enable_auto_commit=False)
        await c.start()
        try:
            c.assign([ATP("durable", 2)])
            await c.commit({ATP("durable", 2): AOM(23, "aio-meta")})
        finally:
            await c.stop()

    asyncio.run(aio_commit())

    b.kill()
    b.log.close()
    b.start()

    c = ck_consumer(b.bootstrap, "g-durable", **{"enable.auto.commit": False})
    got = c.committed([TopicPartition("durable", p) for p in range(3)], timeout=20)
    c.close()
    assert [(t.partition, t.offset, t.metadata) for t in got] == [(p, 5 + p, f"meta-{p}") for p in range(3)]
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("g-durable-kp")])["g-durable-kp"].result()
    assert [(t.topic, t.partition, t.offset) for t in res.topic_partitions] == [("durable", 1, 17)]
    # (Read through Consumer.committed: the admin path of confluent-kafka 2.16 sometimes
    # returns metadata strings with trailing garbage, a client-side bug.)
    c = ck_consumer(b.bootstrap, "g-durable-aio", **{"enable.auto.commit": False})
    (got,) = c.committed([TopicPartition("durable", 2)], timeout=20)
    c.close()
    assert (got.offset, got.metadata) == (23, "aio-meta")


# --- admin: list, describe, delete -----------------------------------------------------------

def test_admin_lists_describes_and_deletes_groups(gbroker):
    from kafka.admin import KafkaAdminClient

    topic = "admin-groups"
    admin = create(gbroker.bootstrap, topic, 2)
    produce(gbroker.bootstrap, topic, 2, 0, 10)
    active = ck_consumer(gbroker.bootstrap, "g-active")
    active.subscribe([topic])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(assignment(active)) < 2:
        active.poll(0.05)
    # A group with only committed offsets (a simple commit, as alterConsumerGroupOffsets does).
    admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("g-empty", [TopicPartition(topic, 0, 3)])])["g-empty"].result()

    listed = admin.list_consumer_groups().result(timeout=20)
    ids = {g.group_id: g for g in listed.valid}
    assert {"g-active", "g-empty"} <= set(ids)
    assert ids["g-active"].state == ConsumerGroupState.STABLE
    stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(timeout=20)
    assert [g.group_id for g in stable.valid] == ["g-active"]

    d = admin.describe_consumer_groups(["g-active"])["g-active"].result(timeout=20)
    assert d.state == ConsumerGroupState.STABLE
    assert d.partition_assignor == "range"
    assert len(d.members) == 1
    assert {tp.partition for tp in d.members[0].assignment.topic_partitions} == {0, 1}

    kp_admin = KafkaAdminClient(bootstrap_servers=gbroker.bootstrap)
    (kd,) = kp_admin.describe_consumer_groups(["g-active"])
    assert kd.state == "Stable" and len(kd.members) == 1
    assert {g[0] for g in kp_admin.list_consumer_groups()} >= {"g-active", "g-empty"}
    kp_admin.close()

    with pytest.raises(Exception, match="NON_EMPTY_GROUP|not empty"):
        admin.delete_consumer_groups(["g-active"])["g-active"].result(timeout=20)
    admin.delete_consumer_groups(["g-empty"])["g-empty"].result(timeout=20)
    with pytest.raises(Exception, match="GROUP_ID_NOT_FOUND|does not exist"):
        admin.delete_consumer_groups(["g-empty"])["g-empty"].result(timeout=20)
    active.close()
    admin.delete_consumer_groups(["g-active"])["g-active"].result(timeout=20)
    left = {g.group_id for g in admin.list_consumer_groups().result(timeout=20).valid}
    assert not left & {"g-active", "g-empty"}


# --- kcat's balanced consumer --------------------------------------------------------------

def test_kcat_balanced_consumer_reads_everything(gbroker):
    topic = "kcat-group"
    create(gbroker.bootstrap, topic, 3)
    want = produce(gbroker.bootstrap, topic, 3, 0, 90)
    out = subprocess.run(
        ["kcat", "-b", gbroker.bootstrap, "-G", "g-kcat", "-o", "beginning", "-e", "-q", "-f", "%s\\n",
         "-X", "session.timeout.ms=2000", topic],
        capture_output=True, timeout=60)
    assert {int(x) for x in out.stdout.split()} == want, out.stderr.decode()


# --- static membership -----------------------------------------------------------------------

def test_static_member_restart_keeps_its_partitions_without_a_rebalance(gbroker):
    topic, group = "static", "g-static"
    create(gbroker.bootstrap, topic, 4)
    events = []
    conf = {"session.timeout.ms": 10000, "heartbeat.interval.ms": 200}
    a = ck_consumer(gbroker.bootstrap, group, **{**conf, "group.instance.id": "inst-a"})
    a.subscribe([topic], on_assign=lambda c, p: events.append(("assign", len(p))),
                on_revoke=lambda c, p: events.append(("revoke", len(p))))
    b = ck_consumer(gbroker.bootstrap, group, **{**conf, "group.instance.id": "inst-b"})
    b.subscribe([topic])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (assignment(a) and assignment(b)
                                                and len(assignment(a)) + len(assignment(b)) == 4):
        a.poll(0.05)
        b.poll(0.05)
    owned_b = assignment(b)
    assert owned_b and len(assignment(a)) + len(owned_b) == 4
    settled = len(events)
    b.close()  # a static member does not leave the group on close
    b2 = ck_consumer(gbroker.bootstrap, group, **{**conf, "group.instance.id": "inst-b"})
    b2.subscribe([topic])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not assignment(b2):
        a.poll(0.05)
        b2.poll(0.05)
    for _ in range(10):
        a.poll(0.05)
        b2.poll(0.05)
    try:
        assert assignment(b2) == owned_b, "the new incarnation inherits the assignment"
        assert events[settled:] == [], f"no rebalance for the other member: {events}"
        admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
        d = admin.describe_consumer_groups([group])[group].result(timeout=20)
        assert sorted(m.group_instance_id for m in d.members) == ["inst-a", "inst-b"]
    finally:
        b2.close()
        a.close()
