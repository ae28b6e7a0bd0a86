//! KernelCache: the memory LRU and its bounds, the disk level and its
//! bounds, atomic writes, corrupted and truncated entries detected and
//! discarded, and several processes sharing one folder.

use std::path::Path;
use std::process::{Command, Stdio};

use dotcompute::device::{CacheConfig, CacheEntry, CacheKey, CacheLevel, KernelCache};

fn key(i: usize) -> CacheKey {
    CacheKey::from_parts([format!("source {i}").as_bytes(), b"--gpu-architecture=compute_80"])
}

fn entry(i: usize, size: usize) -> CacheEntry {
    CacheEntry {
        ptx: format!("// entry {i}\n{}", "x".repeat(size)),
        cubin: i.is_multiple_of(2).then(|| vec![i as u8; 64]),
        log: format!("log {i}"),
    }
}

fn kc_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn keys_are_length_prefixed_hashes() {
    let a = CacheKey::from_parts([b"ab".as_slice(), b"c"]);
    let b = CacheKey::from_parts([b"a".as_slice(), b"bc"]);
    assert_ne!(a, b);
    assert_eq!(a, CacheKey::from_parts([b"ab".as_slice(), b"c"]));
    assert_eq!(a.hex().len(), 64);
}

#[test]
fn memory_level_is_lru_bounded_by_entries_and_bytes() {
    let cache = KernelCache::new(CacheConfig {
        memory_entries: 3,
        memory_bytes: 10_000,
        ..CacheConfig::default()
    })
    .unwrap();
    for i in 0..3 {
        cache.put(&key(i), entry(i, 100)).unwrap();
    }
    assert!(cache.get(&key(0)).is_some()); // 0 becomes most recent
    cache.put(&key(3), entry(3, 100)).unwrap(); // evicts 1, the least recent
    assert!(cache.get(&key(1)).is_none());
    assert!(cache.get(&key(0)).is_some() && cache.get(&key(2)).is_some() && cache.get(&key(3)).is_some());
    // Byte bound: a 6 KB entry pushes older ones out until the total fits.
    cache.put(&key(4), entry(4, 6000)).unwrap();
    cache.put(&key(5), entry(5, 6000)).unwrap();
    let s = cache.stats();
    assert!(s.memory_bytes <= 10_000, "{s:?}");
    assert!(cache.get(&key(4)).is_none() && cache.get(&key(5)).is_some());
    assert!(s.memory_evictions >= 3);
    assert_eq!(s.memory_entries, cache.stats().memory_entries);
    // An entry larger than the whole memory bound is not kept in memory.
    cache.put(&key(6), entry(6, 20_000)).unwrap();
    assert!(cache.get(&key(6)).is_none());
}

#[test]
fn disk_entries_round_trip_and_survive_a_new_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
    for i in 0..3 {
        cache.put(&key(i), entry(i, 50)).unwrap();
    }
    assert_eq!(
        kc_files(dir.path()).len(),
        3,
        "one file per entry and no temporary files left"
    );
    let fresh = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
    for i in 0..3 {
        let (e, level) = fresh.get(&key(i)).unwrap();
        assert_eq!(level, CacheLevel::Disk);
        assert_eq!(*e, entry(i, 50));
        assert_eq!(fresh.get(&key(i)).unwrap().1, CacheLevel::Memory, "promoted to memory");
    }
    assert!(fresh.get(&key(99)).is_none());
    let s = fresh.stats();
    assert_eq!((s.disk_hits, s.memory_hits, s.misses), (3, 3, 1));
    fresh.clear().unwrap();
    assert!(kc_files(dir.path()).is_empty());
    assert!(fresh.get(&key(0)).is_none());
}

#[test]
fn corrupted_or_truncated_entries_are_detected_and_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let writer = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
    let path_of = |i| writer.entry_path(&key(i)).unwrap();
    for i in 0..5 {
        writer.put(&key(i), entry(i, 200)).unwrap();
    }
    // 0: a flipped payload byte; 1: truncated payload; 2: truncated header;
    // 3: another key's file under this name; 4: empty file.
    let mut b = std::fs::read(path_of(0)).unwrap();
    let mid = b.len() / 2 + 40;
    b[mid] ^= 1;
    std::fs::write(path_of(0), &b).unwrap();
    let b = std::fs::read(path_of(1)).unwrap();
    std::fs::write(path_of(1), &b[..b.len() - 10]).unwrap();
    std::fs::write(path_of(2), &b[..20]).unwrap();
    std::fs::copy(path_of(4), path_of(3)).unwrap();
    std::fs::write(path_of(4), b"").unwrap();

    let reader = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
    for i in 0..5 {
        assert!(reader.get(&key(i)).is_none(), "entry {i} must not be returned");
        assert!(!path_of(i).exists(), "entry {i} must be deleted");
    }
    assert_eq!(reader.stats().corrupted, 5);
    // A rewrite after recompilation is valid again.
    reader.put(&key(0), entry(0, 200)).unwrap();
    let again = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
    assert_eq!(*again.get(&key(0)).unwrap().0, entry(0, 200));
}

#[test]
fn disk_level_is_bounded_by_entries_and_bytes_evicting_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = CacheConfig {
        disk_entries: 3,
        disk_bytes: 1 << 20,
        ..CacheConfig::on_disk(dir.path())
    };
    let cache = KernelCache::new(cfg.clone()).unwrap();
    for i in 0..3 {
        cache.put(&key(i), entry(i, 10)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20)); // distinct modification times
    }
    // A disk hit on 0 refreshes it, so 1 is now the least recently used.
    let other = KernelCache::new(cfg.clone()).unwrap();
    assert_eq!(other.get(&key(0)).unwrap().1, CacheLevel::Disk);
    std::thread::sleep(std::time::Duration::from_millis(20));
    cache.put(&key(3), entry(3, 10)).unwrap();
    let names = kc_files(dir.path());
    assert_eq!(names.len(), 3);
    assert!(!names.contains(&format!("{}.kc", key(1).hex())), "{names:?}");
    assert!(names.contains(&format!("{}.kc", key(0).hex())));
    assert_eq!(cache.stats().disk_evictions, 1);

    // Bytes: with room for about two 5 KB entries, a third evicts the oldest.
    let dir2 = tempfile::tempdir().unwrap();
    let small = KernelCache::new(CacheConfig {
        disk_entries: 100,
        disk_bytes: 11_000,
        ..CacheConfig::on_disk(dir2.path())
    })
    .unwrap();
    for i in 0..3 {
        small.put(&key(i), entry(i, 5000)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let total: u64 = small.disk_entries().unwrap().iter().map(|e| e.1).sum();
    assert!(total <= 11_000, "{total}");
    assert_eq!(small.disk_entries().unwrap().len(), 2);
    assert!(small.entry_path(&key(2)).unwrap().exists(), "the newest entry is kept");
}

#[test]
fn invalid_bounds_are_refused() {
    assert!(KernelCache::new(CacheConfig {
        memory_entries: 0,
        ..CacheConfig::default()
    })
    .is_err());
    assert!(KernelCache::new(CacheConfig {
        disk_entries: 0,
        ..CacheConfig::default()
    })
    .is_err());
}

const CHILD_DIR: &str = "DOTCOMPUTE_CACHE_TEST_CHILD_DIR";
const CHILD_ID: &str = "DOTCOMPUTE_CACHE_TEST_CHILD_ID";

/// Run only as a child of `several_processes_share_one_folder_safely`.
#[test]
#[ignore = "helper: runs as a child process of several_processes_share_one_folder_safely"]
fn cache_child_process() {
    let dir = std::env::var(CHILD_DIR).expect("run by the parent test");
    let id: usize = std::env::var(CHILD_ID).unwrap().parse().unwrap();
    let cache = KernelCache::new(CacheConfig {
        disk_entries: 12,
        ..CacheConfig::on_disk(&dir)
    })
    .unwrap();
    for round in 0..40 {
        // All children write the same keys (identical content per key) and
        // read them back: every read must be a complete, valid entry.
        let k = (round * 7 + id) % 16;
        cache.put(&key(k), entry(k, 3000)).unwrap();
        let fresh = KernelCache::new(CacheConfig {
            disk_entries: 12,
            ..CacheConfig::on_disk(&dir)
        })
        .unwrap();
        if let Some((e, _)) = fresh.get(&key((k + 1) % 16)) {
            assert_eq!(*e, entry((k + 1) % 16, 3000));
        }
        assert_eq!(fresh.stats().corrupted, 0, "a reader saw a partial file");
    }
}

#[test]
fn several_processes_share_one_folder_safely() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "cache_child_process",
                    "--ignored",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_ID, id.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a child process failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = kc_files(dir.path());
    assert!(
        files.iter().all(|f| f.ends_with(".kc")),
        "no temporary files left: {files:?}"
    );
    assert!(
        files.len() <= 12 + 4,
        "bounded (each process may be one over while others write): {}",
        files.len()
    );
    let reader = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
    for k in 0..16 {
        if let Some((e, _)) = reader.get(&key(k)) {
            assert_eq!(*e, entry(k, 3000));
        }
    }
    assert_eq!(reader.stats().corrupted, 0);
}
