/* encoder.poisson kernels: rate coding with a counter-based RNG, so every backend draws the
 * same spikes (spikecl/philox.h is included on the CPU and prepended to OpenCL programs). */

/* out[t, b, f] = u < clamp(gain * x[b, f], 0, 1), u uniform from Philox keyed by
 * counter (f / 4, t, id[b], 0) and key (seed, key1), id[b] the sample's index in its data set:
 * one draw gives the four words for features 4g .. 4g+3, so Philox runs once per four pixels,
 * and a sample gets the same spikes whatever batch it is in. i runs over n = T * B * ng items,
 * ng = the number of groups of four features per sample. */
SPK_KERNEL void poisson_encode(SPK_GLOBAL float *out, SPK_GLOBAL const float *in,
                               SPK_GLOBAL const float *ids, const int n, const int ng,
                               const int nb, const int nf, const float gain, const int seed,
                               const int key1)
{
    SPK_FOR_ITEMS(i, n) {
        const int tb = i / ng;
        const int g = i - tb * ng;
        const int t = tb / nb;
        const int b = tb - t * nb;
        spk_philox_ctr c;
        c.v[0] = (spk_u32)g;
        c.v[1] = (spk_u32)t;
        c.v[2] = (spk_u32)ids[b];
        c.v[3] = 0u;
        const spk_philox_ctr r = spk_philox4x32_10(c, (spk_u32)seed, (spk_u32)key1);
        for (int k = 0; k < 4; k++) {
            const int f = 4 * g + k;
            if (f < nf) {
                const float p = fminf(fmaxf(gain * in[b * nf + f], 0.0f), 1.0f);
                out[tb * nf + f] = spk_u32_to_unit(r.v[k]) < p ? 1.0f : 0.0f;
            }
        }
    }
    SPK_END_ITEMS
}

/* Straight-through backward: E[spike] = clamp(gain x, 0, 1), so
 * grad_in[b, f] = gain * sum_t grad_out[t, b, f] where 0 < gain x < 1, else 0. */
SPK_KERNEL void poisson_grad(SPK_GLOBAL float *gin, SPK_GLOBAL const float *gout,
                             SPK_GLOBAL const float *in, const int bf, const int T,
                             const float gain)
{
    SPK_FOR_ITEMS(j, bf) {
        const float p = gain * in[j];
        float s = 0.0f;
        for (int t = 0; t < T; t++)
            s += gout[t * bf + j];
        gin[j] = (p > 0.0f && p < 1.0f) ? gain * s : 0.0f;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(poisson_encode, B, B, B, I, I, I, I, F, I, I)
SPK_CPU_ENTRY(poisson_grad, B, B, B, I, I, F)
