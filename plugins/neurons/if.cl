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
#define IF_CFG_COUNT 1024      /* out is [B, N]: the sum over t (SPK_MEM_COUNT_OUT) */
#define IF_CFG_GOUT_CONST 2048 /* grad_out is [B, N], the same at every t */

/* helpers: `static inline` is valid in C99 and in OpenCL C 1.2. Each .cl file is its own
 * OpenCL program, so the surrogate definitions of lif.cl are repeated here under this prefix. */

/* One step of the membrane for one lane: m_t from m_{t-1}, the carried spike r_t and I_t. */
SPK_INLINE float if_update(const float m, const float r, const float cur, const float th,
                              const float rv, const int reset)
{
    if (reset == IF_RESET_SUBTRACT)
        return m + cur - r * th;
    if (reset == IF_RESET_ZERO)
        return (1.0f - r) * m + r * rv + cur;
    return m + cur;
}

/* Forward over the window. i indexes [B, N]; the input is read at t*in_ts + i (in_ts = 0 for a
 * constant input), the threshold at n*thr_st (0: one value for the layer). rv is the value a
 * zero reset sets the membrane to. Saves m_t for every t (backward recomputes resets from it);
 * mem may be in's buffer (each element read before it is written). With IF_CFG_COUNT out gets
 * the sum over t of the outputs, added as readout.spike_count adds them. Lane blocks
 * (spikecl/kernel.h): the CPU runs neighbouring items in SIMD lanes. */
SPK_KERNEL void if_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *mem,
                           SPK_GLOBAL const float *in, SPK_GLOBAL const float *thr, const int T,
                           const int bn, const int nn, const int in_ts, const int thr_st,
                           const int cfg, const float slope, const float rv)
{
    const int reset = IF_CFG_RESET(cfg);
    const int sg = IF_CFG_SG(cfg);
    const int smooth = (cfg & IF_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & IF_CFG_OUT_MEM) != 0;
    const int count = (cfg & IF_CFG_COUNT) != 0;
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, m);
        SPK_LANE_VAR(float, s);
        SPK_LANE_VAR(float, th);
        SPK_LANE_VAR(float, c);
        SPK_EACH_LANE(l) {
            th[l] = thr[(thr_st ? (i0 + l) % nn : 0) * thr_st];
            m[l] = 0.0f;
            c[l] = 0.0f;
            /* r_t = S(m_{t-1} - thr) is the previous step's spike: carry it */
            s[l] = spk_sg_spike(-th[l], sg, slope, smooth);
        }
        for (int t = 0; t < T; t++) {
            /* a literal smooth = 0 leaves no call in the lane loop: it vectorises */
#define IF_FWD_LANES(sm, cnt)                                                                     \
    SPK_EACH_LANE(l) {                                                                             \
        const int i = i0 + l;                                                                      \
        const float v = if_update(m[l], s[l], in[t * in_ts + i], th[l], rv, reset);               \
        const float sv = spk_sg_spike(v - th[l], sg, slope, sm);                                  \
        m[l] = v;                                                                                  \
        s[l] = sv;                                                                                 \
        mem[t * bn + i] = v;                                                                       \
        if (cnt)                                                                                   \
            c[l] += out_mem ? v : sv;                                                              \
        else                                                                                       \
            out[t * bn + i] = out_mem ? v : sv;                                                    \
    }
            if (smooth && count)
                IF_FWD_LANES(1, 1)
            else if (smooth)
                IF_FWD_LANES(1, 0)
            else if (count)
                IF_FWD_LANES(0, 1)
            else
                IF_FWD_LANES(0, 0)
#undef IF_FWD_LANES
        }
        if (count)
            SPK_EACH_LANE(l) {
                out[i0 + l] = c[l];
            }
    }
    SPK_END_LANES
}

/* BPTT over the window in reverse time. a = dL/dm_t (from the output at t and from m_{t+1});
 * carry = a dm_t/dm_{t-1}. The per-item sum of dL/dthr goes to gthr[i] (reduced over the batch
 * by the host's reduce_grad); grad_in is a ([T, B, N]) or sum_t a (constant input), and may be
 * mem's buffer (step t reads mem[t] and mem[t - 1] before it writes grad_in[t]). grad_out is
 * read at t * gst + i (gst = 0: the same at every step). One lane's step; returns a. State
 * goes through locals, stored once: no conditional store. */
SPK_INLINE float if_back_step(SPK_GLOBAL const float *gout, SPK_GLOBAL const float *mem,
                                 const int t, const int i, const int bn, const int gst,
                                 const float th,
                                 const int reset, const int sg, const float slope,
                                 const int smooth, const int out_mem, const int nodetach,
                                 const float rv, float *carry, float *gt)
{
    const float m = mem[t * bn + i];
    /* an unconditional load (of m_0 at t = 0) keeps the lane loop free of branches */
    const float mload = mem[(t > 0 ? t - 1 : 0) * bn + i];
    const float mp = t > 0 ? mload : 0.0f;
    const float g = gout[t * gst + i];
    float a = *carry, gtv = *gt, c;
    if (out_mem) {
        a += g;
    } else {
        const float d = spk_sg_grad(m - th, sg, slope);
        a += g * d;
        gtv -= g * d; /* s_t = S(m_t - thr) */
    }
    /* the reset r_t = S(m_{t-1} - thr) and, unless detached, its derivative */
    const float r = spk_sg_spike(mp - th, sg, slope, smooth);
    const float dr = nodetach ? spk_sg_grad(mp - th, sg, slope) : 0.0f;
    if (reset == IF_RESET_SUBTRACT) {
        /* m_t = m_{t-1} + I_t - r_t thr */
        gtv += a * (dr * th - r);
        c = a * (1.0f - dr * th);
    } else if (reset == IF_RESET_ZERO) {
        /* m_t = (1 - r_t) m_{t-1} + r_t rv + I_t; dr_t/dthr = -dr */
        gtv += a * (mp - rv) * dr;
        c = a * (1.0f - r + (rv - mp) * dr);
    } else {
        c = a;
    }
    *carry = c;
    *gt = gtv;
    return a;
}

SPK_KERNEL void if_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *gthr,
                            SPK_GLOBAL const float *gout, SPK_GLOBAL const float *mem,
                            SPK_GLOBAL const float *thr, const int T, const int bn, const int nn,
                            const int in_ts, const int thr_st, const int cfg, const float slope,
                            const float rv)
{
    const int reset = IF_CFG_RESET(cfg);
    const int sg = IF_CFG_SG(cfg);
    const int smooth = (cfg & IF_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & IF_CFG_OUT_MEM) != 0;
    const int nodetach = (cfg & IF_CFG_NODETACH) != 0;
    const int want_gin = (cfg & IF_CFG_WANT_GIN) != 0;
    const int gst = (cfg & IF_CFG_GOUT_CONST) ? 0 : bn; /* grad_out's step stride */
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, th);
        SPK_LANE_VAR(float, carry);
        SPK_LANE_VAR(float, gt);
        SPK_LANE_VAR(float, gsum);
        SPK_LANE_VAR(float, ag); /* dL/dm_t of the step */
        SPK_EACH_LANE(l) {
            th[l] = thr[(thr_st ? (i0 + l) % nn : 0) * thr_st];
            carry[l] = 0.0f;
            gt[l] = 0.0f;
            gsum[l] = 0.0f;
        }
        for (int t = T - 1; t >= 0; t--) {
            /* a literal surrogate kind leaves no call in the lane loop: it vectorises */
#define IF_BACK_LANES(kind, sm)                                                                   \
    SPK_EACH_LANE(l) {                                                                             \
        ag[l] = if_back_step(gout, mem, t, i0 + l, bn, gst, th[l], reset, kind, slope, sm,         \
                             out_mem, nodetach, rv, &carry[l], &gt[l]);                            \
        gsum[l] += ag[l];                                                                          \
    }
            SPK_SG_SPECIALISE(IF_BACK_LANES, sg, smooth)
#undef IF_BACK_LANES
            if (want_gin && in_ts)
                SPK_EACH_LANE(l) {
                    gin[t * in_ts + i0 + l] = ag[l];
                }
        }
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            if (want_gin && !in_ts)
                gin[i] = gsum[l];
            if (cfg & IF_CFG_WANT_GTHR)
                gthr[i] = gt[l];
        }
    }
    SPK_END_LANES
}

SPK_CPU_ENTRY(if_forward, B, B, B, B, I, I, I, I, I, I, F, F)
SPK_CPU_ENTRY(if_backward, B, B, B, B, B, I, I, I, I, I, I, F, F)
