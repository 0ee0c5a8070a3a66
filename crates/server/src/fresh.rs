//! A bounded cache of values read from the store and reused for a while, with three
//! promises that the decision path relies on:
//!
//! - an entry lives `ttl`; under steady use one asker is told, once the entry is half
//!   that age, to reload it in the background (`Got::refresh` → [`FreshCache::refresh`]),
//!   so askers never all find it expired in the same instant and read the store together;
//! - a missing or expired entry is read by one asker while the others of that key wait
//!   for it (quick_cache's entry guard);
//! - a value whose read began before a [`FreshCache::forget`] of its key is never cached
//!   after it, so a change made through this node is seen at once.
//!
//! Not here: what the values are or how they are read (the caller passes the read, as a
//! future that has not started).

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::Equivalent;
use quick_cache::sync::{Cache, EntryAction, EntryResult};

/// Forget counters are kept per stripe of keys: forgetting one key rarely holds back
/// another's read, and the counters take fixed space.
const STRIPES: usize = 64;

pub struct FreshCache<K, V> {
    entries: Cache<K, Arc<Entry<V>>>,
    ttl: Duration,
    /// Held while a read value is cached, so a forget cannot fall in between.
    forgets: Mutex<[u64; STRIPES]>,
}

struct Entry<V> {
    /// When its read began: the value is no newer than this.
    loaded: Instant,
    /// An asker was told to reload it (at most one per entry).
    refreshing: AtomicBool,
    value: Arc<V>,
}

/// What [`FreshCache::get`] found.
pub struct Got<V> {
    pub value: Arc<V>,
    /// The value was read by this call.
    pub loaded: bool,
    /// This asker should reload the entry in the background with [`FreshCache::refresh`].
    pub refresh: bool,
}

impl<K: Eq + Hash + Clone, V> FreshCache<K, V> {
    /// A cache of at most `capacity` entries; a zero `ttl` caches nothing.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Cache::new(capacity.max(1)),
            ttl,
            forgets: Mutex::new([0; STRIPES]),
        }
    }

    /// The value for `key`: the cached one while it is younger than `ttl`, else what
    /// `read()` returns (read by one asker at a time; the others wait for it). The read
    /// is only made when it is needed: a hit costs a lookup.
    pub async fn get<Q, E, F>(&self, key: &Q, read: impl FnOnce() -> F) -> Result<Got<V>, E>
    where
        F: Future<Output = Result<V, E>>,
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        if self.ttl.is_zero() {
            let value = Arc::new(read().await?);
            return Ok(Got {
                value,
                loaded: true,
                refresh: false,
            });
        }
        if let Some(e) = self.entries.get(key) {
            let age = e.loaded.elapsed();
            if age < self.ttl {
                let refresh = age >= self.ttl / 2 && !e.refreshing.swap(true, Ordering::Relaxed);
                return Ok(Got {
                    value: e.value.clone(),
                    loaded: false,
                    refresh,
                });
            }
        }
        let ttl = self.ttl;
        let guard = match self
            .entries
            .entry_async(key, |_, e| {
                if e.loaded.elapsed() < ttl {
                    EntryAction::Retain(e.value.clone())
                } else {
                    EntryAction::ReplaceWithGuard
                }
            })
            .await
        {
            // Another asker read it meanwhile.
            EntryResult::Retained(value) => {
                return Ok(Got {
                    value,
                    loaded: false,
                    refresh: false,
                });
            }
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => guard,
            EntryResult::Removed(..) | EntryResult::Timeout => {
                unreachable!("no removal is asked and there is no timeout")
            }
        };
        // On an error the guard is dropped unfilled and a waiting asker reads for itself.
        let (seen, started) = (self.forgets_of(key), Instant::now());
        let value = Arc::new(read().await?);
        self.keep(key, seen, || {
            let _ = guard.insert(Entry::new(started, value.clone()));
        });
        Ok(Got {
            value,
            loaded: true,
            refresh: false,
        })
    }

    /// Reads `key` anew, whatever is cached, and caches what it read.
    pub async fn reload<Q, E>(
        &self,
        key: &Q,
        read: impl Future<Output = Result<V, E>>,
    ) -> Result<Arc<V>, E>
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        let (seen, started) = (self.forgets_of(key), Instant::now());
        let value = Arc::new(read.await?);
        if !self.ttl.is_zero() {
            self.keep(key, seen, || {
                self.entries
                    .insert(key.to_owned(), Entry::new(started, value.clone()))
            });
        }
        Ok(value)
    }

    /// The background reload a `Got::refresh` asks for. A failed read drops the entry,
    /// so the next asker reads the store and answers; a read that a forget overtook
    /// leaves the old entry to be refreshed again.
    pub async fn refresh<Q, E>(&self, key: &Q, read: impl Future<Output = Result<V, E>>)
    where
        Q: Hash + Equivalent<K> + ToOwned<Owned = K> + ?Sized,
    {
        let (seen, started) = (self.forgets_of(key), Instant::now());
        match read.await {
            Ok(value) => {
                let value = Arc::new(value);
                let kept = self.keep(key, seen, || {
                    self.entries
                        .insert(key.to_owned(), Entry::new(started, value))
                });
                if !kept && let Some(old) = self.entries.peek(key) {
                    old.refreshing.store(false, Ordering::Relaxed);
                }
            }
            Err(_) => {
                self.entries.remove(key);
            }
        }
    }

    /// Drops the cached value; a read that began before this is not cached after it.
    pub fn forget<Q>(&self, key: &Q)
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let mut forgets = self.forgets.lock().expect("forgets lock");
        forgets[stripe(key)] += 1;
        self.entries.remove(key);
    }

    fn forgets_of<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.forgets.lock().expect("forgets lock")[stripe(key)]
    }

    /// Runs `keep` (which caches a value read since forget count `seen`) unless the
    /// key's stripe was forgotten since; says whether it did.
    fn keep<Q: Hash + ?Sized>(&self, key: &Q, seen: u64, keep: impl FnOnce()) -> bool {
        let forgets = self.forgets.lock().expect("forgets lock");
        let unchanged = forgets[stripe(key)] == seen;
        if unchanged {
            keep();
        }
        unchanged
    }
}

impl<V> Entry<V> {
    fn new(loaded: Instant, value: Arc<V>) -> Arc<Self> {
        Arc::new(Self {
            loaded,
            refreshing: AtomicBool::new(false),
            value,
        })
    }
}

fn stripe<Q: Hash + ?Sized>(key: &Q) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn cache() -> Arc<FreshCache<String, usize>> {
        Arc::new(FreshCache::new(16, Duration::from_secs(60)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_askers_of_a_cold_key_read_it_once() {
        let cache = cache();
        let reads = Arc::new(AtomicUsize::new(0));
        let askers: Vec<_> = (0..32)
            .map(|_| {
                let (cache, reads) = (cache.clone(), reads.clone());
                tokio::spawn(async move {
                    let got = cache
                        .get("k", || async {
                            reads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(7)
                        })
                        .await
                        .unwrap();
                    *got.value
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(asker.await.unwrap(), 7);
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_read_overtaken_by_a_forget_is_not_cached() {
        let cache = cache();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (began, reading_began) = tokio::sync::oneshot::channel::<()>();
        let reading = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get("k", || async {
                        began.send(()).unwrap();
                        wait.await.unwrap();
                        Ok::<_, ()>(1)
                    })
                    .await
                    .unwrap()
                    .loaded
            })
        };
        reading_began.await.unwrap();
        cache.forget("k");
        go.send(()).unwrap();
        assert!(reading.await.unwrap());
        // The value read before the forget was handed to its asker, not kept.
        let next = cache.get("k", || async { Ok::<_, ()>(2) }).await.unwrap();
        assert!(next.loaded);
        assert_eq!(*next.value, 2);
        let again = cache.get("k", || async { Ok::<_, ()>(3) }).await.unwrap();
        assert!(!again.loaded);
        assert_eq!(*again.value, 2);
    }

    #[tokio::test]
    async fn a_zero_ttl_caches_nothing_and_reload_replaces() {
        let none: FreshCache<String, usize> = FreshCache::new(16, Duration::ZERO);
        none.get("k", || async { Ok::<_, ()>(1) }).await.unwrap();
        assert!(
            none.get("k", || async { Ok::<_, ()>(2) })
                .await
                .unwrap()
                .loaded
        );

        let cache = cache();
        cache.get("k", || async { Ok::<_, ()>(1) }).await.unwrap();
        cache.reload("k", async { Ok::<_, ()>(2) }).await.unwrap();
        assert_eq!(
            *cache
                .get("k", || async { Ok::<_, ()>(3) })
                .await
                .unwrap()
                .value,
            2
        );
        // A failed background reload drops the entry.
        cache.refresh("k", async { Err::<usize, _>(()) }).await;
        assert!(
            cache
                .get("k", || async { Ok::<_, ()>(4) })
                .await
                .unwrap()
                .loaded
        );
    }
}
