/* Layers on a backend: setup (the plugin's init), allocation and initialisation of weights and
 * state, and the single-layer harness the tests drive. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_kernels.h"
#include "layer.h"
#include "model.h"
#include "spikecl/philox.h"

size_t spk_shape_numel(const spk_shape *s, int T, int B)
{
    size_t n = (size_t)spk_shape_size(s) * (size_t)B;
    return s->time == SPK_TIME_STEPS ? n * (size_t)T : n;
}

int spk_tensor_guard_floats = 0;

int spk_tensor_alloc(spk_backend *be, spk_tensor *t, const spk_shape *s, int T, int B,
                     spk_error *err)
{
    t->shape = *s;
    t->numel = spk_shape_numel(s, T, B);
    if (spk_tensor_guard_floats > 0) {
        /* the pad after the tensor starts as sentinels; spk_tensor_guard_check reads it back */
        const size_t pad = (size_t)spk_tensor_guard_floats;
        int rc = be->ops->alloc(be, (t->numel + pad) * sizeof(float), &t->buf, err);
        if (!rc)
            rc = be->ops->fill(be, t->buf, t->numel, pad, SPK_TENSOR_GUARD_VALUE, err);
        return rc;
    }
    return be->ops->alloc(be, t->numel * sizeof(float), &t->buf, err);
}

int spk_tensor_guard_check(spk_backend *be, const spk_tensor *t, spk_error *err)
{
    if (spk_tensor_guard_floats <= 0 || !t->buf)
        return SPK_OK;
    const size_t pad = (size_t)spk_tensor_guard_floats;
    float *v = malloc(pad * sizeof(float));
    if (!v)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    int rc = be->ops->download(be, t->buf, t->numel * sizeof(float), v, pad * sizeof(float), err);
    size_t bad = 0, first = 0;
    for (size_t i = 0; !rc && i < pad; i++)
        if (v[i] != SPK_TENSOR_GUARD_VALUE && !bad++)
            first = i;
    free(v);
    if (rc)
        return rc;
    if (bad)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%zu of the %zu guard floats after a tensor of %zu floats were "
                             "overwritten (the first at +%zu): a write out of bounds",
                             bad, pad, t->numel, first);
    return SPK_OK;
}

void spk_tensor_release(spk_backend *be, spk_tensor *t)
{
    if (t->buf)
        be->ops->release(be, t->buf);
    t->buf = NULL;
}

int spk_tensor_upload(spk_backend *be, spk_tensor *t, const float *src, spk_error *err)
{
    return be->ops->upload(be, t->buf, 0, src, t->numel * sizeof(float), err);
}

int spk_tensor_download(spk_backend *be, const spk_tensor *t, float *dst, spk_error *err)
{
    return be->ops->download(be, t->buf, 0, dst, t->numel * sizeof(float), err);
}

void spk_weight_init_values(const spk_weight *w, int layer_index, int weight_index, uint32_t seed,
                            float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        spk_philox_ctr c = {{(spk_u32)i, (spk_u32)weight_index, (spk_u32)layer_index, 0}};
        spk_philox_ctr r = spk_philox4x32_10(c, seed, SPK_RNG_INIT);
        float u = spk_u32_to_unit(r.v[0]);
        switch (w->init.kind) {
        case SPK_INIT_UNIFORM:
            dst[i] = w->init.a + (w->init.b - w->init.a) * u;
            break;
        case SPK_INIT_NORMAL: {
            /* Box-Muller; 1 - u keeps the log finite */
            float u2 = spk_u32_to_unit(r.v[1]);
            dst[i] =
                w->init.a + w->init.b * sqrtf(-2.0f * logf(1.0f - u)) * cosf(6.28318530718f * u2);
            break;
        }
        default:
            dst[i] = w->init.a;
        }
        if (w->clamp)
            dst[i] = fminf(fmaxf(dst[i], w->lo), w->hi);
    }
}

int spk_layer_setup(spk_layer *l, const spk_layer_type *type, const spk_params *params,
                    const char *name, int index, const char *file, int line, int col, int n_in,
                    const spk_shape *in, int T, spk_error *err)
{
    memset(l, 0, sizeof *l);
    l->type = type;
    l->host = spk_host_api_get();
    snprintf(l->name, sizeof l->name, "%s", name ? name : type->name);
    l->index = index;
    l->file = file;
    l->line = line;
    l->col = col;
    l->n_in = n_in;
    for (int i = 0; i < n_in; i++)
        l->in[i] = in[i];
    l->params = params;
    l->time_steps = T;
    l->memory = type->memory;
    int rc = type->init(l, err);
    if (!rc && (l->out.ndim < 1 || l->out.ndim > SPK_MAX_DIMS || spk_shape_size(&l->out) < 1))
        rc = spk_error_set(err, SPK_ERR_PLUGIN, "init did not set a valid output shape");
    if (rc) {
        if (file)
            spk_error_prefix(err, rc, "%s:%d:%d: layer '%s' (%s)", file, line, col, l->name,
                             type->name);
        else
            spk_error_prefix(err, rc, "layer '%s' (%s)", l->name, type->name);
        if (type->destroy)
            type->destroy(l);
        l->priv = NULL;
        l->type = NULL; /* nothing left for spk_layer_release to destroy */
        l->n_weights = l->n_state = 0;
        return rc;
    }
    return SPK_OK;
}

int spk_layer_alloc(spk_layer *l, spk_backend *be, int B, uint32_t seed, int skip_state,
                    spk_error *err)
{
    int T = l->time_steps;
    for (int i = 0; i < l->n_weights; i++) {
        spk_weight *w = &l->weights[i];
        spk_shape s = w->shape;
        s.time = SPK_TIME_NONE;
        /* weights have no batch axis: allocate as one "sample" */
        int rc = spk_tensor_alloc(be, &w->value, &s, T, 1, err);
        if (!rc)
            rc = spk_tensor_alloc(be, &w->grad, &s, T, 1, err);
        if (rc)
            return rc;
        float *v = malloc(w->value.numel * sizeof(float));
        if (!v)
            return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        spk_weight_init_values(w, l->index, i, seed, v, w->value.numel);
        rc = spk_tensor_upload(be, &w->value, v, err);
        free(v);
        if (!rc)
            rc = be->ops->fill(be, w->grad.buf, 0, w->grad.numel, 0.0f, err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < l->n_state; i++) {
        spk_state *st = &l->state[i];
        if (i == skip_state) /* the session places it in another tensor's buffer */
            continue;
        spk_shape s = {.ndim = 1, .dims = {st->per_sample}, .time = st->time};
        int rc = spk_tensor_alloc(be, &st->t, &s, T, B, err);
        if (!rc)
            rc = be->ops->fill(be, st->t.buf, 0, st->t.numel, 0.0f, err);
        if (rc)
            return rc;
    }
    return SPK_OK;
}

void spk_layer_release(spk_layer *l, spk_backend *be)
{
    for (int i = 0; i < l->n_weights; i++) {
        spk_tensor_release(be, &l->weights[i].value);
        spk_tensor_release(be, &l->weights[i].grad);
    }
    for (int i = 0; i < l->n_state; i++)
        spk_tensor_release(be, &l->state[i].t);
    if (l->type && l->type->destroy)
        l->type->destroy(l);
    l->priv = NULL;
}

/* ---- the harness ---- */

void spk_layer_inst_free(spk_layer_inst *li)
{
    if (!li)
        return;
    spk_backend *be = li->be;
    for (int i = 0; i < li->layer.n_in; i++) {
        spk_tensor_release(be, &li->in[i]);
        spk_tensor_release(be, &li->grad_in[i]);
    }
    spk_tensor_release(be, &li->out);
    spk_tensor_release(be, &li->grad_out);
    spk_tensor_release(be, &li->labels);
    spk_tensor_release(be, &li->loss);
    spk_tensor_release(be, &li->ids);
    if (li->layer.program)
        be->ops->program_free(be, li->layer.program);
    if (li->core)
        be->ops->program_free(be, li->core);
    spk_layer_release(&li->layer, be);
    free(li);
}

int spk_layer_inst_new(const spk_layer_type *type, const spk_params *params, int n_in,
                       const spk_shape *in, int T, int B, spk_backend *be, uint32_t seed,
                       spk_layer_inst **out, spk_error *err)
{
    spk_layer_inst *li = calloc(1, sizeof *li);
    if (!li)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    li->be = be;
    li->T = T;
    li->B = B;
    int rc = spk_layer_setup(&li->layer, type, params, NULL, 1, NULL, 0, 0, n_in, in, T, err);
    if (rc) {
        free(li);
        return rc;
    }
    spk_layer *l = &li->layer;
    if (type->kernels.cpu_kernels || type->kernels.opencl_source)
        rc = be->ops->program_build(be, &type->kernels, &l->program, err);
    if (!rc)
        rc = be->ops->program_build(be, &spk_core_kernels, &li->core, err);
    if (!rc)
        rc = spk_layer_alloc(l, be, B, seed, -1, err);
    for (int i = 0; !rc && i < n_in; i++) {
        rc = spk_tensor_alloc(be, &li->in[i], &in[i], T, B, err);
        if (!rc)
            rc = spk_tensor_alloc(be, &li->grad_in[i], &in[i], T, B, err);
    }
    if (!rc)
        rc = spk_tensor_alloc(be, &li->out, &l->out, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &li->grad_out, &l->out, T, B, err);
    spk_shape per_sample = {.ndim = 1, .dims = {1}, .time = SPK_TIME_NONE};
    if (!rc)
        rc = spk_tensor_alloc(be, &li->labels, &per_sample, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &li->loss, &per_sample, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &li->ids, &per_sample, T, B, err);
    if (!rc) {
        float *ids = malloc((size_t)B * sizeof(float));
        for (int b = 0; ids && b < B; b++)
            ids[b] = (float)b;
        rc = ids ? spk_tensor_upload(be, &li->ids, ids, err)
                 : spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        free(ids);
    }
    if (rc) {
        spk_layer_inst_free(li);
        return rc;
    }
    spk_exec *x = &li->x;
    x->T = T;
    x->B = B;
    x->training = 1;
    x->seed = seed;
    x->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        x->in[i] = &li->in[i];
        x->grad_in[i] = &li->grad_in[i];
    }
    x->out = &li->out;
    x->grad_out = &li->grad_out;
    x->labels = &li->labels;
    x->sample_ids = &li->ids;
    x->core = li->core;
    x->loss = &li->loss;
    x->backend = be;
    x->err = &li->err;
    *out = li;
    return SPK_OK;
}

int spk_layer_inst_forward(spk_layer_inst *li, int training, spk_error *err)
{
    li->x.training = training;
    spk_error_clear(&li->err);
    int rc = li->layer.type->forward(&li->layer, &li->x);
    if (rc)
        return spk_error_set(err, rc, "%s", li->err.msg);
    return SPK_OK;
}

int spk_layer_inst_backward(spk_layer_inst *li, spk_error *err)
{
    spk_backend *be = li->be;
    for (int i = 0; i < li->layer.n_weights; i++) {
        spk_tensor *g = &li->layer.weights[i].grad;
        int rc = be->ops->fill(be, g->buf, 0, g->numel, 0.0f, err);
        if (rc)
            return rc;
    }
    if (!li->layer.type->backward)
        return spk_error_set(err, SPK_ERR_UNSUPPORTED, "layer type %s has no backward",
                             li->layer.type->name);
    spk_error_clear(&li->err);
    int rc = li->layer.type->backward(&li->layer, &li->x);
    if (rc)
        return spk_error_set(err, rc, "%s", li->err.msg);
    return SPK_OK;
}
