/* encoder.poisson kernels: rate coding with a counter-based RNG, so every backend draws the
 * same spikes (spikecl/philox.h is included on the CPU and prepended to OpenCL programs). */

/* out[t, b, f] = u < clamp(gain * x[b, f], 0, 1), u uniform from Philox keyed by
 * counter (f / 4, t, id[b], 0) and key (seed, key1), id[b] the sample's index in its data set:
 * one draw gives the four words for features 4g .. 4g+3, so Philox runs once per four pixels,
 * and a sample gets the same spikes whatever batch it is in. i runs over n = T * B * ng items,
 * ng = the number of groups of four features per sample. */
/* A spike when the uniform from word u is below the probability clamp(v, 0, 1). Selects instead
 * of fminf/fmaxf: the same spikes (NaN gives probability 0 either way, and u < -0 is u < 0),
 * and they vectorise under IEEE flags. */
SPK_INLINE float poisson_spike(const spk_u32 u, const float v)
{
    const float lo = v > 0.0f ? v : 0.0f;
    const float p = lo < 1.0f ? lo : 1.0f;
    return spk_u32_to_unit(u) < p ? 1.0f : 0.0f;
}

SPK_KERNEL void poisson_encode(SPK_GLOBAL float *out, SPK_GLOBAL const float *in,
                               SPK_GLOBAL const float *ids, const int n, const int ng,
                               const int nb, const int nf, const float gain, const int seed,
                               const int key1)
{
    /* Lane blocks (spikecl/kernel.h): on the CPU the counters are set per lane (integer
     * division stays scalar), then Philox runs in SIMD lanes, then the spikes are written. */
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(int, tbl);
        SPK_LANE_VAR(int, gl);
        SPK_LANE_VAR(int, bl);
        SPK_LANE_VAR(spk_u32, tl);
        SPK_LANE_VAR(spk_u32, idl);
        SPK_LANE_VAR(spk_u32, r0);
        SPK_LANE_VAR(spk_u32, r1);
        SPK_LANE_VAR(spk_u32, r2);
        SPK_LANE_VAR(spk_u32, r3);
        if (ng >= SPK_LANES) {
            /* a block spans at most two rows (tb, tb + 1): one division per block */
            const int tb0 = i0 / ng, g0 = i0 - tb0 * ng;
            const int t0 = tb0 / nb, b0 = tb0 - t0 * nb;
            const int b1 = b0 + 1 < nb ? b0 + 1 : 0, t1 = b0 + 1 < nb ? t0 : t0 + 1;
            const spk_u32 id0 = (spk_u32)ids[b0], id1 = (spk_u32)ids[b1];
            SPK_EACH_LANE(l) {
                const int wrap = g0 + l >= ng;
                tbl[l] = wrap ? tb0 + 1 : tb0;
                gl[l] = wrap ? g0 + l - ng : g0 + l;
                bl[l] = wrap ? b1 : b0;
                tl[l] = (spk_u32)(wrap ? t1 : t0);
                idl[l] = wrap ? id1 : id0;
            }
        } else {
            SPK_EACH_LANE(l) {
                const int i = i0 + l;
                const int tb = i / ng;
                const int t = tb / nb;
                tbl[l] = tb;
                gl[l] = i - tb * ng;
                bl[l] = tb - t * nb;
                tl[l] = (spk_u32)t;
            }
            SPK_EACH_LANE(l) {
                idl[l] = (spk_u32)ids[bl[l]];
            }
        }
        if (ng >= SPK_LANES && nf % 4 == 0) {
            /* the block's outputs out[4 i0 ..] are contiguous and its inputs are two runs (the
             * rows b0 and b1): the words go out interleaved, u[4 l + k] = word k of lane l, so
             * that the spikes are written by contiguous loops instead of gathers and scatters */
            const int w = n - i0 < SPK_LANES ? n - i0 : SPK_LANES;
            spk_u32 u[4 * SPK_LANES];
#ifdef POISSON_PHILOX_LANES
            poisson_philox_lanes(u, gl, tl, idl, w, (spk_u32)seed, (spk_u32)key1);
#else
            SPK_EACH_LANE(l) {
                spk_philox_ctr c;
                c.v[0] = (spk_u32)gl[l];
                c.v[1] = tl[l];
                c.v[2] = idl[l];
                c.v[3] = 0u;
                const spk_philox_ctr r = spk_philox4x32_10(c, (spk_u32)seed, (spk_u32)key1);
                u[4 * l] = r.v[0];
                u[4 * l + 1] = r.v[1];
                u[4 * l + 2] = r.v[2];
                u[4 * l + 3] = r.v[3];
            }
#endif
            const int tb0 = i0 / ng, g0 = i0 - tb0 * ng, b0 = tb0 % nb;
            const int na = ng - g0 < w ? ng - g0 : w; /* lanes in row b0 */
            SPK_GLOBAL const float *x0 = in + b0 * nf + 4 * g0;
            SPK_GLOBAL const float *x1 = in + (b0 + 1 < nb ? b0 + 1 : 0) * nf - 4 * na;
            SPK_GLOBAL float *o = out + 4 * i0;
#if !defined(__OPENCL_VERSION__) && !defined(__OPENCL_C_VERSION__)
#pragma omp simd
#endif
            for (int j = 0; j < 4 * na; j++)
                o[j] = poisson_spike(u[j], gain * x0[j]);
#if !defined(__OPENCL_VERSION__) && !defined(__OPENCL_C_VERSION__)
#pragma omp simd
#endif
            for (int j = 4 * na; j < 4 * w; j++)
                o[j] = poisson_spike(u[j], gain * x1[j]);
        } else {
            SPK_EACH_LANE(l) {
                spk_philox_ctr c;
                c.v[0] = (spk_u32)gl[l];
                c.v[1] = tl[l];
                c.v[2] = idl[l];
                c.v[3] = 0u;
                const spk_philox_ctr r = spk_philox4x32_10(c, (spk_u32)seed, (spk_u32)key1);
                r0[l] = r.v[0];
                r1[l] = r.v[1];
                r2[l] = r.v[2];
                r3[l] = r.v[3];
            }
            SPK_EACH_LANE(l) {
                const int f = 4 * gl[l];
                SPK_GLOBAL const float *x = in + bl[l] * nf + f;
                SPK_GLOBAL float *o = out + tbl[l] * nf + f;
                o[0] = poisson_spike(r0[l], gain * x[0]);
                if (f + 1 < nf)
                    o[1] = poisson_spike(r1[l], gain * x[1]);
                if (f + 2 < nf)
                    o[2] = poisson_spike(r2[l], gain * x[2]);
                if (f + 3 < nf)
                    o[3] = poisson_spike(r3[l], gain * x[3]);
            }
        }
    }
    SPK_END_LANES
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
