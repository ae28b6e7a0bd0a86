//! [`MemoryPool`]: a caching allocator over a backend's device memory
//! ([`DeviceAllocator`]) or host staging memory ([`PinnedAllocator`]).
//!
//! Requests are rounded up to a size class (256 bytes, then four classes per
//! power of two, so at most 25% is wasted). A freed block goes back to the
//! pool's cache, and a later request of the same class (or of a class up to
//! twice smaller) reuses it without calling the backend.
//!
//! Invariants: `used + cached ≤ max_bytes` at all times: a request that
//! cannot fit after the cache is trimmed fails with
//! [`DeviceError::OutOfMemory`] and changes nothing; every block is either
//! handed out (counted in `used`) or cached (counted in `cached`), never both
//! and never lost; a block handed out returns to the pool exactly once, when
//! its owner is dropped, even if the [`MemoryPool`] handle was dropped first.
//!
//! ```
//! use std::sync::Arc;
//! use dotcompute::device::{CpuBackend, MemoryPool, PoolConfig};
//! let cpu = Arc::new(CpuBackend::new());
//! let pool = MemoryPool::device(&cpu, PoolConfig::default()).unwrap();
//! let a = pool.buffer::<f32>(1000).unwrap();   // miss: allocated by the backend
//! drop(a);                                     // back to the cache
//! let b = pool.buffer::<f32>(1000).unwrap();   // hit: no backend call
//! let s = pool.stats();
//! assert_eq!((s.hits, s.misses), (1, 1));
//! assert_eq!(s.used_bytes, b.capacity_bytes());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytemuck::Pod;
use parking_lot::Mutex;
use serde::Serialize;

use super::backend::Backend;
use super::buffer::{byte_len, DeviceBuffer, Recycle};
use super::error::{DeviceError, DeviceResult};

/// Memory a pool can cache.
pub trait RawAllocator: Send + Sync + 'static {
    /// One allocation.
    type Block: Send + Sync + 'static;
    /// Allocates at least `bytes`.
    fn allocate(&self, bytes: usize) -> DeviceResult<Self::Block>;
    /// What the allocator is, for messages.
    fn describe(&self) -> String;
}

/// Device memory of a backend.
pub struct DeviceAllocator<B: Backend>(pub Arc<B>);

impl<B: Backend> RawAllocator for DeviceAllocator<B> {
    type Block = B::Memory;
    fn allocate(&self, bytes: usize) -> DeviceResult<B::Memory> {
        self.0.alloc(bytes)
    }
    fn describe(&self) -> String {
        format!("{} device memory", self.0.kind())
    }
}

/// Host staging memory of a backend (page-locked on CUDA).
pub struct PinnedAllocator<B: Backend>(pub Arc<B>);

impl<B: Backend> RawAllocator for PinnedAllocator<B> {
    type Block = B::HostMemory;
    fn allocate(&self, bytes: usize) -> DeviceResult<B::HostMemory> {
        self.0.alloc_host(bytes)
    }
    fn describe(&self) -> String {
        format!("{} host staging memory", self.0.kind())
    }
}

/// A pool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolConfig {
    /// Bytes allocated up front into the cache, as blocks of
    /// `initial_block_bytes` (0: none).
    pub initial_bytes: usize,
    /// Size of each up-front block.
    pub initial_block_bytes: usize,
    /// Most bytes the pool may hold, used plus cached.
    pub max_bytes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            initial_bytes: 0,
            initial_block_bytes: 1 << 20,
            max_bytes: usize::MAX,
        }
    }
}

/// A pool's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Bytes in blocks handed out.
    pub used_bytes: usize,
    /// Bytes in cached blocks.
    pub cached_bytes: usize,
    /// `used_bytes + cached_bytes`.
    pub total_bytes: usize,
    /// The configured maximum.
    pub max_bytes: usize,
    /// Highest `used_bytes` seen.
    pub peak_used_bytes: usize,
    /// Highest `total_bytes` seen.
    pub peak_total_bytes: usize,
    /// Requests served from the cache.
    pub hits: u64,
    /// Requests that needed a backend allocation.
    pub misses: u64,
    /// Blocks handed out now.
    pub blocks_in_use: usize,
    /// Blocks in the cache now.
    pub blocks_cached: usize,
    /// Blocks the backend allocated.
    pub backend_allocations: u64,
    /// Blocks given back to the backend.
    pub backend_frees: u64,
}

impl PoolStats {
    /// `hits / (hits + misses)`, 0 when there were no requests.
    pub fn hit_rate(&self) -> f64 {
        let n = self.hits + self.misses;
        if n == 0 {
            0.0
        } else {
            self.hits as f64 / n as f64
        }
    }
}

/// The size class of a request of `bytes`.
pub fn size_class(bytes: usize) -> usize {
    const MIN: usize = 256;
    if bytes <= MIN {
        return MIN;
    }
    let k = usize::BITS - 1 - (bytes - 1).leading_zeros();
    let step = (1usize << k) / 4;
    bytes.div_ceil(step).saturating_mul(step)
}

struct State<K> {
    free: BTreeMap<usize, Vec<K>>,
    stats: PoolStats,
}

struct Shared<A: RawAllocator> {
    allocator: A,
    config: PoolConfig,
    state: Mutex<State<A::Block>>,
}

impl<A: RawAllocator> Shared<A> {
    fn update_peaks(s: &mut PoolStats) {
        s.total_bytes = s.used_bytes + s.cached_bytes;
        s.peak_used_bytes = s.peak_used_bytes.max(s.used_bytes);
        s.peak_total_bytes = s.peak_total_bytes.max(s.total_bytes);
    }

    /// Frees cached blocks, largest classes first, until at most `keep`
    /// bytes stay cached. Returns the blocks to drop outside the lock.
    fn evict(state: &mut State<A::Block>, keep: usize) -> Vec<A::Block> {
        let mut out = Vec::new();
        while state.stats.cached_bytes > keep {
            let Some(mut entry) = state.free.last_entry() else {
                break;
            };
            let class = *entry.key();
            let list = entry.get_mut();
            if let Some(block) = list.pop() {
                out.push(block);
                state.stats.cached_bytes -= class;
                state.stats.blocks_cached -= 1;
                state.stats.backend_frees += 1;
            }
            if list.is_empty() {
                entry.remove();
            }
        }
        Shared::<A>::update_peaks(&mut state.stats);
        out
    }

    fn take(&self, bytes: usize) -> DeviceResult<(A::Block, usize)> {
        let class = size_class(bytes);
        let mut st = self.state.lock();
        // A cached block of this class, or of a larger class up to twice the size.
        let found = st
            .free
            .range_mut(class..=class.saturating_mul(2))
            .find(|(_, v)| !v.is_empty())
            .map(|(c, _)| *c);
        if let Some(c) = found {
            if let Some(block) = st.free.get_mut(&c).and_then(|v| v.pop()) {
                if st.free.get(&c).is_some_and(|v| v.is_empty()) {
                    st.free.remove(&c);
                }
                let s = &mut st.stats;
                s.hits += 1;
                s.cached_bytes -= c;
                s.used_bytes += c;
                s.blocks_cached -= 1;
                s.blocks_in_use += 1;
                Shared::<A>::update_peaks(s);
                return Ok((block, c));
            }
        }
        // A miss: make room under the maximum, trimming the cache if needed.
        let max = self.config.max_bytes;
        if st.stats.used_bytes.saturating_add(class) > max {
            return Err(DeviceError::OutOfMemory {
                requested: class,
                in_use: st.stats.used_bytes,
                limit: max,
                context: format!("memory pool over {}", self.allocator.describe()),
            });
        }
        let keep = max - st.stats.used_bytes - class;
        let evicted = if st.stats.cached_bytes > keep {
            Shared::<A>::evict(&mut st, keep)
        } else {
            Vec::new()
        };
        st.stats.misses += 1;
        st.stats.used_bytes += class; // reserved while the backend allocates
        st.stats.blocks_in_use += 1;
        drop(st);
        drop(evicted);
        match self.allocator.allocate(class) {
            Ok(block) => {
                let mut st = self.state.lock();
                st.stats.backend_allocations += 1;
                Shared::<A>::update_peaks(&mut st.stats);
                Ok((block, class))
            }
            Err(e) => {
                let mut st = self.state.lock();
                st.stats.used_bytes -= class;
                st.stats.blocks_in_use -= 1;
                Err(e)
            }
        }
    }

    fn give_back(&self, block: A::Block, class: usize) {
        let mut st = self.state.lock();
        st.stats.used_bytes -= class;
        st.stats.blocks_in_use -= 1;
        st.stats.cached_bytes += class;
        st.stats.blocks_cached += 1;
        st.free.entry(class).or_default().push(block);
        Shared::<A>::update_peaks(&mut st.stats);
    }
}

/// A caching allocator. See the [module docs](self).
pub struct MemoryPool<A: RawAllocator> {
    shared: Arc<Shared<A>>,
}

impl<A: RawAllocator> Clone for MemoryPool<A> {
    fn clone(&self) -> Self {
        MemoryPool {
            shared: self.shared.clone(),
        }
    }
}

impl<B: Backend> MemoryPool<DeviceAllocator<B>> {
    /// A pool of `backend`'s device memory.
    pub fn device(backend: &Arc<B>, config: PoolConfig) -> DeviceResult<Self> {
        MemoryPool::new(DeviceAllocator(backend.clone()), config)
    }

    /// A typed buffer of `len` elements from the pool (contents unspecified:
    /// a reused block keeps its previous bytes). It returns to the pool when
    /// dropped.
    pub fn buffer<T: Pod>(&self, len: usize) -> DeviceResult<DeviceBuffer<T, B>> {
        let bytes = byte_len::<T>(len)?;
        let (block, class) = self.shared.take(bytes)?;
        let recycler: Arc<dyn Recycle<B::Memory>> = Arc::new(ClassReturn {
            shared: self.shared.clone(),
            class,
        });
        Ok(DeviceBuffer::from_parts(
            self.shared.allocator.0.clone(),
            block,
            len,
            Some(recycler),
        ))
    }

    /// Like [`buffer`](Self::buffer), zero-filled.
    pub fn buffer_zeroed<T: Pod>(&self, len: usize) -> DeviceResult<DeviceBuffer<T, B>> {
        let mut b = self.buffer(len)?;
        b.fill_zero()?;
        Ok(b)
    }
}

impl<B: Backend> MemoryPool<PinnedAllocator<B>> {
    /// A pool of `backend`'s host staging memory.
    pub fn pinned(backend: &Arc<B>, config: PoolConfig) -> DeviceResult<Self> {
        MemoryPool::new(PinnedAllocator(backend.clone()), config)
    }
}

struct ClassReturn<A: RawAllocator> {
    shared: Arc<Shared<A>>,
    class: usize,
}

impl<A: RawAllocator> Recycle<A::Block> for ClassReturn<A> {
    fn recycle(&self, memory: A::Block) {
        self.shared.give_back(memory, self.class);
    }
}

/// A block from a pool, returned to it when dropped.
pub struct PooledBlock<A: RawAllocator> {
    block: Option<A::Block>,
    class: usize,
    shared: Arc<Shared<A>>,
}

impl<A: RawAllocator> PooledBlock<A> {
    /// The block's size class in bytes (at least the size asked for).
    pub fn size(&self) -> usize {
        self.class
    }

    /// The block.
    pub fn get(&self) -> &A::Block {
        match &self.block {
            Some(b) => b,
            None => unreachable!("PooledBlock holds its block until drop"),
        }
    }

    /// The block, writable.
    pub fn get_mut(&mut self) -> &mut A::Block {
        match &mut self.block {
            Some(b) => b,
            None => unreachable!("PooledBlock holds its block until drop"),
        }
    }
}

impl<A: RawAllocator> Drop for PooledBlock<A> {
    fn drop(&mut self) {
        if let Some(b) = self.block.take() {
            self.shared.give_back(b, self.class);
        }
    }
}

impl<A: RawAllocator> MemoryPool<A> {
    /// A pool over `allocator`; allocates `config.initial_bytes` up front.
    pub fn new(allocator: A, config: PoolConfig) -> DeviceResult<Self> {
        if config.initial_bytes > config.max_bytes {
            return Err(DeviceError::invalid(
                "initial_bytes",
                config.initial_bytes,
                format!("larger than max_bytes ({})", config.max_bytes),
            ));
        }
        if config.initial_bytes > 0 && config.initial_block_bytes == 0 {
            return Err(DeviceError::invalid(
                "initial_block_bytes",
                0,
                "must be positive when initial_bytes is",
            ));
        }
        let pool = MemoryPool {
            shared: Arc::new(Shared {
                allocator,
                config,
                state: Mutex::new(State {
                    free: BTreeMap::new(),
                    stats: PoolStats {
                        max_bytes: config.max_bytes,
                        ..PoolStats::default()
                    },
                }),
            }),
        };
        let class = size_class(config.initial_block_bytes.max(1));
        let mut reserved = 0usize;
        while config.initial_bytes > 0 && reserved + class <= config.initial_bytes {
            let block = pool.shared.allocator.allocate(class)?;
            let mut st = pool.shared.state.lock();
            st.free.entry(class).or_default().push(block);
            st.stats.cached_bytes += class;
            st.stats.blocks_cached += 1;
            st.stats.backend_allocations += 1;
            Shared::<A>::update_peaks(&mut st.stats);
            reserved += class;
        }
        Ok(pool)
    }

    /// A block of at least `bytes`, returned to the pool when dropped.
    pub fn allocate(&self, bytes: usize) -> DeviceResult<PooledBlock<A>> {
        let (block, class) = self.shared.take(bytes)?;
        Ok(PooledBlock {
            block: Some(block),
            class,
            shared: self.shared.clone(),
        })
    }

    /// The pool's figures.
    pub fn stats(&self) -> PoolStats {
        self.shared.state.lock().stats
    }

    /// The pool's configuration.
    pub fn config(&self) -> PoolConfig {
        self.shared.config
    }

    /// Gives cached blocks back to the backend until at most `max_cached`
    /// bytes stay cached (largest blocks first). Returns the bytes freed.
    pub fn trim(&self, max_cached: usize) -> usize {
        let mut st = self.shared.state.lock();
        let before = st.stats.cached_bytes;
        let evicted = Shared::<A>::evict(&mut st, max_cached);
        let freed = before - st.stats.cached_bytes;
        drop(st);
        drop(evicted);
        freed
    }

    /// Gives every cached block back to the backend. Blocks in use are not
    /// affected (they return to the cache when dropped). Returns the bytes freed.
    pub fn free_all(&self) -> usize {
        self.trim(0)
    }
}

impl<A: RawAllocator> fmt::Debug for MemoryPool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPool")
            .field("allocator", &self.shared.allocator.describe())
            .field("stats", &self.stats())
            .finish()
    }
}
