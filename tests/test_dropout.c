/* dropout: the fraction dropped, the scaling, the mask shared over time (or not), keyed on
 * sample ids and epochs, identity in evaluation, backward with the same mask (and against
 * finite differences), constant inputs. */
#include "layer_check.h"

static void set_ids(lc *t, const float *ids)
{
    lc_set(t, &t->li->ids, ids);
}

/* Runs forward in training (1) or evaluation (0) mode. */
static void fwd_mode(lc *t, int training)
{
    cr_assert_eq(spk_layer_inst_forward(t->li, training, &t->err), SPK_OK, "%s", t->err.msg);
}

/* Inputs are all 1 + 0.5 * position, so a kept value is exactly x / (1 - p). */
static float *ramp(lc *t, const spk_tensor *x)
{
    float *v = malloc(x->numel * sizeof(float));
    for (size_t i = 0; i < x->numel; i++)
        v[i] = 1.0f + 0.5f * (float)(i % 7);
    lc_set(t, (spk_tensor *)x, v);
    return v;
}

Test(dropout, drops_p_and_scales_the_rest)
{
    const float ps[] = {0.2f, 0.5f, 0.9f};
    for (int k = 0; k < 3; k++) {
        lc t;
        char yaml[64];
        snprintf(yaml, sizeof yaml, "{p: %g, same_mask: false}", (double)ps[k]);
        lc_new(&t, "dropout", yaml, lc_shape(SPK_TIME_STEPS, 3, 3, 11, 13), 4, 8, 1);
        float *x = ramp(&t, &t.li->in[0]);
        lc_fwd(&t);
        float *y = lc_fetch(&t, &t.li->out);
        const size_t n = t.li->out.numel; /* 4 * 8 * 429 = 13728 */
        size_t dropped = 0;
        for (size_t i = 0; i < n; i++) {
            if (y[i] == 0.0f) {
                dropped++;
                continue;
            }
            cr_expect_float_eq(y[i], x[i] / (1.0f - ps[k]), 1e-6f * x[i] / (1.0f - ps[k]),
                               "%s [%zu]: kept %g as %g", yaml, i, x[i], y[i]);
        }
        /* binomial: sd = sqrt(p (1-p) / n) <= 0.0043; 5 sd */
        const double frac = (double)dropped / (double)n;
        cr_expect(fabs(frac - ps[k]) < 0.022, "%s: dropped %.4f", yaml, frac);
        free(x), free(y);
        lc_free(&t);
    }
}

/* same_mask: every step of a sample drops the same units; without it, steps differ (two
 * independent masks at p = 0.5 disagree on about half the units). */
Test(dropout, mask_shared_over_time_or_not)
{
    for (int same = 0; same < 2; same++) {
        lc t;
        lc_new(&t, "dropout", same ? "{p: 0.5}" : "{p: 0.5, same_mask: false}",
               lc_shape(SPK_TIME_STEPS, 1, 301, 0, 0), 5, 3, 1);
        float *x = ramp(&t, &t.li->in[0]);
        lc_fwd(&t);
        float *y = lc_fetch(&t, &t.li->out);
        const size_t bn = 3 * 301;
        size_t differ = 0;
        for (int s = 1; s < 5; s++)
            for (size_t i = 0; i < bn; i++)
                differ += (y[s * bn + i] == 0.0f) != (y[i] == 0.0f);
        if (same)
            cr_expect_eq(differ, 0, "same_mask: %zu units differ between steps", differ);
        else
            cr_expect(differ > 4 * bn * 4 / 10 && differ < 4 * bn * 6 / 10,
                      "per-step masks: %zu of %zu differ", differ, 4 * bn);
        free(x), free(y);
        lc_free(&t);
    }
}

/* The mask follows the sample's id, not its batch position, and changes with the epoch. */
Test(dropout, keyed_on_sample_ids_and_epoch)
{
    lc t;
    lc_new(&t, "dropout", "{p: 0.5}", lc_shape(SPK_TIME_STEPS, 1, 64, 0, 0), 2, 2, 1);
    float *x = ramp(&t, &t.li->in[0]);
    const float ids_a[2] = {17, 4242}, ids_b[2] = {4242, 17};
    set_ids(&t, ids_a);
    lc_fwd(&t);
    float *ya = lc_fetch(&t, &t.li->out);
    set_ids(&t, ids_b);
    lc_fwd(&t);
    float *yb = lc_fetch(&t, &t.li->out);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 64; i++) {
            /* sample 17 is at position 0 in a, at 1 in b: compare where it was dropped */
            cr_expect_eq(ya[(s * 2 + 0) * 64 + i] == 0.0f, yb[(s * 2 + 1) * 64 + i] == 0.0f,
                         "step %d unit %d: the mask moved with the batch position", s, i);
        }
    t.li->x.epoch = 1;
    set_ids(&t, ids_a);
    lc_fwd(&t);
    float *yc = lc_fetch(&t, &t.li->out);
    int differ = 0;
    for (int i = 0; i < 256; i++)
        differ += (ya[i] == 0.0f) != (yc[i] == 0.0f);
    cr_expect(differ > 60, "another epoch changes the mask: %d of 256 differ", differ);
    free(x), free(ya), free(yb), free(yc);
    lc_free(&t);
}

/* Evaluation passes the input through, including a constant input under per-step masks
 * (broadcast over the steps). */
Test(dropout, identity_in_eval)
{
    lc t;
    lc_new(&t, "dropout", "{p: 0.7, same_mask: false}", lc_shape(SPK_TIME_CONST, 1, 50, 0, 0), 3, 4,
           1);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_STEPS, "a mask per step makes it vary in time");
    float *x = ramp(&t, &t.li->in[0]);
    fwd_mode(&t, 0);
    float *y = lc_fetch(&t, &t.li->out);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 200; i++)
            cr_expect_eq(y[s * 200 + i], x[i]);
    free(x), free(y);
    lc_free(&t);
    lc_new(&t, "dropout", "{p: 0.7}", lc_shape(SPK_TIME_CONST, 1, 50, 0, 0), 3, 4, 1);
    cr_expect_eq(t.li->layer.out.time, SPK_TIME_CONST, "a shared mask keeps it constant");
    lc_free(&t);
}

/* Backward applies the forward's mask and scale: against finite differences of sum(out * R)
 * (exact: the layer is linear in x for a fixed mask), stepped and constant inputs. */
Test(dropout, backward_matches_finite_differences)
{
    const char *yamls[] = {"{p: 0.3}", "{p: 0.6, same_mask: false}"};
    const int times[] = {SPK_TIME_STEPS, SPK_TIME_CONST};
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 2; j++) {
            lc t;
            lc_new(&t, "dropout", yamls[k], lc_shape(times[j], 3, 2, 3, 5), 3, 2, 1);
            lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, 3);
            float *R = malloc(t.li->out.numel * sizeof(float));
            spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 9);
            lc_fwd(&t);
            lc_backward_with(&t, R);
            float *g = lc_fetch(&t, &t.li->grad_in[0]);
            size_t zeros = 0;
            for (size_t i = 0; i < t.li->grad_in[0].numel; i++)
                zeros += g[i] == 0.0f;
            cr_expect(zeros > 0 || times[j] == SPK_TIME_CONST, "%s: nothing dropped", yamls[k]);
            double e = lc_fd_error(&t, &t.li->in[0], R, g, 1e-2f);
            cr_expect_leq(e, 1e-3, "%s time %d: grad_in error %g", yamls[k], times[j], e);
            free(R), free(g);
            lc_free(&t);
        }
}

Test(dropout, init_errors)
{
    lc t;
    cr_expect_neq(lc_try(&t, "dropout", "{p: 1.0}", lc_shape(SPK_TIME_STEPS, 1, 4, 0, 0), 2, 2),
                  SPK_OK, "p = 1 drops everything and divides by 0");
    lc_free(&t);
    cr_expect_neq(lc_try(&t, "dropout", "{}", lc_shape(SPK_TIME_NONE, 1, 4, 0, 0), 2, 2), SPK_OK);
    cr_expect(strstr(t.err.msg, "without a time axis"), "%s", t.err.msg);
    lc_free(&t);
}
