//! The session's hashing pool: every SHA-1 and SHA-256 job of every torrent (a downloaded piece's check, a v2
//! peer's hash request, a start-up check of the data) runs on the runtime's blocking threads, but no more of them
//! at once than the pool has threads, so a session downloading many torrents at once hashes on as many cores as
//! it was given and leaves the other blocking threads to the disk, as libtorrent's `hashing_threads` does.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Hash jobs of every torrent of a session, at most `threads` at once.
#[derive(Debug)]
pub struct HashPool {
    permits: Semaphore,
    threads: u32,
}

impl HashPool {
    /// A pool running up to `threads` jobs at once (at least 1).
    #[must_use]
    pub fn new(threads: usize) -> Arc<HashPool> {
        let threads = u32::try_from(threads.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        Arc::new(HashPool { permits: Semaphore::new(threads as usize), threads })
    }

    /// Threads it runs at most.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads as usize
    }

    /// Runs `job`, which hashes on `threads` threads of its own making (1 for most jobs), once that many of the
    /// pool's threads are free (all of them, if it asks for more).
    ///
    /// # Errors
    ///
    /// The job panicked, or the runtime is shutting down.
    pub async fn run<T: Send + 'static>(
        &self,
        threads: usize,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let wanted = u32::try_from(threads.max(1)).unwrap_or(u32::MAX).min(self.threads);
        // The pool is never closed: a permit always comes.
        let _turn = self.permits.acquire_many(wanted).await;
        tokio::task::spawn_blocking(job).await
    }
}

/// Runs `job` in `pool` if there is one, else straight on the runtime's blocking threads.
pub(crate) async fn run_in<T: Send + 'static>(
    pool: Option<&HashPool>,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    match pool {
        Some(pool) => pool.run(1, job).await,
        None => tokio::task::spawn_blocking(job).await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_the_pool_has_threads() {
        let pool = HashPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            jobs.spawn(async move {
                pool.run(1, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Work long enough for the other jobs to pile up behind the pool.
                    use sha1::Digest;
                    let mut digest = [0u8; 20];
                    for round in 0..20_000u32 {
                        let mut hasher = sha1::Sha1::new();
                        hasher.update(digest);
                        hasher.update(round.to_be_bytes());
                        digest = hasher.finalize().into();
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    digest
                })
                .await
                .expect("the job ran")
            });
        }
        let mut done = 0;
        while let Some(finished) = jobs.join_next().await {
            finished.expect("the task");
            done += 1;
        }
        assert_eq!(done, 8);
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} jobs ran at once in a pool of 2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_asking_for_more_threads_than_the_pool_has_takes_them_all_and_still_runs() {
        let pool = HashPool::new(2);
        let ran = pool.run(8, || 42).await.expect("the job ran");
        assert_eq!(ran, 42);
        assert_eq!(pool.permits.available_permits(), 2, "its threads came back");
    }
}
