#!/usr/bin/python3
"""Capture the BEP 52 hash request libtorrent sends after fetching a v2-only magnet's metadata from us.

  capture.py PIECES PIECE_LENGTH [TAIL_BYTES]

Makes DIR/sample.bin of PIECES x PIECE_LENGTH bytes (minus PIECE_LENGTH - TAIL_BYTES for the last piece when given),
a v2-only torrent of it with libtorrent's create_torrent (v2_only), then runs a fake seeder on 127.0.0.1: it
answers libtorrent's handshake with the truncated v2 info-hash and the extension bit, sends an extended handshake
(ut_metadata 3, metadata_size), serves the info dict over ut_metadata, sends a full bitfield and unchoke, and prints
every message libtorrent sends after that as hex, together with the file's piece layer and root.
libtorrent is a leecher of magnet:?xt=urn:btmh:1220<v2 hex>, told to connect to the fake seeder.
"""
import hashlib
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time

import libtorrent as lt


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("closed after %d of %d" % (len(out), n))
        out += chunk
    return out


def frame(body):
    return struct.pack(">I", len(body)) + body


def h2(a, b):
    return hashlib.sha256(a + b).digest()


def full_tree(data):
    leaves = [hashlib.sha256(data[i:i + 16384]).digest() for i in range(0, len(data), 16384)]
    width = 1
    while width < len(leaves):
        width *= 2
    layers = [leaves + [bytes(32)] * (width - len(leaves))]
    while len(layers[-1]) > 1:
        below = layers[-1]
        layers.append([h2(below[i], below[i + 1]) for i in range(0, len(below), 2)])
    return layers


def serve(tree, base, index, count, proof):
    out = list(tree[base][index:index + count])
    k = count.bit_length() - 1
    for h in range(base + k, base + proof + 1):
        pos = index >> (h - base)
        out.append(tree[h][pos ^ 1])
    return out


ASK = [tuple(int(x) for x in a.split(",")) for a in os.environ.get("ASK", "").split(";") if a]


def ask_as_leecher(port, v2, root):
    """A second connection, with no pieces, so that libtorrent (now a seed) keeps it, asks ASK's hash requests."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(5)
    sock.sendall(b"\x13BitTorrent protocol" + bytes(8) + v2[:20] + b"-XX0001-leecher00001")
    print("libtorrent seed handshake", recv_exact(sock, 68).hex(), flush=True)
    time.sleep(0.5)
    for req in ASK:
        sock.sendall(frame(b"\x15" + root + struct.pack(">IIII", *req)))
    answers = 0
    while answers < len(ASK):
        try:
            (length,) = struct.unpack(">I", recv_exact(sock, 4))
            body = recv_exact(sock, length)
        except (socket.timeout, EOFError) as e:
            print("stopped:", e, flush=True)
            return
        if body and body[0] in (22, 23):
            answers += 1
            print("LIBTORRENT ANSWER", struct.unpack(">IIII", body[33:49]), frame(body).hex(), flush=True)
        elif body:
            print("seed sent id %d len %d" % (body[0], length), flush=True)


def main():
    pieces = int(sys.argv[1])
    piece_length = int(sys.argv[2])
    tail = int(sys.argv[3]) if len(sys.argv) > 3 else piece_length
    d = tempfile.mkdtemp()
    size = (pieces - 1) * piece_length + tail
    data = bytes((i * 31 + (i >> 9)) & 0xFF for i in range(size))
    with open(os.path.join(d, "sample.bin"), "wb") as f:
        f.write(data)
    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(d, "sample.bin"))
    creator = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v2_only)
    lt.set_piece_hashes(creator, d)
    torrent = creator.generate()
    info_bytes = lt.bencode(torrent[b"info"])
    v2 = hashlib.sha256(info_bytes).digest()
    layers = torrent.get(b"piece layers", {})
    root = torrent[b"info"][b"file tree"][b"sample.bin"][b""][b"pieces root"]
    print(json.dumps({"file_length": size, "piece_length": piece_length, "info_hash_v2": v2.hex(),
                      "pieces_root": root.hex(),
                      "piece_layer": [layers[k].hex() for k in layers]}), flush=True)

    tree = full_tree(data)
    assert tree[-1][0] == root
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    session = lt.session({
        "listen_interfaces": "127.0.0.1:0", "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "out_enc_policy": 2, "in_enc_policy": 2,
    })
    params = lt.parse_magnet_uri("magnet:?xt=urn:btmh:1220" + v2.hex())
    params.save_path = tempfile.mkdtemp()
    handle = session.add_torrent(params)
    handle.connect_peer(("127.0.0.1", port))

    server.settimeout(20)
    sock, _ = server.accept()
    sock.settimeout(10)
    hs = recv_exact(sock, 68)
    print("libtorrent handshake", hs.hex(), flush=True)
    reserved = bytearray(8)
    reserved[5] |= 0x10
    sock.sendall(b"\x13BitTorrent protocol" + bytes(reserved) + v2[:20] + b"-XX0001-123456789012")
    ext = b"d1:md11:ut_metadatai3ee13:metadata_sizei%de1:v4:fakee" % len(info_bytes)
    sock.sendall(frame(b"\x14\x00" + ext))
    their_ut_metadata = None
    sent_have = False
    asked = False
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            (length,) = struct.unpack(">I", recv_exact(sock, 4))
            body = recv_exact(sock, length)
        except socket.timeout:
            break
        if not body:
            continue
        mid = body[0]
        if mid == 20 and body[1] == 0:
            hsd = lt.bdecode(body[2:])
            their_ut_metadata = hsd[b"m"][b"ut_metadata"]
            print("extended handshake", body[2:], flush=True)
        elif mid == 20 and body[1] == 3:
            req = lt.bdecode(body[2:])
            print("ut_metadata", req, flush=True)
            if req[b"msg_type"] == 0:
                p = req[b"piece"]
                chunk = info_bytes[p * 16384:(p + 1) * 16384]
                msg = b"d8:msg_typei1e5:piecei%de10:total_sizei%dee" % (p, len(info_bytes))
                sock.sendall(frame(bytes([20, their_ut_metadata]) + msg + chunk))
                if not sent_have:
                    bits = bytearray((pieces + 7) // 8)
                    for i in range(pieces):
                        bits[i // 8] |= 0x80 >> (i % 8)
                    sock.sendall(frame(b"\x05" + bytes(bits)) + frame(b"\x01"))
                    time.sleep(0.5)
                    # libtorrent 2.0.8 looks for hashes to ask on `have`, not on `bitfield`
                    sock.sendall(frame(b"\x04" + struct.pack(">I", 0)))
                    sent_have = True
        else:
            print("message id %d len %d: %s" % (mid, length, frame(body).hex()), flush=True)
            if mid == 21:
                print("HASH REQUEST", frame(body).hex(), flush=True)
                root_, base, index, count, proof = struct.unpack(">32sIIII", body[1:])
                answer = serve(tree, base, index, count, proof)
                msg = frame(b"\x16" + body[1:] + b"".join(answer))
                print("HASHES SENT %d hashes: %s" % (len(answer), msg.hex()), flush=True)
                sock.sendall(msg)
                # prompt libtorrent to look for more hashes to ask
                for p in range(0, pieces, 512):
                    sock.sendall(frame(b"\x04" + struct.pack(">I", p)))
            if mid == 6:
                index, begin, length = struct.unpack(">III", body[1:])
                off = index * piece_length + begin
                sock.sendall(frame(b"\x07" + body[1:9] + data[off:off + length]))
        if mid in (22, 23):
            print("LIBTORRENT ANSWER", frame(body).hex(), flush=True)
        if handle.status().is_seeding and not asked:
            print("LIBTORRENT COMPLETE: every piece verified", flush=True)
            asked = True
            ask_as_leecher(session.listen_port(), v2, root)
            break
    sock.close()


main()
