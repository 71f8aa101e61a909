//! `peer PORT MAGNET`: the metadata before the download: fetched from the swarm and saved as `DIR/NAME.torrent`,
//! or found there from an earlier run.

use super::*;

/// Fetches a magnet link's metadata from its swarm (printing events as the session does), serving the peers that
/// dial `listener` meanwhile, then saves it as `NAME.torrent` in the download folder. `None` when Ctrl-C came
/// first.
pub(super) async fn fetch_metadata(
    args: &Args,
    magnet: &Magnet,
    config: FetchConfig,
    listener: Option<&tokio::net::TcpListener>,
) -> anyhow::Result<Option<(Torrent, Vec<(SocketAddr, Source)>)>> {
    let label = magnet.name.clone().unwrap_or_else(|| magnet.info_hash.to_string());
    let mut view = View::bare(args.json, &label, 0);
    view.info_hash = magnet.info_hash.to_string();
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    // Checked by SHA-1 against a v1 hash, by SHA-256 against a v2 one, by both for a hybrid link.
    let check = peer::metadata::InfoCheck {
        v1: magnet.info_hash_v1().map(|hash| hash.0),
        v2: magnet.info_hash_v2.map(|hash| hash.0),
    };
    let fetch = peer::magnet::fetch_checked(
        magnet.info_hash.0,
        check,
        peer::session::new_peer_id(),
        config,
        listener,
        events_tx,
    );
    tokio::pin!(fetch);
    let fetched = loop {
        tokio::select! {
            biased;
            Some(event) = events_rx.recv() => view.show(&event),
            fetched = &mut fetch => break fetched?,
            () = &mut shutdown => return Ok(None),
        }
    };
    while let Ok(event) = events_rx.try_recv() {
        view.show(&event);
    }
    // A v2 or hybrid dictionary comes with the piece layers fetched after it (BEP 52 `piece layers`).
    let file = metainfo::torrent_file_with_layers(&fetched.info_bytes, &magnet.trackers, &fetched.piece_layers);
    let torrent = Torrent::from_bytes_any(&file)
        .with_context(|| format!("the metadata of {} is not a valid info dictionary", magnet.info_hash))?;
    let path = save_torrent(&args.dir, &torrent, &file)?;
    if args.json {
        view.print_json(serde_json::json!({"event": "torrent_saved", "path": path.display().to_string()}));
    } else {
        tracing::info!("saved the torrent as {}", path.display());
    }
    Ok(Some((torrent, fetched.peers)))
}

/// Most directory entries looked at for a torrent saved by an earlier run.
const MAX_SAVED_LOOKUPS: usize = 1000;

/// A torrent of the magnet link's info-hash saved in `dir` by an earlier run (as `NAME.torrent`), so that a
/// restart needs no peer to start.
pub(super) fn saved_torrent(dir: &Path, magnet: &Magnet) -> anyhow::Result<Option<Torrent>> {
    let named = magnet.name.as_ref().map(|name| dir.join(format!("{name}.torrent")));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
    };
    let listed = entries
        .take(MAX_SAVED_LOOKUPS)
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "torrent"));
    for path in named.into_iter().chain(listed) {
        if !path.is_file() {
            continue;
        }
        // Someone else's file that does not parse is not ours to complain about.
        if let Ok((torrent, _)) = read_torrent_any(&path)
            && torrent.info_hash == magnet.info_hash
            && magnet.info_hash_v2.is_none_or(|v2| torrent.info_hash_v2() == Some(v2))
        {
            tracing::info!("using the metadata saved in {}", path.display());
            return Ok(Some(torrent));
        }
    }
    Ok(None)
}

/// Writes `file` as `DIR/NAME.torrent`, or `DIR/NAME.HASH.torrent` when another torrent has that name; never
/// over an existing file.
fn save_torrent(dir: &Path, torrent: &Torrent, file: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = &torrent.info.name;
    for path in [dir.join(format!("{name}.torrent")), dir.join(format!("{name}.{}.torrent", torrent.info_hash))] {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut out) => {
                out.write_all(file)
                    .and_then(|()| out.sync_all())
                    .with_context(|| format!("writing {}", path.display()))?;
                return Ok(path);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                if read_torrent_any(&path).is_ok_and(|(saved, _)| saved.info_hash == torrent.info_hash) {
                    return Ok(path);
                }
            }
            Err(err) => return Err(err).with_context(|| format!("writing {}", path.display())),
        }
    }
    bail!(
        "{name}.torrent and {name}.{}.torrent both exist in {} and hold other torrents",
        torrent.info_hash,
        dir.display()
    )
}
