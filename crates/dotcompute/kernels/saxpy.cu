// y[i] = a * x[i] + y[i] for i < n (single-precision a·x plus y).
extern "C" __global__ void saxpy(float a,
                                 const float* __restrict__ x,
                                 float* __restrict__ y,
                                 unsigned int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        y[i] = a * x[i] + y[i];
    }
}
