/* dropout kernels. The mask is drawn from Philox4x32-10 with key (seed, SPK_RNG_DROPOUT ^ epoch
 * << 4) and counter (feature / 4, step or 0, id[b], layer): one draw covers four features, a
 * sample keeps its mask whatever batch it lands in, every backend draws the same mask, and
 * backward redraws it instead of storing it. A value is kept when u >= p, with probability
 * 1 - p, and scaled by 1 / (1 - p) (inverted dropout, as torch.nn.Dropout). */

/* One lane's four uniforms at step t (0 for a mask shared by all steps). */
SPK_INLINE void dropout_draw4(const int g, const int t, const spk_u32 id, const int layer,
                              const int seed, const int key1, spk_u32 *r0, spk_u32 *r1,
                              spk_u32 *r2, spk_u32 *r3)
{
    spk_philox_ctr c;
    c.v[0] = (spk_u32)g;
    c.v[1] = (spk_u32)t;
    c.v[2] = id;
    c.v[3] = (spk_u32)layer;
    const spk_philox_ctr r = spk_philox4x32_10(c, (spk_u32)seed, (spk_u32)key1);
    *r0 = r.v[0];
    *r1 = r.v[1];
    *r2 = r.v[2];
    *r3 = r.v[3];
}

/* The value dropout makes of v with uniform word u: kept when u >= p (scaled), else 0. */
SPK_INLINE float dropout_apply(const spk_u32 u, const float v, const float p, const float scale,
                               const int training)
{
    /* computed unconditionally: GCC does not speculate a float multiply (it may trap) into a
     * select, and a branch keeps the lane loop scalar */
    const float kept = v * scale;
    const float y = spk_u32_to_unit(u) >= p ? kept : 0.0f;
    return training ? y : v;
}

/* One item per (sample b, feature group g), looping over the out_steps output steps. in_steps:
 * 1 when the input has a time axis, 0 when it is constant (read at every step). training 0
 * passes the input through. Lane blocks (spikecl/kernel.h): on the CPU, Philox runs in SIMD
 * lanes over neighbouring groups. */
SPK_KERNEL void dropout_forward(SPK_GLOBAL float *out, SPK_GLOBAL const float *in,
                                SPK_GLOBAL const float *ids, const int n, const int ng,
                                const int B, const int nf, const int out_steps, const int in_steps,
                                const int same, const float p, const int training, const int seed,
                                const int key1, const int layer)
{
    const float scale = 1.0f / (1.0f - p);
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(int, bl);
        SPK_LANE_VAR(int, gl);
        SPK_LANE_VAR(spk_u32, idl);
        SPK_LANE_VAR(spk_u32, r0);
        SPK_LANE_VAR(spk_u32, r1);
        SPK_LANE_VAR(spk_u32, r2);
        SPK_LANE_VAR(spk_u32, r3);
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            bl[l] = i / ng;
            gl[l] = i - bl[l] * ng;
            idl[l] = (spk_u32)ids[bl[l]];
        }
        for (int t = 0; t < out_steps; t++) {
            if (t == 0 || !same)
                SPK_EACH_LANE(l) {
                    dropout_draw4(gl[l], t, idl[l], layer, seed, key1, &r0[l], &r1[l], &r2[l],
                                  &r3[l]);
                }
            const int xt = in_steps ? t * B : 0;
            if (nf % 4 == 0) {
                SPK_EACH_LANE(l) {
                    const int f = 4 * gl[l];
                    const int xi = (xt + bl[l]) * nf + f, oi = (t * B + bl[l]) * nf + f;
                    out[oi] = dropout_apply(r0[l], in[xi], p, scale, training);
                    out[oi + 1] = dropout_apply(r1[l], in[xi + 1], p, scale, training);
                    out[oi + 2] = dropout_apply(r2[l], in[xi + 2], p, scale, training);
                    out[oi + 3] = dropout_apply(r3[l], in[xi + 3], p, scale, training);
                }
            } else {
                SPK_EACH_LANE(l) {
                    const int f = 4 * gl[l];
                    const int xi = (xt + bl[l]) * nf + f, oi = (t * B + bl[l]) * nf + f;
                    out[oi] = dropout_apply(r0[l], in[xi], p, scale, training);
                    if (f + 1 < nf)
                        out[oi + 1] = dropout_apply(r1[l], in[xi + 1], p, scale, training);
                    if (f + 2 < nf)
                        out[oi + 2] = dropout_apply(r2[l], in[xi + 2], p, scale, training);
                    if (f + 3 < nf)
                        out[oi + 3] = dropout_apply(r3[l], in[xi + 3], p, scale, training);
                }
            }
        }
    }
    SPK_END_LANES
}

/* The same mask on the gradient; a constant input's gradient sums over the output steps. */
SPK_KERNEL void dropout_backward(SPK_GLOBAL float *gin, SPK_GLOBAL const float *gout,
                                 SPK_GLOBAL const float *ids, const int n, const int ng,
                                 const int B, const int nf, const int out_steps,
                                 const int in_steps, const int same, const float p,
                                 const int training, const int seed, const int key1,
                                 const int layer)
{
    const float scale = 1.0f / (1.0f - p);
    SPK_FOR_LANES(i0, n) {
        SPK_LANE_VAR(int, bl);
        SPK_LANE_VAR(int, gl);
        SPK_LANE_VAR(spk_u32, idl);
        SPK_LANE_VAR(spk_u32, r0);
        SPK_LANE_VAR(spk_u32, r1);
        SPK_LANE_VAR(spk_u32, r2);
        SPK_LANE_VAR(spk_u32, r3);
        SPK_LANE_VAR(float, s0);
        SPK_LANE_VAR(float, s1);
        SPK_LANE_VAR(float, s2);
        SPK_LANE_VAR(float, s3);
        SPK_EACH_LANE(l) {
            const int i = i0 + l;
            bl[l] = i / ng;
            gl[l] = i - bl[l] * ng;
            idl[l] = (spk_u32)ids[bl[l]];
            s0[l] = 0.0f;
            s1[l] = 0.0f;
            s2[l] = 0.0f;
            s3[l] = 0.0f;
        }
        for (int t = 0; t < out_steps; t++) {
            if (t == 0 || !same)
                SPK_EACH_LANE(l) {
                    dropout_draw4(gl[l], t, idl[l], layer, seed, key1, &r0[l], &r1[l], &r2[l],
                                  &r3[l]);
                }
            if (in_steps && nf % 4 == 0) {
                SPK_EACH_LANE(l) {
                    const int oi = (t * B + bl[l]) * nf + 4 * gl[l];
                    gin[oi] = dropout_apply(r0[l], gout[oi], p, scale, training);
                    gin[oi + 1] = dropout_apply(r1[l], gout[oi + 1], p, scale, training);
                    gin[oi + 2] = dropout_apply(r2[l], gout[oi + 2], p, scale, training);
                    gin[oi + 3] = dropout_apply(r3[l], gout[oi + 3], p, scale, training);
                }
            } else if (in_steps) {
                SPK_EACH_LANE(l) {
                    const int f = 4 * gl[l];
                    const int oi = (t * B + bl[l]) * nf + f;
                    gin[oi] = dropout_apply(r0[l], gout[oi], p, scale, training);
                    if (f + 1 < nf)
                        gin[oi + 1] = dropout_apply(r1[l], gout[oi + 1], p, scale, training);
                    if (f + 2 < nf)
                        gin[oi + 2] = dropout_apply(r2[l], gout[oi + 2], p, scale, training);
                    if (f + 3 < nf)
                        gin[oi + 3] = dropout_apply(r3[l], gout[oi + 3], p, scale, training);
                }
            } else {
                /* a group's last words past nf read the next group's values: never stored */
                SPK_EACH_LANE(l) {
                    const int f = 4 * gl[l];
                    const int oi = (t * B + bl[l]) * nf + f;
                    s0[l] += dropout_apply(r0[l], gout[oi], p, scale, training);
                    if (f + 1 < nf)
                        s1[l] += dropout_apply(r1[l], gout[oi + 1], p, scale, training);
                    if (f + 2 < nf)
                        s2[l] += dropout_apply(r2[l], gout[oi + 2], p, scale, training);
                    if (f + 3 < nf)
                        s3[l] += dropout_apply(r3[l], gout[oi + 3], p, scale, training);
                }
            }
        }
        if (!in_steps)
            SPK_EACH_LANE(l) {
                const int f = 4 * gl[l];
                const int o = bl[l] * nf + f;
                gin[o] = s0[l];
                if (f + 1 < nf)
                    gin[o + 1] = s1[l];
                if (f + 2 < nf)
                    gin[o + 2] = s2[l];
                if (f + 3 < nf)
                    gin[o + 3] = s3[l];
            }
    }
    SPK_END_LANES
}

SPK_CPU_ENTRY(dropout_forward, B, B, B, I, I, I, I, I, I, I, F, I, I, I, I)
SPK_CPU_ENTRY(dropout_backward, B, B, B, I, I, I, I, I, I, I, F, I, I, I, I)
