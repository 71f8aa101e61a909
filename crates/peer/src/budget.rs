//! The connections every torrent of a session may hold together (`--max-connections`), beside each torrent's own
//! cap (`--max-peers`): a thousand torrents of fifty peers each would otherwise open fifty thousand sockets, far
//! past the process's file descriptors. libtorrent (`connections_limit`) and transmission (`peer-limit-global`)
//! both default to 200.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many connections the session's torrents hold, and how many they may.
#[derive(Debug)]
pub struct ConnectionBudget {
    limit: usize,
    used: AtomicUsize,
}

impl ConnectionBudget {
    #[must_use]
    pub fn new(limit: usize) -> Arc<ConnectionBudget> {
        Arc::new(ConnectionBudget { limit, used: AtomicUsize::new(0) })
    }

    /// Connections held (dials and handshakes that passed included).
    #[must_use]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Takes one connection if the limit allows.
    fn take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| (used < self.limit).then_some(used + 1))
            .is_ok()
    }

    fn give_back(&self, count: usize) {
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(count)));
    }
}

/// The addresses one torrent is connected or connecting to, each counted against the session's budget (if any)
/// for as long as it is here; dropping the set gives them all back.
#[derive(Debug, Default)]
pub(crate) struct Addresses {
    set: HashSet<SocketAddr>,
    budget: Option<Arc<ConnectionBudget>>,
}

/// Why an address was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotAdded {
    /// It is here already.
    Present,
    /// The session's connections are all taken.
    NoBudget,
}

impl Addresses {
    pub(crate) fn new(budget: Option<Arc<ConnectionBudget>>) -> Addresses {
        Addresses { set: HashSet::new(), budget }
    }

    pub(crate) fn insert(&mut self, addr: SocketAddr) -> Result<(), NotAdded> {
        if self.set.contains(&addr) {
            return Err(NotAdded::Present);
        }
        if let Some(budget) = &self.budget
            && !budget.take()
        {
            return Err(NotAdded::NoBudget);
        }
        self.set.insert(addr);
        Ok(())
    }

    pub(crate) fn remove(&mut self, addr: &SocketAddr) {
        if self.set.remove(addr)
            && let Some(budget) = &self.budget
        {
            budget.give_back(1);
        }
    }

    /// Whether the session's budget has a connection left (always, without one).
    pub(crate) fn budget_left(&self) -> bool {
        self.budget.as_ref().is_none_or(|budget| budget.used() < budget.limit)
    }

    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &SocketAddr> {
        self.set.iter()
    }
}

impl Drop for Addresses {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.set.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn torrents_share_the_budget_and_give_it_back_on_removal_and_when_dropped() {
        let budget = ConnectionBudget::new(3);
        let mut first = Addresses::new(Some(budget.clone()));
        let mut second = Addresses::new(Some(budget.clone()));
        assert_eq!(first.insert(addr(1)), Ok(()));
        assert_eq!(first.insert(addr(1)), Err(NotAdded::Present), "an address once");
        assert_eq!(first.insert(addr(2)), Ok(()));
        assert_eq!(second.insert(addr(3)), Ok(()));
        assert_eq!(budget.used(), 3);
        assert!(!second.budget_left());
        assert_eq!(second.insert(addr(4)), Err(NotAdded::NoBudget), "the session's limit holds across torrents");
        first.remove(&addr(1));
        first.remove(&addr(1));
        assert_eq!(budget.used(), 2, "a second removal of one address gives nothing back twice");
        assert_eq!(second.insert(addr(4)), Ok(()));
        drop(second);
        assert_eq!(budget.used(), 1, "a torrent that goes gives back all it held");
        assert_eq!(first.len(), 1);
    }

    #[test]
    fn without_a_budget_only_the_set_counts() {
        let mut alone = Addresses::new(None);
        for port in 0..1000 {
            assert_eq!(alone.insert(addr(port)), Ok(()));
        }
        assert!(alone.budget_left());
        assert_eq!(alone.len(), 1000);
    }
}
