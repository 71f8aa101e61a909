#!/usr/bin/env bash
# Issue 11: time from start to the first peer found through the DHT, for a bare magnet link
# (magnet:?xt=urn:btih:HASH, no tracker), our peer against libtorrent. Loopback only: a small DHT of our nodes
# (crates/dht/examples/loopback_dht.rs, 20 nodes on 127.0.0.1 by default) is the only bootstrap anyone gets,
# and one libtorrent seeder (tests/support/lt_peer.py) announces itself in it. Every leecher gets a fresh DHT and
# a fresh seeder (so no earlier leecher's announce is in the DHT), waits until the seeder's announce is stored,
# then starts; our peer and libtorrent alternate from run to run. Then the memory of one of our nodes with a full
# routing table (crates/dht/examples/table_memory.rs). Nothing is asserted: figures only.
# Usage: bench/dht.sh [RUNS]     (default 5)
# Environment: NODES=20 (DHT nodes), SIZE_KIB=1024 (the seeded file), TIMEOUT=60 (s, per leecher),
#              WORK=DIR (kept afterwards; default a temporary folder, removed), CARGO_TARGET_DIR (binaries from there)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
nodes=${NODES:-20}
size_kib=${SIZE_KIB:-1024}
timeout=${TIMEOUT:-60}
py=/usr/bin/python3   # Debian's libtorrent bindings are only importable by the system interpreter.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
$py -c "import libtorrent" 2>/dev/null || {
  as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends python3-libtorrent
}
cargo build --release --bins
cargo build --release -p dht --example loopback_dht --example table_memory
target=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)
bin=$target
examples=$target/examples

if [ -n "${WORK:-}" ]; then
  work=$WORK
  mkdir -p "$work"
  remove_work=0
else
  work=$(mktemp -d /tmp/bt-bench-dht.XXXXXX)
  remove_work=1
fi
pids=()
leecher=""
stop_all() {
  for pid in $leecher "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
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

mkdir -p "$work/seed"
name=dht-${size_kib}K.bin
data=$work/seed/$name
head -c $((size_kib * 1024)) /dev/urandom > "$data"
torrent=$work/$name.torrent
# The announce URL is a closed loopback port: the DHT is the only way to find the seeder.
"$bin/mktorrent" -q -f -d -a "udp://127.0.0.1:1/announce" -o "$torrent" "$data"
info_hash=$("$bin/mktorrent" --show "$torrent" --json | $py -c "import json, sys; print(json.load(sys.stdin)['info_hash'])")
magnet="magnet:?xt=urn:btih:$info_hash"
echo "magnet: $magnet ($size_kib KiB)" >&2

# setup RUN TOOL: a fresh DHT and a fresh seeder announced in it; sets $bootstrap.
setup() {
  local tag=run$1-$2 seed_port
  "$examples/loopback_dht" --nodes "$nodes" --info-hash "$info_hash" --timeout $((timeout + 300)) \
    > "$work/$tag-dht.out" 2> "$work/$tag-dht.log" &
  pids+=($!)
  wait_for "$work/$tag-dht.out" READY 60
  bootstrap=$(sed -n 's/^BOOTSTRAP //p' "$work/$tag-dht.out")
  seed_port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  $py tests/support/lt_peer.py seed "$torrent" "$work/seed" --port "$seed_port" --dht-bootstrap "$bootstrap" \
    --timeout $((timeout + 300)) > "$work/$tag-seeder.out" 2> "$work/$tag-seeder.log" &
  pids+=($!)
  wait_for "$work/$tag-seeder.out" SEEDING 60
  wait_for "$work/$tag-dht.out" ANNOUNCED 120
  echo "run $1 $2: DHT $(grep "^READY" "$work/$tag-dht.out"); seeder $(grep -m1 "^ANNOUNCED" "$work/$tag-dht.out")" >&2
}

results=$work/results.jsonl
: > "$results"
leech() {
  local tool=$1 run=$2 dir=$work/run$2-$1 before
  setup "$run" "$tool"
  rm -rf "$dir" && mkdir -p "$dir"
  before=$(wc -l < "$results")
  # In the background, so that a TERM to this script reaches the trap at once and the trap can end the leecher.
  if [ "$tool" = ours ]; then
    timeout $((timeout + 30)) $py bench/dht_lt.py ours "$bin/peer" "$magnet" "$dir" --bootstrap "$bootstrap" \
      --run "$run" --expect "$data" --log "$work/run$run-ours.stderr" --timeout "$timeout" >> "$results" &
  else
    timeout $((timeout + 30)) $py bench/dht_lt.py lt "$magnet" "$dir" --bootstrap "$bootstrap" --run "$run" \
      --expect "$data" --timeout "$timeout" >> "$results" 2> "$work/run$run-lt.stderr" &
  fi
  leecher=$!
  wait "$leecher" || true
  leecher=""
  if [ "$(wc -l < "$results")" = "$before" ]; then
    [ "$tool" = ours ] || tool=libtorrent
    echo "{\"tool\": \"$tool\", \"run\": $run, \"timed_out\": true}" >> "$results"
  fi
  tail -1 "$results" | cut -c1-400 >&2
  stop_all
  rm -rf "$dir"
}
for run in $(seq 1 "$runs"); do
  if [ $((run % 2)) = 1 ]; then leech ours "$run"; leech lt "$run"; else leech lt "$run"; leech ours "$run"; fi
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
lt_version=$($py -c 'import libtorrent; print(libtorrent.__version__)')
header="dht: a bare magnet link ($size_kib KiB file), found through a loopback DHT of $nodes of our nodes (a fresh \
DHT and a fresh libtorrent $lt_version seeder announced in it for each leecher); $runs runs, order alternating \
(odd runs: ours first); $(nproc) CPUs ($cpu)"
$py bench/dht_lt.py table "$results" "$header"
echo
echo "Memory of one of our nodes:"
echo
"$examples/table_memory" | sed 's/^/    /'
