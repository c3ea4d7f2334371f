#!/usr/bin/env bash
# File channel benchmark (issue 9).
#  1. In-process (crates/flow/benches/file_channel.rs): producers commit batches of 100,
#     1000 or 10000 events of 100 bytes (BATCHES=100,1000,10000) while a taker drains,
#     memory channel vs file channel, with fsyncs counted; the disk's fsync cost; replay
#     with REPLAY_MB in the channel, measured REPLAY_REPEAT times (default 3): time to ready
#     (takes accepted), to the first take and to all events queued, with CPU seconds and the
#     load average.
#  2. Through the agent (bench/agent.sh seq scenario): seq → memory → null and
#     seq → file → null in the same run (file channel with default settings apart from its
#     directories, which go under $WORK/fc and are wiped before each run). seq keeps
#     SEQ_IN_FLIGHT batches committing at once (default here 3, for both channels; seq's
#     own default is 1).
#
#   bench/file_channel.sh                 # both
#   EVENTS=4000000 REPLAY_MB=1024 bench/file_channel.sh inprocess
#   BATCHES= EVENTS=0 REPLAY_MB=1024 BENCH_DIR=/tmp bench/file_channel.sh inprocess   # replay only
#   SEQ_EVENTS=5000000 bench/file_channel.sh agent
#   SEQ_IN_FLIGHT=1 bench/file_channel.sh agent     # one commit at a time (seq's default)
set -euo pipefail
cd "$(dirname "$0")/.."
what=("$@")
[ ${#what[@]} -eq 0 ] && what=(inprocess agent)
: "${WORK:=${TMPDIR:-/tmp}/flumen-agent-bench}"
export WORK
for w in "${what[@]}"; do
  case "$w" in
    inprocess)
      BENCH_DIR="${BENCH_DIR:-$WORK}" cargo bench -q -p flumen-flow --bench file_channel ;;
    agent)
      export SEQ_IN_FLIGHT="${SEQ_IN_FLIGHT:-3}"
      cargo build -q --release -p flumen
      echo "== memory channel"
      bench/agent.sh seq
      echo "== file channel"
      rm -rf "$WORK/fc"
      CHANNEL_TYPE=file bench/agent.sh seq
      rm -rf "$WORK/fc" ;;
    *) echo "unknown: $w (inprocess | agent)" >&2; exit 2 ;;
  esac
done
