/* synapse.linear: forward against a naive product, backward against finite differences,
 * accumulation of weight gradients, the PyTorch layout and initialisation. */
#include <omp.h>

#include "layer_check.h"

/* y[r, o] = sum_i x[r, i] W[o, i] + b[o], in double. */
static void ref_linear(size_t rows, int ni, int no, const float *x, const float *W, const float *b,
                       float *y)
{
    for (size_t r = 0; r < rows; r++)
        for (int o = 0; o < no; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < ni; i++)
                s += (double)x[r * ni + i] * W[(size_t)o * ni + i];
            y[r * no + o] = (float)s;
        }
}

static size_t rows_of(const lc *t, int time)
{
    return (size_t)t->li->x.B * (time == SPK_TIME_STEPS ? (size_t)t->li->T : 1u);
}

/* The path the layer's last forward took: 0 dense GEMM, 1 list, 2 table (linear.c). */
int spk_linear_path(const spk_layer *l);

/* The set bits of the layer's bit state over `rows` rows, checked to lie below n_in (the
 * table path keeps them word-major: word j of row r at j * rows + r). */
static size_t count_bits(lc *t, size_t rows, int ni)
{
    const spk_tensor *st = lc_state(t, "scratch_bits");
    float *f = lc_fetch(t, st);
    const int nw = (ni + 31) / 32;
    const int word_major = spk_linear_path(&t->li->layer) == 2;
    size_t n = 0;
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < nw; j++) {
            uint32_t w;
            memcpy(&w, &f[word_major ? (size_t)j * rows + r : r * nw + j], sizeof w);
            if (32 * j + 32 > ni)
                cr_expect_eq(w >> (ni - 32 * j), 0u, "row %zu: bits past the input", r);
            n += (size_t)__builtin_popcount(w);
        }
    free(f);
    return n;
}

static void check_forward(int time, spk_shape in, int no, int bias, int T, int B)
{
    lc t;
    char yaml[64];
    snprintf(yaml, sizeof yaml, "{out: %d, bias: %s}", no, bias ? "true" : "false");
    in.time = time;
    lc_new(&t, "synapse.linear", yaml, in, T, B, 3);
    const int ni = spk_shape_size(&in);
    cr_assert_eq(t.li->layer.out.time, time, "the output keeps the input's time mode");
    cr_assert_eq(t.li->layer.out.ndim, 1);
    cr_assert_eq(t.li->layer.out.dims[0], no);
    cr_assert_eq(t.li->layer.n_weights, bias ? 2 : 1);
    lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, (unsigned)(ni * 3 + no));
    lc_fwd(&t);
    size_t rows = rows_of(&t, time);
    float *x = lc_fetch(&t, &t.li->in[0]);
    float *W = lc_fetch(&t, &lc_weight(&t, "weight")->value);
    float *b = bias ? lc_fetch(&t, &lc_weight(&t, "bias")->value) : NULL;
    float *want = malloc(rows * no * sizeof(float));
    ref_linear(rows, ni, no, x, W, b, want);
    float *got = lc_fetch(&t, &t.li->out);
    cr_assert_eq(t.li->out.numel, rows * no);
    /* float32 sums of up to ~100 products of values <= 1: rounding ~1e-6 of the magnitude */
    cr_expect_leq(spk_test_nerr(got, want, rows * no), 1e-5, "%s in %d time %d: forward differs",
                  yaml, ni, time);
    free(x), free(W), free(b), free(want), free(got);
    lc_free(&t);
}

Test(linear, forward)
{
    check_forward(SPK_TIME_STEPS, lc_shape(0, 3, 2, 3, 5), 7, 1, 3, 2);
    check_forward(SPK_TIME_STEPS, lc_shape(0, 1, 1, 0, 0), 1, 1, 1, 1);
    check_forward(SPK_TIME_STEPS, lc_shape(0, 1, 37, 0, 0), 11, 0, 5, 3);
    check_forward(SPK_TIME_CONST, lc_shape(0, 3, 1, 4, 4), 9, 1, 6, 5);
    check_forward(SPK_TIME_NONE, lc_shape(0, 1, 13, 0, 0), 3, 1, 4, 7);
}

/* Backward against central differences of sum(out * R). The layer is linear in each of x, W
 * and b, so the differences have no truncation error; the float32 objective (sums of ~100
 * terms of size <~ 5) rounds at ~1e-6 absolute, which eps = 1e-2 turns into ~1e-4 of
 * gradients of size ~1: 1e-3 is a tight bound that a transposed or unaccumulated product fails
 * by O(1). */
static void check_fd(int time, int ni, int no, int T, int B)
{
    lc t;
    char yaml[64];
    snprintf(yaml, sizeof yaml, "{out: %d}", no);
    lc_new(&t, "synapse.linear", yaml, lc_shape(time, 1, ni, 0, 0), T, B, 5);
    lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, (unsigned)(ni + 7 * no));
    float *R = malloc(t.li->out.numel * sizeof(float));
    spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 77);
    lc_fwd(&t);
    lc_backward_with(&t, R);
    float *gin = lc_fetch(&t, &t.li->grad_in[0]);
    spk_weight *w = lc_weight(&t, "weight"), *b = lc_weight(&t, "bias");
    float *gw = lc_fetch(&t, &w->grad), *gb = lc_fetch(&t, &b->grad);
    const double tol = 1e-3;
    double e = lc_fd_error(&t, &t.li->in[0], R, gin, 1e-2f);
    cr_expect_leq(e, tol, "time %d: grad_in error %g", time, e);
    e = lc_fd_error(&t, &w->value, R, gw, 1e-2f);
    cr_expect_leq(e, tol, "time %d: grad weight error %g", time, e);
    e = lc_fd_error(&t, &b->value, R, gb, 1e-2f);
    cr_expect_leq(e, tol, "time %d: grad bias error %g", time, e);
    free(R), free(gin), free(gw), free(gb);
    lc_free(&t);
}

Test(linear, backward_fd)
{
    check_fd(SPK_TIME_STEPS, 7, 5, 3, 2);
    check_fd(SPK_TIME_CONST, 6, 3, 4, 3);
    check_fd(SPK_TIME_STEPS, 1, 1, 2, 1);
}

/* Weight gradients accumulate (the executor sums over the layers that share a window and the
 * optimizer zeroes them); grad_in is overwritten. Two backward calls give twice the weight
 * gradient and the same grad_in. */
Test(linear, weight_grads_accumulate)
{
    lc t;
    lc_new(&t, "synapse.linear", "{out: 4}", lc_shape(SPK_TIME_STEPS, 1, 5, 0, 0), 3, 2, 9);
    lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, 1);
    lc_fill(&t, &t.li->grad_out, -1.0f, 1.0f, 2);
    lc_fwd(&t);
    lc_bwd(&t); /* zeroes the grads, then backward */
    spk_weight *w = lc_weight(&t, "weight"), *b = lc_weight(&t, "bias");
    float *gw1 = lc_fetch(&t, &w->grad), *gb1 = lc_fetch(&t, &b->grad);
    float *gi1 = lc_fetch(&t, &t.li->grad_in[0]);
    spk_layer *l = &t.li->layer;
    cr_assert_eq(l->type->backward(l, &t.li->x), SPK_OK, "%s", t.li->err.msg);
    float *gw2 = lc_fetch(&t, &w->grad), *gb2 = lc_fetch(&t, &b->grad);
    float *gi2 = lc_fetch(&t, &t.li->grad_in[0]);
    double nz = 0;
    for (int i = 0; i < 20; i++) {
        cr_expect_float_eq(gw2[i], 2 * gw1[i], 1e-5, "weight grad %d: %g then %g", i, gw1[i],
                           gw2[i]);
        nz += fabs(gw1[i]);
    }
    cr_expect_gt(nz, 0.1);
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(gb2[i], 2 * gb1[i], 1e-5);
    for (int i = 0; i < 30; i++)
        cr_expect_float_eq(gi2[i], gi1[i], 1e-6);
    free(gw1), free(gb1), free(gi1), free(gw2), free(gb2), free(gi2);
    lc_free(&t);
}

/* PyTorch layout and init: weight [out, in] and bias [out], both U(-1/sqrt(in), 1/sqrt(in)). */
Test(linear, torch_layout_and_init)
{
    lc t;
    lc_new(&t, "synapse.linear", "{out: 30}", lc_shape(SPK_TIME_STEPS, 3, 1, 10, 10), 2, 2, 4);
    spk_weight *w = lc_weight(&t, "weight"), *b = lc_weight(&t, "bias");
    cr_expect(w->shape.ndim == 2 && w->shape.dims[0] == 30 && w->shape.dims[1] == 100);
    cr_expect(b->shape.ndim == 1 && b->shape.dims[0] == 30);
    cr_expect(w->decay && !b->decay && !w->frozen && !b->frozen);
    const float bound = 0.1f;
    float *v = lc_fetch(&t, &w->value);
    double lo = 1, hi = -1, mean = 0;
    for (size_t i = 0; i < w->value.numel; i++) {
        lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
        mean += v[i] / (double)w->value.numel;
    }
    /* 3000 uniform draws: the extremes come within 1% of the bounds, the mean within ~4 sigma
     * (sigma = 0.1 / sqrt(3 * 3000) ~ 1e-3) */
    cr_expect(lo >= -bound && hi <= bound && lo < -0.99 * bound && hi > 0.99 * bound,
              "weights in [%g, %g]", lo, hi);
    cr_expect_lt(fabs(mean), 4e-3);
    free(v);
    v = lc_fetch(&t, &b->value);
    for (int i = 0; i < 30; i++)
        cr_expect(v[i] >= -bound && v[i] <= bound);
    free(v);
    lc_free(&t);
}

Test(linear, init_errors)
{
    lc t;
    int rc =
        lc_try(&t, "synapse.linear", "{bias: false}", lc_shape(SPK_TIME_STEPS, 1, 4, 0, 0), 2, 2);
    cr_expect_neq(rc, SPK_OK, "`out` is required");
    lc_free(&t);
    rc = lc_try(&t, "synapse.linear", "{out: 0}", lc_shape(SPK_TIME_STEPS, 1, 4, 0, 0), 2, 2);
    cr_expect_neq(rc, SPK_OK, "out must be >= 1");
    lc_free(&t);
}

/* The finite-difference check itself: asked about a tensor the objective does not depend on (the
 * layer's grad_out, which the forward never reads) with an all-zero "backward", it must fail
 * rather than report agreement of two zeros, so a layer that ignores its input cannot pass. */
Test(linear, fd_check_fails_on_independent_tensor)
{
    lc t;
    lc_new(&t, "synapse.linear", "{out: 3}", lc_shape(0, 1, 4, 0, 0), 2, 2, 5);
    lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, 9);
    float *R = malloc(t.li->out.numel * sizeof(float));
    float *zero = calloc(t.li->grad_out.numel, sizeof(float));
    cr_assert(R && zero);
    spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 4);
    double e = lc_fd_error(&t, &t.li->grad_out, R, zero, 1e-3f);
    cr_expect(isinf(e), "fd error %g for a tensor the objective does not depend on", e);
    free(R), free(zero);
    lc_free(&t);
}

/* The sparse path (forward over each row's nonzero inputs, weight gradient over them) against
 * the dense GEMMs on the same weights and inputs: outputs and every gradient agree to float32
 * summation error. Spikes, sparse real values and dense values (the path is exact for any
 * input, only slower); odd sizes, steps and a constant input, with and without a bias; the
 * rows' lists show the path was taken. */
static void check_sparse_agrees(int time, int ni, int no, int T, int B, int bias, double keep,
                                int binary)
{
    float *res[2][4];
    size_t n[4] = {0};
    for (int m = 0; m < 2; m++) {
        char yaml[96];
        snprintf(yaml, sizeof yaml, "{out: %d, bias: %s, sparse: %s}", no, bias ? "true" : "false",
                 m ? "never" : "always");
        lc t;
        lc_new(&t, "synapse.linear", yaml, lc_shape(time, 1, ni, 0, 0), T, B, 4);
        const size_t rows = rows_of(&t, time);
        cr_assert_geq(rows, (size_t)no, "the sparse path needs rows >= out");
        float *x = malloc(t.li->in[0].numel * sizeof(float));
        spk_test_fill(x, t.li->in[0].numel, -1.0f, 1.0f, 11);
        size_t nz = 0;
        for (size_t i = 0; i < t.li->in[0].numel; i++) {
            const unsigned h = (unsigned)(i * 2654435761u) >> 8;
            if ((double)(h % 1000) >= keep * 1000.0)
                x[i] = 0.0f;
            else if (binary)
                x[i] = 1.0f;
            nz += x[i] != 0.0f;
        }
        lc_set(&t, &t.li->in[0], x);
        lc_fill(&t, &t.li->grad_out, -1.0f, 1.0f, 12);
        lc_fwd(&t);
        lc_bwd(&t);
        if (m == 0) {
            /* the path was taken, and its bits count every nonzero input */
            cr_expect_eq(spk_linear_path(&t.li->layer), 1, "in %d out %d: not the list path", ni,
                         no);
            cr_expect_eq(count_bits(&t, rows, ni), nz, "in %d out %d: bits miscount", ni, no);
        }
        res[m][0] = lc_fetch(&t, &t.li->out);
        res[m][1] = lc_fetch(&t, &t.li->grad_in[0]);
        res[m][2] = lc_fetch(&t, &lc_weight(&t, "weight")->grad);
        res[m][3] = bias ? lc_fetch(&t, &lc_weight(&t, "bias")->grad) : NULL;
        n[0] = t.li->out.numel, n[1] = t.li->grad_in[0].numel;
        n[2] = (size_t)ni * no, n[3] = (size_t)no;
        free(x);
        lc_free(&t);
    }
    const char *what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
    for (int k = 0; k < (bias ? 4 : 3); k++) {
        double e = spk_test_nerr(res[0][k], res[1][k], n[k]);
        cr_expect_leq(e, 1e-5, "in %d out %d time %d keep %g: %s: sparse and dense differ by %g",
                      ni, no, time, keep, what[k], e);
    }
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 4; k++)
            free(res[m][k]);
}

Test(linear, sparse_and_dense_paths_agree)
{
    check_sparse_agrees(SPK_TIME_STEPS, 37, 11, 5, 3, 1, 0.1, 1);
    check_sparse_agrees(SPK_TIME_STEPS, 300, 10, 4, 7, 1, 0.07, 1);
    check_sparse_agrees(SPK_TIME_STEPS, 29, 13, 3, 5, 0, 0.4, 0);
    check_sparse_agrees(SPK_TIME_CONST, 23, 5, 4, 6, 1, 1.0, 0);
    check_sparse_agrees(SPK_TIME_STEPS, 1, 1, 2, 1, 1, 1.0, 1);
    check_sparse_agrees(SPK_TIME_STEPS, 2000, 100, 10, 11, 1, 0.05, 1); /* 4 gradient blocks */
}

/* ---- the table path (sparse: bits) ---- */

/* Spikes (0 or 1, about `keep` of them 1) into the input; a whole sample's steps equal when
 * `still` (a time-constant picture fed over the steps). */
static void set_spikes(lc *t, double keep, unsigned seed, int still)
{
    const spk_tensor *in = &t->li->in[0];
    float *x = malloc(in->numel * sizeof(float));
    cr_assert_not_null(x);
    spk_test_fill(x, in->numel, 0.0f, 1.0f, seed);
    for (size_t i = 0; i < in->numel; i++)
        x[i] = x[i] < keep ? 1.0f : 0.0f;
    if (still) {
        const size_t per_step = (size_t)t->li->B * (in->numel / ((size_t)t->li->B * t->li->T));
        for (size_t i = per_step; i < in->numel; i++)
            x[i] = x[i % per_step];
    }
    lc_set(t, (spk_tensor *)in, x);
    free(x);
}

/* Forward of `sparse: bits` against the double-precision product over the first rows of a batch
 * of n samples (n <= B: a partial batch reads the packed [T, n, in] layout), and its path. */
static void check_bits_forward(int time, int ni, int no, int T, int B, int n, int bias, double keep,
                               int still, int want_path)
{
    lc t;
    char yaml[96];
    snprintf(yaml, sizeof yaml, "{out: %d, bias: %s, sparse: bits}", no, bias ? "true" : "false");
    lc_new(&t, "synapse.linear", yaml, lc_shape(time, 1, ni, 0, 0), T, B, 8);
    set_spikes(&t, keep, (unsigned)(ni * 7 + no), still);
    t.li->x.B = n;
    lc_fwd(&t);
    cr_expect_eq(spk_linear_path(&t.li->layer), want_path, "in %d out %d rows %zu: path", ni, no,
                 rows_of(&t, time));
    const size_t rows = rows_of(&t, time);
    float *x = lc_fetch(&t, &t.li->in[0]);
    float *W = lc_fetch(&t, &lc_weight(&t, "weight")->value);
    float *b = bias ? lc_fetch(&t, &lc_weight(&t, "bias")->value) : NULL;
    float *want = malloc(rows * no * sizeof(float));
    ref_linear(rows, ni, no, x, W, b, want);
    float *got = lc_fetch(&t, &t.li->out);
    /* float32 sums of up to ~200 values <= 0.15 (in ~ 200): ~1e-6 of the magnitude */
    cr_expect_leq(spk_test_nerr(got, want, rows * no), 1e-5,
                  "bits: in %d out %d time %d rows %zu: forward differs by %g", ni, no, time, rows,
                  spk_test_nerr(got, want, rows * no));
    if (want_path == 2) {
        size_t nz = 0;
        for (size_t i = 0; i < rows * (size_t)ni; i++)
            nz += x[i] != 0.0f;
        cr_expect_eq(count_bits(&t, rows, ni), nz, "in %d out %d: bits miscount", ni, no);
    }
    free(x), free(W), free(b), free(want), free(got);
    lc_free(&t);
}

Test(linear, bits_forward)
{
    /* 2250 rows: 64-wide tiles, 4 chunks per group; out 70: a partial tile; in 45: 6 chunks,
     * a group of 4 (one word, the unrolled lookup) and one of 2 (the loop), a partial chunk and
     * word */
    check_bits_forward(SPK_TIME_STEPS, 45, 70, 25, 90, 90, 1, 0.4, 0, 2);
    check_bits_forward(SPK_TIME_STEPS, 45, 70, 25, 90, 87, 0, 0.3, 0, 2); /* partial batch */
    check_bits_forward(SPK_TIME_STEPS, 45, 70, 25, 90, 90, 1, 0.5, 1, 2); /* constant picture */
    /* fewer rows: narrower tiles (32, 16) and one chunk per group, several launches */
    check_bits_forward(SPK_TIME_STEPS, 300, 130, 9, 35, 35, 1, 0.3, 0, 2);
    check_bits_forward(SPK_TIME_STEPS, 130, 70, 7, 17, 17, 1, 0.3, 0, 2);
    check_bits_forward(SPK_TIME_STEPS, 33, 5, 4, 70, 70, 1, 0.5, 0, 2);
    check_bits_forward(SPK_TIME_CONST, 20, 40, 3, 300, 300, 1, 0.5, 0, 2); /* B rows */
    check_bits_forward(SPK_TIME_STEPS, 64, 64, 30, 40, 40, 1, 1.0, 0, 2);  /* all ones */
    check_bits_forward(SPK_TIME_STEPS, 64, 64, 30, 40, 40, 1, 0.0, 0, 2);  /* all zeros */
    /* too few rows for the tables: the GEMM */
    check_bits_forward(SPK_TIME_STEPS, 37, 13, 5, 3, 3, 1, 0.3, 0, 0);
}

/* Backward of sparse: bits against the dense GEMMs on the same weights and spikes (output and
 * every gradient to float32 summation error), and against finite differences of the weights
 * and the bias (the input cannot be perturbed: bits refuses values other than 0 and 1). `path`:
 * the one expected, the table (2), or with too few rows for its scratch the GEMM forward (0),
 * whose weight gradient then comes from the bits too (linear_bits_wgrad_rows): bits promises
 * not to read its input in backward, so the input is NaN there. */
static void check_bits_backward(int time, int ni, int no, int T, int B, int n, int fd, int path)
{
    float *res[2][4];
    size_t cnt[4] = {0};
    for (int m = 0; m < 2; m++) {
        char yaml[96];
        snprintf(yaml, sizeof yaml, "{out: %d, sparse: %s}", no, m ? "never" : "bits");
        lc t;
        lc_new(&t, "synapse.linear", yaml, lc_shape(time, 1, ni, 0, 0), T, B, 4);
        set_spikes(&t, 0.35, 21, 0);
        t.li->x.B = n;
        float *R = malloc(t.li->out.numel * sizeof(float));
        spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 22);
        lc_fwd(&t);
        float *in = lc_fetch(&t, &t.li->in[0]);
        if (m == 0) {
            cr_expect(t.li->layer.memory & SPK_MEM_BACKWARD_NO_INPUT,
                      "bits: no promise not to read the input");
            float *nan = malloc(t.li->in[0].numel * sizeof(float));
            for (size_t i = 0; i < t.li->in[0].numel; i++)
                nan[i] = NAN;
            lc_set(&t, &t.li->in[0], nan);
            free(nan);
        }
        lc_backward_with(&t, R);
        lc_set(&t, &t.li->in[0], in); /* for the finite differences */
        free(in);
        if (m == 0)
            cr_expect_eq(spk_linear_path(&t.li->layer), path, "in %d out %d: path %d, not %d", ni,
                         no, spk_linear_path(&t.li->layer), path);
        const size_t rows = rows_of(&t, time);
        res[m][0] = lc_fetch(&t, &t.li->out);
        res[m][1] = lc_fetch(&t, &t.li->grad_in[0]);
        res[m][2] = lc_fetch(&t, &lc_weight(&t, "weight")->grad);
        res[m][3] = lc_fetch(&t, &lc_weight(&t, "bias")->grad);
        cnt[0] = rows * no, cnt[1] = rows * ni, cnt[2] = (size_t)ni * no, cnt[3] = (size_t)no;
        if (m == 0 && fd) {
            spk_weight *w = lc_weight(&t, "weight"), *b = lc_weight(&t, "bias");
            double e = lc_fd_error(&t, &w->value, R, res[0][2], 1e-2f);
            cr_expect_leq(e, 1e-3, "bits in %d out %d: grad weight error %g", ni, no, e);
            e = lc_fd_error(&t, &b->value, R, res[0][3], 1e-2f);
            cr_expect_leq(e, 1e-3, "bits in %d out %d: grad bias error %g", ni, no, e);
        }
        free(R);
        lc_free(&t);
    }
    const char *what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
    for (int k = 0; k < 4; k++) {
        double e = spk_test_nerr(res[0][k], res[1][k], cnt[k]);
        cr_expect_leq(e, 1e-5, "in %d out %d time %d: %s: table and dense differ by %g", ni, no,
                      time, what[k], e);
    }
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 4; k++)
            free(res[m][k]);
}

Test(linear, bits_backward)
{
    check_bits_backward(SPK_TIME_STEPS, 45, 70, 25, 90, 90, 0, 2); /* rows 2250, G = 4 */
    check_bits_backward(SPK_TIME_STEPS, 45, 70, 25, 90, 83, 0, 2); /* partial batch */
    check_bits_backward(SPK_TIME_STEPS, 130, 70, 7, 17, 17, 0, 2); /* NT = 16 */
    check_bits_backward(SPK_TIME_CONST, 20, 40, 3, 300, 300, 0, 2);
    check_bits_backward(SPK_TIME_STEPS, 13, 21, 11, 29, 29, 1,
                        2);                                     /* rows 319: not a multiple of 8 */
    check_bits_backward(SPK_TIME_STEPS, 37, 13, 5, 3, 3, 1, 0); /* 15 rows: no tables */
    check_bits_backward(SPK_TIME_STEPS, 300, 9, 2, 4, 3, 1, 0); /* a partial batch of them */
}

/* The spike paths' kernels hand their items (tiles, rows, blocks of rows) to the threads one
 * at a time: 1, 2 and 3 threads give the same bits, as each item sums alone. */
Test(linear, spike_paths_same_on_any_thread_count)
{
    const int threads = omp_get_max_threads();
    const char *modes[] = {"bits", "always"};
    for (int m = 0; m < 2; m++) {
        float *res[3][3];
        size_t cnt[3] = {0};
        for (int th = 1; th <= 3; th++) {
            omp_set_num_threads(th);
            char yaml[96];
            snprintf(yaml, sizeof yaml, "{out: 150, sparse: %s}", modes[m]);
            lc t;
            /* 8,000 rows: the scratch holds two forward tiles (of 3) and every gradient tile */
            lc_new(&t, "synapse.linear", yaml, lc_shape(SPK_TIME_STEPS, 1, 77, 0, 0), 25, 320, 4);
            set_spikes(&t, m ? 0.04 : 0.35, 31, 0);
            float *R = malloc(t.li->out.numel * sizeof(float));
            spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 32);
            lc_fwd(&t);
            lc_backward_with(&t, R);
            cr_expect_eq(spk_linear_path(&t.li->layer), m ? 1 : 2, "%s: not its path", modes[m]);
            res[th - 1][0] = lc_fetch(&t, &t.li->out);
            res[th - 1][1] = lc_fetch(&t, &lc_weight(&t, "weight")->grad);
            res[th - 1][2] = lc_fetch(&t, &lc_weight(&t, "bias")->grad);
            cnt[0] = t.li->out.numel, cnt[1] = 77 * 150, cnt[2] = 150;
            free(R);
            lc_free(&t);
        }
        const char *what[3] = {"output", "weight gradient", "bias gradient"};
        for (int th = 1; th < 3; th++)
            for (int k = 0; k < 3; k++)
                cr_expect(memcmp(res[0][k], res[th][k], cnt[k] * sizeof(float)) == 0,
                          "%s: %s differs between 1 and %d threads", modes[m], what[k], th + 1);
        for (int th = 0; th < 3; th++)
            for (int k = 0; k < 3; k++)
                free(res[th][k]);
    }
    omp_set_num_threads(threads);
}

/* `sparse: bits` refuses input other than 0 and 1, naming the value. */
Test(linear, bits_refuses_other_values)
{
    lc t;
    lc_new(&t, "synapse.linear", "{out: 20, sparse: bits}", lc_shape(SPK_TIME_STEPS, 1, 30, 0, 0),
           10, 40, 3);
    set_spikes(&t, 0.3, 5, 0);
    float *x = lc_fetch(&t, &t.li->in[0]);
    x[1234] = 0.37f;
    lc_set(&t, &t.li->in[0], x);
    free(x);
    int rc = spk_layer_inst_forward(t.li, 1, &t.err);
    cr_expect_eq(rc, SPK_ERR_INVALID);
    cr_expect(strstr(t.err.msg, "sparse: bits needs inputs that are 0 or 1, found 0.37") != NULL,
              "message: %s", t.err.msg);
    lc_free(&t);
}

/* `sparse: auto` on the CPU (OpenCL: the GEMMs): binary input with rows and outputs enough takes
 * the table path; the same values made non-binary, the GEMM; few spikes over wide outputs, the list
 * path. */
Test(linear, auto_chooses)
{
    static const struct {
        int ni, no, T, B;
        double keep;
        float one; /* the value of a spike */
        int path;
    } c[] = {
        {100, 40, 30, 20, 0.3, 1.0f, 2},   {100, 40, 30, 20, 0.3, 0.5f, 0},
        {300, 100, 10, 30, 0.02, 1.0f, 1}, {300, 100, 10, 30, 0.02, 0.5f, 1},
        {100, 20, 30, 20, 0.3, 1.0f, 0}, /* too few outputs */
        {100, 40, 20, 20, 0.3, 1.0f, 0}, /* too few rows */
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        lc t;
        char yaml[64];
        snprintf(yaml, sizeof yaml, "{out: %d}", c[k].no);
        lc_new(&t, "synapse.linear", yaml, lc_shape(SPK_TIME_STEPS, 1, c[k].ni, 0, 0), c[k].T,
               c[k].B, 3);
        set_spikes(&t, c[k].keep, 9, 0);
        float *x = lc_fetch(&t, &t.li->in[0]);
        for (size_t i = 0; i < t.li->in[0].numel; i++)
            x[i] *= c[k].one;
        lc_set(&t, &t.li->in[0], x);
        lc_fwd(&t);
        /* a device whose memory is not the host's (SPIKECL_TEST_DEVICE) measures nothing */
        const char *dev = spk_test_device_env();
        const int want_path = dev && strncmp(dev, "opencl", 6) == 0 ? 0 : c[k].path;
        cr_expect_eq(spk_linear_path(&t.li->layer), want_path, "case %zu: path %d, expected %d", k,
                     spk_linear_path(&t.li->layer), want_path);
        const size_t rows = rows_of(&t, SPK_TIME_STEPS);
        float *W = lc_fetch(&t, &lc_weight(&t, "weight")->value);
        float *b = lc_fetch(&t, &lc_weight(&t, "bias")->value);
        float *want = malloc(rows * c[k].no * sizeof(float));
        ref_linear(rows, c[k].ni, c[k].no, x, W, b, want);
        float *got = lc_fetch(&t, &t.li->out);
        cr_expect_leq(spk_test_nerr(got, want, rows * c[k].no), 1e-5, "case %zu: forward", k);
        free(x), free(W), free(b), free(want), free(got);
        lc_free(&t);
    }
}
