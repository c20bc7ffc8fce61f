/* encoder.latency kernels: time-to-first-spike coding (see latency.c for the formula). */

#define LAT_LINEAR 1
#define LAT_NORMALIZE 2
#define LAT_CLIP 4

/* Round half to even, like torch.round (floorf is the only rounding both dialects map). */
static inline float lat_round_even(const float v)
{
    float r = floorf(v);
    const float f = v - r;
    if (f > 0.5f || (f == 0.5f && r - 2.0f * floorf(0.5f * r) != 0.0f))
        r += 1.0f;
    return r;
}

/* One item per (b, f) of n = B * F: the step of the value's single spike, then the column of
 * out[t, b, f] over all t (1 at that step, 0 elsewhere; all 0 when it does not fire). */
SPK_KERNEL void latency_encode(SPK_GLOBAL float *out, SPK_GLOBAL const float *in, const int n,
                               const int T, const float tau, const float thr, const float lo,
                               const int cfg)
{
    SPK_FOR_ITEMS(j, n) {
        const float x = in[j];
        float st;
        if (cfg & LAT_LINEAR) {
            const float tl = (cfg & LAT_NORMALIZE) ? (float)(T - 1) : tau;
            st = fminf(-tl * (x - 1.0f), -tl * (thr - 1.0f));
            st = fmaxf(st, 0.0f); /* inputs above 1 fire at once */
        } else {
            const float xc = fmaxf(x, lo);
            /* normalize: the saturated value, the latest possible, to T - 1. Set directly, as
             * an epsilon too small to move lo off thr in float would make it inf / inf. */
            if ((cfg & LAT_NORMALIZE) && xc <= lo) {
                st = (float)(T - 1);
            } else {
                st = tau * logf(xc / (xc - thr));
                if (cfg & LAT_NORMALIZE)
                    st = st * (float)(T - 1) / (tau * logf(lo / (lo - thr)));
            }
        }
        const float k = lat_round_even(st);
        /* past the window, clipped below the threshold, or not a number: no spike. NaN is
         * tested before the cast, which is INT_MIN on x86 but 0 on NVIDIA. */
        const int step = (!(k <= (float)(T - 1)) || ((cfg & LAT_CLIP) && x < thr)) ? -1 : (int)k;
        for (int t = 0; t < T; t++)
            out[t * n + j] = t == step ? 1.0f : 0.0f;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(latency_encode, B, B, I, I, F, F, F, I)
