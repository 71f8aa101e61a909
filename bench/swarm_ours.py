#!/usr/bin/env python3
"""One rate-limited seeder and N leechers of ours on loopback: the time until every leecher has the whole file,
against the lower bound of P2P distribution time, and how many copies the seeder sent.

  swarm_ours.py --bin target/release --data FILE --torrent T --tracker-port P --leechers N --seed-up BYTES/S
                [--runs R] [--leave-half-way] [--work DIR] [--timeout S]

Each leecher listens on its own address 127.0.0.(21+i), as in ../shared/bench/swarm.sh. Leechers keep seeding
until all are done (as the bound assumes). Prints one CSV line per run on stdout:
  run,all_done_s,seeder_copies,copies_ok
Exit 1 if any copy differs from the original or a run times out.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Peer:
    """One `peer --json` process; its events are collected by a reader thread."""

    def __init__(self, command):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.changed:
                self.events.append((time.monotonic(), event))
                self.changed.notify_all()

    def first(self, kind):
        return next(((at, event) for at, event in self.events if event.get("event") == kind), None)

    def wait_for(self, kind, timeout):
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.first(kind) is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    return None
                self.changed.wait(min(left, 0.2))
            return self.first(kind)

    def have(self):
        verified = [event["have"] for _, event in self.events if event.get("event") == "piece_verified"]
        return verified[-1] if verified else 0

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # Let the reader thread take the last lines.
        time.sleep(0.2)


def run_once(args, run):
    work = os.path.join(args.work, "ours")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    peer = os.path.join(args.bin, "peer")
    seed_dir = os.path.dirname(os.path.abspath(args.data))
    seeder = Peer([peer, "--no-dht", "--no-lsd", "0", args.torrent, "--dir", seed_dir, "--bind", "127.0.0.1", "--json",
                   "--upload-limit", str(args.seed_up), "--max-peers-per-ip", "1000"])
    if seeder.wait_for("seeding", 120) is None:
        seeder.stop()
        sys.exit("our seeder never said it was seeding")
    leechers = []
    started = time.monotonic()
    for i in range(args.leechers):
        folder = os.path.join(work, "l%d" % i)
        leechers.append(Peer([peer, "--no-dht", "--no-lsd", "0", args.torrent, "--dir", folder, "--bind", "127.0.0.%d" % (21 + i),
                              "--json", "--max-peers", "200"]))
    left_half_way = None
    deadline = started + args.timeout
    done = {}
    total = None
    while len(done) < len(leechers) and time.monotonic() < deadline:
        for i, leecher in enumerate(leechers):
            if i in done or i == left_half_way:
                continue
            event = leecher.first("complete")
            if event is not None:
                done[i] = event[0] - started
            checked = leecher.first("checked")
            if checked is not None:
                total = checked[1]["total"]
        if args.leave_half_way and left_half_way is None and total and leechers[0].have() >= total // 2:
            leechers[0].process.kill()
            leechers[0].process.wait()
            left_half_way = 0
            done[0] = None
        time.sleep(0.02)
    timed_out = len(done) < len(leechers)
    for leecher in leechers:
        leecher.stop()
    seeder.stop()
    report = next((event for _, event in reversed(seeder.events) if event.get("event") == "stopped"), {})
    copies = report.get("uploaded", 0) / os.path.getsize(args.data)
    original = sha256(args.data)
    name = os.path.basename(args.data)
    ok = all(sha256(os.path.join(work, "l%d" % i, name)) == original
             for i in range(len(leechers)) if i != left_half_way)
    times = [t for t in done.values() if t is not None]
    all_done = "TIMEOUT" if timed_out else "%.2f" % max(times)
    print("%d,%s,%.3f,%s" % (run, all_done, copies, "yes" if ok else "no"), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return ok and not timed_out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--leechers", type=int, default=4)
    parser.add_argument("--seed-up", type=int, default=20_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--leave-half-way", action="store_true")
    parser.add_argument("--work", default="/tmp/bt-bench-swarm")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    good = True
    for run in range(1, args.runs + 1):
        good &= run_once(args, run)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
