// Example handler: echo. Every Sample comes back unchanged.
// Rust twin: dotcompute::gpu::handlers::echo.
__device__ void echo(const Sample* in, Sample* out, NoState* state) {
    (void)state;
    *out = *in;
}
