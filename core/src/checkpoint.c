/* Checkpoints: the weights (safetensors, plain tensors named "layer.weight") and, in a file of
 * their own, the optimizer's state with the step count, the position in the run and a digest of
 * the weights it belongs to. Both are written atomically by the safetensors writer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_internal.h"
#include "spikecl/safetensors.h"

#define SPK_STATE_MAX (1 << 24) /* counts in the state file are floats: exact up to 2^24 */

int spk_session_save(spk_session *s, const char *path, spk_error *err)
{
    int n = spk_session_weight_count(s);
    spk_st_tensor *t = calloc((size_t)(n ? n : 1), sizeof *t);
    int rc = t ? SPK_OK : spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    for (int i = 0; !rc && i < n; i++) {
        const spk_layer *l = NULL;
        spk_weight *w = spk_session_weight_at(s, i, &l);
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
        spk_weight *w = spk_session_weight_at(s, i, &l);
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
static const spk_layer *opt_owner(const spk_session *s, const spk_opt_slot *o)
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
        spk_weight *w = spk_session_weight_at(s, i, NULL);
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
    if (!rc) /* a session that has not stepped yet saves zero moments */
        rc = spk_optim_moments(s, err);
    for (int k = 0; k < 4; k++) /* 16 bits a float: exact */
        digest[k] = (float)((dg >> (16 * k)) & 0xffffu);
    for (int i = 0; !rc && i < s->n_opt; i++) {
        const spk_opt_slot *o = &s->opt[i];
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
    if (!rc)
        rc = spk_optim_moments(s, err);
    if (!rc && have != want)
        rc = spk_error_set(err, SPK_ERR_INVALID,
                           "%s (epoch %.0f, step %.0f) belongs to other weights than those "
                           "loaded: the weights and the optimizer state come from different "
                           "points of a run (did it stop between writing the two files?); "
                           "start the run again, or evaluate the weights alone",
                           path, epochs, step);
    for (int i = 0; !rc && i < s->n_opt; i++) {
        const spk_opt_slot *o = &s->opt[i];
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
