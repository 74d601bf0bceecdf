#!/usr/bin/env bash
# Cluster tests: roomcast and Node socket.io nodes in one cluster over a private redis-server,
# checked with the official socket.io-client (npm, pinned in package-lock.json).
#
#   bash tests/cluster/run.sh                       # every *.test.mjs here
#   bash tests/cluster/run.sh faults.test.mjs ...   # some of them
#
# Does not build Rust: CI builds `cargo build --release --features redis --example cluster`
# first. Environment:
#   ROOMCAST_CLUSTER_BIN  the roomcast node (default target/release/examples/cluster)
#   CLUSTER_KINDS         pairs of node kinds, e.g. "node,node roomcast,node" (default: every
#                         pair of node/roomcast whose binaries exist; `node` always exists)
#   CLUSTER_ADAPTERS      "classic sharded streams" (default) or some of them
#   CLUSTER_TIMEOUT       global bound of the whole run in seconds (default 540)
#   REDIS_SERVER          the redis-server binary (default: redis-server on PATH)
#   RUST_LOG              passed to roomcast nodes (default warn)
# Prints `N passed, N failed`, exits non-zero on failure, and shows the output of the nodes of
# the failing files. Every process it starts (Redis, nodes) is stopped at the end, also on
# failure, timeout or Ctrl-C.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

command -v "${REDIS_SERVER:-redis-server}" >/dev/null || { echo "cluster: redis-server not found (apt-get install redis-server)" >&2; exit 1; }

if [ ! -d "$here/node_modules/socket.io" ] || [ ! -d "$here/node_modules/@socket.io/redis-adapter" ] || [ ! -d "$here/node_modules/@socket.io/redis-streams-adapter" ]; then
  echo "cluster: installing npm dependencies" >&2
  npm ci --prefix "$here" --no-audit --no-fund || exit 1
fi

export ROOMCAST_CLUSTER_BIN="${ROOMCAST_CLUSTER_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/examples/cluster}"
if [ -z "${CLUSTER_KINDS:-}" ] && [ ! -x "$ROOMCAST_CLUSTER_BIN" ]; then
  echo "cluster: $ROOMCAST_CLUSTER_BIN is missing: running node+node only" >&2
fi
if [ -n "${CLUSTER_KINDS:-}" ] && [[ "$CLUSTER_KINDS" == *roomcast* ]] && [ ! -x "$ROOMCAST_CLUSTER_BIN" ]; then
  echo "cluster: CLUSTER_KINDS asks for roomcast but $ROOMCAST_CLUSTER_BIN is missing" >&2
  exit 1
fi

if [ $# -gt 0 ]; then
  files=()
  for f in "$@"; do
    if [ -f "$f" ]; then files+=("$f"); else files+=("$here/$(basename "$f")"); fi
  done
else
  files=("$here/classic.test.mjs" "$here/sharded.test.mjs" "$here/streams_scenario.test.mjs" "$here/emitter.test.mjs" "$here/faults.test.mjs" "$here/streams.test.mjs")
fi

work="$(mktemp -d)"
export CLUSTER_PID_DIR="$work/pids"
mkdir -p "$CLUSTER_PID_DIR"
runner_pid=""

# Kills every process group the harness registered (Redis, nodes) and the test runner.
cleanup() {
  if [ -n "$runner_pid" ]; then kill -TERM -- "-$runner_pid" 2>/dev/null; fi
  for f in "$CLUSTER_PID_DIR"/*; do
    [ -e "$f" ] || continue
    pid="$(basename "$f")"
    kill -CONT -- "-$pid" 2>/dev/null
    kill -TERM -- "-$pid" 2>/dev/null
  done
  sleep 0.5
  for f in "$CLUSTER_PID_DIR"/*; do
    [ -e "$f" ] || continue
    pid="$(basename "$f")"
    kill -KILL -- "-$pid" 2>/dev/null
  done
  if [ -n "$runner_pid" ]; then kill -KILL -- "-$runner_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "cluster: interrupted" >&2; exit 130' INT TERM

deadline=$(( $(date +%s) + ${CLUSTER_TIMEOUT:-540} ))
total_pass=0
total_fail=0
failed_files=()

for file in "${files[@]}"; do
  name="$(basename "$file")"
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 5 ]; then
    echo "cluster: global time bound reached before $name" >&2
    total_fail=$((total_fail + 1)); failed_files+=("$name (not run: time)"); continue
  fi
  echo
  echo "=== $name (kinds: ${CLUSTER_KINDS:-default}, adapters: ${CLUSTER_ADAPTERS:-classic sharded streams})"
  logs="$work/logs/$name"
  mkdir -p "$logs"
  tap="$work/$name.tap"
  # its own process group (setsid), so a timeout can take all of it down
  CLUSTER_LOG_DIR="$logs" setsid timeout -k 5 "$left" node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    "$file" &
  runner_pid=$!
  wait "$runner_pid"
  rc=$?
  runner_pid=""

  pass="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
  fail="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
  cancelled="$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
  pass="${pass:-0}"; fail=$(( ${fail:-0} + ${cancelled:-0} ))
  if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi  # crashed or timed out as a whole
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  if [ "$rc" != 0 ]; then
    failed_files+=("$name")
    [ "$rc" = 124 ] && echo "cluster: $name hit the global time bound" >&2
    for log in "$logs"/*.log; do
      [ -e "$log" ] || continue
      echo "--- $(basename "$log" .log) output (last 30 lines):"
      tail -n 30 "$log"
    done
    # Last, so that a log truncated from the top still shows what failed: each failing test
    # and the first lines of its error (the nodes' output is above).
    echo "--- $name: failing tests"
    awk '/^ *not ok /{print; n=0; grab=1; next}
         grab && /^ *error:/{n=1}
         grab && n>0 && n<=12 {print; n++}
         grab && /^ *\.\.\.$/{grab=0}' "$tap" 2>/dev/null
  fi
done

echo
if [ ${#failed_files[@]} -gt 0 ]; then
  echo "cluster: failing files: ${failed_files[*]}"
fi
echo "cluster: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ ${#failed_files[@]} = 0 ]
