/* pool.max2d and pool.avg2d kernels over [rows, C, H, W] images, one plane per (row, channel).
 * Windows are k x k at stride s with p cells of padding on every side (p <= k / 2, as PyTorch
 * requires, so every window holds at least one real cell). */

/* Max: one item per output row (plane, oy), its OW values in turn: the divisions once per row
 * instead of per value. The index of the winner in its plane (y * W + x) is kept for backward.
 * Ties go to the first maximal cell in row-major window order (strict >), which is PyTorch's
 * CPU rule; padding cells never win (the window's taps are clipped to the plane). On spikes
 * (0/1) this is an OR. The choice is a select, not a branch: on float input a compare's branch
 * mispredicts about every other time (fmnist_conv's mp2 took ~24 ns an output value). */
/* Cell c of the plane wins over the best so far if strictly greater: a max and an integer mask,
 * which compile without branches where `at < 0 || v > best` did not. */
SPK_INLINE void pool_max_take(SPK_GLOBAL const float *src, const int c, float *best, int *at)
{
    const float v = src[c];
    const int m = -(v > *best);
    *best = v > *best ? v : *best;
    *at = (c & m) | (*at & ~m);
}

SPK_KERNEL void pool_max_forward(SPK_GLOBAL float *y, SPK_GLOBAL float *arg,
                                 SPK_GLOBAL const float *x, const int n, const int H, const int W,
                                 const int OH, const int OW, const int k, const int stride,
                                 const int pad)
{
    SPK_FOR_ITEMS(r, n) {
        const int oy = r % OH, plane = r / OH;
        SPK_GLOBAL const float *src = x + plane * H * W;
        if (k == 2 && stride == 2 && pad == 0) {
            /* the usual MP2: the same taps in the same order, without the window loops */
            for (int ox = 0; ox < OW; ox++) {
                const int c = 2 * oy * W + 2 * ox, t[3] = {c + 1, c + W, c + W + 1};
                int at = c;
                float best = src[c];
                for (int q = 0; q < 3; q++)
                    pool_max_take(src, t[q], &best, &at);
                y[r * OW + ox] = best;
                arg[r * OW + ox] = (float)at;
            }
        } else {
            const int y0 = oy * stride - pad;
            const int a0 = y0 < 0 ? -y0 : 0, a1 = H - y0 < k ? H - y0 : k;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * stride - pad;
                const int b0 = x0 < 0 ? -x0 : 0, b1 = W - x0 < k ? W - x0 : k;
                /* the first tap, then strictly greater ones */
                int at = (y0 + a0) * W + x0 + b0;
                float best = src[at];
                for (int a = a0; a < a1; a++)
                    for (int b = a == a0 ? b0 + 1 : b0; b < b1; b++)
                        pool_max_take(src, (y0 + a) * W + x0 + b, &best, &at);
                y[r * OW + ox] = best;
                arg[r * OW + ox] = (float)at; /* exact: planes are checked to hold < 2^24 cells */
            }
        }
    }
    SPK_END_ITEMS
}

/* The output windows that contain input cell (y, x) of a plane: oy * stride = y + pad - a for a
 * tap a in [0, k). Both backward kernels gather over them, one item per input value, so no two
 * items write the same place. */
SPK_KERNEL void pool_max_backward(SPK_GLOBAL float *gx, SPK_GLOBAL const float *gy,
                                  SPK_GLOBAL const float *arg, const int n, const int H,
                                  const int W, const int OH, const int OW, const int k,
                                  const int stride, const int pad)
{
    SPK_FOR_ITEMS(i, n) {
        const int xx = i % W, yy = (i / W) % H, plane = i / (W * H);
        const float me = (float)(yy * W + xx);
        float s = 0.0f;
        for (int a = 0; a < k; a++) {
            const int ty = yy + pad - a;
            if (ty < 0 || ty % stride != 0 || ty / stride >= OH)
                continue;
            for (int b = 0; b < k; b++) {
                const int tx = xx + pad - b;
                if (tx < 0 || tx % stride != 0 || tx / stride >= OW)
                    continue;
                const int o = (plane * OH + ty / stride) * OW + tx / stride;
                if (arg[o] == me)
                    s += gy[o];
            }
        }
        gx[i] = s;
    }
    SPK_END_ITEMS
}

/* Average over the k * k window, padding counted as zeros (PyTorch's count_include_pad=True). */
SPK_KERNEL void pool_avg_forward(SPK_GLOBAL float *y, SPK_GLOBAL const float *x, const int n,
                                 const int H, const int W, const int OH, const int OW, const int k,
                                 const int stride, const int pad)
{
    SPK_FOR_ITEMS(i, n) {
        const int ox = i % OW, oy = (i / OW) % OH, plane = i / (OW * OH);
        SPK_GLOBAL const float *src = x + plane * H * W;
        float s = 0.0f;
        for (int a = 0; a < k; a++) {
            const int iy = oy * stride - pad + a;
            if (iy < 0 || iy >= H)
                continue;
            for (int b = 0; b < k; b++) {
                const int ix = ox * stride - pad + b;
                if (ix >= 0 && ix < W)
                    s += src[iy * W + ix];
            }
        }
        y[i] = s / (float)(k * k);
    }
    SPK_END_ITEMS
}

SPK_KERNEL void pool_avg_backward(SPK_GLOBAL float *gx, SPK_GLOBAL const float *gy, const int n,
                                  const int H, const int W, const int OH, const int OW,
                                  const int k, const int stride, const int pad)
{
    SPK_FOR_ITEMS(i, n) {
        const int xx = i % W, yy = (i / W) % H, plane = i / (W * H);
        float s = 0.0f;
        for (int a = 0; a < k; a++) {
            const int ty = yy + pad - a;
            if (ty < 0 || ty % stride != 0 || ty / stride >= OH)
                continue;
            for (int b = 0; b < k; b++) {
                const int tx = xx + pad - b;
                if (tx < 0 || tx % stride != 0 || tx / stride >= OW)
                    continue;
                s += gy[(plane * OH + ty / stride) * OW + tx / stride];
            }
        }
        gx[i] = s / (float)(k * k);
    }
    SPK_END_ITEMS
}

/* Windows that do not overlap (stride >= kernel) need no gather: each output item writes its
 * window's cells directly (backward fills the input gradient with 0 first, for the cells no
 * window covers). Max: the winner gets the gradient. */
SPK_KERNEL void pool_max_scatter(SPK_GLOBAL float *gx, SPK_GLOBAL const float *gy,
                                 SPK_GLOBAL const float *arg, const int n, const int HW,
                                 const int OHW)
{
    SPK_FOR_ITEMS(i, n) {
        gx[(i / OHW) * HW + (int)arg[i]] = gy[i];
    }
    SPK_END_ITEMS
}

/* Avg: every real cell of the window gets gy / k^2. */
SPK_KERNEL void pool_avg_scatter(SPK_GLOBAL float *gx, SPK_GLOBAL const float *gy, const int n,
                                 const int H, const int W, const int OH, const int OW, const int k,
                                 const int stride, const int pad)
{
    SPK_FOR_ITEMS(i, n) {
        const int ox = i % OW, oy = (i / OW) % OH, plane = i / (OW * OH);
        const float g = gy[i] / (float)(k * k);
        for (int a = 0; a < k; a++) {
            const int iy = oy * stride - pad + a;
            if (iy < 0 || iy >= H)
                continue;
            for (int b = 0; b < k; b++) {
                const int ix = ox * stride - pad + b;
                if (ix >= 0 && ix < W)
                    gx[(plane * H + iy) * W + ix] = g;
            }
        }
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(pool_max_forward, B, B, B, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(pool_max_backward, B, B, B, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(pool_avg_forward, B, B, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(pool_avg_backward, B, B, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(pool_max_scatter, B, B, B, I, I, I)
SPK_CPU_ENTRY(pool_avg_scatter, B, B, I, I, I, I, I, I, I, I)
