/* Looking inside a session after a forward pass: what each node produced (spikes of a neuron
 * layer, the readout), a named state buffer (a neuron layer's membrane) and a layer's numeric
 * parameters. For pictures and diagnostics; nothing here is on the training path. */
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "session_internal.h"

static spk_node *node_at(const spk_session *s, int i)
{
    return i >= 0 && i < s->n_nodes - 1 ? &s->nodes[i + 1] : NULL;
}

static int bad_node(const spk_session *s, int i, spk_error *err)
{
    return spk_error_set(err, SPK_ERR_INVALID, "node %d: the session has nodes 0..%d", i,
                         s->n_nodes - 2);
}

int spk_session_node_info(const spk_session *s, int i, int *kind, int *steps, int *features, int *n)
{
    const spk_node *nd = node_at(s, i);
    if (!nd)
        return SPK_ERR_INVALID;
    if (kind)
        *kind = nd->layer.type->kind;
    if (steps)
        *steps = nd->layer.out.time == SPK_TIME_STEPS ? s->T : 1;
    if (features)
        *features = spk_shape_size(&nd->layer.out);
    if (n)
        *n = s->last_n;
    return SPK_OK;
}

static int need(size_t want, size_t cap, const char *what, spk_error *err)
{
    if (want > cap)
        return spk_error_set(err, SPK_ERR_INVALID, "%s needs %zu floats, the buffer holds %zu",
                             what, want, cap);
    return SPK_OK;
}

int spk_session_node_output(spk_session *s, int i, float *dst, size_t cap, spk_error *err)
{
    spk_node *nd = node_at(s, i);
    if (!nd)
        return bad_node(s, i, err);
    if (s->last_n < 1)
        return spk_error_set(err, SPK_ERR_INVALID, "no forward pass has run yet");
    if (nd->count_into)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "layer '%s': this training session sums its output into the readout "
                             "as it goes, so the output over the steps is not kept (a session "
                             "made without SPK_SESSION_FUSE_READOUT keeps it)",
                             nd->layer.name);
    if (nd->out_over)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "layer '%s': layer '%s' writes over this one's output to save "
                             "memory, so it is not kept (SPIKECL_MEMPLAN=plain keeps it)",
                             nd->layer.name, s->nodes[nd->out_over].layer.name);
    if (nd->out_reused && s->grads_in_outs)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "layer '%s': a training step's backward pass has reused its "
                             "output's memory for gradients; run a forward pass (eval) first",
                             nd->layer.name);
    size_t numel = spk_shape_numel(&nd->layer.out, s->T, s->last_n);
    int rc = need(numel, cap, nd->layer.name, err);
    if (!rc)
        rc = s->be->ops->download(s->be, nd->out.buf, 0, dst, numel * sizeof(float), err);
    return rc;
}

int spk_session_node_mean(spk_session *s, int i, double *mean, spk_error *err)
{
    spk_node *nd = node_at(s, i);
    if (!nd)
        return bad_node(s, i, err);
    if (s->last_n < 1)
        return spk_error_set(err, SPK_ERR_INVALID, "no forward pass has run yet");
    /* a fused neuron's sums over the steps are its readout's output */
    const spk_node *src = nd->count_into ? &s->nodes[nd->count_into] : nd;
    const size_t numel = spk_shape_numel(&nd->layer.out, s->T, s->last_n);
    const size_t have = spk_shape_numel(&src->layer.out, s->T, s->last_n);
    float *buf = malloc((have ? have : 1) * sizeof *buf);
    if (!buf)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    int rc = nd->count_into
                 ? s->be->ops->download(s->be, src->out.buf, 0, buf, have * sizeof(float), err)
                 : spk_session_node_output(s, i, buf, have, err);
    double sum = 0;
    for (size_t k = 0; !rc && k < have; k++)
        sum += buf[k];
    free(buf);
    if (!rc)
        *mean = numel ? sum / (double)numel : 0;
    return rc;
}

int spk_session_node_state(spk_session *s, int i, const char *name, float *dst, size_t cap,
                           int *features, spk_error *err)
{
    spk_node *nd = node_at(s, i);
    if (!nd)
        return bad_node(s, i, err);
    if (s->last_n < 1)
        return spk_error_set(err, SPK_ERR_INVALID, "no forward pass has run yet");
    for (int k = 0; k < nd->layer.n_state; k++) {
        const spk_state *st = &nd->layer.state[k];
        if (strcmp(st->name, name) != 0)
            continue;
        if (nd->state_over == k + 1 && s->grads_in_outs)
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "layer '%s': a training step's backward pass has reused its "
                                 "state '%s''s memory for gradients; run a forward pass (eval) "
                                 "first",
                                 nd->layer.name, name);
        size_t numel = (size_t)(st->time == SPK_TIME_STEPS ? s->T : 1) * (size_t)s->last_n *
                       (size_t)st->per_sample;
        int rc = need(numel, cap, name, err);
        if (!rc)
            rc = s->be->ops->download(s->be, st->t.buf, 0, dst, numel * sizeof(float), err);
        if (!rc && features)
            *features = st->per_sample;
        return rc;
    }
    return spk_error_set(err, SPK_ERR_NOTFOUND, "layer '%s' (%s) keeps no state '%s'",
                         nd->layer.name, nd->layer.type->name, name);
}

int spk_session_node_param(const spk_session *s, int i, const char *name, double *value)
{
    const spk_node *nd = node_at(s, i);
    if (!nd || !nd->layer.params)
        return SPK_ERR_NOTFOUND;
    const spk_param_value *v = spk_params_find(nd->layer.params, name);
    if (!v)
        return SPK_ERR_NOTFOUND;
    const spk_param_spec *spec = NULL;
    for (int k = 0; k < nd->layer.params->n; k++)
        if (strcmp(nd->layer.params->spec[k].name, name) == 0)
            spec = &nd->layer.params->spec[k];
    if (spec && spec->type == SPK_PARAM_INIT) /* a learnable value: its starting constant */
        *value = v->init.kind == SPK_INIT_CONSTANT ? v->init.a : 0.5 * (v->init.a + v->init.b);
    else
        *value = v->num;
    return SPK_OK;
}
