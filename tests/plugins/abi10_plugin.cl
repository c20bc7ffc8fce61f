/* Kernels of the ABI 1.0 fixture plugin (abi10_plugin.c): y_t = g[n] x_t per neuron n. */
SPK_KERNEL void a10_forward(SPK_GLOBAL float *y, SPK_GLOBAL const float *x,
                            SPK_GLOBAL const float *g, const int T, const int bn, const int n,
                            const int in_stride)
{
    SPK_FOR_ITEMS(i, bn) {
        const float gi = g[i % n];
        for (int t = 0; t < T; t++)
            y[t * bn + i] = gi * x[t * in_stride + i];
    }
    SPK_END_ITEMS
}

/* gin = g dL/dy (summed over t for a constant input); part[b, n] = sum_t dL/dy_t x_t */
SPK_KERNEL void a10_backward(SPK_GLOBAL float *gin, SPK_GLOBAL float *part,
                             SPK_GLOBAL const float *gout, SPK_GLOBAL const float *x,
                             SPK_GLOBAL const float *g, const int T, const int bn, const int n,
                             const int in_stride, const int want_gin, const int want_part)
{
    SPK_FOR_ITEMS(i, bn) {
        const float gi = g[i % n];
        float sum_go = 0.0f, sum_gx = 0.0f;
        for (int t = 0; t < T; t++) {
            const float go = gout[t * bn + i];
            sum_go += go;
            sum_gx += go * x[t * in_stride + i];
            if (want_gin && in_stride)
                gin[t * bn + i] = gi * go;
        }
        if (want_gin && !in_stride)
            gin[i] = gi * sum_go;
        if (want_part)
            part[i] = sum_gx;
    }
    SPK_END_ITEMS
}

/* dst[c] += sum over r of src[r * cols + c]: 1.0 had no host reduce_grad */
SPK_KERNEL void a10_colsum(SPK_GLOBAL float *dst, SPK_GLOBAL const float *src, const int cols,
                           const int rows)
{
    SPK_FOR_ITEMS(c, cols) {
        float s = 0.0f;
        for (int r = 0; r < rows; r++)
            s += src[r * cols + c];
        dst[c] += s;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(a10_forward, B, B, B, I, I, I, I)
SPK_CPU_ENTRY(a10_backward, B, B, B, B, B, I, I, I, I, I, I)
SPK_CPU_ENTRY(a10_colsum, B, B, I, I)
