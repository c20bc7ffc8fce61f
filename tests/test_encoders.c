/* encoder.direct and encoder.poisson. */
#include "layer_check.h"

#include "spikecl/philox.h"

/* ---- direct ---- */

Test(direct, forward_backward)
{
    const int B = 3, F = 2 * 5 * 3;
    lc t;
    lc_new(&t, "encoder.direct", "{gain: 2.5}", lc_shape(SPK_TIME_NONE, 3, 2, 5, 3), 4, B, 1);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_CONST);
    cr_assert_eq(t.li->layer.out.ndim, 3);
    cr_assert_eq(t.li->out.numel, (size_t)B * F, "stored once for the whole window");
    lc_fill(&t, &t.li->in[0], 0.0f, 1.0f, 3);
    lc_fwd(&t);
    float *x = lc_fetch(&t, &t.li->in[0]), *y = lc_fetch(&t, &t.li->out);
    for (int i = 0; i < B * F; i++)
        cr_expect_float_eq(y[i], 2.5f * x[i], 1e-6);
    float *R = malloc((size_t)B * F * sizeof(float));
    spk_test_fill(R, (size_t)B * F, -1.0f, 1.0f, 8);
    lc_backward_with(&t, R);
    float *g = lc_fetch(&t, &t.li->grad_in[0]);
    for (int i = 0; i < B * F; i++)
        cr_expect_float_eq(g[i], 2.5f * R[i], 1e-6);
    /* linear: differences are exact up to float32 rounding of the sum (~1e-6 / 2e-2) */
    double e = lc_fd_error(&t, &t.li->in[0], R, g, 1e-2f);
    cr_expect_leq(e, 1e-3, "grad_in error %g", e);
    free(x), free(y), free(R), free(g);
    lc_free(&t);
}

Test(direct, default_gain_and_errors)
{
    lc t;
    lc_new(&t, "encoder.direct", NULL, lc_shape(SPK_TIME_NONE, 1, 4, 0, 0), 2, 1, 1);
    const float in[4] = {0.25f, -1.0f, 3.0f, 0.0f};
    lc_set(&t, &t.li->in[0], in);
    lc_fwd(&t);
    float y[4];
    lc_get(&t, &t.li->out, y);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(y[i], in[i]);
    lc_free(&t);
    int rc = lc_try(&t, "encoder.direct", NULL, lc_shape(SPK_TIME_STEPS, 1, 4, 0, 0), 2, 1);
    cr_expect_eq(rc, SPK_ERR_SHAPE, "%s", t.err.msg);
    lc_free(&t);
}

/* ---- poisson ---- */

/* The documented stream: Philox counter (feature / 4, t, sample id, 0), key (seed,
 * SPK_RNG_POISSON ^ epoch << 4); feature f uses output word f % 4; spike when the unit draw is
 * below clamp(gain x, 0, 1). */
static float ref_spike(int f, int t, uint32_t id, uint32_t seed, uint32_t epoch, float p)
{
    spk_philox_ctr c = {{(spk_u32)(f / 4), (spk_u32)t, id, 0}};
    spk_philox_ctr r = spk_philox4x32_10(c, seed, SPK_RNG_POISSON ^ (epoch << 4));
    p = fminf(fmaxf(p, 0.0f), 1.0f);
    return spk_u32_to_unit(r.v[f % 4]) < p ? 1.0f : 0.0f;
}

/* Every spike of a [T, B, F] encoding against ref_spike. */
static void check_poisson_reference(int T, int B, int F)
{
    lc t;
    lc_new(&t, "encoder.poisson", "{gain: 1.5}", lc_shape(SPK_TIME_NONE, 1, F, 0, 0), T, B, 1);
    cr_assert_eq(t.li->layer.out.time, SPK_TIME_STEPS);
    cr_assert_eq(t.li->out.numel, (size_t)T * B * F);
    lc_fill(&t, &t.li->in[0], -0.2f, 0.9f, 4);
    t.li->x.seed = 1234;
    t.li->x.epoch = 3;
    float ids[5] = {17, 4, 59999, 8, 123};
    cr_assert(B <= 5);
    lc_set(&t, &t.li->ids, ids);
    lc_fwd(&t);
    float *x = lc_fetch(&t, &t.li->in[0]), *s = lc_fetch(&t, &t.li->out);
    int mismatches = 0, spikes = 0;
    for (int tt = 0; tt < T; tt++)
        for (int b = 0; b < B; b++)
            for (int f = 0; f < F; f++) {
                const int i = (tt * B + b) * F + f;
                mismatches +=
                    s[i] != ref_spike(f, tt, (uint32_t)ids[b], 1234, 3, 1.5f * x[b * F + f]);
                spikes += s[i] == 1.0f;
            }
    cr_expect_eq(mismatches, 0, "T %d B %d F %d: %d mismatches", T, B, F, mismatches);
    cr_expect(spikes > 20 && spikes < T * B * F - 20, "%d spikes", spikes);
    free(x), free(s);
    lc_free(&t);
}

Test(poisson, forward_matches_philox_reference)
{
    check_poisson_reference(9, 3, 7);   /* features not a multiple of 4 */
    check_poisson_reference(9, 3, 8);   /* rows narrower than a CPU lane block */
    check_poisson_reference(5, 5, 784); /* wide rows: lane blocks spanning two rows, and t */
    check_poisson_reference(3, 2, 516); /* 129 groups: a block wraps at its last lane */
}

/* Over many steps the spike rate is the intensity: T = 4000 draws per feature give a
 * standard deviation sqrt(p(1-p)/T) <= 0.008, so |rate - p| <= 0.04 is a 5-sigma bound;
 * intensities <= 0 and >= 1 (after gain) are exact. */
Test(poisson, rate_matches_intensity)
{
    const int T = 4000, F = 8;
    const float x[8] = {0.0f, 0.05f, 0.2f, 0.35f, 0.5f, 0.8f, 1.0f, 1.7f};
    lc t;
    lc_new(&t, "encoder.poisson", NULL, lc_shape(SPK_TIME_NONE, 1, F, 0, 0), T, 1, 1);
    lc_set(&t, &t.li->in[0], x);
    t.li->x.seed = 99;
    lc_fwd(&t);
    float *s = lc_fetch(&t, &t.li->out);
    for (int f = 0; f < F; f++) {
        double n = 0;
        for (int tt = 0; tt < T; tt++)
            n += s[tt * F + f];
        double p = fmin(fmax(x[f], 0.0), 1.0);
        if (p == 0.0 || p == 1.0)
            cr_expect_eq(n / T, p, "feature %d: rate %g, intensity %g", f, n / T, p);
        else
            cr_expect_leq(fabs(n / T - p), 0.04, "feature %d: rate %g, intensity %g", f, n / T, p);
    }
    free(s);
    lc_free(&t);

    /* gain scales the intensity: gain 0.5 on 0.8 is a rate of 0.4 */
    const float y[2] = {0.8f, 0.8f};
    lc_new(&t, "encoder.poisson", "{gain: 0.5}", lc_shape(SPK_TIME_NONE, 1, 2, 0, 0), T, 1, 1);
    lc_set(&t, &t.li->in[0], y);
    lc_fwd(&t);
    s = lc_fetch(&t, &t.li->out);
    double n = 0;
    for (int i = 0; i < 2 * T; i++)
        n += s[i];
    cr_expect_leq(fabs(n / (2 * T) - 0.4), 0.03, "rate %g with gain 0.5", n / (2 * T));
    free(s);
    lc_free(&t);
}

/* Fraction of positions where two spike trains differ. */
/* sample ids first, first + 1, ... */
static void set_ids(lc *t, int first)
{
    float ids[4];
    for (int b = 0; b < 4; b++)
        ids[b] = (float)(first + b);
    lc_set(t, &t->li->ids, ids);
}

static double run_diff(lc *t, uint32_t seed, uint32_t epoch, int first_id, const float *ref)
{
    t->li->x.seed = seed;
    t->li->x.epoch = epoch;
    set_ids(t, first_id);
    lc_fwd(t);
    float *s = lc_fetch(t, &t->li->out);
    double d = 0;
    for (size_t i = 0; i < t->li->out.numel; i++)
        d += s[i] != ref[i];
    free(s);
    return d / (double)t->li->out.numel;
}

Test(poisson, keyed_by_seed_epoch_sample)
{
    lc t;
    lc_new(&t, "encoder.poisson", NULL, lc_shape(SPK_TIME_NONE, 1, 50, 0, 0), 20, 4, 1);
    float x[200];
    for (int i = 0; i < 200; i++)
        x[i] = 0.5f;
    lc_set(&t, &t.li->in[0], x);
    t.li->x.seed = 7;
    t.li->x.epoch = 1;
    set_ids(&t, 100);
    lc_fwd(&t);
    float *ref = lc_fetch(&t, &t.li->out);
    /* independent trains at p = 0.5 differ at half the 4000 positions (sigma ~0.008) */
    cr_expect_eq(run_diff(&t, 7, 1, 100, ref), 0.0, "same seed, epoch and samples: same spikes");
    cr_expect_gt(run_diff(&t, 7, 1, 200, ref), 0.4, "other samples: other spikes");
    cr_expect_gt(run_diff(&t, 7, 2, 100, ref), 0.4, "another epoch: other spikes");
    cr_expect_gt(run_diff(&t, 8, 1, 100, ref), 0.4, "another seed: other spikes");
    /* a sample keeps its spikes in another batch position: ids 101..104 shifted by one */
    t.li->x.seed = 7;
    t.li->x.epoch = 1;
    set_ids(&t, 101);
    lc_fwd(&t);
    float *shifted = lc_fetch(&t, &t.li->out);
    double moved = 0;
    for (int i = 0; i < 50 * 20; i++) {
        int tt = i / 50, f = i % 50;
        for (int b = 0; b < 3; b++)
            moved += shifted[(tt * 4 + b) * 50 + f] != ref[(tt * 4 + b + 1) * 50 + f];
    }
    cr_expect_eq(moved, 0.0, "samples 101..103 drew other spikes in another position");
    free(shifted);
    /* samples of one batch draw independently even with equal inputs */
    double d = 0;
    for (int i = 0; i < 50 * 20; i++) {
        int tt = i / 50, f = i % 50;
        d += ref[(tt * 4 + 0) * 50 + f] != ref[(tt * 4 + 1) * 50 + f];
    }
    cr_expect_gt(d / 1000, 0.4);
    free(ref);
    lc_free(&t);
}

/* Straight-through backward: grad_in = gain * sum_t grad_out where 0 < gain x < 1. */
Test(poisson, backward_straight_through)
{
    const int T = 5, B = 2, F = 6;
    const float x[12] = {-0.1f, 0.0f, 0.2f,  0.45f, 0.5f, 0.7f,
                         0.1f,  0.3f, 0.49f, 0.51f, 1.0f, 2.0f};
    lc t;
    lc_new(&t, "encoder.poisson", "{gain: 2}", lc_shape(SPK_TIME_NONE, 1, F, 0, 0), T, B, 1);
    lc_set(&t, &t.li->in[0], x);
    float R[60];
    spk_test_fill(R, 60, -1.0f, 1.0f, 6);
    lc_fwd(&t);
    lc_backward_with(&t, R);
    float g[12];
    lc_get(&t, &t.li->grad_in[0], g);
    for (int j = 0; j < B * F; j++) {
        double s = 0;
        for (int tt = 0; tt < T; tt++)
            s += R[tt * B * F + j];
        float p = 2.0f * x[j];
        double want = (p > 0.0f && p < 1.0f) ? 2.0 * s : 0.0;
        cr_expect(fabs(g[j] - want) <= 1e-5, "grad_in[%d] = %g, expected %g", j, g[j], want);
    }
    lc_free(&t);
}
