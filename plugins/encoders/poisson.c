/* encoder.poisson — rate (Poisson/Bernoulli) coding: at every step each feature spikes with
 * probability clamp(gain * x, 0, 1), like snntorch.spikegen.rate. The draws come from
 * Philox4x32-10 keyed by (seed, purpose, epoch) with counter (feature / 4, step, sample id), so
 * a sample draws the same spikes on every backend and in whatever batch it lands.
 *
 * Backward is a straight-through estimator of the expected spike: d E[s]/dx = gain where the
 * rate is not clipped (0 < gain x < 1) and 0 where it is; the per-step gradients are summed.
 * (The encoder is usually the first layer and needs no gradient; this makes input gradients,
 * e.g. for saliency or a learnable preprocessing layer, meaningful rather than zero.) */
#include "builtin.h"
#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#if defined(__AVX512F__)
#include <immintrin.h>

/* Philox for the CPU's lane blocks with AVX-512 (poisson.cl calls it where defined): the same
 * words as spk_philox4x32_10. GCC 12 vectorises the portable code's 64-bit product as 8-lane
 * vpmullq after widening; here vpmuludq gives both halves of 16 lanes, 4 vectors at a time for
 * the multipliers' throughput (4.2 -> 2.2 ns per draw of four words on a Zen 4 core). */
#define POISSON_PHILOX_LANES 1

/* hi and lo of a * m per 32-bit lane: vpmuludq takes the even lanes, the odd ones shifted down */
static inline void poisson_mulhilo16(__m512i a, __m512i m, __m512i *hi, __m512i *lo)
{
    const __m512i pe = _mm512_mul_epu32(a, m), po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
    *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

/* u[4 l + k] = word k of Philox4x32-10 at counter (g[l], t[l], id[l], 0), key (k0, k1), l < n */
static inline void poisson_philox_lanes(spk_u32 *u, const int *g, const spk_u32 *t,
                                        const spk_u32 *id, const int n, const spk_u32 k0,
                                        const spk_u32 k1)
{
    enum { V = 4 }; /* vectors of 16 lanes in flight */
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u),
                  m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    int l = 0;
    for (; l + 16 * V <= n; l += 16 * V) {
        __m512i x0[V], x1[V], x2[V], x3[V];
        for (int v = 0; v < V; v++) {
            x0[v] = _mm512_loadu_si512(g + l + 16 * v);
            x1[v] = _mm512_loadu_si512(t + l + 16 * v);
            x2[v] = _mm512_loadu_si512(id + l + 16 * v);
            x3[v] = _mm512_setzero_si512();
        }
        spk_u32 a = k0, b = k1;
        for (int r = 0; r < 10; r++) {
            const __m512i ka = _mm512_set1_epi32((int)a), kb = _mm512_set1_epi32((int)b);
            for (int v = 0; v < V; v++) {
                __m512i hi0, lo0, hi1, lo1;
                poisson_mulhilo16(x0[v], m0, &hi0, &lo0);
                poisson_mulhilo16(x2[v], m1, &hi1, &lo1);
                x0[v] = _mm512_ternarylogic_epi32(hi1, x1[v], ka, 0x96); /* three-way xor */
                x1[v] = lo1;
                x2[v] = _mm512_ternarylogic_epi32(hi0, x3[v], kb, 0x96);
                x3[v] = lo0;
            }
            a += 0x9E3779B9u;
            b += 0xBB67AE85u;
        }
        /* to lane-major words: a 4 x 4 transpose of words within each 128-bit block, then of the
         * blocks across the four vectors */
        for (int v = 0; v < V; v++) {
            const __m512i t0 = _mm512_unpacklo_epi32(x0[v], x1[v]);
            const __m512i t1 = _mm512_unpackhi_epi32(x0[v], x1[v]);
            const __m512i t2 = _mm512_unpacklo_epi32(x2[v], x3[v]);
            const __m512i t3 = _mm512_unpackhi_epi32(x2[v], x3[v]);
            const __m512i q0 = _mm512_unpacklo_epi64(t0, t2), q1 = _mm512_unpackhi_epi64(t0, t2);
            const __m512i q2 = _mm512_unpacklo_epi64(t1, t3), q3 = _mm512_unpackhi_epi64(t1, t3);
            const __m512i A = _mm512_shuffle_i32x4(q0, q1, 0x44);
            const __m512i B = _mm512_shuffle_i32x4(q2, q3, 0x44);
            const __m512i C = _mm512_shuffle_i32x4(q0, q1, 0xEE);
            const __m512i D = _mm512_shuffle_i32x4(q2, q3, 0xEE);
            spk_u32 *o = u + 4 * (l + 16 * v);
            _mm512_storeu_si512(o, _mm512_shuffle_i32x4(A, B, 0x88));
            _mm512_storeu_si512(o + 16, _mm512_shuffle_i32x4(A, B, 0xDD));
            _mm512_storeu_si512(o + 32, _mm512_shuffle_i32x4(C, D, 0x88));
            _mm512_storeu_si512(o + 48, _mm512_shuffle_i32x4(C, D, 0xDD));
        }
    }
    for (; l < n; l++) {
        spk_philox_ctr c;
        c.v[0] = (spk_u32)g[l];
        c.v[1] = t[l];
        c.v[2] = id[l];
        c.v[3] = 0u;
        const spk_philox_ctr r = spk_philox4x32_10(c, k0, k1);
        for (int k = 0; k < 4; k++)
            u[4 * l + k] = r.v[k];
    }
}
#endif

#include "poisson.cl"
#include "poisson_cl.h"

static const spk_param_spec poisson_params[] = {
    {"gain", SPK_PARAM_FLOAT, "1", 0, 1e9, NULL, "spike probability per step = gain * input"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int poisson_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return spk_error_set(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_STEPS)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "expected an input without a time axis (the network input), got "
                             "one over time steps");
    l->host->set_output(l, spk_shape_timed(l->in[0], SPK_TIME_STEPS));
    return SPK_OK;
}

static int poisson_forward(spk_layer *l, spk_exec *x)
{
    const int nf = spk_shape_size(&l->in[0]);
    const int ng = (nf + 3) / 4; /* one Philox draw per four features */
    const int n = x->T * x->B * ng;
    const float gain = (float)l->host->param_num(l, "gain");
    const uint32_t key1 = SPK_RNG_POISSON ^ (x->epoch << 4);
    if (!x->sample_ids)
        return l->host->error(x, SPK_ERR_INVALID, "no sample ids to key the spikes on");
    return SPK_LAUNCH(l, x, "poisson_encode", (size_t)n, SPK_ARG_BUF(x->out), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_BUF(x->sample_ids), SPK_ARG_INT(n), SPK_ARG_INT(ng),
                      SPK_ARG_INT(x->B), SPK_ARG_INT(nf), SPK_ARG_FLOAT(gain), SPK_ARG_INT(x->seed),
                      SPK_ARG_INT(key1));
}

static int poisson_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    const int bf = x->B * spk_shape_size(&l->in[0]);
    const float gain = (float)l->host->param_num(l, "gain");
    return SPK_LAUNCH(l, x, "poisson_grad", (size_t)bf, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_BUF(x->in[0]), SPK_ARG_INT(bf),
                      SPK_ARG_INT(x->T), SPK_ARG_FLOAT(gain));
}

static const spk_cpu_kernel poisson_cpu_kernels[] = {
    SPK_CPU_KERNEL(poisson_encode),
    SPK_CPU_KERNEL(poisson_grad),
    {0},
};

const spk_layer_type spk_builtin_encoder_poisson = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "encoder.poisson",
    .kind = SPK_KIND_ENCODER,
    .summary = "rate coding: Bernoulli spikes with probability gain * input (Philox RNG)",
    .params = poisson_params,
    .init = poisson_init,
    .forward = poisson_forward,
    .backward = poisson_backward,
    .destroy = NULL,
    .memory =
        SPK_MEM_OUT_FORWARD_ONLY, /* backward reads grad_out and the input, never the spikes */
    .kernels = {.owner = "encoder.poisson",
                .opencl_source = poisson_cl_source,
                .cpu_kernels = poisson_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_encoder_poisson);
