#!/usr/bin/env bash
# Instruction counts of the hot paths under callgrind, which a noisy machine cannot hide, checked
# against benches/instructions.budget: a count over its budget fails (a regression visible in
# CI). Counts are user-space instructions: what the kernel does in a syscall is not counted.
#
#   codec.*   one operation of examples/codec_count.rs (each step runs 10,000 times)
#   fanout.*  one broadcast of examples/fanout_count.rs (F1-F3 of the DESIGN §5 workload)
#   write.delivery  the tokio adapter's write path per WebSocket delivery at a low rate: the
#             `fanout` server under callgrind, driven by `fanout_load` (1,000 clients, one
#             broadcast per batch), counting the driver's flush (the core's routing, the shared
#             frame, every recipient's queue and send) and the shares other workers write.
#             Two runs differ only in how many events are published; their difference, divided
#             by the difference in deliveries, leaves out connecting and shutting down.
#
# Usage: bash benches/instructions.sh [--no-check]   (needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
check=1
[[ "${1:-}" == "--no-check" ]] && check=0

cargo build --release --example codec_count --example fanout_count
cargo build --release --features tokio --example fanout --example fanout_load
bin=target/release/examples
work=$(mktemp -d /tmp/roomcast-instructions.XXXXXX)
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Inclusive instructions of the functions matching $2 in callgrind output $1, summed.
inclusive() {
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
    awk -v pat="$2" '$0 ~ pat { gsub(",", "", $1); s += $1 } END { printf "%d", s }'
}

declare -A got
valgrind --tool=callgrind --callgrind-out-file="$work/codec.out" --collect-atstart=no \
  --toggle-collect='codec_count::step_*' "$bin/codec_count" >/dev/null 2>"$work/codec.log"
for step in decode_typical decode_binary encode_typical encode_binary ws_frame ws_decode; do
  got[codec.$step]=$(($(inclusive "$work/codec.out" "codec_count::step_${step} ") / 10000))
done

valgrind --tool=callgrind --callgrind-out-file="$work/fanout.out" --collect-atstart=no \
  --toggle-collect='fanout_count::step_f1*' --toggle-collect='fanout_count::step_f2*' \
  --toggle-collect='fanout_count::step_f3*' "$bin/fanout_count" >/dev/null 2>"$work/fanout.log"
for step in f1 f2 f3; do
  got[fanout.$step]=$(($(inclusive "$work/fanout.out" "fanout_count::step_${step} ") / 10))
done

# One run of the write path: $1 seconds at 10 events/s; prints "instructions deliveries".
write_run() {
  local port=$((20000 + RANDOM % 20000))
  PORT=$port valgrind --tool=callgrind --callgrind-out-file="$work/write$1.out" \
    "$bin/fanout" >"$work/write$1.log" 2>&1 &
  server=$!
  local report=""
  for _ in $(seq 60); do
    if report=$("$bin/fanout_load" --addr "127.0.0.1:$port" --clients 1000 --rate 10 \
      --duration "$1" --settle 1 2>>"$work/load$1.log" | tail -n 1) && [[ -n "$report" ]]; then
      break
    fi
    report=""
    kill -0 "$server" 2>/dev/null || {
      echo "write path: the server exited (port $port taken?)" >&2
      cat "$work/write$1.log" >&2
      exit 1
    }
    sleep 1 # the server under callgrind takes a while to listen
  done
  kill -TERM "$server"
  wait "$server" || true
  server=""
  [[ -n "$report" ]] || { echo "write path: the load generator never ran" >&2; exit 1; }
  local deliveries lost dup
  deliveries=$(sed -E 's/.*"deliveries":([0-9]+).*/\1/' <<<"$report")
  lost=$(sed -E 's/.*"lost":([0-9]+).*/\1/' <<<"$report")
  dup=$(sed -E 's/.*"duplicated":([0-9]+).*/\1/' <<<"$report")
  if [[ "$lost" != 0 || "$dup" != 0 ]]; then
    echo "write path: $lost lost, $dup duplicated" >&2
    exit 1
  fi
  local n
  n=$(inclusive "$work/write$1.out" 'driver::Ctx<C>::(flush|write_queued::[{][{]closure[}][}]) ')
  echo "$n $deliveries"
}
a=$(write_run 3)
b=$(write_run 9)
read -r a_instr a_deliv <<<"$a"
read -r b_instr b_deliv <<<"$b"
got[write.delivery]=$(((b_instr - a_instr) / (b_deliv - a_deliv)))

declare -A budget
while read -r name limit _; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  budget[$name]=$limit
done <benches/instructions.budget
status=0
printf '%-22s %12s %12s\n' count measured budget
for name in $(printf '%s\n' "${!got[@]}" "${!budget[@]}" | sort -u); do
  m=${got[$name]:-missing}
  b=${budget[$name]:-none}
  flag=""
  if [[ "$m" == missing || "$b" == none ]] || ((m > b)); then
    flag="  OVER BUDGET"
    status=1
  fi
  printf '%-22s %12s %12s%s\n' "$name" "$m" "$b" "$flag"
done
if ((check && status)); then
  echo "an instruction count is over its budget, or has none (benches/instructions.budget)" >&2
  exit 1
fi
