/* neuron.alif kernels: one work item per (b, n), looping over t inside. Single source: alif.c
 * compiles this file as C for the CPU backend and hands its text to OpenCL (spikecl/kernel.h).
 * The equations are in alif.c. */

/* Bits of the `cfg` argument (alif.c packs them). */
#define ALIF_CFG_SMOOTH 1     /* spike step replaced by the surrogate's primitive (tests) */
#define ALIF_CFG_NODETACH 2   /* gradients flow through the reset term s_{t-1} b_{t-1} */
#define ALIF_CFG_WANT_GIN 4   /* write grad_in */
#define ALIF_CFG_WANT_GBETA 8 /* write the per-item partials of dL/dbeta */

/* `static inline` is valid in C99 and in OpenCL C 1.2 */
#define ALIF_FN static inline

/* H(x), or in smooth mode x / (1 + k|x|) + 1/2, whose derivative is the fast sigmoid's. */
ALIF_FN float alif_spike(const float x, const float k, const int smooth)
{
    if (!smooth)
        return x > 0.0f ? 1.0f : 0.0f;
    return x / (1.0f + k * fabsf(x)) + 0.5f;
}

/* The fast-sigmoid surrogate dS/dx = 1 / (1 + k|x|)^2 (Zenke & Ganguli 2018). */
ALIF_FN float alif_surrogate(const float x, const float k)
{
    const float d = k * fabsf(x) + 1.0f;
    return 1.0f / (d * d);
}

/* Forward over the window. The input is read at t*in_ts + i (in_ts = 0: constant input [B, N]),
 * beta at n*beta_st (0: one value for the layer). Saves v_t and a_t for the backward pass; the
 * threshold and the spike are recomputed from them with the same operations, so they match. */
SPK_KERNEL void alif_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *vmem,
                             SPK_GLOBAL float *amem, SPK_GLOBAL const float *in,
                             SPK_GLOBAL const float *beta, const int T, const int bn,
                             const int nn, const int in_ts, const int beta_st, const int cfg,
                             const float rho, const float b0, const float beta_a,
                             const float slope)
{
    SPK_FOR_ITEMS(i, bn) {
        const float bt = beta[(i % nn) * beta_st];
        const int smooth = (cfg & ALIF_CFG_SMOOTH) != 0;
        /* s_{-1} = 0 and b_{-1} = b0: nothing fired before the window */
        float v = 0.0f, a = 0.0f, s = 0.0f, thr = b0;
        for (int t = 0; t < T; t++) {
            const float reset = s * thr; /* s_{t-1} b_{t-1} */
            a = rho * a + s;
            thr = b0 + beta_a * a;
            v = bt * v + in[t * in_ts + i] - reset;
            s = alif_spike(v - thr, slope, smooth);
            vmem[t * bn + i] = v;
            amem[t * bn + i] = a;
            out[t * bn + i] = s;
        }
    }
    SPK_END_ITEMS
}

/* BPTT in reverse time. Carried: gv = dL/dv_{t+1}, ga = dL/da_{t+1}. At step t, with
 * x_t = v_t - b_t and d = S'(x_t):
 *   dL/ds_t = g_t + dL/da_{t+1}                [a_{t+1} = rho a_t + s_t]
 *             - dL/dv_{t+1} b_t                [reset of v_{t+1}; not when detached]
 *   dL/dv_t = dL/ds_t d + dL/dv_{t+1} beta
 *   dL/db_t = -dL/ds_t d - dL/dv_{t+1} s_t     [second term: reset, not when detached]
 *   dL/da_t = dL/db_t beta_a + dL/da_{t+1} rho
 *   dL/dI_t = dL/dv_t,  dL/dbeta += dL/dv_t v_{t-1}
 * grad_in gets dL/dI_t ([T, B, N]) or its sum over t (constant input). */
SPK_KERNEL void alif_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *gbeta,
                              SPK_GLOBAL const float *gout, SPK_GLOBAL const float *vmem,
                              SPK_GLOBAL const float *amem, SPK_GLOBAL const float *beta,
                              const int T, const int bn, const int nn, const int in_ts,
                              const int beta_st, const int cfg, const float rho, const float b0,
                              const float beta_a, const float slope)
{
    SPK_FOR_ITEMS(i, bn) {
        const float bt = beta[(i % nn) * beta_st];
        const int smooth = (cfg & ALIF_CFG_SMOOTH) != 0;
        const int nodetach = (cfg & ALIF_CFG_NODETACH) != 0;
        const int want_gin = (cfg & ALIF_CFG_WANT_GIN) != 0;
        float gv = 0.0f, ga = 0.0f, gb = 0.0f, gsum = 0.0f;
        for (int t = T - 1; t >= 0; t--) {
            const float v = vmem[t * bn + i];
            const float vp = t > 0 ? vmem[(t - 1) * bn + i] : 0.0f;
            const float thr = b0 + beta_a * amem[t * bn + i];
            const float x = v - thr;
            const float d = alif_surrogate(x, slope);
            float gs = gout[t * bn + i] + ga;
            float gthr = 0.0f;
            if (nodetach) {
                gs -= gv * thr;
                gthr = -gv * alif_spike(x, slope, smooth);
            }
            const float gvt = gs * d + gv * bt;
            gthr -= gs * d;
            ga = gthr * beta_a + ga * rho;
            gv = gvt;
            gb += gv * vp;
            if (want_gin) {
                if (in_ts)
                    gin[t * in_ts + i] = gv;
                else
                    gsum += gv;
            }
        }
        if (want_gin && !in_ts)
            gin[i] = gsum;
        if (cfg & ALIF_CFG_WANT_GBETA)
            gbeta[i] = gb;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(alif_forward, B, B, B, B, B, I, I, I, I, I, I, F, F, F, F)
SPK_CPU_ENTRY(alif_backward, B, B, B, B, B, B, I, I, I, I, I, I, F, F, F, F)
