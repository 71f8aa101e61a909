#!/usr/bin/env bash
# v2 and hybrid creation (BEP 52): our mktorrent --v2 / --hybrid against libtorrent 2.0's create_torrent
# (python3-libtorrent, tests/support/lt_create.py), on one large file and on a tree of many small files, page
# cache warm, runs interleaved, medians printed. Then the single-core SHA-256 and SHA-1 rates of this CPU
# (openssl speed), the ceiling of any creator, and which SHA-1 path our hasher measured as faster here.
#
# Usage: bench/create_v2.sh [RUNS] [SIZE_MIB] [FILES]   (defaults 5, 2048, 10000)
# Data goes to ${WORK:-/tmp/bt-bench-v2} (reused between runs); THREADS (default: all cores) for ours.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
size_mib=${2:-2048}
files=${3:-10000}
work=${WORK:-/tmp/bt-bench-v2}
threads=${THREADS:-$(nproc)}
piece=$((1 << 20))

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
/usr/bin/python3 -c 'import libtorrent' 2>/dev/null ||
  { as_root apt-get update -q && as_root apt-get install -y -q python3-libtorrent; }
command -v openssl >/dev/null || { as_root apt-get update -q && as_root apt-get install -y -q openssl; }
cargo build --release --bin mktorrent
ours=$PWD/target/release/mktorrent
lt_create=$PWD/tests/support/lt_create.py

mkdir -p "$work"
big=$work/big.bin
if [ ! -f "$big" ] || [ "$(stat -c %s "$big")" != $((size_mib << 20)) ]; then
  echo "writing $size_mib MiB to $big"
  head -c $((size_mib << 20)) /dev/urandom > "$big"
fi
tree=$work/tree
if [ "$(cat "$work/tree.count" 2>/dev/null)" != "$files" ]; then
  echo "writing $files files under $tree"
  rm -rf "$tree" && mkdir -p "$tree"
  # Sizes from 1 byte to about 200 KiB, 100 files a folder.
  python3 - "$tree" "$files" <<'EOF'
import os, random, sys
root, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(52)
for n in range(count):
    folder = os.path.join(root, f"d{n // 100:03}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"f{n:05}.bin"), "wb") as out:
        out.write(os.urandom(rng.randint(1, 200_000)))
EOF
  echo "$files" > "$work/tree.count"
fi
# Warm the page cache.
cat "$big" > /dev/null
find "$tree" -type f -exec cat {} + > /dev/null

seconds() { local start end; start=$(date +%s.%N); "$@" > /dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {printf "%.3f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

declare -A times
for run in $(seq "$runs"); do
  for input in big tree; do
    path=$work/$input.bin; [ "$input" = tree ] && path=$tree
    for mode in v2 hybrid; do
      t=$(seconds "$ours" "--$mode" -q -f -d -l 20 -t "$threads" -o "$work/ours-$mode.torrent" "$path")
      times[ours-$mode-$input]+="$t "
      t=$(seconds /usr/bin/python3 "$lt_create" "$mode" "$path" "$piece" "$work/lt-$mode.torrent")
      times[lt-$mode-$input]+="$t "
    done
  done
  # v2 on the big file read with pread instead of mapped (crates/metainfo/src/mapped.rs), for the difference.
  t=$(seconds env BT_MMAP=0 "$ours" --v2 -q -f -d -l 20 -t "$threads" -o "$work/ours-v2-read.torrent" "$big")
  times[v2-read]+="$t "
  # v1 on the big file with each SHA-1 path forced, and as calibrated (crates/metainfo/src/sha1_pair.rs and
  # sha1_lanes.rs): sixteen pieces in AVX-512 lanes, pairs, one stream.
  for path_choice in lanes 1 0 auto; do
    case $path_choice in
      lanes) choice=(BT_SHA1_LANES=1) ;;
      auto) choice=() ;;
      *) choice=(BT_SHA1_LANES=0 BT_SHA1_PAIRS="$path_choice") ;;
    esac
    t=$(seconds env "${choice[@]}" "$ours" -q -f -d -l 20 -t 1 -o "$work/ours-v1.torrent" "$big")
    times[v1-$path_choice]+="$t "
  done
  echo "run $run of $runs done"
done

echo
echo "| input | mode | ours ($threads threads) | libtorrent create_torrent | ratio |"
echo "|---|---|---|---|---|"
for input in big tree; do
  label="$size_mib MiB file"; [ "$input" = tree ] && label="$files files"
  for mode in v2 hybrid; do
    o=$(echo "${times[ours-$mode-$input]}" | tr ' ' '\n' | grep . | median)
    l=$(echo "${times[lt-$mode-$input]}" | tr ' ' '\n' | grep . | median)
    echo "| $label | $mode | ${o} s | ${l} s | $(echo "scale=2; $l / $o" | bc)x |"
  done
done
echo
echo "One core of this CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')):"
sha256_line=$(openssl speed -seconds 2 -bytes 16384 -evp sha256 2>/dev/null | grep -i '^sha256' || true)
echo "$sha256_line"
openssl speed -seconds 2 -bytes 16384 -evp sha1 2>/dev/null | grep -i '^sha1' || true
# openssl prints thousands of bytes per second; v2 hashes 16 KiB leaves, so that is the size to time. The ceiling
# is what all the cores hash at once (-multi): two busy cores of a VM do a little less than twice one.
multi_line=$(openssl speed -seconds 2 -bytes 16384 -multi "$threads" -evp sha256 2>/dev/null | grep -i '^sha256' || true)
echo "all $threads cores at once: $multi_line"
rate_k=$(echo "$multi_line" | awk '{print $2}' | tr -d k)
if [ -n "$rate_k" ]; then
  ceiling=$(echo "scale=3; ($size_mib * 1048576) / ($rate_k * 1000)" | bc)
  mapped=$(echo "${times[ours-v2-big]}" | tr ' ' '\n' | grep . | median)
  read=$(echo "${times[v2-read]}" | tr ' ' '\n' | grep . | median)
  echo
  echo "v2 of the $size_mib MiB file against the $threads-core SHA-256 ceiling ($ceiling s):"
  echo "  ours, mapped: $mapped s = $(echo "scale=1; 100 * $ceiling / $mapped" | bc)% of the ceiling"
  echo "  ours, read (BT_MMAP=0): $read s = $(echo "scale=1; 100 * $ceiling / $read" | bc)% of the ceiling"
fi
echo
echo "Our v1 creation of the $size_mib MiB file on one thread, by SHA-1 path (medians):"
for path_choice in lanes 1 0 auto; do
  label="pairs"; [ "$path_choice" = 0 ] && label="one stream"; [ "$path_choice" = auto ] && label="calibrated"
  [ "$path_choice" = lanes ] && label="sixteen lanes (AVX-512)"
  echo "  $label: $(echo "${times[v1-$path_choice]}" | tr ' ' '\n' | grep . | median) s"
done
