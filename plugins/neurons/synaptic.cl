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
#define SYN_CFG_COUNT 4096      /* out is [B, N]: the sum over t (SPK_MEM_COUNT_OUT) */
#define SYN_CFG_GOUT_CONST 8192 /* grad_out is [B, N], the same at every t */

/* helpers: `static inline` is valid in C99 and in OpenCL C 1.2. Each .cl file is its own
 * OpenCL program, so the surrogate definitions of lif.cl are repeated here under this prefix. */

/* One step of the membrane for one lane: m_t from m_{t-1}, the carried spike r_t and syn_t. */
SPK_INLINE float syn_update(const float m, const float r, const float sy, const float b,
                               const float th, const int reset)
{
    if (reset == SYN_RESET_SUBTRACT)
        return b * m + sy - r * th;
    if (reset == SYN_RESET_ZERO)
        return (1.0f - r) * (b * m + sy);
    return b * m + sy;
}

/* Forward over the window. i indexes [B, N]; the input is read at t*in_ts + i (in_ts = 0 for a
 * constant input), alpha, beta and threshold at n*stride (stride 0: one value for the layer).
 * Saves syn_t and m_t for every t: backward needs syn_{t-1} and recomputes resets from m; mem
 * may be in's buffer (each element read before it is written). With SYN_CFG_COUNT out gets the
 * sum over t of the outputs, added as readout.spike_count adds them. Lane blocks
 * (spikecl/kernel.h): the CPU runs neighbouring items in SIMD lanes. */
SPK_KERNEL void syn_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *mem, SPK_GLOBAL float *synv,
                            SPK_GLOBAL const float *in, SPK_GLOBAL const float *alpha,
                            SPK_GLOBAL const float *beta, SPK_GLOBAL const float *thr,
                            const int T, const int bn, const int nn, const int in_ts,
                            const int alpha_st, const int beta_st, const int thr_st, const int cfg,
                            const float slope)
{
    const int reset = SYN_CFG_RESET(cfg);
    const int sg = SYN_CFG_SG(cfg);
    const int smooth = (cfg & SYN_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & SYN_CFG_OUT_MEM) != 0;
    const int count = (cfg & SYN_CFG_COUNT) != 0;
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, c);
        SPK_LANE_VAR(float, m);
        SPK_LANE_VAR(float, sy);
        SPK_LANE_VAR(float, s);
        SPK_LANE_VAR(float, al);
        SPK_LANE_VAR(float, b);
        SPK_LANE_VAR(float, th);
        SPK_EACH_LANE(l) {
            const int n = alpha_st | beta_st | thr_st ? (i0 + l) % nn : 0;
            al[l] = alpha[n * alpha_st];
            b[l] = beta[n * beta_st];
            th[l] = thr[n * thr_st];
            m[l] = 0.0f;
            sy[l] = 0.0f;
            c[l] = 0.0f;
            /* r_t = S(m_{t-1} - thr) is the previous step's spike: carry it */
            s[l] = spk_sg_spike(-th[l], sg, slope, smooth);
        }
        for (int t = 0; t < T; t++) {
            /* a literal smooth = 0 leaves no call in the lane loop: it vectorises */
#define SYN_FWD_LANES(sm, cnt)                                                                    \
    SPK_EACH_LANE(l) {                                                                             \
        const int i = i0 + l;                                                                      \
        const float y = al[l] * sy[l] + in[t * in_ts + i];                                         \
        const float v = syn_update(m[l], s[l], y, b[l], th[l], reset);                             \
        const float sv = spk_sg_spike(v - th[l], sg, slope, sm);                                  \
        sy[l] = y;                                                                                 \
        m[l] = v;                                                                                  \
        s[l] = sv;                                                                                 \
        synv[t * bn + i] = y;                                                                      \
        mem[t * bn + i] = v;                                                                       \
        if (cnt)                                                                                   \
            c[l] += out_mem ? v : sv;                                                              \
        else                                                                                       \
            out[t * bn + i] = out_mem ? v : sv;                                                    \
    }
            if (smooth && count)
                SYN_FWD_LANES(1, 1)
            else if (smooth)
                SYN_FWD_LANES(1, 0)
            else if (count)
                SYN_FWD_LANES(0, 1)
            else
                SYN_FWD_LANES(0, 0)
#undef SYN_FWD_LANES
        }
        if (count)
            SPK_EACH_LANE(l) {
                out[i0 + l] = c[l];
            }
    }
    SPK_END_LANES
}

/* BPTT over the window in reverse time with two adjoints: am = dL/dm_t (output at t, m_{t+1})
 * and as = dL/dsyn_t (m_t, syn_{t+1}); cm and cs carry their parts from step t+1. Per-item sums
 * of dL/dalpha, dL/dbeta, dL/dthr go to galpha[i], gbeta[i], gthr[i] (reduced over the batch by
 * the host's reduce_grad); grad_in is as ([T, B, N]) or sum_t as (constant input), since
 * dsyn_t/dI_t = 1, and may be mem's buffer (step t reads mem[t] and mem[t - 1] before it writes
 * grad_in[t]). grad_out is read at t * gst + i (gst = 0: the same at every step). One lane's
 * step; returns as. State goes through locals, stored once: no conditional store. */
SPK_INLINE float syn_back_step(SPK_GLOBAL const float *gout, SPK_GLOBAL const float *mem,
                                  SPK_GLOBAL const float *synv, const int t, const int i,
                                  const int bn, const int gst, const float al, const float b,
                                  const float th, const int reset, const int sg, const float slope,
                                  const int smooth, const int out_mem, const int nodetach,
                                  float *cm, float *cs, float *ga, float *gb, float *gt)
{
    const float m = mem[t * bn + i];
    const float sy = synv[t * bn + i];
    /* unconditional loads (of step 0 at t = 0) keep the lane loop free of branches */
    const int tp = t > 0 ? t - 1 : 0;
    const float mload = mem[tp * bn + i], syload = synv[tp * bn + i];
    const float mp = t > 0 ? mload : 0.0f;
    const float syp = t > 0 ? syload : 0.0f;
    const float g = gout[t * gst + i];
    float am = *cm, gbv = *gb, gtv = *gt, cmv;
    if (out_mem) {
        am += g;
    } else {
        const float d = spk_sg_grad(m - th, sg, slope);
        am += g * d;
        gtv -= g * d; /* s_t = S(m_t - thr) */
    }
    /* the reset r_t = S(m_{t-1} - thr) and, unless detached, its derivative */
    const float r = spk_sg_spike(mp - th, sg, slope, smooth);
    const float dr = nodetach ? spk_sg_grad(mp - th, sg, slope) : 0.0f;
    float as = *cs;
    if (reset == SYN_RESET_SUBTRACT) {
        /* m_t = b m_{t-1} + syn_t - r_t thr */
        as += am;
        gbv += am * mp;
        gtv += am * (dr * th - r);
        cmv = am * (b - dr * th);
    } else if (reset == SYN_RESET_ZERO) {
        /* m_t = (1 - r_t)(b m_{t-1} + syn_t); dr_t/dthr = -dr */
        const float pre = b * mp + sy;
        as += am * (1.0f - r);
        gbv += am * (1.0f - r) * mp;
        gtv += am * pre * dr;
        cmv = am * ((1.0f - r) * b - pre * dr);
    } else {
        as += am;
        gbv += am * mp;
        cmv = am * b;
    }
    /* syn_t = alpha syn_{t-1} + I_t */
    *ga += as * syp;
    *cs = as * al;
    *cm = cmv;
    *gb = gbv;
    *gt = gtv;
    return as;
}

SPK_KERNEL void syn_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *galpha,
                             SPK_GLOBAL float *gbeta, SPK_GLOBAL float *gthr,
                             SPK_GLOBAL const float *gout, SPK_GLOBAL const float *mem,
                             SPK_GLOBAL const float *synv, SPK_GLOBAL const float *alpha,
                             SPK_GLOBAL const float *beta, SPK_GLOBAL const float *thr,
                             const int T, const int bn, const int nn, const int in_ts,
                             const int alpha_st, const int beta_st, const int thr_st, const int cfg,
                             const float slope)
{
    const int reset = SYN_CFG_RESET(cfg);
    const int sg = SYN_CFG_SG(cfg);
    const int smooth = (cfg & SYN_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & SYN_CFG_OUT_MEM) != 0;
    const int nodetach = (cfg & SYN_CFG_NODETACH) != 0;
    const int want_gin = (cfg & SYN_CFG_WANT_GIN) != 0;
    const int gst = (cfg & SYN_CFG_GOUT_CONST) ? 0 : bn; /* grad_out's step stride */
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, al);
        SPK_LANE_VAR(float, b);
        SPK_LANE_VAR(float, th);
        SPK_LANE_VAR(float, cm);
        SPK_LANE_VAR(float, cs);
        SPK_LANE_VAR(float, ga);
        SPK_LANE_VAR(float, gb);
        SPK_LANE_VAR(float, gt);
        SPK_LANE_VAR(float, gsum);
        SPK_LANE_VAR(float, ag); /* dL/dsyn_t of the step */
        SPK_EACH_LANE(l) {
            const int n = alpha_st | beta_st | thr_st ? (i0 + l) % nn : 0;
            al[l] = alpha[n * alpha_st];
            b[l] = beta[n * beta_st];
            th[l] = thr[n * thr_st];
            cm[l] = 0.0f;
            cs[l] = 0.0f;
            ga[l] = 0.0f;
            gb[l] = 0.0f;
            gt[l] = 0.0f;
            gsum[l] = 0.0f;
        }
        for (int t = T - 1; t >= 0; t--) {
            /* a literal surrogate kind leaves no call in the lane loop: it vectorises */
#define SYN_BACK_LANES(kind, sm)                                                                  \
    SPK_EACH_LANE(l) {                                                                             \
        ag[l] = syn_back_step(gout, mem, synv, t, i0 + l, bn, gst, al[l], b[l], th[l], reset,      \
                              kind, slope, sm, out_mem, nodetach, &cm[l], &cs[l], &ga[l], &gb[l],  \
                              &gt[l]);                                                             \
        gsum[l] += ag[l];                                                                          \
    }
            SPK_SG_SPECIALISE(SYN_BACK_LANES, sg, smooth)
#undef SYN_BACK_LANES
            if (want_gin && in_ts)
                SPK_EACH_LANE(l) {
                    gin[t * in_ts + i0 + l] = ag[l];
                }
        }
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            if (want_gin && !in_ts)
                gin[i] = gsum[l];
            if (cfg & SYN_CFG_WANT_GALPHA)
                galpha[i] = ga[l];
            if (cfg & SYN_CFG_WANT_GBETA)
                gbeta[i] = gb[l];
            if (cfg & SYN_CFG_WANT_GTHR)
                gthr[i] = gt[l];
        }
    }
    SPK_END_LANES
}

SPK_CPU_ENTRY(syn_forward, B, B, B, B, B, B, B, I, I, I, I, I, I, I, I, F)
SPK_CPU_ENTRY(syn_backward, B, B, B, B, B, B, B, B, B, B, I, I, I, I, I, I, I, I, F)
