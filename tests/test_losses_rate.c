/* loss.ce_rate, loss.ce_max_membrane and readout.identity: per-sample losses and gradients by
 * hand, against the losses they reduce to, and against finite differences. */
#include "layer_check.h"

static float *loss_of(lc *t, const float *in, const float *labels)
{
    lc_set(t, &t->li->in[0], in);
    lc_set(t, &t->li->labels, labels);
    lc_fwd(t);
    return lc_fetch(t, &t->li->loss);
}

/* ---- ce_rate ---- */

/* T = 2, B = 2, C = 3 spikes; the loss is the mean over steps of log-softmax + NLL:
 *   sample 0, label 1: step 0 [0, 1, 0] -> log(2 + e) - 1; step 1 [1, 1, 0] -> log(2e + 1) - 1
 *   sample 1, label 2: step 0 [0, 0, 0] -> log 3;         step 1 [0, 0, 1] -> log(2 + e) - 1
 * The gradient of the batch mean is (softmax - onehot) / (T B) at every step. */
Test(ce_rate, hand_computed)
{
    lc t;
    lc_new(&t, "loss.ce_rate", NULL, lc_shape(SPK_TIME_STEPS, 1, 3, 0, 0), 2, 2, 1);
    const float s[12] = {0, 1, 0, /* t0 b0 */ 0, 0, 0, /* t0 b1 */
                         1, 1, 0, /* t1 b0 */ 0, 0, 1 /* t1 b1 */};
    const float labels[2] = {1, 2};
    float *loss = loss_of(&t, s, labels);
    const double e = exp(1.0);
    const double want0 = (log(2 + e) - 1 + log(2 * e + 1) - 1) / 2;
    const double want1 = (log(3.0) + log(2 + e) - 1) / 2;
    cr_expect(fabs(loss[0] - want0) <= 1e-6, "loss[0] = %g, expected %g", loss[0], want0);
    cr_expect(fabs(loss[1] - want1) <= 1e-6, "loss[1] = %g, expected %g", loss[1], want1);
    lc_bwd(&t);
    float g[12];
    lc_get(&t, &t.li->grad_in[0], g);
    for (int tt = 0; tt < 2; tt++)
        for (int b = 0; b < 2; b++) {
            const float *z = s + (tt * 2 + b) * 3;
            double den = 0;
            for (int c = 0; c < 3; c++)
                den += exp(z[c]);
            for (int c = 0; c < 3; c++) {
                const double want = (exp(z[c]) / den - (c == (int)labels[b])) / 4.0;
                const float got = g[(tt * 2 + b) * 3 + c];
                cr_expect(fabs(got - want) <= 1e-6, "grad[%d][%d][%d] = %g, expected %g", tt, b, c,
                          got, want);
            }
        }
    free(loss);
    lc_free(&t);
}

/* A neuron that fires exactly at the label's unit at every step still pays log(1 + (C-1)/e)
 * per step, the floor of CE on 0/1 inputs; more steps of the same pattern leave the mean
 * unchanged. A constant [B, C] input is one step repeated: the plain cross-entropy. */
Test(ce_rate, constant_patterns_and_const_input)
{
    const int C = 10;
    for (int T = 1; T <= 5; T += 4) {
        lc t;
        lc_new(&t, "loss.ce_rate", NULL, lc_shape(SPK_TIME_STEPS, 1, C, 0, 0), T, 1, 1);
        float *s = calloc((size_t)T * C, sizeof(float));
        for (int tt = 0; tt < T; tt++)
            s[tt * C + 4] = 1.0f;
        const float label = 4;
        float *loss = loss_of(&t, s, &label);
        const double want = log(1 + (C - 1) / exp(1.0));
        cr_expect(fabs(loss[0] - want) <= 1e-6, "T=%d: loss %g, expected %g", T, loss[0], want);
        free(loss), free(s);
        lc_free(&t);
    }
    lc t, r;
    lc_new(&t, "loss.ce_rate", NULL, lc_shape(SPK_TIME_CONST, 1, 7, 0, 0), 6, 3, 1);
    lc_new(&r, "loss.ce_membrane", NULL, lc_shape(SPK_TIME_NONE, 1, 7, 0, 0), 6, 3, 1);
    float z[21];
    spk_test_fill(z, 21, -2.0f, 3.0f, 8);
    const float labels[3] = {0, 6, 3};
    float *a = loss_of(&t, z, labels), *b = loss_of(&r, z, labels);
    lc_bwd(&t);
    lc_bwd(&r);
    float *ga = lc_fetch(&t, &t.li->grad_in[0]), *gb = lc_fetch(&r, &r.li->grad_in[0]);
    for (int i = 0; i < 3; i++)
        cr_expect(fabs(a[i] - b[i]) <= 1e-6, "loss[%d] %g vs ce %g", i, a[i], b[i]);
    for (int i = 0; i < 21; i++)
        cr_expect(fabs(ga[i] - gb[i]) <= 1e-7, "grad[%d] %g vs ce %g", i, ga[i], gb[i]);
    free(a), free(b), free(ga), free(gb);
    lc_free(&t);
    lc_free(&r);
}

/* log-sum-exp is smooth: eps = 1e-2 on inputs of size <~ 3 gives truncation ~1e-4 relative and
 * the float32 loss rounds at ~1e-7 / eps ~ 1e-5; 2e-3 bounds both, while a missing 1/T or 1/B
 * is an O(1) error. The max over time is linear except where two steps tie: eps = 1e-3 there
 * keeps the differences off the ties of these inputs (rounding ~1e-4 relative). */
static void check_fd_eps(const char *type, int time, int T, int B, int C, float lo, float hi,
                         float eps)
{
    lc t;
    lc_new(&t, type, NULL, lc_shape(time, 1, C, 0, 0), T, B, 1);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(T * 17 + B * 31 + C));
    float *labels = malloc((size_t)B * sizeof(float));
    for (int b = 0; b < B; b++)
        labels[b] = (float)((b * 5 + 2) % C);
    lc_set(&t, &t.li->labels, labels);
    lc_fwd(&t);
    lc_bwd(&t);
    float *g = lc_fetch(&t, &t.li->grad_in[0]);
    double e = lc_fd_error(&t, &t.li->in[0], NULL, g, eps);
    cr_expect_leq(e, 2e-3, "%s T%d B%d C%d: grad error %g", type, T, B, C, e);
    free(g), free(labels);
    lc_free(&t);
}

static void check_fd(const char *type, int time, int T, int B, int C, float lo, float hi)
{
    check_fd_eps(type, time, T, B, C, lo, hi, 1e-2f);
}

Test(ce_rate, backward_fd)
{
    check_fd("loss.ce_rate", SPK_TIME_STEPS, 5, 3, 10, -1.0f, 2.0f);
    check_fd("loss.ce_rate", SPK_TIME_STEPS, 1, 1, 2, -1.0f, 2.0f);
    check_fd("loss.ce_rate", SPK_TIME_STEPS, 7, 4, 3, -3.0f, 3.0f);
    check_fd("loss.ce_rate", SPK_TIME_CONST, 4, 2, 5, -1.0f, 2.0f);
}

Test(ce_rate, rejects_counts)
{
    lc t;
    int rc = lc_try(&t, "loss.ce_rate", NULL, lc_shape(SPK_TIME_NONE, 1, 10, 0, 0), 5, 2);
    cr_expect_eq(rc, SPK_ERR_SHAPE, "%s", t.err.msg);
    cr_expect(strstr(t.err.msg, "readout.identity") != NULL, "%s", t.err.msg);
    lc_free(&t);
}

/* ---- ce_max_membrane ---- */

/* T = 3, B = 1, C = 2, label 0: membranes over t [0.1, 0.5], [0.7, 0.2], [0.3, 0.5] peak at
 * m = [0.7 (t=1), 0.5 (t=0 first, tied at t=2)]; loss = log(e^0.7 + e^0.5) - 0.7. The
 * gradient p - onehot goes to t = 1 for class 0 and to t = 0 (the first peak) for class 1. */
Test(ce_max_membrane, hand_computed)
{
    lc t;
    lc_new(&t, "loss.ce_max_membrane", NULL, lc_shape(SPK_TIME_STEPS, 1, 2, 0, 0), 3, 1, 1);
    const float u[6] = {0.1f, 0.5f, 0.7f, 0.2f, 0.3f, 0.5f}, label = 0;
    float *loss = loss_of(&t, u, &label);
    const double lse = log(exp(0.7) + exp(0.5));
    cr_expect(fabs(loss[0] - (lse - 0.7)) <= 1e-6, "loss %g, expected %g", loss[0], lse - 0.7);
    lc_bwd(&t);
    float g[6];
    lc_get(&t, &t.li->grad_in[0], g);
    const double p0 = exp(0.7 - lse), p1 = exp(0.5 - lse);
    const double want[6] = {0, p1, p0 - 1, 0, 0, 0};
    for (int i = 0; i < 6; i++)
        cr_expect(fabs(g[i] - want[i]) <= 1e-6, "grad[%d] = %g, expected %g", i, g[i], want[i]);
    free(loss);
    lc_free(&t);
}

/* On [T, B, C] it equals readout.membrane {mode: max} followed by cross-entropy (the pairing a
 * model uses), loss and chained gradient alike; on that readout's [B, C] output it is that
 * cross-entropy. */
Test(ce_max_membrane, equals_max_readout_then_ce)
{
    const int T = 6, B = 4, C = 5;
    lc m, ro, ce, mb;
    lc_new(&m, "loss.ce_max_membrane", NULL, lc_shape(SPK_TIME_STEPS, 1, C, 0, 0), T, B, 1);
    lc_new(&ro, "readout.membrane", "{mode: max}", lc_shape(SPK_TIME_STEPS, 1, C, 0, 0), T, B, 1);
    lc_new(&ce, "loss.ce_membrane", NULL, lc_shape(SPK_TIME_NONE, 1, C, 0, 0), T, B, 1);
    lc_new(&mb, "loss.ce_max_membrane", NULL, lc_shape(SPK_TIME_NONE, 1, C, 0, 0), T, B, 1);
    float u[120];
    spk_test_fill(u, 120, -1.0f, 2.0f, 12);
    const float labels[4] = {1, 4, 0, 2};
    float *l1 = loss_of(&m, u, labels);
    lc_set(&ro, &ro.li->in[0], u);
    lc_fwd(&ro);
    float *mx = lc_fetch(&ro, &ro.li->out);
    float *l2 = loss_of(&ce, mx, labels), *l3 = loss_of(&mb, mx, labels);
    for (int b = 0; b < B; b++) {
        cr_expect(fabs(l1[b] - l2[b]) <= 1e-6, "loss[%d] %g vs %g", b, l1[b], l2[b]);
        cr_expect(fabs(l3[b] - l2[b]) <= 1e-6, "[B, C] loss[%d] %g vs %g", b, l3[b], l2[b]);
    }
    lc_bwd(&m);
    lc_bwd(&ce);
    lc_bwd(&mb);
    float *gce = lc_fetch(&ce, &ce.li->grad_in[0]), *gmb = lc_fetch(&mb, &mb.li->grad_in[0]);
    lc_backward_with(&ro, gce);
    float *g1 = lc_fetch(&m, &m.li->grad_in[0]), *g2 = lc_fetch(&ro, &ro.li->grad_in[0]);
    for (int i = 0; i < B * C; i++)
        cr_expect(fabs(gmb[i] - gce[i]) <= 1e-7, "[B, C] grad[%d] %g vs %g", i, gmb[i], gce[i]);
    int nz = 0;
    for (int i = 0; i < T * B * C; i++) {
        cr_expect(fabs(g1[i] - g2[i]) <= 1e-7, "grad[%d] %g vs %g", i, g1[i], g2[i]);
        nz += g1[i] != 0.0f;
    }
    cr_expect_eq(nz, B * C, "one step per (b, c) gets the gradient");
    free(l1), free(l2), free(l3), free(mx), free(gce), free(gmb), free(g1), free(g2);
    lc_free(&m), lc_free(&ro), lc_free(&ce), lc_free(&mb);
}

Test(ce_max_membrane, backward_fd)
{
    check_fd_eps("loss.ce_max_membrane", SPK_TIME_STEPS, 4, 3, 7, -3.0f, 3.0f, 1e-3f);
    check_fd_eps("loss.ce_max_membrane", SPK_TIME_STEPS, 1, 2, 3, -1.0f, 2.0f, 1e-3f);
    check_fd("loss.ce_max_membrane", SPK_TIME_NONE, 5, 3, 4, -1.0f, 2.0f);
    check_fd("loss.ce_max_membrane", SPK_TIME_CONST, 5, 2, 6, -1.0f, 2.0f);
}

/* ---- readout.identity ---- */

Test(identity, passes_through)
{
    for (int time = SPK_TIME_STEPS; time <= SPK_TIME_CONST; time++) {
        lc t;
        lc_new(&t, "readout.identity", NULL, lc_shape(time, 1, 6, 0, 0), 3, 2, 1);
        cr_expect_eq(t.li->layer.out.time, time);
        const size_t n = t.li->in[0].numel;
        cr_assert_eq(t.li->out.numel, n);
        float *x = malloc(n * sizeof(float)), *R = malloc(n * sizeof(float));
        spk_test_fill(x, n, -1.0f, 1.0f, 5);
        spk_test_fill(R, n, -1.0f, 1.0f, 6);
        lc_set(&t, &t.li->in[0], x);
        lc_fwd(&t);
        float *y = lc_fetch(&t, &t.li->out);
        lc_backward_with(&t, R);
        float *g = lc_fetch(&t, &t.li->grad_in[0]);
        for (size_t i = 0; i < n; i++)
            cr_expect(y[i] == x[i] && g[i] == R[i]);
        free(x), free(R), free(y), free(g);
        lc_free(&t);
    }
    lc t;
    int rc = lc_try(&t, "readout.identity", NULL, lc_shape(SPK_TIME_NONE, 1, 6, 0, 0), 3, 2);
    cr_expect_eq(rc, SPK_ERR_SHAPE, "%s", t.err.msg);
    lc_free(&t);
}
