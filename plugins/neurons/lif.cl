/* neuron.lif kernels: snnTorch Leaky dynamics, one work item per (b, n), looping over t inside.
 * Single source: compiled as C by lif.c and as an OpenCL program (see spikecl/kernel.h). */

/* Spike functions and surrogates: spikecl/surrogate.h (spk_sg_spike, spk_sg_grad).
 * Layout of the `cfg` word the host side packs (lif.c checks these against the public enums). */
#define LIF_RESET_SUBTRACT 0
#define LIF_RESET_ZERO 1
#define LIF_RESET_NONE 2
#define LIF_SG_FAST_SIGMOID 0
#define LIF_SG_ATAN 1
#define LIF_SG_SIGMOID 2
#define LIF_SG_TRIANGLE 3
#define LIF_CFG_RESET(c) ((c)&3)
#define LIF_CFG_SG(c) (((c) >> 2) & 7)
#define LIF_CFG_SMOOTH 32     /* spike step replaced by the surrogate's primitive (tests) */
#define LIF_CFG_OUT_MEM 64    /* output the membrane instead of spikes */
#define LIF_CFG_NODETACH 128  /* gradients flow through the reset term */
#define LIF_CFG_WANT_GIN 256  /* write grad_in */
#define LIF_CFG_WANT_GBETA 512
#define LIF_CFG_WANT_GTHR 1024
#define LIF_CFG_RECOMPUTE 2048 /* CPU, constant input: no trace; backward recomputes it */
#define LIF_CFG_COUNT 4096     /* out is [B, N]: the sum over t (SPK_MEM_COUNT_OUT) */
#define LIF_CFG_GOUT_CONST 8192 /* grad_out is [B, N], the same at every t */

/* Recomputing the membranes in backward keeps them in a [T][lanes] block on the stack, so only
 * the CPU does it (OpenCL C has no arrays of run-time size), for windows up to this long: at
 * most 64 KiB of a worker thread's stack (512 lanes). */
#if defined(__OPENCL_VERSION__) || defined(__OPENCL_C_VERSION__)
#define LIF_CAN_RECOMPUTE 0
#else
#define LIF_CAN_RECOMPUTE 1
#endif
#define LIF_RECOMPUTE_MAX_T 32

/* One step of the membrane for one lane: m_t from m_{t-1}, the carried spike r_t and I_t. */
SPK_INLINE float lif_update(const float m, const float r, const float cur, const float b,
                               const float th, const float rv, const int reset)
{
    if (reset == LIF_RESET_SUBTRACT)
        return b * m + cur - r * th;
    if (reset == LIF_RESET_ZERO) /* to reset_value rv, then decay */
        return b * ((1.0f - r) * m + r * rv) + cur;
    return b * m + cur;
}

/* Forward over the window. i indexes [B, N]; the input is read at t*in_ts + i (in_ts = 0 for a
 * constant input), beta and threshold at n*stride (stride 0: one value for the layer).
 * Saves m_t for every t into mem (the backward recomputes resets from it); with
 * LIF_CFG_RECOMPUTE (constant input) only the input, in mem's first step: half the bytes this
 * memory-bound loop writes, and backward reads none. With LIF_CFG_COUNT out gets the sum over
 * t of the outputs, added as readout.spike_count adds them. mem may be in's buffer: each step
 * reads in[t * in_ts + i] before it writes mem[t * bn + i]. Lane blocks (spikecl/kernel.h):
 * the CPU runs neighbouring items in SIMD lanes, t stays sequential. */
SPK_KERNEL void lif_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *mem,
                            SPK_GLOBAL const float *in, SPK_GLOBAL const float *beta,
                            SPK_GLOBAL const float *thr, const int T, const int bn, const int nn,
                            const int in_ts, const int beta_st, const int thr_st, const int cfg,
                            const float slope, const float rv)
{
    const int reset = LIF_CFG_RESET(cfg);
    const int sg = LIF_CFG_SG(cfg);
    const int smooth = (cfg & LIF_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & LIF_CFG_OUT_MEM) != 0;
    const int count = (cfg & LIF_CFG_COUNT) != 0;
    const int trace = !(LIF_CAN_RECOMPUTE && (cfg & LIF_CFG_RECOMPUTE) && !in_ts &&
                        T <= LIF_RECOMPUTE_MAX_T);
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, m);
        SPK_LANE_VAR(float, s);
        SPK_LANE_VAR(float, b);
        SPK_LANE_VAR(float, th);
        SPK_LANE_VAR(float, c);
        SPK_EACH_LANE(l) {
            const int n = beta_st | thr_st ? (i0 + l) % nn : 0; /* no division: vectorises */
            b[l] = beta[n * beta_st];
            th[l] = thr[n * thr_st];
            m[l] = 0.0f;
            c[l] = 0.0f;
            /* r_t = S(m_{t-1} - thr) equals the previous step's spike: carry it */
            s[l] = spk_sg_spike(-th[l], sg, slope, smooth);
        }
        if (!trace)
            SPK_EACH_LANE(l) {
                mem[i0 + l] = in[i0 + l];
            }
        for (int t = 0; t < T; t++) {
            /* the step function has no call in it: that loop vectorises */
#define LIF_FWD_LANES(sm, keep, cnt)                                                              \
    SPK_EACH_LANE(l) {                                                                             \
        const int i = i0 + l;                                                                      \
        const float v = lif_update(m[l], s[l], in[t * in_ts + i], b[l], th[l], rv, reset);        \
        const float sv = spk_sg_spike(v - th[l], sg, slope, sm);                                   \
        m[l] = v;                                                                                  \
        s[l] = sv;                                                                                 \
        if (keep)                                                                                  \
            mem[t * bn + i] = v;                                                                   \
        if (cnt)                                                                                   \
            c[l] += out_mem ? v : sv;                                                              \
        else                                                                                       \
            out[t * bn + i] = out_mem ? v : sv;                                                    \
    }
            /* literal flags: each variant's lane loop has no branch in it */
#define LIF_FWD_KEEP(sm, cnt)                                                                     \
    {                                                                                              \
        if (trace)                                                                                 \
            LIF_FWD_LANES(sm, 1, cnt)                                                              \
        else                                                                                       \
            LIF_FWD_LANES(sm, 0, cnt)                                                              \
    }
            if (count && !smooth)
                LIF_FWD_KEEP(0, 1)
            else if (count)
                LIF_FWD_KEEP(1, 1)
            else if (!smooth)
                LIF_FWD_KEEP(0, 0)
            else
                LIF_FWD_KEEP(1, 0)
#undef LIF_FWD_KEEP
#undef LIF_FWD_LANES
        }
        if (count)
            SPK_EACH_LANE(l) {
                out[i0 + l] = c[l];
            }
    }
    SPK_END_LANES
}

/* Where lif_back_step reads the membranes: the trace in global memory, or on the CPU also the
 * block recomputed on the stack (the same address space there). */
#if LIF_CAN_RECOMPUTE
#define SPK_MEMBRANES
#else
#define SPK_MEMBRANES SPK_GLOBAL
#endif

/* BPTT over the window in reverse time. a = dL/dm_t (from the output at t and from m_{t+1});
 * carry = a * dm_t/dm_{t-1}. Per-item sums of dL/dbeta and dL/dthr go to gbeta[i], gthr[i]
 * (reduced over the batch by the host's reduce_grad); grad_in is a ([T, B, N]) or sum_t a
 * (constant input). grad_in may be mem's buffer: step t reads mem[t] and mem[t - 1], then
 * writes grad_in[t], and no later (earlier-t) step reads mem[t]. */
SPK_INLINE float lif_back_step(SPK_GLOBAL const float *gout,
                                 const SPK_MEMBRANES float *mem, const int t, const int i,
                                 const int gst, const int mi, const int mst, const float b,
                                 const float th, const int reset, const int sg,
                                 const float slope, const int smooth, const int out_mem,
                                 const int nodetach, const float rv, float *carry, float *gb,
                                 float *gt)
{
    const float m = mem[t * mst + mi];
    /* an unconditional load (of m_0 at t = 0) keeps the lane loop free of branches */
    const float mload = mem[(t > 0 ? t - 1 : 0) * mst + mi];
    const float mp = t > 0 ? mload : 0.0f;
    const float g = gout[t * gst + i];
    float a = *carry, gbv = *gb, gtv = *gt, c;
    /* locals, stored once at the end: the lane loop keeps no conditional store */
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
    if (reset == LIF_RESET_SUBTRACT) {
        /* m_t = b m_{t-1} + I_t - r_t thr */
        gbv += a * mp;
        gtv += a * (dr * th - r);
        c = a * (b - dr * th);
    } else if (reset == LIF_RESET_ZERO) {
        /* m_t = b ((1 - r_t) m_{t-1} + r_t rv) + I_t */
        gbv += a * ((1.0f - r) * mp + r * rv);
        gtv += a * b * (mp - rv) * dr;
        c = a * b * (1.0f - r + (rv - mp) * dr);
    } else {
        gbv += a * mp;
        c = a * b;
    }
    *carry = c;
    *gb = gbv;
    *gt = gtv;
    return a;
}

SPK_KERNEL void lif_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *gbeta,
                             SPK_GLOBAL float *gthr, SPK_GLOBAL const float *gout,
                             SPK_GLOBAL const float *mem, SPK_GLOBAL const float *beta,
                             SPK_GLOBAL const float *thr, const int T, const int bn, const int nn,
                             const int in_ts, const int beta_st, const int thr_st, const int cfg,
                             const float slope, const float rv)
{
    const int reset = LIF_CFG_RESET(cfg);
    const int sg = LIF_CFG_SG(cfg);
    const int smooth = (cfg & LIF_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & LIF_CFG_OUT_MEM) != 0;
    const int nodetach = (cfg & LIF_CFG_NODETACH) != 0;
    const int want_gin = (cfg & LIF_CFG_WANT_GIN) != 0;
    const int gst = (cfg & LIF_CFG_GOUT_CONST) ? 0 : bn; /* grad_out's step stride */
    const int recompute = LIF_CAN_RECOMPUTE && (cfg & LIF_CFG_RECOMPUTE) && !in_ts &&
                          T <= LIF_RECOMPUTE_MAX_T;
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, b);
        SPK_LANE_VAR(float, th);
        SPK_LANE_VAR(float, carry);
        SPK_LANE_VAR(float, gb);
        SPK_LANE_VAR(float, gt);
        SPK_LANE_VAR(float, gsum);
        SPK_LANE_VAR(float, ag); /* dL/dm_t of the step */
        SPK_EACH_LANE(l) {
            const int n = beta_st | thr_st ? (i0 + l) % nn : 0; /* no division: vectorises */
            b[l] = beta[n * beta_st];
            th[l] = thr[n * thr_st];
            carry[l] = 0.0f;
            gb[l] = 0.0f;
            gt[l] = 0.0f;
            gsum[l] = 0.0f;
        }
        const SPK_MEMBRANES float *mb = mem;
        int mo = i0, mst = bn; /* membrane of lane l at step t: mb[t * mst + mo + l] */
#if LIF_CAN_RECOMPUTE
        /* the forward's loop again, from the input it kept in mem's first step */
        float mre[recompute ? T : 1][SPK_LANES];
        if (recompute) {
            SPK_LANE_VAR(float, m);
            SPK_LANE_VAR(float, s);
            SPK_EACH_LANE(l) {
                m[l] = 0.0f;
                s[l] = spk_sg_spike(-th[l], sg, slope, smooth);
            }
            for (int t = 0; t < T; t++) {
#define LIF_RE_LANES(sm)                                                                          \
    SPK_EACH_LANE(l) {                                                                             \
        const float v = lif_update(m[l], s[l], mem[i0 + l], b[l], th[l], rv, reset);             \
        s[l] = spk_sg_spike(v - th[l], sg, slope, sm);                                             \
        m[l] = v;                                                                                  \
        mre[t][l] = v;                                                                             \
    }
                if (!smooth)
                    LIF_RE_LANES(0)
                else
                    LIF_RE_LANES(1)
#undef LIF_RE_LANES
            }
            mb = &mre[0][0];
            mo = 0;
            mst = SPK_LANES;
        }
#endif
        for (int t = T - 1; t >= 0; t--) {
            /* a literal surrogate kind leaves no call in the lane loop: it vectorises */
#define LIF_BACK_LANES(kind, sm)                                                                  \
    SPK_EACH_LANE(l) {                                                                             \
        ag[l] = lif_back_step(gout, mb, t, i0 + l, gst, mo + l, mst, b[l], th[l], reset, kind,     \
                              slope, sm, out_mem, nodetach, rv, &carry[l], &gb[l], &gt[l]);      \
        gsum[l] += ag[l];                                                                          \
    }
            SPK_SG_SPECIALISE(LIF_BACK_LANES, sg, smooth)
#undef LIF_BACK_LANES
            if (want_gin && in_ts)
                SPK_EACH_LANE(l) {
                    gin[t * in_ts + i0 + l] = ag[l];
                }
        }
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            if (want_gin && !in_ts)
                gin[i] = gsum[l];
            if (cfg & LIF_CFG_WANT_GBETA)
                gbeta[i] = gb[l];
            if (cfg & LIF_CFG_WANT_GTHR)
                gthr[i] = gt[l];
        }
    }
    SPK_END_LANES
}

SPK_CPU_ENTRY(lif_forward, B, B, B, B, B, I, I, I, I, I, I, I, F, F)
SPK_CPU_ENTRY(lif_backward, B, B, B, B, B, B, B, I, I, I, I, I, I, I, F, F)
