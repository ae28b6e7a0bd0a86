// Block-level sum: partial[blockIdx.x] = sum of the elements this block's
// threads visit. Each thread first sums a grid-stride slice of `input`, then
// the block reduces its threads' sums in dynamic shared memory (blockDim.x
// floats; blockDim.x must be a power of two). The host (or a second launch
// with one block) adds the gridDim.x partial sums.
extern "C" __global__ void reduce_sum(const float* __restrict__ input,
                                      float* __restrict__ partial,
                                      unsigned int n) {
    extern __shared__ float scratch[];
    const unsigned int tid = threadIdx.x;
    float sum = 0.0f;
    for (unsigned int i = blockIdx.x * blockDim.x + tid; i < n; i += blockDim.x * gridDim.x) {
        sum += input[i];
    }
    scratch[tid] = sum;
    __syncthreads();
    for (unsigned int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (tid < stride) {
            scratch[tid] += scratch[tid + stride];
        }
        __syncthreads();
    }
    if (tid == 0) {
        partial[blockIdx.x] = scratch[0];
    }
}
