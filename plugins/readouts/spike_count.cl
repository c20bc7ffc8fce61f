/* readout.spike_count kernels. */

/* out[i] = sum over t of in[t*ts + i]; ts = 0 reads a constant input T times (= T * in). */
SPK_KERNEL void spike_count_sum(SPK_GLOBAL float *out, SPK_GLOBAL const float *in, const int n,
                                const int T, const int ts)
{
    SPK_FOR_ITEMS(i, n) {
        float s = 0.0f;
        for (int t = 0; t < T; t++)
            s += in[t * ts + i];
        out[i] = s;
    }
    SPK_END_ITEMS
}

/* gin[i] = scale * gout[i % m] over n items: broadcast over the time axis. */
SPK_KERNEL void spike_count_bcast(SPK_GLOBAL float *gin, SPK_GLOBAL const float *gout,
                                  const int n, const int m, const float scale)
{
    SPK_FOR_ITEMS(i, n) {
        gin[i] = scale * gout[i % m];
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(spike_count_sum, B, B, I, I, I)
SPK_CPU_ENTRY(spike_count_bcast, B, B, I, I, F)
