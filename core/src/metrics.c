/* What a session reports: loss and accuracy from one readback per batch, the readout, and the
 * per-layer times measured with profiling on. */
#include <string.h>

#include "session_internal.h"

/* Per-sample losses and the readout, for loss and accuracy. */
int spk_metrics_collect(spk_session *s, int n, spk_batch_stats *st, spk_error *err)
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
    if (rc)
        return rc;
    /* the readback waited for every command issued before it: no step reads a slot now */
    s->slot_busy[0] = s->slot_busy[1] = 0;
    if (!st)
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
