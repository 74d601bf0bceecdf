# The per-file loop the example-driven JS suites share (tests/interop, tests/browser): for each
# test file, start the example its `// @example <name>` line names on a free loopback port, with
# the settings of its `// @env NAME=value ...` line (which the test process gets too), wait until
# it accepts connections, run the file with node's test runner, stop the server by its PID; at the
# end print `N passed, N failed` and return non-zero if anything failed.
#
#   source tests/support/examples.sh
#   TEST_ENV=(CHROMIUM=/usr/bin/chromium)   # optional: more settings for every test process
#   run_example_files <label> <examples dir> <file>...
#
# RUST_LOG (default `warn`) is passed to the servers, whose output is shown for the files that
# failed.

run_example_files() {
  local label="$1" examples="$2"
  shift 2
  local files=("$@")
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
      echo "$label: $name has no '// @example <name>' line" >&2
      total_fail=$((total_fail + 1)); failed_files+=("$name"); continue
    fi
    bin="$examples/$example"
    log="$work/$name.server.log"
    echo
    echo "=== $name against $example"
    if [ ! -x "$bin" ]; then
      echo "$label: example binary $bin is missing" >&2
      total_fail=$((total_fail + 1)); failed_files+=("$name (no $example)"); continue
    fi

    # `// @env NAME=value ...`: settings for this file's server (and its test process).
    envline="$(sed -n 's|^// @env \(.*\)$|\1|p' "$file" | head -n1)"
    extra_env=()
    bad_env=""
    for kv in $envline; do
      if [[ "$kv" =~ ^[A-Z_][A-Z0-9_]*=[^[:space:]]*$ ]]; then extra_env+=("$kv"); else bad_env="$kv"; fi
    done
    if [ -n "$bad_env" ]; then
      echo "$label: $name: '// @env' wants NAME=value words, got '$bad_env'" >&2
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
      echo "$label: $example did not accept connections on port $port; its output:" >&2
      cat "$log" >&2
      stop_server
      total_fail=$((total_fail + 1)); failed_files+=("$name ($example did not start)"); continue
    fi

    tap="$work/$name.tap"
    env "${extra_env[@]}" \
      ROOMCAST_URL="http://127.0.0.1:$port" ROOMCAST_PORT="$port" ROOMCAST_SERVER_PID="$server_pid" \
      ROOMCAST_EXAMPLE="$bin" RUST_LOG="${RUST_LOG:-warn}" ${TEST_ENV[@]+"${TEST_ENV[@]}"} \
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
    echo "$label: failing files: ${failed_files[*]}"
  fi
  echo "$label: $total_pass passed, $total_fail failed"
  [ "$total_fail" = 0 ] && [ ${#failed_files[@]} = 0 ]
}
