#!/usr/bin/env bash
# Consumer-group benchmarks (issue 4 §5): rebalance time, OffsetCommit latency, OffsetFetch
# of 1,000 partitions, against `flumen serve` with raw protocol requests.
#   bench/groups.sh            builds the release binary, then prints a Markdown table
# Needs the interop virtualenv (./scripts/test interop creates it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p flumen --locked >&2
PY=${PYTHON:-interop/.venv/bin/python}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB RAM; date $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d" " -f1-3 /proc/loadavg)"
FLUMEN_BIN=$PWD/target/release/flumen "$PY" bench/groups_bench.py
