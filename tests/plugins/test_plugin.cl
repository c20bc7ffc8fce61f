/* Kernels of the test plugins (tests/plugins/test_plugin.c): y = a * x. */
SPK_KERNEL void tp_scale(SPK_GLOBAL float *y, SPK_GLOBAL const float *x, const int n,
                         const float a)
{
    SPK_FOR_ITEMS(i, n) {
        y[i] = a * x[i];
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(tp_scale, B, B, I, F)
