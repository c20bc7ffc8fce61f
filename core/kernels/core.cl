/* The core's own kernels (single-source, see spikecl/kernel.h): gradient sums over fan-out,
 * optimizer updates (PyTorch's update rules) and global-norm clipping. */

/* y[i] += x[i] */
SPK_KERNEL void spk_add(SPK_GLOBAL float *y, SPK_GLOBAL const float *x, const int n)
{
    SPK_FOR_ITEMS(i, n) {
        y[i] += x[i];
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(spk_add, B, B, I)

/* partial[slot + c] = sum of g[c*chunk .. (c+1)*chunk)^2, one item per chunk */
SPK_KERNEL void spk_sumsq(SPK_GLOBAL float *partial, SPK_GLOBAL const float *g, const int n,
                          const int chunk, const int slot, const int nchunks)
{
    SPK_FOR_ITEMS(c, nchunks) {
        int lo = c * chunk;
        int hi = lo + chunk < n ? lo + chunk : n;
        float s = 0.0f;
        for (int j = lo; j < hi; j++)
            s += g[j] * g[j];
        partial[slot + c] = s;
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(spk_sumsq, B, B, I, I, I, I)

/* p[out + c] = sum of p[in + c*group .. in + min((c+1)*group, n)), one item per group: a level
 * of the tree that sums the clipping partials, so that no single item walks them all. */
SPK_KERNEL void spk_sum_groups(SPK_GLOBAL float *p, const int in, const int n, const int group,
                               const int out, const int ngroups)
{
    SPK_FOR_ITEMS(c, ngroups) {
        const int lo = c * group;
        const int hi = lo + group < n ? lo + group : n;
        float s = 0.0f;
        for (int j = lo; j < hi; j++)
            s += p[in + j];
        p[out + c] = s;
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(spk_sum_groups, B, I, I, I, I, I)

/* scale[0] = min(1, max_norm / (||g|| + 1e-6)) from the last level of partial sums, partial[off
 * .. off + n) (torch clip_grad_norm_) */
/* flag (the update kernels' last argument): flag[0] becomes NaN when the step meets a value
 * that is not finite (gradient norm, gradient, second moment, or new weight before clamping).
 * The flag is the first per-sample loss, which the host reads back after every step anyway, so
 * divergence is caught at the batch where it happens at no extra pass or transfer. */
SPK_KERNEL void spk_clip_scale(SPK_GLOBAL float *scale, SPK_GLOBAL const float *partial,
                               const int off, const int n, const float max_norm,
                               SPK_GLOBAL float *flag)
{
    SPK_FOR_ITEMS(i, 1) {
        float s = 0.0f;
        for (int j = 0; j < n; j++)
            s += partial[off + j];
        if (!isfinite(s))
            flag[0] = NAN;
        float c = max_norm / (sqrtf(s) + 1e-6f);
        scale[i] = c < 1.0f ? c : 1.0f;
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(spk_clip_scale, B, B, I, I, F, B)

/* torch.optim.SGD: g += wd*w; buf = momentum*buf + g; g = nesterov ? g + momentum*buf : buf */
SPK_KERNEL void spk_sgd(SPK_GLOBAL float *w, SPK_GLOBAL const float *grad, SPK_GLOBAL float *buf,
                        SPK_GLOBAL const float *scale, const int n, const float lr,
                        const float momentum, const int nesterov, const float wd,
                        const int clamp, const float lo, const float hi, SPK_GLOBAL float *flag)
{
    /* lane blocks (spikecl/kernel.h): the update vectorises on the CPU; the non-finite check is
     * an int per lane, OR-ed over the block by a second lane loop (a reduction in that one only:
     * in the update's loop it keeps the update scalar) and stored once, since a conditional
     * store would keep it scalar */
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(int, bad);
        const float sc = scale[0];
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            float g = grad[i] * sc + wd * w[i];
            if (momentum != 0.0f) {
                float b = momentum * buf[i] + g;
                buf[i] = b;
                g = nesterov ? g + momentum * b : b;
            }
            float v = w[i] - lr * g;
            bad[l] = !isfinite(v) || !isfinite(g);
            if (clamp)
                v = fminf(fmaxf(v, lo), hi);
            w[i] = v;
        }
        int any = 0;
        SPK_EACH_LANE_OR(l, any) {
            any |= bad[l];
        }
        if (any)
            flag[0] = NAN;
    } SPK_END_LANES
}
SPK_CPU_ENTRY(spk_sgd, B, B, B, B, I, F, F, I, F, I, F, F, B)

/* torch.optim.Adam / AdamW. decoupled = 0: g += wd*w (Adam's L2); 1: w *= 1 - lr*wd (AdamW).
 * bc1 = 1 - beta1^t, bc2 = 1 - beta2^t. */
SPK_KERNEL void spk_adam(SPK_GLOBAL float *w, SPK_GLOBAL const float *grad, SPK_GLOBAL float *m,
                         SPK_GLOBAL float *v, SPK_GLOBAL const float *scale, const int n,
                         const float lr, const float beta1, const float beta2, const float eps,
                         const float wd, const int decoupled, const float bc1, const float bc2,
                         const int clamp, const float lo, const float hi, SPK_GLOBAL float *flag)
{
    /* lane blocks as in spk_sgd; the same operations in the same order per element */
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(int, bad);
        const float sc = scale[0];
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            float p = w[i];
            float g = grad[i] * sc;
            if (decoupled)
                p *= 1.0f - lr * wd;
            else
                g += wd * p;
            float mi = beta1 * m[i] + (1.0f - beta1) * g;
            float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            p -= (lr / bc1) * mi / (sqrtf(vi) / sqrtf(bc2) + eps);
            bad[l] = !isfinite(p) || !isfinite(vi);
            if (clamp)
                p = fminf(fmaxf(p, lo), hi);
            w[i] = p;
        }
        int any = 0;
        SPK_EACH_LANE_OR(l, any) {
            any |= bad[l];
        }
        if (any)
            flag[0] = NAN;
    } SPK_END_LANES
}
SPK_CPU_ENTRY(spk_adam, B, B, B, B, B, I, F, F, F, F, F, I, F, F, I, F, F, B)

/* dst[c] (+)= sum over r of src[r*cols + c]; dst may alias row 0 of src (each item reads only
 * its own column before writing it). Serves spk_host_api.reduce_grad. */
SPK_KERNEL void spk_colsum(SPK_GLOBAL float *dst, SPK_GLOBAL const float *src, const int cols,
                           const int rows, const int accumulate)
{
    /* lanes are neighbouring columns, so each row is read contiguously (one item per column
     * walking down the rows touched a new cache line per element); rows still in order */
    SPK_FOR_LANES(c0, cols) {
        SPK_LANE_VAR(float, s);
        SPK_EACH_LANE(l) { s[l] = 0.0f; }
        for (int r = 0; r < rows; r++)
            SPK_EACH_LANE(l) { s[l] += src[r * cols + c0 + l]; }
        SPK_EACH_LANE(l) { dst[c0 + l] = accumulate ? dst[c0 + l] + s[l] : s[l]; }
    } SPK_END_LANES
}
SPK_CPU_ENTRY(spk_colsum, B, B, I, I, I)

/* Spike-rate regulariser on a neuron layer's output s [T, B, N], one item per (b, n) of B * N:
 * part[b, n] = l1 * sum_t s + weight * (mean_t s - target)^2 / N, that neuron's share of the
 * sample's loss (spk_rate_reg_sum adds them up), and the gradient of the batch mean added to
 * the layer's output gradient. */
SPK_KERNEL void spk_rate_reg(SPK_GLOBAL float *grad, SPK_GLOBAL const float *s,
                             SPK_GLOBAL float *part, const int T, const int B, const int N,
                             const float l1, const float target, const float weight)
{
    SPK_FOR_ITEMS(j, B * N) {
        const int bn = B * N;
        float sum = 0.0f;
        for (int t = 0; t < T; t++)
            sum += s[t * bn + j];
        const float d = sum / (float)T - target;
        part[j] = l1 * sum + weight * d * d / (float)N;
        const float g = (l1 + weight * 2.0f * d / (float)(N * T)) / (float)B;
        for (int t = 0; t < T; t++)
            grad[t * bn + j] += g;
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(spk_rate_reg, B, B, B, I, I, I, F, F, F)

/* loss[b] += sum over n of part[b, n], one item per sample (after spk_rate_reg). */
SPK_KERNEL void spk_rate_reg_sum(SPK_GLOBAL float *loss, SPK_GLOBAL const float *part,
                                 const int B, const int N)
{
    SPK_FOR_ITEMS(b, B) {
        float reg = 0.0f;
        for (int n = 0; n < N; n++)
            reg += part[b * N + n];
        loss[b] += reg;
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(spk_rate_reg_sum, B, B, I, I)
