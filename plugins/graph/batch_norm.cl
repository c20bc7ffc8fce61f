/* norm.batch2d kernels. x is [rows, C, HW] (rows = T*B, or B for a constant input). Sums per
 * channel go in two steps so that both spread over many work items: one partial sum per
 * (channel, image) over its HW values, then one item per channel adds its rows' partials in
 * order. Every item owns what it writes (no atomics), and both backends sum in the same order.
 * stats holds [mean | 1/std | dbeta | dgamma], C values each. */

/* part[c * rows + r] = sum over the image's HW values of x (what 0) or of (x - mean)^2 (1). */
SPK_KERNEL void bn_partial(SPK_GLOBAL float *part, SPK_GLOBAL const float *x,
                           SPK_GLOBAL const float *stats, const int n, const int C, const int rows,
                           const int HW, const int what)
{
    SPK_FOR_ITEMS(i, n) {
        const int c = i / rows, r = i % rows;
        SPK_GLOBAL const float *xr = x + (r * C + c) * HW;
        float s = 0.0f;
        if (what == 0) {
            for (int p = 0; p < HW; p++)
                s += xr[p];
        } else {
            const float mean = stats[c];
            for (int p = 0; p < HW; p++) {
                const float d = xr[p] - mean;
                s += d * d;
            }
        }
        part[i] = s;
    }
    SPK_END_ITEMS
}

/* One item per channel. step 0: the batch mean. step 1: the biased variance, 1/std, and the
 * running statistics moved by momentum (running_var takes var * unbias, the unbiased variance,
 * as PyTorch). step 2 (evaluation): mean and 1/std from the running statistics. */
SPK_KERNEL void bn_stats(SPK_GLOBAL float *stats, SPK_GLOBAL float *rmean, SPK_GLOBAL float *rvar,
                         SPK_GLOBAL const float *part, const int C, const int rows,
                         const float inv_n, const float momentum, const float unbias,
                         const float eps, const int step)
{
    SPK_FOR_ITEMS(c, C) {
        float s = 0.0f;
        for (int r = 0; r < rows && step < 2; r++)
            s += part[c * rows + r];
        if (step == 0) {
            stats[c] = s * inv_n;
        } else if (step == 1) {
            const float var = s * inv_n;
            stats[C + c] = 1.0f / sqrtf(var + eps);
            rmean[c] = (1.0f - momentum) * rmean[c] + momentum * stats[c];
            rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (var * unbias);
        } else {
            stats[c] = rmean[c];
            stats[C + c] = 1.0f / sqrtf(rvar[c] + eps);
        }
    }
    SPK_END_ITEMS
}

/* y = gamma (x - mean) / std + beta, one item per (image, channel). */
SPK_KERNEL void bn_apply(SPK_GLOBAL float *y, SPK_GLOBAL const float *x,
                         SPK_GLOBAL const float *stats, SPK_GLOBAL const float *gamma,
                         SPK_GLOBAL const float *beta, const int n, const int C, const int HW)
{
    SPK_FOR_ITEMS(i, n) {
        const int c = i % C;
        const float mean = stats[c], invstd = stats[C + c], g = gamma[c], b = beta[c];
        for (int p = 0; p < HW; p++)
            y[i * HW + p] = g * ((x[i * HW + p] - mean) * invstd) + b;
    }
    SPK_END_ITEMS
}

/* Backward partials per (channel, image): part[i] = sum gy, part[n + i] = sum gy * xh with
 * xh = (x - mean) / std. */
SPK_KERNEL void bn_grad_partial(SPK_GLOBAL float *part, SPK_GLOBAL const float *gy,
                                SPK_GLOBAL const float *x, SPK_GLOBAL const float *stats,
                                const int n, const int C, const int rows, const int HW)
{
    SPK_FOR_ITEMS(i, n) {
        const int c = i / rows, r = i % rows;
        const int o = (r * C + c) * HW;
        const float mean = stats[c], invstd = stats[C + c];
        float db = 0.0f, dg = 0.0f;
        for (int p = 0; p < HW; p++) {
            db += gy[o + p];
            dg += gy[o + p] * ((x[o + p] - mean) * invstd);
        }
        part[i] = db;
        part[n + i] = dg;
    }
    SPK_END_ITEMS
}

/* One item per channel: dbeta and dgamma of the batch, kept in stats for the input gradient and
 * added to the parameters' gradients. */
SPK_KERNEL void bn_grad_reduce(SPK_GLOBAL float *stats, SPK_GLOBAL float *ggamma,
                               SPK_GLOBAL float *gbeta, SPK_GLOBAL const float *part, const int C,
                               const int rows)
{
    SPK_FOR_ITEMS(c, C) {
        float db = 0.0f, dg = 0.0f;
        for (int r = 0; r < rows; r++) {
            db += part[c * rows + r];
            dg += part[C * rows + c * rows + r];
        }
        stats[2 * C + c] = db;
        stats[3 * C + c] = dg;
        gbeta[c] += db;
        ggamma[c] += dg;
    }
    SPK_END_ITEMS
}

/* dx = gamma / std (gy - dbeta / n - xh dgamma / n) when training (the mean and variance are
 * functions of x); dx = gamma / std gy in evaluation. One item per (image, channel). */
SPK_KERNEL void bn_grad_input(SPK_GLOBAL float *gx, SPK_GLOBAL const float *gy,
                              SPK_GLOBAL const float *x, SPK_GLOBAL const float *stats,
                              SPK_GLOBAL const float *gamma, const int n, const int C,
                              const int HW, const float inv_n, const int training)
{
    SPK_FOR_ITEMS(i, n) {
        const int c = i % C;
        const float mean = stats[c], invstd = stats[C + c];
        const float k = gamma[c] * invstd;
        const float mb = training ? stats[2 * C + c] * inv_n : 0.0f;
        const float mg = training ? stats[3 * C + c] * inv_n : 0.0f;
        for (int p = 0; p < HW; p++) {
            const int j = i * HW + p;
            gx[j] = k * (gy[j] - mb - ((x[j] - mean) * invstd) * mg);
        }
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(bn_partial, B, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(bn_stats, B, B, B, B, I, I, F, F, F, F, I)
SPK_CPU_ENTRY(bn_apply, B, B, B, B, B, I, I, I)
SPK_CPU_ENTRY(bn_grad_partial, B, B, B, B, I, I, I, I)
SPK_CPU_ENTRY(bn_grad_reduce, B, B, B, B, I, I)
SPK_CPU_ENTRY(bn_grad_input, B, B, B, B, B, I, I, I, F, I)
