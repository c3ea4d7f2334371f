#!/usr/bin/env bash
# Flume Kafka sink throughput (issue 8): seq → memory → org.apache.flume.sink.kafka.KafkaSink
# → flumen serve. Timed from the agent's start until the topic's end offset reaches EVENTS.
#
#   bench/flume_kafka.sh                 # 1,000,000 events
#   EVENTS=5000000 bench/flume_kafka.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${FLUMEN_BIN:-$ROOT/target/release/flumen}
PY=${PYTHON:-$ROOT/interop/.venv/bin/python}
: "${EVENTS:=1000000}"
: "${WORK:=${TMPDIR:-/tmp}/flumen-flume-kafka-bench}"
rm -rf "$WORK"; mkdir -p "$WORK"
BPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$BPORT" --override "log.dirs=$WORK/data" >"$WORK/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER $AGENT 2>/dev/null || true' EXIT
AGENT=
for _ in $(seq 100); do grep -q "Broker ready" "$WORK/broker.log" && break; sleep 0.1; done
cat >"$WORK/agent.conf" <<C
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 1000
a1.sources.r1.totalEvents = $EVENTS
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 10000
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:$BPORT
a1.sinks.k1.kafka.topic = seq
a1.sinks.k1.flumeBatchSize = 10000
C
start=$(date +%s.%N)
"$BIN" agent -f "$WORK/agent.conf" -n a1 -Dflume.root.logger=WARN,console >"$WORK/agent.log" 2>&1 &
AGENT=$!
"$PY" - "$BPORT" "$EVENTS" <<'PY'
import sys, time
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}", "group.id": "b"})
want, deadline = int(sys.argv[2]), time.time() + 300
while time.time() < deadline:
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition("seq", 0), timeout=2)
        if hi >= want:
            break
    except Exception:
        pass
    time.sleep(0.05)
PY
end=$(date +%s.%N)
python3 -c "d=$end-$start; print(f'{$EVENTS:,} events in {d:.2f} s: {$EVENTS/d:,.0f} events/s')"
