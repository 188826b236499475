//! Parsed manifests of the versions being read right now. A large artifact's file URLs come a page at a time, and
//! parsing its manifest for each page made the whole download quadratic; keeping every manifest ever read would
//! grow without bound. So the cache is bounded three ways: a few manifests, a total of entries, and an idle time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use artifact_core::Manifest;

/// How many parsed manifests are kept.
const MAX_MANIFESTS: usize = 8;
/// How many entries the kept manifests may hold together (a parsed entry takes a few hundred bytes); one larger
/// manifest is still kept alone, or paging through it would parse it per page.
const MAX_ENTRIES: usize = 1_000_000;
/// A manifest unused this long is dropped: the download it served is over.
pub(crate) const IDLE: Duration = Duration::from_secs(30);

/// See the module documentation.
pub(crate) struct ManifestCache {
    epoch: Instant,
    kept: dashmap::DashMap<String, Kept>,
    max_manifests: usize,
    max_entries: usize,
}

struct Kept {
    manifest: Arc<Manifest>,
    /// Milliseconds since `epoch` of the last use.
    last_used: AtomicU64,
}

impl ManifestCache {
    pub(crate) fn new() -> Self {
        Self::with_bounds(MAX_MANIFESTS, MAX_ENTRIES)
    }

    fn with_bounds(max_manifests: usize, max_entries: usize) -> Self {
        ManifestCache { epoch: Instant::now(), kept: dashmap::DashMap::new(), max_manifests, max_entries }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The manifest of version `id`, from the cache or from `load`.
    pub(crate) fn get_or_load<E>(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<Manifest, E>,
    ) -> Result<Arc<Manifest>, E> {
        let now = self.now();
        if let Some(kept) = self.kept.get(id) {
            kept.last_used.store(now, Ordering::Relaxed);
            return Ok(kept.manifest.clone());
        }
        let manifest = Arc::new(load()?);
        self.forget_idle();
        // Any ones go: the cache serves the few artifacts being downloaded right now.
        loop {
            let entries: usize = self.kept.iter().map(|k| k.manifest.len()).sum();
            let full = self.kept.len() >= self.max_manifests || entries + manifest.len() > self.max_entries;
            let victim = if full { self.kept.iter().next().map(|k| k.key().clone()) } else { None };
            match victim {
                Some(victim) => self.kept.remove(&victim),
                None => break,
            };
        }
        self.kept.insert(id.to_owned(), Kept { manifest: manifest.clone(), last_used: AtomicU64::new(now) });
        Ok(manifest)
    }

    /// Drops the manifests unused for [`IDLE`].
    pub(crate) fn forget_idle(&self) {
        let idle = u64::try_from(IDLE.as_millis()).unwrap_or(u64::MAX);
        let now = self.now();
        let mut dropped_entries = 0;
        self.kept.retain(|_, kept| {
            let keep = now.saturating_sub(kept.last_used.load(Ordering::Relaxed)) < idle;
            if !keep && Arc::strong_count(&kept.manifest) == 1 {
                dropped_entries += kept.manifest.len();
            }
            keep
        });
        crate::memory::after_freeing(dropped_entries);
    }

    #[cfg(test)]
    fn kept_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.kept.iter().map(|k| k.key().clone()).collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use artifact_core::{LogicalPath, ManifestEntry};

    use super::*;

    fn manifest(entries: usize) -> Manifest {
        let mut manifest = Manifest::new();
        for i in 0..entries {
            let entry = ManifestEntry { digest: format!("d{i}"), size: Some(1), ..Default::default() };
            manifest.add_entry(LogicalPath::new(&format!("f{i}")).unwrap(), entry, false).unwrap();
        }
        manifest
    }

    #[test]
    fn a_kept_manifest_is_parsed_once_and_the_cache_stays_within_its_bounds() {
        let cache = ManifestCache::with_bounds(3, 10);
        let mut loads = 0;
        for _ in 0..3 {
            cache
                .get_or_load("a", || {
                    loads += 1;
                    Ok::<_, ()>(manifest(2))
                })
                .unwrap();
        }
        assert_eq!(loads, 1);
        for i in 0..20 {
            cache.get_or_load(&format!("v{i:02}"), || Ok::<_, ()>(manifest(1))).unwrap();
        }
        assert_eq!(cache.kept_ids().len(), 3);
        // Entries count too: with eight more, at most two of one entry each may stay (which go is arbitrary).
        cache.get_or_load("eight", || Ok::<_, ()>(manifest(8))).unwrap();
        let kept = cache.kept_ids();
        let entries: usize = cache.kept.iter().map(|k| k.manifest.len()).sum();
        assert!(kept.contains(&"eight".to_owned()) && kept.len() <= 3 && entries <= 10, "{kept:?}: {entries}");
        // One manifest over the entry bound is kept, alone.
        cache.get_or_load("big", || Ok::<_, ()>(manifest(11))).unwrap();
        assert_eq!(cache.kept_ids(), ["big"]);
        assert_eq!(cache.get_or_load("broken", || Err("unreadable")).unwrap_err(), "unreadable");
        assert_eq!(cache.kept_ids(), ["big"]);
    }

    #[test]
    fn idle_manifests_are_forgotten() {
        let cache = ManifestCache::new();
        cache.get_or_load("a", || Ok::<_, ()>(manifest(1))).unwrap();
        cache.get_or_load("b", || Ok::<_, ()>(manifest(1))).unwrap();
        // As if "a" was last used before the cache's epoch minus IDLE: the clock only moves forward.
        let cache = ManifestCache { epoch: cache.epoch - IDLE, ..cache };
        cache.kept.get("b").unwrap().last_used.store(cache.now(), Ordering::Relaxed);
        cache.forget_idle();
        assert_eq!(cache.kept_ids(), ["b"]);
    }
}
