#!/usr/bin/env bash
# Group-commit benchmark: kcat produces 200,000 × 1 KiB with acks=all to a broker started
# with log.flush.interval.messages=1 (every append asks for an fsync). Prints records/s, then
# repeats the run under `strace -f -c` to count fdatasync/fsync calls.
#   bench/broker_flush.sh      (needs target/release/flumen, kcat, strace)
# Temporary data goes to $BENCH_TMP (default /var/tmp) and is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FLUMEN_BIN:-$PWD/target/release/flumen}
TMP=$(mktemp -d "${BENCH_TMP:-/var/tmp}/flumen-flush.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
python3 -c 'import sys; l=b"x"*1024+b"\n"; f=open(sys.argv[1],"wb"); [f.write(l*10000) for _ in range(20)]' "$TMP/in"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() { # $1: wrapper command prefix (may be empty)
  local p d; p=$(port); d=$(mktemp -d "$TMP/data.XXXX")
  $1 "$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$p" --override "log.dirs=$d" \
    --override log.flush.interval.messages=1 >"$d.out" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do kcat -b 127.0.0.1:$p -L >/dev/null 2>&1 && break; sleep 0.1; done
  local t0 t1; t0=$(date +%s.%N)
  kcat -b 127.0.0.1:$p -P -t flush -p 0 -l "$TMP/in" -X acks=all -X linger.ms=5 \
    -X batch.size=1000000 -X batch.num.messages=100000 \
    -X queue.buffering.max.messages=2000000 -X queue.buffering.max.kbytes=2000000
  t1=$(date +%s.%N)
  local target=$pid
  if [ -n "$1" ]; then target=$(pgrep -P "$pid" | head -1); fi
  kill -INT "$target"; wait $pid || true
  python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'{sys.argv[3]}: {200000/t:,.0f} rec/s ({t:.2f} s)')" "$t0" "$t1" "${1:-plain}"
  if [ -n "$1" ]; then grep -E 'fdatasync|fsync|calls' "$d.out" || true; fi
}
run ""
run "strace -f -c -e trace=fdatasync,fsync"
