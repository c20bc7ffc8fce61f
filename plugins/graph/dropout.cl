/* dropout kernels. The mask is drawn from Philox4x32-10 with key (seed, SPK_RNG_DROPOUT ^ epoch
 * << 4) and counter (feature / 4, step or 0, id[b], layer): one draw covers four features, a
 * sample keeps its mask whatever batch it lands in, every backend draws the same mask, and
 * backward redraws it instead of storing it. A value is kept when u >= p, with probability
 * 1 - p, and scaled by 1 / (1 - p) (inverted dropout, as torch.nn.Dropout). */

/* One draw: the four uniforms of feature group g at step t (0 for a mask shared by all steps). */
static inline spk_philox_ctr dropout_draw(const int g, const int t, const float id,
                                          const int layer, const int seed, const int key1)
{
    spk_philox_ctr c;
    c.v[0] = (spk_u32)g;
    c.v[1] = (spk_u32)t;
    c.v[2] = (spk_u32)id;
    c.v[3] = (spk_u32)layer;
    return spk_philox4x32_10(c, (spk_u32)seed, (spk_u32)key1);
}

/* One item per (sample b, feature group g), looping over the out_steps output steps. in_steps:
 * 1 when the input has a time axis, 0 when it is constant (read at every step). training 0
 * passes the input through. */
SPK_KERNEL void dropout_forward(SPK_GLOBAL float *out, SPK_GLOBAL const float *in,
                                SPK_GLOBAL const float *ids, const int n, const int ng,
                                const int B, const int nf, const int out_steps, const int in_steps,
                                const int same, const float p, const int training, const int seed,
                                const int key1, const int layer)
{
    SPK_FOR_ITEMS(i, n) {
        const int b = i / ng, g = i % ng;
        const float scale = 1.0f / (1.0f - p);
        spk_philox_ctr r = dropout_draw(g, 0, ids[b], layer, seed, key1);
        for (int t = 0; t < out_steps; t++) {
            if (!same && t > 0)
                r = dropout_draw(g, t, ids[b], layer, seed, key1);
            for (int k = 0; k < 4; k++) {
                const int f = 4 * g + k;
                if (f >= nf)
                    break;
                const float v = in[(in_steps ? t * B : 0) * nf + b * nf + f];
                const int keep = spk_u32_to_unit(r.v[k]) >= p;
                out[(t * B + b) * nf + f] = !training ? v : (keep ? v * scale : 0.0f);
            }
        }
    }
    SPK_END_ITEMS
}

/* The same mask on the gradient; a constant input's gradient sums over the output steps. */
SPK_KERNEL void dropout_backward(SPK_GLOBAL float *gin, SPK_GLOBAL const float *gout,
                                 SPK_GLOBAL const float *ids, const int n, const int ng,
                                 const int B, const int nf, const int out_steps,
                                 const int in_steps, const int same, const float p,
                                 const int training, const int seed, const int key1,
                                 const int layer)
{
    SPK_FOR_ITEMS(i, n) {
        const int b = i / ng, g = i % ng;
        const float scale = 1.0f / (1.0f - p);
        float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        spk_philox_ctr r = dropout_draw(g, 0, ids[b], layer, seed, key1);
        for (int t = 0; t < out_steps; t++) {
            if (!same && t > 0)
                r = dropout_draw(g, t, ids[b], layer, seed, key1);
            for (int k = 0; k < 4; k++) {
                const int f = 4 * g + k;
                if (f >= nf)
                    break;
                const float go = gout[(t * B + b) * nf + f];
                const int keep = spk_u32_to_unit(r.v[k]) >= p;
                const float gv = !training ? go : (keep ? go * scale : 0.0f);
                if (in_steps)
                    gin[(t * B + b) * nf + f] = gv;
                else
                    sum[k] += gv;
            }
        }
        for (int k = 0; k < 4 && !in_steps; k++)
            if (4 * g + k < nf)
                gin[b * nf + 4 * g + k] = sum[k];
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(dropout_forward, B, B, B, I, I, I, I, I, I, I, F, I, I, I, I)
SPK_CPU_ENTRY(dropout_backward, B, B, B, I, I, I, I, I, I, I, F, I, I, I, I)
