/* encoder.direct kernels. */

/* y = a * x over n items: the forward (a = gain) and the backward (grad_in = gain * grad_out). */
SPK_KERNEL void direct_scale(SPK_GLOBAL float *y, SPK_GLOBAL const float *x, const int n,
                             const float a)
{
    SPK_FOR_ITEMS(i, n) {
        y[i] = a * x[i];
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(direct_scale, B, B, I, F)
