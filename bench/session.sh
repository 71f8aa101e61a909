#!/usr/bin/env bash
# Seeding many small torrents from one process: ours against transmission-daemon and qbittorrent-nox on the same
# data (COUNT torrents of 256 KiB, 16 KiB pieces, announcing to our tracker on loopback; DHT, LSD, PEX and uTP off
# everywhere). For each tool: the time from start to every torrent seeding, first without resume data (the data
# is checked) and then after a restart with it; bytes read by the restart (rchar in /proc/PID/io); then RSS,
# threads, open fds and the CPU spent over IDLE seconds of seeding with no peer.
# Usage: bench/session.sh [COUNT] [IDLE_SECONDS] [TOOLS]   e.g. bench/session.sh 10000 60 "ours transmission"
# Results go to stdout and to $WORK/results.txt (WORK defaults to /tmp/bt-bench-session).
# QBT_SKIP_CHECKING=1 adds the torrents to qbittorrent-nox with skip_checking: its first start checks one torrent a
# second here (1,000 s for 1,000), so at 10,000 only this way do its restart, RSS and idle CPU get measured.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
idle=${2:-60}
tools=${3:-"ours transmission qbittorrent"}
work=${WORK:-/tmp/bt-bench-session}
root=$PWD

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v transmission-daemon >/dev/null || missing+=(transmission-daemon)
command -v transmission-remote >/dev/null || missing+=(transmission-cli)
command -v qbittorrent-nox >/dev/null || missing+=(qbittorrent-nox)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
cargo build --release --bin peer --bin tracker

mkdir -p "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The torrents are kept between runs, and so is the tracker port they name.
tracker_port=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/shape" 2>/dev/null || true)
tracker_port=${tracker_port:-$(free_port)}
python3 bench/session_data.py "$work" "$count" $((256 * 1024)) "udp://127.0.0.1:$tracker_port/announce"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
# A tracker with no peers for each start: one that remembered the last start's ports (for its 1,800 s interval)
# would have every torrent dial a dead address, and each tool would pay for the one before it.
tracker_pid=
fresh_tracker() {
  if [ -n "$tracker_pid" ]; then kill "$tracker_pid" 2>/dev/null || true; wait "$tracker_pid" 2>/dev/null || true; fi
  "$root/target/release/tracker" --open --bind "127.0.0.1:$tracker_port" --interval 1800 >>"$work/tracker.log" 2>&1 &
  tracker_pid=$!
  pids+=("$tracker_pid")
  for _ in $(seq 50); do
    python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.1); s.sendto(bytes.fromhex('0000041727101980000000000000002a'), ('127.0.0.1', $tracker_port)); s.recv(16)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the tracker did not start" >&2
  return 1
}

results="$work/results.txt"
: >"$results"
say() { echo "$*" | tee -a "$results"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
threads() { ls "/proc/$1/task" | wc -l; }
fds() { ls "/proc/$1/fd" | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
read_mib() { awk '/^rchar/ {printf "%.1f", $2 / 1048576}' "/proc/$1/io"; }
ticks_per_second=$(getconf CLK_TCK)

# Waits (up to 1800 s) until `$2` (a command printing how many torrents seed) reaches $count; prints the seconds.
wait_seeding() {
  local started=$1 check=$2 deadline=$(($(date +%s) + 1800))
  until [ "$($check)" -ge "$count" ]; do
    if [ "$(date +%s)" -gt "$deadline" ]; then echo "timeout"; return 0; fi
    sleep 0.1
  done
  since "$started"
}

# RSS, threads, fds and idle CPU of $2 (after 5 s of settling), as one result line for tool $1.
measure_idle() {
  local tool=$1 pid=$2
  sleep 5
  local before after
  before=$(cpu_ticks "$pid")
  sleep "$idle"
  after=$(cpu_ticks "$pid")
  local cpu_seconds percent
  cpu_seconds=$(echo "scale=3; ($after - $before) / $ticks_per_second" | bc)
  percent=$(echo "scale=3; 100 * $cpu_seconds / $idle" | bc)
  say "$tool: seeding $count: RSS $(rss_mib "$pid") MiB, $(threads "$pid") threads, $(fds "$pid") fds," \
    "idle CPU ${cpu_seconds} s over ${idle} s (${percent} % of a core)"
}

stop() { kill -INT "$1" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; }

run_ours() {
  local log="$work/ours.log"
  rm -rf "$work/data/.peer-resume"
  our_seeding() { grep -c '"event":"seeding"' "$log" || true; }
  for round in "without resume data" "with resume data"; do
    : >"$log"
    fresh_tracker
    local started
    started=$(now)
    "$root/target/release/peer" 0 "$work"/torrents/*.torrent --dir "$work/data" --bind 127.0.0.1 --no-dht --no-lsd \
      --json --tracker-timeout 5 >"$log" 2>"$work/ours.err" &
    local pid=$!
    pids+=("$pid")
    local took
    took=$(wait_seeding "$started" our_seeding)
    say "ours: every torrent seeding ${took} s after start, $round; $(read_mib "$pid") MiB read"
    if [ "$round" = "with resume data" ]; then measure_idle ours "$pid"; fi
    stop "$pid"
  done
}

run_transmission() {
  local config="$work/transmission" rpc peer_port
  rm -rf "$config"
  mkdir -p "$config"
  rpc=$(free_port)
  peer_port=$(free_port)
  cat >"$config/settings.json" <<EOF
{
  "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
  "port-forwarding-enabled": false, "peer-port": $peer_port,
  "rpc-port": $rpc, "rpc-authentication-required": false, "rpc-whitelist-enabled": false,
  "rpc-host-whitelist-enabled": false, "download-dir": "$work/data", "download-queue-enabled": false,
  "seed-queue-enabled": false, "message-level": 1
}
EOF
  transmission_seeding() { transmission-remote "$rpc" -l 2>/dev/null | grep -v Verif | grep -c ' 100% ' || true; }
  local started pid took
  fresh_tracker
  started=$(now)
  transmission-daemon -f -g "$config" >"$work/transmission.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  until transmission-remote "$rpc" -l >/dev/null 2>&1; do sleep 0.05; done
  # One -a per torrent (several files after one -a add only the last), 200 torrents per call.
  for file in "$work"/torrents/*.torrent; do printf -- '-a\0%s\0' "$file"; done |
    xargs -0 -n 400 transmission-remote "$rpc" >/dev/null
  took=$(wait_seeding "$started" transmission_seeding)
  say "transmission: every torrent seeding ${took} s after start, without resume data; $(read_mib "$pid") MiB read"
  stop "$pid"
  fresh_tracker
  started=$(now)
  transmission-daemon -f -g "$config" >>"$work/transmission.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  until transmission-remote "$rpc" -l >/dev/null 2>&1; do sleep 0.05; done
  took=$(wait_seeding "$started" transmission_seeding)
  say "transmission: every torrent seeding ${took} s after start, with resume data; $(read_mib "$pid") MiB read"
  measure_idle transmission "$pid"
  stop "$pid"
}

run_qbittorrent() {
  local profile="$work/qbittorrent" web peer_port
  rm -rf "$profile"
  mkdir -p "$profile/qBittorrent/config"
  web=$(free_port)
  peer_port=$(free_port)
  cat >"$profile/qBittorrent/config/qBittorrent.conf" <<EOF
[LegalNotice]
Accepted=true

[BitTorrent]
Session\DHTEnabled=false
Session\LSDEnabled=false
Session\PeXEnabled=false
Session\Port=$peer_port
Session\QueueingSystemEnabled=false
Session\DefaultSavePath=$work/data
Session\Interface=lo
Session\InterfaceName=lo

[Preferences]
WebUI\Port=$web
WebUI\Address=127.0.0.1
WebUI\LocalHostAuth=false
WebUI\CSRFProtection=false
WebUI\HostHeaderValidation=false
Connection\UPnP=false
EOF
  local api="http://127.0.0.1:$web/api/v2"
  qbittorrent_seeding() {
    curl -s "$api/torrents/info" 2>/dev/null | python3 -c '
import json, sys
try:
    torrents = json.load(sys.stdin)
except ValueError:
    torrents = []
print(sum(1 for t in torrents if t["progress"] == 1 and t["state"] in ("uploading", "stalledUP", "forcedUP", "queuedUP")))'
  }
  local started pid took
  fresh_tracker
  started=$(now)
  qbittorrent-nox --profile="$profile" >"$work/qbittorrent.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  until curl -s "$api/app/version" >/dev/null 2>&1; do sleep 0.05; done
  local batch=() first="without resume data"
  if [ "${QBT_SKIP_CHECKING:-0}" = 1 ]; then
    batch+=(-F "skip_checking=true")
    first="added with skip_checking, so its data is not checked"
  fi
  local options=${#batch[@]}
  for file in "$work"/torrents/*.torrent; do
    batch+=(-F "torrents=@$file")
    if [ ${#batch[@]} -ge $((400 + options)) ]; then
      curl -s -F "savepath=$work/data" "${batch[@]}" "$api/torrents/add" >/dev/null
      batch=("${batch[@]:0:options}")
    fi
  done
  if [ ${#batch[@]} -gt "$options" ]; then
    curl -s -F "savepath=$work/data" "${batch[@]}" "$api/torrents/add" >/dev/null
  fi
  took=$(wait_seeding "$started" qbittorrent_seeding)
  say "qbittorrent: every torrent seeding ${took} s after start, $first; $(read_mib "$pid") MiB read"
  stop "$pid"
  fresh_tracker
  started=$(now)
  qbittorrent-nox --profile="$profile" >>"$work/qbittorrent.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  took=$(wait_seeding "$started" qbittorrent_seeding)
  say "qbittorrent: every torrent seeding ${took} s after start, with resume data; $(read_mib "$pid") MiB read"
  measure_idle qbittorrent "$pid"
  stop "$pid"
}

say "# $count torrents of 256 KiB, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
say "# transmission-daemon $(transmission-daemon -V 2>&1 | head -1 | awk '{print $2}'), qbittorrent-nox $(qbittorrent-nox -v 2>/dev/null | awk '{print $2}')"
for tool in $tools; do
  "run_$tool"
done
