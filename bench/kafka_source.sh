#!/usr/bin/env bash
# Flume Kafka source throughput: a topic pre-filled with EVENTS small records (confluent-kafka)
# → org.apache.flume.source.kafka.KafkaSource (batchSize 1000) → memory → null. Timed from
# the agent start, and from the group's first offset commit (after the group join) to the
# commit of the last record.
#
#   bench/kafka_source.sh                  # 1,000,000 events
#   EXTRA="a1.sources.r1.kafka.consumer.fetch.queue.backoff.ms = 1000" bench/kafka_source.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${FLUMEN_BIN:-$ROOT/target/release/flumen}
PY=${PYTHON:-$ROOT/interop/.venv/bin/python}
: "${WORK:=${TMPDIR:-/tmp}/flumen-kafka-source-bench}"
rm -rf "$WORK"; mkdir -p "$WORK"
: "${EVENTS:=1000000}"
: "${EXTRA:=}"
BPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$BPORT" --override "log.dirs=$WORK/data" >"$WORK/broker.log" 2>&1 &
BROKER=$!; AGENT=
trap 'kill $BROKER $AGENT 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "Broker ready" "$WORK/broker.log" && break; sleep 0.1; done
"$PY" - $BPORT $EVENTS <<'PY'
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}", "linger.ms": 20})
for i in range(int(sys.argv[2])):
    while True:
        try: p.produce("src", str(i).encode()); break
        except BufferError: p.poll(0.01)
p.flush(60)
PY
cat >"$WORK/agent.conf" <<C
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.kafka.bootstrap.servers = 127.0.0.1:$BPORT
a1.sources.r1.kafka.topics = src
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.batchSize = 1000
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = 1000
$EXTRA
C
start=$(date +%s.%N)
"$BIN" agent -f "$WORK/agent.conf" -n a1 -Dflume.root.logger=WARN,console >"$WORK/agent.log" 2>&1 &
AGENT=$!
"$PY" - "$BPORT" "$EVENTS" "$AGENT" "$start" <<'PY'
import os, sys, time
from confluent_kafka import Consumer, TopicPartition
port, want, pid, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "flume"})
deadline = time.time() + 300
done = 0; first = None
while time.time() < deadline:
    try:
        done = c.committed([TopicPartition("src", 0)], timeout=5)[0].offset
        if done > 0 and first is None: first = (time.time(), done)
        if done >= want: break
    except Exception: pass
    time.sleep(0.05)
end = time.time()
tick = os.sysconf("SC_CLK_TCK")
fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / tick
load = open("/proc/loadavg").read().split()[:3]
d = end - start
rate = (done - first[1]) / (end - first[0]) if first and end > first[0] else 0
print(f"{done:,} events in {d:.2f} s from agent start; {rate:,.0f} events/s from first commit; agent CPU {cpu:.2f} s; load {' '.join(load)}")
PY
