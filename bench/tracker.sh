#!/usr/bin/env bash
# Times our UDP tracker against aquatic_udp and opentracker under aquatic_udp_load_test, for each worker
# count in $WORKERS: ours with --workers N, aquatic_udp with socket_workers = N, opentracker with
# listen.udp.workers N (N=1: its default event loop, as in ../shared/bench/RESULTS-anchors.md).
# The trackers are pinned to CPUs 0..N-1 and the load tester to the other CPUs; when N leaves no CPU
# free (N=2 on 2 cores) both share all CPUs, and the output says so. Runs are interleaved (for each run,
# for each N, each tracker in turn); min/median/max over RUNS, error responses reported.
# This is ../shared/bench/tracker.sh's loop (which has one worker and CPU 0/1 hard-wired) with a workers
# dimension; it reuses that directory's tools/udp_probe.py and tools/loadtest-hashes.
# Installs what it needs (the two aquatic builds take minutes each, once).
#
# Usage: bench/tracker.sh [RUNS] [DURATION]      (results in $WORK, default /tmp/bt-bench-tracker)
# Env:   WORKERS      worker counts to run (default "1"), e.g. WORKERS="1 2"
#        TRACKERS     subset of "ours aquatic opentracker" (default all three)
#        LT_WORKERS   load-test workers (default: the CPUs left to it, at least 1)
#        SUMMARIZE_LAST seconds counted at the end of each run (default DURATION-5: a 5 s warm-up)
#        QUIET_WAIT   before each run wait up to this many seconds for the machine to be idle (< QUIET_PCT %,
#                     default 15, of all CPUs busy over 2 s); default 0: no waiting
#        PORT (36969) NUM_TORRENTS (1000000) NUM_PEERS (2000000) SOCKETS (4) PIN (1 if >= 2 CPUs)
#        OURS (our tracker binary; default: cargo build --release, ${CARGO_TARGET_DIR:-target}/release/tracker)
#        OPENTRACKER AQUATIC LOADTEST (binaries on PATH)  OT_WHITELIST auto|1|0 (as ../shared/bench/tracker.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-${RUNS:-5}}
DURATION=${2:-${DURATION:-20}}
SHARED=$(cd "${SHARED:-../shared/bench}" && pwd)
WORKERS=${WORKERS:-1}
TRACKERS=${TRACKERS:-"ours aquatic opentracker"}
PORT=${PORT:-36969}
SUMMARIZE_LAST=${SUMMARIZE_LAST:-$((DURATION > 6 ? DURATION - 5 : 1))}
NUM_TORRENTS=${NUM_TORRENTS:-1000000}
NUM_PEERS=${NUM_PEERS:-2000000}
SOCKETS=${SOCKETS:-4}
WORK=${WORK:-/tmp/bt-bench-tracker}
OPENTRACKER=${OPENTRACKER:-opentracker}
OT_WHITELIST=${OT_WHITELIST:-auto}
AQUATIC=${AQUATIC:-aquatic_udp}
LOADTEST=${LOADTEST:-aquatic_udp_load_test}
PY=${PY:-python3}
NCPU=$(nproc)
if [ -z "${PIN:-}" ]; then if [ "$NCPU" -ge 2 ]; then PIN=1; else PIN=0; fi; fi
[ "$SUMMARIZE_LAST" -lt "$DURATION" ] || { echo "SUMMARIZE_LAST ($SUMMARIZE_LAST) must be below DURATION ($DURATION)" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
case " $TRACKERS " in *" opentracker "*)
  command -v "$OPENTRACKER" >/dev/null || { as_root apt-get update -q && as_root apt-get install -y -q opentracker; } ;;
esac
command -v "$LOADTEST" >/dev/null || cargo install --locked aquatic_udp_load_test
case " $TRACKERS " in *" aquatic "*)
  command -v "$AQUATIC" >/dev/null || cargo install --locked --no-default-features --features mimalloc aquatic_udp ;;
esac
OURS=${OURS:-}
case " $TRACKERS " in *" ours "*)
  if [ -z "$OURS" ]; then cargo build --release --bin tracker; OURS="$PWD/${CARGO_TARGET_DIR:-target}/release/tracker"; fi ;;
esac

mkdir -p "$WORK"
RAW="$WORK/tracker-raw.tsv"; : > "$RAW"
SUMMARY="$WORK/tracker-summary.txt"
TPID=""
# first info-hash aquatic_udp_load_test 0.9 generates (in any whitelist built below)
PROBE_HASH=9b2c89021127d21d52983827ff49ffb3f783d5af

cleanup() { # stop only what this script started: TERM, then INT, then KILL
  [ -n "$TPID" ] || return 0
  local sig i
  alive() { [ -r "/proc/$TPID/stat" ] && [ "$(awk '{print $3}' "/proc/$TPID/stat" 2>/dev/null)" != Z ]; }
  for sig in TERM INT KILL; do
    alive || break
    kill -s "$sig" "$TPID" 2>/dev/null || true
    for i in $(seq 50); do alive || break; sleep 0.1; done
  done
  wait "$TPID" 2>/dev/null || true
  TPID=""
}
trap cleanup EXIT INT TERM

# ---- CPUs for N tracker workers -------------------------------------------------------
cpus_for() { # N -> sets T_CPUS, L_CPUS, SHARE (1 when tracker and load tester share CPUs), LTW
  local n=$1
  if [ "$PIN" != 1 ]; then T_CPUS=""; L_CPUS=""; SHARE=1
  elif [ "$n" -lt "$NCPU" ]; then T_CPUS="0-$((n - 1))"; L_CPUS="$n-$((NCPU - 1))"; SHARE=0
  else T_CPUS="0-$((NCPU - 1))"; L_CPUS="0-$((NCPU - 1))"; SHARE=1
  fi
  if [ "$SHARE" = 1 ]; then LTW=${LT_WORKERS:-1}; else LTW=${LT_WORKERS:-$((NCPU - n))}; fi
}

# ---- load tester config, per worker count -------------------------------------------
lt_config() { # N -> writes $WORK/load-test-wN.toml
  local n=$1 cfg="$WORK/load-test-w$1.toml"
  cpus_for "$n"
  "$LOADTEST" -p > "$cfg"
  sed -i -e "s|^server_address = .*|server_address = \"127.0.0.1:$PORT\"|" \
         -e "s|^workers = .*|workers = $LTW|" \
         -e "s|^duration = .*|duration = $DURATION|" \
         -e "s|^summarize_last = .*|summarize_last = $SUMMARIZE_LAST|" \
         -e "s|^number_of_torrents = .*|number_of_torrents = $NUM_TORRENTS|" \
         -e "s|^number_of_peers = .*|number_of_peers = $NUM_PEERS|" \
         -e "s|^sockets_per_worker = .*|sockets_per_worker = $SOCKETS|" "$cfg"
  grep -q "^workers = $LTW\$" "$cfg" || { echo "could not set the load tester's workers in $cfg" >&2; exit 1; }
}

ot_needs_whitelist() {
  case $OT_WHITELIST in
    1) return 0 ;; 0) return 1 ;;
    *) "$OPENTRACKER" -h 2>&1 | grep -q -- '-w file' ;;
  esac
}

prepare() { # tracker N -> sets CMD (array) and RUNDIR
  local t=$1 n=$2 d="$WORK/$1-w$2"
  mkdir -p "$d"
  case $t in
    opentracker)
      local args=()
      if [ "$n" -gt 1 ]; then # must come before the listen options (-P) to take effect
        echo "listen.udp.workers $n" > "$d/opentracker.conf"
        args+=(-f "$d/opentracker.conf")
      fi
      args+=(-i 127.0.0.1 -p "$PORT" -P "$PORT" -d "$d" -u nobody)
      if ot_needs_whitelist; then
        if [ ! -s "$WORK/whitelist-$NUM_TORRENTS.txt" ]; then
          echo "# building whitelist of the load tester's $NUM_TORRENTS info-hashes" >&2
          CARGO_TARGET_DIR="$WORK/target" cargo build --release -q --manifest-path "$SHARED/tools/loadtest-hashes/Cargo.toml"
          "$WORK/target/release/loadtest-hashes" "$NUM_TORRENTS" > "$WORK/whitelist-$NUM_TORRENTS.txt"
        fi
        cp "$WORK/whitelist-$NUM_TORRENTS.txt" "$d/whitelist.txt"
        # as root opentracker chroots into -d before reading the list
        if [ "$(id -u)" = 0 ]; then args+=(-w /whitelist.txt); else args+=(-w "$d/whitelist.txt"); fi
      fi
      CMD=("$OPENTRACKER" "${args[@]}") ;;
    aquatic)
      "$AQUATIC" -p > "$d/config.toml"
      sed -i -e "s|^socket_workers = .*|socket_workers = $n|" \
             -e "s|^address = .*|address = \"127.0.0.1:$PORT\"|" \
             -e "s|^address_ipv4 = .*|address_ipv4 = \"127.0.0.1:$PORT\"|" "$d/config.toml"
      grep -q "^socket_workers = $n\$" "$d/config.toml" || { echo "could not set aquatic's socket_workers" >&2; exit 1; }
      CMD=("$AQUATIC" -c "$d/config.toml") ;;
    ours)
      CMD=("$OURS" --open --bind "127.0.0.1:$PORT" --workers "$n") ;;
    *) echo "unknown tracker $t" >&2; exit 1 ;;
  esac
  RUNDIR=$d
}

proc_cpu_s() { # utime+stime of PID (all threads) in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

busy_s() { # seconds all CPUs were busy (user nice system irq softirq steal), since boot
  awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

children_s() { # KIDS = user+sys seconds of this shell's reaped children (the load tester, once it exits);
  # `times` must run in this shell, not in a $(...) subshell
  times > "$WORK/.times"
  KIDS=$(awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] } print s }' "$WORK/.times")
}

wait_quiet() { # up to QUIET_WAIT s for 2 s in which the CPUs are under QUIET_PCT % busy (other work on the machine)
  [ "${QUIET_WAIT:-0}" -gt 0 ] || return 0
  local start=$SECONDS a b
  while :; do
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    sleep 2
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
    if awk -v a="$a" -v b="$b" -v max="${QUIET_PCT:-15}" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !(100 * (y[1] - x[1]) / (y[2] - x[2]) < max) }'; then
      return 0
    fi
    if [ $((SECONDS - start)) -ge "$QUIET_WAIT" ]; then echo "# machine still busy after ${QUIET_WAIT}s; running anyway" >&2; return 0; fi
  done
}

run_one() { # tracker N run#
  local t=$1 n=$2 r=$3 log="$WORK/$1-w$2-run$3"
  wait_quiet
  prepare "$t" "$n"
  cpus_for "$n"
  local pin_t=() pin_l=()
  if [ -n "$T_CPUS" ]; then pin_t=(taskset -c "$T_CPUS"); pin_l=(taskset -c "$L_CPUS"); fi
  if ss -Hlun "sport = :$PORT" | grep -q .; then echo "port $PORT busy; set PORT" >&2; exit 1; fi
  (cd "$RUNDIR" && exec "${pin_t[@]}" "${CMD[@]}") > "$log.tracker.log" 2>&1 &
  TPID=$!
  if ! "$PY" "$SHARED/tools/udp_probe.py" 127.0.0.1 "$PORT" 60 "$PROBE_HASH" > "$log.probe.txt" 2>&1; then
    echo "FAIL: $t (workers $n) did not answer (see $log.*)" >&2; cat "$log.probe.txt" >&2
    printf '%s\t%s\t%s\tFAIL\n' "$t" "$n" "$r" >> "$RAW"; cleanup; return 0
  fi
  local threads; threads=$(ls "/proc/$TPID/task" | wc -l)
  local cpu0 busy0 kids0; cpu0=$(proc_cpu_s "$TPID"); busy0=$(busy_s); children_s; kids0=$KIDS
  "${pin_l[@]}" "$LOADTEST" -c "$WORK/load-test-w$n.toml" > "$log.loadtest.txt" 2>&1 || true
  local cpu1 busy1 kids1 hwm other
  cpu1=$(proc_cpu_s "$TPID"); busy1=$(busy_s); children_s; kids1=$KIDS
  # CPU seconds the machine spent on anything but the tracker and the load tester (other processes,
  # plus interrupts): well above ~0.5 s per run means the run was disturbed
  other=$(awk -v b="$busy1" -v a="$busy0" -v t1="$cpu1" -v t0="$cpu0" -v k1="$kids1" -v k0="$kids0" \
    'BEGIN { o = (b - a) - (t1 - t0) - (k1 - k0); printf "%.2f", (o < 0 ? 0 : o) }')
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$TPID/status")
  cleanup
  awk -v t="$t" -v n="$n" -v r="$r" -v cpu="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{print b-a}')" -v hwm="$hwm" -v th="$threads" -v other="$other" '
    /^# aquatic load test report/ { rep=1 }
    rep && /^Average responses per second:/ { tot=$NF }
    rep && /Connect responses:/  { c=$NF }
    rep && /Announce responses:/ { a=$NF }
    rep && /Scrape responses:/   { s=$NF }
    rep && /Error responses:/    { e=$NF }
    END { if (tot=="") tot="FAIL"; printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t, n, r, tot, c, a, s, e, cpu, hwm, th, other }
  ' "$log.loadtest.txt" >> "$RAW"
  tail -1 "$RAW" >&2
}

for n in $WORKERS; do lt_config "$n"; done
echo "# trackers: $TRACKERS  workers: $WORKERS  port=$PORT duration=${DURATION}s (last ${SUMMARIZE_LAST}s counted) runs=$RUNS pin=$PIN cpus=$NCPU sockets=$SOCKETS torrents=$NUM_TORRENTS peers=$NUM_PEERS" >&2
echo "# raw columns: tracker workers run responses/s connect announce scrape error tracker_cpu_s VmHWM_KiB threads other_cpu_s" >&2
for r in $(seq 1 "$RUNS"); do
  for n in $WORKERS; do
    for t in $TRACKERS; do run_one "$t" "$n" "$r"; done
  done
done

{
  echo "# responses/s = aquatic_udp_load_test 'Average responses per second' over the last ${SUMMARIZE_LAST}s of ${DURATION}s runs; min/median/max of $RUNS interleaved runs"
  echo "# connect..error = medians; errors_sum = error responses/s summed over all runs (0 = none in any run)"
  echo "# cpu_s = tracker CPU seconds over the whole run (N workers can use up to N x ${DURATION}); resp/cpu_s = responses/s x ${DURATION} / cpu_s"
  echo "# other_s = CPU seconds the machine spent on anything else during a run (other processes, interrupts): a disturbed run shows several"
  echo "# ours: --workers N; aquatic_udp: socket_workers = N; opentracker: N=1 its event loop, N>1 listen.udp.workers N"
  for n in $WORKERS; do
    cpus_for "$n"
    if [ "$PIN" != 1 ]; then where="unpinned, load tester with $LTW worker(s)"
    elif [ "$SHARE" = 1 ]; then where="tracker on CPUs $T_CPUS, load tester ($LTW worker) on CPUs $L_CPUS: SHARED, the load tester takes CPU from the tracker"
    else where="tracker on CPUs $T_CPUS, load tester ($LTW worker(s)) on CPUs $L_CPUS"; fi
    echo "## workers=$n: $where"
  done
  printf '%-12s %2s %9s %9s %9s | %9s %9s %7s %6s %10s | %7s %10s %8s | %7s\n' tracker N min median max connect announce scrape error errors_sum cpu_s resp/cpu_s rss_MiB other_s
  for n in $WORKERS; do
    for t in $TRACKERS; do
      awk -F'\t' -v t="$t" -v N="$n" -v DUR="$DURATION" '
        function med(a, n,   i, j, tmp) { for (i=2;i<=n;i++) for (j=i;j>1 && a[j-1]>a[j];j--) { tmp=a[j]; a[j]=a[j-1]; a[j-1]=tmp }
                                         return (n%2) ? a[(n+1)/2] : (a[n/2]+a[n/2+1])/2 }
        $1==t && $2==N && $4!="FAIL" { k++; tot[k]=$4; c[k]=$5; a[k]=$6; s[k]=$7; e[k]=$8; esum+=$8; cpu[k]=$9; rss[k]=$10; oth[k]=$12; eff[k]=($9>0)? $4*DUR/$9 : 0 }
        $1==t && $2==N && $4=="FAIL" { f++ }
        END {
          if (k==0) { printf "%-12s %2s FAILED\n", t, N; exit }
          m=med(tot,k)
          printf "%-12s %2s %9.0f %9.0f %9.0f | %9.0f %9.0f %7.0f %6.0f %10.0f | %7.2f %10.0f %8.1f | %7.2f%s\n", t, N, tot[1], m, tot[k], med(c,k), med(a,k), med(s,k), med(e,k), esum, med(cpu,k), med(eff,k), med(rss,k)/1024, med(oth,k), (f? "  ("f" failed)" : "")
        }' "$RAW"
    done
  done
} | tee "$SUMMARY"
echo "# raw: $RAW  summary: $SUMMARY  logs: $WORK/<tracker>-w<N>-run<R>.*" >&2
