#!/usr/bin/env bash
# HDFS sink throughput (issue 7). Scenarios:
#   seq       seq -> memory -> hdfs (local file system, DataStream): bytes of output / wall time
#   spooldir  spooldir (104-byte access-log lines) -> memory -> hdfs (local file system, DataStream)
#   hdfs      the same spooldir run against a real HDFS (HDFS_URL=hdfs://host:port), beside the
#             time `hdfs-local.sh fs -put` takes for the same file (HDFS_TOOL=path to hdfs-local.sh)
#   s3        seq -> memory -> hdfs with hdfs.path = s3://bench/… against a moto_server started
#             here (MOTO_SERVER, default interop/.venv/bin/moto_server)
# SEQ_BODY_SIZE=N pads seq's bodies to N bytes (seq's bodySize; default 0 = the bare counter).
# Prints the rate, the agent's CPU seconds (utime+stime) and its peak RSS.
#
#   cargo build --release -p flumen
#   bench/hdfs.sh                              # seq spooldir
#   SEQ_EVENTS=50000000 bench/hdfs.sh seq
#   SEQ_EVENTS=10000000 SEQ_BODY_SIZE=100 bench/hdfs.sh seq
#   SEQ_EVENTS=2000000 SEQ_BODY_SIZE=100 bench/hdfs.sh s3
#   HDFS_URL=hdfs://127.0.0.1:18020 HDFS_TOOL=../shared/tools/hdfs-local.sh bench/hdfs.sh hdfs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${AGENT_CMD:-}" ]; then
  AGENT_CMD="$ROOT/target/release/flumen agent -f {conf} -n {name} -Dflume.root.logger=WARN,console"
fi
: "${LINES:=2000000}"
: "${SEQ_EVENTS:=20000000}"
: "${WORK:=${TMPDIR:-/tmp}/flumen-hdfs-bench}"
export AGENT_CMD LINES SEQ_EVENTS WORK
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(seq spooldir)
exec python3 "$ROOT/bench/hdfs_bench.py" "${scenarios[@]}"
