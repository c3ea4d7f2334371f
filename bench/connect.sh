#!/usr/bin/env bash
# Connect throughput benchmark (issue 8): FileStreamSource → flumen serve → FileStreamSink
# for 100-byte access-log-like lines, StringConverter (raw lines) and JsonConverter (the
# seed's envelope). Measures from the worker's start until the sink file holds every line.
#
#   bench/connect.sh                      # 1,000,000 lines, both converters
#   LINES=3000000 bench/connect.sh string # one converter, more lines
#   CONNECT_WRAP="perf record -o /tmp/connect.perf --" bench/connect.sh string  # profile the worker
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${FLUMEN_BIN:-$ROOT/target/release/flumen}
: "${LINES:=1000000}"
: "${WORK:=${TMPDIR:-/tmp}/flumen-connect-bench}"
convs=("$@")
[ ${#convs[@]} -eq 0 ] && convs=(string json)
rm -rf "$WORK"; mkdir -p "$WORK"
# CPU seconds (user+system) a live process has used so far.
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# 100-byte lines (99 characters + newline), shaped like the seed's access log.
python3 - "$WORK/access.log" "$LINES" <<'PY'
import sys
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    for i in range(n):
        head = f'10.0.{i % 256}.{i % 199} - - [29/Nov/2015:03:50:05 +0000] "GET /p/{i} HTTP/1.1" 200 '
        f.write(head + "x" * (99 - len(head)) + "\n")
PY
BYTES=$(stat -c %s "$WORK/access.log")
BPORT=$(free_port)
"$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$BPORT" --override "log.dirs=$WORK/data" >"$WORK/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "Broker ready" "$WORK/broker.log" && break; sleep 0.1; done
for conv in "${convs[@]}"; do
  case $conv in
    string) class=org.apache.kafka.connect.storage.StringConverter ;;
    json) class=org.apache.kafka.connect.json.JsonConverter ;;
  esac
  d="$WORK/$conv"; mkdir -p "$d"
  cat >"$d/worker.properties" <<P
bootstrap.servers=127.0.0.1:$BPORT
key.converter=$class
value.converter=$class
offset.storage.file.filename=$d/connect.offsets
offset.flush.interval.ms=10000
listeners=http://127.0.0.1:$(free_port)
P
  printf 'name=src\nconnector.class=FileStreamSource\nfile=%s\ntopic=bench-%s\n' "$WORK/access.log" "$conv" >"$d/source.properties"
  printf 'name=sink\nconnector.class=FileStreamSink\nfile=%s\ntopics=bench-%s\n' "$d/out.txt" "$conv" >"$d/sink.properties"
  bcpu0=$(cpu $BROKER)
  start=$(date +%s.%N)
  RUST_LOG=warn ${CONNECT_WRAP:-} "$BIN" connect-standalone "$d/worker.properties" "$d/source.properties" "$d/sink.properties" >"$d/connect.log" 2>&1 &
  CONNECT=$!
  deadline=$((SECONDS + 300))
  while [ "$(stat -c %s "$d/out.txt" 2>/dev/null || echo 0)" -lt "$BYTES" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  end=$(date +%s.%N)
  ccpu=$(cpu $CONNECT); bcpu=$(python3 -c "print(f'{$(cpu $BROKER)-$bcpu0:.2f}')")
  kill $CONNECT; wait $CONNECT || true
  got=$(wc -l <"$d/out.txt")
  python3 -c "
d=$end-$start; b=$BYTES
print(f'$conv: {$got} of {$LINES} lines, {b/d/1e6:.1f} MB/s, {$got/d:,.0f} lines/s ({d:.2f} s); CPU s: connect $ccpu, broker $bcpu')"
done
