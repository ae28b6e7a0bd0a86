// Example handler: transform. value -> 2 * value + 1 (one fused multiply-add,
// correctly rounded like Rust's f32::mul_add) and value squared. A value that
// is not finite is an error (code 1); the reply is still written.
// Rust twin: dotcompute::gpu::handlers::transform.
__device__ int transform(const Sample* in, Scaled* out, NoState* state) {
    (void)state;
    out->seq = in->seq;
    out->channel = in->channel;
    out->value = fmaf(in->value, 2.0f, 1.0f);
    out->squared = __fmul_rn(in->value, in->value);
    return isfinite(in->value) ? 0 : 1;
}
