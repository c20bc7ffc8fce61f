/* readout.membrane kernels: mean, max or last value over t of the input (a membrane trace). */
#define MEMBRANE_MEAN 0
#define MEMBRANE_MAX 1
#define MEMBRANE_LAST 2

/* out[i] from in[t*n + i], t < T; one item per (b, c). */
SPK_KERNEL void membrane_reduce(SPK_GLOBAL float *out, SPK_GLOBAL const float *in, const int n,
                                const int T, const int mode)
{
    SPK_FOR_ITEMS(i, n) {
        float r;
        if (mode == MEMBRANE_LAST) {
            r = in[(T - 1) * n + i];
        } else if (mode == MEMBRANE_MAX) {
            r = in[i];
            for (int t = 1; t < T; t++)
                r = fmaxf(r, in[t * n + i]);
        } else {
            r = 0.0f;
            for (int t = 0; t < T; t++)
                r += in[t * n + i];
            r /= (float)T;
        }
        out[i] = r;
    }
    SPK_END_ITEMS
}

/* gin[t*n + i] for every t: mean spreads g/T, last gives g to t = T-1, max to the first argmax. */
SPK_KERNEL void membrane_grad(SPK_GLOBAL float *gin, SPK_GLOBAL const float *gout,
                              SPK_GLOBAL const float *in, const int n, const int T,
                              const int mode)
{
    SPK_FOR_ITEMS(i, n) {
        const float g = gout[i];
        int arg = T - 1;
        if (mode == MEMBRANE_MAX) {
            float best = in[i];
            arg = 0;
            for (int t = 1; t < T; t++) {
                if (in[t * n + i] > best) {
                    best = in[t * n + i];
                    arg = t;
                }
            }
        }
        for (int t = 0; t < T; t++) {
            float v;
            if (mode == MEMBRANE_MEAN)
                v = g / (float)T;
            else
                v = t == arg ? g : 0.0f;
            gin[t * n + i] = v;
        }
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(membrane_reduce, B, B, I, I, I)
SPK_CPU_ENTRY(membrane_grad, B, B, B, I, I, I)
