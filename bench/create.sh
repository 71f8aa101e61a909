#!/usr/bin/env bash
# Times our mktorrent against Debian's mktorrent and imdl with ../shared/bench/create.sh:
# page cache warm, same piece length (1 MiB), 2 threads, runs interleaved. Installs what it needs.
# Usage: bench/create.sh [RUNS]   (data goes to /tmp/bt-bench-data, results to /tmp/bt-bench-out)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shared=${SHARED:-../shared/bench}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v mktorrent >/dev/null || { as_root apt-get update -q && as_root apt-get install -y -q mktorrent; }
command -v imdl >/dev/null || cargo install --locked imdl
cargo build --release --bin mktorrent

OURS="$PWD/target/release/mktorrent -q -f -d -l {log2} -t {threads} -a {announce} -o {out} {in}" \
TOOLS="mktorrent imdl" RUNS=$runs PIECES=${PIECES:-1048576} THREADS=${THREADS:-2} \
  "$shared/create.sh"
