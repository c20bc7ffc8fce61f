/* spikecl CLI — the evaluation pass behind `eval --predictions` and the pictures (probe.h). */
#define _POSIX_C_SOURCE 200809L
#include "probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int nomem(spk_error *err)
{
    return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
}

void spk_probe_free(spk_probe *p)
{
    if (!p)
        return;
    free(p->confusion);
    free(p->index);
    free(p->label);
    free(p->pred);
    free(p->counts);
    for (int i = 0; i < p->n_layers; i++)
        free(p->layers[i].spikes);
    free(p->layers);
    free(p->rec_index);
    free(p->rec_pred);
    free(p->rec_out);
    free(p->mem);
    memset(p, 0, sizeof *p);
}

int spk_probe_rates(spk_session *s, char names[][SPK_PROBE_NAME], double *rates, int cap, int *n,
                    spk_error *err)
{
    *n = 0;
    int rc = SPK_OK;
    for (int i = 0; !rc && i < spk_session_node_count(s) && *n < cap; i++) {
        int kind;
        if (spk_session_node_info(s, i, &kind, NULL, NULL, NULL) || kind != SPK_KIND_NEURON)
            continue;
        if ((rc = spk_session_node_mean(s, i, &rates[*n], err)))
            break;
        snprintf(names[*n], SPK_PROBE_NAME, "%s", spk_session_node_name(s, i));
        (*n)++;
    }
    return rc;
}

/* Node indices of the neuron layers, in order. */
static int neuron_nodes(const spk_session *s, int *idx, int cap)
{
    int n = 0;
    for (int i = 0; i < spk_session_node_count(s) && n < cap; i++) {
        int kind;
        if (!spk_session_node_info(s, i, &kind, NULL, NULL, NULL) && kind == SPK_KIND_NEURON)
            idx[n++] = i;
    }
    return n;
}

static int probe_alloc(spk_session *s, spk_loader *ld, spk_probe *p, int *nodes, spk_error *err)
{
    const int K = spk_session_classes(s), N = spk_loader_size(ld);
    p->classes = K;
    p->confusion = calloc((size_t)K * K, sizeof(long));
    p->index = malloc((size_t)N * sizeof(int));
    p->label = malloc((size_t)N * sizeof(int));
    p->pred = malloc((size_t)N * sizeof(int));
    p->counts = malloc((size_t)N * (size_t)K * sizeof(float));
    p->rec_index = malloc((size_t)K * sizeof(int));
    p->rec_pred = malloc((size_t)K * sizeof(int));
    if (!p->confusion || !p->index || !p->label || !p->pred || !p->counts || !p->rec_index ||
        !p->rec_pred)
        return nomem(err);
    for (int c = 0; c < K; c++)
        p->rec_index[c] = p->rec_pred[c] = -1;
    p->n_layers = neuron_nodes(s, nodes, 64);
    p->layers = calloc((size_t)(p->n_layers ? p->n_layers : 1), sizeof *p->layers);
    if (!p->layers)
        return nomem(err);
    p->threshold = NAN;
    p->sample0 = p->label0 = -1;
    return SPK_OK;
}

/* The first batch: every neuron layer's spikes of sample 0, its rate over the batch, and the
 * output layer's membrane. */
static int record_first(spk_session *s, spk_probe *p, const int *nodes, int n, float **buf,
                        size_t *cap, spk_error *err)
{
    for (int l = 0; l < p->n_layers; l++) {
        int steps, feat;
        spk_session_node_info(s, nodes[l], NULL, &steps, &feat, NULL);
        size_t numel = (size_t)steps * (size_t)n * (size_t)feat;
        if (numel > *cap) {
            float *nb = realloc(*buf, numel * sizeof(float));
            if (!nb)
                return nomem(err);
            *buf = nb;
            *cap = numel;
        }
        int rc = spk_session_node_output(s, nodes[l], *buf, *cap, err);
        if (rc)
            return rc;
        spk_probe_layer *pl = &p->layers[l];
        snprintf(pl->name, sizeof pl->name, "%s", spk_session_node_name(s, nodes[l]));
        pl->features = feat;
        if (!(pl->spikes = malloc((size_t)p->T * (size_t)feat * sizeof(float))))
            return nomem(err);
        double sum = 0;
        for (size_t k = 0; k < numel; k++)
            sum += (*buf)[k];
        pl->rate = numel ? sum / (double)numel : 0;
        for (int t = 0; t < p->T; t++) /* a layer constant in time repeats its one step */
            memcpy(pl->spikes + (size_t)t * feat,
                   *buf + (size_t)(steps > 1 ? t : 0) * (size_t)n * (size_t)feat,
                   (size_t)feat * sizeof(float));
    }
    if (!p->n_layers)
        return SPK_OK;
    int out = nodes[p->n_layers - 1], feat = p->out_features;
    double th;
    if (!spk_session_node_param(s, out, "threshold", &th) ||
        !spk_session_node_param(s, out, "v_threshold", &th))
        p->threshold = th;
    size_t numel = (size_t)p->T * (size_t)n * (size_t)feat;
    if (numel > *cap) {
        float *nb = realloc(*buf, numel * sizeof(float));
        if (!nb)
            return nomem(err);
        *buf = nb;
        *cap = numel;
    }
    int mf = 0;
    spk_error e2 = {0};
    if (spk_session_node_state(s, out, "mem", *buf, *cap, &mf, &e2) == SPK_OK && mf == feat) {
        if (!(p->mem = malloc((size_t)p->T * (size_t)feat * sizeof(float))))
            return nomem(err);
        for (int t = 0; t < p->T; t++)
            memcpy(p->mem + (size_t)t * feat, *buf + (size_t)t * (size_t)n * (size_t)feat,
                   (size_t)feat * sizeof(float));
    }
    return SPK_OK;
}

int spk_probe_run(spk_session *s, spk_loader *ld, int T, spk_probe *p, spk_error *err)
{
    memset(p, 0, sizeof *p);
    p->T = T;
    int nodes[64];
    int rc = spk_session_check_data(s, spk_loader_dataset(ld), err);
    if (!rc)
        rc = probe_alloc(s, ld, p, nodes, err);
    const int K = p->classes, B = spk_loader_batch_size(ld);
    float *x = NULL, *ro = NULL, *buf = NULL;
    int32_t *y = NULL;
    uint32_t *ids = NULL;
    size_t cap = 0;
    if (!rc) {
        x = malloc((size_t)B * (size_t)spk_session_input_size(s) * sizeof(float));
        y = malloc((size_t)B * sizeof(int32_t));
        ids = malloc((size_t)B * sizeof(uint32_t));
        ro = malloc((size_t)B * (size_t)K * sizeof(float));
        if (!x || !y || !ids || !ro)
            rc = nomem(err);
    }
    int out_node = -1, out_steps = 1;
    if (!rc && p->n_layers) {
        out_node = nodes[p->n_layers - 1];
        spk_session_node_info(s, out_node, NULL, &out_steps, &p->out_features, NULL);
    }
    spk_loader_start_epoch(ld, 0);
    int n, first = 1;
    while (!rc && (n = spk_loader_next(ld, spk_session_input_scale(s), x, y, ids)) > 0) {
        spk_batch_stats st = {0};
        if ((rc = spk_session_set_sample_ids(s, ids, n, err)) ||
            (rc = spk_session_eval_batch(s, x, y, n, &st, err)) ||
            (rc = spk_session_readout(s, ro, n, err)))
            break;
        p->loss_sum += st.loss_sum;
        p->correct += st.correct;
        int want = 0; /* a class seen here for the first time */
        for (int b = 0; b < n; b++) {
            const float *r = ro + (size_t)b * K;
            int best = 0; /* the first maximum, as the session's accuracy counts it */
            for (int c = 1; c < K; c++)
                if (r[c] > r[best])
                    best = c;
            int i = p->n++;
            p->index[i] = (int)ids[b];
            p->label[i] = y[b];
            p->pred[i] = best;
            memcpy(p->counts + (size_t)i * K, r, (size_t)K * sizeof(float));
            p->confusion[(size_t)y[b] * K + best]++;
            want |= p->rec_index[y[b]] < 0;
        }
        if (first) {
            p->sample0 = (int)ids[0];
            p->label0 = y[0];
            if ((rc = record_first(s, p, nodes, n, &buf, &cap, err)))
                break;
            first = 0;
        }
        if (!want || out_node < 0)
            continue;
        size_t numel = (size_t)out_steps * (size_t)n * (size_t)p->out_features;
        if (numel > cap) {
            float *nb = realloc(buf, numel * sizeof(float));
            if (!nb) {
                rc = nomem(err);
                break;
            }
            buf = nb;
            cap = numel;
        }
        if (!p->rec_out &&
            !(p->rec_out = calloc((size_t)K * p->T * p->out_features, sizeof(float)))) {
            rc = nomem(err);
            break;
        }
        if ((rc = spk_session_node_output(s, out_node, buf, cap, err)))
            break;
        for (int b = 0; b < n; b++) {
            int c = y[b];
            if (p->rec_index[c] >= 0)
                continue;
            p->rec_index[c] = (int)ids[b];
            p->rec_pred[c] = p->pred[p->n - n + b];
            float *dst = p->rec_out + (size_t)c * p->T * p->out_features;
            for (int t = 0; t < p->T; t++)
                memcpy(dst + (size_t)t * p->out_features,
                       buf + ((size_t)(out_steps > 1 ? t : 0) * n + b) * p->out_features,
                       (size_t)p->out_features * sizeof(float));
        }
    }
    free(x);
    free(y);
    free(ids);
    free(ro);
    free(buf);
    if (rc)
        spk_probe_free(p);
    return rc;
}

int spk_probe_write_csv(const spk_probe *p, FILE *f)
{
    fprintf(f, "index,label,prediction");
    for (int c = 0; c < p->classes; c++)
        fprintf(f, ",count_%d", c);
    fputc('\n', f);
    for (int i = 0; i < p->n; i++) {
        fprintf(f, "%d,%d,%d", p->index[i], p->label[i], p->pred[i]);
        for (int c = 0; c < p->classes; c++)
            fprintf(f, ",%.9g", (double)p->counts[(size_t)i * p->classes + c]);
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}
