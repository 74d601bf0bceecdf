#!/usr/bin/env bash
# Raw wire-protocol conformance tests against the example servers.
#
#   bash tests/conformance/run.sh                 # everything
#   bash tests/conformance/run.sh engine.test.mjs # some files (names inside tests/conformance)
#
# Installs the npm dependencies if missing, builds the examples once, starts protocol_server
# and engine_echo on free ports, runs `node --test`, stops the servers. Exits non-zero on a
# failure. Set CONFORMANCE_NO_BUILD=1 to skip the cargo build; server logs go to
# $CONFORMANCE_LOG_DIR (default: a temporary directory, printed on failure).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

if [ ! -d "$here/node_modules/ws" ]; then
  npm ci --prefix "$here" --no-audit --no-fund
fi

if [ -z "${CONFORMANCE_NO_BUILD:-}" ]; then
  cargo build --release --features tokio --example protocol_server --example engine_echo
fi
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples"
for name in protocol_server engine_echo; do
  [ -x "$bin/$name" ] || { echo "missing $bin/$name" >&2; exit 1; }
done

logs="${CONFORMANCE_LOG_DIR:-$(mktemp -d)}"
mkdir -p "$logs"

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

start() { # name port
  RUST_LOG="${RUST_LOG:-warn}" PORT="$2" "$bin/$1" >"$logs/$1.log" 2>&1 &
  pids+=("$!")
  started_pid=$!
}

wait_listening() { # name port pid
  for _ in $(seq 1 100); do
    if ! kill -0 "$3" 2>/dev/null; then
      echo "$1 exited at start; its log:" >&2
      cat "$logs/$1.log" >&2
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$1 is not listening on port $2 after 10 s" >&2
  exit 1
}

SIO_PORT="$(free_port)"
start protocol_server "$SIO_PORT"
SIO_PID="$started_pid"
EIO_PORT="$(free_port)"
while [ "$EIO_PORT" = "$SIO_PORT" ]; do EIO_PORT="$(free_port)"; done
start engine_echo "$EIO_PORT"
EIO_PID="$started_pid"
wait_listening protocol_server "$SIO_PORT" "$SIO_PID"
wait_listening engine_echo "$EIO_PORT" "$EIO_PID"
export SIO_PORT SIO_PID EIO_PORT EIO_PID
echo "protocol_server: 127.0.0.1:$SIO_PORT (pid $SIO_PID), engine_echo: 127.0.0.1:$EIO_PORT (pid $EIO_PID), logs in $logs"

files=()
if [ "$#" -gt 0 ]; then
  for f in "$@"; do files+=("$here/$(basename "$f")"); done
else
  files=("$here"/*.test.mjs)
fi

status=0
node --test --test-concurrency=1 --test-timeout=60000 "${files[@]}" || status=$?

for name in protocol_server engine_echo; do
  pid="$SIO_PID"; [ "$name" = engine_echo ] && pid="$EIO_PID"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$name (pid $pid) died during the tests" >&2
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  for name in protocol_server engine_echo; do
    echo "---- last lines of $logs/$name.log" >&2
    tail -n 30 "$logs/$name.log" >&2 || true
  done
fi
exit "$status"
