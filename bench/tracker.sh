#!/usr/bin/env bash
# Times our tracker against aquatic_udp and opentracker with ../shared/bench/tracker.sh: the
# tracker pinned to CPU 0, aquatic_udp_load_test (1M torrents, 2M peers) on CPU 1, runs
# interleaved. Installs what it needs (the two aquatic builds take minutes each, once).
# Usage: bench/tracker.sh [RUNS] [DURATION]   (results in /tmp/bt-bench-tracker)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
duration=${2:-20}
shared=${SHARED:-../shared/bench}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v opentracker >/dev/null || { as_root apt-get update -q && as_root apt-get install -y -q opentracker; }
command -v aquatic_udp_load_test >/dev/null || cargo install --locked aquatic_udp_load_test
command -v aquatic_udp >/dev/null || cargo install --locked --no-default-features --features mimalloc aquatic_udp
cargo build --release --bin tracker

OURS_TRACKER="$PWD/target/release/tracker --open --bind 127.0.0.1:{port}" \
TRACKERS=${TRACKERS:-"ours aquatic opentracker"} RUNS=$runs DURATION=$duration \
  "$shared/tracker.sh"
