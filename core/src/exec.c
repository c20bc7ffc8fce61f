/* The executor: a batch's upload, every layer's forward in file order, the backward pass in
 * reverse (with edge gradients summed and the rate regulariser), the optimizer step, and the
 * public calls that string them together. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "session_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

static void make_exec(spk_session *s, int i, int n, int training, spk_exec *x)
{
    spk_node *nd = &s->nodes[i];
    memset(x, 0, sizeof *x);
    x->T = s->T;
    x->B = n;
    x->training = training;
    x->smooth = s->smooth;
    x->seed = s->seed_key;
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
    if (nd->count_into) { /* SPK_MEM_COUNT_OUT: the readout's [B, n] tensors */
        x->out = &s->nodes[nd->count_into].out;
        x->grad_out = &s->nodes[nd->count_into].grad;
    }
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

/* A batch reaches the device in two moves: stage copies it into the slot the next step will
 * read, take makes that slot the current one. With a backend that uploads asynchronously the
 * session has two slots, and a batch is staged into the idle one while the step on the current
 * one still runs (the copy overlaps its kernels); take swaps them. The idle slot was last read by
 * the step before the current one, which has finished: a step is finished by the readback of its
 * loss (spk_metrics_collect, which waits for the device), and submit refuses to start a step
 * while one is unfinished. slot_busy checks that rule rather than trusting it. Without
 * asynchronous uploads there is one slot, and the blocking upload is ordered after the commands
 * already issued, as every op is. */
static int stage_batch(spk_session *s, const float *x, const int32_t *labels, int n, spk_error *err)
{
    if (n < 1 || n > s->batch)
        return spk_error_set(err, SPK_ERR_INVALID, "batch of %d samples, session holds 1..%d", n,
                             s->batch);
    if (!x || !labels)
        return spk_error_set(err, SPK_ERR_INVALID, "batch of %d samples without %s", n,
                             x ? "labels" : "inputs");
    for (int b = 0; b < n; b++)
        if (labels[b] < 0 || labels[b] >= s->classes)
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "label %d of sample %d is outside the model's %d classes",
                                 labels[b], b, s->classes);
    /* the current step's labels score its readout in spk_metrics_collect: keep them */
    for (int b = 0; b < n; b++)
        s->h_labels_next[b] = (float)labels[b];
    if (!s->ids_set) /* numbered by position in the session's sequence of batches */
        for (int b = 0; b < n; b++)
            s->h_ids[b] =
                (float)((s->batch_counter * (uint32_t)s->batch + (uint32_t)b) & 0xffffffu);
    s->ids_set = 0;
    s->staged = 0;
    spk_backend *be = s->be;
    const int two = s->next_buf[0] != NULL;
    int rc = SPK_OK;
    if (two && s->slot_busy[1]) /* never: see above; but never overwrite what a step reads */
        rc = be->ops->sync(be, err);
    if (rc)
        return rc;
    int (*up)(spk_backend *, spk_buffer *, size_t, const void *, size_t, spk_error *) =
        two ? be->ops->upload_async : be->ops->upload;
    /* frames come as [T, n, ...]: layers run at B = n, so that is the packed layout they read */
    const size_t steps = s->in_shape.time == SPK_TIME_STEPS ? (size_t)s->T : 1;
    rc = up(be, two ? s->next_buf[0] : s->input.buf, 0, x,
            steps * (size_t)n * (size_t)s->in_size * sizeof(float), err);
    if (!rc)
        rc = up(be, two ? s->next_buf[1] : s->labels.buf, 0, s->h_labels_next,
                (size_t)n * sizeof(float), err);
    if (!rc)
        rc = up(be, two ? s->next_buf[2] : s->ids.buf, 0, s->h_ids, (size_t)n * sizeof(float), err);
    if (!rc)
        s->staged = n;
    return rc;
}

/* Makes the staged batch the current one; returns its sample count (0: none staged). */
static int take_batch(spk_session *s)
{
    int n = s->staged;
    if (!n)
        return 0;
    s->staged = 0;
    s->last_n = n; /* the layout of every output from now on, not the staged batch's */
    float *t = s->h_labels;
    s->h_labels = s->h_labels_next;
    s->h_labels_next = t;
    if (s->next_buf[0]) {
        spk_tensor *cur[3] = {&s->input, &s->labels, &s->ids};
        for (int k = 0; k < 3; k++) {
            spk_buffer *b = cur[k]->buf;
            cur[k]->buf = s->next_buf[k];
            s->next_buf[k] = b;
        }
        int busy = s->slot_busy[0];
        s->slot_busy[0] = s->slot_busy[1];
        s->slot_busy[1] = busy;
    }
    return n;
}

static int upload_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                        spk_error *err)
{
    int rc = stage_batch(s, x, labels, n, err);
    if (!rc)
        take_batch(s);
    return rc;
}

static int forward(spk_session *s, int n, int training, spk_error *err)
{
    double t0 = s->profile ? now_s() : 0;
    s->slot_busy[0] = 1; /* until a readback waits for this step */
    for (int i = 1; i < s->n_nodes; i++) {
        if (s->nodes[i].absorbed) /* its neuron wrote its output */
            continue;
        spk_exec x;
        make_exec(s, i, n, training, &x);
        spk_error_clear(&s->xerr);
        int rc = s->nodes[i].layer.type->forward(&s->nodes[i].layer, &x);
        if (rc)
            return layer_error(s, i, rc, err);
        if ((rc = charge(s, &t0, &s->nodes[i].fwd_s, err)))
            return rc;
    }
    s->grads_in_outs = 0;
    return SPK_OK;
}

/* The spike-rate regulariser of a neuron layer: its loss term and output gradient. */
static int rate_reg(spk_session *s, spk_node *nd, int n, spk_error *err)
{
    if (nd->layer.out.time != SPK_TIME_STEPS)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "layer '%s': rate_reg needs an output over time steps",
                             nd->layer.name);
    const int N = spk_shape_size(&nd->layer.out);
    int rc = SPK_CORE(s, "spk_rate_reg", (size_t)n * (size_t)N, err, SPK_ARG_BUF(&nd->grad),
                      SPK_ARG_BUF(&nd->out), SPK_ARG_BUF(&nd->rate_part), SPK_ARG_INT(s->T),
                      SPK_ARG_INT(n), SPK_ARG_INT(N), SPK_ARG_FLOAT(nd->rate_l1),
                      SPK_ARG_FLOAT(nd->rate_target), SPK_ARG_FLOAT(nd->rate_weight));
    if (!rc)
        rc = SPK_CORE(s, "spk_rate_reg_sum", (size_t)n, err, SPK_ARG_BUF(&s->loss_t),
                      SPK_ARG_BUF(&nd->rate_part), SPK_ARG_INT(n), SPK_ARG_INT(N));
    return rc;
}

static int backward(spk_session *s, int n, spk_error *err)
{
    spk_backend *be = s->be;
    s->grads_in_outs = 1; /* from here on, reused outputs hold gradients */
    double t0 = s->profile ? now_s() : 0;
    for (int i = 1; i < s->n_nodes; i++)
        for (int w = 0; w < s->nodes[i].layer.n_weights; w++) {
            spk_tensor *g = &s->nodes[i].layer.weights[w].grad;
            int rc = be->ops->fill(be, g->buf, 0, g->numel, 0.0f, err);
            if (rc)
                return rc;
        }
    for (int i = s->n_nodes - 1; i >= 1; i--) {
        spk_node *nd = &s->nodes[i];
        if (!nd->trainable_upstream || nd->absorbed) /* its neuron reads its gradient */
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
                        rc = SPK_CORE(s, "spk_add", cnt, err, SPK_ARG_BUF(&nd->grad),
                                      SPK_ARG_BUF(e), SPK_ARG_INT(cnt));
                    first = 0;
                }
        }
        if (!rc && i != s->loss && (nd->rate_l1 > 0 || nd->rate_weight > 0))
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

int spk_session_forward_backward(spk_session *s, const float *x, const int32_t *labels, int n,
                                 spk_batch_stats *st, spk_error *err)
{
    int rc = upload_batch(s, x, labels, n, err);
    if (!rc)
        rc = forward(s, n, 1, err);
    if (!rc)
        rc = backward(s, n, err);
    if (!rc)
        rc = spk_metrics_collect(s, n, st, err);
    return rc;
}

/* The step on the current slot's batch of n samples: forward, backward, the update. */
static int submit_current(spk_session *s, int n, spk_error *err)
{
    int rc = forward(s, n, 1, err);
    if (!rc)
        rc = backward(s, n, err);
    if (!rc) {
        double t0 = s->profile ? now_s() : 0;
        rc = spk_optim_step(s, err);
        if (!rc)
            rc = charge(s, &t0, &s->opt_s, err);
    }
    s->batch_counter++;
    if (!rc)
        s->pending = n;
    return rc;
}

static int check_not_pending(const spk_session *s, spk_error *err)
{
    if (s->pending)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "a submitted batch has not been finished (spk_session_train_finish)");
    return SPK_OK;
}

int spk_session_train_submit(spk_session *s, const float *x, const int32_t *labels, int n,
                             spk_error *err)
{
    int rc = check_not_pending(s, err);
    if (!rc)
        rc = upload_batch(s, x, labels, n, err);
    return rc ? rc : submit_current(s, n, err);
}

int spk_session_stage_batch(spk_session *s, const float *x, const int32_t *labels, int n,
                            spk_error *err)
{
    return stage_batch(s, x, labels, n, err);
}

int spk_session_train_submit_staged(spk_session *s, spk_error *err)
{
    int rc = check_not_pending(s, err);
    if (rc)
        return rc;
    if (!s->staged)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "no staged batch to submit (spk_session_stage_batch)");
    int n = take_batch(s);
    return submit_current(s, n, err);
}

int spk_session_train_finish(spk_session *s, spk_batch_stats *st, spk_error *err)
{
    int n = s->pending;
    if (!n)
        return spk_error_set(err, SPK_ERR_INVALID, "no submitted batch to finish");
    s->pending = 0;
    return spk_metrics_collect(s, n, st, err);
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
        rc = spk_metrics_collect(s, n, st, err);
    s->batch_counter++;
    return rc;
}

/* ---- what the next steps read: epoch, batch index, sample ids, smooth mode ---- */

void spk_session_set_epoch(spk_session *s, int epoch)
{
    s->epoch = epoch;
    s->batch_counter = 0;
}

void spk_session_set_batch_index(spk_session *s, int batch)
{
    s->batch_counter = (uint32_t)batch;
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

void spk_session_set_smooth(spk_session *s, int on)
{
    s->smooth = on;
}
