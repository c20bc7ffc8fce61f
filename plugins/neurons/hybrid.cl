/* neuron.hybrid kernels (see hybrid.c for the model). Single source: compiled as C by hybrid.c
 * and as an OpenCL program (spikecl/kernel.h).
 *
 * Layouts: x is [T, B, in] (x_ts = B*in) or constant [B, in] (x_ts = 0); pre = x W^T is
 * [T, B, out] or [B, out] (a_ts = B*out or 0); mem and adj are [T, B, out]; the Gram matrices
 * G[b, tau, t] = x_tau . x_t and their gradients are [B, T, T], used for tau < t only. */

#define HYB_CFG_SMOOTH 1      /* spike step replaced by the sigmoid (tests) */
#define HYB_CFG_OUT_MEM 2     /* output the membrane instead of spikes */
#define HYB_CFG_NODETACH 4    /* gradients flow through the reset factor (1 - s) */
#define HYB_CFG_BIAS 8        /* add bias[o] to the pre-activation */

#define HYB_FN static inline

HYB_FN float hyb_sigmoid(const float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* H(x), or in smooth mode sigmoid(slope x), whose derivative is the surrogate. */
HYB_FN float hyb_spike(const float x, const float slope, const int smooth)
{
    if (!smooth)
        return x > 0.0f ? 1.0f : 0.0f;
    return hyb_sigmoid(slope * x);
}

/* The sigmoid surrogate: d/dx sigmoid(slope x). */
HYB_FN float hyb_surrogate(const float x, const float slope)
{
    const float s = hyb_sigmoid(slope * x);
    return slope * s * (1.0f - s);
}

/* G[b, tau, t] = x_tau . x_t for the pairs tau < t only (the rest is never read), one item per
 * pair: B T (T - 1) / 2 items, none idle, ordered (b, tau, t) with t fastest so that the row
 * x_tau stays in cache across neighbouring items. */
SPK_KERNEL void hybrid_gram(SPK_GLOBAL float *G, SPK_GLOBAL const float *x, const int B,
                            const int T, const int nin, const int x_ts)
{
    SPK_FOR_ITEMS(j, B * (T * (T - 1) / 2)) {
        const int pairs = T * (T - 1) / 2;
        const int b = j / pairs;
        int q = j - b * pairs, tau = 0;
        while (q >= T - 1 - tau) {
            q -= T - 1 - tau;
            tau++;
        }
        const int t = tau + 1 + q;
        SPK_GLOBAL const float *xa = x + tau * x_ts + b * nin;
        SPK_GLOBAL const float *xb = x + t * x_ts + b * nin;
        float s = 0.0f;
        for (int i = 0; i < nin; i++)
            s += xa[i] * xb[i];
        G[(b * T + tau) * T + t] = s;
    }
    SPK_END_ITEMS
}

/* A lane's per-neuron constants: bias, eta and beta of its output o, and the offset of its
 * sample's Gram matrix (b T T). */
SPK_INLINE void hyb_lane_consts(const int i, const int nout, const int T, const int cfg,
                                SPK_GLOBAL const float *bias, SPK_GLOBAL const float *eta,
                                SPK_GLOBAL const float *beta, float *bi, float *et, float *be,
                                int *gb)
{
    const int o = i % nout;
    *bi = (cfg & HYB_CFG_BIAS) ? bias[o] : 0.0f;
    *et = eta[o];
    *be = beta[o];
    *gb = (i / nout) * T * T;
}

/* Forward over the window, one item per (b, o):
 *   h_t = sum_{tau<t} d^(t-1-tau) G[tau, t] eta (sigmoid(u_tau) + beta)    (= (P_{t-1} x_t)_o)
 *   u_t = (1 - s_{t-1}) (1 - k) u_{t-1} + k (relu(a_t + bias) d^t + alpha h_t)
 *   s_t = H(u_t - vth)
 * with d = exp(-dt / tau_w). Saves u_t in mem. Lane blocks (spikecl/kernel.h): the sigmoid's
 * expf keeps a lane loop scalar, but its lanes are independent chains the core overlaps, where
 * one item's steps each wait for the last. */
SPK_KERNEL void hybrid_forward(SPK_GLOBAL float *out, SPK_GLOBAL float *mem,
                               SPK_GLOBAL const float *pre, SPK_GLOBAL const float *bias,
                               SPK_GLOBAL const float *G, SPK_GLOBAL const float *alpha,
                               SPK_GLOBAL const float *eta, SPK_GLOBAL const float *beta,
                               const int T, const int bn, const int nout, const int a_ts,
                               const int cfg, const float k, const float d, const float vth,
                               const float slope)
{
    const int smooth = (cfg & HYB_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & HYB_CFG_OUT_MEM) != 0;
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, bi);
        SPK_LANE_VAR(float, et);
        SPK_LANE_VAR(float, be);
        SPK_LANE_VAR(int, gb); /* b T T: this lane's Gram matrix */
        SPK_LANE_VAR(float, u);
        SPK_LANE_VAR(float, s);
        SPK_LANE_VAR(float, dt_pow);
        const float al = alpha[0];
        SPK_EACH_LANE(l) {
            hyb_lane_consts(i0 + l, nout, T, cfg, bias, eta, beta, &bi[l], &et[l], &be[l], &gb[l]);
            u[l] = 0.0f;
            s[l] = 0.0f;
            dt_pow[l] = 1.0f;
        }
        for (int t = 0; t < T; t++) {
            SPK_EACH_LANE(l) {
                const int i = i0 + l;
                SPK_GLOBAL const float *g = G + gb[l];
                float h = 0.0f, p = 1.0f;
                for (int tau = t - 1; tau >= 0; tau--) {
                    h += p * g[tau * T + t] * (hyb_sigmoid(mem[tau * bn + i]) + be[l]);
                    p *= d;
                }
                const float r = fmaxf(pre[t * a_ts + i] + bi[l], 0.0f) * dt_pow[l];
                const float uv = (1.0f - s[l]) * (1.0f - k) * u[l] + k * (r + al * et[l] * h);
                const float sv = hyb_spike(uv - vth, slope, smooth);
                u[l] = uv;
                s[l] = sv;
                mem[t * bn + i] = uv;
                out[t * bn + i] = out_mem ? uv : sv;
                dt_pow[l] *= d;
            }
        }
    }
    SPK_END_LANES
}

/* BPTT in reverse time, one item per (b, o), in lane blocks as the forward. lam = dL/du_t
 * collects the output's gradient, the path through u_{t+1} (decay and, unless detached, the
 * reset) and the Hebbian paths through h_{t'} for t' > t; adj[t] = k lam_t is dL/d(the bracket
 * of step t), kept for the Gram gradient. gpre gets dL/d(pre): per step, or summed over t for a
 * constant input (a_ts = 0). part[b, 0..2, o] gets this item's share of dL/dalpha, dL/deta,
 * dL/dbeta (hybrid_reduce sums them over b). */
SPK_KERNEL void hybrid_backward(SPK_GLOBAL float *gpre, SPK_GLOBAL float *adj,
                                SPK_GLOBAL float *part, SPK_GLOBAL const float *gout,
                                SPK_GLOBAL const float *mem, SPK_GLOBAL const float *pre,
                                SPK_GLOBAL const float *bias, SPK_GLOBAL const float *G,
                                SPK_GLOBAL const float *alpha, SPK_GLOBAL const float *eta,
                                SPK_GLOBAL const float *beta, const int T, const int bn,
                                const int nout, const int a_ts, const int cfg, const float k,
                                const float d, const float vth, const float slope)
{
    const int smooth = (cfg & HYB_CFG_SMOOTH) != 0;
    const int out_mem = (cfg & HYB_CFG_OUT_MEM) != 0;
    const int nodetach = (cfg & HYB_CFG_NODETACH) != 0;
    SPK_FOR_LANES(i0, bn) {
        SPK_LANE_VAR(float, bi);
        SPK_LANE_VAR(float, et);
        SPK_LANE_VAR(float, be);
        SPK_LANE_VAR(int, gb);
        SPK_LANE_VAR(float, carry);
        SPK_LANE_VAR(float, ga_sum);
        SPK_LANE_VAR(float, sa);
        SPK_LANE_VAR(float, se);
        SPK_LANE_VAR(float, sb);
        const float al = alpha[0];
        SPK_EACH_LANE(l) {
            hyb_lane_consts(i0 + l, nout, T, cfg, bias, eta, beta, &bi[l], &et[l], &be[l], &gb[l]);
            carry[l] = 0.0f;
            ga_sum[l] = 0.0f;
            sa[l] = 0.0f;
            se[l] = 0.0f;
            sb[l] = 0.0f;
        }
        for (int t = T - 1; t >= 0; t--) {
            SPK_EACH_LANE(l) {
                const int i = i0 + l;
                SPK_GLOBAL const float *g = G + gb[l];
                const float u = mem[t * bn + i];
                float lam = carry[l];
                const float go = gout[t * bn + i];
                lam += out_mem ? go : go * hyb_surrogate(u - vth, slope);
                /* u_t feeds the brackets of t' > t through sigmoid(u_t) */
                float hs = 0.0f, p = 1.0f;
                for (int tp = t + 1; tp < T; tp++) {
                    hs += adj[tp * bn + i] * p * g[t * T + tp];
                    p *= d;
                }
                const float sg = hyb_sigmoid(u);
                lam += al * et[l] * sg * (1.0f - sg) * hs;
                const float mu = k * lam;
                adj[t * bn + i] = mu;
                /* the bracket: relu(a_t + bias) d^t + alpha eta hsum_t (d^t as the forward
                 * makes it) */
                float dt_pow = 1.0f;
                for (int q = 0; q < t; q++)
                    dt_pow *= d;
                const float a = pre[t * a_ts + i] + bi[l];
                const float ga = a > 0.0f ? mu * dt_pow : 0.0f;
                if (a_ts)
                    gpre[t * a_ts + i] = ga;
                else
                    ga_sum[l] += ga;
                float hsum = 0.0f, gsum = 0.0f;
                p = 1.0f;
                for (int tau = t - 1; tau >= 0; tau--) {
                    const float w = p * g[tau * T + t];
                    hsum += w * (hyb_sigmoid(mem[tau * bn + i]) + be[l]);
                    gsum += w;
                    p *= d;
                }
                sa[l] += mu * et[l] * hsum;
                se[l] += mu * al * hsum;
                sb[l] += mu * al * et[l] * gsum;
                /* dL/du_{t-1} through u_t = (1 - s_{t-1}) (1 - k) u_{t-1} + ... */
                if (t > 0) {
                    const float up = mem[(t - 1) * bn + i];
                    float du = (1.0f - hyb_spike(up - vth, slope, smooth)) * (1.0f - k);
                    if (nodetach)
                        du -= (1.0f - k) * up * hyb_surrogate(up - vth, slope);
                    carry[l] = lam * du;
                }
            }
        }
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            const int o = i % nout;
            if (!a_ts)
                gpre[i] = ga_sum[l];
            SPK_GLOBAL float *pp = part + (i / nout) * 3 * nout + o;
            pp[0] = sa[l];
            pp[nout] = se[l];
            pp[2 * nout] = sb[l];
        }
    }
    SPK_END_LANES
}

/* Sums the partials of hybrid_backward over b, one item per column j of part's 3 * nout:
 * columns nout..3nout-1 add to eta'[o] and beta'[o]; column o < nout (alpha's share of neuron
 * o) is left in part[0, o] for hybrid_reduce_alpha (each item reads and writes only its own
 * column). A frozen weight's flag is 0 and its grad is left alone. */
SPK_KERNEL void hybrid_reduce(SPK_GLOBAL float *geta, SPK_GLOBAL float *gbeta,
                              SPK_GLOBAL float *part, const int B, const int nout, const int want)
{
    SPK_FOR_ITEMS(j, 3 * nout) {
        const int kind = j / nout, o = j - kind * nout;
        if (want & (1 << kind)) {
            float sum = 0.0f;
            for (int b = 0; b < B; b++)
                sum += part[b * 3 * nout + j];
            if (kind == 0)
                part[j] = sum;
            else if (kind == 1)
                geta[o] += sum;
            else
                gbeta[o] += sum;
        }
    }
    SPK_END_ITEMS
}

/* alpha'[0] += sum over o of part[0, o] (after hybrid_reduce); one item. */
SPK_KERNEL void hybrid_reduce_alpha(SPK_GLOBAL float *galpha, SPK_GLOBAL const float *part,
                                    const int nout)
{
    SPK_FOR_ITEMS(i, 1) {
        float sum = 0.0f;
        for (int o = 0; o < nout; o++)
            sum += part[o];
        galpha[i] += sum;
    }
    SPK_END_ITEMS
}

/* dL/dG[b, tau, t] (tau < t) = alpha d^(t-1-tau) sum_o adj[t, b, o] eta_o (sigmoid(u_tau) + beta_o);
 * one item per (b, tau, t). */
SPK_KERNEL void hybrid_gram_grad(SPK_GLOBAL float *GG, SPK_GLOBAL const float *adj,
                                 SPK_GLOBAL const float *mem, SPK_GLOBAL const float *alpha,
                                 SPK_GLOBAL const float *eta, SPK_GLOBAL const float *beta,
                                 const int B, const int T, const int nout, const float d)
{
    SPK_FOR_ITEMS(j, B * T * T) {
        const int b = j / (T * T);
        const int tau = (j / T) % T;
        const int t = j % T;
        const int bn = B * nout;
        float s = 0.0f;
        if (tau < t) {
            SPK_GLOBAL const float *m = mem + tau * bn + b * nout;
            SPK_GLOBAL const float *a = adj + t * bn + b * nout;
            for (int o = 0; o < nout; o++)
                s += a[o] * eta[o] * (hyb_sigmoid(m[o]) + beta[o]);
            float p = 1.0f;
            for (int q = tau + 1; q < t; q++)
                p *= d;
            s *= alpha[0] * p;
        }
        GG[j] = s;
    }
    SPK_END_ITEMS
}

/* gin += the Gram path: d(x_tau . x_t)/dx_t = x_tau. Steps: one item per (t, b, i),
 * gin[t] += sum_{tau != t} GG(tau, t) x_tau; a constant input (x_ts = 0): one item per (b, i),
 * gin += 2 x sum_{tau < t} GG[tau, t]. */
SPK_KERNEL void hybrid_gin(SPK_GLOBAL float *gin, SPK_GLOBAL const float *x,
                           SPK_GLOBAL const float *GG, const int n, const int B, const int T,
                           const int nin, const int x_ts)
{
    SPK_FOR_ITEMS(j, n) {
        const int bi = j % (B * nin);
        const int b = bi / nin;
        SPK_GLOBAL const float *gg = GG + b * T * T;
        float s = 0.0f;
        if (x_ts) {
            const int t = j / (B * nin);
            for (int tau = 0; tau < T; tau++) {
                if (tau < t)
                    s += gg[tau * T + t] * x[tau * x_ts + bi];
                else if (tau > t)
                    s += gg[t * T + tau] * x[tau * x_ts + bi];
            }
        } else {
            for (int t = 1; t < T; t++)
                for (int tau = 0; tau < t; tau++)
                    s += gg[tau * T + t];
            s *= 2.0f * x[bi];
        }
        gin[j] += s;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(hybrid_gram, B, B, I, I, I, I)
SPK_CPU_ENTRY(hybrid_forward, B, B, B, B, B, B, B, B, I, I, I, I, I, F, F, F, F)
SPK_CPU_ENTRY(hybrid_backward, B, B, B, B, B, B, B, B, B, B, B, I, I, I, I, I, F, F, F, F)
SPK_CPU_ENTRY(hybrid_reduce, B, B, B, I, I, I)
SPK_CPU_ENTRY(hybrid_reduce_alpha, B, B, I)
SPK_CPU_ENTRY(hybrid_gram_grad, B, B, B, B, B, B, I, I, I, F)
SPK_CPU_ENTRY(hybrid_gin, B, B, B, I, I, I, I, I)
