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

SPK_CPU_ENTRY(linear_bias, B, B, I, I)
