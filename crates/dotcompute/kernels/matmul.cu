// C (m×n) = A (m×k) · B (k×n), row-major, single precision, tiled through
// shared memory. Launch with 16×16 blocks and a grid of
// (ceil(n/16), ceil(m/16)) blocks; TILE may be redefined with -DTILE=.
#ifndef TILE
#define TILE 16
#endif

extern "C" __global__ void matmul(const float* __restrict__ a,
                                  const float* __restrict__ b,
                                  float* __restrict__ c,
                                  unsigned int m,
                                  unsigned int n,
                                  unsigned int k) {
    __shared__ float ta[TILE][TILE];
    __shared__ float tb[TILE][TILE];
    const unsigned int row = blockIdx.y * TILE + threadIdx.y;
    const unsigned int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (unsigned int t = 0; t < (k + TILE - 1) / TILE; ++t) {
        const unsigned int ak = t * TILE + threadIdx.x;
        const unsigned int bk = t * TILE + threadIdx.y;
        ta[threadIdx.y][threadIdx.x] = (row < m && ak < k) ? a[row * k + ak] : 0.0f;
        tb[threadIdx.y][threadIdx.x] = (bk < k && col < n) ? b[bk * n + col] : 0.0f;
        __syncthreads();
        for (unsigned int i = 0; i < TILE; ++i) {
            acc += ta[threadIdx.y][i] * tb[i][threadIdx.x];
        }
        __syncthreads();
    }
    if (row < m && col < n) {
        c[row * n + col] = acc;
    }
}
