//! MemoryPool: size classes, hits and misses, the maximum as a clean
//! OutOfMemory, statistics, trim/free_all, up-front allocation, pinned pools,
//! and blocks outliving the pool handle.

use std::sync::Arc;

use dotcompute::device::pool::size_class;
use dotcompute::device::{Backend, CpuBackend, DeviceError, MemoryPool, PoolConfig};

fn cpu() -> Arc<CpuBackend> {
    Arc::new(CpuBackend::new())
}

#[test]
fn size_classes_round_up_by_at_most_a_quarter() {
    assert_eq!(size_class(0), 256);
    assert_eq!(size_class(256), 256);
    assert_eq!(size_class(257), 320);
    assert_eq!(size_class(1000), 1024);
    assert_eq!(size_class(1025), 1280);
    assert_eq!(size_class(1 << 20), 1 << 20);
    for bytes in [300usize, 4097, 100_000, 3_000_001, 1 << 30] {
        let c = size_class(bytes);
        assert!(c >= bytes && c - bytes <= bytes / 4 + 1, "{bytes} -> {c}");
        assert_eq!(size_class(c), c, "classes are fixed points");
    }
}

#[test]
fn freed_blocks_are_reused_without_backend_calls() {
    let cpu = cpu();
    let pool = MemoryPool::device(&cpu, PoolConfig::default()).unwrap();
    let a = pool.buffer::<f32>(1000).unwrap();
    assert!(a.is_pooled());
    assert_eq!(a.capacity_bytes(), 4000usize.next_power_of_two().min(size_class(4000)));
    drop(a);
    assert_eq!(cpu.stats().allocations, 1);
    for _ in 0..10 {
        let b = pool.buffer::<f32>(900).unwrap(); // same class (3600 -> 4096)
        drop(b);
    }
    let s = pool.stats();
    assert_eq!((s.hits, s.misses), (10, 1));
    assert_eq!(cpu.stats().allocations, 1, "ten requests, one backend allocation");
    assert!((s.hit_rate() - 10.0 / 11.0).abs() < 1e-9);
    assert_eq!((s.used_bytes, s.cached_bytes, s.blocks_cached), (0, 4096, 1));
}

#[test]
fn pooled_buffers_work_as_device_buffers() {
    let cpu = cpu();
    let pool = MemoryPool::device(&cpu, PoolConfig::default()).unwrap();
    let mut b = pool.buffer_zeroed::<u32>(10).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![0; 10]);
    b.write(&(0..10).collect::<Vec<_>>()).unwrap();
    assert_eq!(b.to_vec().unwrap()[9], 9);
    assert_eq!(b.len(), 10);
    assert!(b.capacity_bytes() >= 40);
}

#[test]
fn statistics_track_used_cached_total_and_peaks() {
    let cpu = cpu();
    let pool = MemoryPool::device(&cpu, PoolConfig::default()).unwrap();
    let a = pool.buffer::<u8>(1024).unwrap();
    let b = pool.buffer::<u8>(2048).unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.used_bytes, s.cached_bytes, s.total_bytes, s.blocks_in_use),
        (3072, 0, 3072, 2)
    );
    drop(a);
    let s = pool.stats();
    assert_eq!((s.used_bytes, s.cached_bytes, s.total_bytes), (2048, 1024, 3072));
    assert_eq!((s.peak_used_bytes, s.peak_total_bytes), (3072, 3072));
    drop(b);
    let s = pool.stats();
    assert_eq!((s.used_bytes, s.cached_bytes, s.peak_used_bytes), (0, 3072, 3072));
    assert_eq!(
        cpu.stats().live_bytes,
        3072,
        "cached blocks stay allocated on the backend"
    );
}

#[test]
fn exceeding_the_maximum_is_out_of_memory_and_changes_nothing() {
    let cpu = cpu();
    let pool = MemoryPool::device(
        &cpu,
        PoolConfig {
            max_bytes: 8192,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    let a = pool.buffer::<u8>(4096).unwrap();
    let b = pool.buffer::<u8>(4096).unwrap();
    let before = pool.stats();
    match pool.buffer::<u8>(1) {
        Err(DeviceError::OutOfMemory {
            requested,
            in_use,
            limit,
            context,
        }) => {
            assert_eq!((requested, in_use, limit), (256, 8192, 8192));
            assert!(context.contains("memory pool"), "{context}");
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    assert_eq!(pool.stats().used_bytes, before.used_bytes);
    drop((a, b));
}

#[test]
fn a_miss_trims_the_cache_to_stay_under_the_maximum() {
    let cpu = cpu();
    let pool = MemoryPool::device(
        &cpu,
        PoolConfig {
            max_bytes: 8192,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    drop(pool.buffer::<u8>(4096).unwrap());
    drop(pool.buffer::<u8>(1024).unwrap()); // too small to reuse the 4096 block
    assert_eq!(pool.stats().cached_bytes, 5120);
    // 5120 does not fit beside 5120 cached: the cache gives up its largest block.
    let big = pool.buffer::<u8>(5000).unwrap();
    let s = pool.stats();
    assert!(s.total_bytes <= 8192, "{s:?}");
    assert_eq!((s.used_bytes, s.cached_bytes, s.backend_frees), (5120, 1024, 1));
    drop(big);
}

#[test]
fn the_backend_refusing_is_reported_and_undone() {
    let cpu = Arc::new(CpuBackend::with_memory_limit(1000));
    let pool = MemoryPool::device(&cpu, PoolConfig::default()).unwrap();
    assert!(matches!(pool.buffer::<u8>(2000), Err(DeviceError::OutOfMemory { .. })));
    let s = pool.stats();
    assert_eq!((s.used_bytes, s.blocks_in_use, s.backend_allocations), (0, 0, 0));
}

#[test]
fn trim_and_free_all_return_cached_memory_to_the_backend() {
    let cpu = cpu();
    let pool = MemoryPool::device(&cpu, PoolConfig::default()).unwrap();
    let keep = pool.buffer::<u8>(256).unwrap();
    for n in [1024, 4096, 16384] {
        drop(pool.buffer::<u8>(n).unwrap());
    }
    assert_eq!(pool.stats().cached_bytes, 1024 + 4096 + 16384);
    let freed = pool.trim(5120);
    assert_eq!(freed, 16384, "the largest block goes first");
    assert_eq!(pool.stats().cached_bytes, 5120);
    assert_eq!(pool.free_all(), 5120);
    let s = pool.stats();
    assert_eq!((s.cached_bytes, s.used_bytes, s.backend_frees), (0, 256, 3));
    assert_eq!(cpu.stats().live_bytes, 256, "only the buffer in use is still allocated");
    drop(keep);
    assert_eq!(pool.stats().cached_bytes, 256);
}

#[test]
fn initial_size_is_allocated_up_front_and_serves_requests() {
    let cpu = cpu();
    let cfg = PoolConfig {
        initial_bytes: 4 << 20,
        initial_block_bytes: 1 << 20,
        max_bytes: 8 << 20,
    };
    let pool = MemoryPool::device(&cpu, cfg).unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.cached_bytes, s.blocks_cached, s.backend_allocations),
        (4 << 20, 4, 4)
    );
    assert_eq!(cpu.stats().live_bytes, 4 << 20);
    // A 600 KiB request may use a 1 MiB block (at most twice its class).
    let b = pool.buffer::<u8>(600 << 10).unwrap();
    assert_eq!(pool.stats().hits, 1);
    assert_eq!(b.capacity_bytes(), 1 << 20);
    drop(b);
    assert!(MemoryPool::device(
        &cpu,
        PoolConfig {
            initial_bytes: 10,
            max_bytes: 5,
            ..PoolConfig::default()
        }
    )
    .is_err());
}

#[test]
fn pinned_host_pools_hand_out_writable_blocks() {
    let cpu = cpu();
    let pool = MemoryPool::pinned(&cpu, PoolConfig::default()).unwrap();
    let mut block = pool.allocate(100).unwrap();
    assert_eq!(block.size(), 256);
    CpuBackend::host_bytes_mut(block.get_mut()).unwrap()[..3].copy_from_slice(&[1, 2, 3]);
    assert_eq!(&CpuBackend::host_bytes(block.get()).unwrap()[..3], &[1, 2, 3]);
    drop(block);
    let again = pool.allocate(200).unwrap();
    assert_eq!(pool.stats().hits, 1);
    drop(again);
    assert_eq!(cpu.stats().live_bytes, 0, "host staging memory is not device memory");
}

#[test]
fn blocks_return_to_the_pool_even_after_the_handle_is_dropped() {
    let cpu = cpu();
    let pool = MemoryPool::device(&cpu, PoolConfig::default()).unwrap();
    let probe = pool.clone();
    let b = pool.buffer::<u64>(100).unwrap();
    drop(pool);
    drop(b);
    assert_eq!(probe.stats().cached_bytes, size_class(800));
    drop(probe);
    assert_eq!(cpu.stats().live_bytes, 0, "the last reference frees the cache");
}

#[test]
fn concurrent_use_keeps_the_books_balanced() {
    let cpu = cpu();
    let pool = MemoryPool::device(
        &cpu,
        PoolConfig {
            max_bytes: 1 << 20,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let pool = pool.clone();
            s.spawn(move || {
                for i in 0..200 {
                    let n = 64 + (i * 37 + t * 101) % 2000;
                    let mut b = pool.buffer::<u32>(n).unwrap();
                    b.write(&vec![t as u32; n]).unwrap();
                    assert!(b.to_vec().unwrap().iter().all(|v| *v == t as u32));
                }
            });
        }
    });
    let s = pool.stats();
    assert_eq!((s.used_bytes, s.blocks_in_use), (0, 0));
    assert_eq!(s.hits + s.misses, 800);
    assert_eq!(cpu.stats().live_bytes as usize, s.cached_bytes);
    assert!(s.peak_total_bytes <= 1 << 20);
}
