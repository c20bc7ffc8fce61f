/* neuron.plif kernels: the parametric LIF neuron of Fang et al. 2021 (1/tau = sigmoid(w)), one
 * work item per (b, n), looping over t inside. Single source: compiled as C by plif.c and as an
 * OpenCL program (see spikecl/kernel.h). */

/* Layout of the `cfg` word the host side packs (plif.c checks these against the enums). */
#define PLIF_CFG_SOFT 1    /* soft reset V = H - S vth (else hard: V = H (1 - S) + vr S) */
#define PLIF_CFG_NODECAY 2 /* decay_input false: H = V - (V - vr) k + X */
#define PLIF_SG_FAST_SIGMOID 0
#define PLIF_SG_ATAN 1
#define PLIF_SG_SIGMOID 2
#define PLIF_SG_TRIANGLE 3
#define PLIF_CFG_SG(c) (((c) >> 2) & 7)
#define PLIF_CFG_SMOOTH 32    /* spike step replaced by the surrogate's primitive (tests) */
#define PLIF_CFG_OUT_MEM 64   /* output H (the membrane before the reset) instead of spikes */
#define PLIF_CFG_NODETACH 128 /* gradients flow through the spike in the reset */
#define PLIF_CFG_WANT_GIN 256 /* write grad_in */
#define PLIF_CFG_WANT_GW 512
#define PLIF_CFG_COUNT 1024      /* out is [B, N]: the sum over t (SPK_MEM_COUNT_OUT) */
#define PLIF_CFG_GOUT_CONST 2048 /* grad_out is [B, N], the same at every t */

/* helpers: `static inline` is valid in C99 and in OpenCL C 1.2. Each .cl file is its own
 * OpenCL program, so the surrogate definitions of lif.cl are repeated here under this prefix. */
#define PLIF_FN static inline

/* 1/tau from the learnt w. */
PLIF_FN float plif_rate(const float w)
{
    return 1.0f / (1.0f + expf(-w));
}

/* The membrane after the reset, from H and the spike it fired. */
PLIF_FN float plif_after(const float h, const float s, const int soft, const float vth,
                         const float vr)
{
    return soft ? h - s * vth : h * (1.0f - s) + vr * s;
}

/* Forward over the window. i indexes [B, N]; the input is read at t*in_ts + i (in_ts = 0 for a
 * constant input), w at n*w_st (0: one value for the layer). Saves H_t for every t: backward
 * recomputes S_t and V_t from it. With PLIF_CFG_COUNT out gets the sum over t of the outputs,
 * added as readout.spike_count adds them.
 * Lane blocks (spikecl/kernel.h): the CPU runs neighbouring items in SIMD lanes. */
SPK_KERNEL void plif_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *hmem,
                             SPK_GLOBAL const float *in, SPK_GLOBAL const float *w, const int T,
                             const int bn, const int nn, const int in_ts, const int w_st,
                             const int cfg, const float slope, const float vth, const float vr)
{
    const int soft = (cfg & PLIF_CFG_SOFT) != 0;
    const int decay = (cfg & PLIF_CFG_NODECAY) == 0;
    const int sg = PLIF_CFG_SG(cfg);
    const int smooth = (cfg & PLIF_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & PLIF_CFG_OUT_MEM) != 0;
    const int count = (cfg & PLIF_CFG_COUNT) != 0;
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, k);
        SPK_LANE_VAR(float, v);
        SPK_LANE_VAR(float, c);
        SPK_EACH_LANE(l) {
            k[l] = plif_rate(w[(w_st ? (i0 + l) % nn : 0) * w_st]);
            v[l] = vr;
            c[l] = 0.0f;
        }
        for (int t = 0; t < T; t++) {
            /* a literal smooth = 0 leaves no call in the lane loop: it vectorises */
#define PLIF_FWD_LANES(sm, cnt)                                                                   \
    SPK_EACH_LANE(l) {                                                                             \
        const int i = i0 + l;                                                                      \
        const float x = in[t * in_ts + i];                                                         \
        const float h = decay ? v[l] + k[l] * (x - (v[l] - vr)) : v[l] - k[l] * (v[l] - vr) + x;   \
        const float s = spk_sg_spike(h - vth, sg, slope, sm);                                     \
        v[l] = plif_after(h, s, soft, vth, vr);                                                    \
        hmem[t * bn + i] = h;                                                                      \
        if (cnt)                                                                                   \
            c[l] += out_mem ? h : s;                                                               \
        else                                                                                       \
            out[t * bn + i] = out_mem ? h : s;                                                     \
    }
            if (smooth && count)
                PLIF_FWD_LANES(1, 1)
            else if (smooth)
                PLIF_FWD_LANES(1, 0)
            else if (count)
                PLIF_FWD_LANES(0, 1)
            else
                PLIF_FWD_LANES(0, 0)
#undef PLIF_FWD_LANES
        }
        if (count)
            SPK_EACH_LANE(l) {
                out[i0 + l] = c[l];
            }
    }
    SPK_END_LANES
}

/* BPTT over the window in reverse time. av = dL/dV_t (from H_{t+1}), ah = dL/dH_t (from the
 * output at t and through V_t). dL/dk is summed per item and turned into dL/dw = dL/dk k (1 - k)
 * in gw[i] (reduced over the batch by the host's reduce_grad); grad_in is ah k (decay_input) or
 * ah, per step ([T, B, N]) or summed over t (constant input). grad_out is read at t * gst + i
 * (gst = 0: the same at every step).
 * One lane's step; returns dL/dx_t. State goes through locals, stored once. */
SPK_INLINE float plif_back_step(SPK_GLOBAL const float *gout, SPK_GLOBAL const float *hmem,
                                SPK_GLOBAL const float *in, const int t, const int i,
                                const int bn, const int gst, const int in_ts, const float k,
                                const int soft, const int decay, const int sg, const float slope,
                                const int smooth,
                                const int out_mem, const int nodetach, const float vth,
                                const float vr, float *av, float *gk)
{
    const float h = hmem[t * bn + i];
    /* V_{t-1}, exactly as forward computed it; an unconditional load (H_0 at t = 0) keeps the
     * lane loop free of branches */
    const float hp = hmem[(t > 0 ? t - 1 : 0) * bn + i];
    const float vafter = plif_after(hp, spk_sg_spike(hp - vth, sg, slope, smooth), soft, vth, vr);
    const float vp = t > 0 ? vafter : vr;
    const float g = gout[t * gst + i];
    const float s = spk_sg_spike(h - vth, sg, slope, smooth);
    const float d = spk_sg_grad(h - vth, sg, slope);
    float ah = out_mem ? g : g * d;
    /* dV_t/dH_t; a detached reset keeps S as a constant factor */
    if (soft)
        ah += *av * (1.0f - (nodetach ? vth * d : 0.0f));
    else
        ah += *av * ((1.0f - s) + (nodetach ? (vr - h) * d : 0.0f));
    const float x = in[t * in_ts + i];
    *gk += ah * (decay ? x - (vp - vr) : -(vp - vr));
    *av = ah * (1.0f - k);
    return decay ? ah * k : ah;
}

SPK_KERNEL void plif_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *gw,
                              SPK_GLOBAL const float *gout, SPK_GLOBAL const float *hmem,
                              SPK_GLOBAL const float *in, SPK_GLOBAL const float *w, const int T,
                              const int bn, const int nn, const int in_ts, const int w_st,
                              const int cfg, const float slope, const float vth, const float vr)
{
    const int soft = (cfg & PLIF_CFG_SOFT) != 0;
    const int decay = (cfg & PLIF_CFG_NODECAY) == 0;
    const int sg = PLIF_CFG_SG(cfg);
    const int smooth = (cfg & PLIF_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & PLIF_CFG_OUT_MEM) != 0;
    const int nodetach = (cfg & PLIF_CFG_NODETACH) != 0;
    const int want_gin = (cfg & PLIF_CFG_WANT_GIN) != 0;
    const int gst = (cfg & PLIF_CFG_GOUT_CONST) ? 0 : bn; /* grad_out's step stride */
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, k);
        SPK_LANE_VAR(float, av);
        SPK_LANE_VAR(float, gk);
        SPK_LANE_VAR(float, gsum);
        SPK_LANE_VAR(float, gx); /* dL/dx_t of the step */
        SPK_EACH_LANE(l) {
            k[l] = plif_rate(w[(w_st ? (i0 + l) % nn : 0) * w_st]);
            av[l] = 0.0f;
            gk[l] = 0.0f;
            gsum[l] = 0.0f;
        }
        for (int t = T - 1; t >= 0; t--) {
            /* a literal surrogate kind leaves no call in the lane loop: it vectorises */
#define PLIF_BACK_LANES(kind, sm)                                                                 \
    SPK_EACH_LANE(l) {                                                                             \
        gx[l] = plif_back_step(gout, hmem, in, t, i0 + l, bn, gst, in_ts, k[l], soft, decay, kind, \
                               slope, sm, out_mem, nodetach, vth, vr, &av[l], &gk[l]);             \
        gsum[l] += gx[l];                                                                          \
    }
            SPK_SG_SPECIALISE(PLIF_BACK_LANES, sg, smooth)
#undef PLIF_BACK_LANES
            if (want_gin && in_ts)
                SPK_EACH_LANE(l) {
                    gin[t * in_ts + i0 + l] = gx[l];
                }
        }
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            if (want_gin && !in_ts)
                gin[i] = gsum[l];
            if (cfg & PLIF_CFG_WANT_GW)
                gw[i] = gk[l] * k[l] * (1.0f - k[l]);
        }
    }
    SPK_END_LANES
}

SPK_CPU_ENTRY(plif_forward, B, B, B, B, I, I, I, I, I, I, F, F, F)
SPK_CPU_ENTRY(plif_backward, B, B, B, B, B, B, I, I, I, I, I, I, F, F, F)
