/* The optimizer: PyTorch's SGD, Adam and AdamW update rules with global-norm gradient clipping,
 * computed on the device from the settings the session copied at creation. */
#include <math.h>
#include <stdlib.h>

#include "session_internal.h"

/* A slot for every trainable weight, the clipping scale and the partial sums of the clipping
 * norm's tree; the moments wait for spk_optim_moments. */
int spk_optim_alloc(spk_session *s, spk_error *err)
{
    spk_backend *be = s->be;
    const int T = s->T;
    spk_shape one = {.ndim = 1, .dims = {1}, .time = SPK_TIME_NONE};
    int rc = spk_tensor_alloc(be, &s->scale, &one, T, 1, err);
    if (!rc)
        rc = be->ops->fill(be, s->scale.buf, 0, 1, 1.0f, err);
    if (rc)
        return rc;
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
            spk_opt_slot *o = &s->opt[s->n_opt++];
            o->w = wt;
            o->chunk_slot = s->n_chunks;
            s->n_chunks += (int)((wt->value.numel + SPK_CLIP_CHUNK - 1) / SPK_CLIP_CHUNK);
        }
    /* the chunks' partial sums, then each level of their tree until SPK_CLIP_GROUP remain */
    int np = s->n_chunks;
    for (int lv = s->n_chunks; lv > SPK_CLIP_GROUP; lv = (lv + SPK_CLIP_GROUP - 1) / SPK_CLIP_GROUP)
        np += (lv + SPK_CLIP_GROUP - 1) / SPK_CLIP_GROUP;
    spk_shape ps = {.ndim = 1, .dims = {np ? np : 1}, .time = SPK_TIME_NONE};
    return spk_tensor_alloc(be, &s->partial, &ps, T, 1, err);
}

/* The moments (or momentum buffers), zero, on the first update or optimizer-state file: a
 * session that only evaluates, exports or computes gradients never holds them (two floats per
 * weight). */
int spk_optim_moments(spk_session *s, spk_error *err)
{
    int rc = SPK_OK;
    for (int i = 0; !rc && !s->moments && i < s->n_opt; i++) {
        spk_opt_slot *o = &s->opt[i];
        spk_tensor *mv[2] = {&o->m, &o->v};
        for (int k = 0; !rc && k < 2; k++) {
            if (mv[k]->buf) /* from a call that failed part way */
                continue;
            rc = spk_tensor_alloc(s->be, mv[k], &o->w->value.shape, s->T, 1, err);
            if (!rc)
                rc = s->be->ops->fill(s->be, mv[k]->buf, 0, mv[k]->numel, 0.0f, err);
        }
    }
    if (!rc)
        s->moments = 1;
    return rc;
}

void spk_optim_release(spk_session *s)
{
    for (int i = 0; i < s->n_opt; i++) {
        spk_tensor_release(s->be, &s->opt[i].m);
        spk_tensor_release(s->be, &s->opt[i].v);
    }
    free(s->opt);
    s->opt = NULL;
    s->n_opt = 0;
    s->moments = 0;
    spk_tensor_release(s->be, &s->scale);
    spk_tensor_release(s->be, &s->partial);
}

/* Scales the gradients so that their global L2 norm is at most clip_norm: sums of squares per
 * chunk, a tree of group sums, then the scale factor, all on the device. */
static int clip_scale(spk_session *s, float clip_norm, spk_error *err)
{
    int rc = SPK_OK;
    for (int i = 0; !rc && i < s->n_opt; i++) {
        spk_opt_slot *o = &s->opt[i];
        int nch = (int)((o->w->grad.numel + SPK_CLIP_CHUNK - 1) / SPK_CLIP_CHUNK);
        rc = SPK_CORE(s, "spk_sumsq", (size_t)nch, err, SPK_ARG_BUF(&s->partial),
                      SPK_ARG_BUF(&o->w->grad), SPK_ARG_INT(o->w->grad.numel),
                      SPK_ARG_INT(SPK_CLIP_CHUNK), SPK_ARG_INT(o->chunk_slot), SPK_ARG_INT(nch));
    }
    int off = 0, n = s->n_chunks;
    while (!rc && n > SPK_CLIP_GROUP) {
        const int ng = (n + SPK_CLIP_GROUP - 1) / SPK_CLIP_GROUP;
        rc = SPK_CORE(s, "spk_sum_groups", (size_t)ng, err, SPK_ARG_BUF(&s->partial),
                      SPK_ARG_INT(off), SPK_ARG_INT(n), SPK_ARG_INT(SPK_CLIP_GROUP),
                      SPK_ARG_INT(off + n), SPK_ARG_INT(ng));
        off += n;
        n = ng;
    }
    if (!rc)
        rc = SPK_CORE(s, "spk_clip_scale", 1, err, SPK_ARG_BUF(&s->scale), SPK_ARG_BUF(&s->partial),
                      SPK_ARG_INT(off), SPK_ARG_INT(n), SPK_ARG_FLOAT(clip_norm),
                      SPK_ARG_BUF(&s->loss_t));
    return rc;
}

int spk_optim_step(spk_session *s, spk_error *err)
{
    const spk_optim_config *oc = &s->optim;
    int rc = spk_optim_moments(s, err);
    if (!rc && oc->clip_norm > 0.0f)
        rc = clip_scale(s, oc->clip_norm, err);
    s->step++;
    float bc1 = 1.0f - (float)pow(oc->beta1, (double)s->step);
    float bc2 = 1.0f - (float)pow(oc->beta2, (double)s->step);
    for (int i = 0; !rc && i < s->n_opt; i++) {
        spk_opt_slot *o = &s->opt[i];
        spk_weight *w = o->w;
        float wd = w->decay ? oc->weight_decay : 0.0f;
        int n = (int)w->value.numel;
        if (oc->kind == SPK_OPTIM_SGD)
            rc = SPK_CORE(s, "spk_sgd", (size_t)n, err, SPK_ARG_BUF(&w->value),
                          SPK_ARG_BUF(&w->grad), SPK_ARG_BUF(&o->m), SPK_ARG_BUF(&s->scale),
                          SPK_ARG_INT(n), SPK_ARG_FLOAT(s->lr), SPK_ARG_FLOAT(oc->momentum),
                          SPK_ARG_INT(oc->nesterov), SPK_ARG_FLOAT(wd), SPK_ARG_INT(w->clamp),
                          SPK_ARG_FLOAT(w->lo), SPK_ARG_FLOAT(w->hi), SPK_ARG_BUF(&s->loss_t));
        else
            rc = SPK_CORE(
                s, "spk_adam", (size_t)n, err, SPK_ARG_BUF(&w->value), SPK_ARG_BUF(&w->grad),
                SPK_ARG_BUF(&o->m), SPK_ARG_BUF(&o->v), SPK_ARG_BUF(&s->scale), SPK_ARG_INT(n),
                SPK_ARG_FLOAT(s->lr), SPK_ARG_FLOAT(oc->beta1), SPK_ARG_FLOAT(oc->beta2),
                SPK_ARG_FLOAT(oc->eps), SPK_ARG_FLOAT(wd), SPK_ARG_INT(oc->kind == SPK_OPTIM_ADAMW),
                SPK_ARG_FLOAT(bc1), SPK_ARG_FLOAT(bc2), SPK_ARG_INT(w->clamp), SPK_ARG_FLOAT(w->lo),
                SPK_ARG_FLOAT(w->hi), SPK_ARG_BUF(&s->loss_t));
    }
    return rc;
}

/* The session's copy, taken at creation: later edits of the model's train config do not reach
 * a session that exists. */
const spk_optim_config *spk_session_optim(const spk_session *s)
{
    return &s->optim;
}

void spk_session_set_lr(spk_session *s, float lr)
{
    s->lr = lr;
}

float spk_session_lr(const spk_session *s)
{
    return s->lr;
}
