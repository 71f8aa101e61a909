#!/usr/bin/python3
"""Captures the KRPC datagrams libtorrent's DHT sends, for the golden vectors in ../golden/libtorrent-2.0.8.txt. Not
run by the tests; rerun it by hand to refresh them (ids, tokens, transaction ids and ports change on every run).

  capture_libtorrent_dht.py

Six UDP sockets play DHT nodes: A, B, C on 127.0.0.1 and A6, B6, C6 on ::1 (ids "capture-node-id-0001" to
"...0003"). A libtorrent session listening on both loopback addresses gets A, B, A6 and B6 as its bootstrap nodes,
with the five settings that make libtorrent accept loopback nodes (FIELD-NOTES 14). Every datagram that reaches our
sockets is printed as hex: "lt-query METHOD NODE HEX" for what libtorrent asks us, "lt-reply KIND NODE HEX" for its
answers. We answer its queries: A and B (A6 and B6) refer it to C (C6) in find_node and get_peers replies, since
libtorrent never puts bootstrap nodes in its routing table, and get_peers replies also carry a token and one peer.
So after a torrent is added by info-hash, libtorrent runs a get_peers lookup through us, announces to us, and has C
and C6 in its table. Then A queries it, with 2- and 4-byte transaction ids: ping, find_node (the reply names C),
get_peers, announce_peer with the token it gave, get_peers again (now it has our peer), an unknown method and a
find_node without `target`; then A6 sends a find_node with want n4 and n6 (BEP 32) and announces over IPv6 as a
seed.
Runs only under /usr/bin/python3 (Debian's python3-libtorrent; 2.0.8 for the vectors in the tests).
"""
import select
import socket
import struct
import tempfile
import time

import libtorrent as lt

IDS = {"A": b"capture-node-id-0001", "B": b"capture-node-id-0002", "C": b"capture-node-id-0003"}
INFO_HASH = bytes.fromhex("0123456789abcdef0123456789abcdef01234567")
OUR_TOKEN = b"tokn"


def compact(family, host, port):
    return socket.inet_pton(family, host) + struct.pack(">H", port)


def free_port():
    """A port free for UDP on both loopback addresses (libtorrent's DHT shares the listen port)."""
    while True:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        try:
            other = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            other.bind(("::1", port))
            other.close()
            probe.close()
            return port
        except OSError:
            probe.close()


class Node:
    def __init__(self, name, family, host):
        self.name, self.family, self.host = name, family, host
        self.id = IDS[name[0]]
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.peers = {}

    def answer(self, src, msg):
        """Replies to one of libtorrent's queries as a plain node would."""
        q = msg.get(b"q")
        r = {b"id": self.id}
        # Bootstrap nodes never enter libtorrent's routing table, so A and B refer it to C (of their family),
        # which it then queries and keeps; C refers to nobody.
        key = b"nodes" if self.family == socket.AF_INET else b"nodes6"
        c = self.peers.get("C")
        nodes = c.id + compact(c.family, c.host, c.port) if c and self.name[0] != "C" else b""
        if q == b"find_node":
            r[key] = nodes
        elif q == b"get_peers":
            r[key] = nodes
            r[b"token"] = OUR_TOKEN
            r[b"values"] = [compact(self.family, self.host, 6881)]
        self.sock.sendto(lt.bencode({b"t": msg[b"t"], b"y": b"r", b"r": r}), src)


def pump(nodes, seconds):
    """Prints what arrives for `seconds`, answering queries; returns the replies seen, by transaction id."""
    deadline = time.time() + seconds
    replies = {}
    by_sock = {n.sock: n for n in nodes}
    while time.time() < deadline:
        ready, _, _ = select.select(list(by_sock), [], [], max(0.0, deadline - time.time()))
        if not ready:
            break
        for sock in ready:
            node = by_sock[sock]
            data, src = sock.recvfrom(65536)
            msg = lt.bdecode(data)
            if not isinstance(msg, dict):
                print("undecodable", node.name, data.hex())
                continue
            kind = msg.get(b"y", b"?")
            if kind == b"q":
                print("lt-query %s %s %s" % (msg.get(b"q", b"?").decode(errors="replace"), node.name, data.hex()))
                node.answer(src, msg)
            else:
                print("lt-reply %s %s %s" % (kind.decode(errors="replace"), node.name, data.hex()))
                replies[msg.get(b"t")] = msg
    return replies


def main():
    nodes = [Node("A", socket.AF_INET, "127.0.0.1"), Node("B", socket.AF_INET, "127.0.0.1"),
             Node("A6", socket.AF_INET6, "::1"), Node("B6", socket.AF_INET6, "::1"),
             Node("C", socket.AF_INET, "127.0.0.1"), Node("C6", socket.AF_INET6, "::1")]
    for n in nodes:
        n.peers = {m.name[0]: m for m in nodes if m.family == n.family}
    port = free_port()
    bootstrap = ",".join("127.0.0.1:%d" % n.port if n.family == socket.AF_INET else "[::1]:%d" % n.port
                         for n in nodes if n.name[0] != "C")
    session = lt.session({
        "listen_interfaces": "127.0.0.1:%d,[::1]:%d" % (port, port),
        "enable_dht": True, "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False, "dht_enforce_node_id": False,
        "dht_prefer_verified_node_ids": False, "dht_ignore_dark_internet": False,
        "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    })
    print("libtorrent port", port, "ours", " ".join("%s=%d" % (n.name, n.port) for n in nodes))
    pump(nodes, 4)

    params = lt.add_torrent_params()
    params.info_hashes = lt.info_hash_t(lt.sha1_hash(INFO_HASH))
    params.save_path = tempfile.mkdtemp()
    handle = session.add_torrent(params)
    handle.force_dht_announce()
    pump(nodes, 15)

    def query(node, tid, method, args):
        args = dict(args)
        args[b"id"] = node.id
        data = lt.bencode({b"t": tid, b"y": b"q", b"q": method, b"a": args})
        print("our-query %s %s %s" % (method.decode(), node.name, data.hex()))
        target = ("127.0.0.1", port) if node.family == socket.AF_INET else ("::1", port)
        node.sock.sendto(data, target)
        return pump(nodes, 1).get(tid)

    a, a6 = nodes[0], nodes[2]
    query(a, b"pi", b"ping", {})
    query(a, b"\x00\x00\x00\x01", b"find_node", {b"target": INFO_HASH})
    got = query(a, b"gp", b"get_peers", {b"info_hash": INFO_HASH}) or {}
    token = got.get(b"r", {}).get(b"token", b"")
    query(a, b"ap", b"announce_peer",
          {b"info_hash": INFO_HASH, b"port": 6881, b"token": token, b"implied_port": 1})
    query(a, b"g2", b"get_peers", {b"info_hash": INFO_HASH})
    query(a, b"un", b"frobnicate", {})
    query(a, b"bd", b"find_node", {})
    query(a6, b"f6", b"find_node", {b"target": INFO_HASH, b"want": [b"n4", b"n6"]})
    got = query(a6, b"p6", b"get_peers", {b"info_hash": INFO_HASH}) or {}
    token = got.get(b"r", {}).get(b"token", b"")
    query(a6, b"a6", b"announce_peer", {b"info_hash": INFO_HASH, b"port": 6881, b"token": token, b"seed": 1})
    query(a6, b"q6", b"get_peers", {b"info_hash": INFO_HASH})


if __name__ == "__main__":
    main()
