/* neuron.synaptic kernels: snnTorch Synaptic (a synaptic current feeding a leaky membrane), one
 * work item per (b, n), looping over t inside. Single source: compiled as C by synaptic.c and as
 * an OpenCL program (see spikecl/kernel.h). */

/* Spike functions and surrogates: spikecl/surrogate.h (spk_sg_spike, spk_sg_grad).
 * Layout of the `cfg` word the host side packs (synaptic.c checks these against the enums). */
#define SYN_RESET_SUBTRACT 0
#define SYN_RESET_ZERO 1
#define SYN_RESET_NONE 2
#define SYN_SG_FAST_SIGMOID 0
#define SYN_SG_ATAN 1
#define SYN_SG_SIGMOID 2
#define SYN_SG_TRIANGLE 3
#define SYN_CFG_RESET(c) ((c)&3)
#define SYN_CFG_SG(c) (((c) >> 2) & 7)
#define SYN_CFG_SMOOTH 32    /* spike step replaced by the surrogate's primitive (tests) */
#define SYN_CFG_OUT_MEM 64   /* output the membrane instead of spikes */
#define SYN_CFG_NODETACH 128 /* gradients flow through the reset term */
#define SYN_CFG_WANT_GIN 256 /* write grad_in */
#define SYN_CFG_WANT_GALPHA 512
#define SYN_CFG_WANT_GBETA 1024
#define SYN_CFG_WANT_GTHR 2048

/* helpers: `static inline` is valid in C99 and in OpenCL C 1.2. Each .cl file is its own
 * OpenCL program, so the surrogate definitions of lif.cl are repeated here under this prefix. */

/* Forward over the window. i indexes [B, N]; the input is read at t*in_ts + i (in_ts = 0 for a
 * constant input), alpha, beta and threshold at n*stride (stride 0: one value for the layer).
 * Saves syn_t and m_t for every t: backward needs syn_{t-1} and recomputes resets from m. */
SPK_KERNEL void syn_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *mem, SPK_GLOBAL float *synv,
                            SPK_GLOBAL const float *in, SPK_GLOBAL const float *alpha,
                            SPK_GLOBAL const float *beta, SPK_GLOBAL const float *thr,
                            const int T, const int bn, const int nn, const int in_ts,
                            const int alpha_st, const int beta_st, const int thr_st, const int cfg,
                            const float slope)
{
    SPK_FOR_ITEMS(i, bn) {
        const int n = i % nn;
        const float al = alpha[n * alpha_st];
        const float b = beta[n * beta_st];
        const float th = thr[n * thr_st];
        const int reset = SYN_CFG_RESET(cfg);
        const int sg = SYN_CFG_SG(cfg);
        const int smooth = (cfg & SYN_CFG_SMOOTH) != 0;
        const int out_mem = (cfg & SYN_CFG_OUT_MEM) != 0;
        float m = 0.0f, sy = 0.0f;
        /* r_t = S(m_{t-1} - thr) is the previous step's spike: carry it */
        float s = spk_sg_spike(-th, sg, slope, smooth);
        for (int t = 0; t < T; t++) {
            sy = al * sy + in[t * in_ts + i];
            if (reset == SYN_RESET_SUBTRACT)
                m = b * m + sy - s * th;
            else if (reset == SYN_RESET_ZERO)
                m = (1.0f - s) * (b * m + sy);
            else
                m = b * m + sy;
            s = spk_sg_spike(m - th, sg, slope, smooth);
            synv[t * bn + i] = sy;
            mem[t * bn + i] = m;
            out[t * bn + i] = out_mem ? m : s;
        }
    }
    SPK_END_ITEMS
}

/* BPTT over the window in reverse time with two adjoints: am = dL/dm_t (output at t, m_{t+1})
 * and as = dL/dsyn_t (m_t, syn_{t+1}); cm and cs carry their parts from step t+1. Per-item sums
 * of dL/dalpha, dL/dbeta, dL/dthr go to galpha[i], gbeta[i], gthr[i] (reduced over the batch by
 * the host's reduce_grad); grad_in is as ([T, B, N]) or sum_t as (constant input), since dsyn_t/dI_t = 1. */
SPK_KERNEL void syn_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *galpha,
                             SPK_GLOBAL float *gbeta, SPK_GLOBAL float *gthr,
                             SPK_GLOBAL const float *gout, SPK_GLOBAL const float *mem,
                             SPK_GLOBAL const float *synv, SPK_GLOBAL const float *alpha,
                             SPK_GLOBAL const float *beta, SPK_GLOBAL const float *thr,
                             const int T, const int bn, const int nn, const int in_ts,
                             const int alpha_st, const int beta_st, const int thr_st, const int cfg,
                             const float slope)
{
    SPK_FOR_ITEMS(i, bn) {
        const int n = i % nn;
        const float al = alpha[n * alpha_st];
        const float b = beta[n * beta_st];
        const float th = thr[n * thr_st];
        const int reset = SYN_CFG_RESET(cfg);
        const int sg = SYN_CFG_SG(cfg);
        const int smooth = (cfg & SYN_CFG_SMOOTH) != 0;
        const int out_mem = (cfg & SYN_CFG_OUT_MEM) != 0;
        const int nodetach = (cfg & SYN_CFG_NODETACH) != 0;
        const int want_gin = (cfg & SYN_CFG_WANT_GIN) != 0;
        float cm = 0.0f, cs = 0.0f, ga = 0.0f, gb = 0.0f, gt = 0.0f, gsum = 0.0f;
        for (int t = T - 1; t >= 0; t--) {
            const float m = mem[t * bn + i];
            const float sy = synv[t * bn + i];
            const float mp = t > 0 ? mem[(t - 1) * bn + i] : 0.0f;
            const float syp = t > 0 ? synv[(t - 1) * bn + i] : 0.0f;
            const float g = gout[t * bn + i];
            float am = cm;
            if (out_mem) {
                am += g;
            } else {
                const float d = spk_sg_grad(m - th, sg, slope);
                am += g * d;
                gt -= g * d; /* s_t = S(m_t - thr) */
            }
            /* the reset r_t = S(m_{t-1} - thr) and, unless detached, its derivative */
            const float r = spk_sg_spike(mp - th, sg, slope, smooth);
            const float dr = nodetach ? spk_sg_grad(mp - th, sg, slope) : 0.0f;
            float as = cs;
            if (reset == SYN_RESET_SUBTRACT) {
                /* m_t = b m_{t-1} + syn_t - r_t thr */
                as += am;
                gb += am * mp;
                gt += am * (dr * th - r);
                cm = am * (b - dr * th);
            } else if (reset == SYN_RESET_ZERO) {
                /* m_t = (1 - r_t)(b m_{t-1} + syn_t); dr_t/dthr = -dr */
                const float pre = b * mp + sy;
                as += am * (1.0f - r);
                gb += am * (1.0f - r) * mp;
                gt += am * pre * dr;
                cm = am * ((1.0f - r) * b - pre * dr);
            } else {
                as += am;
                gb += am * mp;
                cm = am * b;
            }
            /* syn_t = alpha syn_{t-1} + I_t */
            ga += as * syp;
            cs = as * al;
            if (want_gin) {
                if (in_ts)
                    gin[t * in_ts + i] = as;
                else
                    gsum += as;
            }
        }
        if (want_gin && !in_ts)
            gin[i] = gsum;
        if (cfg & SYN_CFG_WANT_GALPHA)
            galpha[i] = ga;
        if (cfg & SYN_CFG_WANT_GBETA)
            gbeta[i] = gb;
        if (cfg & SYN_CFG_WANT_GTHR)
            gthr[i] = gt;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(syn_forward, B, B, B, B, B, B, B, I, I, I, I, I, I, I, I, F)
SPK_CPU_ENTRY(syn_backward, B, B, B, B, B, B, B, B, B, B, I, I, I, I, I, I, I, I, F)
