#!/usr/bin/env bash
# Interop tests: the official socket.io-client (npm, pinned in package-lock.json) against the
# example servers.
#
#   bash tests/interop/run.sh                       # every *.test.mjs here
#   bash tests/interop/run.sh chat.test.mjs ...     # some of them
#
# Builds the examples once, then for each test file starts the example named by its
# `// @example <name>` line on a free port (with the variables of its `// @env NAME=value ...`
# line, if any, which the test process gets too), waits until it accepts connections, runs the file
# with node's test runner, stops the server, and at the end prints `N passed, N failed` and
# exits non-zero if anything failed.
#
# Environment: INTEROP_SKIP_BUILD=1 skips the cargo build; RUST_LOG (default `warn`) is passed to
# the servers, whose output is shown for the files that failed; FANOUT_CLIENTS and
# FANOUT_BROADCASTS size the fan-out test (default 1000 and 20).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

if [ ! -d "$here/node_modules/socket.io-client" ] || [ ! -d "$here/node_modules/socket.io-msgpack-parser" ]; then
  echo "interop: installing npm dependencies" >&2
  npm ci --prefix tests/interop --no-audit --no-fund || exit 1
fi

if [ "${INTEROP_SKIP_BUILD:-0}" != 1 ]; then
  echo "interop: cargo build --release --features tokio --examples" >&2
  cargo build --release --features tokio --examples || { echo "interop: build failed" >&2; exit 1; }
fi
examples="${CARGO_TARGET_DIR:-$root/target}/release/examples"

if [ $# -gt 0 ]; then
  files=()
  for f in "$@"; do
    if [ -f "$f" ]; then files+=("$f"); else files+=("$here/$(basename "$f")"); fi
  done
else
  files=("$here"/*.test.mjs)
fi

source "$root/tests/support/examples.sh"
run_example_files interop "$examples" "${files[@]}"
