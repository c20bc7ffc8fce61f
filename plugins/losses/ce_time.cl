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

/* scale (softmax(z)_c - [c == label]) for one class c: the row's max and sum walked in the same
 * order by every item, so that all classes share one normaliser. */
static inline float cet_grad1(SPK_GLOBAL const float *z, const int C, const int c,
                              const int label, const float scale)
{
    float mx = z[0];
    for (int q = 1; q < C; q++)
        mx = fmaxf(mx, z[q]);
    float s = 0.0f;
    for (int q = 0; q < C; q++)
        s += expf(z[q] - mx);
    const float inv = 1.0f / s;
    return scale * (expf(z[c] - mx) * inv - (c == label ? 1.0f : 0.0f));
}

/* ce_rate: nll[t, b] = the cross-entropy of z[t, b, :], one item per (t, b) of n = steps * B. */
SPK_KERNEL void ce_rate_nll(SPK_GLOBAL float *nll, SPK_GLOBAL const float *z,
                            SPK_GLOBAL const float *labels, const int n, const int B, const int C,
                            const int z_ts)
{
    SPK_FOR_ITEMS(j, n) {
        const int t = j / B, b = j - t * B;
        nll[j] = cet_nll(z + t * z_ts + b * C, C, (int)labels[b]);
    }
    SPK_END_ITEMS
}

/* ce_rate: loss[b] = mean over the steps of nll[t, b], one item per sample. */
SPK_KERNEL void ce_rate_loss(SPK_GLOBAL float *loss, SPK_GLOBAL const float *nll, const int B,
                             const int steps)
{
    SPK_FOR_ITEMS(b, B) {
        float s = 0.0f;
        for (int t = 0; t < steps; t++)
            s += nll[t * B + b];
        loss[b] = s / (float)steps;
    }
    SPK_END_ITEMS
}

/* ce_rate: the gradient of the batch mean, one item per (t, b, c) of n = steps * B * C:
 * scale = 1 / (steps B). */
SPK_KERNEL void ce_rate_grad(SPK_GLOBAL float *grad, SPK_GLOBAL const float *z,
                             SPK_GLOBAL const float *labels, const int n, const int B,
                             const int C, const float scale)
{
    SPK_FOR_ITEMS(j, n) {
        const int row = j / C;
        grad[j] = cet_grad1(z + row * C, C, j - row * C, (int)labels[row % B], scale);
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

/* ce_max_membrane: m[b, c] = max_t z[t, b, c] into mx ([B, C]), one item per (b, c) of B * C. */
SPK_KERNEL void ce_maxmem_peak(SPK_GLOBAL float *mx, SPK_GLOBAL const float *z, const int n,
                               const int steps, const int z_ts)
{
    SPK_FOR_ITEMS(i, n) {
        mx[i] = z[cet_argmax(z, i, steps, z_ts) * z_ts + i];
    }
    SPK_END_ITEMS
}

/* ce_max_membrane: the cross-entropy of m = mx (after ce_maxmem_peak), one item per sample. */
SPK_KERNEL void ce_maxmem_loss(SPK_GLOBAL float *loss, SPK_GLOBAL const float *mx,
                               SPK_GLOBAL const float *labels, const int B, const int C)
{
    SPK_FOR_ITEMS(b, B) {
        loss[b] = cet_nll(mx + b * C, C, (int)labels[b]);
    }
    SPK_END_ITEMS
}

/* ce_max_membrane backward, one item per (b, c) of B * C: the softmax gradient of the batch
 * mean (in gm, [B, C]) goes to the first step where the class's membrane peaks, 0 to the other
 * steps. */
SPK_KERNEL void ce_maxmem_grad(SPK_GLOBAL float *grad, SPK_GLOBAL float *gm,
                               SPK_GLOBAL const float *mx, SPK_GLOBAL const float *z,
                               SPK_GLOBAL const float *labels, const int B, const int C,
                               const int steps, const int z_ts, const float scale)
{
    SPK_FOR_ITEMS(i, B * C) {
        const int b = i / C;
        const float g = cet_grad1(mx + b * C, C, i - b * C, (int)labels[b], scale);
        gm[i] = g;
        const int arg = cet_argmax(z, i, steps, z_ts);
        for (int t = 0; t < steps; t++)
            grad[t * z_ts + i] = t == arg ? g : 0.0f;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(ce_rate_nll, B, B, B, I, I, I, I)
SPK_CPU_ENTRY(ce_rate_loss, B, B, I, I)
SPK_CPU_ENTRY(ce_rate_grad, B, B, B, I, I, I, F)
SPK_CPU_ENTRY(ce_maxmem_peak, B, B, I, I, I)
SPK_CPU_ENTRY(ce_maxmem_loss, B, B, B, I, I)
SPK_CPU_ENTRY(ce_maxmem_grad, B, B, B, B, B, I, I, I, I, F)
