#!/usr/bin/env bash
# Agent throughput benchmark (issue 6): netcat → memory → file_roll, spooldir → memory →
# file_roll, seq → memory → null. Prints MiB/s (or events/s), the agent's CPU seconds
# (utime+stime from /proc/<pid>/stat) and its peak RSS (VmHWM), plus idle RSS.
#
#   bench/agent.sh                          # flumen (target/release/flumen), 2,000,000 lines
#   LINES=10000000 bench/agent.sh netcat    # one scenario, more lines
#   AGENT_CMD='flume-ng agent -c conf -f {conf} -n a1' bench/agent.sh   # another agent
#
# AGENT_CMD is any command line; {conf} is replaced by the generated Flume configuration
# file and {name} by the agent name (a1). The same Flume configuration files are used for
# every agent, so the comparison is side by side. Scenarios: netcat spooldir seq (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${AGENT_CMD:-}" ]; then
  AGENT_CMD="$ROOT/target/release/flumen agent -f {conf} -n {name} -Dflume.root.logger=WARN,console"
fi
: "${LINES:=2000000}"
: "${SEQ_EVENTS:=20000000}"
: "${WORK:=${TMPDIR:-/tmp}/flumen-agent-bench}"
export AGENT_CMD LINES SEQ_EVENTS WORK
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(netcat spooldir seq)
exec python3 "$ROOT/bench/agent_bench.py" "${scenarios[@]}"
