/* The session's memory: every tensor a training step touches is allocated here, once, after
 * the graph is built, so the step itself allocates nothing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_internal.h"

/* Elements of a tensor of shape sh for T steps and B samples, saturating at UINT64_MAX (plugin
 * shapes are ints whose product may pass any width). */
static uint64_t numel_u64(const spk_shape *sh, int T, int B)
{
    uint64_t n = (uint64_t)(B > 0 ? B : 0);
    if (sh->time == SPK_TIME_STEPS)
        n = n * (uint64_t)(T > 0 ? T : 0); /* both below 2^31: no overflow */
    for (int d = 0; d < sh->ndim; d++) {
        const uint64_t k = (uint64_t)(sh->dims[d] > 0 ? sh->dims[d] : 0);
        n = (k && n > UINT64_MAX / k) ? UINT64_MAX : n * k;
    }
    return n;
}

/* Kernels index tensors with int arithmetic (an OpenCL work item is one int index, and the CPU
 * entries take int counts), which wraps past INT_MAX elements (8 GiB of floats, within reach of
 * a large GPU). Such a tensor is refused before anything is allocated, naming the layer. */
int spk_memplan_check(const spk_session *s, spk_error *err)
{
    const int T = s->T, B = s->batch;
    uint64_t n = numel_u64(&s->in_shape, T, B);
    if (n > INT_MAX)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "%s: the input batch has %llu elements (batch %d), more than the "
                             "%d that kernels can index; use a smaller batch",
                             s->m->path, (unsigned long long)n, B, INT_MAX);
    for (int i = 1; i < s->n_nodes; i++) {
        const spk_layer *l = &s->nodes[i].layer;
        const char *what = "output";
        char name[SPK_NAME_MAX + 16];
        n = numel_u64(&l->out, T, B);
        for (int w = 0; w < l->n_weights && n <= INT_MAX; w++) {
            spk_shape sh = l->weights[w].shape;
            sh.time = SPK_TIME_NONE;
            n = numel_u64(&sh, T, 1);
            snprintf(name, sizeof name, "weight '%s'", l->weights[w].name);
            what = name;
        }
        for (int k = 0; k < l->n_state && n <= INT_MAX; k++) {
            spk_shape sh = {.ndim = 1, .dims = {l->state[k].per_sample}, .time = l->state[k].time};
            n = numel_u64(&sh, T, B);
            snprintf(name, sizeof name, "state '%s'", l->state[k].name);
            what = name;
        }
        if (n > INT_MAX) {
            char count[32];
            if (n == UINT64_MAX)
                snprintf(count, sizeof count, "over 2^64");
            else
                snprintf(count, sizeof count, "%llu", (unsigned long long)n);
            return spk_error_set(err, SPK_ERR_SHAPE,
                                 "%s:%d:%d: layer '%s' (%s): its %s has %s elements (batch %d, "
                                 "%d time steps), more than the %d that kernels can index; use "
                                 "a smaller batch or layer",
                                 l->file ? l->file : s->m->path, l->line, l->col, l->name,
                                 l->type->name, what, count, B, T, INT_MAX);
        }
    }
    return SPK_OK;
}

/* ---- sharing buffers between node tensors ----
 * A training step runs every forward in node order, then the backward passes in reverse. On
 * that timeline node i's forward is at i and its backward at 2N - i (N nodes), and each output
 * and gradient is needed from the pass that writes it to the last pass that reads it. Two
 * tensors whose spans do not overlap can live in one buffer. What a pass reads comes from the
 * layer types' SPK_MEM_* promises; without them a tensor lives for the whole session.
 * Outputs live at least to the end of the forward passes (spk_session_node_output reads them
 * after any forward), so gradients move into an output's buffer, and another output only where
 * a layer writes its output over its input (SPK_MEM_OUT_IN_PLACE; that input is then refused). */
#define PLAN_MAX_T 8 /* a longer chain of in-place layers starts another item */
typedef struct plan_item {
    int node[PLAN_MAX_T]; /* the nodes whose out (is_out[k]) or grad hold this value */
    unsigned char is_out[PLAN_MAX_T];
    int n_t;
    size_t numel;
    int first, last; /* the span, in passes */
} plan_item;

static unsigned mem_flags(const spk_node *nd)
{
    return nd->layer.memory;
}

/* The plan: SPIKECL_MEMPLAN=plain gives every tensor its own buffer (to rule sharing out when
 * hunting a bug); anything else shares. */
static int plan_plain(void)
{
    const char *v = getenv("SPIKECL_MEMPLAN");
    return v && strcmp(v, "plain") == 0;
}

/* Node i's backward is in place: its gradient and its one input's are one buffer. */
static int grad_in_place(const spk_session *s, int i)
{
    const spk_node *nd = &s->nodes[i];
    if (!(mem_flags(nd) & SPK_MEM_GRAD_IN_PLACE) || nd->n_in != 1 || i == s->loss ||
        !nd->trainable_upstream)
        return 0;
    const int j = nd->in_node[0];
    if (j <= 0 || !s->nodes[j].trainable_upstream || s->nodes[j].n_consumers != 1)
        return 0;
    return spk_shape_numel(&s->nodes[j].layer.out, s->T, s->batch) ==
           spk_shape_numel(&nd->layer.out, s->T, s->batch);
}

static int has_grad(const spk_session *s, int i)
{
    return s->nodes[i].trainable_upstream && i != s->loss;
}

/* The last pass that reads node i's output: the end of the forward passes (inspection), a
 * consumer's backward that reads its inputs, its own rate_reg; never freed without the type's
 * promise, nor for the readout and the loss (the metrics read them after the step). */
static int out_last(const spk_session *s, int i)
{
    const int N = s->n_nodes;
    const spk_node *nd = &s->nodes[i];
    if (!(mem_flags(nd) & SPK_MEM_OUT_FORWARD_ONLY) || i == s->readout || i == s->loss)
        return 2 * N;
    int last = N - 1;
    if (nd->trainable_upstream && (nd->rate_l1 > 0 || nd->rate_weight > 0))
        last = 2 * N - i; /* rate_reg reads it before this node's backward */
    for (int k = i + 1; k < N; k++)
        for (int e = 0; e < s->nodes[k].n_in; e++)
            if (s->nodes[k].in_node[e] == i && s->nodes[k].trainable_upstream &&
                !(mem_flags(&s->nodes[k]) & SPK_MEM_BACKWARD_NO_INPUT) && last < 2 * N - k)
                last = 2 * N - k;
    return last;
}

/* Node i's forward may write its output over its one input: nothing reads that input after
 * this forward but inspection (which then refuses it), and both are the same size. A neuron
 * layer's spikes are kept whole: they are what pictures and probes read. */
static int out_over_input(const spk_session *s, int i)
{
    const spk_node *nd = &s->nodes[i];
    const int j = nd->in_node[0];
    const spk_node *in = &s->nodes[j];
    if (!(mem_flags(nd) & SPK_MEM_OUT_IN_PLACE) || nd->n_in != 1 || j <= 0 ||
        in->n_consumers != 1 || !(mem_flags(in) & SPK_MEM_OUT_FORWARD_ONLY) || j == s->readout ||
        j == s->loss || in->layer.type->kind == SPK_KIND_NEURON ||
        (in->trainable_upstream && (in->rate_l1 > 0 || in->rate_weight > 0)))
        return 0;
    if (nd->trainable_upstream && !(mem_flags(nd) & SPK_MEM_BACKWARD_NO_INPUT))
        return 0;
    return spk_shape_numel(&in->layer.out, s->T, s->batch) ==
           spk_shape_numel(&nd->layer.out, s->T, s->batch);
}

/* SPK_SESSION_FUSE_READOUT: a neuron whose one consumer is a readout that sums it over the
 * steps (SPK_MEM_SUM_OVER_STEPS) and whose type promises SPK_MEM_COUNT_OUT writes those sums,
 * so its [T, B, n] output is never stored; with SPK_MEM_STATE_OVER_INPUT its trace then goes
 * into its input's buffer (under out_over_input's conditions), and its input's gradient after
 * it. */
static void plan_fusion(spk_session *s)
{
    const int r = s->readout;
    const spk_node *ro = &s->nodes[r];
    if (!(s->flags & SPK_SESSION_FUSE_READOUT) || ro->n_in != 1 ||
        !(mem_flags(ro) & SPK_MEM_SUM_OVER_STEPS))
        return;
    const int j = ro->in_node[0];
    spk_node *nd = &s->nodes[j];
    if (j <= 0 || !(mem_flags(nd) & SPK_MEM_COUNT_OUT) || nd->n_consumers != 1 ||
        nd->layer.out.time != SPK_TIME_STEPS || nd->rate_l1 > 0 || nd->rate_weight > 0)
        return;
    nd->count_into = r;
    s->nodes[r].absorbed = 1;
    if (!(mem_flags(nd) & SPK_MEM_STATE_OVER_INPUT) || !out_over_input(s, j))
        return;
    const size_t in_numel = spk_shape_numel(&s->nodes[nd->in_node[0]].layer.out, s->T, s->batch);
    for (int k = 0; k < nd->layer.n_state; k++) {
        const spk_state *st = &nd->layer.state[k];
        if (st->time != SPK_TIME_STEPS)
            continue;
        if ((size_t)st->per_sample * (size_t)s->T * (size_t)s->batch == in_numel)
            nd->state_over = k + 1;
        return;
    }
}

/* The items: every output, and every gradient (one item for a chain of in-place layers). */
static int plan_items(spk_session *s, plan_item *it, int plain)
{
    const int N = s->n_nodes;
    int n = 0;
    int *grad_item = calloc((size_t)N, sizeof *grad_item);
    if (!grad_item)
        return -1;
    int *out_item = calloc((size_t)N, sizeof *out_item);
    if (!out_item) {
        free(grad_item);
        return -1;
    }
    int state_item = -1; /* the item a fused neuron's trace and its input's gradient join */
    for (int i = 1; i < N; i++) {
        spk_node *nd = &s->nodes[i];
        const int last = out_last(s, i);
        const int j = nd->n_in == 1 ? nd->in_node[0] : 0;
        if (nd->count_into) { /* its output is the readout's */
            out_item[i] = -1;
            if (nd->state_over) {
                /* the trace lives in the input's buffer until this node's backward */
                plan_item *o = &it[out_item[j]];
                if (o->last < 2 * N - i)
                    o->last = 2 * N - i;
                s->nodes[j].out_over = i;
                state_item = out_item[j];
            }
            continue;
        }
        if (!plain && j > 0 && out_item[j] >= 0 && out_over_input(s, i) &&
            it[out_item[j]].n_t < PLAN_MAX_T) {
            /* this forward writes over its input, whose span ends here: one item for both */
            plan_item *o = &it[out_item[j]];
            o->is_out[o->n_t] = 1;
            o->node[o->n_t++] = i;
            if (o->last < last)
                o->last = last;
            out_item[i] = out_item[j];
            s->nodes[j].out_over = i;
            continue;
        }
        plan_item *o = &it[n];
        memset(o, 0, sizeof *o);
        o->is_out[o->n_t] = 1;
        o->node[o->n_t++] = i;
        o->numel = spk_shape_numel(&nd->layer.out, s->T, s->batch);
        /* an absorbed readout's output is written by its neuron's forward */
        o->first = nd->absorbed ? nd->in_node[0] : i;
        o->last = last;
        out_item[i] = n++;
    }
    free(out_item);
    /* gradients, from the last node back, so an in-place consumer's item exists first */
    for (int j = N - 1; j >= 1; j--) {
        if (!has_grad(s, j) || s->nodes[j].count_into) /* a fused neuron reads the readout's */
            continue;
        spk_node *nd = &s->nodes[j];
        int first = 2 * N - j; /* filled or summed from edge gradients at its own backward */
        int k1 = 0;
        if (nd->n_consumers == 1)
            for (int k = j + 1; k < N && !k1; k++)
                for (int e = 0; e < s->nodes[k].n_in; e++)
                    if (s->nodes[k].in_node[e] == j)
                        k1 = k;
        if (k1)
            first = 2 * N - k1; /* written by its consumer's backward */
        plan_item *g;
        if (k1 && s->nodes[k1].state_over && it[state_item].n_t < PLAN_MAX_T) {
            /* the fused neuron's backward writes this gradient over its trace */
            g = &it[state_item];
            grad_item[j] = state_item;
        } else if (k1 && !plain && grad_in_place(s, k1) && it[grad_item[k1]].n_t < PLAN_MAX_T) {
            g = &it[grad_item[k1]];
            grad_item[j] = grad_item[k1];
        } else {
            g = &it[n];
            memset(g, 0, sizeof *g);
            g->numel = spk_shape_numel(&nd->layer.out, s->T, s->batch);
            g->first = first;
            grad_item[j] = n++;
        }
        g->is_out[g->n_t] = 0;
        g->node[g->n_t++] = j;
        g->last = 2 * N - j;
    }
    free(grad_item);
    return n;
}

/* Greedy by size: the largest item first, each into the smallest buffer that is free for its
 * whole span (every buffer made so far is at least as large) and at most twice its size, else
 * a new one. */
static int plan_assign(const plan_item *it, int n, int *buf_of, size_t *buf_numel, int plain)
{
    int *order = malloc((size_t)n * sizeof *order);
    if (!order)
        return -1;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int a = 1; a < n; a++) /* insertion sort: a few dozen items, stable */
        for (int b = a; b > 0 && it[order[b]].numel > it[order[b - 1]].numel; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    int n_buf = 0;
    for (int a = 0; a < n; a++) {
        const plan_item *x = &it[order[a]];
        int best = -1;
        for (int b = 0; b < n_buf && !plain; b++) {
            int free_all = 1;
            for (int c = 0; c < a && free_all; c++) {
                const plan_item *y = &it[order[c]];
                if (buf_of[order[c]] == b && !(y->last < x->first || x->last < y->first))
                    free_all = 0;
            }
            /* a buffer over twice the size saves little and hides an output from inspection */
            if (free_all && buf_numel[b] <= 2 * x->numel &&
                (best < 0 || buf_numel[b] < buf_numel[best]))
                best = b;
        }
        if (best < 0) {
            best = n_buf++;
            buf_numel[best] = x->numel;
        }
        buf_of[order[a]] = best;
    }
    free(order);
    return n_buf;
}

static int plan_alloc(spk_session *s, spk_error *err)
{
    const int max_items = 2 * s->n_nodes;
    plan_item *it = calloc((size_t)max_items, sizeof *it);
    int *buf_of = calloc((size_t)max_items, sizeof *buf_of);
    size_t *buf_numel = calloc((size_t)max_items, sizeof *buf_numel);
    const int plain = plan_plain();
    int n = it && buf_of && buf_numel ? plan_items(s, it, plain) : -1;
    int n_buf = n >= 0 ? plan_assign(it, n, buf_of, buf_numel, plain) : -1;
    int rc = SPK_OK;
    if (n_buf < 0 || !(s->pool = calloc((size_t)(n_buf > 0 ? n_buf : 1), sizeof *s->pool)))
        rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    for (int b = 0; !rc && b < n_buf; b++) {
        spk_shape flat = {.ndim = 1, .dims = {(int)buf_numel[b]}, .time = SPK_TIME_NONE};
        rc = spk_tensor_alloc(s->be, &s->pool[b], &flat, s->T, 1, err);
        if (!rc)
            s->n_pool = b + 1;
    }
    for (int i = 0; !rc && i < n; i++) {
        int shared = 0;
        for (int j = 0; j < n; j++)
            shared |= j != i && buf_of[j] == buf_of[i];
        for (int k = 0; k < it[i].n_t; k++)
            shared |= !it[i].is_out[k]; /* a fused neuron's input gradient */
        for (int k = 0; k < it[i].n_t; k++) {
            spk_node *nd = &s->nodes[it[i].node[k]];
            spk_tensor *t = it[i].is_out[k] ? &nd->out : &nd->grad;
            t->shape = nd->layer.out;
            t->numel = it[i].numel;
            t->buf = s->pool[buf_of[i]].buf;
            if (it[i].is_out[k])
                nd->out_reused = shared;
        }
    }
    /* a fused neuron's trace: its input's buffer (plan_fusion) */
    for (int i = 1; !rc && i < s->n_nodes; i++) {
        spk_node *nd = &s->nodes[i];
        if (!nd->state_over)
            continue;
        spk_state *st = &nd->layer.state[nd->state_over - 1];
        spk_shape sh = {.ndim = 1, .dims = {st->per_sample}, .time = st->time};
        st->t.shape = sh;
        st->t.numel = spk_shape_numel(&sh, s->T, s->batch);
        st->t.buf = s->nodes[nd->in_node[0]].out.buf;
    }
    free(it);
    free(buf_of);
    free(buf_numel);
    return rc;
}

int spk_memplan_alloc(spk_session *s, spk_error *err)
{
    spk_backend *be = s->be;
    int T = s->T, B = s->batch;
    spk_shape one = {.ndim = 1, .dims = {1}, .time = SPK_TIME_NONE};
    int rc = spk_tensor_alloc(be, &s->input, &s->in_shape, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &s->labels, &one, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &s->loss_t, &one, T, B, err);
    if (!rc)
        rc = spk_tensor_alloc(be, &s->ids, &one, T, B, err);
    /* the second input slot, for uploads that overlap the step before (exec.c) */
    for (int k = 0; !rc && be->ops->upload_async && k < 3; k++) {
        spk_tensor t = {0};
        rc = spk_tensor_alloc(be, &t, k == 0 ? &s->in_shape : &one, T, B, err);
        s->next_buf[k] = t.buf;
    }
    if (!plan_plain())
        plan_fusion(s);
    for (int i = 1; !rc && i < s->n_nodes; i++) {
        spk_node *nd = &s->nodes[i];
        rc = spk_layer_alloc(&nd->layer, be, B, s->seed_key, nd->state_over - 1, err);
        if (!rc && (nd->rate_l1 > 0 || nd->rate_weight > 0)) {
            spk_shape per = {.ndim = 1, .dims = {spk_shape_size(&nd->layer.out)}};
            rc = spk_tensor_alloc(be, &nd->rate_part, &per, T, B, err);
        }
        for (int k = 0; !rc && k < nd->n_in; k++) {
            int j = nd->in_node[k];
            if (j > 0 && s->nodes[j].trainable_upstream && s->nodes[j].n_consumers > 1)
                rc = spk_tensor_alloc(be, &nd->edge_grad[k], &s->nodes[j].layer.out, T, B, err);
        }
    }
    if (!rc)
        rc = plan_alloc(s, err);
    if (rc)
        return rc;
    s->h_labels = malloc((size_t)B * sizeof(float));
    s->h_labels_next = malloc((size_t)B * sizeof(float));
    s->h_loss = malloc((size_t)B * sizeof(float));
    s->h_readout = malloc((size_t)B * (size_t)s->classes * sizeof(float));
    s->h_ids = malloc((size_t)B * sizeof(float));
    if (s->ro_steps > 1)
        s->h_ro_steps = malloc((size_t)T * B * (size_t)s->classes * sizeof(float));
    if (!s->h_labels || !s->h_labels_next || !s->h_loss || !s->h_readout || !s->h_ids ||
        (s->ro_steps > 1 && !s->h_ro_steps))
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    return SPK_OK;
}

void spk_session_memory(const spk_session *s, spk_memory_report *r)
{
    memset(r, 0, sizeof *r);
    r->fused = -1;
    const uint64_t f = sizeof(float);
    for (int i = 1; i < s->n_nodes; i++) {
        const spk_node *nd = &s->nodes[i];
        const spk_layer *l = &nd->layer;
        for (int w = 0; w < l->n_weights; w++) {
            r->weights += f * l->weights[w].value.numel;
            r->gradients += f * l->weights[w].grad.numel;
        }
        for (int k = 0; k < l->n_state; k++)
            if (nd->state_over != k + 1) /* that one is an activation buffer */
                r->state += f * l->state[k].t.numel;
        for (int k = 0; k < nd->n_in; k++)
            r->state += f * nd->edge_grad[k].numel;
        r->state += f * nd->rate_part.numel;
        if (nd->count_into)
            r->fused = i - 1;
    }
    for (int i = 0; s->moments && i < s->n_opt; i++)
        r->optimizer += f * (s->opt[i].m.numel + s->opt[i].v.numel);
    for (int b = 0; b < s->n_pool; b++)
        r->activations += f * s->pool[b].numel;
    r->buffers = s->n_pool;
}

void spk_memplan_release(spk_session *s)
{
    spk_backend *be = s->be;
    for (int i = 1; s->nodes && i < s->n_nodes; i++) {
        spk_node *nd = &s->nodes[i];
        nd->out.buf = nd->grad.buf = NULL; /* the pool's */
        if (nd->state_over)
            nd->layer.state[nd->state_over - 1].t.buf = NULL;
        for (int k = 0; k < SPK_MAX_INPUTS; k++)
            spk_tensor_release(be, &nd->edge_grad[k]);
        spk_tensor_release(be, &nd->rate_part);
    }
    for (int b = 0; b < s->n_pool; b++)
        spk_tensor_release(be, &s->pool[b]);
    free(s->pool);
    s->pool = NULL;
    s->n_pool = 0;
    spk_tensor_release(be, &s->input);
    spk_tensor_release(be, &s->labels);
    spk_tensor_release(be, &s->loss_t);
    spk_tensor_release(be, &s->ids);
    for (int k = 0; k < 3; k++) {
        if (s->next_buf[k])
            be->ops->release(be, s->next_buf[k]);
        s->next_buf[k] = NULL;
    }
    free(s->h_labels);
    free(s->h_labels_next);
    s->h_labels_next = NULL;
    free(s->h_loss);
    free(s->h_readout);
    free(s->h_ids);
    free(s->h_ro_steps);
    s->h_labels = s->h_loss = s->h_readout = s->h_ids = s->h_ro_steps = NULL;
}
