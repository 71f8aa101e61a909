#!/usr/bin/python3
"""Helpers for bench/dht.sh: one magnet download found through a loopback DHT, by libtorrent or by our peer,
timed; and the table.

  dht_lt.py lt MAGNET DIR --bootstrap HOST:PORT [--run N --expect FILE --timeout S]
                                    libtorrent leecher, DHT only (no tracker in the magnet); one JSON line
  dht_lt.py ours PEER MAGNET DIR --bootstrap HOST:PORT [--run N --expect FILE --log F --timeout S]
                                    our peer as a child process, DHT only; one JSON line
  dht_lt.py table RESULTS.jsonl HEADER      per-run and median tables (markdown)

Timings are seconds from the start named in each record (ours: exec; libtorrent: before lt.session(), and
again from add_torrent); a stage that never came is null. Stages: dht_peers (libtorrent only: its first DHT
reply carrying peers; our peer has no event for it), peer_connected (the first peer connected: the seeder, as
the DHT is the only source), metadata, first_piece, complete. Nothing here asserts. Runs only under
/usr/bin/python3 (Debian's bindings).
"""
import argparse
import filecmp
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time

STAGES = ("dht_peers", "peer_connected", "metadata", "first_piece", "complete")


def same(args):
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
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        "allow_multiple_connections_per_ip": True,
        "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        # The DHT on loopback, bootstrapped only at our loopback node (as tests/support/lt_peer.py): libtorrent
        # keeps out loopback nodes, unverified node ids and bursts from one address unless told otherwise.
        "enable_dht": True,
        "dht_bootstrap_nodes": args.bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_block_ratelimit": 100000,
        "dht_block_timeout": 1,
        "dht_upload_rate_limit": 10000000,
        "alert_mask": cat.error_notification | cat.status_notification | cat.dht_notification
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
            if isinstance(alert, lt.dht_bootstrap_alert):
                first(marks, "dht_bootstrap", now)
            elif isinstance(alert, lt.dht_reply_alert) and alert.num_peers > 0:
                first(marks, "dht_peers", now)
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
    record = {"tool": "libtorrent", "run": args.run, "timed_out": not done, "ok": same(args)}
    for key in STAGES + ("dht_bootstrap",):
        record[key] = round(marks[key] - t0, 4) if key in marks else None
        record[key + "_from_add"] = round(marks[key] - t_add, 4) if key in marks else None
    print(json.dumps(record), flush=True)
    return 0


def run_ours(args):
    t0 = time.monotonic()
    child = subprocess.Popen(
        [args.peer, "0", args.magnet, "--dir", args.dir, "--json", "--exit-on-complete", "--bind", "127.0.0.1",
         "--dht-bootstrap", args.bootstrap],
        stdout=subprocess.PIPE, stderr=open(args.log, "w") if args.log else subprocess.DEVNULL)
    # dht.sh's cleanup (or `timeout`) stops this helper with TERM: our peer must not outlive it.
    signal.signal(signal.SIGTERM, lambda *_: (child.kill(), sys.exit(143)))
    marks, pending, sources = {}, b"", []
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
            if name == "peer_connected":
                first(marks, "peer_connected", now)
                sources.append(event.get("source"))
            elif name == "metadata_received":
                first(marks, "metadata", now)
            elif name == "piece_verified":
                first(marks, "first_piece", now)
            elif name == "complete":
                first(marks, "complete", now)
    try:
        child.wait(timeout=max(0.0, deadline - time.monotonic()))
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        child.send_signal(signal.SIGKILL)
        child.wait()
    record = {"tool": "ours", "run": args.run, "timed_out": timed_out or "complete" not in marks,
              "exit_status": child.returncode, "ok": same(args), "peer_sources": sorted(set(map(str, sources)))}
    for key in STAGES:
        record[key] = round(marks[key] - t0, 4) if key in marks else None
    print(json.dumps(record), flush=True)
    return 0


def fmt(value):
    return "—" if value is None else "%.3f" % value


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(args):
    raw = [json.loads(line) for line in open(args.results) if line.strip()]
    rows = []
    for row in raw:
        if row["tool"] == "ours":
            rows.append(dict(row, label="ours (from exec)"))
        else:
            rows.append(dict(row, label="libtorrent (from session())"))
            rows.append(dict(row, label="libtorrent (from add_torrent)",
                             **{k: row.get(k + "_from_add") for k in STAGES}))
    order = list(dict.fromkeys(row["label"] for row in rows))
    ok = lambda row: "TIMEOUT" if row.get("timed_out") else {True: "yes", False: "NO", None: "?"}[row.get("ok")]
    print(args.header)
    print()
    print("| run | leecher | DHT peers s | 1st peer connected s | metadata s | 1st piece s | complete s | copy ok |")
    print("|---|---|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: (r["run"], order.index(r["label"]))):
        print("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
            row["run"], row["label"], *(fmt(row.get(k)) for k in STAGES), ok(row)))
    print()
    print("| median | DHT peers s | 1st peer connected s | metadata s | 1st piece s | complete s | copies ok |")
    print("|---|---|---|---|---|---|---|")
    for label in order:
        rs = [row for row in rows if row["label"] == label]
        print("| %s | %s | %d/%d |" % (
            label, " | ".join(fmt(med([r.get(k) for r in rs])) for k in STAGES),
            sum(ok(r) == "yes" for r in rs), len(rs)))
    sources = sorted({s for row in raw for s in row.get("peer_sources", [])})
    if sources:
        print()
        print("our peer's peer sources: %s (the DHT is the only one offered)" % ", ".join(sources))
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("lt")
    p.add_argument("magnet")
    p.add_argument("dir")
    p = sub.add_parser("ours")
    p.add_argument("peer")
    p.add_argument("magnet")
    p.add_argument("dir")
    p.add_argument("--log", help="our peer's stderr")
    for name in ("lt", "ours"):
        sub.choices[name].add_argument("--bootstrap", required=True, help="HOST:PORT of a loopback DHT node")
        sub.choices[name].add_argument("--run", type=int, default=1)
        sub.choices[name].add_argument("--expect", help="the seeded file, to compare the copy with")
        sub.choices[name].add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("table")
    p.add_argument("results")
    p.add_argument("header")
    args = parser.parse_args()
    return {"lt": run_lt, "ours": run_ours, "table": table}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
