/* neuron.if kernels: integrate-and-fire (the LIF of lif.cl with beta = 1), one work item per
 * (b, n), looping over t inside. Single source: compiled as C by if.c and as an OpenCL program
 * (see spikecl/kernel.h). */

/* Spike functions and surrogates: spikecl/surrogate.h (spk_sg_spike, spk_sg_grad).
 * Layout of the `cfg` word the host side packs (if.c checks these against the public enums). */
#define IF_RESET_SUBTRACT 0
#define IF_RESET_ZERO 1
#define IF_RESET_NONE 2
#define IF_SG_FAST_SIGMOID 0
#define IF_SG_ATAN 1
#define IF_SG_SIGMOID 2
#define IF_SG_TRIANGLE 3
#define IF_CFG_RESET(c) ((c)&3)
#define IF_CFG_SG(c) (((c) >> 2) & 7)
#define IF_CFG_SMOOTH 32    /* spike step replaced by the surrogate's primitive (tests) */
#define IF_CFG_OUT_MEM 64   /* output the membrane instead of spikes */
#define IF_CFG_NODETACH 128 /* gradients flow through the reset term */
#define IF_CFG_WANT_GIN 256 /* write grad_in */
#define IF_CFG_WANT_GTHR 512

/* helpers: `static inline` is valid in C99 and in OpenCL C 1.2. Each .cl file is its own
 * OpenCL program, so the surrogate definitions of lif.cl are repeated here under this prefix. */

/* Forward over the window. i indexes [B, N]; the input is read at t*in_ts + i (in_ts = 0 for a
 * constant input), the threshold at n*thr_st (0: one value for the layer). rv is the value a
 * zero reset sets the membrane to. Saves m_t for every t (backward recomputes resets from it). */
SPK_KERNEL void if_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *mem,
                           SPK_GLOBAL const float *in, SPK_GLOBAL const float *thr, const int T,
                           const int bn, const int nn, const int in_ts, const int thr_st,
                           const int cfg, const float slope, const float rv)
{
    SPK_FOR_ITEMS(i, bn) {
        const int n = i % nn;
        const float th = thr[n * thr_st];
        const int reset = IF_CFG_RESET(cfg);
        const int sg = IF_CFG_SG(cfg);
        const int smooth = (cfg & IF_CFG_SMOOTH) != 0;
        const int out_mem = (cfg & IF_CFG_OUT_MEM) != 0;
        float m = 0.0f;
        /* r_t = S(m_{t-1} - thr) is the previous step's spike: carry it */
        float s = spk_sg_spike(-th, sg, slope, smooth);
        for (int t = 0; t < T; t++) {
            const float cur = in[t * in_ts + i];
            if (reset == IF_RESET_SUBTRACT)
                m = m + cur - s * th;
            else if (reset == IF_RESET_ZERO)
                m = (1.0f - s) * m + s * rv + cur;
            else
                m = m + cur;
            s = spk_sg_spike(m - th, sg, slope, smooth);
            mem[t * bn + i] = m;
            out[t * bn + i] = out_mem ? m : s;
        }
    }
    SPK_END_ITEMS
}

/* BPTT over the window in reverse time. a = dL/dm_t (from the output at t and from m_{t+1});
 * carry = a dm_t/dm_{t-1}. The per-item sum of dL/dthr goes to gthr[i] (reduced over the batch
 * by the host's reduce_grad); grad_in is a ([T, B, N]) or sum_t a (constant input). */
SPK_KERNEL void if_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *gthr,
                            SPK_GLOBAL const float *gout, SPK_GLOBAL const float *mem,
                            SPK_GLOBAL const float *thr, const int T, const int bn, const int nn,
                            const int in_ts, const int thr_st, const int cfg, const float slope,
                            const float rv)
{
    SPK_FOR_ITEMS(i, bn) {
        const int n = i % nn;
        const float th = thr[n * thr_st];
        const int reset = IF_CFG_RESET(cfg);
        const int sg = IF_CFG_SG(cfg);
        const int smooth = (cfg & IF_CFG_SMOOTH) != 0;
        const int out_mem = (cfg & IF_CFG_OUT_MEM) != 0;
        const int nodetach = (cfg & IF_CFG_NODETACH) != 0;
        const int want_gin = (cfg & IF_CFG_WANT_GIN) != 0;
        float carry = 0.0f, gt = 0.0f, gsum = 0.0f;
        for (int t = T - 1; t >= 0; t--) {
            const float m = mem[t * bn + i];
            const float mp = t > 0 ? mem[(t - 1) * bn + i] : 0.0f;
            const float g = gout[t * bn + i];
            float a = carry;
            if (out_mem) {
                a += g;
            } else {
                const float d = spk_sg_grad(m - th, sg, slope);
                a += g * d;
                gt -= g * d; /* s_t = S(m_t - thr) */
            }
            /* the reset r_t = S(m_{t-1} - thr) and, unless detached, its derivative */
            const float r = spk_sg_spike(mp - th, sg, slope, smooth);
            const float dr = nodetach ? spk_sg_grad(mp - th, sg, slope) : 0.0f;
            if (reset == IF_RESET_SUBTRACT) {
                /* m_t = m_{t-1} + I_t - r_t thr */
                gt += a * (dr * th - r);
                carry = a * (1.0f - dr * th);
            } else if (reset == IF_RESET_ZERO) {
                /* m_t = (1 - r_t) m_{t-1} + r_t rv + I_t; dr_t/dthr = -dr */
                gt += a * (mp - rv) * dr;
                carry = a * (1.0f - r + (rv - mp) * dr);
            } else {
                carry = a;
            }
            if (want_gin) {
                if (in_ts)
                    gin[t * in_ts + i] = a;
                else
                    gsum += a;
            }
        }
        if (want_gin && !in_ts)
            gin[i] = gsum;
        if (cfg & IF_CFG_WANT_GTHR)
            gthr[i] = gt;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(if_forward, B, B, B, B, I, I, I, I, I, I, F, F)
SPK_CPU_ENTRY(if_backward, B, B, B, B, B, I, I, I, I, I, I, F, F)
