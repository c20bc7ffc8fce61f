/* loss.mse_count kernels. Labels are class indices stored as floats; a label outside [0, C)
 * matches no class (every target is the incorrect rate). */

/* loss[b] = sum_c (count[b, c] - target)^2 * scale, scale = 1 / (C * T); one item per sample. */
SPK_KERNEL void mse_count_loss(SPK_GLOBAL float *loss, SPK_GLOBAL const float *count,
                               SPK_GLOBAL const float *labels, const int B, const int C,
                               const float on, const float off, const float scale)
{
    SPK_FOR_ITEMS(b, B) {
        const int label = (int)labels[b];
        float s = 0.0f;
        for (int c = 0; c < C; c++) {
            const float d = count[b * C + c] - (c == label ? on : off);
            s += d * d;
        }
        loss[b] = s * scale;
    }
    SPK_END_ITEMS
}

/* grad[b, c] = gscale * (count[b, c] - target), gscale = 2 / (B * C * T) for the batch mean. */
SPK_KERNEL void mse_count_grad(SPK_GLOBAL float *grad, SPK_GLOBAL const float *count,
                               SPK_GLOBAL const float *labels, const int n, const int C,
                               const float on, const float off, const float gscale)
{
    SPK_FOR_ITEMS(i, n) {
        const int b = i / C;
        const int c = i - b * C;
        grad[i] = gscale * (count[i] - (c == (int)labels[b] ? on : off));
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(mse_count_loss, B, B, B, I, I, F, F, F)
SPK_CPU_ENTRY(mse_count_grad, B, B, B, I, I, F, F, F)
