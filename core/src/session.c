/* A session: a model's graph placed on a backend for a batch size. Creation copies what the
 * steps read from the model (the optimizer settings, the seed's key, the input's shape and
 * scale), builds the graph (graph.c), allocates every tensor (memplan.c) and the optimizer's
 * state (optim.c); the step runs in exec.c. See session_internal.h for the files. */
#include <stdio.h>
#include <stdlib.h>

#include "seed.h"
#include "session_internal.h"

void spk_session_free(spk_session *s)
{
    if (!s)
        return;
    spk_optim_release(s);
    spk_memplan_release(s);
    spk_graph_release(s);
    free(s);
}

int spk_session_new(spk_model *m, spk_backend *be, int batch, spk_session **out, spk_error *err)
{
    return spk_session_new_flags(m, be, batch, 0, out, err);
}

int spk_session_new_flags(spk_model *m, spk_backend *be, int batch, unsigned flags,
                          spk_session **out, spk_error *err)
{
    if (!m || !be || batch < 1 || (flags & ~SPK_SESSION_FUSE_READOUT))
        return spk_error_set(err, SPK_ERR_INVALID, "spk_session_new: bad arguments");
    if (!m->readout.type || !m->loss.type)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%s: a model needs a 'readout' and a 'loss' to train or evaluate",
                             m->path);
    spk_session *s = calloc(1, sizeof *s);
    if (!s)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    s->m = m;
    s->flags = flags;
    s->be = be;
    s->batch = batch;
    s->T = m->time_steps;
    /* the settings a step reads, copied: the model may change or be reloaded meanwhile */
    s->optim = m->train.optim;
    s->lr = s->optim.lr;
    s->seed_key = spk_seed_key(m->seed);
    s->input_scale = m->input_scale;
    s->in_shape.ndim = m->in_ndim;
    /* event models (train.data format nmnist) take frames [T, B, ...], others [B, ...] */
    s->in_shape.time = m->train.data_format == SPK_DATA_NMNIST ? SPK_TIME_STEPS : SPK_TIME_NONE;
    s->in_size = 1;
    for (int q = 0; q < m->in_ndim; q++) {
        s->in_shape.dims[q] = m->in_dims[q];
        s->in_size *= m->in_dims[q];
    }
    int rc = spk_graph_build(s, err);
    if (!rc)
        rc = spk_memplan_check(s, err);
    if (!rc)
        rc = spk_memplan_alloc(s, err);
    if (!rc)
        rc = spk_optim_alloc(s, err);
    if (rc) {
        spk_session_free(s);
        return rc;
    }
    *out = s;
    return SPK_OK;
}

int spk_session_input_size(const spk_session *s)
{
    return s->in_shape.time == SPK_TIME_STEPS ? s->in_size * s->T : s->in_size;
}

float spk_session_input_scale(const spk_session *s)
{
    return s->input_scale;
}

int spk_session_check_data(const spk_session *s, const spk_dataset *ds, spk_error *err)
{
    if (!s || !ds)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_session_check_data: no session or data");
    const spk_shape *in = &s->in_shape;
    const spk_model *m = s->m;
    if ((ds->events != NULL) != (in->time == SPK_TIME_STEPS))
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "model '%s' (%s) takes %s, but the data set holds %s",
                             m->name ? m->name : "", m->path,
                             ds->events ? "images (its train.data format is not nmnist)"
                                        : "event frames (train.data format nmnist)",
                             ds->events ? "event recordings" : "images");
    if (ds->events && ds->frames.time_steps != s->T)
        return spk_error_set(err, SPK_ERR_SHAPE,
                             "the data set makes %d frames per sample but model '%s' (%s) has "
                             "time_steps %d",
                             ds->frames.time_steps, m->name ? m->name : "", m->path, s->T);
    long long have = (long long)ds->channels * ds->height * ds->width;
    int ok;
    if (in->ndim == 3)
        ok = in->dims[0] == ds->channels && in->dims[1] == ds->height && in->dims[2] == ds->width;
    else if (in->ndim == 2)
        ok = ds->channels == 1 && in->dims[0] == ds->height && in->dims[1] == ds->width;
    else
        ok = in->ndim == 1 && have == s->in_size;
    if (ok)
        return SPK_OK;
    char want[96] = "";
    for (int q = 0, len = 0; q < in->ndim && len < (int)sizeof want - 16; q++)
        len += snprintf(want + len, sizeof want - (size_t)len, "%s%d", q ? "x" : "", in->dims[q]);
    return spk_error_set(err, SPK_ERR_SHAPE,
                         "the data set's images are %dx%dx%d (channels x height x width) but "
                         "model '%s' (%s) takes input of shape %s",
                         ds->channels, ds->height, ds->width, s->m->name ? s->m->name : "",
                         s->m->path, want);
}
