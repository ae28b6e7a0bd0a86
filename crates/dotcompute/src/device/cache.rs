//! [`KernelCache`]: compiled kernels kept in memory (LRU) and on disk.
//!
//! Entries are keyed by a [`CacheKey`], a SHA-256 over everything that
//! determines the output (source, options, architecture, compiler version;
//! [`KernelCompiler`](super::KernelCompiler) builds it). Both levels are
//! bounded by entry count and bytes.
//!
//! On disk every entry is one self-describing file `<key>.kc`: a header
//! (magic, format version, key, payload length, SHA-256 of the payload) and
//! the payload (PTX, optional cubin, compiler log).
//!
//! Invariants:
//! - A file is written to a temporary name in the same folder and renamed
//!   into place, so a reader (in this or another process) sees either no
//!   entry or a complete one; concurrent writers of one key write identical
//!   content and the last rename wins.
//! - A file whose header, length, key or checksum does not verify is never
//!   returned: it is deleted and counted in `corrupted`, and the caller
//!   recompiles.
//! - There is no shared index to corrupt: eviction lists the folder and
//!   removes the least recently used files (modification time, refreshed on
//!   every disk hit) until both bounds hold.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lru::LruCache;
use parking_lot::Mutex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::{DeviceError, DeviceResult};

const MAGIC: &[u8; 8] = b"DCKCACHE";
const FORMAT: u32 = 1;
const HEADER: usize = 8 + 4 + 32 + 8 + 32;
const EXT: &str = "kc";

/// A cache key: SHA-256 of the length-prefixed parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of these parts (each is length-prefixed, so `["ab", "c"]`
    /// and `["a", "bc"]` differ).
    pub fn from_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        CacheKey(h.finalize().into())
    }

    /// The key in hexadecimal (the file's name).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// One compiled kernel as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The PTX text.
    pub ptx: String,
    /// The cubin, when one was built.
    pub cubin: Option<Vec<u8>>,
    /// The compiler's log (warnings).
    pub log: String,
}

impl CacheEntry {
    /// Bytes the entry holds.
    pub fn size_bytes(&self) -> usize {
        self.ptx.len() + self.cubin.as_ref().map_or(0, Vec::len) + self.log.len()
    }

    fn encode_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_bytes() + 24);
        let mut field = |b: Option<&[u8]>| match b {
            Some(b) => {
                out.extend_from_slice(&(b.len() as u64).to_le_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&u64::MAX.to_le_bytes()),
        };
        field(Some(self.ptx.as_bytes()));
        field(self.cubin.as_deref());
        field(Some(self.log.as_bytes()));
        out
    }

    fn decode_payload(mut p: &[u8]) -> Result<Self, String> {
        let mut field = || -> Result<Option<Vec<u8>>, String> {
            let (len, rest) = p.split_first_chunk::<8>().ok_or("payload truncated in a length")?;
            let len = u64::from_le_bytes(*len);
            p = rest;
            if len == u64::MAX {
                return Ok(None);
            }
            let len = usize::try_from(len).map_err(|_| "field length overflows usize")?;
            if len > p.len() {
                return Err(format!("payload truncated: field of {len} bytes, {} left", p.len()));
            }
            let (v, rest) = p.split_at(len);
            p = rest;
            Ok(Some(v.to_vec()))
        };
        let ptx = field()?.ok_or("missing PTX")?;
        let cubin = field()?;
        let log = field()?.unwrap_or_default();
        let ptx = String::from_utf8(ptx).map_err(|_| "PTX is not UTF-8")?;
        let log = String::from_utf8_lossy(&log).into_owned();
        Ok(CacheEntry { ptx, cubin, log })
    }
}

/// Encodes an entry as a cache file.
fn encode_file(key: &CacheKey, entry: &CacheEntry) -> Vec<u8> {
    let payload = entry.encode_payload();
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

/// Decodes and verifies a cache file.
fn decode_file(key: &CacheKey, bytes: &[u8]) -> Result<CacheEntry, String> {
    if bytes.len() < HEADER {
        return Err(format!("file truncated: {} bytes, header needs {HEADER}", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let format = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if format != FORMAT {
        return Err(format!("format {format}, expected {FORMAT}"));
    }
    if bytes[12..44] != key.0 {
        return Err("key mismatch".into());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[44..52]);
    let len = u64::from_le_bytes(len);
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(format!("payload is {} bytes, header says {len}", payload.len()));
    }
    if Sha256::digest(payload).as_slice() != &bytes[52..84] {
        return Err("checksum mismatch".into());
    }
    CacheEntry::decode_payload(payload)
}

/// Where a hit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheLevel {
    /// The in-memory LRU.
    Memory,
    /// A file on disk.
    Disk,
}

/// Bounds and location of a [`KernelCache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The disk folder; `None` keeps the cache in memory only.
    pub dir: Option<PathBuf>,
    /// Most entries in memory.
    pub memory_entries: usize,
    /// Most bytes in memory.
    pub memory_bytes: usize,
    /// Most entry files on disk.
    pub disk_entries: usize,
    /// Most bytes of entry files on disk.
    pub disk_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            dir: None,
            memory_entries: 128,
            memory_bytes: 64 << 20,
            disk_entries: 1024,
            disk_bytes: 256 << 20,
        }
    }
}

impl CacheConfig {
    /// The default configuration with a disk folder.
    pub fn on_disk(dir: impl Into<PathBuf>) -> Self {
        CacheConfig {
            dir: Some(dir.into()),
            ..Self::default()
        }
    }

    /// The default disk folder: `$DOTCOMPUTE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/dotcompute/kernels`, else `~/.cache/dotcompute/kernels`,
    /// else a folder under the system temporary directory.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("DOTCOMPUTE_CACHE_DIR") {
            return PathBuf::from(d);
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return Path::new(&d).join("dotcompute").join("kernels");
        }
        if let Some(h) = std::env::var_os("HOME") {
            return Path::new(&h).join(".cache").join("dotcompute").join("kernels");
        }
        std::env::temp_dir().join("dotcompute-kernels")
    }
}

/// A cache's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Hits in memory.
    pub memory_hits: u64,
    /// Hits on disk.
    pub disk_hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Disk entries found corrupted (and deleted).
    pub corrupted: u64,
    /// Entries stored.
    pub writes: u64,
    /// Entries evicted from memory.
    pub memory_evictions: u64,
    /// Files evicted from disk.
    pub disk_evictions: u64,
    /// Entries in memory now.
    pub memory_entries: usize,
    /// Bytes in memory now.
    pub memory_bytes: usize,
}

struct Memory {
    lru: LruCache<CacheKey, Arc<CacheEntry>>,
    bytes: usize,
}

/// A two-level kernel cache. See the [module docs](self).
///
/// ```
/// use dotcompute::device::{CacheConfig, CacheEntry, CacheKey, CacheLevel, KernelCache};
/// let dir = tempfile::tempdir().unwrap();
/// let key = CacheKey::from_parts([b"source".as_slice(), b"--arch=compute_80"]);
/// let entry = CacheEntry { ptx: ".version 8.0".into(), cubin: None, log: String::new() };
/// KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap().put(&key, entry.clone()).unwrap();
///
/// // A new cache (as in another process) finds it on disk.
/// let cache = KernelCache::new(CacheConfig::on_disk(dir.path())).unwrap();
/// let (hit, level) = cache.get(&key).unwrap();
/// assert_eq!((hit.as_ref(), level), (&entry, CacheLevel::Disk));
/// ```
pub struct KernelCache {
    config: CacheConfig,
    memory: Mutex<Memory>,
    stats: Mutex<CacheStats>,
}

impl KernelCache {
    /// A cache with `config`; creates the disk folder if needed.
    pub fn new(config: CacheConfig) -> DeviceResult<Self> {
        let entries = std::num::NonZeroUsize::new(config.memory_entries)
            .ok_or_else(|| DeviceError::invalid("memory_entries", 0, "must be at least 1"))?;
        if config.disk_entries == 0 {
            return Err(DeviceError::invalid("disk_entries", 0, "must be at least 1"));
        }
        if let Some(dir) = &config.dir {
            fs::create_dir_all(dir).map_err(|e| DeviceError::io(dir, e))?;
        }
        Ok(KernelCache {
            memory: Mutex::new(Memory {
                lru: LruCache::new(entries),
                bytes: 0,
            }),
            config,
            stats: Mutex::new(CacheStats::default()),
        })
    }

    /// A memory-only cache with default bounds.
    pub fn in_memory() -> Self {
        let config = CacheConfig::default();
        let entries = std::num::NonZeroUsize::new(config.memory_entries).unwrap_or(std::num::NonZeroUsize::MIN);
        KernelCache {
            memory: Mutex::new(Memory {
                lru: LruCache::new(entries),
                bytes: 0,
            }),
            config,
            stats: Mutex::new(CacheStats::default()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The figures so far.
    pub fn stats(&self) -> CacheStats {
        let mut s = *self.stats.lock();
        let m = self.memory.lock();
        s.memory_entries = m.lru.len();
        s.memory_bytes = m.bytes;
        s
    }

    /// The file an entry lives in.
    pub fn entry_path(&self, key: &CacheKey) -> Option<PathBuf> {
        self.config.dir.as_ref().map(|d| d.join(format!("{}.{EXT}", key.hex())))
    }

    fn insert_memory(&self, key: CacheKey, entry: Arc<CacheEntry>) {
        let size = entry.size_bytes();
        if size > self.config.memory_bytes {
            return;
        }
        let mut m = self.memory.lock();
        let mut evicted = 0;
        m.bytes += size;
        if let Some((old_key, old)) = m.lru.push(key, entry) {
            // Either the previous value of this key or the evicted LRU entry.
            m.bytes -= old.size_bytes();
            if old_key != key {
                evicted += 1;
            }
        }
        while m.bytes > self.config.memory_bytes {
            match m.lru.pop_lru() {
                Some((_, e)) => {
                    m.bytes -= e.size_bytes();
                    evicted += 1;
                }
                None => break,
            }
        }
        drop(m);
        if evicted > 0 {
            self.stats.lock().memory_evictions += evicted;
        }
    }

    /// Looks `key` up in memory, then on disk. A corrupted disk entry is
    /// deleted and reported as a miss.
    pub fn get(&self, key: &CacheKey) -> Option<(Arc<CacheEntry>, CacheLevel)> {
        if let Some(e) = self.memory.lock().lru.get(key).cloned() {
            self.stats.lock().memory_hits += 1;
            return Some((e, CacheLevel::Memory));
        }
        let Some(path) = self.entry_path(key) else {
            self.stats.lock().misses += 1;
            return None;
        };
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                self.stats.lock().misses += 1;
                return None;
            }
        };
        match decode_file(key, &bytes) {
            Ok(entry) => {
                if let Ok(f) = fs::File::options().write(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                let entry = Arc::new(entry);
                self.insert_memory(*key, entry.clone());
                self.stats.lock().disk_hits += 1;
                Some((entry, CacheLevel::Disk))
            }
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "discarding corrupted kernel cache entry");
                let _ = fs::remove_file(&path);
                let mut s = self.stats.lock();
                s.corrupted += 1;
                s.misses += 1;
                None
            }
        }
    }

    /// Stores an entry in memory and, with a disk folder, atomically on disk;
    /// then evicts to stay within the bounds.
    pub fn put(&self, key: &CacheKey, entry: CacheEntry) -> DeviceResult<()> {
        let entry = Arc::new(entry);
        self.insert_memory(*key, entry.clone());
        self.stats.lock().writes += 1;
        let (Some(dir), Some(path)) = (&self.config.dir, self.entry_path(key)) else {
            return Ok(());
        };
        let bytes = encode_file(key, &entry);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| DeviceError::io(dir, e))?;
        tmp.write_all(&bytes).map_err(|e| DeviceError::io(tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| DeviceError::io(tmp.path(), e))?;
        tmp.persist(&path).map_err(|e| DeviceError::io(&path, e.error))?;
        self.evict_disk(Some(&path))
    }

    /// The entry files on disk: (path, size, last use), oldest first.
    pub fn disk_entries(&self) -> DeviceResult<Vec<(PathBuf, u64, SystemTime)>> {
        let Some(dir) = &self.config.dir else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let rd = fs::read_dir(dir).map_err(|e| DeviceError::io(dir, e))?;
        for e in rd.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if path.extension().is_some_and(|x| x == EXT) {
                out.push((path, meta.len(), mtime));
            } else if e.file_name().to_string_lossy().starts_with(".tmp-")
                && mtime.elapsed().unwrap_or_default() > Duration::from_secs(3600)
            {
                // A temporary file a crashed writer left behind.
                let _ = fs::remove_file(&path);
            }
        }
        out.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }

    fn evict_disk(&self, keep: Option<&Path>) -> DeviceResult<()> {
        let files = self.disk_entries()?;
        let mut count = files.len();
        let mut bytes: u64 = files.iter().map(|f| f.1).sum();
        let mut evicted = 0;
        for (path, size, _) in &files {
            if count <= self.config.disk_entries && bytes <= self.config.disk_bytes {
                break;
            }
            if Some(path.as_path()) == keep {
                continue;
            }
            // Another process may have removed it already; either way it is gone.
            let _ = fs::remove_file(path);
            count -= 1;
            bytes -= size;
            evicted += 1;
        }
        if evicted > 0 {
            self.stats.lock().disk_evictions += evicted;
        }
        Ok(())
    }

    /// Removes every entry, in memory and on disk.
    pub fn clear(&self) -> DeviceResult<()> {
        {
            let mut m = self.memory.lock();
            m.lru.clear();
            m.bytes = 0;
        }
        for (path, _, _) in self.disk_entries()? {
            let _ = fs::remove_file(path);
        }
        Ok(())
    }
}

impl std::fmt::Debug for KernelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelCache")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}
