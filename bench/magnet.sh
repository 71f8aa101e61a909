#!/usr/bin/env bash
# Issue 10: time from start to metadata, to first piece and to complete for a magnet link, our peer against
# libtorrent, same run. Loopback only: our tracker and ONE libtorrent seeder (tests/support/lt_peer.py) serve
# both leechers, so the seeding side is the same for both; a fresh empty download folder per leecher, and the
# order of ours and libtorrent alternates from run to run. Nothing is asserted: figures only.
# Usage: bench/magnet.sh [RUNS] [SIZE_MIB]     (defaults 5 and 64)
# Environment: WORK=DIR (kept afterwards; default a temporary folder, removed), PIECE_EXP=18 (256 KiB pieces:
#              a 64 MiB file then has 256 pieces, a 5 KiB info dictionary), TIMEOUT=120 (s, per leecher),
#              CARGO_TARGET_DIR (the binaries are taken from there)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
size=${2:-64}
piece_exp=${PIECE_EXP:-18}
timeout=${TIMEOUT:-120}
py=/usr/bin/python3   # Debian's libtorrent bindings are only importable by the system interpreter.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
$py -c "import libtorrent" 2>/dev/null || missing+=(python3-libtorrent)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
cargo build --release --bins
bin=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)

if [ -n "${WORK:-}" ]; then
  work=$WORK
  mkdir -p "$work"
  remove_work=0
else
  work=$(mktemp -d /tmp/bt-bench-magnet.XXXXXX)
  remove_work=1
fi
pids=()
leecher=""
cleanup() {
  for pid in $leecher "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$remove_work" = 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# wait_for FILE PATTERN SECONDS: the background process writing FILE got that far, or give up.
wait_for() {
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "no '$2' in $1 after $3 s" >&2; return 1; fi
    sleep 0.05
  done
}

# The tracker picks its own port, which then goes into the torrent: no window for another process to take it.
"$bin/tracker" --open --bind 127.0.0.1:0 > "$work/tracker.out" 2> "$work/tracker.log" &
pids+=($!)
wait_for "$work/tracker.out" "listening on" 10
tracker_addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$work/tracker.out" | head -1)

mkdir -p "$work/seed"
name=magnet-${size}M.bin
data=$work/seed/$name
head -c $((size * 1024 * 1024)) /dev/urandom > "$data"
torrent=$work/$name.torrent
"$bin/mktorrent" -q -f -d -l "$piece_exp" -a "udp://$tracker_addr/announce" -o "$torrent" "$data"
show=$("$bin/mktorrent" --show "$torrent" --json)
field() { echo "$show" | $py -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
magnet=$(field magnet)
info_hash=$(field info_hash)
pieces=$(field pieces)
info_size=$($py bench/magnet_lt.py infosize "$torrent")
echo "torrent: $size MiB, $pieces pieces of $((1 << piece_exp)) B, info dictionary $info_size B" >&2
echo "magnet: $magnet" >&2

seed_port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Long enough for every run; the trap ends it.
$py tests/support/lt_peer.py seed "$torrent" "$work/seed" --port "$seed_port" \
  --timeout $((runs * 2 * (timeout + 30) + 120)) > "$work/seeder.out" 2> "$work/seeder.log" &
pids+=($!)
wait_for "$work/seeder.out" SEEDING 120
# SEEDING is printed before libtorrent's announce with left=0 may have reached the tracker.
timeout 40 $py bench/magnet_lt.py scrape "$tracker_addr" "$info_hash" --timeout 30 >&2

results=$work/results.jsonl
: > "$results"
leech() {
  local tool=$1 run=$2 dir=$work/run$2-$1 before
  rm -rf "$dir" && mkdir -p "$dir"
  before=$(wc -l < "$results")
  # In the background, so that a TERM to this script reaches the trap at once and the trap can end the leecher.
  if [ "$tool" = ours ]; then
    timeout $((timeout + 30)) $py bench/magnet_lt.py ours "$bin/peer" "$magnet" "$dir" --run "$run" \
      --expect "$data" --log "$work/run$run-ours.stderr" --timeout "$timeout" >> "$results" &
  else
    timeout $((timeout + 30)) $py bench/magnet_lt.py lt "$magnet" "$dir" --run "$run" \
      --expect "$data" --timeout "$timeout" >> "$results" 2> "$work/run$run-lt.stderr" &
  fi
  leecher=$!
  wait "$leecher" || true
  leecher=""
  # A helper killed by the outer timeout leaves no record: the table still shows the run, as a timeout.
  if [ "$(wc -l < "$results")" = "$before" ]; then
    [ "$tool" = ours ] || tool=libtorrent
    echo "{\"tool\": \"$tool\", \"run\": $run, \"timed_out\": true}" >> "$results"
  fi
  tail -1 "$results" | cut -c1-400 >&2
  rm -rf "$dir"
}
for run in $(seq 1 "$runs"); do
  if [ $((run % 2)) = 1 ]; then leech ours "$run"; leech lt "$run"; else leech lt "$run"; leech ours "$run"; fi
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
lt_version=$($py -c 'import libtorrent; print(libtorrent.__version__)')
header="magnet: $size MiB file, $pieces pieces of $(((1 << piece_exp) / 1024)) KiB, info dictionary $info_size B; \
loopback, our tracker, one libtorrent $lt_version seeder; $runs runs, order alternating (odd runs: ours first); \
$(nproc) CPUs ($cpu)"
$py bench/magnet_lt.py table "$results" "$header"
