#!/usr/bin/env bash
# Browser tests: the example servers driven from a real headless Chromium (Debian's `chromium`,
# through puppeteer-core, pinned in package-lock.json; no browser is downloaded).
#
#   bash tests/browser/run.sh                     # every *.test.mjs here
#   bash tests/browser/run.sh chat.test.mjs ...   # some of them
#
# Builds the examples the files name (once), then for each test file starts the example of its
# `// @example <name>` line on a free loopback port (with the variables of its
# `// @env NAME=value ...` line, if any, which the test process gets too), waits until it accepts
# connections, runs the file with node's test runner, stops the server by its PID, and at the end
# prints `N passed, N failed` and exits non-zero if anything failed.
#
# Environment: BROWSER_SKIP_BUILD=1 skips the cargo build; CHROMIUM names the browser binary
# (default: `chromium` on PATH); RUST_LOG (default `warn`) is passed to the servers, whose output
# is shown for the files that failed; SCREENSHOTS=<dir> makes the tests that take screenshots
# write them there (docs/ to refresh the README's pictures).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

chromium="${CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
  echo "browser: no chromium (apt-get install -y chromium, or set CHROMIUM)" >&2
  exit 1
fi

if [ ! -d "$here/node_modules/puppeteer-core" ] || [ ! -d "$here/node_modules/@socket.io/admin-ui" ]; then
  echo "browser: installing npm dependencies" >&2
  npm ci --prefix tests/browser --no-audit --no-fund || exit 1
fi

if [ $# -gt 0 ]; then
  files=()
  for f in "$@"; do
    if [ -f "$f" ]; then files+=("$f"); else files+=("$here/$(basename "$f")"); fi
  done
else
  files=("$here"/*.test.mjs)
fi

if [ "${BROWSER_SKIP_BUILD:-0}" != 1 ]; then
  wanted=()
  for f in "${files[@]}"; do
    e="$(sed -n 's|^// @example \([A-Za-z0-9_]*\).*|\1|p' "$f" 2>/dev/null | head -n1)"
    [ -n "$e" ] && wanted+=(--example "$e")
  done
  if [ ${#wanted[@]} -gt 0 ]; then
    echo "browser: cargo build --release --features tokio ${wanted[*]}" >&2
    cargo build --release --features tokio "${wanted[@]}" || { echo "browser: build failed" >&2; exit 1; }
  fi
fi
examples="${CARGO_TARGET_DIR:-$root/target}/release/examples"

work="$(mktemp -d)"
server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null
  fi
  wait "$server_pid" 2>/dev/null
  server_pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

total_pass=0
total_fail=0
failed_files=()

for file in "${files[@]}"; do
  name="$(basename "$file")"
  example="$(sed -n 's|^// @example \([A-Za-z0-9_]*\).*|\1|p' "$file" | head -n1)"
  if [ -z "$example" ]; then
    echo "browser: $name has no '// @example <name>' line" >&2
    total_fail=$((total_fail + 1)); failed_files+=("$name"); continue
  fi
  bin="$examples/$example"
  log="$work/$name.server.log"
  echo
  echo "=== $name against $example"
  if [ ! -x "$bin" ]; then
    echo "browser: example binary $bin is missing" >&2
    total_fail=$((total_fail + 1)); failed_files+=("$name (no $example)"); continue
  fi

  envline="$(sed -n 's|^// @env \(.*\)$|\1|p' "$file" | head -n1)"
  extra_env=()
  bad_env=""
  for kv in $envline; do
    if [[ "$kv" =~ ^[A-Z_][A-Z0-9_]*=[^[:space:]]*$ ]]; then extra_env+=("$kv"); else bad_env="$kv"; fi
  done
  if [ -n "$bad_env" ]; then
    echo "browser: $name: '// @env' wants NAME=value words, got '$bad_env'" >&2
    total_fail=$((total_fail + 1)); failed_files+=("$name (bad @env)"); continue
  fi
  [ ${#extra_env[@]} -gt 0 ] && echo "    with ${extra_env[*]}"

  port="$(free_port)"
  env "${extra_env[@]}" PORT="$port" RUST_LOG="${RUST_LOG:-warn}" "$bin" >"$log" 2>&1 &
  server_pid=$!
  ready=0
  for _ in $(seq 1 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then ready=1; break; fi
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then
    echo "browser: $example did not accept connections on port $port; its output:" >&2
    cat "$log" >&2
    stop_server
    total_fail=$((total_fail + 1)); failed_files+=("$name ($example did not start)"); continue
  fi

  tap="$work/$name.tap"
  env "${extra_env[@]}" \
    ROOMCAST_URL="http://127.0.0.1:$port" ROOMCAST_PORT="$port" ROOMCAST_SERVER_PID="$server_pid" \
    ROOMCAST_EXAMPLE="$bin" RUST_LOG="${RUST_LOG:-warn}" CHROMIUM="$chromium" \
    timeout -k 5 170 node --test \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$tap" \
      "$file"
  rc=$?
  stop_server

  pass="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
  fail="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
  cancelled="$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -n1)"
  pass="${pass:-0}"; fail=$(( ${fail:-0} + ${cancelled:-0} ))
  if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi  # crashed or timed out as a whole
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  if [ "$rc" != 0 ]; then
    failed_files+=("$name")
    echo "--- $example output (last 40 lines):"
    tail -n 40 "$log"
  fi
done

echo
if [ ${#failed_files[@]} -gt 0 ]; then
  echo "browser: failing files: ${failed_files[*]}"
fi
echo "browser: $total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ] && [ ${#failed_files[@]} = 0 ]
