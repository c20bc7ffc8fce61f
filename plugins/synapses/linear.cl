/* synapse.linear kernels (the dense matrix products go through the backend's GEMM).
 *
 * Besides the GEMMs there are two paths for spike input, both driven by a packed bit state
 * (bit j of a row's words: input j is nonzero; ceil(in / 32) words per row) made by
 * linear_pack in one pass over the input, which also counts the nonzeros and the values that
 * are neither 0 nor 1:
 * - the list path (mostly zero input, any values): forward adds v * wt[i, :] for each set bit
 *   i of a row (wt = W transposed), the weight gradient v * gy[r, :] into row i of its
 *   transpose; work in proportion to the nonzeros.
 * - the table path (input exactly 0 or 1, the Method of Four Russians): for a tile of NT
 *   outputs and a chunk of 8 inputs, the 256 subset sums of the chunk's 8 weight columns
 *   restricted to the tile are one table; a row's output tile is the sum of one table row per
 *   chunk, picked by the row's byte of bits: in / 8 vector adds of NT per row and tile instead
 *   of in multiply-adds. The weight gradient swaps the roles: tables of subset sums of 8 rows
 *   of gy, looked up by the byte of input i's bits in those rows (a transposed bit matrix).
 * Every sum runs in a fixed order, so the CPU and OpenCL give identical results. */

/* y[r, o] += bias[o] over n = rows * n_out items. The CPU walks rows: a division per item
 * keeps the loop scalar (2.5% of fmnist_lif_mlp's training step). */
SPK_KERNEL void linear_bias(SPK_GLOBAL float *y, SPK_GLOBAL const float *bias, const int n,
                            const int n_out)
{
#if defined(__OPENCL_VERSION__) || defined(__OPENCL_C_VERSION__)
    SPK_FOR_ITEMS(i, n) {
        y[i] += bias[i % n_out];
    }
    SPK_END_ITEMS
#else
    SPK_FOR_ITEMS(r, n / n_out) {
        SPK_GLOBAL float *restrict yr = y + (size_t)r * n_out;
        for (int o = 0; o < n_out; o++)
            yr[o] += bias[o];
    }
    SPK_END_ITEMS
#endif
}

/* Counts in ns rows spread over the rows (row s * rows / ns): cnt[2 s] nonzeros, cnt[2 s + 1]
 * values other than 0 and 1. */
SPK_KERNEL void linear_count_nonzero(SPK_GLOBAL float *cnt, SPK_GLOBAL const float *x,
                                     const int ns, const int rows, const int n_in)
{
    SPK_FOR_ITEMS(s, ns) {
        SPK_GLOBAL const float *row = x + (s * rows / ns) * n_in;
        int c = 0, odd = 0;
        for (int j = 0; j < n_in; j++) {
            const float v = row[j];
            c += v != 0.0f;
            odd += v != 0.0f && v != 1.0f;
        }
        cnt[2 * s] = (float)c;
        cnt[2 * s + 1] = (float)odd;
    }
    SPK_END_ITEMS
}

/* One item per block of 32 rows: the rows' bits (bits[r * nw + j], nw = ceil(in / 32)); with
 * make_tb (the table path) the bits word-major instead (bits[j * rows + r]: the forward's pass
 * over the rows for one group of chunks then reads one contiguous column, where rows in[i]
 * bytes apart each cost a cache line: at 4096 inputs its forward ran 1.4 -> 0.9 s with
 * BITS_G = 4) and the transposed bits tb[blk * in + i] (bit k: input i of row 32 blk + k is
 * nonzero); and at cnt[cnt_at + 3 blk] the block's nonzeros, its values other than 0 and 1
 * and the last of those (for the error message). Branch-free: every word is written. */
SPK_KERNEL void linear_pack(SPK_GLOBAL unsigned int *bits, SPK_GLOBAL unsigned int *tb,
                            SPK_GLOBAL float *cnt, SPK_GLOBAL const float *x, const int n,
                            const int rows, const int n_in, const int make_tb, const int cnt_at)
{
    SPK_FOR_TASKS(blk, n) {
        const int r0 = 32 * blk, r1 = rows - r0 < 32 ? rows : r0 + 32;
        const int nw = (n_in + 31) / 32;
        SPK_GLOBAL unsigned int *t = tb + blk * n_in;
        if (make_tb)
            for (int i = 0; i < n_in; i++)
                t[i] = 0u;
        int nz = 0, odd = 0;
        float last = 0.0f;
        for (int r = r0; r < r1; r++) {
            SPK_GLOBAL const float *xr = x + r * n_in;
            SPK_GLOBAL unsigned int *br = make_tb ? bits + r : bits + r * nw;
            const int bst = make_tb ? rows : 1;
            for (int j = 0; j < nw; j++) {
                const int i0 = 32 * j, m = n_in - i0 < 32 ? n_in - i0 : 32;
                unsigned int word = 0u;
                for (int b = 0; b < m; b++)
                    word |= (xr[i0 + b] != 0.0f ? 1u : 0u) << b;
                br[j * bst] = word;
            }
            if (make_tb) {
                const int sh = r - r0;
                for (int i = 0; i < n_in; i++)
                    t[i] |= (xr[i] != 0.0f ? 1u : 0u) << sh;
            }
            for (int i = 0; i < n_in; i++) {
                const float v = xr[i];
                const int bad = v != 0.0f && v != 1.0f;
                nz += v != 0.0f;
                odd += bad;
                last = bad ? v : last;
            }
        }
        cnt[cnt_at + 3 * blk] = (float)nz;
        cnt[cnt_at + 3 * blk + 1] = (float)odd;
        cnt[cnt_at + 3 * blk + 2] = last;
    }
    SPK_END_TASKS
}

/* The index of the lowest set bit of m != 0 (OpenCL 1.2 has clz but no ctz). */
#if defined(__OPENCL_VERSION__) || defined(__OPENCL_C_VERSION__)
#define linear_ctz(m) (31 - (int)clz((m) & (0u - (m))))
#elif defined(__GNUC__)
#define linear_ctz(m) __builtin_ctz(m)
#else
SPK_INLINE int linear_ctz(unsigned int m)
{
    int k = 0;
    for (; !(m & 1u); m >>= 1)
        k++;
    return k;
}
#endif

/* ---- the list path ----
 * Outputs go in blocks [o0, o1) (as many as the scratch holds the transposed weight of, ob =
 * o1 - o0 columns): wt[i, o - o0] = W[o, i] at float offset `at` of the scratch. */

/* wt[j, oo] = w[o0 + oo, j] for oo < ob, one item per value. */
SPK_KERNEL void linear_transpose_w(SPK_GLOBAL float *wt, SPK_GLOBAL const float *w, const int n,
                                   const int n_in, const int at, const int o0, const int ob)
{
    SPK_FOR_ITEMS(i, n) {
        const int oo = i % ob, j = i / ob;
        wt[at + i] = w[(o0 + oo) * n_in + j];
    }
    SPK_END_ITEMS
}

/* One item per row: outputs [o0, o1) of y[r, :] = bias + the sum over the row's set bits, in
 * column order, of v * wt[i, :]. */
SPK_KERNEL void linear_sparse_forward(SPK_GLOBAL float *y, SPK_GLOBAL const unsigned int *bits,
                                      SPK_GLOBAL const float *wt, SPK_GLOBAL const float *x,
                                      SPK_GLOBAL const float *bias, const int n, const int n_in,
                                      const int n_out, const int has_bias, const int at,
                                      const int o0, const int o1)
{
    SPK_FOR_TASKS(r, n) {
        const int nw = (n_in + 31) / 32, ob = o1 - o0;
        SPK_GLOBAL const unsigned int *br = bits + r * nw;
        SPK_GLOBAL const float *xr = x + r * n_in;
        SPK_GLOBAL float *restrict yr = y + r * n_out + o0;
        for (int o = 0; o < ob; o++)
            yr[o] = 0.0f;
        for (int j = 0; j < nw; j++) {
            unsigned int m = br[j];
            while (m != 0u) {
                const int i = 32 * j + linear_ctz(m);
                m &= m - 1u;
                const float v = xr[i];
                SPK_GLOBAL const float *restrict wr = wt + at + i * ob;
                for (int o = 0; o < ob; o++)
                    yr[o] += v * wr[o];
            }
        }
        if (has_bias)
            for (int o = 0; o < ob; o++)
                yr[o] += bias[o0 + o];
    }
    SPK_END_TASKS
}

/* The block's weight gradient, transposed: gwt[i, o - o0] (at offset `at`) = the sum over rows,
 * in order, of v * gy[r, o] for each set bit (r, i); one item (the block's columns of gwt stay
 * in cache over all the rows). */
SPK_KERNEL void linear_sparse_wgrad(SPK_GLOBAL float *gwt, SPK_GLOBAL const unsigned int *bits,
                                    SPK_GLOBAL const float *x, SPK_GLOBAL const float *gy,
                                    const int n, const int rows, const int n_in, const int n_out,
                                    const int at, const int o0, const int o1)
{
    SPK_FOR_ITEMS(blk, n) {
        const int nw = (n_in + 31) / 32, ob = o1 - o0;
        for (int i = 0; i < n_in * ob; i++)
            gwt[at + i] = 0.0f;
        for (int r = 0; r < rows; r++) {
            SPK_GLOBAL const unsigned int *br = bits + r * nw;
            SPK_GLOBAL const float *xr = x + r * n_in;
            SPK_GLOBAL const float *g = gy + r * n_out + o0;
            for (int j = 0; j < nw; j++) {
                unsigned int m = br[j];
                while (m != 0u) {
                    const int i = 32 * j + linear_ctz(m);
                    m &= m - 1u;
                    const float v = xr[i];
                    SPK_GLOBAL float *restrict d = gwt + at + i * ob;
                    for (int o = 0; o < ob; o++)
                        d[o] += v * g[o];
                }
            }
        }
    }
    SPK_END_ITEMS
}

/* ---- sparse: bits where the table path's scratch is short (a few hundred rows or fewer) ----
 * Both passes read only the bits linear_pack wrote (row-major), never the input: bits promises
 * that, so that the input's memory may hold the output or other tensors. */

/* y[r, o] = the sum over row r's set bits, in column order, of W[o, i] (+ bias[o]): the
 * forward of input 0s and 1s. One item per row. */
SPK_KERNEL void linear_bits_forward_rows(SPK_GLOBAL float *y, SPK_GLOBAL const unsigned int *bits,
                                         SPK_GLOBAL const float *w, SPK_GLOBAL const float *bias,
                                         const int n, const int n_in, const int n_out,
                                         const int has_bias)
{
    SPK_FOR_ITEMS(r, n) {
        const int nw = (n_in + 31) / 32;
        SPK_GLOBAL const unsigned int *br = bits + r * nw;
        for (int o = 0; o < n_out; o++) {
            SPK_GLOBAL const float *wr = w + o * n_in;
            float acc = 0.0f;
            for (int j = 0; j < nw; j++) {
                unsigned int m = br[j];
                while (m != 0u) {
                    acc += wr[32 * j + linear_ctz(m)];
                    m &= m - 1u;
                }
            }
            y[r * n_out + o] = has_bias ? acc + bias[o] : acc;
        }
    }
    SPK_END_ITEMS
}

/* grad_W[o, :] += gy[r, o] at each set bit of row r, over the rows in order: the weight
 * gradient of input 0s and 1s. One item per output (its row of grad_W). */
SPK_KERNEL void linear_bits_wgrad_rows(SPK_GLOBAL float *gw, SPK_GLOBAL const unsigned int *bits,
                                       SPK_GLOBAL const float *gy, const int n, const int rows,
                                       const int n_in)
{
    SPK_FOR_ITEMS(o, n) {
        const int nw = (n_in + 31) / 32;
        SPK_GLOBAL float *gr = gw + o * n_in;
        for (int r = 0; r < rows; r++) {
            const float g = gy[r * n + o];
            for (int j = 0; j < nw; j++) {
                unsigned int m = bits[r * nw + j];
                while (m != 0u) {
                    gr[32 * j + linear_ctz(m)] += g;
                    m &= m - 1u;
                }
            }
        }
    }
    SPK_END_ITEMS
}

/* gw[o0 + oo, i] += gwt[i, oo] (at offset `at` of gwt), one item per value of the block. */
SPK_KERNEL void linear_add_transposed(SPK_GLOBAL float *gw, SPK_GLOBAL const float *gwt,
                                      const int n, const int n_in, const int at, const int o0,
                                      const int ob)
{
    SPK_FOR_ITEMS(k, n) {
        const int i = k % n_in, oo = k / n_in;
        gw[o0 * n_in + k] += gwt[at + i * ob + oo];
    }
    SPK_END_ITEMS
}

/* ---- the table path (binary input) ---- */

/* Tiles are 16, 32 or 64 outputs wide (the host picks what fits the scratch): vectors of
 * LINEAR_VW floats (up to 8 of them), which the lookups keep in registers. Vector adds are the
 * same IEEE adds lane by lane: the sums are the scalar loop's. The CPU's vectors are 16 floats
 * only where the compiler targets AVX-512: GCC splits wider vectors than the target has through
 * the stack (the portable build's AVX2 clone ran 3x slower with them). */
#define LINEAR_NT_MAX 64
#if defined(__OPENCL_VERSION__) || defined(__OPENCL_C_VERSION__)
#define LINEAR_VW 16
typedef float16 linear_vec;
#define LINEAR_LD(p)       vload16(0, (p))
#define LINEAR_ST(p, v)    vstore16((v), 0, (p))
#define LINEAR_ZERO        ((float16)(0.0f))
#define LINEAR_PREFETCH(p) prefetch((p), 16)
#else
#if defined(__AVX512F__)
#define LINEAR_VW 16
#else
#define LINEAR_VW 8
#endif
typedef float linear_vec
    __attribute__((vector_size(LINEAR_VW * 4), aligned(4), may_alias));
#define LINEAR_LD(p)       (*(const linear_vec *)(p))
#define LINEAR_ST(p, v)    (*(linear_vec *)(p) = (v))
#define LINEAR_ZERO        ((linear_vec){0.0f})
#define LINEAR_PREFETCH(p) __builtin_prefetch(p)
#endif

/* A table T[256][NT] holds the subset sums of 8 vectors w_k: T[s] = the sum of the w_k whose
 * bit k is set in s. linear_table_load puts T[0] = 0 and T[1 << k] = w_k, with w_k[o] =
 * src[o * so + k * sb] for k < nk and o < nt, else 0 (outputs past the tile, inputs or rows
 * past the end); the tiles load every table of a group first, so that the reads overlap.
 * linear_table_fill adds the rest in increasing k: T[s | 1 << k] = T[s] + w_k for s < 2^k. */
SPK_INLINE void linear_table_load(SPK_GLOBAL float *T, SPK_GLOBAL const float *src, const int so,
                                  const int sb, const int nk, const int nt, const int NT)
{
    for (int o = 0; o < NT; o++)
        T[o] = 0.0f;
    if (sb == 1) {
        /* the forward's 8 inputs of an output are adjacent in W: one line per output, where
         * reading input by input crossed all NT lines 8 times (on_lif_4096's tables per forward
         * took 80-89 ms this way, 42-44 ms by output) */
        for (int o = 0; o < NT; o++)
            for (int k = 0; k < 8; k++)
                T[(1 << k) * NT + o] = o < nt && k < nk ? src[o * so + k] : 0.0f;
        return;
    }
    for (int k = 0; k < 8; k++) {
        SPK_GLOBAL float *restrict wk = T + (1 << k) * NT;
        if (k < nk) {
            for (int o = 0; o < nt; o++)
                wk[o] = src[o * so + k * sb];
            for (int o = nt; o < NT; o++)
                wk[o] = 0.0f;
        } else {
            for (int o = 0; o < NT; o++)
                wk[o] = 0.0f;
        }
    }
}

SPK_INLINE void linear_table_fill(SPK_GLOBAL float *T, const int NT)
{
    for (int k = 1; k < 8; k++) {
        const int h = 1 << k;
        SPK_GLOBAL const float *wk = T + h * NT;
        for (int s = 1; s < h; s++) {
            SPK_GLOBAL float *restrict d = T + (h + s) * NT;
            SPK_GLOBAL const float *a = T + s * NT;
            for (int v = 0; v < NT; v += LINEAR_VW)
                LINEAR_ST(d + v, LINEAR_LD(a + v) + LINEAR_LD(wk + v));
        }
    }
}

/* The lookups' row sums: NT / LINEAR_VW vectors a0 .. a7 in registers (the unused ones
 * vanish, NT being a literal), from 0 or from a; one table row added; stored back to a. */
#define LINEAR_ACC_BEGIN(a, first)                                                                 \
    const int nv = NT / LINEAR_VW, W = LINEAR_VW;                                                  \
    linear_vec a0 = LINEAR_ZERO, a1 = LINEAR_ZERO, a2 = LINEAR_ZERO, a3 = LINEAR_ZERO;             \
    linear_vec a4 = LINEAR_ZERO, a5 = LINEAR_ZERO, a6 = LINEAR_ZERO, a7 = LINEAR_ZERO;             \
    if (!(first)) {                                                                                \
        a0 = LINEAR_LD(a);                                                                         \
        if (nv > 1)                                                                                \
            a1 = LINEAR_LD((a) + W);                                                               \
        if (nv > 2) {                                                                              \
            a2 = LINEAR_LD((a) + 2 * W);                                                           \
            a3 = LINEAR_LD((a) + 3 * W);                                                           \
        }                                                                                          \
        if (nv > 4) {                                                                              \
            a4 = LINEAR_LD((a) + 4 * W);                                                           \
            a5 = LINEAR_LD((a) + 5 * W);                                                           \
            a6 = LINEAR_LD((a) + 6 * W);                                                           \
            a7 = LINEAR_LD((a) + 7 * W);                                                           \
        }                                                                                          \
    }
#define LINEAR_ADD_ROW(t)                                                                          \
    do {                                                                                           \
        a0 += LINEAR_LD(t);                                                                        \
        if (nv > 1)                                                                                \
            a1 += LINEAR_LD((t) + W);                                                              \
        if (nv > 2) {                                                                              \
            a2 += LINEAR_LD((t) + 2 * W);                                                          \
            a3 += LINEAR_LD((t) + 3 * W);                                                          \
        }                                                                                          \
        if (nv > 4) {                                                                              \
            a4 += LINEAR_LD((t) + 4 * W);                                                          \
            a5 += LINEAR_LD((t) + 5 * W);                                                          \
            a6 += LINEAR_LD((t) + 6 * W);                                                          \
            a7 += LINEAR_LD((t) + 7 * W);                                                          \
        }                                                                                          \
    } while (0)
#define LINEAR_ACC_END(a)                                                                          \
    LINEAR_ST(a, a0);                                                                              \
    if (nv > 1)                                                                                    \
        LINEAR_ST((a) + W, a1);                                                                    \
    if (nv > 2) {                                                                                  \
        LINEAR_ST((a) + 2 * W, a2);                                                                \
        LINEAR_ST((a) + 3 * W, a3);                                                                \
    }                                                                                              \
    if (nv > 4) {                                                                                  \
        LINEAR_ST((a) + 4 * W, a4);                                                                \
        LINEAR_ST((a) + 5 * W, a5);                                                                \
        LINEAR_ST((a) + 6 * W, a6);                                                                \
        LINEAR_ST((a) + 7 * W, a7);                                                                \
    }

/* a[0 .. NT) (from 0 when first, else from a) += the rows of the g tables at T (256 x NT each)
 * picked by bytes q0, q0 + 1, ... of the words word[0], word[wstride], ... (4 bytes a word), in
 * order; the sums stay in registers. */
SPK_INLINE void linear_lookup(SPK_GLOBAL float *a, SPK_GLOBAL const float *T,
                              SPK_GLOBAL const unsigned int *word, const int wstride, const int q0,
                              const int g, const int first, const int NT)
{
    LINEAR_ACC_BEGIN(a, first);
    for (int q = 0; q < g; q++) {
        const int c = q0 + q;
        const int byte = (int)((word[(c >> 2) * wstride] >> ((c & 3) << 3)) & 255u);
        LINEAR_ADD_ROW(T + (q * 256 + byte) * NT);
    }
    LINEAR_ACC_END(a);
}

/* linear_lookup for 4 chunks that start a word, whose value is wd: unrolled, the word read
 * once (on_lif_4096's table kernels ~5% faster than through the loop). */
SPK_INLINE void linear_lookup_word(SPK_GLOBAL float *a, SPK_GLOBAL const float *T,
                                   const unsigned int wd, const int first, const int NT)
{
    LINEAR_ACC_BEGIN(a, first);
    LINEAR_ADD_ROW(T + (int)(wd & 255u) * NT);
    LINEAR_ADD_ROW(T + (256 + (int)((wd >> 8) & 255u)) * NT);
    LINEAR_ADD_ROW(T + (512 + (int)((wd >> 16) & 255u)) * NT);
    LINEAR_ADD_ROW(T + (768 + (int)(wd >> 24)) * NT);
    LINEAR_ACC_END(a);
}

/* Outputs [o0, o0 + nt) of every row, in blocks of rb rows: per group of G chunks of 8 inputs,
 * the chunks' tables (from the 8 x nt blocks of W), then per row of the block Y[r] += (one
 * table row per chunk, in chunk order; the first group's sum is Y[r]); Y [rb, NT] (after the
 * tables) then goes to y, plus the bias. Y keeps a block's sums together in cache beside the
 * tables, where y's rows, n_out apart (4 KiB at 1024 outputs), would collide in its sets. The
 * tables are rebuilt per block: 255 / rb of the lookups' adds. NT is a literal in the common
 * case. */
SPK_INLINE void linear_bits_fwd_tile(SPK_GLOBAL float *y, SPK_GLOBAL const unsigned int *bits,
                                     SPK_GLOBAL const float *w, SPK_GLOBAL const float *bias,
                                     SPK_GLOBAL float *T, const int o0, const int rows,
                                     const int n_in, const int n_out, const int has_bias,
                                     const int rb, const int NT, const int G)
{
    const int nt = n_out - o0 < NT ? n_out - o0 : NT;
    const int nq = (n_in + 7) / 8;
    SPK_GLOBAL float *Y = T + G * 256 * NT;
    for (int r0 = 0; r0 < rows; r0 += rb) {
        const int nr = rows - r0 < rb ? rows - r0 : rb;
        for (int q0 = 0; q0 < nq; q0 += G) {
            const int g = nq - q0 < G ? nq - q0 : G;
            for (int q = 0; q < g; q++) {
                const int i0 = 8 * (q0 + q);
                linear_table_load(T + q * 256 * NT, w + o0 * n_in + i0, n_in, 1,
                                  n_in - i0 < 8 ? n_in - i0 : 8, nt, NT);
            }
            for (int q = 0; q < g; q++)
                linear_table_fill(T + q * 256 * NT, NT);
            if (g == 4 && (q0 & 3) == 0) {
                SPK_GLOBAL const unsigned int *wc = bits + (q0 >> 2) * rows + r0;
                for (int r = 0; r < nr; r++)
                    linear_lookup_word(Y + r * NT, T, wc[r], q0 == 0, NT);
            } else {
                for (int r = 0; r < nr; r++)
                    linear_lookup(Y + r * NT, T, bits + r0 + r, rows, q0, g, q0 == 0, NT);
            }
        }
        for (int r = 0; r < nr; r++) {
            SPK_GLOBAL float *restrict yr = y + (r0 + r) * n_out + o0;
            SPK_GLOBAL const float *Yr = Y + r * NT;
            if (has_bias)
                for (int o = 0; o < nt; o++)
                    yr[o] = Yr[o] + bias[o0 + o];
            else
                for (int o = 0; o < nt; o++)
                    yr[o] = Yr[o];
        }
    }
}

/* One item per tile of NT outputs (tiles tile0 + k); item k's tables and row sums
 * (G 256 NT + rb NT floats) at float offset at + k (G 256 NT + rb NT) of the scratch. NT = 64
 * is passed as a literal, so that the tile's loops have fixed lengths. */
SPK_KERNEL void linear_bits_forward(SPK_GLOBAL float *y, SPK_GLOBAL const unsigned int *bits,
                                    SPK_GLOBAL const float *w, SPK_GLOBAL const float *bias,
                                    SPK_GLOBAL float *scr, const int n, const int tile0,
                                    const int rows, const int n_in, const int n_out,
                                    const int has_bias, const int rb, const int at,
                                    const int NT, const int G)
{
    SPK_FOR_TASKS(k, n) {
        SPK_GLOBAL float *T = scr + at + k * (G * 256 * NT + rb * NT);
        if (NT == 64)
            linear_bits_fwd_tile(y, bits, w, bias, T, (tile0 + k) * NT, rows, n_in, n_out,
                                 has_bias, rb, 64, G);
        else
            linear_bits_fwd_tile(y, bits, w, bias, T, (tile0 + k) * NT, rows, n_in, n_out,
                                 has_bias, rb, NT, G);
    }
    SPK_END_TASKS
}

/* gw[o0 .. o0 + nt, :] += the tile's gradient: per group of G chunks of 8 rows, the chunks'
 * tables (subset sums of the 8 rows of gy), then per input i A[i, :] += (one table row per
 * chunk, picked by the byte of input i's bits in the chunk's rows, in chunk order); A [in, NT]
 * starts at 0 and is added, transposed, to gw at the end. Each table's last row sums the
 * chunk's rows of gy: their sum over the chunks, from 0 in chunk order, is the bias gradient
 * (gbt, NT floats), added to gb when has_gb. */
SPK_INLINE void linear_bits_wgrad_tile(SPK_GLOBAL float *gw, SPK_GLOBAL const unsigned int *tb,
                                       SPK_GLOBAL const float *gy, SPK_GLOBAL float *T,
                                       SPK_GLOBAL float *gb, const int has_gb, const int o0,
                                       const int rows, const int n_in, const int n_out,
                                       const int NT, const int G)
{
    const int nt = n_out - o0 < NT ? n_out - o0 : NT;
    const int nc = (rows + 7) / 8;
    SPK_GLOBAL float *A = T + G * 256 * NT, *gbt = A + n_in * NT;
    for (int o = 0; o < NT; o++)
        gbt[o] = 0.0f;
    for (int c0 = 0; c0 < nc; c0 += G) {
        const int g = nc - c0 < G ? nc - c0 : G;
        for (int q = 0; q < g; q++) {
            const int r0 = 8 * (c0 + q);
            linear_table_load(T + q * 256 * NT, gy + r0 * n_out + o0, 1, n_out,
                              rows - r0 < 8 ? rows - r0 : 8, nt, NT);
        }
        for (int q = 0; q < g; q++) {
            SPK_GLOBAL const float *all = T + (q * 256 + 255) * NT;
            linear_table_fill(T + q * 256 * NT, NT);
            for (int o = 0; o < NT; o++) /* the sum of the chunk's rows */
                gbt[o] += all[o];
        }
        /* the next group's rows of gy, 16 floats per input, are fetched during the lookups:
         * n_out apart, they are beyond the hardware prefetcher's reach */
        const int rn = 8 * (c0 + G);
        const int whole = g == 4 && (c0 & 3) == 0;
        SPK_GLOBAL const unsigned int *wc = tb + (c0 >> 2) * n_in;
        for (int i = 0; i < n_in; i++) {
            if ((i & 3) * 16 < nt && rn + (i >> 2) < rows && i < 32 * G)
                LINEAR_PREFETCH(gy + (rn + (i >> 2)) * n_out + o0 + (i & 3) * 16);
            if (whole)
                linear_lookup_word(A + i * NT, T, wc[i], c0 == 0, NT);
            else
                linear_lookup(A + i * NT, T, tb + i, n_in, c0, g, c0 == 0, NT);
        }
    }
    for (int o = 0; o < nt; o++) {
        SPK_GLOBAL float *restrict gr = gw + (o0 + o) * n_in;
        for (int i = 0; i < n_in; i++)
            gr[i] += A[i * NT + o];
    }
    if (has_gb)
        for (int o = 0; o < nt; o++)
            gb[o0 + o] += gbt[o];
}

/* One item per tile of NT outputs (tiles tile0 + k); item k's tables and accumulators
 * (G 256 NT + (in + 1) NT floats) at float offset at + k (G 256 NT + (in + 1) NT) of the
 * scratch, whose start holds the transposed bits tb. */
SPK_KERNEL void linear_bits_wgrad(SPK_GLOBAL float *gw, SPK_GLOBAL float *gb,
                                  SPK_GLOBAL const unsigned int *tb, SPK_GLOBAL const float *gy,
                                  SPK_GLOBAL float *scr, const int n, const int tile0,
                                  const int rows, const int n_in, const int n_out,
                                  const int has_gb, const int at, const int NT, const int G)
{
    SPK_FOR_TASKS(k, n) {
        SPK_GLOBAL float *T = scr + at + k * (G * 256 * NT + (n_in + 1) * NT);
        if (NT == 64)
            linear_bits_wgrad_tile(gw, tb, gy, T, gb, has_gb, (tile0 + k) * NT, rows, n_in, n_out,
                                   64, G);
        else
            linear_bits_wgrad_tile(gw, tb, gy, T, gb, has_gb, (tile0 + k) * NT, rows, n_in, n_out,
                                   NT, G);
    }
    SPK_END_TASKS
}

SPK_CPU_ENTRY(linear_bias, B, B, I, I)
SPK_CPU_ENTRY(linear_count_nonzero, B, B, I, I, I)
SPK_CPU_ENTRY(linear_pack, B, B, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(linear_transpose_w, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(linear_sparse_forward, B, B, B, B, B, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(linear_sparse_wgrad, B, B, B, B, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(linear_add_transposed, B, B, I, I, I, I, I)
SPK_CPU_ENTRY(linear_bits_forward_rows, B, B, B, B, I, I, I, I)
SPK_CPU_ENTRY(linear_bits_wgrad_rows, B, B, B, I, I, I)
SPK_CPU_ENTRY(linear_bits_forward, B, B, B, B, B, I, I, I, I, I, I, I, I, I, I)
SPK_CPU_ENTRY(linear_bits_wgrad, B, B, B, B, B, I, I, I, I, I, I, I, I, I)
