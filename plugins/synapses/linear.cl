/* synapse.linear kernels (the matrix products go through the backend's GEMM). */

/* y[r, o] += bias[o] over n = rows * n_out items. */
SPK_KERNEL void linear_bias(SPK_GLOBAL float *y, SPK_GLOBAL const float *bias, const int n,
                            const int n_out)
{
    SPK_FOR_ITEMS(i, n) {
        y[i] += bias[i % n_out];
    }
    SPK_END_ITEMS
}

/* grad_bias[o] += sum over rows of gy[r, o]: one item per output unit, no atomics. */
SPK_KERNEL void linear_bias_grad(SPK_GLOBAL float *gbias, SPK_GLOBAL const float *gy,
                                 const int n_out, const int rows)
{
    SPK_FOR_ITEMS(o, n_out) {
        float s = 0.0f;
        for (int r = 0; r < rows; r++)
            s += gy[r * n_out + o];
        gbias[o] += s;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(linear_bias, B, B, I, I)
SPK_CPU_ENTRY(linear_bias_grad, B, B, I, I)
