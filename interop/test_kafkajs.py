"""`flumen serve` driven by KafkaJS (interop/js/*.js, pinned in interop/package.json): admin
topic and group APIs, keys/headers/timestamps byte for byte through a group consumer, two
groups on one topic, a leaving or killed member handing its partitions over, and a waiting consumer
woken by a new record. Brokers run with a short initial rebalance delay so joins take a
fraction of a second; every wait is bounded in time."""
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from js_util import JsConsumer, decoded, js_admin, js_produce, js_record

GROUP_OVERRIDES = ("group.initial.rebalance.delay.ms=100", "group.min.session.timeout.ms=500")


@pytest.fixture
def gbroker(broker_factory):
    return broker_factory(*GROUP_OVERRIDES)


def create(bootstrap, topic, partitions=1, configs=()):
    [res] = js_admin(bootstrap, {"op": "createTopics", "topics": [
        {"topic": topic, "numPartitions": partitions, "replicationFactor": 1,
         "configEntries": [{"name": k, "value": v} for k, v in configs]}]})
    assert res["ok"] and res["result"] is True, res


def sample(n, ts0=1_600_000_000_000):
    # binary keys and values (every byte value occurs), several headers including an empty one
    # and a repeated name, explicit timestamps (KafkaJS cannot produce a null header value:
    # its encoder throws on one, so the cross-client tests cover null headers read by KafkaJS)
    return [(bytes([i % 256, 0, 255]) + b"key%d" % i, bytes(range(256)) + b" value %d" % i,
             [("h1", b"v%d" % i), ("bin", bytes([0, i % 256, 255])), ("bin", b"again"), ("empty", b"")], ts0 + i)
            for i in range(n)]


def test_create_produce_and_group_consume_round_trip_byte_for_byte(gbroker):
    create(gbroker.bootstrap, "js-rt", partitions=1)
    sent = sample(50)
    offsets = js_produce(gbroker.bootstrap, "js-rt", [js_record(*r) for r in sent], codec="gzip")
    assert offsets == [[0, 0]]
    c = JsConsumer(gbroker.bootstrap, "js-rt-group", ["js-rt"], count=50)
    try:
        c.wait(lambda c: len(c.records()) >= 50, what="50 records")
    finally:
        assert c.close() == 0
    got = c.records()
    assert [r["offset"] for r in got] == list(range(50))
    assert [decoded(r) for r in got] == sent
    # and another client family reads exactly the same bytes
    ck = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        ck.assign([TopicPartition("js-rt", 0, 0)])
        seen = []
        deadline = time.monotonic() + 60
        while len(seen) < 50 and time.monotonic() < deadline:
            m = ck.poll(0.5)
            if m is not None:
                assert m.error() is None, m.error()
                seen.append((m.key(), m.value(), list(m.headers()), m.timestamp()[1]))
    finally:
        ck.close()
    assert seen == sent


def test_admin_create_describe_alter_delete_topics(broker):
    b = broker.bootstrap
    ops = js_admin(
        b,
        {"op": "createTopics", "topics": [{"topic": "adm", "numPartitions": 2, "replicationFactor": 1,
                                            "configEntries": [{"name": "retention.ms", "value": "123456"}]}]},
        {"op": "createTopics", "topics": [{"topic": "adm", "numPartitions": 1}]},
        {"op": "createTopics", "topics": [{"topic": "bad/name", "numPartitions": 1}]},
        {"op": "createTopics", "validateOnly": True, "topics": [{"topic": "only-validated", "numPartitions": 1}]},
        {"op": "describeConfigs", "topics": ["adm"], "configNames": ["retention.ms", "cleanup.policy"]},
        {"op": "alterConfigs", "topic": "adm", "entries": [{"name": "retention.ms", "value": "654321"}]},
        {"op": "describeConfigs", "topics": ["adm"], "configNames": ["retention.ms"]},
        {"op": "createPartitions", "topicPartitions": [{"topic": "adm", "count": 3}]},
        {"op": "fetchTopicMetadata", "topics": ["adm"]},
        {"op": "listTopics"},
        {"op": "describeCluster"},
        {"op": "deleteTopics", "topics": ["adm"]},
        {"op": "listTopics"},
        {"op": "deleteTopics", "topics": ["never-was"]},
    )
    created, dup, bad, validated, desc, alter, desc2, parts, meta, listed, cluster, deleted, listed2, unknown = ops
    assert created["ok"] and created["result"] is True, created
    # KafkaJS answers False for TOPIC_ALREADY_EXISTS instead of throwing
    assert dup["ok"] and dup["result"] is False, dup
    assert not bad["ok"] and "INVALID_TOPIC_EXCEPTION" in str(bad), bad
    assert validated["ok"], validated
    entries = {e["configName"]: e for e in desc["result"]["resources"][0]["configEntries"]}
    assert desc["result"]["resources"][0]["errorCode"] == 0
    assert entries["retention.ms"]["configValue"] == "123456" and not entries["retention.ms"]["isDefault"]
    assert entries["cleanup.policy"]["configValue"] == "delete" and entries["cleanup.policy"]["isDefault"]
    assert alter["ok"], alter
    [e] = desc2["result"]["resources"][0]["configEntries"]
    assert (e["configName"], e["configValue"]) == ("retention.ms", "654321")
    assert parts["ok"], parts
    [t] = meta["result"]["topics"]
    assert t["name"] == "adm" and sorted(p["partitionId"] for p in t["partitions"]) == [0, 1, 2]
    assert "adm" in listed["result"] and "only-validated" not in listed["result"]
    assert len(cluster["result"]["brokers"]) == 1 and cluster["result"]["brokers"][0]["port"] == broker.port
    assert deleted["ok"], deleted
    assert "adm" not in listed2["result"]
    assert not unknown["ok"] and "UNKNOWN_TOPIC_OR_PARTITION" in str(unknown), unknown


def test_admin_lists_describes_and_deletes_groups(gbroker):
    b = gbroker.bootstrap
    create(b, "gadm", partitions=2)
    js_produce(b, "gadm", [js_record(b"k%d" % i, b"v%d" % i, partition=i % 2) for i in range(10)])
    c = JsConsumer(b, "js-admin-group", ["gadm"])
    try:
        c.wait(lambda c: len(c.records()) >= 10, what="10 records")
        [listed, described] = js_admin(b, {"op": "listGroups"}, {"op": "describeGroups", "groups": ["js-admin-group"]})
        assert {"groupId": "js-admin-group", "protocolType": "consumer"} in listed["result"]["groups"], listed
        [g] = described["result"]["groups"]
        assert g["state"] == "Stable" and g["protocolType"] == "consumer" and len(g["members"]) == 1, g
        # a non-empty group cannot be deleted
        [busy] = js_admin(b, {"op": "deleteGroups", "groups": ["js-admin-group"]})
        assert not busy["ok"] and "NON_EMPTY_GROUP" in str(busy), busy
    finally:
        assert c.close() == 0
    offsets, described, deleted, listed, again = js_admin(
        b,
        {"op": "fetchOffsets", "group": "js-admin-group", "topics": ["gadm"]},
        {"op": "describeGroups", "groups": ["js-admin-group"]},
        {"op": "deleteGroups", "groups": ["js-admin-group"]},
        {"op": "listGroups"},
        {"op": "deleteGroups", "groups": ["js-admin-group"]},
    )
    [t] = offsets["result"]
    assert sorted((p["partition"], p["offset"]) for p in t["partitions"]) == [(0, "5"), (1, "5")], offsets
    assert described["result"]["groups"][0]["state"] == "Empty", described
    assert deleted["ok"] and deleted["result"][0]["groupId"] == "js-admin-group", deleted
    assert "js-admin-group" not in [g["groupId"] for g in listed["result"]["groups"]]
    assert not again["ok"] and "GROUP_ID_NOT_FOUND" in str(again), again


def test_two_groups_on_one_topic_each_receive_everything(gbroker):
    b = gbroker.bootstrap
    create(b, "two-groups", partitions=3)
    js_produce(b, "two-groups", [js_record(None, b"%d" % i, partition=i % 3) for i in range(60)], codec="gzip")
    members = [JsConsumer(b, g, ["two-groups"], count=60) for g in ("ga", "gb")]
    try:
        for c in members:
            c.wait(lambda c: len(c.records()) >= 60, what="60 records")
    finally:
        for c in members:
            c.close()
    for c in members:
        assert sorted(int(v) for v in c.values()) == list(range(60))


def parts(assignment, topic):
    return set((assignment or {}).get(topic, []))


@pytest.mark.parametrize("how", ["leave", "kill"])
def test_member_leaving_or_killed_hands_its_partitions_over(gbroker, how):
    b = gbroker.bootstrap
    topic = "handover"
    create(b, topic, partitions=4)
    # a short session so that a killed member expires within seconds
    a = JsConsumer(b, "hand", [topic], session_ms=1500)
    c = None
    try:
        a.wait(lambda m: parts(m.assignment(), topic) == {0, 1, 2, 3}, what="a alone owns all")
        c = JsConsumer(b, "hand", [topic], session_ms=1500)
        # both rebalance: disjoint, non-empty, covering all four partitions
        a.wait(lambda m: len(parts(m.assignment(), topic)) == 2, what="a rebalanced")
        c.wait(lambda m: len(parts(m.assignment(), topic)) == 2, what="c joined")
        pa, pc = parts(a.assignment(), topic), parts(c.assignment(), topic)
        assert pa | pc == {0, 1, 2, 3} and not pa & pc
        js_produce(b, topic, [js_record(None, b"%d" % i, partition=i % 4) for i in range(40)])
        both = lambda _: len(a.records()) + len(c.records()) >= 40  # noqa: E731
        a.wait(both, what="first batch")
        assert {int(v) % 4 for v in a.values()} == pa and {int(v) % 4 for v in c.values()} == pc
        if how == "leave":
            assert a.close() == 0  # commits and sends LeaveGroup
        else:
            a.kill()  # kill -9: the coordinator expires it after the session timeout
        c.wait(lambda m: parts(m.assignment(), topic) == {0, 1, 2, 3}, timeout=30, what="c took over all")
        js_produce(b, topic, [js_record(None, b"%d" % i, partition=i % 4) for i in range(40, 80)])
        c.wait(lambda m: {int(v) for v in m.values()} >= set(range(40, 80)), what="second batch")
    finally:
        a.close()
        if c is not None:
            c.close()
    # nothing skipped (delivery is at least once: a record a processed after its last commit
    # may come again from c, so duplicates are not checked)
    seen = [int(v) for v in a.values() + c.values()]
    assert set(seen) == set(range(80))


def test_waiting_consumer_is_woken_by_a_new_record(gbroker):
    b = gbroker.bootstrap
    create(b, "js-wake")
    c = JsConsumer(b, "wake", ["js-wake"], max_wait_ms=20000)
    try:
        c.wait(lambda m: parts(m.assignment(), "js-wake") == {0}, what="join")
        time.sleep(1.5)  # the consumer's fetch is now parked on the broker for up to 20 s
        js_produce(b, "js-wake", [js_record(b"k", b"hello", timestamp=1_700_000_000_000)])
        # woken by the append, long before the 20 s fetch wait (10 s is a generous bound)
        c.wait(lambda m: len(m.records()) >= 1, timeout=10, what="the new record")
        assert decoded(c.records()[0]) == (b"k", b"hello", [], 1_700_000_000_000)
    finally:
        c.kill()  # a clean close would wait out the parked 20 s fetch
