/* readout.membrane kernels: mean, max or last value over t of the input (a membrane trace).
 * Lane blocks (spikecl/kernel.h): on the CPU neighbouring items ride in SIMD lanes with t the
 * outer loop, so each step reads one contiguous run of the [T, B*C] trace. */
#define MEMBRANE_MEAN 0
#define MEMBRANE_MAX 1
#define MEMBRANE_LAST 2

/* fmaxf(r, v) as a select, so that a lane loop vectorises: NaN loses to a number, and on a tie
 * (+0 against -0) v wins, as glibc's fmaxf (maxss) gives it. */
SPK_INLINE float membrane_fmax(const float r, const float v)
{
    return (r > v || v != v) ? r : v;
}

/* out[i] from in[t*n + i], t < T (the mean sums t ascending, then divides); one item per (b, c). */
SPK_KERNEL void membrane_reduce(SPK_GLOBAL float *out, SPK_GLOBAL const float *in, const int n,
                                const int T, const int mode)
{
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(float, r);
        if (mode == MEMBRANE_LAST) {
            SPK_GLOBAL const float *x = in + (T - 1) * n + i0;
            SPK_EACH_LANE(l) { r[l] = x[l]; }
        } else if (mode == MEMBRANE_MAX) {
            SPK_EACH_LANE(l) { r[l] = in[i0 + l]; }
            for (int t = 1; t < T; t++) {
                SPK_GLOBAL const float *x = in + t * n + i0;
                SPK_EACH_LANE(l) { r[l] = membrane_fmax(r[l], x[l]); }
            }
        } else {
            SPK_EACH_LANE(l) { r[l] = 0.0f; }
            for (int t = 0; t < T; t++) {
                SPK_GLOBAL const float *x = in + t * n + i0;
                SPK_EACH_LANE(l) { r[l] += x[l]; }
            }
            SPK_EACH_LANE(l) { r[l] /= (float)T; }
        }
        SPK_EACH_LANE(l) { out[i0 + l] = r[l]; }
    }
    SPK_END_LANES
}

/* gin[t*n + i] for every t: mean spreads g/T, last gives g to t = T-1, max to the first argmax
 * (a NaN is never the argmax; a NaN at t = 0 keeps it at 0). */
SPK_KERNEL void membrane_grad(SPK_GLOBAL float *gin, SPK_GLOBAL const float *gout,
                              SPK_GLOBAL const float *in, const int n, const int T,
                              const int mode)
{
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(int, arg);
        SPK_LANE_VAR(float, g);
        if (mode == MEMBRANE_MEAN) {
            SPK_EACH_LANE(l) { g[l] = gout[i0 + l] / (float)T; }
            for (int t = 0; t < T; t++) {
                SPK_GLOBAL float *y = gin + t * n + i0;
                SPK_EACH_LANE(l) { y[l] = g[l]; }
            }
        } else {
            SPK_EACH_LANE(l) {
                g[l] = gout[i0 + l];
                arg[l] = T - 1;
            }
            if (mode == MEMBRANE_MAX) {
                SPK_LANE_VAR(float, best);
                SPK_EACH_LANE(l) {
                    best[l] = in[i0 + l];
                    arg[l] = 0;
                }
                for (int t = 1; t < T; t++) {
                    SPK_GLOBAL const float *x = in + t * n + i0;
                    SPK_EACH_LANE(l) {
                        const float v = x[l];
                        const int up = v > best[l];
                        best[l] = up ? v : best[l];
                        arg[l] = up ? t : arg[l];
                    }
                }
            }
            for (int t = 0; t < T; t++) {
                SPK_GLOBAL float *y = gin + t * n + i0;
                SPK_EACH_LANE(l) { y[l] = t == arg[l] ? g[l] : 0.0f; }
            }
        }
    }
    SPK_END_LANES
}

SPK_CPU_ENTRY(membrane_reduce, B, B, I, I, I)
SPK_CPU_ENTRY(membrane_grad, B, B, B, I, I, I)
