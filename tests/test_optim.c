/* Optimizer kernels against hand-computed PyTorch updates (torch.optim.SGD / Adam / AdamW). */
#include <criterion/criterion.h>
#include <math.h>

#include "core_kernels.h"
#include "spikecl/spikecl.h"

static spk_backend *be;
static spk_program *prog;
static spk_buffer *w, *g, *m, *v, *scale, *partial, *flag;
static spk_error err;

static void setup(void)
{
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0, "%s", err.msg);
    cr_assert_eq(be->ops->program_build(be, &spk_core_kernels, &prog, &err), 0, "%s", err.msg);
    spk_buffer **bufs[] = {&w, &g, &m, &v, &scale, &partial, &flag};
    for (int i = 0; i < 7; i++)
        cr_assert_eq(be->ops->alloc(be, 4 * sizeof(float), bufs[i], &err), 0);
    float one = 1.0f;
    be->ops->upload(be, scale, 0, &one, sizeof one, &err);
    be->ops->fill(be, m, 0, 4, 0.0f, &err);
    be->ops->fill(be, v, 0, 4, 0.0f, &err);
}

static void teardown(void)
{
    spk_buffer *bufs[] = {w, g, m, v, scale, partial, flag};
    for (int i = 0; i < 7; i++)
        be->ops->release(be, bufs[i]);
    be->ops->program_free(be, prog);
    spk_backend_free(be);
}

static void set(spk_buffer *b, float x)
{
    be->ops->fill(be, b, 0, 1, x, &err);
}

static float get(spk_buffer *b)
{
    float x;
    be->ops->download(be, b, 0, &x, sizeof x, &err);
    return x;
}

#define ARGB(b) ((spk_karg){.type = SPK_KARG_BUF, .v.p = (b)})
#define ARGI(x) ((spk_karg){.type = SPK_KARG_INT, .v.i = (x)})
#define ARGF(x) ((spk_karg){.type = SPK_KARG_FLOAT, .v.f = (x)})

static void adam(float lr, float wd, int decoupled, int t)
{
    float bc1 = 1.0f - powf(0.9f, (float)t), bc2 = 1.0f - powf(0.999f, (float)t);
    spk_karg a[] = {ARGB(w),   ARGB(g),    ARGB(m),      ARGB(v),     ARGB(scale), ARGI(1),
                    ARGF(lr),  ARGF(0.9f), ARGF(0.999f), ARGF(1e-8f), ARGF(wd),    ARGI(decoupled),
                    ARGF(bc1), ARGF(bc2),  ARGI(0),      ARGF(0.0f),  ARGF(0.0f),  ARGB(flag)};
    cr_assert_eq(be->ops->launch(be, prog, "spk_adam", 1, 18, a, &err), 0, "%s", err.msg);
}

static void sgd(float lr, float momentum, int nesterov, float wd)
{
    spk_karg a[] = {ARGB(w),    ARGB(g),        ARGB(m),        ARGB(scale), ARGI(1),
                    ARGF(lr),   ARGF(momentum), ARGI(nesterov), ARGF(wd),    ARGI(0),
                    ARGF(0.0f), ARGF(0.0f),     ARGB(flag)};
    cr_assert_eq(be->ops->launch(be, prog, "spk_sgd", 1, 13, a, &err), 0, "%s", err.msg);
}

TestSuite(optim, .init = setup, .fini = teardown);

/* Adam, w = 1, g = 0.5, lr = 0.1. Step 1: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25,
 * w = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.9. Step 2 with the same gradient: m^ = 0.5 and v^ = 0.25
 * again (a constant gradient is unbiased exactly), so w = 0.8. */
Test(optim, adam_two_steps)
{
    set(w, 1.0f);
    set(g, 0.5f);
    adam(0.1f, 0.0f, 0, 1);
    cr_assert_float_eq(get(w), 0.9f, 1e-6);
    cr_assert_float_eq(get(m), 0.05f, 1e-7);
    /* 1 - 0.999 is not exact in float32: the kernel computes (1 - 0.999f) * 0.25 */
    cr_assert_float_eq(get(v), (1.0f - 0.999f) * 0.25f, 1e-10);
    adam(0.1f, 0.0f, 0, 2);
    cr_assert_float_eq(get(w), 0.8f, 1e-6);
}

/* Adam's L2 (weight_decay = 0.5): g' = 0.5 + 0.5 * 1 = 1.0; the first step still moves by lr. */
Test(optim, adam_l2)
{
    set(w, 1.0f);
    set(g, 0.5f);
    adam(0.1f, 0.5f, 0, 1);
    cr_assert_float_eq(get(w), 0.9f, 1e-6);
    cr_assert_float_eq(get(m), 0.1f, 1e-7); /* (1 - 0.9) * 1.0 */
}

/* AdamW: w = 1 * (1 - 0.1 * 0.5) = 0.95, then the Adam step of 0.1: 0.85. */
Test(optim, adamw_decoupled)
{
    set(w, 1.0f);
    set(g, 0.5f);
    adam(0.1f, 0.5f, 1, 1);
    cr_assert_float_eq(get(w), 0.85f, 1e-6);
    cr_assert_float_eq(get(m), 0.05f, 1e-7);
}

/* SGD momentum 0.9, w = 1, g = 0.5, lr = 0.1: buf = 0.5, w = 0.95; then buf = 0.95,
 * w = 0.95 - 0.095 = 0.855. */
Test(optim, sgd_momentum)
{
    set(w, 1.0f);
    set(g, 0.5f);
    set(m, 0.0f);
    sgd(0.1f, 0.9f, 0, 0.0f);
    cr_assert_float_eq(get(w), 0.95f, 1e-6);
    sgd(0.1f, 0.9f, 0, 0.0f);
    cr_assert_float_eq(get(w), 0.855f, 1e-6);
}

/* Nesterov: buf = 0.5, g' = 0.5 + 0.9 * 0.5 = 0.95, w = 1 - 0.095 = 0.905. Weight decay 0.2 on
 * plain SGD: g' = 0.5 + 0.2 = 0.7, w = 0.93. */
Test(optim, sgd_nesterov_and_decay)
{
    set(w, 1.0f);
    set(g, 0.5f);
    sgd(0.1f, 0.9f, 1, 0.0f);
    cr_assert_float_eq(get(w), 0.905f, 1e-6);
    set(w, 1.0f);
    sgd(0.1f, 0.0f, 0, 0.2f);
    cr_assert_float_eq(get(w), 0.93f, 1e-6);
}

/* Global-norm clipping: gradients (3, 4) have norm 5; clip to 1 gives the scale 0.2 (torch's
 * clip_grad_norm_ uses max_norm / (norm + 1e-6)). A norm below the limit keeps the scale at 1. */
Test(optim, clip_scale)
{
    float gv[2] = {3.0f, 4.0f};
    be->ops->upload(be, g, 0, gv, sizeof gv, &err);
    spk_karg a[] = {ARGB(partial), ARGB(g), ARGI(2), ARGI(1), ARGI(0), ARGI(2)};
    cr_assert_eq(be->ops->launch(be, prog, "spk_sumsq", 2, 6, a, &err), 0, "%s", err.msg);
    spk_karg c[] = {ARGB(scale), ARGB(partial), ARGI(0), ARGI(2), ARGF(1.0f), ARGB(flag)};
    cr_assert_eq(be->ops->launch(be, prog, "spk_clip_scale", 1, 6, c, &err), 0, "%s", err.msg);
    cr_assert_float_eq(get(scale), 0.2f, 1e-6);
    spk_karg c2[] = {ARGB(scale), ARGB(partial), ARGI(0), ARGI(2), ARGF(10.0f), ARGB(flag)};
    be->ops->launch(be, prog, "spk_clip_scale", 1, 6, c2, &err);
    cr_assert_float_eq(get(scale), 1.0f, 1e-7);
}

/* The update kernels raise the divergence flag (NaN in flag[0]) on a non-finite gradient,
 * second moment, new weight (even one a clamp would bring back) or gradient norm, and leave
 * it alone otherwise. */
Test(optim, nonfinite_flag)
{
    set(flag, 0.0f);
    set(w, 1.0f);
    set(g, 0.5f);
    set(m, 0.0f);
    set(v, 0.0f);
    set(scale, 1.0f);
    adam(0.1f, 0.0f, 0, 1);
    sgd(0.1f, 0.0f, 0, 0.0f);
    cr_expect_eq(get(flag), 0.0f, "raised on finite values");
    set(g, INFINITY);
    sgd(0.1f, 0.0f, 0, 0.0f);
    cr_expect(isnan(get(flag)), "sgd: infinite gradient");
    set(flag, 0.0f);
    set(w, 1.0f);
    set(g, 1e30f); /* g * g overflows the second moment */
    adam(0.1f, 0.0f, 0, 1);
    cr_expect(isnan(get(flag)), "adam: infinite second moment");
    set(flag, 0.0f);
    set(w, 1.0f);
    set(g, 0.5f);
    set(v, 0.0f);
    adam(INFINITY, 0.0f, 0, 1);
    cr_expect(isnan(get(flag)), "adam: infinite step");
    set(flag, 0.0f);
    float huge[2] = {3e38f, 3e38f};
    be->ops->upload(be, partial, 0, huge, sizeof huge, &err);
    spk_karg c[] = {ARGB(scale), ARGB(partial), ARGI(0), ARGI(2), ARGF(1.0f), ARGB(flag)};
    cr_assert_eq(be->ops->launch(be, prog, "spk_clip_scale", 1, 6, c, &err), 0, "%s", err.msg);
    cr_expect(isnan(get(flag)), "clip: infinite gradient norm");
}

/* A launch whose arguments do not match the kernel's signature is refused with a message. */
Test(optim, launch_signature_mismatch)
{
    spk_karg a[] = {ARGB(w), ARGI(1)};
    cr_assert_neq(be->ops->launch(be, prog, "spk_add", 1, 2, a, &err), 0);
    cr_assert(strstr(err.msg, "spk_add") && strstr(err.msg, "expects"), "%s", err.msg);
    cr_assert_neq(be->ops->launch(be, prog, "nope", 1, 2, a, &err), 0);
    cr_assert(strstr(err.msg, "no kernel named 'nope'"), "%s", err.msg);
}

/* The updates run in lane blocks of SPK_LANES items on the CPU: over 300 values (two full
 * blocks and a partial one) every element equals the one-element update written out here in
 * the kernel's order, and one non-finite value anywhere, the partial block included, raises
 * the flag. */
Test(optim, lane_blocks_match_scalar_update_and_flag_every_lane)
{
    enum { N = 300 };
    spk_buffer *bw, *bg, *bm, *bv;
    spk_buffer **bb[] = {&bw, &bg, &bm, &bv};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(be->ops->alloc(be, N * sizeof(float), bb[i], &err), 0);
    float hw[N], hg[N], hm[N], hv[N], out[N];
    for (int i = 0; i < N; i++) {
        hw[i] = 0.01f * (float)(i % 37) - 0.2f;
        hg[i] = 0.003f * (float)((i * 7) % 41) - 0.05f;
        hm[i] = 0.001f * (float)(i % 11);
        hv[i] = 0.0001f * (float)(i % 13);
    }
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    const float bc1 = 1.0f - powf(b1, 3.0f), bc2 = 1.0f - powf(b2, 3.0f);
    for (int bad = -1; bad < N; bad += 149) { /* -1: all finite; then 148 and 297 */
        be->ops->upload(be, bw, 0, hw, sizeof hw, &err);
        be->ops->upload(be, bg, 0, hg, sizeof hg, &err);
        be->ops->upload(be, bm, 0, hm, sizeof hm, &err);
        be->ops->upload(be, bv, 0, hv, sizeof hv, &err);
        if (bad >= 0) {
            float inf = INFINITY;
            be->ops->upload(be, bg, (size_t)bad * sizeof(float), &inf, sizeof inf, &err);
        }
        set(flag, 0.0f);
        spk_karg a[] = {ARGB(bw),  ARGB(bg),  ARGB(bm), ARGB(bv),   ARGB(scale), ARGI(N),
                        ARGF(lr),  ARGF(b1),  ARGF(b2), ARGF(eps),  ARGF(wd),    ARGI(1),
                        ARGF(bc1), ARGF(bc2), ARGI(0),  ARGF(0.0f), ARGF(0.0f),  ARGB(flag)};
        cr_assert_eq(be->ops->launch(be, prog, "spk_adam", N, 18, a, &err), 0, "%s", err.msg);
        if (bad >= 0) {
            cr_expect(isnan(get(flag)), "adam: infinite gradient at %d not flagged", bad);
            continue;
        }
        cr_expect_eq(get(flag), 0.0f, "adam: raised on finite values");
        be->ops->download(be, bw, 0, out, sizeof out, &err);
        for (int i = 0; i < N; i++) {
            float p = hw[i] * (1.0f - lr * wd), g1 = hg[i];
            float mi = b1 * hm[i] + (1.0f - b1) * g1;
            float vi = b2 * hv[i] + (1.0f - b2) * g1 * g1;
            p -= (lr / bc1) * mi / (sqrtf(vi) / sqrtf(bc2) + eps);
            cr_assert_eq(out[i], p, "adam element %d: %.9g, expected %.9g", i, out[i], p);
        }
    }
    for (int bad = -1; bad < N; bad += 149) {
        be->ops->upload(be, bw, 0, hw, sizeof hw, &err);
        be->ops->upload(be, bg, 0, hg, sizeof hg, &err);
        be->ops->upload(be, bm, 0, hm, sizeof hm, &err);
        if (bad >= 0) {
            float inf = INFINITY;
            be->ops->upload(be, bg, (size_t)bad * sizeof(float), &inf, sizeof inf, &err);
        }
        set(flag, 0.0f);
        spk_karg a[] = {ARGB(bw),   ARGB(bg),   ARGB(bm),  ARGB(scale), ARGI(N),
                        ARGF(lr),   ARGF(0.9f), ARGI(1),   ARGF(wd),    ARGI(0),
                        ARGF(0.0f), ARGF(0.0f), ARGB(flag)};
        cr_assert_eq(be->ops->launch(be, prog, "spk_sgd", N, 13, a, &err), 0, "%s", err.msg);
        if (bad >= 0) {
            cr_expect(isnan(get(flag)), "sgd: infinite gradient at %d not flagged", bad);
            continue;
        }
        cr_expect_eq(get(flag), 0.0f, "sgd: raised on finite values");
        be->ops->download(be, bw, 0, out, sizeof out, &err);
        for (int i = 0; i < N; i++) {
            float g1 = hg[i] + wd * hw[i];
            float b = 0.9f * hm[i] + g1;
            g1 = g1 + 0.9f * b;
            float p = hw[i] - lr * g1;
            cr_assert_eq(out[i], p, "sgd element %d: %.9g, expected %.9g", i, out[i], p);
        }
    }
    for (int i = 0; i < 4; i++)
        be->ops->release(be, *bb[i]);
}
