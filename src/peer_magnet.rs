//! `peer PORT MAGNET`: a magnet link's metadata saved as `DIR/NAME.torrent` by an earlier run (the session fetches
//! and saves it otherwise).

use super::*;

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
