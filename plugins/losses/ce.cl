/* Cross-entropy kernels shared by loss.ce_count and loss.ce_membrane: softmax over the C values
 * of each sample, log-sum-exp stabilised. Labels are class indices stored as floats; a label
 * outside [0, C) matches no class. */

/* loss[b] = logsumexp(z[b, :]) - z[b, label]; one item per sample. */
SPK_KERNEL void ce_loss(SPK_GLOBAL float *loss, SPK_GLOBAL const float *z,
                        SPK_GLOBAL const float *labels, const int B, const int C)
{
    SPK_FOR_ITEMS(b, B) {
        const int label = (int)labels[b];
        float mx = z[b * C];
        for (int c = 1; c < C; c++)
            mx = fmaxf(mx, z[b * C + c]);
        float s = 0.0f, zl = mx;
        for (int c = 0; c < C; c++) {
            s += expf(z[b * C + c] - mx);
            if (c == label)
                zl = z[b * C + c];
        }
        /* the session refuses labels outside [0, C); should one arrive anyway, the loss stays
         * finite (logsumexp - max) instead of reading out of bounds */
        loss[b] = (mx - zl) + logf(s); /* small terms first: z may be large */
    }
    SPK_END_ITEMS
}

/* grad[b, c] = scale * (softmax(z[b, :])_c - [c == label]), scale = 1/B for the batch mean.
 * One item per (b, c), B * C in all, so that a GPU has work for every lane; each item walks
 * the row for max and sum in the same order, so every item (and the CPU) gets the same
 * normaliser. */
SPK_KERNEL void ce_grad(SPK_GLOBAL float *grad, SPK_GLOBAL const float *z,
                        SPK_GLOBAL const float *labels, const int B, const int C,
                        const float scale)
{
    SPK_FOR_ITEMS(j, B * C) {
        const int b = j / C, c = j - b * C;
        const int label = (int)labels[b];
        SPK_GLOBAL const float *zb = z + b * C;
        float mx = zb[0];
        for (int q = 1; q < C; q++)
            mx = fmaxf(mx, zb[q]);
        float s = 0.0f;
        for (int q = 0; q < C; q++)
            s += expf(zb[q] - mx);
        const float inv = 1.0f / s;
        const float p = expf(zb[c] - mx) * inv;
        grad[j] = scale * (p - (c == label ? 1.0f : 0.0f));
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(ce_loss, B, B, B, I, I)
SPK_CPU_ENTRY(ce_grad, B, B, B, I, I, F)
