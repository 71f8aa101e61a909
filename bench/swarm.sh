#!/usr/bin/env bash
# One seeder capped at SEED_UP bytes/s and N leechers on their own loopback addresses (127.0.0.21...), a
# SIZE_MIB file in 256 KiB pieces: ours (bench/swarm_ours.py) and libtorrent (../shared/bench/swarm.sh) on the
# same file, torrent and tracker (ours), runs interleaved. Prints the time until every leecher is done against
# the lower bound of P2P distribution time, max(F/u_s, F/d_min, N*F/(u_s + sum u_i)) = F/u_s here (leecher
# uploads unlimited), and the copies each seeder sent.
# Usage: bench/swarm.sh [RUNS] [LEECHERS...]     e.g. bench/swarm.sh 3 4 40
# Environment: SIZE_MIB=200 SEED_UP=20000000 LEAVE=1 (one of our leechers is killed half way) LT=0 (ours only)
#              WORK=/dev/shm/bt-bench-swarm when /dev/shm has room for every copy, else /tmp/bt-bench-swarm: the
#              bound is about the network, and on a small VM writing 40 fresh copies to a disk's page cache costs
#              more CPU than the transfer itself (measured here: 22 s of system time for 40 x 200 MiB with dd).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
counts=${*:-4}
size=${SIZE_MIB:-200}
seed_up=${SEED_UP:-20000000}
most=0
for n in $counts; do [ "$n" -gt "$most" ] && most=$n; done
# Every leecher's copy, the seed and libtorrent's copies of the same (one tool at a time), with a tenth to spare.
need_kib=$(( (most + 2) * size * 1024 * 11 / 10 ))
if [ -z "${WORK:-}" ] && [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2 {print $4}')" -gt "$need_kib" ]; then
  work=/dev/shm/bt-bench-swarm
else
  work=${WORK:-/tmp/bt-bench-swarm}
fi
echo "bench-swarm: working in $work" >&2
shared=${SHARED:-../shared/bench}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
/usr/bin/python3 -c "import libtorrent" 2>/dev/null || missing+=(python3-libtorrent)
for tool in bc openssl; do command -v $tool >/dev/null || missing+=($tool); done
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
cargo build --release --bin peer --bin tracker --bin mktorrent
bin=$PWD/target/release

mkdir -p "$work/seed"
name=swarm-${size}M.bin
data=$work/seed/$name
bytes=$((size * 1024 * 1024))
if [ ! -f "$data" ] || [ "$(stat -c %s "$data")" != "$bytes" ]; then
  # openssl stops on SIGPIPE when head has enough: expected, so the pipeline's status is not checked.
  { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass pass:btswarm < /dev/zero 2>/dev/null | head -c "$bytes" > "$data"; } || true
  [ "$(stat -c %s "$data")" = "$bytes" ] || { echo "could not generate $data" >&2; exit 1; }
fi
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
torrent=$work/$name.torrent
"$bin/mktorrent" -q -f -d -l 18 -a "udp://127.0.0.1:$port/announce" -o "$torrent" "$data"
"$bin/tracker" --open --interval 5 --bind "127.0.0.1:$port" > "$work/tracker.log" 2>&1 &
tracker=$!
trap 'kill $tracker 2>/dev/null; wait $tracker 2>/dev/null' EXIT
sleep 0.3

results=$work/results.csv
echo "tool,leechers,run,all_done_s,seeder_copies,ok" > "$results"
leave=""; [ "${LEAVE:-0}" = 1 ] && leave="--leave-half-way"
for n in $counts; do
  for run in $(seq 1 "$runs"); do
    python3 bench/swarm_ours.py --bin "$bin" --data "$data" --torrent "$torrent" --leechers "$n" \
      --seed-up "$seed_up" --work "$work" $leave | sed "s/^1,/ours,$n,$run,/" >> "$results" || true
    tail -1 "$results" >&2
    [ "${LT:-1}" = 0 ] && continue
    # libtorrent: the shared script, on a copy of the same file and the same tracker (it makes its own torrent).
    lt_out=$(SIZE_MIB=$size N=$n SEED_UP=$seed_up LEECH_UP=0 RUNS=1 WORK=$work/lt TRACKER_PORT=$((port + 1)) \
      OURS_TRACKER="$bin/tracker --open --interval 5 --bind 127.0.0.1:{port}" "$shared/swarm.sh" 2>&1 || true)
    copies=$(echo "$lt_out" | sed -n 's/.*seeder uploaded \([0-9.]*\) x F.*/\1/p' | tail -1)
    secs=$(echo "$lt_out" | sed -n 's/.*per-leecher seconds: //p' | tail -1 | tr ' ' '\n' | grep -v '^$' | sort -g | tail -1)
    echo "libtorrent,$n,$run,${secs:-TIMEOUT},${copies:-0},yes" >> "$results"
    # The shared script leaves its copies behind (N x SIZE); ours removes its own. Both start from the same state.
    rm -rf "$work/lt"
    tail -1 "$results" >&2
  done
done

python3 - "$results" "$bytes" "$seed_up" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
F, us = int(sys.argv[2]), float(sys.argv[3])
bound = F / us
print("\nswarm: F = %.1f MB, seeder upload u_s = %.1f MB/s, leecher uploads unlimited; bound F/u_s = %.2f s"
      % (F / 1e6, us / 1e6, bound))
print("| leechers | tool | all done: median (min..max) | median / bound | seeder copies: median (min..max) | copies ok |")
print("|---|---|---|---|---|---|")
for n in sorted({int(r["leechers"]) for r in rows}):
    for tool in ("ours", "libtorrent"):
        rs = [r for r in rows if r["tool"] == tool and int(r["leechers"]) == n]
        if not rs:
            continue
        times = sorted(float("inf") if r["all_done_s"] == "TIMEOUT" else float(r["all_done_s"]) for r in rs)
        copies = sorted(float(r["seeder_copies"]) for r in rs)
        med = statistics.median(times)
        print("| %d | %s | %.2f s (%.2f..%.2f) | %.2f | %.2f (%.2f..%.2f) | %d/%d |" % (
            n, tool, med, times[0], times[-1], med / bound, statistics.median(copies), copies[0], copies[-1],
            sum(r["ok"] == "yes" for r in rs), len(rs)))
PY
