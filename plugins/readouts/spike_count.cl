/* readout.spike_count kernels. Lane blocks (spikecl/kernel.h): on the CPU neighbouring items
 * ride in SIMD lanes with t the outer loop, so each step reads one contiguous run of the
 * [T, B*C] input instead of every item walking T strided streams. */

/* out[i] = sum over t of in[t*ts + i], t ascending; ts = 0 reads a constant input T times
 * (= T * in, summed step by step). */
SPK_KERNEL void spike_count_sum(SPK_GLOBAL float *out, SPK_GLOBAL const float *in, const int n,
                                const int T, const int ts)
{
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(float, s);
        SPK_EACH_LANE(l) { s[l] = 0.0f; }
        for (int t = 0; t < T; t++) {
            SPK_GLOBAL const float *x = in + t * ts + i0;
            SPK_EACH_LANE(l) { s[l] += x[l]; }
        }
        SPK_EACH_LANE(l) { out[i0 + l] = s[l]; }
    }
    SPK_END_LANES
}

/* gin[t*m + i] = scale * gout[i] for t < T, i < m: grad_out broadcast over the time axis. */
SPK_KERNEL void spike_count_bcast(SPK_GLOBAL float *gin, SPK_GLOBAL const float *gout,
                                  const int m, const int T, const float scale)
{
    SPK_FOR_LANES(i0, m) {
        SPK_LANE_VAR(float, g);
        SPK_EACH_LANE(l) { g[l] = scale * gout[i0 + l]; }
        for (int t = 0; t < T; t++) {
            SPK_GLOBAL float *y = gin + t * m + i0;
            SPK_EACH_LANE(l) { y[l] = g[l]; }
        }
    }
    SPK_END_LANES
}

SPK_CPU_ENTRY(spike_count_sum, B, B, I, I, I)
SPK_CPU_ENTRY(spike_count_bcast, B, B, I, I, F)
