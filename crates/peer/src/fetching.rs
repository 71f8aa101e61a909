//! A magnet link's first state in a session: its metadata fetched from the swarm ([`crate::magnet`]) under the
//! session's peer id, with the session's tracker sockets and the peers that dial the session for its info-hash;
//! then saved as `DIR/NAME.torrent` (so that a restart needs no peer) and made a torrent. What the fetch leaves
//! (its connections, the trackers told `started`, the peers it found) goes on into the download.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use metainfo::{Magnet, Torrent};
use tokio::sync::mpsc;

use crate::events::{Event, EventSink};
use crate::magnet::{FetchConfig, FetchContext, Fetched};
use crate::metadata::InfoCheck;
use crate::session::Shared;
use crate::torrent::{TorrentConfig, TorrentError};

/// Peers that dialled us for the link, queued for the fetch to answer; more wait in their own backlog.
const INCOMING_QUEUE: usize = 16;
/// Largest file under a torrent's name in DIR that is read to see whether it is this torrent already.
const MAX_TORRENT_FILE: u64 = 64 << 20;

/// The hashes a magnet link's swarm goes by before its metadata: the one it is named by, and a hybrid link's
/// truncated v2 hash.
pub(crate) fn hashes_of(magnet: &Magnet) -> impl Iterator<Item = [u8; 20]> + '_ {
    let v2 = magnet.info_hash_v2.map(|hash| hash.truncated().0).filter(|hash| *hash != magnet.info_hash.0);
    std::iter::once(magnet.info_hash.0).chain(v2)
}

/// Stops routing the link's incoming peers to the fetch, however the fetch ends.
struct Routed<'a> {
    shared: &'a Shared,
    hashes: Vec<[u8; 20]>,
}

impl Drop for Routed<'_> {
    fn drop(&mut self) {
        self.shared.served.stop_fetching(&self.hashes);
    }
}

/// Fetches the metadata of `magnet` (for as long as it takes: the caller drops the future to stop it), saves it in
/// `config.dir` and returns the torrent with what the fetch leaves for the download. `config.peers` are asked
/// besides the link's trackers, the DHT and local service discovery.
///
/// # Errors
///
/// Nowhere to look for it, or the metadata (checked against the info-hash) does not make a valid torrent.
pub(crate) async fn fetch_torrent(
    shared: &Shared,
    magnet: &Magnet,
    config: &TorrentConfig,
    events: &EventSink,
) -> Result<(Torrent, Fetched), TorrentError> {
    let session = &shared.config;
    let (incoming_tx, incoming) = mpsc::channel(INCOMING_QUEUE);
    let routed = Routed { shared, hashes: hashes_of(magnet).collect() };
    shared.served.start_fetching(&routed.hashes, &incoming_tx);
    drop(incoming_tx);
    let fetch_config = FetchConfig {
        port: shared.listen_addr.port(),
        local_ip: Some(session.listen.ip()).filter(|ip| !ip.is_unspecified()),
        trackers: magnet.trackers.clone(),
        peers: config.peers.clone(),
        tracker_timeouts: session.tracker_timeouts,
        dht: session.dht.clone(),
        lsd: session.lsd,
    };
    let context = FetchContext {
        peer_id: shared.peer_id,
        trackers: shared.trackers.clone(),
        events: events.clone(),
        incoming: Some(incoming),
        lsd: shared.lsd.clone(),
    };
    // Checked by SHA-1 against a v1 hash, by SHA-256 against a v2 one, by both for a hybrid link.
    let check = InfoCheck { v1: magnet.info_hash_v1().map(|hash| hash.0), v2: magnet.info_hash_v2.map(|hash| hash.0) };
    let fetched = crate::magnet::fetch_checked(magnet.info_hash.0, check, fetch_config, context)
        .await
        .map_err(|err| TorrentError::Metadata(err.to_string()))?;
    drop(routed);
    // A v2 or hybrid dictionary comes with the piece layers fetched after it (BEP 52 `piece layers`).
    let file = metainfo::torrent_file_with_layers(&fetched.info_bytes, &magnet.trackers, &fetched.piece_layers);
    let torrent = Torrent::from_bytes_any(&file).map_err(|err| {
        TorrentError::Metadata(format!("the metadata of {} is not a valid info dictionary: {err}", magnet.info_hash))
    })?;
    let saved = {
        let (dir, torrent) = (config.dir.clone(), torrent.clone());
        tokio::task::spawn_blocking(move || save_torrent(&dir, &torrent, &file))
            .await
            .unwrap_or_else(|err| Err(err.to_string()))
    };
    let saved = match saved {
        Ok(path) => {
            tracing::info!("saved the torrent as {}", path.display());
            Some(path)
        }
        Err(err) => {
            // The download goes on; a restart fetches the metadata again.
            tracing::warn!("could not save the torrent in {}: {err}", config.dir.display());
            None
        }
    };
    let _ = events.send(Event::MetadataReady { torrent: Arc::new(torrent.clone()), saved });
    Ok((torrent, fetched))
}

/// Writes `file` as `DIR/NAME.torrent`, or `DIR/NAME.HASH.torrent` when another torrent has that name; never over
/// an existing file.
fn save_torrent(dir: &Path, torrent: &Torrent, file: &[u8]) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("creating {}: {err}", dir.display()))?;
    let name = &torrent.info.name;
    for path in [dir.join(format!("{name}.torrent")), dir.join(format!("{name}.{}.torrent", torrent.info_hash))] {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut out) => {
                out.write_all(file).and_then(|()| out.sync_all()).map_err(|err| {
                    // Half a file would be read as someone else's torrent next time.
                    let _ = std::fs::remove_file(&path);
                    format!("writing {}: {err}", path.display())
                })?;
                return Ok(path);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                if holds(&path, torrent) {
                    return Ok(path);
                }
            }
            Err(err) => return Err(format!("writing {}: {err}", path.display())),
        }
    }
    Err(format!("{name}.torrent and {name}.{}.torrent both exist and hold other torrents", torrent.info_hash))
}

/// Whether the file at `path` is `torrent` already (a file too large to be a torrent is not).
fn holds(path: &Path, torrent: &Torrent) -> bool {
    let small = std::fs::metadata(path).is_ok_and(|meta| meta.len() <= MAX_TORRENT_FILE);
    small
        && std::fs::read(path)
            .ok()
            .and_then(|bytes| Torrent::from_bytes_any(&bytes).ok())
            .is_some_and(|saved| saved.info_hash == torrent.info_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent_named(name: &str, content: &[u8]) -> (Torrent, Vec<u8>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        let options = metainfo::CreateOptions { piece_length: Some(16 * 1024), ..metainfo::CreateOptions::default() };
        let file = metainfo::create_from_path(&path, &options, &|_| {}).expect("create").bytes;
        (Torrent::from_bytes_any(&file).expect("valid"), file)
    }

    #[test]
    fn a_saved_torrent_never_overwrites_another_of_the_same_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (first, first_file) = torrent_named("same", b"one content");
        let (second, second_file) = torrent_named("same", b"another content");
        let saved = save_torrent(dir.path(), &first, &first_file).expect("saved");
        assert_eq!(saved, dir.path().join("same.torrent"));
        assert_eq!(save_torrent(dir.path(), &first, &first_file), Ok(saved.clone()), "found again, not rewritten");
        let other = save_torrent(dir.path(), &second, &second_file).expect("saved beside it");
        assert_eq!(other, dir.path().join(format!("same.{}.torrent", second.info_hash)));
        assert_eq!(std::fs::read(&saved).expect("read"), first_file, "the first one is untouched");
        // A third one finds both of its names taken: the plain one by the first, its own by a file of the user's.
        let (third, third_file) = torrent_named("same", b"a third content");
        let users = dir.path().join(format!("same.{}.torrent", third.info_hash));
        std::fs::write(&users, b"not a torrent").expect("write");
        let refused = save_torrent(dir.path(), &third, &third_file).expect_err("both names are taken");
        assert!(refused.contains("hold other torrents"), "{refused}");
        assert_eq!(std::fs::read(&users).expect("read"), b"not a torrent", "never written over");
    }
}
