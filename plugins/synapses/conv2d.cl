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

/* d[i] += s[i] for i in [lo, hi). The runs are short (an output row: 8 floats in fmnist_conv's
 * conv2), too short for the loop's per-element overhead to amortise: the CPU adds 8 at a time
 * in a vector (the same IEEE adds), then the rest one by one. */
#if defined(__OPENCL_VERSION__) || defined(__OPENCL_C_VERSION__) || !defined(__GNUC__)
SPK_INLINE void conv2d_add_run(SPK_GLOBAL float *d, SPK_GLOBAL const float *s, const int lo,
                               const int hi)
{
    for (int i = lo; i < hi; i++)
        d[i] += s[i];
}
#else
typedef float conv2d_v8 __attribute__((vector_size(32), aligned(4), may_alias));
SPK_INLINE void conv2d_add_run(float *d, const float *s, const int lo, const int hi)
{
    int i = lo;
    for (; i + 8 <= hi; i += 8)
        *(conv2d_v8 *)(d + i) += *(const conv2d_v8 *)(s + i);
    for (; i < hi; i++)
        d[i] += s[i];
}
#endif

/* The inverse, col2im: one item per input plane (r, c) adds every column row of that channel
 * back onto the plane. Each item reads k*k runs of P contiguous values and writes only its own
 * plane (no atomics, the same order on every backend). The columns may hold a block of `rows`
 * images that starts at image r0 of gx. */
SPK_KERNEL void conv2d_col2im(SPK_GLOBAL float *gx, SPK_GLOBAL const float *dcol, const int n,
                              const int rows, const int C, const int H, const int W, const int OH,
                              const int OW, const int k, const int stride, const int pad,
                              const int dil, const int r0)
{
    SPK_FOR_ITEMS(i, n) {
        const int r = i % rows, c = i / rows;
        SPK_GLOBAL float *dst = gx + ((r0 + r) * C + c) * H * W;
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
                        conv2d_add_run(dst + row, s, lo, hi);
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

/* ---- the sparse path, for inputs that are mostly zero (spikes) ----
 * The work follows the nonzero inputs: each one adds v * W[:, c, a, b] (v = 1 for a spike) to
 * the outputs its taps reach, and its weight gradient adds v * the output gradient there. Output
 * channels are the innermost, contiguous axis of the weight and the accumulators ([K, O] and
 * [OW, O]), so those adds are plain vector loops. Every sum runs in the same order on every
 * backend: channels c, tap rows a, nonzero columns in increasing x, tap columns b. */

/* Nonzero counts of ns images spread over the rows (image s * rows / ns), for the density the
 * host reads to choose a path: cnt[at + s]. */
SPK_KERNEL void conv2d_count_nonzero(SPK_GLOBAL float *cnt, SPK_GLOBAL const float *x,
                                     const int ns, const int rows, const int len, const int at)
{
    SPK_FOR_ITEMS(s, ns) {
        SPK_GLOBAL const float *img = x + (s * rows / ns) * len;
        int c = 0;
        for (int j = 0; j < len; j++)
            c += img[j] != 0.0f;
        cnt[at + s] = (float)c;
    }
    SPK_END_ITEMS
}

/* The sparse path stores taps with their column b reversed, (c, a, k - 1 - b): a nonzero's
 * taps b = b0..b1 then reach outputs ox = x + pad - b that run upwards with the stored rows, so
 * at stride 1 and dilation 1 the adds of a whole tap row are one contiguous loop of
 * (b1 - b0 + 1) * O values instead of one loop of O per tap. Flipping twice is the identity. */
static inline int conv2d_flip_b(const int kc, const int k)
{
    const int b = kc % k;
    return kc - b + (k - 1 - b);
}

/* wt[K, O] = the weight [O, K] transposed (groups == 1), taps flipped; one item per value. */
SPK_KERNEL void conv2d_transpose_w(SPK_GLOBAL float *wt, SPK_GLOBAL const float *w, const int n,
                                   const int O, const int K, const int k)
{
    SPK_FOR_ITEMS(i, n) {
        const int o = i % O, kr = i / O;
        wt[i] = w[o * K + conv2d_flip_b(kr, k)];
    }
    SPK_END_ITEMS
}

/* The output column ox that tap column b of input column xi feeds, or -1. */
static inline int conv2d_tap_ox(const int xi, const int b, const int stride, const int pad,
                                const int dil, const int OW)
{
    const int t = xi + pad - b * dil;
    if (stride == 1) /* the common case, without the divisions */
        return t < 0 || t >= OW ? -1 : t;
    if (t < 0 || t % stride != 0 || t / stride >= OW)
        return -1;
    return t / stride;
}

/* The taps b in [*b0, *b1] of input column xi that reach an output, at stride 1 and dilation 1:
 * ox = xi + pad - b in [0, OW). Empty when *b0 > *b1. */
static inline void conv2d_tap_range(const int xi, const int pad, const int k, const int OW,
                                    int *b0, int *b1)
{
    const int lo = xi + pad - OW + 1, hi = xi + pad;
    *b0 = lo > 0 ? lo : 0;
    *b1 = hi < k - 1 ? hi : k - 1;
}

/* Forward over nonzeros: one item per image r. It lists its input rows' nonzeros (as
 * conv2d_sparse_lists does, into its own slot of `list`, which backward reads again), adds each
 * nonzero's v * W[:, c, a, b] to the [P, O] sums in acc (its own slice of the scratch) for every
 * tap (a, b) that reaches an output, and writes the sums to y in NCHW plus the bias. One pass
 * over the image, all of it in cache; each output sums in the order c, y, x of its inputs. */
SPK_KERNEL void conv2d_sparse_forward(SPK_GLOBAL float *y, SPK_GLOBAL float *acc_all,
                                      SPK_GLOBAL float *list, SPK_GLOBAL const float *x,
                                      SPK_GLOBAL const float *wt, SPK_GLOBAL const float *bias,
                                      const int n, const int C, const int H, const int W,
                                      const int O, const int OH, const int OW, const int k,
                                      const int stride, const int pad, const int dil,
                                      const int has_bias)
{
    SPK_FOR_TASKS(r, n) {
        const int P = OH * OW;
        SPK_GLOBAL float *acc = acc_all + r * P * O;
        for (int j = 0; j < P * O; j++)
            acc[j] = 0.0f;
        for (int c = 0; c < C; c++)
            for (int yin = 0; yin < H; yin++) {
                const int rowi = (r * C + c) * H + yin;
                SPK_GLOBAL const float *row = x + rowi * W;
                SPK_GLOBAL float *L = list + rowi * (2 * W + 1);
                int cnt = 0;
                for (int j = 0; j < W; j++) {
                    const float v = row[j];
                    L[1 + 2 * cnt] = (float)j;
                    L[2 + 2 * cnt] = v;
                    cnt += v != 0.0f;
                }
                L[0] = (float)cnt;
                for (int j = 0; j < cnt; j++) {
                    const int xi = (int)L[1 + 2 * j];
                    const float v = L[2 + 2 * j];
                    for (int a = 0; a < k; a++) {
                        const int oy = conv2d_tap_ox(yin, a, stride, pad, dil, OH);
                        if (oy < 0)
                            continue;
                        if (stride == 1 && dil == 1) {
                            /* the tap row in one loop (see conv2d_flip_b) */
                            int b0, b1;
                            conv2d_tap_range(xi, pad, k, OW, &b0, &b1);
                            if (b0 > b1)
                                continue;
                            SPK_GLOBAL const float *restrict wr =
                                wt + ((c * k + a) * k + k - 1 - b1) * O;
                            SPK_GLOBAL float *restrict d = acc + (oy * OW + xi + pad - b1) * O;
                            const int len = (b1 - b0 + 1) * O;
                            for (int t = 0; t < len; t++)
                                d[t] += v * wr[t];
                            continue;
                        }
                        for (int b = 0; b < k; b++) {
                            const int ox = conv2d_tap_ox(xi, b, stride, pad, dil, OW);
                            if (ox < 0)
                                continue;
                            SPK_GLOBAL const float *restrict wr =
                                wt + ((c * k + a) * k + k - 1 - b) * O;
                            SPK_GLOBAL float *restrict d = acc + (oy * OW + ox) * O;
                            for (int o = 0; o < O; o++)
                                d[o] += v * wr[o];
                        }
                    }
                }
            }
        for (int o = 0; o < O; o++) {
            const float bo = has_bias ? bias[o] : 0.0f;
            SPK_GLOBAL float *dst = y + (r * O + o) * P;
            for (int q = 0; q < P; q++)
                dst[q] = acc[q * O + o] + bo;
        }
    }
    SPK_END_TASKS
}

/* The output gradient [rows, O, P] as [rows, P, O] (channels innermost), one item per pixel. */
SPK_KERNEL void conv2d_to_pixel_major(SPK_GLOBAL float *gt, SPK_GLOBAL const float *gy,
                                      const int n, const int O, const int P)
{
    SPK_FOR_ITEMS(i, n) {
        const int q = i % P, r = i / P;
        SPK_GLOBAL const float *src = gy + r * O * P + q;
        SPK_GLOBAL float *dst = gt + i * O;
        for (int o = 0; o < O; o++)
            dst[o] = src[o * P];
    }
    SPK_END_ITEMS
}

/* Weight gradient over nonzeros: one item per (input channel c, block of images), with the
 * channel's k*k taps as part[blk, (c, a, k - 1 - b), :] (flipped, as wt): every nonzero input of
 * the block's images adds v * gt[r, oy, ox, :] to each tap that reaches an output. Images
 * outermost, so an image's pixel-major output gradient gt[r] and the item's k*k*O sums stay in
 * cache; blocks give items to spread over threads, and conv2d_sparse_wgrad_sum adds them up. */
SPK_KERNEL void conv2d_sparse_wgrad(SPK_GLOBAL float *part, SPK_GLOBAL const float *gt,
                                    SPK_GLOBAL const float *list,
                                    const int n, const int rows, const int nblk, const int C,
                                    const int H, const int W, const int O, const int OH,
                                    const int OW, const int k, const int stride, const int pad,
                                    const int dil)
{
    SPK_FOR_TASKS(i, n) {
        const int c = i % C, blk = i / C;
        const int r0 = blk * rows / nblk, r1 = (blk + 1) * rows / nblk;
        SPK_GLOBAL float *acc = part + (blk * C + c) * k * k * O;
        for (int j = 0; j < k * k * O; j++)
            acc[j] = 0.0f;
        for (int r = r0; r < r1; r++)
            for (int yin = 0; yin < H; yin++) {
                const int rowi = (r * C + c) * H + yin;
                SPK_GLOBAL const float *L = list + rowi * (2 * W + 1);
                const int cnt = (int)L[0];
                for (int a = 0; a < k && cnt > 0; a++) {
                    const int oy = conv2d_tap_ox(yin, a, stride, pad, dil, OH);
                    if (oy < 0)
                        continue;
                    for (int j = 0; j < cnt; j++) {
                        const int xi = (int)L[1 + 2 * j];
                        const float v = L[2 + 2 * j];
                        if (stride == 1 && dil == 1) {
                            /* the tap row in one loop (see conv2d_flip_b) */
                            int b0, b1;
                            conv2d_tap_range(xi, pad, k, OW, &b0, &b1);
                            if (b0 > b1)
                                continue;
                            SPK_GLOBAL const float *restrict g =
                                gt + ((r * OH + oy) * OW + xi + pad - b1) * O;
                            SPK_GLOBAL float *restrict d = acc + (a * k + k - 1 - b1) * O;
                            const int len = (b1 - b0 + 1) * O;
                            for (int t = 0; t < len; t++)
                                d[t] += v * g[t];
                            continue;
                        }
                        for (int b = 0; b < k; b++) {
                            const int ox = conv2d_tap_ox(xi, b, stride, pad, dil, OW);
                            if (ox < 0)
                                continue;
                            SPK_GLOBAL const float *restrict g =
                                gt + ((r * OH + oy) * OW + ox) * O;
                            SPK_GLOBAL float *restrict d = acc + (a * k + k - 1 - b) * O;
                            for (int o = 0; o < O; o++)
                                d[o] += v * g[o];
                        }
                    }
                }
            }
    }
    SPK_END_TASKS
}

/* gw[o, kc] += the sum over blocks of part[blk, kc, o], one item per weight value. */
SPK_KERNEL void conv2d_sparse_wgrad_sum(SPK_GLOBAL float *gw, SPK_GLOBAL const float *part,
                                        const int n, const int O, const int K, const int nblk,
                                        const int k)
{
    SPK_FOR_ITEMS(i, n) {
        const int kc = i % K, o = i / K, kr = conv2d_flip_b(kc, k);
        float s = 0.0f;
        for (int blk = 0; blk < nblk; blk++)
            s += part[(blk * K + kr) * O + o];
        gw[i] += s;
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(conv2d_im2col, B, B, I, I, I, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_col2im, B, B, I, I, I, I, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_to_nchw, B, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_from_nchw, B, B, I, I, I, I)
SPK_CPU_ENTRY(conv2d_bias_grad, B, B, I, I)
SPK_CPU_ENTRY(conv2d_expand_groups, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_gather_groups, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_count_nonzero, B, B, I, I, I, I)
SPK_CPU_ENTRY(conv2d_transpose_w, B, B, I, I, I, I)
SPK_CPU_ENTRY(conv2d_sparse_forward, B, B, B, B, B, B, I, I, I, I, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_to_pixel_major, B, B, I, I, I)
SPK_CPU_ENTRY(conv2d_sparse_wgrad, B, B, B, I, I, I, I, I, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_sparse_wgrad_sum, B, B, I, I, I, I, I)
