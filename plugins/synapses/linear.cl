/* synapse.linear kernels (the dense matrix products go through the backend's GEMM). */

/* y[r, o] += bias[o] over n = rows * n_out items. */
SPK_KERNEL void linear_bias(SPK_GLOBAL float *y, SPK_GLOBAL const float *bias, const int n,
                            const int n_out)
{
    SPK_FOR_ITEMS(i, n) {
        y[i] += bias[i % n_out];
    }
    SPK_END_ITEMS
}

/* ---- the sparse path, for inputs that are mostly zero (spikes) ----
 * Forward adds, for each nonzero input i of a row, v * W[:, i] (a row of the transposed weight
 * wt [in, out]) to the row's outputs; the weight gradient adds v * gy[r, :] to row i of its
 * transpose. Lists of a row's nonzero columns, list[0] = count then the columns in increasing
 * order (in + 1 floats per row), are made in forward and read again in backward. */

/* Nonzero counts of ns rows spread over the rows (row s * rows / ns): cnt[s]. */
SPK_KERNEL void linear_count_nonzero(SPK_GLOBAL float *cnt, SPK_GLOBAL const float *x,
                                     const int ns, const int rows, const int n_in)
{
    SPK_FOR_ITEMS(s, ns) {
        SPK_GLOBAL const float *row = x + (s * rows / ns) * n_in;
        int c = 0;
        for (int j = 0; j < n_in; j++)
            c += row[j] != 0.0f;
        cnt[s] = (float)c;
    }
    SPK_END_ITEMS
}

/* wt[in, out] = w[out, in] transposed, at float offset `at` of wt; one item per value. */
SPK_KERNEL void linear_transpose_w(SPK_GLOBAL float *wt, SPK_GLOBAL const float *w, const int n,
                                   const int n_out, const int n_in, const int at)
{
    SPK_FOR_ITEMS(i, n) {
        const int o = i % n_out, j = i / n_out;
        wt[at + i] = w[o * n_in + j];
    }
    SPK_END_ITEMS
}

/* One item per row: the row's list (branch-free: every column is written, the count advances
 * past nonzeros). */
SPK_KERNEL void linear_sparse_lists(SPK_GLOBAL float *list, SPK_GLOBAL const float *x,
                                    const int n, const int n_in)
{
    SPK_FOR_ITEMS(r, n) {
        SPK_GLOBAL const float *xr = x + r * n_in;
        SPK_GLOBAL float *L = list + r * (n_in + 1);
        int cnt = 0;
        for (int j = 0; j < n_in; j++) {
            L[1 + cnt] = (float)j;
            cnt += xr[j] != 0.0f;
        }
        L[0] = (float)cnt;
    }
    SPK_END_ITEMS
}

/* One item per row: outputs [o0, o1) of y[r, :] = bias + the sum over the row's list, in
 * column order, of v * wt[i, :]. The host runs blocks of outputs one after the other, so that
 * the block's columns of wt stay in cache over all the rows. */
SPK_KERNEL void linear_sparse_forward(SPK_GLOBAL float *y, SPK_GLOBAL const float *list,
                                      SPK_GLOBAL const float *x, SPK_GLOBAL const float *bias,
                                      const int n, const int n_in, const int n_out,
                                      const int has_bias, const int at, const int o0,
                                      const int o1)
{
    SPK_FOR_ITEMS(r, n) {
        SPK_GLOBAL const float *xr = x + r * n_in;
        SPK_GLOBAL const float *L = list + r * (n_in + 1);
        const int cnt = (int)L[0];
        SPK_GLOBAL float *restrict yr = y + r * n_out;
        for (int o = o0; o < o1; o++)
            yr[o] = 0.0f;
        for (int j = 0; j < cnt; j++) {
            const int i = (int)L[1 + j];
            const float v = xr[i];
            SPK_GLOBAL const float *restrict wr = list + at + i * n_out;
            for (int o = o0; o < o1; o++)
                yr[o] += v * wr[o];
        }
        if (has_bias)
            for (int o = o0; o < o1; o++)
                yr[o] += bias[o];
    }
    SPK_END_ITEMS
}

/* The weight gradient's transpose gwt[in, out] (at offset `at` of the list buffer) = the sum
 * over rows, in order, of v * gy[r, :] for each nonzero (r, i); one item per block of ob
 * outputs (the block's columns of gwt stay in cache over all the rows). */
SPK_KERNEL void linear_sparse_wgrad(SPK_GLOBAL float *list, SPK_GLOBAL const float *x,
                                    SPK_GLOBAL const float *gy, const int n, const int rows,
                                    const int n_in, const int n_out, const int at, const int ob)
{
    SPK_FOR_ITEMS(blk, n) {
        const int o0 = blk * ob, o1 = o0 + ob < n_out ? o0 + ob : n_out;
        for (int i = 0; i < n_in; i++)
            for (int o = o0; o < o1; o++)
                list[at + i * n_out + o] = 0.0f;
        for (int r = 0; r < rows; r++) {
            SPK_GLOBAL const float *L = list + r * (n_in + 1);
            SPK_GLOBAL const float *xr = x + r * n_in;
            SPK_GLOBAL const float *g = gy + r * n_out;
            const int cnt = (int)L[0];
            for (int j = 0; j < cnt; j++) {
                const int i = (int)L[1 + j];
                const float v = xr[i];
                SPK_GLOBAL float *restrict d = list + at + i * n_out;
                for (int o = o0; o < o1; o++)
                    d[o] += v * g[o];
            }
        }
    }
    SPK_END_ITEMS
}

/* gw[o, i] += gwt[i, o] (at offset `at` of gwt), one item per weight value. */
SPK_KERNEL void linear_add_transposed(SPK_GLOBAL float *gw, SPK_GLOBAL const float *gwt,
                                      const int n, const int n_out, const int n_in, const int at)
{
    SPK_FOR_ITEMS(k, n) {
        const int i = k % n_in, o = k / n_in;
        gw[k] += gwt[at + i * n_out + o];
    }
    SPK_END_ITEMS
}

SPK_CPU_ENTRY(linear_bias, B, B, I, I)
SPK_CPU_ENTRY(linear_count_nonzero, B, B, I, I, I)
SPK_CPU_ENTRY(linear_transpose_w, B, B, I, I, I, I)
SPK_CPU_ENTRY(linear_sparse_lists, B, B, I, I)
SPK_CPU_ENTRY(linear_sparse_forward, B, B, B, B, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(linear_sparse_wgrad, B, B, B, I, I, I, I, I, I)
SPK_CPU_ENTRY(linear_add_transposed, B, B, I, I, I, I)
