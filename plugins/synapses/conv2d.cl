/* synapse.conv2d kernels: im2col, col2im and the layout moves around the GEMMs.
 * Columns are [K, M]: K = C * kh * kw rows in the order of the weight's [C, kh, kw] (PyTorch's
 * layout), M = rows * P columns, one per output pixel of every folded image (P = OH * OW).
 * Pixels next to each other are next to each other in memory, which keeps im2col's writes and
 * col2im's reads sequential. Padding reads as 0. */

/* The output columns [lo, hi) whose tap at input offset o * stride + off lands inside [0, W):
 * the rest read padding. Splitting the loops this way leaves plain (vectorisable) copies. */
static inline int conv2d_lo(const int off, const int stride)
{
    return off >= 0 ? 0 : (-off + stride - 1) / stride;
}

static inline int conv2d_hi(const int off, const int stride, const int W, const int OW)
{
    if (W - 1 - off < 0)
        return 0;
    const int h = (W - 1 - off) / stride + 1;
    return h < OW ? h : OW;
}

/* One item per (kernel row kc, image r): writes that image's P values of row kc. */
SPK_KERNEL void conv2d_im2col(SPK_GLOBAL float *col, SPK_GLOBAL const float *x, const int n,
                              const int rows, const int C, const int H, const int W, const int OH,
                              const int OW, const int k, const int stride, const int pad,
                              const int dil)
{
    SPK_FOR_ITEMS(i, n) {
        const int r = i % rows, kc = i / rows;
        const int b = kc % k, a = (kc / k) % k, c = kc / (k * k);
        const int off = b * dil - pad;
        const int lo = conv2d_lo(off, stride), hi = conv2d_hi(off, stride, W, OW);
        SPK_GLOBAL const float *src = x + (r * C + c) * H * W;
        SPK_GLOBAL float *dst = col + i * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            const int y = oy * stride - pad + a * dil;
            SPK_GLOBAL float *d = dst + oy * OW;
            if (y < 0 || y >= H || lo >= hi) {
                for (int ox = 0; ox < OW; ox++)
                    d[ox] = 0.0f;
                continue;
            }
            const int row = y * W + off; /* + ox * stride: inside the row for ox in [lo, hi) */
            for (int ox = 0; ox < lo; ox++)
                d[ox] = 0.0f;
            if (stride == 1)
                for (int ox = lo; ox < hi; ox++)
                    d[ox] = src[row + ox];
            else
                for (int ox = lo; ox < hi; ox++)
                    d[ox] = src[row + ox * stride];
            for (int ox = hi; ox < OW; ox++)
                d[ox] = 0.0f;
        }
    }
    SPK_END_ITEMS
}

/* The inverse, col2im: one item per input plane (r, c) adds every column row of that channel
 * back onto the plane. Each item reads k*k runs of P contiguous values and writes only its own
 * plane (no atomics, the same order on every backend). */
SPK_KERNEL void conv2d_col2im(SPK_GLOBAL float *gx, SPK_GLOBAL const float *dcol, const int n,
                              const int rows, const int C, const int H, const int W, const int OH,
                              const int OW, const int k, const int stride, const int pad,
                              const int dil)
{
    SPK_FOR_ITEMS(i, n) {
        const int r = i % rows, c = i / rows;
        SPK_GLOBAL float *dst = gx + (r * C + c) * H * W;
        for (int j = 0; j < H * W; j++)
            dst[j] = 0.0f;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                SPK_GLOBAL const float *src = dcol + (((c * k + a) * k + b) * rows + r) * OH * OW;
                const int off = b * dil - pad;
                const int lo = conv2d_lo(off, stride), hi = conv2d_hi(off, stride, W, OW);
                for (int oy = 0; oy < OH; oy++) {
                    const int y = oy * stride - pad + a * dil;
                    if (y < 0 || y >= H)
                        continue;
                    const int row = y * W + off;
                    SPK_GLOBAL const float *s = src + oy * OW;
                    if (stride == 1)
                        for (int ox = lo; ox < hi; ox++)
                            dst[row + ox] += s[ox];
                    else
                        for (int ox = lo; ox < hi; ox++)
                            dst[row + ox * stride] += s[ox];
                }
            }
    }
    SPK_END_ITEMS
}

/* The GEMM gives [O, rows * P]; the layer's output is [rows, O, P] (PyTorch's NCHW). One item
 * per (image r, channel o) copies its run of P values, adding the bias when has_bias. */
SPK_KERNEL void conv2d_to_nchw(SPK_GLOBAL float *y, SPK_GLOBAL const float *yo,
                               SPK_GLOBAL const float *bias, const int n, const int rows,
                               const int O, const int P, const int has_bias)
{
    SPK_FOR_ITEMS(i, n) {
        const int o = i % O, r = i / O;
        const float b = has_bias ? bias[o] : 0.0f;
        SPK_GLOBAL const float *src = yo + (o * rows + r) * P;
        SPK_GLOBAL float *dst = y + i * P;
        for (int p = 0; p < P; p++)
            dst[p] = src[p] + b;
    }
    SPK_END_ITEMS
}

/* The output gradient [rows, O, P] to [O, rows * P], one item per (image, channel) run. */
SPK_KERNEL void conv2d_from_nchw(SPK_GLOBAL float *go, SPK_GLOBAL const float *gy, const int n,
                                 const int rows, const int O, const int P)
{
    SPK_FOR_ITEMS(i, n) {
        const int o = i % O, r = i / O;
        SPK_GLOBAL const float *src = gy + i * P;
        SPK_GLOBAL float *dst = go + (o * rows + r) * P;
        for (int p = 0; p < P; p++)
            dst[p] = src[p];
    }
    SPK_END_ITEMS
}

/* The bias gradient: gb[o] += the sum of row o of go [O, M], one item per channel. */
SPK_KERNEL void conv2d_bias_grad(SPK_GLOBAL float *gb, SPK_GLOBAL const float *go, const int O,
                                 const int M)
{
    SPK_FOR_ITEMS(o, O) {
        float s = 0.0f;
        for (int m = 0; m < M; m++)
            s += go[o * M + m];
        gb[o] += s;
    }
    SPK_END_ITEMS
}

/* Groups: the weight [O, C/g, kk] spread into a block-diagonal [O, C * kk] (zeros where output
 * channel o does not see input channel c), so that one GEMM over all channels does every group. */
SPK_KERNEL void conv2d_expand_groups(SPK_GLOBAL float *wf, SPK_GLOBAL const float *w, const int n,
                                     const int O, const int C, const int kk, const int groups)
{
    SPK_FOR_ITEMS(i, n) {
        const int r = i % kk;
        const int c = (i / kk) % C;
        const int o = i / (kk * C);
        const int cg = C / groups, og = O / groups;
        wf[i] = (c / cg == o / og) ? w[(o * cg + c % cg) * kk + r] : 0.0f;
    }
    SPK_END_ITEMS
}

/* The other way for the weight gradient: gw[O, C/g, kk] += the block-diagonal part of
 * gwf[O, C * kk]. One item per value of gw. */
SPK_KERNEL void conv2d_gather_groups(SPK_GLOBAL float *gw, SPK_GLOBAL const float *gwf,
                                     const int n, const int O, const int C, const int kk,
                                     const int groups)
{
    SPK_FOR_ITEMS(i, n) {
        const int cg = C / groups, og = O / groups;
        const int r = i % kk;
        const int ci = (i / kk) % cg;
        const int o = i / (kk * cg);
        const int c = (o / og) * cg + ci;
        gw[i] += gwf[(o * C + c) * kk + r];
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(conv2d_im2col, B, B, I, I, I, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_col2im, B, B, I, I, I, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_to_nchw, B, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_from_nchw, B, B, I, I, I, I)
SPK_CPU_ENTRY(conv2d_bias_grad, B, B, I, I)
SPK_CPU_ENTRY(conv2d_expand_groups, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_gather_groups, B, B, I, I, I, I, I)
