/* The session's graph: one node per layer of the model (then the readout and the loss), wired to
 * its inputs, shaped by each type's init, with the type's kernels built once per type. */
#include <stdlib.h>
#include <string.h>

#include "core_kernels.h"
#include "session_internal.h"

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

/* The input nodes of node i: the previous node (default_input) without `from:`, else the
 * earlier layers the loader resolved it to (layer j is node j + 1). */
static int resolve_inputs(spk_session *s, int i, const spk_layer_def *d, int default_input,
                          spk_error *err)
{
    spk_node *nd = &s->nodes[i];
    if (d->n_from == 0) {
        nd->n_in = 1;
        nd->in_node[0] = default_input;
        return SPK_OK;
    }
    nd->n_in = d->n_from;
    for (int k = 0; k < d->n_from; k++) {
        /* a model built by hand may hold anything: keep the check the loader makes */
        if (d->from[k] < 0 || d->from[k] + 1 >= i)
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "%s:%d:%d: layer '%s': 'from' input #%d is not an earlier layer",
                                 s->m->path, d->line, d->col, d->name, k + 1);
        nd->in_node[k] = d->from[k] + 1;
    }
    return SPK_OK;
}

/* Sets up node i from its definition: inputs, shapes (through the plugin's init), program, and
 * the copy of its rate_reg settings. */
static int setup_node(spk_session *s, int i, const spk_layer_def *d, int default_input,
                      spk_error *err)
{
    spk_node *nd = &s->nodes[i];
    nd->def = d;
    nd->rate_l1 = d->rate_l1;
    nd->rate_target = d->rate_target;
    nd->rate_weight = d->rate_weight;
    int rc = resolve_inputs(s, i, d, default_input, err);
    if (rc)
        return rc;
    spk_shape in[SPK_MAX_INPUTS];
    for (int k = 0; k < nd->n_in; k++) {
        int j = nd->in_node[k];
        if (j == 0)
            in[k] = s->in_shape;
        else
            in[k] = s->nodes[j].layer.out;
        if (j > 0)
            s->nodes[j].n_consumers++;
    }
    rc = spk_layer_setup(&nd->layer, d->type, &d->params, d->name, i, s->m->path, d->line, d->col,
                         nd->n_in, in, s->T, err);
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

static int has_trainable(const spk_layer *l)
{
    for (int i = 0; i < l->n_weights; i++)
        if (!l->weights[i].frozen)
            return 1;
    return 0;
}

int spk_graph_build(spk_session *s, spk_error *err)
{
    const spk_model *m = s->m;
    s->n_nodes = m->n_layers + 3;
    s->readout = m->n_layers + 1;
    s->loss = m->n_layers + 2;
    s->nodes = calloc((size_t)s->n_nodes, sizeof *s->nodes);
    if (!s->nodes)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    int rc = s->be->ops->program_build(s->be, &spk_core_kernels, &s->core, err);
    for (int i = 1; !rc && i <= m->n_layers; i++)
        rc = setup_node(s, i, &m->layers[i - 1], i - 1, err);
    if (!rc)
        rc = setup_node(s, s->readout, &m->readout, m->n_layers, err);
    if (!rc)
        rc = setup_node(s, s->loss, &m->loss, s->readout, err);
    if (rc)
        return rc;
    const spk_shape *ro = &s->nodes[s->readout].layer.out;
    /* a readout may keep the time axis for losses applied at every step (ce_rate); accuracy
     * then uses the sum over steps */
    s->classes = spk_shape_size(ro);
    s->ro_steps = ro->time == SPK_TIME_STEPS ? s->T : 1;
    if (s->classes < 2)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "%s:%d:%d: readout '%s' must produce at least 2 class scores "
                             "(got %d)",
                             m->path, m->readout.line, m->readout.col, m->readout.name, s->classes);
    for (int i = 1; i < s->n_nodes; i++) {
        spk_node *nd = &s->nodes[i];
        nd->trainable_upstream = has_trainable(&nd->layer);
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in_node[k] > 0 && s->nodes[nd->in_node[k]].trainable_upstream)
                nd->trainable_upstream = 1;
    }
    return SPK_OK;
}

void spk_graph_release(spk_session *s)
{
    spk_backend *be = s->be;
    for (int i = 1; s->nodes && i < s->n_nodes; i++)
        spk_layer_release(&s->nodes[i].layer, be);
    free(s->nodes);
    s->nodes = NULL;
    for (int i = 0; i < s->n_progs; i++)
        be->ops->program_free(be, s->progs[i].prog);
    s->n_progs = 0;
    if (s->core)
        be->ops->program_free(be, s->core);
    s->core = NULL;
}
