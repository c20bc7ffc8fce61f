/* Kernels of loss.ce_rate and loss.ce_max_membrane: cross-entropy over a [T, B, C] series
 * (z_ts = B*C) or a single [B, C] (z_ts = 0, one step). Softmax over the C values of a sample,
 * log-sum-exp stabilised; labels are class indices stored as floats. */

/* logsumexp(z[0..C)) - z[label], and the softmax's normaliser pieces. */
static inline float cet_nll(SPK_GLOBAL const float *z, const int C, const int label)
{
    float mx = z[0];
    for (int c = 1; c < C; c++)
        mx = fmaxf(mx, z[c]);
    float s = 0.0f, zl = mx;
    for (int c = 0; c < C; c++) {
        s += expf(z[c] - mx);
        if (c == label)
            zl = z[c];
    }
    return (mx - zl) + logf(s);
}

/* g[c] = scale (softmax(z)_c - [c == label]) */
static inline void cet_grad(SPK_GLOBAL float *g, SPK_GLOBAL const float *z, const int C,
                            const int label, const float scale)
{
    float mx = z[0];
    for (int c = 1; c < C; c++)
        mx = fmaxf(mx, z[c]);
    float s = 0.0f;
    for (int c = 0; c < C; c++)
        s += expf(z[c] - mx);
    const float inv = 1.0f / s;
    for (int c = 0; c < C; c++)
        g[c] = scale * (expf(z[c] - mx) * inv - (c == label ? 1.0f : 0.0f));
}

/* ce_rate: loss[b] = mean over the steps of the cross-entropy of z[t, b, :]. */
SPK_KERNEL void ce_rate_loss(SPK_GLOBAL float *loss, SPK_GLOBAL const float *z,
                             SPK_GLOBAL const float *labels, const int B, const int C,
                             const int steps, const int z_ts)
{
    SPK_FOR_ITEMS(b, B) {
        const int label = (int)labels[b];
        float s = 0.0f;
        for (int t = 0; t < steps; t++)
            s += cet_nll(z + t * z_ts + b * C, C, label);
        loss[b] = s / (float)steps;
    }
    SPK_END_ITEMS
}

/* ce_rate: the gradient of the batch mean, one item per (t, b): scale = 1 / (steps B). */
SPK_KERNEL void ce_rate_grad(SPK_GLOBAL float *grad, SPK_GLOBAL const float *z,
                             SPK_GLOBAL const float *labels, const int n, const int B,
                             const int C, const float scale)
{
    SPK_FOR_ITEMS(j, n) {
        cet_grad(grad + j * C, z + j * C, C, (int)labels[j % B], scale);
    }
    SPK_END_ITEMS
}

/* The first t where z[t*z_ts + i] is largest (torch.max's index on ties). */
static inline int cet_argmax(SPK_GLOBAL const float *z, const int i, const int steps,
                             const int z_ts)
{
    int arg = 0;
    for (int t = 1; t < steps; t++)
        if (z[t * z_ts + i] > z[arg * z_ts + i])
            arg = t;
    return arg;
}

/* ce_max_membrane: the cross-entropy of m[b, c] = max_t z[t, b, c]; mx gets m ([B, C]). */
SPK_KERNEL void ce_maxmem_loss(SPK_GLOBAL float *loss, SPK_GLOBAL float *mx,
                               SPK_GLOBAL const float *z, SPK_GLOBAL const float *labels,
                               const int B, const int C, const int steps, const int z_ts)
{
    SPK_FOR_ITEMS(b, B) {
        for (int c = 0; c < C; c++) {
            const int i = b * C + c;
            mx[i] = z[cet_argmax(z, i, steps, z_ts) * z_ts + i];
        }
        loss[b] = cet_nll(mx + b * C, C, (int)labels[b]);
    }
    SPK_END_ITEMS
}

/* ce_max_membrane backward, one item per b: the softmax gradient of the batch mean (in gm,
 * [B, C]) goes to the first step where each class's membrane peaks, 0 to the other steps. */
SPK_KERNEL void ce_maxmem_grad(SPK_GLOBAL float *grad, SPK_GLOBAL float *gm,
                               SPK_GLOBAL const float *mx, SPK_GLOBAL const float *z,
                               SPK_GLOBAL const float *labels, const int B, const int C,
                               const int steps, const int z_ts, const float scale)
{
    SPK_FOR_ITEMS(b, B) {
        cet_grad(gm + b * C, mx + b * C, C, (int)labels[b], scale);
        for (int c = 0; c < C; c++) {
            const int i = b * C + c;
            const int arg = cet_argmax(z, i, steps, z_ts);
            for (int t = 0; t < steps; t++)
                grad[t * z_ts + i] = t == arg ? gm[i] : 0.0f;
        }
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(ce_rate_loss, B, B, B, I, I, I, I)
SPK_CPU_ENTRY(ce_rate_grad, B, B, B, I, I, I, F)
SPK_CPU_ENTRY(ce_maxmem_loss, B, B, B, B, I, I, I, I)
SPK_CPU_ENTRY(ce_maxmem_grad, B, B, B, B, B, I, I, I, I, F)
