#!/usr/bin/env bash
# Avro RPC throughput benchmark (issue 10): a sender agent (seq → search_replace interceptor
# padding each body to 100 bytes → memory → avro sink, batch-size 1000) → a collector agent
# (avro source → memory → null). Prints the events/s seen at the collector's channel, each
# agent's CPU seconds and the load average.
#
#   bench/avro.sh                        # 10,000,000 events, plain
#   EVENTS=2000000 bench/avro.sh         # fewer events
#   AVRO_OPTS=deflate bench/avro.sh      # compression-type = deflate on both ends
#   AVRO_OPTS=tls bench/avro.sh          # ssl = true (self-signed certificate via openssl)
#   AVRO_OPTS="deflate tls" bench/avro.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${FLUMEN:=$ROOT/target/release/flumen}"
: "${EVENTS:=10000000}"
: "${AVRO_OPTS:=}"
: "${WORK:=${TMPDIR:-/tmp}/flumen-avro-bench}"
export FLUMEN EVENTS AVRO_OPTS WORK
exec python3 "$ROOT/bench/avro_bench.py"
