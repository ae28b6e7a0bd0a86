// Example handler: running statistics kept in the kernel's state across
// messages: count, mean and variance of every value seen (Welford), and the
// mean, min and max of the last 16 values (a ring buffer in the state).
// Stateful and order-dependent: instantiate with dc::SERIAL. Every operation
// is written with an explicit rounding intrinsic, so the result is the same
// bit for bit as the Rust twin's whatever --fmad says.
// Rust twin: dotcompute::gpu::handlers::running_stats.
__device__ void running_stats(const Sample* in, Stats* out, StatsState* s) {
    const double x = (double)in->value;
    s->count += 1;
    const double delta = __dsub_rn(x, s->mean);
    s->mean = __dadd_rn(s->mean, __ddiv_rn(delta, (double)s->count));
    s->m2 = __dadd_rn(s->m2, __dmul_rn(delta, __dsub_rn(x, s->mean)));
    s->window[s->next] = in->value;
    s->next = (s->next + 1) % 16;
    if (s->len < 16) s->len += 1;
    float sum = 0.0f, lo = s->window[0], hi = s->window[0];
    for (unsigned int i = 0; i < s->len; ++i) {
        const float v = s->window[i];
        sum = __fadd_rn(sum, v);
        lo = fminf(lo, v);
        hi = fmaxf(hi, v);
    }
    out->seq = in->seq;
    out->count = s->count;
    out->mean = s->mean;
    out->variance = s->count > 1 ? __ddiv_rn(s->m2, (double)(s->count - 1)) : 0.0;
    out->window_mean = __fdiv_rn(sum, (float)s->len);
    out->window_min = lo;
    out->window_max = hi;
    out->window_len = s->len;
}
