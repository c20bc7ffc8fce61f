/* synapse.linear: forward against a naive product, backward against finite differences,
 * accumulation of weight gradients, the PyTorch layout and initialisation. */
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
    return (size_t)t->li->B * (time == SPK_TIME_STEPS ? (size_t)t->li->T : 1u);
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
            /* the lists count every nonzero input */
            float *L = lc_fetch(&t, lc_state(&t, "nonzero_lists"));
            size_t counted = 0;
            for (size_t r = 0; r < rows; r++)
                counted += (size_t)L[r * (size_t)(ni + 1)];
            cr_expect_eq(counted, nz, "in %d out %d: lists hold %zu of %zu nonzeros", ni, no,
                         counted, nz);
            free(L);
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
