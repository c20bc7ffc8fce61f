/* The session's memory: every tensor a training step touches is allocated here, once, after
 * the graph is built, so the step itself allocates nothing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

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
    for (int i = 1; !rc && i < s->n_nodes; i++) {
        spk_node *nd = &s->nodes[i];
        rc = spk_layer_alloc(&nd->layer, be, B, s->seed_key, err);
        if (!rc)
            rc = spk_tensor_alloc(be, &nd->out, &nd->layer.out, T, B, err);
        if (!rc && nd->trainable_upstream && i != s->loss)
            rc = spk_tensor_alloc(be, &nd->grad, &nd->layer.out, T, B, err);
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

void spk_memplan_release(spk_session *s)
{
    spk_backend *be = s->be;
    for (int i = 1; s->nodes && i < s->n_nodes; i++) {
        spk_node *nd = &s->nodes[i];
        spk_tensor_release(be, &nd->out);
        spk_tensor_release(be, &nd->grad);
        for (int k = 0; k < SPK_MAX_INPUTS; k++)
            spk_tensor_release(be, &nd->edge_grad[k]);
        spk_tensor_release(be, &nd->rate_part);
    }
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
