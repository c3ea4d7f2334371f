#!/usr/bin/env bash
# Storage-engine benchmarks (issue 2 §4): measures the disk's own ceiling with dd on the same
# file system, runs the criterion benches of crates/log, and prints each figure beside its
# target with the ratio to dd. Bench data lives in a temp dir that is removed on exit.
#
#   bench/log.sh                 # data under $FLUMEN_BENCH_DIR, else $TMPDIR, else /tmp
#   SKIP_CARGO=1 bench/log.sh    # only re-print the summary of the last criterion run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${FLUMEN_BENCH_DIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$ROOT/flumen-log-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# dd <flags...> -> bytes per second (bs=1M unless the flags give another bs): the median of 5 runs (the machine is shared, so single
# runs swing by 10x; the criterion figures below are medians too).
dd_rate() {
    local line
    for _ in 1 2 3 4 5; do
        line=$(dd if=/dev/zero of="$WORK/dd.out" bs=1M "$@" 2>&1 | tail -1)
        # (a later bs= overrides the first one)
        rm -f "$WORK/dd.out"
        echo "$line" | awk '{ printf "%.0f\n", $1 / $(NF-3) }'
    done | sort -n | sed -n 3p
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, fs: $(df -T "$ROOT" | awk 'NR==2 {print $2, $1}')"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
sync
DD_NOSYNC=$(dd_rate count=1024)
DD_FDATASYNC=$(dd_rate count=1024 conv=fdatasync)
DD_DSYNC=$(dd_rate count=128 oflag=dsync)
DD_16K=$(dd_rate bs=16K count=65536)
echo "dd bs=16K count=65536 (page cache), median of 5: $((DD_16K / 1000000)) MB/s"
echo "dd bs=1M count=1024 (page cache), median of 5: $((DD_NOSYNC / 1000000)) MB/s"
echo "dd bs=1M count=1024 conv=fdatasync, median of 5: $((DD_FDATASYNC / 1000000)) MB/s"
echo "dd bs=1M count=128 oflag=dsync, median of 5:   $((DD_DSYNC / 1000000)) MB/s"

if [ -z "${SKIP_CARGO:-}" ]; then
    FLUMEN_BENCH_DIR="$WORK" cargo bench -p flumen-log --bench log
fi

# The disk of a shared VM changes speed from minute to minute: measure dd again after the
# benches and compare against the mean of both measurements.
A_NOSYNC=$(dd_rate count=1024)
A_FDATASYNC=$(dd_rate count=1024 conv=fdatasync)
A_DSYNC=$(dd_rate count=128 oflag=dsync)
echo "dd again after the benches: page cache $((A_NOSYNC / 1000000)) MB/s, conv=fdatasync $((A_FDATASYNC / 1000000)) MB/s, oflag=dsync $((A_DSYNC / 1000000)) MB/s"
DD_NOSYNC=$(( (DD_NOSYNC + A_NOSYNC) / 2 ))
DD_FDATASYNC=$(( (DD_FDATASYNC + A_FDATASYNC) / 2 ))
DD_DSYNC=$(( (DD_DSYNC + A_DSYNC) / 2 ))
echo "dd reference (mean of before and after): page cache $((DD_NOSYNC / 1000000)) MB/s, conv=fdatasync $((DD_FDATASYNC / 1000000)) MB/s, oflag=dsync $((DD_DSYNC / 1000000)) MB/s"

DD_NOSYNC=$DD_NOSYNC DD_FDATASYNC=$DD_FDATASYNC DD_DSYNC=$DD_DSYNC DD_16K=$DD_16K python3 - <<'PY'
import json, os
crit = "target/criterion"
def est(path):
    d = os.path.join(crit, path, "new")
    ns = json.load(open(os.path.join(d, "estimates.json")))["median"]["point_estimate"]
    tp = json.load(open(os.path.join(d, "benchmark.json"))).get("throughput") or {}
    return ns, tp.get("Bytes")
def rate(path):
    ns, b = est(path)
    return b / ns * 1e9
nosync = float(os.environ["DD_NOSYNC"]); fdsync = float(os.environ["DD_FDATASYNC"]); dsync = float(os.environ["DD_DSYNC"])
rows = []
def add(name, value, unit, target, ok, extra=""):
    rows.append((name, value, unit, target, "met" if ok else "NOT met", extra))
r = rate("append/page_cache_1MiB")
add("append 1 MiB batches (page cache)", r / 1e6, "MB/s", ">= 80% of dd", r >= 0.8 * nosync, f"{r / nosync:.0%} of dd")
r = rate("append/page_cache_16KiB")
dd16 = float(os.environ["DD_16K"])
add("append 16 KiB batches (page cache)", r / 1e6, "MB/s", ">= 50% of dd", r >= 0.5 * nosync, f"{r / nosync:.0%} of dd bs=1M, {r / dd16:.0%} of dd bs=16K")
r = rate("append/fsync_each_1MiB")
add("append + fsync per 1 MiB batch", r / 1e6, "MB/s", ">= 80% of dd dsync", r >= 0.8 * dsync,
    f"{r / dsync:.0%} of dd oflag=dsync, {r / fdsync:.0%} of dd conv=fdatasync")
r = rate("read/sequential_1GiB_warm")
add("sequential read 1 GiB (warm)", r / 1e9, "GB/s", ">= 2 GB/s", r >= 2e9)
r = rate("recovery/scan_1GiB_unclean")
add("recovery scan after unclean stop", r / 1e9, "GB/s", ">= 1 GB/s", r >= 1e9)
ns, _ = est("lookup/offset_in_full_1GiB_segment")
add("offset lookup, full 1 GiB segment", ns / 1e3, "us", "<= 2 us", ns <= 2000)
base, _ = est("lookup/pread_61_bytes_baseline")
add("(floor: one 61-byte pread, same file)", base / 1e3, "us", "-", True)
ns, _ = est("lookup/timestamp_in_full_1GiB_segment")
add("timestamp lookup, full 1 GiB segment", ns / 1e3, "us", "<= 2 us", ns <= 2000)
print()
print("| benchmark | measured (median) | target | result | ratio |")
print("|---|---|---|---|---|")
for name, v, unit, target, res, extra in rows:
    print(f"| {name} | {v:.2f} {unit} | {target} | {res} | {extra} |")
PY
