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
 * recomputes S_t and V_t from it. */
SPK_KERNEL void plif_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *hmem,
                             SPK_GLOBAL const float *in, SPK_GLOBAL const float *w, const int T,
                             const int bn, const int nn, const int in_ts, const int w_st,
                             const int cfg, const float slope, const float vth, const float vr)
{
    SPK_FOR_ITEMS(i, bn) {
        const float k = plif_rate(w[(i % nn) * w_st]);
        const int soft = (cfg & PLIF_CFG_SOFT) != 0;
        const int decay = (cfg & PLIF_CFG_NODECAY) == 0;
        const int sg = PLIF_CFG_SG(cfg);
        const int smooth = (cfg & PLIF_CFG_SMOOTH) != 0;
        const int out_mem = (cfg & PLIF_CFG_OUT_MEM) != 0;
        float v = vr;
        for (int t = 0; t < T; t++) {
            const float x = in[t * in_ts + i];
            const float h = decay ? v + k * (x - (v - vr)) : v - k * (v - vr) + x;
            const float s = spk_sg_spike(h - vth, sg, slope, smooth);
            v = plif_after(h, s, soft, vth, vr);
            hmem[t * bn + i] = h;
            out[t * bn + i] = out_mem ? h : s;
        }
    }
    SPK_END_ITEMS
}

/* BPTT over the window in reverse time. av = dL/dV_t (from H_{t+1}), ah = dL/dH_t (from the
 * output at t and through V_t). dL/dk is summed per item and turned into dL/dw = dL/dk k (1 - k)
 * in gw[i] (reduced over the batch by the host's reduce_grad); grad_in is ah k (decay_input) or ah, per
 * step ([T, B, N]) or summed over t (constant input). */
SPK_KERNEL void plif_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *gw,
                              SPK_GLOBAL const float *gout, SPK_GLOBAL const float *hmem,
                              SPK_GLOBAL const float *in, SPK_GLOBAL const float *w, const int T,
                              const int bn, const int nn, const int in_ts, const int w_st,
                              const int cfg, const float slope, const float vth, const float vr)
{
    SPK_FOR_ITEMS(i, bn) {
        const float k = plif_rate(w[(i % nn) * w_st]);
        const int soft = (cfg & PLIF_CFG_SOFT) != 0;
        const int decay = (cfg & PLIF_CFG_NODECAY) == 0;
        const int sg = PLIF_CFG_SG(cfg);
        const int smooth = (cfg & PLIF_CFG_SMOOTH) != 0;
        const int out_mem = (cfg & PLIF_CFG_OUT_MEM) != 0;
        const int nodetach = (cfg & PLIF_CFG_NODETACH) != 0;
        const int want_gin = (cfg & PLIF_CFG_WANT_GIN) != 0;
        float av = 0.0f, gk = 0.0f, gsum = 0.0f;
        for (int t = T - 1; t >= 0; t--) {
            const float h = hmem[t * bn + i];
            float vp = vr; /* V_{t-1}, exactly as forward computed it */
            if (t > 0) {
                const float hp = hmem[(t - 1) * bn + i];
                vp = plif_after(hp, spk_sg_spike(hp - vth, sg, slope, smooth), soft, vth, vr);
            }
            const float g = gout[t * bn + i];
            const float s = spk_sg_spike(h - vth, sg, slope, smooth);
            const float d = spk_sg_grad(h - vth, sg, slope);
            float ah = out_mem ? g : g * d;
            /* dV_t/dH_t; a detached reset keeps S as a constant factor */
            if (soft)
                ah += av * (1.0f - (nodetach ? vth * d : 0.0f));
            else
                ah += av * ((1.0f - s) + (nodetach ? (vr - h) * d : 0.0f));
            const float x = in[t * in_ts + i];
            gk += ah * (decay ? x - (vp - vr) : -(vp - vr));
            av = ah * (1.0f - k);
            if (want_gin) {
                const float gx = decay ? ah * k : ah;
                if (in_ts)
                    gin[t * in_ts + i] = gx;
                else
                    gsum += gx;
            }
        }
        if (want_gin && !in_ts)
            gin[i] = gsum;
        if (cfg & PLIF_CFG_WANT_GW)
            gw[i] = gk * k * (1.0f - k);
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(plif_forward, B, B, B, B, I, I, I, I, I, I, F, F, F)
SPK_CPU_ENTRY(plif_backward, B, B, B, B, B, B, I, I, I, I, I, I, F, F, F)
