//! Pooled vs unpooled allocation cost: allocate a buffer and drop it, through
//! the backend directly or through a warm MemoryPool, for several sizes.
//! Runs on the CPU backend everywhere and on the first CUDA device when one
//! is present (a line says when it is not).
//!
//! `cargo bench -p dotcompute --bench device_pool -- --quick`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dotcompute::device::{Accelerator, Backend, CpuBackend, DeviceBuffer, MemoryPool, PoolConfig};

const SIZES: [usize; 4] = [4 << 10, 256 << 10, 4 << 20, 64 << 20];

fn bench_backend<B: Backend>(c: &mut Criterion, label: &str, backend: &Arc<B>) {
    let mut group = c.benchmark_group(format!("alloc_free/{label}"));
    for size in SIZES {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("unpooled", size), &size, |b, &size| {
            b.iter(|| {
                let buf = DeviceBuffer::<u8, B>::alloc(backend, black_box(size)).expect("alloc");
                black_box(&buf);
            })
        });
        let pool = MemoryPool::device(backend, PoolConfig::default()).expect("pool");
        drop(pool.buffer::<u8>(size).expect("warm-up"));
        group.bench_with_input(BenchmarkId::new("pooled", size), &size, |b, &size| {
            b.iter(|| {
                let buf = pool.buffer::<u8>(black_box(size)).expect("pooled alloc");
                black_box(&buf);
            })
        });
        let s = pool.stats();
        assert_eq!(s.misses, 1, "every timed pooled allocation was a cache hit");
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let cpu = Arc::new(CpuBackend::new());
    bench_backend(c, "cpu", &cpu);
    let acc = Accelerator::discover();
    #[cfg(feature = "cuda")]
    match acc.cuda_devices().next().map(|d| acc.cuda_backend(d.id)) {
        Some(Ok(gpu)) => bench_backend(c, "cuda", &gpu),
        Some(Err(e)) => eprintln!("cuda pool benchmark skipped: {e}"),
        None => eprintln!("cuda pool benchmark skipped: no CUDA device ({:?})", acc.cuda_status()),
    };
    #[cfg(not(feature = "cuda"))]
    eprintln!("cuda pool benchmark skipped: {:?}", acc.cuda_status());
}

criterion_group!(device_pool, benches);
criterion_main!(device_pool);
