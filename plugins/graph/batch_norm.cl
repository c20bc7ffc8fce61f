/* norm.batch2d kernels: one item per channel, which sums over its rows * HW values (rows = T*B,
 * or B for a constant input) and then writes them; every channel owns its outputs, its
 * statistics and its parameter gradients, so nothing needs atomics and both backends sum in
 * the same order. Sums go per row first, then over rows, to keep float rounding small. */

/* stats[c] = mean, stats[C + c] = 1 / sqrt(var + eps): the batch's (biased variance) when
 * training, which also moves the running statistics by momentum (running_var takes the
 * unbiased variance, var * unbias, as PyTorch does); the running statistics in evaluation.
 * Then y = gamma (x - mean) / sqrt(var + eps) + beta. */
SPK_KERNEL void bn_forward(SPK_GLOBAL float *y, SPK_GLOBAL float *stats, SPK_GLOBAL float *rmean,
                           SPK_GLOBAL float *rvar, SPK_GLOBAL const float *x,
                           SPK_GLOBAL const float *gamma, SPK_GLOBAL const float *beta,
                           const int C, const int rows, const int HW, const float inv_n,
                           const float momentum, const float unbias, const float eps,
                           const int training)
{
    SPK_FOR_ITEMS(c, C) {
        float mean, var;
        if (training) {
            float s = 0.0f;
            for (int r = 0; r < rows; r++) {
                SPK_GLOBAL const float *xr = x + (r * C + c) * HW;
                float sr = 0.0f;
                for (int p = 0; p < HW; p++)
                    sr += xr[p];
                s += sr;
            }
            mean = s * inv_n;
            float q = 0.0f;
            for (int r = 0; r < rows; r++) {
                SPK_GLOBAL const float *xr = x + (r * C + c) * HW;
                float qr = 0.0f;
                for (int p = 0; p < HW; p++) {
                    const float d = xr[p] - mean;
                    qr += d * d;
                }
                q += qr;
            }
            var = q * inv_n;
            rmean[c] = (1.0f - momentum) * rmean[c] + momentum * mean;
            rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (var * unbias);
        } else {
            mean = rmean[c];
            var = rvar[c];
        }
        const float invstd = 1.0f / sqrtf(var + eps);
        stats[c] = mean;
        stats[C + c] = invstd;
        const float g = gamma[c], b = beta[c];
        for (int r = 0; r < rows; r++) {
            const int o = (r * C + c) * HW;
            for (int p = 0; p < HW; p++)
                y[o + p] = g * ((x[o + p] - mean) * invstd) + b;
        }
    }
    SPK_END_ITEMS
}

/* With xh = (x - mean) * invstd: dbeta = sum gy, dgamma = sum gy xh (added to the parameters'
 * gradients), and when training dx = gamma invstd (gy - dbeta / n - xh dgamma / n), the mean
 * and variance being functions of x; in evaluation the statistics are constants and
 * dx = gamma invstd gy. has_gx 0: no input gradient wanted (gx is not written). */
SPK_KERNEL void bn_backward(SPK_GLOBAL float *gx, SPK_GLOBAL float *ggamma,
                            SPK_GLOBAL float *gbeta, SPK_GLOBAL const float *gy,
                            SPK_GLOBAL const float *x, SPK_GLOBAL const float *stats,
                            SPK_GLOBAL const float *gamma, const int C, const int rows,
                            const int HW, const float inv_n, const int training,
                            const int has_gx)
{
    SPK_FOR_ITEMS(c, C) {
        const float mean = stats[c], invstd = stats[C + c];
        float db = 0.0f, dg = 0.0f;
        for (int r = 0; r < rows; r++) {
            const int o = (r * C + c) * HW;
            float dbr = 0.0f, dgr = 0.0f;
            for (int p = 0; p < HW; p++) {
                dbr += gy[o + p];
                dgr += gy[o + p] * ((x[o + p] - mean) * invstd);
            }
            db += dbr;
            dg += dgr;
        }
        ggamma[c] += dg;
        gbeta[c] += db;
        if (has_gx) {
            const float k = gamma[c] * invstd;
            const float mb = training ? db * inv_n : 0.0f, mg = training ? dg * inv_n : 0.0f;
            for (int r = 0; r < rows; r++) {
                const int o = (r * C + c) * HW;
                for (int p = 0; p < HW; p++)
                    gx[o + p] = k * (gy[o + p] - mb - ((x[o + p] - mean) * invstd) * mg);
            }
        }
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(bn_forward, B, B, B, B, B, B, B, I, I, I, F, F, F, F, I)
SPK_CPU_ENTRY(bn_backward, B, B, B, B, B, B, B, I, I, I, F, I, I)
