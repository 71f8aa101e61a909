#!/usr/bin/python3
"""Helpers for bench/magnet.sh: one magnet download timed, by libtorrent or by our peer, and the table.

  magnet_lt.py infosize TORRENT                      bytes of the bencoded info dictionary
  magnet_lt.py scrape HOST:PORT INFOHASH [--timeout S]  waits until the UDP tracker counts a seeder
  magnet_lt.py lt MAGNET DIR [--run N --expect FILE --timeout S]   libtorrent leecher; one JSON line of timings
  magnet_lt.py ours PEER MAGNET DIR [--run N --expect FILE --log F --timeout S]
                                                     our peer as a child process; one JSON line of timings
  magnet_lt.py table RESULTS.jsonl HEADER            per-run and median tables (markdown)

Timings are seconds from the start named in each record; a stage that never came is null. Nothing here
asserts: a run that times out is reported as such. Runs only under /usr/bin/python3 (Debian's bindings).
"""
import argparse
import filecmp
import json
import os
import random
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time


def infosize(args):
    import libtorrent as lt
    print(len(lt.torrent_info(args.torrent).info_section()))
    return 0


def scrape(args):
    host, port = args.tracker.rsplit(":", 1)
    info_hash = bytes.fromhex(args.info_hash)
    deadline = time.monotonic() + args.timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            tid = random.getrandbits(32)
            sock.sendto(struct.pack(">QII", 0x41727101980, 0, tid), (host, int(port)))
            reply = sock.recv(2048)
            action, rtid, conn = struct.unpack(">IIQ", reply[:16])
            if action != 0 or rtid != tid:
                continue
            tid = random.getrandbits(32)
            sock.sendto(struct.pack(">QII", conn, 2, tid) + info_hash, (host, int(port)))
            reply = sock.recv(2048)
            action, rtid = struct.unpack(">II", reply[:8])
            if action == 2 and rtid == tid and len(reply) >= 20:
                seeders, _completed, leechers = struct.unpack(">III", reply[8:20])
                if seeders >= 1:
                    print("seeders=%d leechers=%d" % (seeders, leechers), flush=True)
                    return 0
        except socket.timeout:
            pass
        time.sleep(0.1)
    sys.stderr.write("tracker never counted a seeder\n")
    return 2


def same(args):
    """Whether the download is byte for byte the seeded file: reported, never asserted."""
    if not args.expect:
        return None
    copy = os.path.join(args.dir, os.path.basename(args.expect))
    return os.path.exists(copy) and filecmp.cmp(copy, args.expect, shallow=False)


def first(marks, key, value):
    if key not in marks:
        marks[key] = value


def run_lt(args):
    import libtorrent as lt
    cat = lt.alert.category_t
    t0 = time.monotonic()
    # Same loopback-only settings as tests/support/lt_peer.py, so neither side gets DHT/LSD peers.
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "allow_multiple_connections_per_ip": True,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "alert_mask": cat.error_notification | cat.status_notification | cat.tracker_notification
        | cat.connect_notification | cat.piece_progress_notification,
    })
    params = lt.parse_magnet_uri(args.magnet)
    params.save_path = args.dir
    t_add = time.monotonic()
    handle = session.add_torrent(params)
    marks = {}
    deadline = t0 + args.timeout
    done = False
    while not done and time.monotonic() < deadline:
        session.wait_for_alert(100)
        now = time.monotonic()
        for alert in session.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                first(marks, "announced", now)
            elif isinstance(alert, lt.peer_connect_alert):
                first(marks, "peer_connected", now)
            elif isinstance(alert, lt.metadata_received_alert):
                first(marks, "metadata", now)
            elif isinstance(alert, lt.piece_finished_alert):
                first(marks, "first_piece", now)
            elif isinstance(alert, lt.torrent_finished_alert):
                first(marks, "complete", now)
                done = True
            elif isinstance(alert, (lt.metadata_failed_alert, lt.torrent_error_alert)):
                sys.stderr.write("libtorrent: %s\n" % alert.message())
    record = {"tool": "libtorrent", "run": args.run, "timed_out": not done, "ok": same(args),
              "metadata_size": len(handle.torrent_file().info_section()) if handle.torrent_file() else None}
    for key in ("announced", "peer_connected", "metadata", "first_piece", "complete"):
        record[key] = round(marks[key] - t0, 4) if key in marks else None
        record[key + "_from_add"] = round(marks[key] - t_add, 4) if key in marks else None
    print(json.dumps(record), flush=True)
    # Without a `stopped` announce the tracker would hand this gone leecher to later runs' leechers.
    session.remove_torrent(handle)
    stop_deadline = time.monotonic() + 2
    while time.monotonic() < stop_deadline:
        session.wait_for_alert(100)
        for alert in session.pop_alerts():
            # The alert comes as the datagram is sent; a little slack lets the tracker's reply come back.
            if isinstance(alert, lt.tracker_announce_alert) and "stopped" in alert.message():
                stop_deadline = min(stop_deadline, time.monotonic() + 0.3)
    return 0


def run_ours(args):
    t0 = time.monotonic()
    child = subprocess.Popen(
        [args.peer, "--no-dht", "--no-lsd", "0", args.magnet, "--dir", args.dir, "--json", "--exit-on-complete", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=open(args.log, "w") if args.log else subprocess.DEVNULL)
    # magnet.sh's cleanup (or `timeout`) stops this helper with TERM: our peer must not outlive it.
    signal.signal(signal.SIGTERM, lambda *_: (child.kill(), sys.exit(143)))
    marks, events, pending = {}, [], b""
    deadline = t0 + args.timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 0.1)
        if not ready:
            if child.poll() is not None:
                break
            continue
        chunk = os.read(child.stdout.fileno(), 65536)
        now = time.monotonic()
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            name = event.get("event")
            # The event order is kept (piece_verified only once) to see where the time before the first piece goes.
            if name != "piece_verified" or "first_piece" not in marks:
                events.append([round(now - t0, 4), name] + ([event.get("address")] if "address" in event else []))
            if name == "metadata_received":
                first(marks, "metadata", now)
                first(marks, "metadata_size", event.get("size"))
            elif name == "piece_verified":
                first(marks, "first_piece", now)
            elif name == "peer_connected":
                first(marks, "peer_connected", now)
                if "metadata" in marks:
                    first(marks, "peer_connected_after_metadata", now)
            elif name in ("announced", "complete"):
                first(marks, name, now)
    # Stdout closes a little before the process ends (its `stopped` announce): that wait is part of the run.
    try:
        child.wait(timeout=max(0.0, deadline - time.monotonic()))
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        child.send_signal(signal.SIGKILL)
        child.wait()
    exited = time.monotonic()
    record = {"tool": "ours", "run": args.run, "timed_out": timed_out, "exit_status": child.returncode,
              "ok": same(args), "metadata_size": marks.get("metadata_size"), "exit": round(exited - t0, 4)}
    for key in ("announced", "peer_connected", "metadata", "peer_connected_after_metadata", "first_piece",
                "complete"):
        record[key] = round(marks[key] - t0, 4) if key in marks else None
    record["events"] = events
    print(json.dumps(record), flush=True)
    return 0


def fmt(value):
    return "—" if value is None else "%.3f" % value


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def gap(row, later, earlier):
    return row[later] - row[earlier] if row.get(later) is not None and row.get(earlier) is not None else None


def table(args):
    raw = [json.loads(line) for line in open(args.results) if line.strip()]
    # libtorrent twice: from before lt.session() (closest to our process start) and from add_torrent.
    rows = []
    for row in raw:
        if row["tool"] == "ours":
            rows.append(dict(row, label="ours (from exec)"))
        else:
            rows.append(dict(row, label="libtorrent (from session())"))
            rows.append(dict(row, label="libtorrent (from add_torrent)",
                             **{k: row.get(k + "_from_add") for k in ("announced", "peer_connected", "metadata",
                                                                   "first_piece", "complete")}))
    order = list(dict.fromkeys(row["label"] for row in rows))
    ok = lambda row: "TIMEOUT" if row.get("timed_out") else {True: "yes", False: "NO", None: "?"}[row.get("ok")]
    print(args.header)
    print()
    print("| run | leecher | metadata s | first piece s | complete s | first piece − metadata s | copy ok |")
    print("|---|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: (r["run"], order.index(r["label"]))):
        print("| %d | %s | %s | %s | %s | %s | %s |" % (
            row["run"], row["label"], fmt(row.get("metadata")), fmt(row.get("first_piece")), fmt(row.get("complete")),
            fmt(gap(row, "first_piece", "metadata")), ok(row)))
    print()
    print("| median | metadata s | first piece s | complete s | first piece − metadata s | copies ok |")
    print("|---|---|---|---|---|---|")
    for label in order:
        rs = [row for row in rows if row["label"] == label]
        print("| %s | %s | %s | %s | %s | %d/%d |" % (
            label, fmt(med([r.get("metadata") for r in rs])), fmt(med([r.get("first_piece") for r in rs])),
            fmt(med([r.get("complete") for r in rs])), fmt(med([gap(r, "first_piece", "metadata") for r in rs])),
            sum(ok(r) == "yes" for r in rs), len(rs)))
    print()
    print("Stages, medians in s from each leecher's start (ours: exec; libtorrent: lt.session()):")
    print()
    print("| leecher | 1st announce reply | 1st peer connected | metadata | 1st peer connected after metadata "
          "| 1st piece | complete |")
    print("|---|---|---|---|---|---|---|")
    for label in ("ours (from exec)", "libtorrent (from session())"):
        rs = [row for row in rows if row["label"] == label]
        stages = ("announced", "peer_connected", "metadata", "peer_connected_after_metadata", "first_piece",
                  "complete")
        if rs:
            print("| %s | %s |" % (label.split()[0], " | ".join(fmt(med([r.get(k) for r in rs])) for k in stages)))
    sizes = {row["tool"]: row.get("metadata_size") for row in raw if row.get("metadata_size")}
    print()
    print("metadata size each leecher reported: %s" % ", ".join("%s %s B" % kv for kv in sizes.items()))
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("infosize")
    p.add_argument("torrent")
    p = sub.add_parser("scrape")
    p.add_argument("tracker")
    p.add_argument("info_hash")
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("lt")
    p.add_argument("magnet")
    p.add_argument("dir")
    p.add_argument("--timeout", type=float, default=120)
    p = sub.add_parser("ours")
    p.add_argument("peer")
    p.add_argument("magnet")
    p.add_argument("dir")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--log", help="our peer's stderr")
    p = sub.add_parser("table")
    p.add_argument("results")
    p.add_argument("header")
    for name in ("lt", "ours"):
        sub.choices[name].add_argument("--run", type=int, default=1)
        sub.choices[name].add_argument("--expect", help="the seeded file, to compare the copy with")
    args = parser.parse_args()
    return {"infosize": infosize, "scrape": scrape, "lt": run_lt, "ours": run_ours, "table": table}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
