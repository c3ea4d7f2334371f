#!/usr/bin/env bash
# Broker benchmarks (issue 3 §5): kcat and confluent-kafka against `flumen serve`.
#   bench/broker.sh            builds the release binary, then prints a Markdown table
# Needs kcat and the interop virtualenv (./scripts/test interop creates it).
# Temporary data goes to $BENCH_TMP (default /var/tmp) and is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p flumen --locked >&2
PY=${PYTHON:-interop/.venv/bin/python}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM; kcat $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | head -1); date $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d" " -f1-3 /proc/loadavg)"
FLUMEN_BIN=$PWD/target/release/flumen "$PY" bench/broker_bench.py
