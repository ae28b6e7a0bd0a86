// PageRank power iteration in f64: the kernels of one step of
// `dotcompute_workloads::pagerank::device` (see its docs for the formula).
//
//   pagerank_contrib  contrib[u] = w(u) * rank[u] with w(u) = d * (1 / outdeg(u))
//                     (0 for dangling nodes) and, per block, the dangling mass
//                     sum of rank[u] over outdeg(u) == 0. Runs once, on the
//                     starting ranks.
//   pagerank_spmv     the pull SpMV over in-edges (the CSR of the transpose):
//                     next[v] = base + sum of contrib[u] over the edges u -> v,
//                     fused with the residual |next[v] - rank[v]| (L1 sum and
//                     L-inf max), next's contributions and next's dangling
//                     mass, so one pass over the rows does the whole step.
//                     `base` = (1-d)/n (+ d * dangling / n when redistributing)
//                     is computed by the host from the previous step's total.
//   pagerank_reduce   one block folds the per-block partials into three totals
//                     (L1, L-inf, dangling mass): the host reads back 24 bytes
//                     per iteration, never the rank vector.
//
// Partials layout (3 * gridDim.x doubles): [0, g) L1 sums, [g, 2g) L-inf
// maxima, [2g, 3g) dangling-mass sums, slot b written by block b.
//
// One thread per row, not one warp: for the 1M-node / 5M-edge benchmark graph
// (uniformly random edges) in-degrees average 5 and rarely exceed ~20, so a
// thread walks a short run of its row's sources with little divergence, while
// a warp per row would leave ~27 of 32 lanes idle and add a shuffle reduction
// to every row. The step moves about 60 MB (offsets 8 MB, sources 20 MB, rank,
// next, contributions and out-degrees ~36 MB; the 8 MB contribution vector
// being gathered stays in the H100's 50 MB L2), some 25 us at HBM3 bandwidth,
// so 5M edges per iteration is ~200 G edges/s of kernel time, far above the
// 1 G edges/s goal; the launch and the 24-byte read-back then dominate. A
// power-law graph with hub rows of 10^4+ in-edges would serialise each hub on
// one thread; a warp- or merge-path-per-row variant is the remedy there.
//
// Floating-point order (the CPU equivalents in device/kernels.rs do the same):
// - a row sums its sources in CSR order (ascending source ids), starting from
//   0.0, then adds `base` once: exactly the rayon solver's per-row order, and
//   the weight d * (1 / k) is rounded as there, so a row is bit-identical to
//   the CPU solver's for the same contributions and `base`;
// - nothing can be contracted into an fma: rows only add loaded values, and
//   the two products of a contribution are __dmul_rn (never fused); 1.0 / k
//   is correctly rounded (rcp.rn.f64) without fast-math;
// - per-thread partials are folded over the thread's grid-stride rows in
//   increasing order, then in a fixed tree (stride blockDim/2, /4, ... 1; the
//   last five strides by warp shuffles, same operand pairs), then the block
//   partials by one block the same way. The reductions are deterministic for a
//   launch geometry but in a different order from the rayon solver's chunks.
//
// Launch: 1-D, blockDim.x a power of two in [32, 1024], dynamic shared memory
// 3 * blockDim.x * 8 bytes; pagerank_reduce runs as a single block. Rows are
// grid-strided, so any grid size covers n.

#define PR_FULL_MASK 0xffffffffu

struct pr_triple {
    double l1;
    double linf;
    double mass;
};

// Folds every thread's triple into thread 0's (sum, max, sum). Every thread of
// the block must call it.
__device__ pr_triple pr_block_reduce(pr_triple t) {
    extern __shared__ double pr_scratch[];
    const unsigned int tid = threadIdx.x;
    const unsigned int nt = blockDim.x;
    double* l1 = pr_scratch;
    double* linf = pr_scratch + nt;
    double* mass = pr_scratch + 2 * nt;
    l1[tid] = t.l1;
    linf[tid] = t.linf;
    mass[tid] = t.mass;
    __syncthreads();
    for (unsigned int s = nt / 2; s >= 32; s >>= 1) {
        if (tid < s) {
            l1[tid] = l1[tid] + l1[tid + s];
            linf[tid] = fmax(linf[tid], linf[tid + s]);
            mass[tid] = mass[tid] + mass[tid + s];
        }
        __syncthreads();
    }
    if (tid < 32) {
        t.l1 = l1[tid];
        t.linf = linf[tid];
        t.mass = mass[tid];
        for (int off = 16; off > 0; off >>= 1) {
            t.l1 = t.l1 + __shfl_down_sync(PR_FULL_MASK, t.l1, off);
            t.linf = fmax(t.linf, __shfl_down_sync(PR_FULL_MASK, t.linf, off));
            t.mass = t.mass + __shfl_down_sync(PR_FULL_MASK, t.mass, off);
        }
    }
    return t;
}

__device__ void pr_store_partials(double* __restrict__ partials, pr_triple t) {
    const pr_triple r = pr_block_reduce(t);
    if (threadIdx.x == 0) {
        const unsigned int g = gridDim.x;
        partials[blockIdx.x] = r.l1;
        partials[g + blockIdx.x] = r.linf;
        partials[2 * g + blockIdx.x] = r.mass;
    }
}

extern "C" __global__ void pagerank_contrib(const double* __restrict__ rank,
                                            const unsigned int* __restrict__ outdeg,
                                            double* __restrict__ contrib,
                                            double* __restrict__ partials,
                                            double damping,
                                            unsigned int n) {
    pr_triple t = {0.0, 0.0, 0.0};
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long u = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; u < n; u += stride) {
        const unsigned int k = outdeg[u];
        const double r = rank[u];
        if (k != 0) {
            contrib[u] = __dmul_rn(__dmul_rn(damping, 1.0 / (double)k), r);
        } else {
            contrib[u] = 0.0;
            t.mass = t.mass + r;
        }
    }
    pr_store_partials(partials, t);
}

extern "C" __global__ void pagerank_spmv(const unsigned long long* __restrict__ offsets,
                                         const unsigned int* __restrict__ sources,
                                         const double* __restrict__ contrib,
                                         const double* __restrict__ rank,
                                         const unsigned int* __restrict__ outdeg,
                                         double* __restrict__ next,
                                         double* __restrict__ contrib_next,
                                         double* __restrict__ partials,
                                         double base,
                                         double damping,
                                         unsigned int n) {
    pr_triple t = {0.0, 0.0, 0.0};
    const unsigned long long stride = (unsigned long long)blockDim.x * gridDim.x;
    for (unsigned long long v = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; v < n; v += stride) {
        const unsigned long long end = offsets[v + 1];
        double sum = 0.0;
#pragma unroll 4
        for (unsigned long long e = offsets[v]; e < end; ++e) {
            sum = sum + __ldg(&contrib[sources[e]]);
        }
        const double value = base + sum;
        const double diff = fabs(value - rank[v]);
        t.l1 = t.l1 + diff;
        t.linf = fmax(t.linf, diff);
        next[v] = value;
        const unsigned int k = outdeg[v];
        if (k != 0) {
            contrib_next[v] = __dmul_rn(__dmul_rn(damping, 1.0 / (double)k), value);
        } else {
            contrib_next[v] = 0.0;
            t.mass = t.mass + value;
        }
    }
    pr_store_partials(partials, t);
}

extern "C" __global__ void pagerank_reduce(const double* __restrict__ partials,
                                           double* __restrict__ totals,
                                           unsigned int blocks) {
    pr_triple t = {0.0, 0.0, 0.0};
    for (unsigned int i = threadIdx.x; i < blocks; i += blockDim.x) {
        t.l1 = t.l1 + partials[i];
        t.linf = fmax(t.linf, partials[blocks + i]);
        t.mass = t.mass + partials[2 * blocks + i];
    }
    const pr_triple r = pr_block_reduce(t);
    if (threadIdx.x == 0) {
        totals[0] = r.l1;
        totals[1] = r.linf;
        totals[2] = r.mass;
    }
}
