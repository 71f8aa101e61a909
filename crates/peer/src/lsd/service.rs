//! Local service discovery for a whole session: one socket per family, one cookie, one read budget, announcing
//! every torrent registered with it and handing each announce heard to the torrents it names. Torrents register
//! while they run (a magnet link while it fetches its metadata too) and leave by dropping their [`Registration`].
//!
//! Each torrent keeps its own view ([`Neighbours`]: its schedule, its answers to newcomers, its caps per sender),
//! so a session of many torrents behaves towards each neighbour as one torrent would; what is shared is the I/O.
//! Torrents that are due together go out in one datagram, up to [`MAX_INFO_HASHES`] info-hashes each (BEP 14
//! allows several `Infohash` headers; libtorrent reads them all).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

use super::message::{Announce, MAX_DATAGRAM_LEN, MAX_INFO_HASHES};
use super::neighbours::{Ignored, Neighbours, ReadBudget, random_cookie};
use super::{Channel, Lsd, READ_ERROR_PAUSE};

/// What a registered torrent is told: a neighbour that announces it.
type Found = Arc<dyn Fn(SocketAddr) + Send + Sync>;

struct Registered {
    id: u64,
    found: Found,
    /// One view per family, as the sockets are apart.
    views: [Neighbours; 2],
}

struct Registry {
    torrents: HashMap<[u8; 20], Registered>,
    next_id: u64,
}

struct Shared {
    registry: Mutex<Registry>,
    cookie: String,
    /// Our TCP port, announced for every torrent.
    port: u16,
    /// A torrent came: announce it now.
    registered: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The session's discovery: its sockets' tasks run until it is dropped.
pub struct LsdService {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LsdService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsdService").field("torrents", &self.shared.lock().torrents.len()).finish()
    }
}

impl Drop for LsdService {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A torrent's place in the session's discovery; dropping it takes the torrent out.
pub struct Registration {
    shared: Arc<Shared>,
    info_hash: [u8; 20],
    id: u64,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("id", &self.id).finish()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = self.shared.lock();
        if registry.torrents.get(&self.info_hash).is_some_and(|torrent| torrent.id == self.id) {
            registry.torrents.remove(&self.info_hash);
        }
    }
}

impl LsdService {
    /// Starts discovery for a session listening on `listen` (TCP `port`), on the families that apply (see
    /// [`super::families`]); `Ok(None)` when none does. Call within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// No family could start (see [`Lsd::start`]).
    pub fn start(listen: IpAddr, port: u16) -> io::Result<Option<LsdService>> {
        let Some(Lsd { v4, v6 }) = Lsd::start(listen)? else { return Ok(None) };
        let shared = Arc::new(Shared {
            registry: Mutex::new(Registry { torrents: HashMap::new(), next_id: 0 }),
            cookie: random_cookie(),
            port,
            registered: Notify::new(),
        });
        let tasks = [(0, v4), (1, v6)]
            .into_iter()
            .filter_map(|(family, channel)| channel.map(|channel| (family, channel)))
            .map(|(family, channel)| tokio::spawn(serve(shared.clone(), family, channel)))
            .collect();
        Ok(Some(LsdService { shared, tasks }))
    }

    /// Announces `info_hash` from now on and hands `found` every neighbour that announces it, until the
    /// registration is dropped. A torrent registered twice keeps the later registration.
    pub fn register(&self, info_hash: [u8; 20], found: impl Fn(SocketAddr) + Send + Sync + 'static) -> Registration {
        register(&self.shared, info_hash, Arc::new(found))
    }

    /// Torrents registered now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shared.lock().torrents.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn register(shared: &Arc<Shared>, info_hash: [u8; 20], found: Found) -> Registration {
    let now = Instant::now();
    // Our own address, when bound to one, is left out where the datagram is heard.
    let view = || Neighbours::with_cookie(info_hash, shared.cookie.clone(), None, now);
    let id = {
        let mut registry = shared.lock();
        let id = registry.next_id;
        registry.next_id += 1;
        registry.torrents.insert(info_hash, Registered { id, found, views: [view(), view()] });
        id
    };
    shared.registered.notify_waiters();
    Registration { shared: shared.clone(), info_hash, id }
}

/// One family's socket: announces what is due, reads what comes (within the read budget), until aborted.
async fn serve(shared: Arc<Shared>, family: usize, channel: Channel) {
    let own = channel.own.map(|ip| SocketAddr::new(ip, shared.port));
    let mut budget = ReadBudget::new(Instant::now());
    let mut buffer = [0u8; MAX_DATAGRAM_LEN + 1];
    let mut send_warned = false;
    loop {
        let registered = shared.registered.notified();
        tokio::pin!(registered);
        registered.as_mut().enable();
        let (due, next) = due_announces(&shared, family, Instant::now());
        for batch in due.chunks(MAX_INFO_HASHES) {
            let announce = Announce { port: shared.port, info_hashes: batch.to_vec(), cookie: Some(&shared.cookie) };
            let Ok(datagram) = announce.encode(channel.group) else { continue };
            match channel.socket.send_to(&datagram, channel.group).await {
                Ok(_) => tracing::debug!(torrents = batch.len(), group = %channel.group, "LSD announce sent"),
                Err(err) if !send_warned => {
                    send_warned = true;
                    tracing::warn!(
                        "local service discovery cannot announce to {} (tried again later): {err}",
                        channel.group
                    );
                }
                Err(err) => tracing::debug!(group = %channel.group, "LSD announce failed: {err}"),
            }
        }
        if !due.is_empty() {
            // Sent (or tried): each torrent's round is done.
            let now = Instant::now();
            let mut registry = shared.lock();
            for hash in &due {
                if let Some(torrent) = registry.torrents.get_mut(hash) {
                    torrent.views[family].announced(now);
                }
            }
            continue;
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = registered => {}
            received = channel.socket.recv_from(&mut buffer) => {
                match received {
                    Ok((len, from)) => hear(&shared, family, own, buffer.get(..len).unwrap_or_default(), from),
                    Err(err) => {
                        tracing::debug!("LSD read failed: {err}");
                        tokio::time::sleep(READ_ERROR_PAUSE).await;
                    }
                }
                // The next read waits for a token: a flood stays in the kernel's buffer, which drops the rest.
                while let Err(wait) = budget.admit(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// The torrents whose announce on `family` is due at `now`, and when the next one is due otherwise.
fn due_announces(shared: &Shared, family: usize, now: Instant) -> (Vec<[u8; 20]>, Option<Instant>) {
    let registry = shared.lock();
    let mut due = Vec::new();
    let mut next: Option<Instant> = None;
    for (hash, torrent) in &registry.torrents {
        let at = torrent.views[family].next_announce();
        if at <= now {
            due.push(*hash);
        } else {
            next = Some(next.map_or(at, |next| next.min(at)));
        }
    }
    (due, next)
}

/// Hands a datagram to every registered torrent it announces; each hands on the peer its view accepts.
fn hear(shared: &Shared, family: usize, own: Option<SocketAddr>, datagram: &[u8], from: SocketAddr) {
    let Ok(announce) = Announce::parse(datagram) else {
        tracing::trace!(%from, "LSD datagram ignored: not an announce");
        return;
    };
    if announce.cookie == Some(shared.cookie.as_str()) {
        return;
    }
    let mut found = Vec::new();
    {
        let mut registry = shared.lock();
        for hash in &announce.info_hashes {
            let Some(torrent) = registry.torrents.get_mut(hash) else { continue };
            match torrent.views[family].receive(datagram, from, Instant::now()) {
                Ok(peer) if Some(peer) != own => found.push((torrent.found.clone(), peer)),
                Ok(_) | Err(Ignored::Ours | Ignored::OtherTorrent) => {}
                Err(why) => tracing::trace!(%from, "LSD datagram ignored: {why}"),
            }
        }
    }
    // Outside the registry's lock: the swarm takes its own.
    for (hand_on, peer) in found {
        tracing::debug!(%from, %peer, "LSD: a neighbour announced a torrent of ours");
        hand_on(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            registry: Mutex::new(Registry { torrents: HashMap::new(), next_id: 0 }),
            cookie: "session".into(),
            port: 6881,
            registered: Notify::new(),
        })
    }

    fn heard() -> (Found, Arc<Mutex<Vec<SocketAddr>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        (Arc::new(move |addr| into.lock().expect("lock").push(addr)), seen)
    }

    #[test]
    fn torrents_due_together_share_datagrams_and_each_keeps_its_schedule() {
        let shared = shared();
        let registrations: Vec<Registration> = (0..20u8).map(|n| register(&shared, [n + 1; 20], heard().0)).collect();
        let now = Instant::now();
        let (due, _) = due_announces(&shared, 0, now);
        assert_eq!(due.len(), 20, "every new torrent announces at once");
        assert_eq!(due.chunks(MAX_INFO_HASHES).count(), 2, "in two datagrams");
        for hash in &due {
            shared.lock().torrents.get_mut(hash).expect("registered").views[0].announced(now);
        }
        let (due, next) = due_announces(&shared, 0, now);
        assert!(due.is_empty() && next.is_some_and(|next| next > now), "then each waits for its next round");
        assert_eq!(due_announces(&shared, 1, now).0.len(), 20, "the other family keeps its own schedule");
        drop(registrations);
        assert!(shared.lock().torrents.is_empty(), "dropping a registration takes the torrent out");
    }

    #[test]
    fn an_announce_reaches_each_torrent_it_names_and_ours_come_back_to_nobody() {
        let shared = shared();
        let (found_a, seen_a) = heard();
        let (found_b, seen_b) = heard();
        let _a = register(&shared, [0xaa; 20], found_a);
        let _b = register(&shared, [0xbb; 20], found_b);
        let group = SocketAddr::from(([239, 192, 152, 143], 6771));
        let from = SocketAddr::from(([192, 168, 1, 20], 6771));
        let both = Announce { port: 7000, info_hashes: vec![[0xaa; 20], [0xbb; 20], [0xcc; 20]], cookie: Some("x") };
        hear(&shared, 0, None, &both.encode(group).expect("encode"), from);
        let peer = SocketAddr::from(([192, 168, 1, 20], 7000));
        assert_eq!(
            (seen_a.lock().expect("lock").clone(), seen_b.lock().expect("lock").clone()),
            (vec![peer], vec![peer])
        );
        // Our own announce, come back by multicast loopback: nobody hears it.
        let ours = Announce { port: 6881, info_hashes: vec![[0xaa; 20]], cookie: Some("session") };
        hear(&shared, 0, None, &ours.encode(group).expect("encode"), from);
        // One naming only a torrent we do not have, and garbage: nothing.
        let other = Announce { port: 7001, info_hashes: vec![[0xcc; 20]], cookie: None };
        hear(&shared, 0, None, &other.encode(group).expect("encode"), from);
        hear(&shared, 0, None, b"not an announce", from);
        assert_eq!(seen_a.lock().expect("lock").len(), 1);
        assert_eq!(seen_b.lock().expect("lock").len(), 1);
    }
}
