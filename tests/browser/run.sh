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

TEST_ENV=(CHROMIUM="$chromium")
source "$root/tests/support/examples.sh"
run_example_files browser "$examples" "${files[@]}"
