/* The table of host functions handed to every plugin: parameters, declarations, execution. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "layer.h"
#include "params.h"
#include "registry.h"
#include "spikecl/philox.h"

static const spk_param_value *find(const spk_layer *l, const char *name)
{
    return l && l->params ? spk_params_find(l->params, name) : NULL;
}

static double param_num(const spk_layer *l, const char *name)
{
    const spk_param_value *v = find(l, name);
    return v ? v->num : 0.0;
}

static const char *param_str(const spk_layer *l, const char *name)
{
    const spk_param_value *v = find(l, name);
    return v && v->str ? v->str : "";
}

static spk_init param_init(const spk_layer *l, const char *name)
{
    const spk_param_value *v = find(l, name);
    spk_init z = {SPK_INIT_CONSTANT, 0.0f, 0.0f};
    return v ? v->init : z;
}

static spk_surrogate param_surrogate(const spk_layer *l, const char *name)
{
    const spk_param_value *v = find(l, name);
    spk_surrogate z = {SPK_SG_FAST_SIGMOID, 25.0f};
    return v ? v->sg : z;
}

static int param_is_set(const spk_layer *l, const char *name)
{
    const spk_param_value *v = find(l, name);
    return v ? v->is_set : 0;
}

static int add_weight(spk_layer *l, const char *name, spk_shape shape, spk_init init,
                      spk_error *err)
{
    if (l->n_weights >= SPK_MAX_WEIGHTS)
        return -spk_error_set(err, SPK_ERR_PLUGIN, "more than %d weights", SPK_MAX_WEIGHTS);
    if (shape.ndim < 1 || shape.ndim > SPK_MAX_DIMS || spk_shape_size(&shape) < 1)
        return -spk_error_set(err, SPK_ERR_PLUGIN, "weight '%s' has an empty shape", name);
    for (int i = 0; i < l->n_weights; i++)
        if (strcmp(l->weights[i].name, name) == 0)
            return -spk_error_set(err, SPK_ERR_PLUGIN, "weight '%s' declared twice", name);
    spk_weight *w = &l->weights[l->n_weights];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->shape = shape;
    w->shape.time = SPK_TIME_NONE;
    w->init = init;
    return l->n_weights++;
}

static int add_state(spk_layer *l, const char *name, int per_sample, int time, spk_error *err)
{
    if (l->n_state >= SPK_MAX_STATE)
        return -spk_error_set(err, SPK_ERR_PLUGIN, "more than %d state buffers", SPK_MAX_STATE);
    if (per_sample < 1 || (time != SPK_TIME_STEPS && time != SPK_TIME_NONE))
        return -spk_error_set(err, SPK_ERR_PLUGIN, "state '%s': bad size or time mode", name);
    spk_state *s = &l->state[l->n_state];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->per_sample = per_sample;
    s->time = time;
    return l->n_state++;
}

/* spk_exec carries the backend and the core kernels as host-private pointers (since 1.1) */
static spk_backend *be_of(const spk_exec *x)
{
    return (spk_backend *)x->backend;
}

static int launch(spk_layer *l, spk_exec *x, const char *kernel, size_t items, int nargs,
                  const spk_karg *args)
{
    if (!l->program)
        return spk_error_set(x->err, SPK_ERR_PLUGIN, "layer '%s': type %s has no kernels", l->name,
                             l->type->name);
    spk_backend *be = be_of(x);
    int rc = be->ops->launch(be, l->program, kernel, items, nargs, args, x->err);
    if (rc)
        spk_error_prefix(x->err, rc, "layer '%s'", l->name);
    return rc;
}

static int gemm(spk_exec *x, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                const spk_tensor *a, size_t lda, const spk_tensor *b, size_t ldb, float beta,
                spk_tensor *c, size_t ldc)
{
    spk_backend *be = be_of(x);
    return be->ops->gemm(be, ta, tb, m, n, k, alpha, a->buf, 0, lda, b->buf, 0, ldb, beta, c->buf,
                         0, ldc, x->err);
}

static int fill(spk_exec *x, spk_tensor *t, float value)
{
    spk_backend *be = be_of(x);
    return be->ops->fill(be, t->buf, 0, t->numel, value, x->err);
}

static int copy(spk_exec *x, spk_tensor *dst, const spk_tensor *src)
{
    if (dst->numel != src->numel)
        return spk_error_set(x->err, SPK_ERR_SHAPE, "copy of %zu floats into %zu", src->numel,
                             dst->numel);
    spk_backend *be = be_of(x);
    return be->ops->copy(be, dst->buf, 0, src->buf, 0, src->numel * sizeof(float), x->err);
}

static int error(spk_exec *x, int code, const char *fmt, ...)
{
    if (!x || !x->err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err->msg, sizeof x->err->msg, fmt, ap);
    va_end(ap);
    x->err->code = code;
    return code;
}

static int core_colsum(spk_exec *x, spk_tensor *dst, const spk_tensor *src, int cols, int rows,
                       int accumulate)
{
    spk_karg a[] = {SPK_ARG_BUF(dst), SPK_ARG_BUF(src), SPK_ARG_INT(cols), SPK_ARG_INT(rows),
                    SPK_ARG_INT(accumulate)};
    spk_backend *be = be_of(x);
    return be->ops->launch(be, (spk_program *)x->core, "spk_colsum", (size_t)cols, 5, a, x->err);
}

static int reduce_grad(spk_exec *x, spk_tensor *grad, spk_tensor *part, int rows, int cols)
{
    if (!x->core)
        return spk_error_set(x->err, SPK_ERR_PLUGIN, "reduce_grad: no core kernels here");
    if ((size_t)rows * (size_t)cols > part->numel ||
        (grad->numel != (size_t)cols && grad->numel != 1))
        return spk_error_set(x->err, SPK_ERR_SHAPE, "reduce_grad: %d x %d partials into %zu values",
                             rows, cols, grad->numel);
    if (grad->numel == (size_t)cols)
        return core_colsum(x, grad, part, cols, rows, 1);
    /* a shared value: sum over the rows in place into row 0, then over the columns */
    int rc = core_colsum(x, part, part, cols, rows, 0);
    return rc ? rc : core_colsum(x, grad, part, 1, cols, 1);
}

static int set_error(spk_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

static int set_weight(spk_layer *l, int weight, unsigned flags, float lo, float hi, spk_error *err)
{
    const unsigned known = SPK_WEIGHT_FROZEN | SPK_WEIGHT_DECAY | SPK_WEIGHT_CLAMP;
    if (weight < 0 || weight >= l->n_weights)
        return spk_error_set(err, SPK_ERR_PLUGIN, "set_weight: no weight %d (the layer has %d)",
                             weight, l->n_weights);
    spk_weight *w = &l->weights[weight];
    if (flags & ~known)
        return spk_error_set(err, SPK_ERR_PLUGIN, "set_weight: weight '%s': unknown flags 0x%x",
                             w->name, flags & ~known);
    if ((flags & SPK_WEIGHT_CLAMP) && !(lo <= hi))
        return spk_error_set(err, SPK_ERR_PLUGIN,
                             "set_weight: weight '%s': clamp range [%g, %g] is empty", w->name, lo,
                             hi);
    w->frozen = (flags & SPK_WEIGHT_FROZEN) != 0;
    w->decay = (flags & SPK_WEIGHT_DECAY) != 0;
    w->clamp = (flags & SPK_WEIGHT_CLAMP) != 0;
    w->lo = w->clamp ? lo : 0.0f;
    w->hi = w->clamp ? hi : 0.0f;
    return SPK_OK;
}

static void set_priv(spk_layer *l, void *priv)
{
    l->priv = priv;
}

static void set_output(spk_layer *l, spk_shape out)
{
    l->out = out;
}

static void set_memory(spk_layer *l, unsigned flags)
{
    l->memory = flags;
}

static void *host_alloc(size_t bytes)
{
    return malloc(bytes ? bytes : 1);
}

static void host_free(void *p)
{
    free(p);
}

static void host_log(const spk_layer *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spikecl: %s: ", l ? l->name : "plugin");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void rng_uniform4(uint32_t seed, uint32_t purpose, const uint32_t counter[4], float out[4])
{
    spk_philox_ctr c = {{counter[0], counter[1], counter[2], counter[3]}};
    spk_philox_ctr r = spk_philox4x32_10(c, seed, purpose);
    for (int i = 0; i < 4; i++)
        out[i] = spk_u32_to_unit(r.v[i]);
}

static const spk_host_api host_api = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_host_api),
    .param_num = param_num,
    .param_str = param_str,
    .param_init = param_init,
    .param_surrogate = param_surrogate,
    .param_is_set = param_is_set,
    .add_weight = add_weight,
    .add_state = add_state,
    .launch = launch,
    .gemm = gemm,
    .fill = fill,
    .copy = copy,
    .error = error,
    .alloc = host_alloc,
    .free = host_free,
    .log = host_log,
    .rng_uniform4 = rng_uniform4,
    .register_type = spk_registry_add_from_plugin,
    .reduce_grad = reduce_grad,
    .set_error = set_error,
    .set_weight = set_weight,
    .set_priv = set_priv,
    .set_output = set_output,
    .set_memory = set_memory,
};

const spk_host_api *spk_host_api_get(void)
{
    return &host_api;
}
