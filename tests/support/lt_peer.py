#!/usr/bin/python3
"""A libtorrent peer for the interop tests: seed or download one torrent on loopback.

  lt_peer.py seed  TORRENT DIR --port N [--timeout S]
  lt_peer.py leech TORRENT DIR --port N [--peer HOST:PORT ...] [--timeout S]

--dht-bootstrap HOST:PORT turns libtorrent's DHT on (off otherwise), bootstrapped there, with the settings a
loopback DHT needs. --lsd IP turns local service discovery (BEP 14) on (off otherwise): libtorrent listens and
connects on IP (a LAN address, IPv4 or IPv6, as in the tests' network namespaces) instead of 127.0.0.1, multicasts its announces
there, and (leech) prints `LSD HEARD N` before COMPLETE: the announces of other hosts it took peers from. Either mode also takes
--no-pex (no peer exchange for this torrent: it neither tells nor learns peers) and --download-limit
BYTES_PER_SECOND. A `seed` over an empty DIR downloads first and keeps running when complete.

TORRENT may be a magnet link (leech only): libtorrent then fetches the metadata from its peers.

DIR is the save path (the data is DIR/NAME). Lines on stdout for the test to wait on:
  LISTENING PORT   once the session listens
  SEEDING          (seed) the data was checked and is complete
  COMPLETE         (leech) every piece downloaded and checked by libtorrent; the program then exits 0
Exit 2 on timeout, 3 on a torrent or listen error. Runs only under /usr/bin/python3 (Debian's bindings).
"""
import argparse
import sys
import time

import libtorrent as lt


def say(line):
    print(line, flush=True)


def lsd_heard(session):
    """libtorrent's count of local service discovery announces taken from other hosts (net.on_lsd_peer_counter)."""
    session.post_session_stats()
    deadline = time.time() + 5
    while time.time() < deadline:
        for alert in session.pop_alerts():
            if isinstance(alert, lt.session_stats_alert):
                return alert.values.get("net.on_lsd_peer_counter", 0)
        time.sleep(0.05)
    return -1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["seed", "leech"])
    parser.add_argument("torrent")
    parser.add_argument("dir")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--peer", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--no-pex", action="store_true")
    parser.add_argument("--download-limit", type=int, default=0)
    parser.add_argument("--dht-bootstrap", default=None)
    parser.add_argument("--lsd", metavar="IP", default=None)
    parser.add_argument("--say-incoming", action="store_true",
                        help="print INCOMING N PEERS P whenever the connections peers opened to us so far (N) or "
                             "the peers connected now (P) change")
    args = parser.parse_args()

    settings = {
        "listen_interfaces": "127.0.0.1:%d" % args.port,
        "outgoing_interfaces": "127.0.0.1",
        # Every peer here shares 127.0.0.1; libtorrent would otherwise keep only one of them.
        "allow_multiple_connections_per_ip": True,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "announce_to_all_trackers": True, "announce_to_all_tiers": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
        "download_rate_limit": args.download_limit,
    }
    if args.say_incoming:
        settings["alert_mask"] |= lt.alert.category_t.peer_notification
    if args.lsd:
        settings.update({
            # An IPv6 address is written in brackets, as in a URL.
            "listen_interfaces": "%s:%d" % ("[%s]" % args.lsd if ":" in args.lsd else args.lsd, args.port),
            "outgoing_interfaces": args.lsd,
            "enable_lsd": True,
        })
    if args.dht_bootstrap:
        # The DHT on loopback: libtorrent keeps out loopback nodes, unverified node ids and bursts from one address
        # (every node here is 127.0.0.1) unless told otherwise.
        settings.update({
            "enable_dht": True,
            "dht_bootstrap_nodes": args.dht_bootstrap,
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_enforce_node_id": False,
            "dht_prefer_verified_node_ids": False,
            "dht_ignore_dark_internet": False,
            "dht_block_ratelimit": 100000,
            "dht_block_timeout": 1,
            "dht_upload_rate_limit": 10000000,
        })
    session = lt.session(settings)
    if args.download_limit:
        # libtorrent puts loopback peers in its unlimited local class; put every address in the global class, whose
        # limit download_rate_limit is.
        every_address = lt.ip_filter()
        every_address.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
        session.set_peer_class_filter(every_address)
    if args.torrent.startswith("magnet:"):
        # Only the info-hash and trackers: the metadata comes from peers (BEP 9).
        params = lt.parse_magnet_uri(args.torrent)
        params.save_path = args.dir
        handle = session.add_torrent(params)
    else:
        try:
            info = lt.torrent_info(args.torrent)
        except RuntimeError as err:
            sys.stderr.write("cannot load %s: %s\n" % (args.torrent, err))
            return 3
        handle = session.add_torrent({"ti": info, "save_path": args.dir})
    if args.no_pex:
        # Before any connection: libtorrent attaches its ut_pex plugin to a connection when it starts.
        handle.set_flags(lt.torrent_flags.disable_pex)
    say("LISTENING %d" % session.listen_port())
    for peer in args.peer:
        host, port = peer.rsplit(":", 1)
        handle.connect_peer((host, int(port)))

    deadline = time.time() + args.timeout
    announced_seeding = False
    incoming, said_incoming = 0, None
    while time.time() < deadline:
        for alert in session.pop_alerts():
            if isinstance(alert, (lt.listen_failed_alert, lt.torrent_error_alert)):
                sys.stderr.write("libtorrent: %s\n" % alert.message())
                return 3
            if isinstance(alert, lt.incoming_connection_alert):
                incoming += 1
        status = handle.status()
        # Alerts are read before the status: a peer counted as gone has had its connection counted.
        if args.say_incoming and (incoming, status.num_peers) != said_incoming:
            said_incoming = (incoming, status.num_peers)
            say("INCOMING %d PEERS %d" % said_incoming)
        if args.mode == "seed" and status.is_seeding and not announced_seeding:
            say("SEEDING")
            announced_seeding = True
        if args.mode == "leech" and status.is_seeding:
            if args.lsd:
                say("LSD HEARD %d" % lsd_heard(session))
            say("COMPLETE")
            return 0
        sys.stderr.write("%s state=%s progress=%.3f peers=%d down=%d up=%d\n" % (
            args.mode, status.state, status.progress, status.num_peers,
            status.total_payload_download, status.total_payload_upload))
        time.sleep(0.2)
    return 0 if args.mode == "seed" else 2


if __name__ == "__main__":
    sys.exit(main())
