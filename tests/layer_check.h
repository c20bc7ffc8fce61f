/* Helpers for the built-in layer tests: one layer on the CPU backend through the harness of
 * core/src/layer.h, tensor upload/download, and central finite differences of a scalar
 * objective against the layer's backward. Header-only (static functions) so each test file
 * stays one translation unit. */
#ifndef SPK_LAYER_CHECK_H
#define SPK_LAYER_CHECK_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "model.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

typedef struct lc {
    spk_backend *be;
    spk_params params;
    spk_layer_inst *li;
    spk_error err;
} lc;

/* The CPU backend, or the device named by SPIKECL_TEST_DEVICE (e.g. "opencl:0:0"), so that the
 * same checks run on every backend. */
static inline void lc_backend(lc *t)
{
    const char *dev = spk_test_device_env();
    if (dev)
        cr_assert_eq(spk_backend_open(dev, &t->be, &t->err), SPK_OK, "%s: %s", dev, t->err.msg);
    else
        cr_assert_eq(spk_backend_cpu_new(0, &t->be, &t->err), SPK_OK, "%s", t->err.msg);
}

/* One layer of `type` with parameters `yaml` on one input of shape `in`. */
static inline void lc_new(lc *t, const char *type, const char *yaml, spk_shape in, int T, int B,
                          uint32_t seed)
{
    memset(t, 0, sizeof *t);
    const spk_layer_type *ty = spk_registry_find(spk_registry_default(), type);
    cr_assert_not_null(ty, "layer type %s is not registered", type);
    lc_backend(t);
    cr_assert_eq(spk_params_from_yaml(ty, yaml, &t->params, &t->err), SPK_OK, "%s: %s", yaml,
                 t->err.msg);
    cr_assert_eq(spk_layer_inst_new(ty, &t->params, 1, &in, T, B, t->be, seed, &t->li, &t->err),
                 SPK_OK, "%s %s: %s", type, yaml, t->err.msg);
}

/* Tries to create the layer; returns the status (for tests of init errors). */
static inline int lc_try(lc *t, const char *type, const char *yaml, spk_shape in, int T, int B)
{
    memset(t, 0, sizeof *t);
    const spk_layer_type *ty = spk_registry_find(spk_registry_default(), type);
    cr_assert_not_null(ty);
    lc_backend(t);
    int rc = spk_params_from_yaml(ty, yaml, &t->params, &t->err);
    if (!rc)
        rc = spk_layer_inst_new(ty, &t->params, 1, &in, T, B, t->be, 1, &t->li, &t->err);
    return rc;
}

static inline void lc_free(lc *t)
{
    spk_layer_inst_free(t->li);
    spk_params_clear(&t->params);
    if (t->be)
        spk_backend_free(t->be);
    memset(t, 0, sizeof *t);
}

static inline spk_shape lc_shape(int time, int ndim, int d0, int d1, int d2)
{
    spk_shape s = {.ndim = ndim, .dims = {d0, d1, d2, 0}, .time = time};
    return s;
}

static inline void lc_set(lc *t, spk_tensor *x, const float *v)
{
    cr_assert_eq(spk_tensor_upload(t->be, x, v, &t->err), SPK_OK, "%s", t->err.msg);
}

static inline void lc_get(lc *t, const spk_tensor *x, float *v)
{
    cr_assert_eq(spk_tensor_download(t->be, x, v, &t->err), SPK_OK, "%s", t->err.msg);
}

/* A malloc'ed copy of a tensor's values. */
static inline float *lc_fetch(lc *t, const spk_tensor *x)
{
    float *v = malloc(x->numel * sizeof(float));
    cr_assert_not_null(v);
    lc_get(t, x, v);
    return v;
}

static inline void lc_fwd(lc *t)
{
    cr_assert_eq(spk_layer_inst_forward(t->li, 1, &t->err), SPK_OK, "%s", t->err.msg);
}

static inline void lc_bwd(lc *t)
{
    cr_assert_eq(spk_layer_inst_backward(t->li, &t->err), SPK_OK, "%s", t->err.msg);
}

static inline spk_weight *lc_weight(lc *t, const char *name)
{
    spk_layer *l = &t->li->layer;
    for (int i = 0; i < l->n_weights; i++)
        if (strcmp(l->weights[i].name, name) == 0)
            return &l->weights[i];
    cr_assert_fail("no weight named %s", name);
    return NULL;
}

static inline spk_tensor *lc_state(lc *t, const char *name)
{
    spk_layer *l = &t->li->layer;
    for (int i = 0; i < l->n_state; i++)
        if (strcmp(l->state[i].name, name) == 0)
            return &l->state[i].t;
    cr_assert_fail("no state named %s", name);
    return NULL;
}

/* Fills a tensor with deterministic values in [lo, hi). */
static inline void lc_fill(lc *t, spk_tensor *x, float lo, float hi, unsigned seed)
{
    float *v = malloc(x->numel * sizeof(float));
    cr_assert_not_null(v);
    spk_test_fill(v, x->numel, lo, hi, seed);
    lc_set(t, x, v);
    free(v);
}

/* The scalar objective of the checks: sum(out * R) when R is given, else the mean of the
 * per-sample losses (loss layers). Summed in double so it adds no rounding of its own. */
static inline double lc_objective(lc *t, const float *R)
{
    lc_fwd(t);
    const spk_tensor *o = R ? &t->li->out : &t->li->loss;
    size_t n = R ? o->numel : (size_t)t->li->B;
    /* a partial batch (x.B < B) packs its rows first ([T, x.B, ...]): the rest of out is never
     * written, and whatever the buffer held there (NaN left by an earlier case) stays out */
    const size_t B = (size_t)t->li->B, live = (size_t)t->li->x.B;
    if (R && live > 0 && live < B && n % B == 0)
        n = n / B * live;
    float *v = lc_fetch(t, o);
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += R ? (double)v[i] * (double)R[i] : (double)v[i] / (double)t->li->B;
    free(v);
    return s;
}

/* Central differences of the objective with respect to every float of tensor p (an input or a
 * weight value), compared with `analytic`. Returns max |fd - analytic| / max(|fd|, |analytic|)
 * over the tensor: a normalised error that is large when either side is wrong, including an
 * all-zero backward. The perturbation actually applied (after float rounding) is the divisor.
 * A tensor whose gradient is zero on both sides everywhere is an error too (INFINITY): the
 * checks are only asked about tensors the objective depends on, so a layer that ignores its
 * input (or a test whose operating point has every surrogate at zero) must not pass. */
static inline double lc_fd_error(lc *t, spk_tensor *p, const float *R, const float *analytic,
                                 float eps)
{
    float *v = lc_fetch(t, p);
    double maxerr = 0.0, scale = 1e-12;
    for (size_t i = 0; i < p->numel; i++) {
        const float orig = v[i];
        const float hi = orig + eps, lo = orig - eps;
        v[i] = hi;
        lc_set(t, p, v);
        const double fp = lc_objective(t, R);
        v[i] = lo;
        lc_set(t, p, v);
        const double fm = lc_objective(t, R);
        v[i] = orig;
        const double fd = (fp - fm) / ((double)hi - (double)lo);
        const double e = fabs(fd - (double)analytic[i]);
        if (e > maxerr || isnan(e))
            maxerr = isnan(e) ? INFINITY : e;
        scale = fmax(scale, fmax(fabs(fd), fabs((double)analytic[i])));
    }
    lc_set(t, p, v);
    free(v);
    lc_objective(t, R); /* leave the forward state of the unperturbed values */
    if (getenv("SPK_TEST_VERBOSE"))
        fprintf(stderr, "%s: fd error %.3g (gradient scale %.3g, %zu values)\n",
                t->li->layer.type->name, maxerr / scale, scale, p->numel);
    if (scale <= 1e-12) {
        fprintf(stderr,
                "%s: the objective does not depend on any of %zu values (both gradients "
                "are zero)\n",
                t->li->layer.type->name, p->numel);
        return INFINITY;
    }
    return maxerr / scale;
}

/* Sets grad_out = R and runs backward. */
static inline void lc_backward_with(lc *t, const float *R)
{
    lc_set(t, &t->li->grad_out, R);
    lc_bwd(t);
}

#endif
