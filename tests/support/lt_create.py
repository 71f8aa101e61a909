#!/usr/bin/python3
"""Make a torrent with libtorrent's create_torrent, for the interop tests (v2 and hybrid; v1 with DHT nodes).

  lt_create.py v1|v2|hybrid PATH PIECE_LENGTH OUTPUT [--node HOST:PORT]...

PATH is a file or a folder; the torrent's name is its last component, as mktorrent names it. No creation date,
no creator, no trackers: the info dict holds only what the content and the piece length decide. `v1` uses the
`v1_only` flag, `v2` the `v2_only` flag; `hybrid` is create_torrent's default in libtorrent 2.0 (v1 and v2, with
BEP 47 pad files). Each `--node` is added with `add_node` (BEP 5 `nodes`); [ADDR]:PORT for IPv6.

Prints one JSON line: {"v1": HEX40 or null, "v2": HEX64 or null, "nodes": [[HOST, PORT], ...]}, as libtorrent
reads the torrent back. Exit 3 when libtorrent refuses the input. Runs only under /usr/bin/python3 (Debian's
bindings).
"""
import json
import os
import sys

import libtorrent as lt


FLAGS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}


def parse_node(text):
    """HOST:PORT or [ADDR]:PORT -> (host, port)."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def main():
    args = sys.argv[1:]
    options = args[4:]
    if len(args) < 4 or args[0] not in FLAGS or len(options) % 2 or any(flag != "--node" for flag in options[::2]):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path, piece_length, output = args[0], os.path.abspath(args[1]), int(args[2]), args[3]
    nodes = [parse_node(text) for text in options[1::2]]
    try:
        fs = lt.file_storage()
        lt.add_files(fs, path)
        creator = lt.create_torrent(fs, piece_length, flags=FLAGS[mode])
        for host, port in nodes:
            creator.add_node(host, port)
        lt.set_piece_hashes(creator, os.path.dirname(path))
        entry = creator.generate()
    except RuntimeError as err:
        print(f"libtorrent refused {path}: {err}", file=sys.stderr)
        return 3
    entry.pop(b"creation date", None)
    entry.pop(b"created by", None)
    data = lt.bencode(entry)
    with open(output, "wb") as out:
        out.write(data)
    info = lt.torrent_info(data)
    hashes = info.info_hashes()
    v1 = str(hashes.v1) if hashes.has_v1() else None
    v2 = str(hashes.v2) if hashes.has_v2() else None
    print(json.dumps({"v1": v1, "v2": v2, "nodes": [list(node) for node in info.nodes()]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
