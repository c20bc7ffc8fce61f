/* loss.mse_count, loss.ce_count, loss.ce_membrane: per-sample losses by hand and against a
 * reference, and the gradient of the batch mean against finite differences. */
#include "layer_check.h"

static void set_labels(lc *t, const float *labels)
{
    lc_set(t, &t->li->labels, labels);
}

static float *get_loss(lc *t)
{
    lc_fwd(t);
    return lc_fetch(t, &t->li->loss);
}

/* ---- mse_count ---- */

/* T = 5, C = 3, B = 2, correct_rate 0.8 -> target int(5 * 0.8) = 4, incorrect_rate 0.2 ->
 * int(5 * 0.2) = 1; loss_b = sum_c (count - target)^2 / (C T = 15):
 *   sample 0, label 1, counts [2, 3, 0], targets [1, 4, 1]: diffs [1, -1, -1] -> 3/15 = 0.2
 *   sample 1, label 0, counts [5, 1, 1], targets [4, 1, 1]: diffs [1, 0, 0]   -> 1/15
 * The gradient of the batch mean is 2 diff / (B C T = 30):
 *   [1/15, -1/15, -1/15], [1/15, 0, 0]. */
Test(mse_count, hand_computed)
{
    lc t;
    lc_new(&t, "loss.mse_count", NULL, lc_shape(SPK_TIME_NONE, 1, 3, 0, 0), 5, 2, 1);
    const float counts[6] = {2, 3, 0, 5, 1, 1}, labels[2] = {1, 0};
    lc_set(&t, &t.li->in[0], counts);
    set_labels(&t, labels);
    float *loss = get_loss(&t);
    cr_expect_float_eq(loss[0], 0.2f, 1e-6, "loss[0] = %g", loss[0]);
    cr_expect_float_eq(loss[1], 1.0f / 15, 1e-6, "loss[1] = %g", loss[1]);
    lc_bwd(&t);
    float g[6];
    lc_get(&t, &t.li->grad_in[0], g);
    const float want[6] = {1.0f / 15, -1.0f / 15, -1.0f / 15, 1.0f / 15, 0, 0};
    for (int i = 0; i < 6; i++)
        cr_expect_float_eq(g[i], want[i], 1e-6, "grad[%d] = %g, expected %g", i, g[i], want[i]);
    free(loss);
    lc_free(&t);
}

/* snnTorch truncates the targets like Python's int(): T = 7 gives int(5.6) = 5 and
 * int(1.4) = 1, so counts [5, 1, 1] for label 0 have zero loss, and [1, 1, 6] for label 2 with
 * correct_rate 0.9 / incorrect_rate 0.15 (int(6.3) = 6, int(1.05) = 1) too. One count off by
 * one gives 1 / (C T) = 1/21. */
Test(mse_count, targets_truncate)
{
    lc t;
    lc_new(&t, "loss.mse_count", NULL, lc_shape(SPK_TIME_NONE, 1, 3, 0, 0), 7, 2, 1);
    const float counts[6] = {5, 1, 1, 6, 1, 1}, labels[2] = {0, 0};
    lc_set(&t, &t.li->in[0], counts);
    set_labels(&t, labels);
    float *loss = get_loss(&t);
    cr_expect_float_eq(loss[0], 0.0f, 1e-7, "loss[0] = %g", loss[0]);
    cr_expect_float_eq(loss[1], 1.0f / 21, 1e-6, "loss[1] = %g", loss[1]);
    free(loss);
    lc_free(&t);

    lc_new(&t, "loss.mse_count", "{correct_rate: 0.9, incorrect_rate: 0.15}",
           lc_shape(SPK_TIME_NONE, 1, 3, 0, 0), 7, 1, 1);
    const float c2[3] = {1, 1, 6}, l2[1] = {2};
    lc_set(&t, &t.li->in[0], c2);
    set_labels(&t, l2);
    loss = get_loss(&t);
    cr_expect_float_eq(loss[0], 0.0f, 1e-7, "loss = %g", loss[0]);
    free(loss);
    lc_free(&t);
}

/* The default rates on the seed's setting: T = 25 -> targets 20 and 5. */
Test(mse_count, defaults_t25)
{
    lc t;
    lc_new(&t, "loss.mse_count", NULL, lc_shape(SPK_TIME_NONE, 1, 10, 0, 0), 25, 1, 1);
    float counts[10], label = 3;
    for (int c = 0; c < 10; c++)
        counts[c] = c == 3 ? 20.0f : 5.0f;
    counts[7] = 0.0f; /* 5 short of its target: a squared error of 25 */
    lc_set(&t, &t.li->in[0], counts);
    set_labels(&t, &label);
    float *loss = get_loss(&t);
    cr_expect_float_eq(loss[0], 25.0f / 250, 1e-6, "loss = %g", loss[0]);
    free(loss);
    lc_free(&t);
}

/* ---- gradients of the batch mean by finite differences ---- */

/* Each loss is smooth (quadratic, or log-sum-exp) in its input; with eps = 1e-2 on inputs of
 * size <~ 10 the truncation error is ~eps^2 |f'''| <~ 1e-4 relative and the float32 loss
 * rounds at ~1e-7 * |loss| / eps ~ 1e-4: 2e-3 bounds both, and a missing 1/B or a wrong
 * softmax fails by O(1). */
static void check_fd(const char *type, const char *yaml, int T, int B, int C, float lo, float hi)
{
    lc t;
    lc_new(&t, type, yaml, lc_shape(SPK_TIME_NONE, 1, C, 0, 0), T, B, 1);
    lc_fill(&t, &t.li->in[0], lo, hi, (unsigned)(B * 31 + C));
    float *labels = malloc((size_t)B * sizeof(float));
    for (int b = 0; b < B; b++)
        labels[b] = (float)((b * 7 + 3) % C);
    set_labels(&t, labels);
    lc_fwd(&t);
    lc_bwd(&t);
    float *g = lc_fetch(&t, &t.li->grad_in[0]);
    double e = lc_fd_error(&t, &t.li->in[0], NULL, g, 1e-2f);
    cr_expect_leq(e, 2e-3, "%s B%d C%d: grad error %g", type, B, C, e);
    free(g), free(labels);
    lc_free(&t);
}

Test(losses, backward_fd)
{
    check_fd("loss.mse_count", NULL, 25, 4, 10, 0.0f, 25.0f);
    check_fd("loss.mse_count", "{correct_rate: 1, incorrect_rate: 0}", 9, 3, 5, 0.0f, 9.0f);
    check_fd("loss.ce_count", NULL, 25, 4, 10, 0.0f, 8.0f);
    check_fd("loss.ce_count", NULL, 5, 1, 2, -1.0f, 3.0f);
    check_fd("loss.ce_membrane", NULL, 10, 5, 7, -3.0f, 3.0f);
}

/* ---- cross-entropy values ---- */

static void check_ce(const char *type)
{
    /* logits near 1000 overflow expf without the max subtraction; the second sample is the
     * same shifted down, and cross-entropy is shift-invariant */
    const float z[6] = {1000.0f, 1001.0f, 999.0f, 0.0f, 1.0f, -1.0f}, labels[2] = {0, 1};
    lc t;
    lc_new(&t, type, NULL, lc_shape(SPK_TIME_NONE, 1, 3, 0, 0), 4, 2, 1);
    lc_set(&t, &t.li->in[0], z);
    set_labels(&t, labels);
    float *loss = get_loss(&t);
    const double lse = 1.0 + log(exp(-1.0) + 1.0 + exp(-2.0)); /* of [0, 1, -1] */
    cr_expect(fabs(loss[0] - (lse - 0.0)) <= 1e-5, "%s: loss[0] = %g, expected %g", type, loss[0],
              lse);
    cr_expect(fabs(loss[1] - (lse - 1.0)) <= 1e-5, "%s: loss[1] = %g, expected %g", type, loss[1],
              lse - 1.0);
    lc_bwd(&t);
    float g[6];
    lc_get(&t, &t.li->grad_in[0], g);
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 3; c++) {
            double p = exp((double)z[3 + c] - lse); /* softmax is shift-invariant too */
            double want = (p - (c == (int)labels[b])) / 2.0;
            cr_expect(fabs(g[b * 3 + c] - want) <= 1e-6, "%s: grad[%d][%d] = %g, expected %g", type,
                      b, c, g[b * 3 + c], want);
        }
    free(loss);
    lc_free(&t);
}

Test(ce, values_stable)
{
    check_ce("loss.ce_count");
    check_ce("loss.ce_membrane");
}

Test(losses, reject_time_steps)
{
    const char *types[3] = {"loss.mse_count", "loss.ce_count", "loss.ce_membrane"};
    for (int i = 0; i < 3; i++) {
        lc t;
        int rc = lc_try(&t, types[i], NULL, lc_shape(SPK_TIME_STEPS, 1, 10, 0, 0), 5, 2);
        cr_expect_eq(rc, SPK_ERR_SHAPE, "%s: %s", types[i], t.err.msg);
        lc_free(&t);
    }
}
