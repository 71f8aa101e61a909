#!/usr/bin/env python3
"""Makes COUNT single-file torrents of SIZE random bytes each for bench/session.sh: DIR/data/tNNNNN.bin and
DIR/torrents/tNNNNN.torrent (16 KiB pieces, announcing to ANNOUNCE). Kept between runs: an existing set of the
same shape is reused."""
import hashlib
import os
import shutil
import sys


def bencode(value):
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, str):
        return bencode(value.encode())
    if isinstance(value, dict):
        items = sorted((key.encode() if isinstance(key, str) else key, item) for key, item in value.items())
        return b"d" + b"".join(bencode(key) + bencode(item) for key, item in items) + b"e"
    raise TypeError(type(value))


def main():
    folder, count, size, announce = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    data, torrents = os.path.join(folder, "data"), os.path.join(folder, "torrents")
    stamp = os.path.join(folder, "shape")
    shape = f"{count} {size} {announce}\n"
    if os.path.exists(stamp) and open(stamp).read() == shape:
        return
    for sub in (data, torrents):
        os.makedirs(sub, exist_ok=True)
        for name in os.listdir(sub):
            path = os.path.join(sub, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    piece = 16 * 1024
    for index in range(count):
        name = f"t{index:05d}.bin"
        content = os.urandom(size)
        with open(os.path.join(data, name), "wb") as out:
            out.write(content)
        pieces = b"".join(hashlib.sha1(content[at:at + piece]).digest() for at in range(0, size, piece))
        info = {"length": size, "name": name, "piece length": piece, "pieces": pieces}
        with open(os.path.join(torrents, f"t{index:05d}.torrent"), "wb") as out:
            out.write(bencode({"announce": announce, "info": info}))
    with open(stamp, "w") as out:
        out.write(shape)


if __name__ == "__main__":
    main()
