#!/usr/bin/env bash
# HTTP announce load on our tracker: is its memory flat once the swarms are full?
#
# Starts `tracker --open --bind 127.0.0.1:0 --http 127.0.0.1:0 --workers 1` and drives /announce through
# bench/tracker_http_load.rs (raw HTTP/1.1 over keep-alive connections, one thread each, std only, built with
# rustc -O): TORRENTS info-hashes x PORTS peer ports on 127.0.0.1, so the tracker holds at most
# TORRENTS x PORTS peers; random left (a third seeders) and events (started/completed/stopped 10/5/5 %).
# Every reply must be 200 with a body starting `d8:complete`; failures are counted (exit 1 if any).
# Prints one line per second (announces, rate, tracker VmRSS from /proc/PID/status), then announces per second
# and VmRSS at 0, 25, 50, 75 and 100 % of the run, and the tracker's own /stats.json at the end.
#
# Usage: bench/tracker_http_load.sh [ANNOUNCES] [CONNECTIONS]     (defaults 1000000 and 64)
# Env:   TORRENTS (10000)  PORTS (20)  MAX_SECONDS (300: stop then even if ANNOUNCES were not sent)
#        PIN=1: tracker on CPU 0, load on the other CPUs (default: unpinned; the tracker's HTTP runtime has 2 threads)
#        TRACKER (default: ${CARGO_TARGET_DIR:-target}/release/tracker, built first)  WORK (/tmp/bt-bench-tracker-http)
set -euo pipefail
cd "$(dirname "$0")/.."
announces=${1:-1000000}
connections=${2:-64}
torrents=${TORRENTS:-10000}
ports=${PORTS:-20}
max_s=${MAX_SECONDS:-300}
work=${WORK:-/tmp/bt-bench-tracker-http}
mkdir -p "$work"

if [ -z "${TRACKER:-}" ]; then
  cargo build --release --bin tracker
  TRACKER="${CARGO_TARGET_DIR:-target}/release/tracker"
fi
gen="$work/tracker_http_load"
if [ ! -x "$gen" ] || [ bench/tracker_http_load.rs -nt "$gen" ]; then
  rustc -O --edition 2021 -o "$gen" bench/tracker_http_load.rs
fi

pin_t=() pin_l=()
if [ "${PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  pin_t=(taskset -c 0) pin_l=(taskset -c "1-$(($(nproc) - 1))")
fi

tpid=""
cleanup() {
  [ -n "$tpid" ] || return 0
  kill "$tpid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$tpid" 2>/dev/null || true
  wait "$tpid" 2>/dev/null || true
  tpid=""
}
trap cleanup EXIT INT TERM

log="$work/tracker.log"
"${pin_t[@]}" "$TRACKER" --open --bind 127.0.0.1:0 --http 127.0.0.1:0 --workers 1 > "$work/tracker.out" 2> "$log" &
tpid=$!
http=""
for _ in $(seq 100); do
  http=$(sed -n 's/^http on //p' "$work/tracker.out" | head -1)
  [ -n "$http" ] && break
  kill -0 "$tpid" 2>/dev/null || { echo "tracker exited:" >&2; cat "$work/tracker.out" "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$http" ] || { echo "tracker printed no 'http on ADDR'" >&2; exit 1; }
echo "# tracker $("$TRACKER" --version 2>/dev/null || echo "$TRACKER"), pid $tpid, http on $http, $(nproc) CPUs${pin_t[*]:+, pinned: tracker CPU 0, load CPUs 1-$(($(nproc) - 1))}"

rc=0
"${pin_l[@]}" "$gen" "$http" "$tpid" "$announces" "$connections" "$torrents" "$ports" "$max_s" || rc=$?
stats=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf "GET /stats.json HTTP/1.0\r\nHost: x\r\n\r\n" >&3 && cat <&3' _ "$http" 2>/dev/null | sed '1,/^\r$/d' || true)
echo "# tracker /stats.json after the run: $stats"
kill -0 "$tpid" 2>/dev/null || { echo "# the tracker died during the run (log: $log)"; rc=1; }
exit "$rc"
