/* synapse.conv2d kernels: im2col, col2im and the layout moves around the one GEMM.
 * Columns are [rows * P, K]: one row per output pixel (P = OH * OW of a sample), holding the
 * K = C * kh * kw input values under the kernel at that pixel, in the order of the weight's
 * [C, kh, kw] (PyTorch's layout). Padding reads as 0. */

/* One item per (row, output pixel, input channel): writes that channel's kh * kw values. */
SPK_KERNEL void conv2d_im2col(SPK_GLOBAL float *col, SPK_GLOBAL const float *x, const int n,
                              const int C, const int H, const int W, const int OH, const int OW,
                              const int kh, const int kw, const int stride, const int pad,
                              const int dil)
{
    SPK_FOR_ITEMS(i, n) {
        const int c = i % C;
        const int rp = i / C; /* row * P + p */
        const int p = rp % (OH * OW);
        const int r = rp / (OH * OW);
        const int oy = p / OW, ox = p % OW;
        SPK_GLOBAL const float *src = x + (r * C + c) * H * W;
        SPK_GLOBAL float *dst = col + rp * (C * kh * kw) + c * kh * kw;
        for (int a = 0; a < kh; a++) {
            const int y = oy * stride - pad + a * dil;
            for (int b = 0; b < kw; b++) {
                const int xx = ox * stride - pad + b * dil;
                dst[a * kw + b] = (y >= 0 && y < H && xx >= 0 && xx < W) ? src[y * W + xx] : 0.0f;
            }
        }
    }
    SPK_END_ITEMS
}

/* The inverse gather: one item per input value (row, c, y, x) sums the column entries that read
 * it, so no two items write the same place (no atomics, the same order on every backend). */
SPK_KERNEL void conv2d_col2im(SPK_GLOBAL float *gx, SPK_GLOBAL const float *dcol, const int n,
                              const int C, const int H, const int W, const int OH, const int OW,
                              const int kh, const int kw, const int stride, const int pad,
                              const int dil)
{
    SPK_FOR_ITEMS(i, n) {
        const int xx = i % W;
        const int y = (i / W) % H;
        const int c = (i / (W * H)) % C;
        const int r = i / (W * H * C);
        const int K = C * kh * kw;
        float s = 0.0f;
        for (int a = 0; a < kh; a++) {
            const int ty = y + pad - a * dil; /* = oy * stride */
            if (ty < 0 || ty % stride != 0 || ty / stride >= OH)
                continue;
            const int oy = ty / stride;
            for (int b = 0; b < kw; b++) {
                const int tx = xx + pad - b * dil;
                if (tx < 0 || tx % stride != 0 || tx / stride >= OW)
                    continue;
                const int ox = tx / stride;
                s += dcol[(r * OH * OW + oy * OW + ox) * K + (c * kh + a) * kw + b];
            }
        }
        gx[i] = s;
    }
    SPK_END_ITEMS
}

/* The GEMM gives [rows * P, O] (pixel-major); the layer's output is [rows, O, P] (channel-major,
 * PyTorch's NCHW). One item per output value; adds the bias when has_bias. */
SPK_KERNEL void conv2d_to_nchw(SPK_GLOBAL float *y, SPK_GLOBAL const float *yp,
                               SPK_GLOBAL const float *bias, const int n, const int O, const int P,
                               const int has_bias)
{
    SPK_FOR_ITEMS(i, n) {
        const int p = i % P;
        const int o = (i / P) % O;
        const int r = i / (P * O);
        y[i] = yp[(r * P + p) * O + o] + (has_bias ? bias[o] : 0.0f);
    }
    SPK_END_ITEMS
}

/* The output gradient [rows, O, P] to pixel-major [rows * P, O], one item per value. */
SPK_KERNEL void conv2d_from_nchw(SPK_GLOBAL float *gp, SPK_GLOBAL const float *gy, const int n,
                                 const int O, const int P)
{
    SPK_FOR_ITEMS(i, n) {
        const int o = i % O;
        const int rp = i / O;
        const int p = rp % P;
        const int r = rp / P;
        gp[i] = gy[(r * O + o) * P + p];
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
SPK_CPU_ENTRY(conv2d_to_nchw, B, B, B, I, I, I, I)
SPK_CPU_ENTRY(conv2d_from_nchw, B, B, I, I, I)
SPK_CPU_ENTRY(conv2d_expand_groups, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(conv2d_gather_groups, B, B, I, I, I, I, I)
