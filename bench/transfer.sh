#!/usr/bin/env bash
# One seeder -> one leecher over loopback with ../shared/bench/transfer.sh: our peer against libtorrent
# and rqbit, 1 GiB file, 256 KiB pieces, our tracker, sha256 of every copy checked, runs interleaved.
# The issue's targets, in the same run: lt->ours >= lt->rqbit; ours->ours >= 2 x lt->lt; our leecher's
# peak RSS <= 64 MiB. Installs what it needs (rqbit builds in about 7 minutes, once).
# Usage: bench/transfer.sh [RUNS] [SIZE_MIB]   (results in /tmp/bt-bench-transfer)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
size=${2:-1024}
shared=${SHARED:-../shared/bench}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
/usr/bin/python3 -c "import libtorrent" 2>/dev/null || missing+=(python3-libtorrent)
command -v aria2c >/dev/null || missing+=(aria2)
command -v opentracker >/dev/null || missing+=(opentracker)
for tool in bc curl; do command -v $tool >/dev/null || missing+=($tool); done
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v rqbit >/dev/null || cargo install --locked rqbit
cargo build --release --bin peer --bin tracker

OURS_PEER="$PWD/target/release/peer --no-dht --no-lsd" \
OURS_TRACKER="$PWD/target/release/tracker --open --bind 127.0.0.1:{port}" \
PAIRS=${PAIRS:-"lt:ours lt:rqbit ours:ours lt:lt ours:lt lt:aria2"} RUNS=$runs SIZE_MIB=$size \
WORK=${WORK:-/tmp/bt-bench-transfer} TIMEOUT=${TIMEOUT:-240} \
  "$shared/transfer.sh"
