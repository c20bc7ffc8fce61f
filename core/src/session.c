/* A session: a model's graph placed on a backend for a batch size. Holds every tensor the
 * training step needs, allocated once, so the step itself allocates nothing. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_kernels.h"
#include "layer.h"
#include "model.h"
#include "seed.h"
#include "spikecl/safetensors.h"

#define CLIP_CHUNK    4096
#define SPK_STATE_MAX (1 << 24) /* counts in the state file are floats: exact up to 2^24 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct node {
    spk_layer layer;
    const spk_layer_def *def;
    int n_in;
    int in_node[SPK_MAX_INPUTS]; /* 0 is the network input */
    spk_tensor out;
    spk_tensor grad;                      /* d loss / d out, when trainable_upstream */
    spk_tensor edge_grad[SPK_MAX_INPUTS]; /* own grad_in buffers when the producer fans out */
    int trainable_upstream;               /* this node or one before it has trainable weights */
    int n_consumers;
    double fwd_s, bwd_s; /* profiling */
} node;

typedef struct opt_slot {
    spk_weight *w;
    spk_tensor m, v; /* Adam moments, or SGD's momentum buffer in m */
    int chunk_slot;  /* first slot in the clipping partial sums */
} opt_slot;

typedef struct prog_entry {
    const spk_layer_type *type;
    spk_program *prog;
} prog_entry;

struct spk_session {
    spk_model *m;
    spk_backend *be;
    int batch, T;
    int n_nodes; /* input + layers + readout + loss */
    node *nodes;
    int readout, loss; /* node indices */
    int classes;
    int in_size;
    spk_tensor input, labels, loss_t, ids;
    int n_progs;
    prog_entry progs[32];
    spk_program *core;
    int n_opt;
    opt_slot *opt;
    spk_tensor scale, partial; /* gradient clipping: the scale factor and partial sums */
    int n_chunks;
    long step;
    int epoch;
    int smooth;
    int profile;
    int pending; /* samples of a submitted, unfinished training batch */
    double opt_s;
    float lr; /* current learning rate (the schedule's value) */
    uint32_t batch_counter;
    float *h_labels, *h_loss, *h_readout;
    float *h_ids;      /* sample ids of the next batch, as floats */
    int ids_set;       /* h_ids holds ids given through spk_session_set_sample_ids */
    int ro_steps;      /* T when the readout keeps the time axis (a per-step loss), else 1 */
    float *h_ro_steps; /* [T, B, classes] staging for such a readout */
    spk_error xerr;
};

/* With profiling on: wait for the device, then charge the time since *t0 to *acc. */
static int charge(spk_session *s, double *t0, double *acc, spk_error *err)
{
    if (!s->profile)
        return SPK_OK;
    int rc = s->be->ops->sync(s->be, err);
    double t = now_s();
    *acc += t - *t0;
    *t0 = t;
    return rc;
}

static int get_program(spk_session *s, const spk_layer_type *t, spk_program **out, spk_error *err)
{
    for (int i = 0; i < s->n_progs; i++)
        if (s->progs[i].type == t) {
            *out = s->progs[i].prog;
            return SPK_OK;
        }
    *out = NULL;
    if (!t->kernels.cpu_kernels && !t->kernels.opencl_source)
        return SPK_OK;
    if (s->n_progs == (int)(sizeof s->progs / sizeof s->progs[0]))
        return spk_error_set(err, SPK_ERR_UNSUPPORTED, "too many layer types in one model");
    int rc = s->be->ops->program_build(s->be, &t->kernels, out, err);
    if (rc)
        return rc;
    s->progs[s->n_progs].type = t;
    s->progs[s->n_progs].prog = *out;
    s->n_progs++;
    return SPK_OK;
}

static int has_trainable(const spk_layer *l)
{
    for (int i = 0; i < l->n_weights; i++)
        if (!l->weights[i].frozen)
            return 1;
    return 0;
}

void spk_session_free(spk_session *s)
{
    if (!s)
        return;
    spk_backend *be = s->be;
    for (int i = 1; i < s->n_nodes; i++) {
        node *nd = &s->nodes[i];
        spk_tensor_release(be, &nd->out);
        spk_tensor_release(be, &nd->grad);
        for (int k = 0; k < SPK_MAX_INPUTS; k++)
            spk_tensor_release(be, &nd->edge_grad[k]);
        spk_layer_release(&nd->layer, be);
    }
    free(s->nodes);
    for (int i = 0; i < s->n_opt; i++) {
        spk_tensor_release(be, &s->opt[i].m);
        spk_tensor_release(be, &s->opt[i].v);
    }
    free(s->opt);
    for (int i = 0; i < s->n_progs; i++)
        be->ops->program_free(be, s->progs[i].prog);
    if (s->core)
        be->ops->program_free(be, s->core);
    spk_tensor_release(be, &s->input);
    spk_tensor_release(be, &s->labels);
    spk_tensor_release(be, &s->loss_t);
    spk_tensor_release(be, &s->ids);
    spk_tensor_release(be, &s->scale);
    spk_tensor_release(be, &s->partial);
    free(s->h_labels);
    free(s->h_loss);
    free(s->h_readout);
    free(s->h_ids);
    free(s->h_ro_steps);
    free(s);
}

/* Sets up node i from its definition: inputs, shapes (through the plugin's init), program. */
static int setup_node(spk_session *s, int i, const spk_layer_def *d, int default_input,
                      spk_error *err)
{
    node *nd = &s->nodes[i];
    nd->def = d;
    spk_shape in[SPK_MAX_INPUTS];
    if (d->n_from == 0) {
        nd->n_in = 1;
        nd->in_node[0] = default_input;
    } else {
        nd->n_in = d->n_from;
        /* the loader resolved `from:` to earlier layers; layer j is node j + 1 */
        for (int k = 0; k < d->n_from; k++) {
            if (d->from[k] < 0 || d->from[k] + 1 >= i)
                return spk_error_set(err, SPK_ERR_INVALID,
                                     "%s:%d:%d: layer '%s': 'from' input #%d is not an earlier "
                                     "layer",
                                     s->m->path, d->line, d->col, d->name, k + 1);
            nd->in_node[k] = d->from[k] + 1;
        }
    }
    for (int k = 0; k < nd->n_in; k++) {
        int j = nd->in_node[k];
        if (j == 0) {
            in[k].ndim = s->m->in_ndim;
            for (int q = 0; q < s->m->in_ndim; q++)
                in[k].dims[q] = s->m->in_dims[q];
            in[k].time = SPK_TIME_NONE;
        } else {
            in[k] = s->nodes[j].layer.out;
        }
        if (j > 0)
            s->nodes[j].n_consumers++;
    }
    int rc = spk_layer_setup(&nd->layer, d->type, &d->params, d->name, i, s->m->path, d->line,
                             d->col, nd->n_in, in, s->T, err);
    if (rc)
        return rc;
    rc = get_program(s, d->type, &nd->layer.program, err);
    if (rc) {
        /* a plugin's kernels that do not build: say which library to fix */
        const char *src = spk_registry_source(spk_registry_default(), d->type->name);
        if (src && strcmp(src, "built-in") != 0)
            return spk_error_prefix(err, rc, "layer '%s' (%s, plugin %s)", d->name, d->type->name,
                                    src);
        return spk_error_prefix(err, rc, "layer '%s' (%s)", d->name, d->type->name);
    }
    return SPK_OK;
}

static int alloc_session(spk_session *s, spk_error *err)
{
    spk_backend *be = s->be;
    int T = s->T, B = s->batch;
    spk_shape in = {.ndim = s->m->in_ndim, .time = SPK_TIME_NONE};
    for (int q = 0; q < in.ndim; q++)
        in.dims[q] = s->m->in_dims[q];
    spk_shape one = {.ndim = 1, .dims = {1}, .time = SPK_TIME_NONE};
    int rc = spk_tensor_alloc(be, &s->input, &in, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &s->labels, &one, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &s->loss_t, &one, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &s->ids, &one, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &s->scale, &one, T, 1, err);
    if (!rc)
        rc = be->ops->fill(be, s->scale.buf, 0, 1, 1.0f, err);
    for (int i = 1; !rc && i < s->n_nodes; i++) {
        node *nd = &s->nodes[i];
        rc = spk_layer_alloc(&nd->layer, be, B, spk_seed_key(s->m->seed), err);
        if (!rc)
            rc = spk_tensor_alloc(be, &nd->out, &nd->layer.out, T, B, err);
        if (!rc && nd->trainable_upstream && i != s->loss)
            rc = spk_tensor_alloc(be, &nd->grad, &nd->layer.out, T, B, err);
        for (int k = 0; !rc && k < nd->n_in; k++) {
            int j = nd->in_node[k];
            if (j > 0 && s->nodes[j].trainable_upstream && s->nodes[j].n_consumers > 1)
                rc = spk_tensor_alloc(be, &nd->edge_grad[k], &s->nodes[j].layer.out, T, B, err);
        }
    }
    if (rc)
        return rc;
    /* optimizer state for every trainable weight */
    int n = 0;
    for (int i = 1; i < s->n_nodes; i++)
        for (int w = 0; w < s->nodes[i].layer.n_weights; w++)
            n += !s->nodes[i].layer.weights[w].frozen;
    s->opt = calloc((size_t)(n ? n : 1), sizeof *s->opt);
    if (!s->opt)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    for (int i = 1; i < s->n_nodes; i++)
        for (int w = 0; w < s->nodes[i].layer.n_weights; w++) {
            spk_weight *wt = &s->nodes[i].layer.weights[w];
            if (wt->frozen)
                continue;
            opt_slot *o = &s->opt[s->n_opt++];
            o->w = wt;
            o->chunk_slot = s->n_chunks;
            s->n_chunks += (int)((wt->value.numel + CLIP_CHUNK - 1) / CLIP_CHUNK);
            rc = spk_tensor_alloc(be, &o->m, &wt->value.shape, T, 1, err);
            if (!rc)
                rc = spk_tensor_alloc(be, &o->v, &wt->value.shape, T, 1, err);
            if (!rc)
                rc = be->ops->fill(be, o->m.buf, 0, o->m.numel, 0.0f, err);
            if (!rc)
                rc = be->ops->fill(be, o->v.buf, 0, o->v.numel, 0.0f, err);
            if (rc)
                return rc;
        }
    spk_shape ps = {.ndim = 1, .dims = {s->n_chunks ? s->n_chunks : 1}, .time = SPK_TIME_NONE};
    rc = spk_tensor_alloc(be, &s->partial, &ps, T, 1, err);
    if (rc)
        return rc;
    s->h_labels = malloc((size_t)B * sizeof(float));
    s->h_loss = malloc((size_t)B * sizeof(float));
    s->h_readout = malloc((size_t)B * (size_t)s->classes * sizeof(float));
    s->h_ids = malloc((size_t)B * sizeof(float));
    if (s->ro_steps > 1)
        s->h_ro_steps = malloc((size_t)T * B * (size_t)s->classes * sizeof(float));
    if (!s->h_labels || !s->h_loss || !s->h_readout || !s->h_ids ||
        (s->ro_steps > 1 && !s->h_ro_steps))
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    return SPK_OK;
}

int spk_session_new(spk_model *m, spk_backend *be, int batch, spk_session **out, spk_error *err)
{
    if (!m || !be || batch < 1)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_session_new: bad arguments");
    if (!m->readout.type || !m->loss.type)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%s: a model needs a 'readout' and a 'loss' to train or evaluate",
                             m->path);
    spk_session *s = calloc(1, sizeof *s);
    if (!s)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    s->m = m;
    s->be = be;
    s->batch = batch;
    s->T = m->time_steps;
    s->n_nodes = m->n_layers + 3;
    s->readout = m->n_layers + 1;
    s->loss = m->n_layers + 2;
    s->nodes = calloc((size_t)s->n_nodes, sizeof *s->nodes);
    if (!s->nodes) {
        free(s);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    s->lr = m->train.optim.lr;
    s->in_size = 1;
    for (int q = 0; q < m->in_ndim; q++)
        s->in_size *= m->in_dims[q];
    int rc = be->ops->program_build(be, &spk_core_kernels, &s->core, err);
    for (int i = 1; !rc && i <= m->n_layers; i++)
        rc = setup_node(s, i, &m->layers[i - 1], i - 1, err);
    if (!rc)
        rc = setup_node(s, s->readout, &m->readout, m->n_layers, err);
    if (!rc)
        rc = setup_node(s, s->loss, &m->loss, s->readout, err);
    if (!rc) {
        const spk_shape *ro = &s->nodes[s->readout].layer.out;
        /* a readout may keep the time axis for losses applied at every step (ce_rate);
         * accuracy then uses the sum over steps */
        if (spk_shape_size(ro) < 2)
            rc = spk_error_set(err, SPK_ERR_SHAPE,
                               "%s:%d:%d: readout '%s' must produce at least 2 class scores "
                               "(got %d)",
                               m->path, m->readout.line, m->readout.col, m->readout.name,
                               spk_shape_size(ro));
        s->classes = spk_shape_size(ro);
        s->ro_steps = ro->time == SPK_TIME_STEPS ? s->T : 1;
    }
    if (rc) {
        spk_session_free(s);
        return rc;
    }
    for (int i = 1; i < s->n_nodes; i++) {
        node *nd = &s->nodes[i];
        nd->trainable_upstream = has_trainable(&nd->layer);
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in_node[k] > 0 && s->nodes[nd->in_node[k]].trainable_upstream)
                nd->trainable_upstream = 1;
    }
    rc = alloc_session(s, err);
    if (rc) {
        spk_session_free(s);
        return rc;
    }
    *out = s;
    return SPK_OK;
}

static void make_exec(spk_session *s, int i, int n, int training, spk_exec *x)
{
    node *nd = &s->nodes[i];
    memset(x, 0, sizeof *x);
    x->T = s->T;
    x->B = n;
    x->training = training;
    x->smooth = s->smooth;
    x->seed = spk_seed_key(s->m->seed);
    x->epoch = training ? (uint32_t)s->epoch : 0x0fffffffu;
    x->batch = s->batch_counter;
    x->n_in = nd->n_in;
    for (int k = 0; k < nd->n_in; k++) {
        int j = nd->in_node[k];
        x->in[k] = j == 0 ? &s->input : &s->nodes[j].out;
        if (j > 0 && s->nodes[j].trainable_upstream)
            x->grad_in[k] = s->nodes[j].n_consumers > 1 ? &nd->edge_grad[k] : &s->nodes[j].grad;
    }
    x->out = &nd->out;
    x->grad_out = i == s->loss ? NULL : &nd->grad;
    x->labels = &s->labels;
    x->sample_ids = &s->ids;
    x->core = s->core;
    x->loss = &s->loss_t;
    x->backend = s->be;
    x->err = &s->xerr;
}

static int layer_error(spk_session *s, int i, int rc, spk_error *err)
{
    const spk_layer *l = &s->nodes[i].layer;
    spk_error_set(err, rc, "layer '%s' (%s): %s", l->name, l->type->name, s->xerr.msg);
    return rc;
}

static int upload_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                        spk_error *err)
{
    if (n < 1 || n > s->batch)
        return spk_error_set(err, SPK_ERR_INVALID, "batch of %d samples, session holds 1..%d", n,
                             s->batch);
    for (int b = 0; b < n; b++) {
        if (labels[b] < 0 || labels[b] >= s->classes)
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "label %d of sample %d is outside the model's %d classes",
                                 labels[b], b, s->classes);
        s->h_labels[b] = (float)labels[b];
    }
    if (!s->ids_set) /* numbered by position in the session's sequence of batches */
        for (int b = 0; b < n; b++)
            s->h_ids[b] =
                (float)((s->batch_counter * (uint32_t)s->batch + (uint32_t)b) & 0xffffffu);
    s->ids_set = 0;
    int rc = s->be->ops->upload(s->be, s->input.buf, 0, x,
                                (size_t)n * (size_t)s->in_size * sizeof(float), err);
    if (!rc)
        rc = s->be->ops->upload(s->be, s->labels.buf, 0, s->h_labels, (size_t)n * sizeof(float),
                                err);
    if (!rc)
        rc = s->be->ops->upload(s->be, s->ids.buf, 0, s->h_ids, (size_t)n * sizeof(float), err);
    return rc;
}

static int forward(spk_session *s, int n, int training, spk_error *err)
{
    double t0 = s->profile ? now_s() : 0;
    for (int i = 1; i < s->n_nodes; i++) {
        spk_exec x;
        make_exec(s, i, n, training, &x);
        spk_error_clear(&s->xerr);
        int rc = s->nodes[i].layer.type->forward(&s->nodes[i].layer, &x);
        if (rc)
            return layer_error(s, i, rc, err);
        if ((rc = charge(s, &t0, &s->nodes[i].fwd_s, err)))
            return rc;
    }
    return SPK_OK;
}

static int core_launch(spk_session *s, const char *k, size_t items, int nargs, const spk_karg *args,
                       spk_error *err)
{
    return s->be->ops->launch(s->be, s->core, k, items, nargs, args, err);
}
#define CORE(s, k, items, err, ...)                                                                \
    core_launch((s), (k), (items), (int)(sizeof((spk_karg[]){__VA_ARGS__}) / sizeof(spk_karg)),    \
                (spk_karg[]){__VA_ARGS__}, (err))

/* The spike-rate regulariser of a neuron layer: its loss term and output gradient. */
static int rate_reg(spk_session *s, node *nd, int n, spk_error *err)
{
    const spk_layer_def *d = nd->def;
    if (nd->layer.out.time != SPK_TIME_STEPS)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "layer '%s': rate_reg needs an output over time steps",
                             nd->layer.name);
    return CORE(s, "spk_rate_reg", (size_t)n, err, SPK_ARG_BUF(&nd->grad), SPK_ARG_BUF(&nd->out),
                SPK_ARG_BUF(&s->loss_t), SPK_ARG_INT(s->T), SPK_ARG_INT(n),
                SPK_ARG_INT(spk_shape_size(&nd->layer.out)), SPK_ARG_FLOAT(d->rate_l1),
                SPK_ARG_FLOAT(d->rate_target), SPK_ARG_FLOAT(d->rate_weight));
}

static int backward(spk_session *s, int n, spk_error *err)
{
    spk_backend *be = s->be;
    double t0 = s->profile ? now_s() : 0;
    for (int i = 1; i < s->n_nodes; i++)
        for (int w = 0; w < s->nodes[i].layer.n_weights; w++) {
            spk_tensor *g = &s->nodes[i].layer.weights[w].grad;
            int rc = be->ops->fill(be, g->buf, 0, g->numel, 0.0f, err);
            if (rc)
                return rc;
        }
    for (int i = s->n_nodes - 1; i >= 1; i--) {
        node *nd = &s->nodes[i];
        if (!nd->trainable_upstream)
            continue;
        int rc = SPK_OK;
        if (i != s->loss && nd->n_consumers == 0) {
            rc = be->ops->fill(be, nd->grad.buf, 0, nd->grad.numel, 0.0f, err);
        } else if (nd->n_consumers > 1) {
            /* sum the gradients of every consumer edge into this node's gradient */
            int first = 1;
            for (int j = i + 1; !rc && j < s->n_nodes; j++)
                for (int k = 0; !rc && k < s->nodes[j].n_in; k++) {
                    if (s->nodes[j].in_node[k] != i)
                        continue;
                    spk_tensor *e = &s->nodes[j].edge_grad[k];
                    size_t cnt = spk_shape_numel(&nd->layer.out, s->T, n);
                    if (first)
                        rc =
                            be->ops->copy(be, nd->grad.buf, 0, e->buf, 0, cnt * sizeof(float), err);
                    else
                        rc = CORE(s, "spk_add", cnt, err, SPK_ARG_BUF(&nd->grad), SPK_ARG_BUF(e),
                                  SPK_ARG_INT(cnt));
                    first = 0;
                }
        }
        if (!rc && i != s->loss && (nd->def->rate_l1 > 0 || nd->def->rate_weight > 0))
            rc = rate_reg(s, nd, n, err);
        if (rc)
            return rc;
        if (!nd->layer.type->backward)
            return spk_error_set(err, SPK_ERR_UNSUPPORTED,
                                 "layer '%s' (%s) has no backward pass, but a layer before it "
                                 "is trained",
                                 nd->layer.name, nd->layer.type->name);
        spk_exec x;
        make_exec(s, i, n, 1, &x);
        spk_error_clear(&s->xerr);
        rc = nd->layer.type->backward(&nd->layer, &x);
        if (rc)
            return layer_error(s, i, rc, err);
        if ((rc = charge(s, &t0, &nd->bwd_s, err)))
            return rc;
    }
    return SPK_OK;
}

static int optimizer_step(spk_session *s, spk_error *err)
{
    const spk_optim_config *oc = &s->m->train.optim;
    int rc = SPK_OK;
    double t0 = s->profile ? now_s() : 0;
    if (oc->clip_norm > 0.0f) {
        for (int i = 0; !rc && i < s->n_opt; i++) {
            opt_slot *o = &s->opt[i];
            int nch = (int)((o->w->grad.numel + CLIP_CHUNK - 1) / CLIP_CHUNK);
            rc = CORE(s, "spk_sumsq", (size_t)nch, err, SPK_ARG_BUF(&s->partial),
                      SPK_ARG_BUF(&o->w->grad), SPK_ARG_INT(o->w->grad.numel),
                      SPK_ARG_INT(CLIP_CHUNK), SPK_ARG_INT(o->chunk_slot), SPK_ARG_INT(nch));
        }
        if (!rc)
            rc = CORE(s, "spk_clip_scale", 1, err, SPK_ARG_BUF(&s->scale), SPK_ARG_BUF(&s->partial),
                      SPK_ARG_INT(s->n_chunks), SPK_ARG_FLOAT(oc->clip_norm),
                      SPK_ARG_BUF(&s->loss_t));
    }
    s->step++;
    float bc1 = 1.0f - (float)pow(oc->beta1, (double)s->step);
    float bc2 = 1.0f - (float)pow(oc->beta2, (double)s->step);
    for (int i = 0; !rc && i < s->n_opt; i++) {
        opt_slot *o = &s->opt[i];
        spk_weight *w = o->w;
        float wd = w->decay ? oc->weight_decay : 0.0f;
        int n = (int)w->value.numel;
        if (oc->kind == SPK_OPTIM_SGD)
            rc = CORE(s, "spk_sgd", (size_t)n, err, SPK_ARG_BUF(&w->value), SPK_ARG_BUF(&w->grad),
                      SPK_ARG_BUF(&o->m), SPK_ARG_BUF(&s->scale), SPK_ARG_INT(n),
                      SPK_ARG_FLOAT(s->lr), SPK_ARG_FLOAT(oc->momentum), SPK_ARG_INT(oc->nesterov),
                      SPK_ARG_FLOAT(wd), SPK_ARG_INT(w->clamp), SPK_ARG_FLOAT(w->lo),
                      SPK_ARG_FLOAT(w->hi), SPK_ARG_BUF(&s->loss_t));
        else
            rc = CORE(s, "spk_adam", (size_t)n, err, SPK_ARG_BUF(&w->value), SPK_ARG_BUF(&w->grad),
                      SPK_ARG_BUF(&o->m), SPK_ARG_BUF(&o->v), SPK_ARG_BUF(&s->scale),
                      SPK_ARG_INT(n), SPK_ARG_FLOAT(s->lr), SPK_ARG_FLOAT(oc->beta1),
                      SPK_ARG_FLOAT(oc->beta2), SPK_ARG_FLOAT(oc->eps), SPK_ARG_FLOAT(wd),
                      SPK_ARG_INT(oc->kind == SPK_OPTIM_ADAMW), SPK_ARG_FLOAT(bc1),
                      SPK_ARG_FLOAT(bc2), SPK_ARG_INT(w->clamp), SPK_ARG_FLOAT(w->lo),
                      SPK_ARG_FLOAT(w->hi), SPK_ARG_BUF(&s->loss_t));
    }
    if (!rc)
        rc = charge(s, &t0, &s->opt_s, err);
    return rc;
}

/* One readback per batch: per-sample losses and the readout, for loss and accuracy. */
static int collect(spk_session *s, int n, spk_batch_stats *st, spk_error *err)
{
    spk_backend *be = s->be;
    int rc = be->ops->download(be, s->loss_t.buf, 0, s->h_loss, (size_t)n * sizeof(float), err);
    if (!rc)
        rc = be->ops->download(be, s->nodes[s->readout].out.buf, 0,
                               s->ro_steps > 1 ? s->h_ro_steps : s->h_readout,
                               (size_t)s->ro_steps * n * (size_t)s->classes * sizeof(float), err);
    if (!rc && s->ro_steps > 1) {
        /* [T, n, C] packed at this batch's size: the count over steps scores a class */
        size_t nc = (size_t)n * (size_t)s->classes;
        for (size_t j = 0; j < nc; j++) {
            float sum = 0.0f;
            for (int t = 0; t < s->ro_steps; t++)
                sum += s->h_ro_steps[(size_t)t * nc + j];
            s->h_readout[j] = sum;
        }
    }
    if (rc || !st)
        return rc;
    for (int b = 0; b < n; b++) {
        const float *r = s->h_readout + (size_t)b * (size_t)s->classes;
        int best = 0;
        for (int c = 1; c < s->classes; c++)
            if (r[c] > r[best])
                best = c;
        st->correct += best == (int)s->h_labels[b];
        st->loss_sum += s->h_loss[b];
    }
    st->n += n;
    return SPK_OK;
}

int spk_session_forward_backward(spk_session *s, const float *x, const int32_t *labels, int n,
                                 spk_batch_stats *st, spk_error *err)
{
    int rc = upload_batch(s, x, labels, n, err);
    if (!rc)
        rc = forward(s, n, 1, err);
    if (!rc)
        rc = backward(s, n, err);
    if (!rc)
        rc = collect(s, n, st, err);
    return rc;
}

int spk_session_train_submit(spk_session *s, const float *x, const int32_t *labels, int n,
                             spk_error *err)
{
    if (s->pending)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "a submitted batch has not been finished (spk_session_train_finish)");
    int rc = upload_batch(s, x, labels, n, err);
    if (!rc)
        rc = forward(s, n, 1, err);
    if (!rc)
        rc = backward(s, n, err);
    if (!rc)
        rc = optimizer_step(s, err);
    s->batch_counter++;
    if (!rc)
        s->pending = n;
    return rc;
}

int spk_session_train_finish(spk_session *s, spk_batch_stats *st, spk_error *err)
{
    int n = s->pending;
    if (!n)
        return spk_error_set(err, SPK_ERR_INVALID, "no submitted batch to finish");
    s->pending = 0;
    return collect(s, n, st, err);
}

int spk_session_train_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                            spk_batch_stats *st, spk_error *err)
{
    int rc = spk_session_train_submit(s, x, labels, n, err);
    return rc ? rc : spk_session_train_finish(s, st, err);
}

int spk_session_eval_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                           spk_batch_stats *st, spk_error *err)
{
    int rc = upload_batch(s, x, labels, n, err);
    if (!rc)
        rc = forward(s, n, 0, err);
    if (!rc)
        rc = collect(s, n, st, err);
    s->batch_counter++;
    return rc;
}

void spk_session_set_profile(spk_session *s, int on)
{
    if (on && !s->profile) { /* a new measurement starts */
        s->opt_s = 0;
        for (int i = 1; i < s->n_nodes; i++)
            s->nodes[i].fwd_s = s->nodes[i].bwd_s = 0;
    }
    s->profile = on;
}

int spk_session_node_count(const spk_session *s)
{
    return s->n_nodes - 1;
}

const char *spk_session_node_name(const spk_session *s, int i)
{
    return i >= 0 && i < s->n_nodes - 1 ? s->nodes[i + 1].layer.name : NULL;
}

void spk_session_node_times(const spk_session *s, int i, double *forward_s, double *backward_s)
{
    int ok = i >= 0 && i < s->n_nodes - 1;
    *forward_s = ok ? s->nodes[i + 1].fwd_s : 0;
    *backward_s = ok ? s->nodes[i + 1].bwd_s : 0;
}

double spk_session_optimizer_time(const spk_session *s)
{
    return s->opt_s;
}

void spk_session_set_smooth(spk_session *s, int on)
{
    s->smooth = on;
}

const spk_optim_config *spk_session_optim(const spk_session *s)
{
    return &s->m->train.optim;
}

void spk_session_set_lr(spk_session *s, float lr)
{
    s->lr = lr;
}

int spk_session_set_sample_ids(spk_session *s, const uint32_t *ids, int n, spk_error *err)
{
    if (!ids || n < 1 || n > s->batch)
        return spk_error_set(err, SPK_ERR_INVALID, "sample ids for %d samples, session holds 1..%d",
                             n, s->batch);
    /* floats are exact to 2^24; larger data sets wrap, which only shares streams */
    for (int b = 0; b < n; b++)
        s->h_ids[b] = (float)(ids[b] & 0xffffffu);
    s->ids_set = 1;
    return SPK_OK;
}

void spk_session_set_epoch(spk_session *s, int epoch)
{
    s->epoch = epoch;
    s->batch_counter = 0;
}

void spk_session_set_batch_index(spk_session *s, int batch)
{
    s->batch_counter = (uint32_t)batch;
}

int spk_session_readout(spk_session *s, float *out, int n, spk_error *err)
{
    if (n < 0 || n > s->batch)
        return spk_error_set(err, SPK_ERR_INVALID, "readout of %d samples", n);
    memcpy(out, s->h_readout, (size_t)n * (size_t)s->classes * sizeof(float));
    return SPK_OK;
}

int spk_session_classes(const spk_session *s)
{
    return s->classes;
}

int spk_session_input_size(const spk_session *s)
{
    return s->in_size;
}

float spk_session_input_scale(const spk_session *s)
{
    return s->m->input_scale;
}

int spk_session_check_data(const spk_session *s, const spk_dataset *ds, spk_error *err)
{
    if (!s || !ds)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_session_check_data: no session or data");
    const spk_model *m = s->m;
    long long have = (long long)ds->channels * ds->height * ds->width;
    int ok;
    if (m->in_ndim == 3)
        ok = m->in_dims[0] == ds->channels && m->in_dims[1] == ds->height &&
             m->in_dims[2] == ds->width;
    else if (m->in_ndim == 2)
        ok = ds->channels == 1 && m->in_dims[0] == ds->height && m->in_dims[1] == ds->width;
    else
        ok = m->in_ndim == 1 && have == s->in_size;
    if (ok)
        return SPK_OK;
    char want[96] = "";
    for (int q = 0, len = 0; q < m->in_ndim && len < (int)sizeof want - 16; q++)
        len += snprintf(want + len, sizeof want - (size_t)len, "%s%d", q ? "x" : "", m->in_dims[q]);
    return spk_error_set(err, SPK_ERR_SHAPE,
                         "the data set's images are %dx%dx%d (channels x height x width) but "
                         "model '%s' (%s) takes input of shape %s",
                         ds->channels, ds->height, ds->width, m->name ? m->name : "", m->path,
                         want);
}

/* ---- weights by name ---- */

static spk_weight *weight_at(const spk_session *s, int idx, const spk_layer **owner)
{
    for (int i = 1; i < s->n_nodes; i++) {
        const spk_layer *l = &s->nodes[i].layer;
        if (idx < l->n_weights) {
            if (owner)
                *owner = l;
            return (spk_weight *)&l->weights[idx];
        }
        idx -= l->n_weights;
    }
    return NULL;
}

int spk_session_weight_count(const spk_session *s)
{
    int n = 0;
    for (int i = 1; i < s->n_nodes; i++)
        n += s->nodes[i].layer.n_weights;
    return n;
}

const char *spk_session_weight_name(const spk_session *s, int i)
{
    static char name[2 * SPK_NAME_MAX + 2];
    const spk_layer *l = NULL;
    const spk_weight *w = weight_at(s, i, &l);
    if (!w)
        return NULL;
    snprintf(name, sizeof name, "%s.%s", l->name, w->name);
    return name;
}

size_t spk_session_weight_numel(const spk_session *s, int i)
{
    const spk_weight *w = weight_at(s, i, NULL);
    return w ? w->value.numel : 0;
}

int spk_session_weight_get(spk_session *s, int i, float *dst, spk_error *err)
{
    spk_weight *w = weight_at(s, i, NULL);
    if (!w)
        return spk_error_set(err, SPK_ERR_INVALID, "no weight %d", i);
    return spk_tensor_download(s->be, &w->value, dst, err);
}

int spk_session_weight_set(spk_session *s, int i, const float *src, spk_error *err)
{
    spk_weight *w = weight_at(s, i, NULL);
    if (!w)
        return spk_error_set(err, SPK_ERR_INVALID, "no weight %d", i);
    return spk_tensor_upload(s->be, &w->value, src, err);
}

int spk_session_grad_get(spk_session *s, int i, float *dst, spk_error *err)
{
    spk_weight *w = weight_at(s, i, NULL);
    if (!w)
        return spk_error_set(err, SPK_ERR_INVALID, "no weight %d", i);
    return spk_tensor_download(s->be, &w->grad, dst, err);
}

int spk_session_check_weights(spk_session *s, double *max_abs, char *max_name, size_t cap,
                              spk_error *err)
{
    double mx = 0;
    int n = spk_session_weight_count(s), rc = SPK_OK;
    if (max_name && cap)
        max_name[0] = '\0';
    for (int i = 0; !rc && i < n; i++) {
        const spk_layer *l = NULL;
        spk_weight *w = weight_at(s, i, &l);
        float *buf = malloc((w->value.numel ? w->value.numel : 1) * sizeof(float));
        if (!buf)
            return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        for (int g = 0; !rc && g < 2; g++) {
            if (g && w->frozen)
                break;
            rc = spk_tensor_download(s->be, g ? &w->grad : &w->value, buf, err);
            for (size_t k = 0; !rc && k < w->value.numel; k++) {
                if (!isfinite(buf[k]))
                    rc = spk_error_set(err, SPK_ERR_NUMERIC,
                                       "layer '%s' (%s): the %s of '%s.%s' is not finite (%g at "
                                       "index %zu)",
                                       l->name, l->type->name, g ? "gradient" : "value", l->name,
                                       w->name, (double)buf[k], k);
                else if (!g && fabs(buf[k]) > mx) {
                    mx = fabs(buf[k]);
                    if (max_name && cap)
                        snprintf(max_name, cap, "%s.%s", l->name, w->name);
                }
            }
        }
        free(buf);
    }
    if (max_abs)
        *max_abs = mx;
    return rc;
}

/* ---- checkpoints ---- */

int spk_session_save(spk_session *s, const char *path, spk_error *err)
{
    int n = spk_session_weight_count(s);
    spk_st_tensor *t = calloc((size_t)(n ? n : 1), sizeof *t);
    int rc = t ? SPK_OK : spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        const spk_layer *l = NULL;
        spk_weight *w = weight_at(s, i, &l);
        if (!w || !l) {
            rc = spk_error_set(err, SPK_ERR_INVALID, "no weight %d", i);
            break;
        }
        size_t len = strlen(l->name) + strlen(w->name) + 2;
        t[i].name = malloc(len);
        t[i].data = malloc(w->value.numel * sizeof(float));
        if (!t[i].name || !t[i].data) {
            rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(t[i].name, len, "%s.%s", l->name, w->name);
        t[i].ndim = w->shape.ndim;
        for (int d = 0; d < w->shape.ndim; d++)
            t[i].shape[d] = w->shape.dims[d];
        rc = spk_tensor_download(s->be, &w->value, t[i].data, err);
        /* never replace a good checkpoint with a diverged one */
        for (size_t k = 0; !rc && k < w->value.numel; k++)
            if (!isfinite(t[i].data[k]))
                rc = spk_error_set(err, SPK_ERR_NUMERIC,
                                   "%s: not written: '%s' holds a non-finite value (%g at index "
                                   "%zu)",
                                   path, t[i].name, (double)t[i].data[k], k);
    }
    if (!rc) {
        const char *keys[] = {"format", "model", "spikecl"};
        const char *vals[] = {"pt", s->m->name ? s->m->name : "", SPIKECL_VERSION};
        rc = spk_safetensors_write(path, n, t, 3, keys, vals, err);
    }
    for (int i = 0; t && i < n; i++) {
        free(t[i].name);
        free(t[i].data);
    }
    free(t);
    return rc;
}

int spk_session_load(spk_session *s, const char *path, spk_error *err)
{
    spk_st_file *f = NULL;
    int rc = spk_safetensors_read(path, &f, err);
    if (rc)
        return rc;
    int n = spk_session_weight_count(s);
    for (int i = 0; !rc && i < n; i++) {
        const spk_layer *l = NULL;
        spk_weight *w = weight_at(s, i, &l);
        if (!w || !l) {
            rc = spk_error_set(err, SPK_ERR_INVALID, "no weight %d", i);
            break;
        }
        char name[2 * SPK_NAME_MAX + 2];
        snprintf(name, sizeof name, "%s.%s", l->name, w->name);
        const spk_st_tensor *t = spk_st_file_find(f, name);
        if (!t) {
            rc = spk_error_set(err, SPK_ERR_INVALID, "%s: no tensor '%s' (the model has it)", path,
                               name);
            break;
        }
        size_t numel = 1;
        int same = t->ndim == w->shape.ndim;
        for (int d = 0; d < t->ndim; d++) {
            numel *= (size_t)t->shape[d];
            if (same && t->shape[d] != w->shape.dims[d])
                same = 0;
        }
        if (!same || numel != w->value.numel) {
            rc = spk_error_set(err, SPK_ERR_SHAPE,
                               "%s: tensor '%s' has %zu values in another shape than the "
                               "model's %zu",
                               path, name, numel, w->value.numel);
            break;
        }
        /* a diverged run's weights would evaluate to chance without a word */
        for (size_t k = 0; k < numel; k++)
            if (!isfinite(t->data[k])) {
                rc = spk_error_set(err, SPK_ERR_INVALID,
                                   "%s: tensor '%s' holds a non-finite value (%g at index %zu): "
                                   "the run that wrote it diverged",
                                   path, name, (double)t->data[k], k);
                break;
            }
        if (!rc)
            rc = spk_tensor_upload(s->be, &w->value, t->data, err);
    }
    spk_st_file_free(f);
    return rc;
}

/* ---- optimizer state, for exact resumption ---- */

/* The layer a trained weight belongs to. */
static const spk_layer *opt_owner(const spk_session *s, const opt_slot *o)
{
    for (int j = 1; j < s->n_nodes; j++) {
        const spk_layer *l = &s->nodes[j].layer;
        if (o->w >= l->weights && o->w < l->weights + l->n_weights)
            return l;
    }
    return NULL;
}

/* FNV-1a (64-bit) of every weight's values in model order: the optimizer state records the
 * digest of the weights it belongs to, so a resume can tell a mismatched pair of files. */
static int weights_digest(spk_session *s, uint64_t *out, spk_error *err)
{
    uint64_t h = 0xcbf29ce484222325ull;
    int n = spk_session_weight_count(s);
    for (int i = 0; i < n; i++) {
        spk_weight *w = weight_at(s, i, NULL);
        float *buf = malloc((w->value.numel ? w->value.numel : 1) * sizeof(float));
        if (!buf)
            return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        int rc = spk_tensor_download(s->be, &w->value, buf, err);
        if (rc) {
            free(buf);
            return rc;
        }
        const unsigned char *b = (const unsigned char *)buf;
        for (size_t k = 0; k < w->value.numel * sizeof(float); k++)
            h = (h ^ b[k]) * 0x100000001b3ull;
        free(buf);
    }
    *out = h;
    return SPK_OK;
}

/* Adam's moments (SGD's momentum buffer in .m) of every trained weight, named after the weight
 * with ".m" / ".v", and the step count and finished epochs as one-element tensors (exact in
 * float32 up to 2^24). A separate file, so that model.safetensors stays plain weights. */
int spk_session_save_state(spk_session *s, const char *path, int epochs_done, spk_error *err)
{
    return spk_session_save_state_at(s, path, epochs_done, 0, err);
}

int spk_session_save_state_at(spk_session *s, const char *path, int epochs_done, int batches_done,
                              spk_error *err)
{
    if (epochs_done < 0 || epochs_done > SPK_STATE_MAX || s->step > SPK_STATE_MAX ||
        batches_done < 0 || batches_done > SPK_STATE_MAX)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%s: epoch %d, batch %d or step %ld is beyond what the state file "
                             "holds exactly (%d)",
                             path, epochs_done, batches_done, s->step, SPK_STATE_MAX);
    int n = 2 * s->n_opt + 4;
    spk_st_tensor *t = calloc((size_t)n, sizeof *t);
    if (!t)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    float step = (float)s->step, epochs = (float)epochs_done, batches = (float)batches_done;
    float digest[4];
    uint64_t dg = 0;
    int rc = weights_digest(s, &dg, err);
    for (int k = 0; k < 4; k++) /* 16 bits a float: exact */
        digest[k] = (float)((dg >> (16 * k)) & 0xffffu);
    for (int i = 0; !rc && i < s->n_opt; i++) {
        const opt_slot *o = &s->opt[i];
        const spk_layer *owner = opt_owner(s, o);
        for (int mv = 0; !rc && mv < 2; mv++) {
            spk_st_tensor *d = &t[2 * i + mv];
            size_t len = 2 * SPK_NAME_MAX + 8;
            d->name = malloc(len);
            d->data = malloc(o->w->value.numel * sizeof(float));
            if (!owner || !d->name || !d->data) {
                rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
                break;
            }
            snprintf(d->name, len, "%s.%s.%s", owner->name, o->w->name, mv ? "v" : "m");
            d->ndim = 1;
            d->shape[0] = (int64_t)o->w->value.numel;
            rc = spk_tensor_download(s->be, mv ? &o->v : &o->m, d->data, err);
        }
    }
    if (!rc) {
        static char step_name[] = "step", epochs_name[] = "epochs_done";
        static char digest_name[] = "weights_digest", batches_name[] = "batches_done";
        t[n - 4] = (spk_st_tensor){.name = batches_name, .ndim = 1, .shape = {1}, .data = &batches};
        t[n - 3] = (spk_st_tensor){.name = step_name, .ndim = 1, .shape = {1}, .data = &step};
        t[n - 2] = (spk_st_tensor){.name = epochs_name, .ndim = 1, .shape = {1}, .data = &epochs};
        t[n - 1] = (spk_st_tensor){.name = digest_name, .ndim = 1, .shape = {4}, .data = digest};
        const char *keys[] = {"format", "spikecl"};
        const char *vals[] = {"spikecl-optimizer-state", SPIKECL_VERSION};
        rc = spk_safetensors_write(path, n, t, 2, keys, vals, err);
    }
    for (int i = 0; i < 2 * s->n_opt; i++) {
        free(t[i].name);
        free(t[i].data);
    }
    free(t);
    return rc;
}

/* A count in the state file: one finite, whole float in [0, SPK_STATE_MAX]. Anything else
 * would be undefined behaviour to convert, or a resume that loops for 2^31 epochs. */
static int state_count(const char *path, const spk_st_tensor *t, double *out, spk_error *err)
{
    if (t->ndim != 1 || t->shape[0] != 1)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%s: '%s' must hold exactly one value (shape [1]), got %d dims, %lld "
                             "values",
                             path, t->name, t->ndim, t->ndim ? (long long)t->shape[0] : 1LL);
    float v = t->data[0];
    if (!isfinite(v) || v < 0 || v > SPK_STATE_MAX || v != floorf(v))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%s: '%s' must be a whole number in [0, %d], got %g", path, t->name,
                             SPK_STATE_MAX, (double)v);
    *out = v;
    return SPK_OK;
}

int spk_session_load_state(spk_session *s, const char *path, int *epochs_done, spk_error *err)
{
    int batches;
    return spk_session_load_state_at(s, path, epochs_done, &batches, err);
}

int spk_session_load_state_at(spk_session *s, const char *path, int *epochs_done, int *batches_done,
                              spk_error *err)
{
    spk_st_file *f = NULL;
    int rc = spk_safetensors_read(path, &f, err);
    if (rc)
        return rc;
    const spk_st_tensor *st = spk_st_file_find(f, "step");
    const spk_st_tensor *ep = spk_st_file_find(f, "epochs_done");
    const spk_st_tensor *dg = spk_st_file_find(f, "weights_digest");
    const spk_st_tensor *bd = spk_st_file_find(f, "batches_done"); /* absent: 0 */
    double step = 0, epochs = 0, batches = 0;
    if (!st || !ep)
        rc = spk_error_set(err, SPK_ERR_INVALID,
                           "%s: not a spikecl optimizer state (no 'step' or 'epochs_done')", path);
    if (!rc)
        rc = state_count(path, st, &step, err);
    if (!rc)
        rc = state_count(path, ep, &epochs, err);
    if (!rc && bd)
        rc = state_count(path, bd, &batches, err);
    if (!rc && (!dg || dg->ndim != 1 || dg->shape[0] != 4))
        rc = spk_error_set(err, SPK_ERR_INVALID,
                           "%s: no 'weights_digest' of 4 values (written by an older spikecl?)",
                           path);
    uint64_t want = 0, have = 0;
    for (int k = 0; !rc && k < 4; k++) {
        float v = dg->data[k];
        if (!(v >= 0 && v <= 65535) || v != floorf(v))
            rc = spk_error_set(err, SPK_ERR_INVALID, "%s: 'weights_digest' is damaged", path);
        else
            want |= (uint64_t)v << (16 * k);
    }
    if (!rc)
        rc = weights_digest(s, &have, err);
    if (!rc && have != want)
        rc = spk_error_set(err, SPK_ERR_INVALID,
                           "%s (epoch %.0f, step %.0f) belongs to other weights than those "
                           "loaded: the weights and the optimizer state come from different "
                           "points of a run (did it stop between writing the two files?); "
                           "start the run again, or evaluate the weights alone",
                           path, epochs, step);
    for (int i = 0; !rc && i < s->n_opt; i++) {
        const opt_slot *o = &s->opt[i];
        const spk_layer *owner = opt_owner(s, o);
        for (int mv = 0; !rc && owner && mv < 2; mv++) {
            char name[2 * SPK_NAME_MAX + 8];
            snprintf(name, sizeof name, "%s.%s.%s", owner->name, o->w->name, mv ? "v" : "m");
            const spk_st_tensor *t = spk_st_file_find(f, name);
            size_t bad = 0;
            if (!t || t->ndim != 1 || (size_t)t->shape[0] != o->w->value.numel) {
                rc = spk_error_set(err, SPK_ERR_INVALID,
                                   "%s: no state '%s' of %zu values for this model", path, name,
                                   o->w->value.numel);
                break;
            }
            while (bad < o->w->value.numel && isfinite(t->data[bad]))
                bad++;
            if (bad < o->w->value.numel)
                rc = spk_error_set(err, SPK_ERR_INVALID,
                                   "%s: state '%s' holds a non-finite value (%g at index %zu)",
                                   path, name, (double)t->data[bad], bad);
            else
                rc = spk_tensor_upload(s->be, mv ? (spk_tensor *)&o->v : (spk_tensor *)&o->m,
                                       t->data, err);
        }
    }
    if (!rc) {
        s->step = (long)step;
        *epochs_done = (int)epochs;
        *batches_done = (int)batches;
    }
    spk_st_file_free(f);
    return rc;
}
