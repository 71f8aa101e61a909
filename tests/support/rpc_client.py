"""Drives our RPC with the transmission-rpc library (PyPI), as automation tools do. Usage:
rpc_client.py PORT TORRENT_FILE ORIGINAL_FOLDER. Adds the torrent, waits for it to complete, stops and starts it, leaves its first
file out and takes it back, then removes it with its data; prints one JSON object of what it saw."""
import json
import sys
import time

from transmission_rpc import Client


def wait(client, torrent_id, done, seconds=30):
    deadline = time.time() + seconds
    while True:
        torrent = client.get_torrent(torrent_id)
        if done(torrent) or time.time() > deadline:
            return torrent
        time.sleep(0.2)


client = Client(host="127.0.0.1", port=int(sys.argv[1]), timeout=10)
session = client.get_session()
seen = {"version": session.version, "rpc_version": session.rpc_version, "download_dir": session.download_dir}
with open(sys.argv[2], "rb") as metainfo:
    added = client.add_torrent(metainfo)
seen["added"] = {"id": added.id, "name": added.name, "hash": added.hash_string}
torrent = wait(client, added.id, lambda t: t.percent_done == 1)
seen["done"] = {"percent": torrent.percent_done, "size": torrent.total_size, "dir": torrent.download_dir}
# Each downloaded file against its original, byte for byte.
seen["identical"] = {}
for entry in client.get_torrent(added.id).get_files():
    inside = entry.name.split("/", 1)[1]
    with open(f"{torrent.download_dir}/{entry.name}", "rb") as copy, open(f"{sys.argv[3]}/{inside}", "rb") as original:
        seen["identical"][entry.name] = copy.read() == original.read()
client.stop_torrent(added.id)
seen["stopped"] = wait(client, added.id, lambda t: t.status == "stopped").status
client.start_torrent(added.id)
seen["started"] = wait(client, added.id, lambda t: t.status != "stopped").status
client.change_torrent(added.id, files_unwanted=[0])
seen["unwanted"] = [f.selected for f in client.get_torrent(added.id).get_files()]
client.change_torrent(added.id, files_wanted=[0])
seen["wanted"] = [f.selected for f in client.get_torrent(added.id).get_files()]
seen["files"] = sorted(f.name for f in client.get_torrent(added.id).get_files())
client.remove_torrent(added.id, delete_data=True)
deadline = time.time() + 10
while client.get_torrents() and time.time() < deadline:
    time.sleep(0.2)
seen["left"] = len(client.get_torrents())
print(json.dumps(seen))
