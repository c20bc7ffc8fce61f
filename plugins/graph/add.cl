/* merge.add kernels (single source: C on the CPU, OpenCL C on devices). */

/* y[i] += x[i % period]: period < n broadcasts a time-constant input over the steps */
SPK_KERNEL void merge_add_acc(SPK_GLOBAL float *y, SPK_GLOBAL const float *x, const int n,
                              const int period)
{
    SPK_FOR_ITEMS(i, n) {
        y[i] += x[i % period];
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(merge_add_acc, B, B, I, I)

/* g[i] = sum over `steps` repeats of gy: gy is [steps, count]; steps = 1 copies */
SPK_KERNEL void merge_add_grad(SPK_GLOBAL float *g, SPK_GLOBAL const float *gy, const int n,
                               const int steps, const int count)
{
    SPK_FOR_ITEMS(i, n) {
        float s = 0.0f;
        for (int t = 0; t < steps; t++)
            s += gy[t * count + i];
        g[i] = s;
    } SPK_END_ITEMS
}
SPK_CPU_ENTRY(merge_add_grad, B, B, I, I, I)
