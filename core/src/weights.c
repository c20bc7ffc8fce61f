/* A session's learnable tensors by name ("layer.weight") in model order: counting, reading and
 * writing them, and the finiteness check the training loop runs after a divergence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "session_internal.h"

spk_weight *spk_session_weight_at(const spk_session *s, int idx, const spk_layer **owner)
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
    const spk_weight *w = spk_session_weight_at(s, i, &l);
    if (!w)
        return NULL;
    snprintf(name, sizeof name, "%s.%s", l->name, w->name);
    return name;
}

size_t spk_session_weight_numel(const spk_session *s, int i)
{
    const spk_weight *w = spk_session_weight_at(s, i, NULL);
    return w ? w->value.numel : 0;
}

int spk_session_weight_get(spk_session *s, int i, float *dst, spk_error *err)
{
    spk_weight *w = spk_session_weight_at(s, i, NULL);
    if (!w)
        return spk_error_set(err, SPK_ERR_INVALID, "no weight %d", i);
    return spk_tensor_download(s->be, &w->value, dst, err);
}

int spk_session_weight_set(spk_session *s, int i, const float *src, spk_error *err)
{
    spk_weight *w = spk_session_weight_at(s, i, NULL);
    if (!w)
        return spk_error_set(err, SPK_ERR_INVALID, "no weight %d", i);
    return spk_tensor_upload(s->be, &w->value, src, err);
}

int spk_session_grad_get(spk_session *s, int i, float *dst, spk_error *err)
{
    spk_weight *w = spk_session_weight_at(s, i, NULL);
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
        spk_weight *w = spk_session_weight_at(s, i, &l);
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
