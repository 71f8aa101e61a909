#!/usr/bin/python3
"""Captures the BEP 10 / 9 / 11 messages libtorrent sends, for the golden vectors in ../extension_handshake.rs,
../ut_metadata.rs, ../metadata_assembler.rs and ../ut_pex.rs. Not run by the tests; rerun it by hand to refresh them.

  capture_libtorrent_extensions.py [PIECES]     (4 gives a 149-byte info dict, 1000 a 20075-byte one: two pieces)

A libtorrent session on 127.0.0.1 gets a torrent of PIECES x 16 KiB whose piece hashes are SHA-1("piece 0") ...
(no data on disk: it only needs the metadata). Two raw connections handshake with the extension bit, send an
extended handshake (ut_metadata 3, ut_pex 4, listen ports 40001 and 40002), request every metadata piece plus
piece 99, and wait for libtorrent's first ut_pex message. Every extended message received is printed as hex.
Runs only under /usr/bin/python3 (Debian's python3-libtorrent; 2.0.8 for the vectors in the tests).
"""
import hashlib
import socket
import struct
import sys
import tempfile
import time
import warnings

import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)  # metadata_size() is what 2.0.8 offers

OUR_UT_METADATA = 3
OUR_UT_PEX = 4


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def frame(body):
    return struct.pack(">I", len(body)) + body


def pump(sock, until, seconds):
    """Prints extended messages until one satisfies `until` or `seconds` pass."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            (length,) = struct.unpack(">I", recv_exact(sock, 4))
            body = recv_exact(sock, length)
        except socket.timeout:
            return
        if body[:1] == b"\x14":
            print("extended id %d: %s" % (body[1], body[2:].hex()))
            if until(body[1]):
                return


def main():
    pieces = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    files = lt.file_storage()
    files.add_file("sample.bin", pieces * 16384)
    creator = lt.create_torrent(files, 16384)
    for i in range(pieces):
        creator.set_hash(i, hashlib.sha1(b"piece %d" % i).digest())
    info = lt.torrent_info(lt.bencode(creator.generate()))
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0", "outgoing_interfaces": "127.0.0.1",
        "allow_multiple_connections_per_ip": True,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
    })
    session.add_torrent({"ti": info, "save_path": tempfile.mkdtemp()})
    time.sleep(1.0)
    info_hash = info.info_hash().to_bytes()
    print("info-hash", info_hash.hex(), "metadata bytes", info.metadata_size())

    conns = []
    for k, listen_port in enumerate((40001, 40002)):
        sock = socket.create_connection(("127.0.0.1", session.listen_port()))
        sock.settimeout(15)
        reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0])
        sock.sendall(b"\x13BitTorrent protocol" + reserved + info_hash + (b"-XX0001-%012d" % k))
        print("reserved bytes", recv_exact(sock, 68)[20:28].hex())
        ours = b"d1:md11:ut_metadatai%de6:ut_pexi%dee1:pi%dee" % (OUR_UT_METADATA, OUR_UT_PEX, listen_port)
        sock.sendall(frame(b"\x14\x00" + ours))
        pump(sock, lambda ext: ext == 0, 5)
        conns.append(sock)

    first = conns[0]
    their_ut_metadata = 2  # libtorrent's fixed id, also in its handshake above
    for piece in list(range((info.metadata_size() + 16383) // 16384)) + [99]:
        first.sendall(frame(bytes([20, their_ut_metadata]) + b"d8:msg_typei0e5:piecei%dee" % piece))
        pump(first, lambda ext: ext == OUR_UT_METADATA, 5)
    pump(first, lambda ext: ext == OUR_UT_PEX, 10)


if __name__ == "__main__":
    main()
