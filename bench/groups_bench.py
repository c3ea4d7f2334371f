"""Consumer-group benchmarks (issue 4 §5) against the release binary, with raw protocol
requests (kafka-python's protocol classes over plain sockets, so client-side machinery does
not blur the broker's timing):

1. rebalance: 10 members join an Empty group at once (after the MEMBER_ID_REQUIRED round
   trip); time from the last JoinGroup sent to the leader's SyncGroup answer (the group is
   Stable), minus group.initial.rebalance.delay.ms. Target ≤ 200 ms.
2. commit: OffsetCommit v7 of one partition, paced at 1,000 commits/s for 10 s; round-trip
   latency percentiles. Target p99 ≤ 2 ms.
3. fetch: OffsetFetch v5 of 1,000 committed partitions; round-trip latency. Target ≤ 10 ms.

Usage: FLUMEN_BIN=target/release/flumen python bench/groups_bench.py (see bench/groups.sh).
"""
import os
import pathlib
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "interop"))
from conftest import Broker  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka.protocol.api_versions import ApiVersionsRequest  # noqa: E402
from kafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest  # noqa: E402
from kafka.protocol.group import JoinGroupRequest, SyncGroupRequest  # noqa: E402
from kafka.protocol.parser import KafkaProtocol  # noqa: E402

MEMBER_ID_REQUIRED = 79


class Conn:
    """One connection issuing one request at a time."""

    def __init__(self, bootstrap):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proto = KafkaProtocol(client_id="groups-bench")

    def _read(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("broker closed the connection")
            buf += chunk
        return bytes(buf)

    def timed_call(self, request):
        """Returns (response, round-trip ms): the clock stops when the whole response frame
        has arrived, before the (slow, pure-Python) decoding."""
        self.proto.send_request(request)
        data = self.proto.send_bytes()
        t0 = time.perf_counter()
        self.sock.sendall(data)
        size = self._read(4)
        body = self._read(int.from_bytes(size, "big"))
        ms = (time.perf_counter() - t0) * 1000
        ((_cid, response),) = self.proto.receive_bytes(size + body)
        return response, ms

    def call(self, request):
        return self.timed_call(request)[0]

    def close(self):
        self.sock.close()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def rebalance_trial(bootstrap, group, members=10):
    conns = [Conn(bootstrap) for _ in range(members)]
    meta = b"\x00\x01\x00\x00\x00\x01\x00\x05bench\xff\xff\xff\xff"
    protocols = [("range", meta)]
    ids = []
    for c in conns:
        r = c.call(JoinGroupRequest[5](group, 10000, 60000, "", None, "consumer", protocols))
        assert r.error_code == MEMBER_ID_REQUIRED, r
        ids.append(r.member_id)
    sent = [0.0] * members
    stable = [None]
    barrier = threading.Barrier(members)
    errors = []

    def member(i):
        try:
            barrier.wait(timeout=10)
            sent[i] = time.monotonic()
            r = conns[i].call(JoinGroupRequest[5](group, 10000, 60000, ids[i], None, "consumer", protocols))
            assert r.error_code == 0, r
            assignments = [(m[0], b"") for m in r.members] if r.leader_id == ids[i] else []
            s = conns[i].call(SyncGroupRequest[3](group, r.generation_id, ids[i], None, assignments))
            assert s.error_code == 0, s
            if r.leader_id == ids[i]:
                stable[0] = time.monotonic()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=member, args=(i,)) for i in range(members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return stable[0] - max(sent)


def main():
    flumen = os.environ.get("FLUMEN_BIN") or str(ROOT / "target" / "release" / "flumen")
    tmp = tempfile.mkdtemp(prefix="flumen-groups-bench-", dir=os.environ.get("BENCH_TMP", "/var/tmp"))
    rows = []
    try:
        delay_ms = 3000  # Kafka's default group.initial.rebalance.delay.ms
        b = Broker(flumen, pathlib.Path(tmp) / "data", overrides=[f"group.initial.rebalance.delay.ms={delay_ms}"])
        b.start()
        try:
            beyond = [rebalance_trial(b.bootstrap, f"rebalance-{t}") * 1000 - delay_ms for t in range(5)]
            rows.append(("10-member group: Stable after the last join, beyond the 3000 ms initial delay",
                         f"median {statistics.median(beyond):.1f} ms, max {max(beyond):.1f} ms (5 trials)",
                         "≤ 200 ms"))

            admin = AdminClient({"bootstrap.servers": b.bootstrap})
            for f in admin.create_topics([NewTopic("commits", num_partitions=1, replication_factor=1),
                                          NewTopic("wide", num_partitions=1000, replication_factor=1)]).values():
                f.result(timeout=120)

            c = Conn(b.bootstrap)
            lat = []
            n = 10_000
            start = time.monotonic()
            for i in range(n):
                due = start + i / 1000.0
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                r, ms = c.timed_call(OffsetCommitRequest[7]("commit-bench", -1, "", None,
                                                            [("commits", [(0, i, -1, "m")])]))
                lat.append(ms)
                assert r.topics[0][1][0][1] == 0, r
            rate = n / (time.monotonic() - start)
            rows.append((f"OffsetCommit round trip at {rate:,.0f} commits/s ({n:,} commits, 1 partition)",
                         f"p50 {pct(lat, 50):.3f} ms, p90 {pct(lat, 90):.3f} ms, p99 {pct(lat, 99):.3f} ms, max {max(lat):.2f} ms",
                         "p99 ≤ 2 ms"))

            # Control: the same pacing with ApiVersions, which touches no group state and no
            # file, shows how much of the tail is the machine rather than the commit path.
            lat = []
            start = time.monotonic()
            for i in range(n):
                due = start + i / 1000.0
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                _r, ms = c.timed_call(ApiVersionsRequest[0]())
                lat.append(ms)
            rows.append((f"Control: ApiVersions round trip at 1,000 requests/s ({n:,} requests)",
                         f"p50 {pct(lat, 50):.3f} ms, p90 {pct(lat, 90):.3f} ms, p99 {pct(lat, 99):.3f} ms, "
                         f"max {max(lat):.2f} ms", "(none)"))

            parts = list(range(1000))
            r = c.call(OffsetCommitRequest[7]("fetch-bench", -1, "", None,
                                              [("wide", [(p, p * 10, -1, "") for p in parts])]))
            assert all(p[1] == 0 for p in r.topics[0][1])
            lat = []
            for _ in range(200):
                r, ms = c.timed_call(OffsetFetchRequest[5]("fetch-bench", [("wide", parts)]))
                lat.append(ms)
                got = r.topics[0][1]
                assert len(got) == 1000 and got[999][1] == 9990, got[999]
            rows.append(("OffsetFetch of 1,000 committed partitions (200 requests)",
                         f"p50 {pct(lat, 50):.2f} ms, p90 {pct(lat, 90):.2f} ms, p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms",
                         "≤ 10 ms"))
            c.close()
        finally:
            b.kill()
            b.log.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| benchmark | result | target |")
    print("|---|---|---|")
    for name, result, target in rows:
        print(f"| {name} | {result} | {target} |")


if __name__ == "__main__":
    main()
