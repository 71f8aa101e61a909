#!/usr/bin/python3
"""Make a v2-only or hybrid torrent with libtorrent's create_torrent, for the v2 interop tests.

  lt_create.py v2|hybrid PATH PIECE_LENGTH OUTPUT

PATH is a file or a folder; the torrent's name is its last component, as mktorrent names it. No creation date,
no creator, no trackers: the info dict holds only what the content and the piece length decide. `v2` uses the
`v2_only` flag; `hybrid` is create_torrent's default in libtorrent 2.0 (v1 and v2, with BEP 47 pad files).

Prints one JSON line: {"v1": HEX40 or null, "v2": HEX64 or null}, as libtorrent reads the torrent back.
Exit 3 when libtorrent refuses the input. Runs only under /usr/bin/python3 (Debian's bindings).
"""
import json
import os
import sys

import libtorrent as lt


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("v2", "hybrid"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path, piece_length, output = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    flags = lt.create_torrent.v2_only if mode == "v2" else 0
    try:
        fs = lt.file_storage()
        lt.add_files(fs, path)
        creator = lt.create_torrent(fs, piece_length, flags=flags)
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
    hashes = lt.torrent_info(data).info_hashes()
    v1 = str(hashes.v1) if hashes.has_v1() else None
    v2 = str(hashes.v2) if hashes.has_v2() else None
    print(json.dumps({"v1": v1, "v2": v2}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
