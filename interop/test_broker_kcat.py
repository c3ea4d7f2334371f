"""`flumen serve` driven by kcat (librdkafka): metadata, produce/consume, every codec."""
import json
import subprocess

import pytest

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def kcat(*args, input=None, timeout=30):
    out = subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def test_metadata_lists_this_broker(broker):
    kcat("-b", broker.bootstrap, "-P", "-t", "meta-topic", input=b"x\n")
    md = json.loads(kcat("-b", broker.bootstrap, "-L", "-J"))
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(1, broker.bootstrap)]
    topics = {t["topic"]: t for t in md["topics"]}
    assert len(topics["meta-topic"]["partitions"]) == 1
    assert topics["meta-topic"]["partitions"][0]["leader"] == 1


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_every_codec_with_keys_and_headers(broker, codec):
    topic = f"kcat-{codec}"
    lines = "".join(f"key{i}:value-{i}\n" for i in range(500)).encode()
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-K:", "-z", codec, "-H", "h1=v1", "-H", "h2=", input=lines)
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%k|%s|%h|%o\n")
    rows = out.splitlines()
    assert len(rows) == 500
    assert rows[0] == "key0|value-0|h1=v1,h2=|0"
    assert rows[499] == "key499|value-499|h1=v1,h2=|499"


def test_consume_from_offsets(broker):
    topic = "kcat-offsets"
    for v in ("a", "b", "c"):
        kcat("-b", broker.bootstrap, "-P", "-t", topic, "-z", "gzip", input=f"{v}\n".encode())
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "1", "-e", "-q", "-f", "%s\n")
    assert out.splitlines() == ["b", "c"]
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "-1", "-e", "-q", "-f", "%s\n")
    assert out.splitlines() == ["c"]


def test_many_partitions_auto_created(broker_factory):
    b = broker_factory("num.partitions=8")
    topic = "kcat-many"
    lines = "".join(f"key{i}:{i}\n" for i in range(400)).encode()  # keys spread over partitions
    kcat("-b", b.bootstrap, "-P", "-t", topic, "-K:", input=lines)
    md = json.loads(kcat("-b", b.bootstrap, "-L", "-J", "-t", topic))
    assert len(md["topics"][0]["partitions"]) == 8
    out = kcat("-b", b.bootstrap, "-C", "-t", topic, "-e", "-q", "-f", "%p %s\n")
    rows = [line.split() for line in out.splitlines()]
    assert sorted(int(v) for _, v in rows) == list(range(400))
    assert len({p for p, _ in rows}) > 1
