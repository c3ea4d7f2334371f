#!/usr/bin/env bash
# Flume Kafka channel throughput (issue 8): seq → org.apache.flume.channel.kafka.KafkaChannel
# (on flumen serve) → null. Timed from the agent's start until the channel's consumer group
# has committed EVENTS (every event put to the topic, read back, taken and committed).
#
#   bench/kafka_channel.sh                 # 1,000,000 events
#   EVENTS=3000000 BATCH=1000 bench/kafka_channel.sh
#   EXTRA="a1.channels.c1.kafka.producer.linger.ms = 0" bench/kafka_channel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${FLUMEN_BIN:-$ROOT/target/release/flumen}
PY=${PYTHON:-$ROOT/interop/.venv/bin/python}
: "${EVENTS:=1000000}"
: "${BATCH:=1000}"
: "${EXTRA:=}"
: "${WORK:=${TMPDIR:-/tmp}/flumen-kafka-channel-bench}"
rm -rf "$WORK"; mkdir -p "$WORK"
BPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$BPORT" --override "log.dirs=$WORK/data" >"$WORK/broker.log" 2>&1 &
BROKER=$!
AGENT=
trap 'kill $BROKER $AGENT 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "Broker ready" "$WORK/broker.log" && break; sleep 0.1; done
cat >"$WORK/agent.conf" <<C
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = $BATCH
a1.sources.r1.totalEvents = $EVENTS
a1.sources.r1.channels = c1
a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel
a1.channels.c1.kafka.bootstrap.servers = 127.0.0.1:$BPORT
a1.channels.c1.kafka.topic = bench-channel
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.batchSize = $BATCH
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
deadline = time.time() + 600
done = 0
while time.time() < deadline:
    try:
        done = c.committed([TopicPartition("bench-channel", 0)], timeout=5)[0].offset
        if done >= want:
            break
    except Exception:
        pass
    time.sleep(0.05)
end = time.time()
tick = os.sysconf("SC_CLK_TCK")
with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / tick
load = open("/proc/loadavg").read().split()[:3]
d = end - start
print(f"{done:,} events in {d:.2f} s: {done / d:,.0f} events/s; agent CPU {cpu:.2f} s; load {' '.join(load)}")
PY
