#!/usr/bin/env bash
# Multi-tier RPC benchmark (issue 10): a sender agent (seq, 100-byte bodies) → thrift or avro
# sink (batch-size 1000) → collector agent (thrift/avro source → memory → null). Prints
# events/s (time from the first to the last event accepted by the collector's source, read
# from its monitoring JSON), both agents' CPU seconds and the load average.
#
#   bench/rpc.sh                  # thrift (compact), 2,000,000 events
#   EVENTS=5000000 bench/rpc.sh thrift avro
#   PROTOCOL=binary bench/rpc.sh thrift
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FLUMEN:=$PWD/target/release/flumen}"
: "${EVENTS:=2000000}"
: "${PROTOCOL:=compact}"
: "${WORK:=${TMPDIR:-/tmp}/flumen-rpc-bench}"
export FLUMEN EVENTS PROTOCOL WORK
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(thrift)
exec python3 "$PWD/bench/rpc_bench.py" "${scenarios[@]}"
