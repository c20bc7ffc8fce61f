/* A loaded model written back as YAML with every default filled in: what a run folder keeps so
 * that the run can be repeated exactly, whatever the defaults of a later version are. */
#define _XOPEN_SOURCE 700
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "strbuf.h"

/* A double-quoted YAML scalar (escapes backslash, quote and control characters). */
static void put_str(spk_strbuf *b, const char *s)
{
    spk_strbuf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            spk_strbuf_appendf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            spk_strbuf_appendf(b, "\\x%02x", c);
        else
            spk_strbuf_append(b, s, 1);
    }
    spk_strbuf_append(b, "\"", 1);
}

/* A path made absolute, so that the file reads the same from any folder. */
static void put_path(spk_strbuf *b, const char *p)
{
    char cwd[PATH_MAX], *full = p[0] == '/' ? NULL : realpath(p, NULL);
    if (full) {
        put_str(b, full);
        free(full);
        return;
    }
    if (p[0] != '/' && getcwd(cwd, sizeof cwd)) {
        spk_strbuf full_b = SPK_STRBUF_INIT;
        spk_strbuf_appendf(&full_b, "%s/%s", cwd, p);
        char *j = spk_strbuf_finish(&full_b);
        if (!j) {
            b->oom = 1;
            return;
        }
        put_str(b, j);
        free(j);
        return;
    }
    put_str(b, p);
}

/* Floats as the shortest text that reads back to the same float. */
static void put_float(spk_strbuf *b, double x)
{
    char t[48];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, x);
        if ((float)strtod(t, NULL) == (float)x)
            break;
    }
    /* "1" would read as an int where a float is expected: both readers take it, but keep the
     * float visible */
    if (!strpbrk(t, ".eEn"))
        strcat(t, ".0");
    spk_strbuf_appendf(b, "%s", t);
}

static void put_params(spk_strbuf *b, const spk_params *p)
{
    static const char *const sg_names[] = {"fast_sigmoid", "atan", "sigmoid", "triangle"};
    for (int k = 0; k < p->n; k++) {
        const spk_param_spec *s = &p->spec[k];
        const spk_param_value *v = &p->v[k];
        if ((s->type == SPK_PARAM_STRING || s->type == SPK_PARAM_CHOICE) && !v->str)
            continue;
        spk_strbuf_appendf(b, ", %s: ", s->name);
        switch (s->type) {
        case SPK_PARAM_FLOAT:
            put_float(b, v->num);
            break;
        case SPK_PARAM_INT:
            spk_strbuf_appendf(b, "%.0f", v->num);
            break;
        case SPK_PARAM_BOOL:
            spk_strbuf_appendf(b, "%s", v->num != 0 ? "true" : "false");
            break;
        case SPK_PARAM_CHOICE:
            spk_strbuf_appendf(b, "%s", v->str);
            break;
        case SPK_PARAM_STRING:
            put_str(b, v->str);
            break;
        case SPK_PARAM_INIT:
            if (v->init.kind == SPK_INIT_CONSTANT) {
                put_float(b, v->init.a);
            } else {
                spk_strbuf_appendf(b, "{%s: [",
                                   v->init.kind == SPK_INIT_UNIFORM ? "uniform" : "normal");
                put_float(b, v->init.a);
                spk_strbuf_appendf(b, ", ");
                put_float(b, v->init.b);
                spk_strbuf_appendf(b, "]}");
            }
            break;
        case SPK_PARAM_SURROGATE: {
            int kind = v->sg.kind >= 0 && v->sg.kind <= 3 ? v->sg.kind : 0;
            spk_strbuf_appendf(b, "{type: %s, %s: ", sg_names[kind],
                               kind == SPK_SG_ATAN ? "alpha" : "slope");
            put_float(b, v->sg.slope);
            spk_strbuf_appendf(b, "}");
            break;
        }
        }
    }
}

static void put_layer(spk_strbuf *b, const spk_model *m, const spk_layer_def *d, int in_list)
{
    if (in_list)
        spk_strbuf_appendf(b, "  - {name: %s, type: %s", d->name, d->type->name);
    else
        spk_strbuf_appendf(b, "{name: %s, type: %s", d->name, d->type->name);
    if (d->n_from > 0) {
        spk_strbuf_appendf(b, ", from: [");
        for (int k = 0; k < d->n_from; k++)
            spk_strbuf_appendf(b, "%s%s", k ? ", " : "", m->layers[d->from[k]].name);
        spk_strbuf_appendf(b, "]");
    }
    if (d->rate_l1 > 0 || d->rate_weight > 0) {
        spk_strbuf_appendf(b, ", rate_reg: {");
        if (d->rate_l1 > 0) {
            spk_strbuf_appendf(b, "l1: ");
            put_float(b, d->rate_l1);
        }
        if (d->rate_weight > 0) {
            spk_strbuf_appendf(b, "%starget: ", d->rate_l1 > 0 ? ", " : "");
            put_float(b, d->rate_target);
            spk_strbuf_appendf(b, ", weight: ");
            put_float(b, d->rate_weight);
        }
        spk_strbuf_appendf(b, "}");
    }
    put_params(b, &d->params);
    spk_strbuf_appendf(b, "}\n");
}

int spk_model_to_yaml(const spk_model *m, char **out, spk_error *err)
{
    spk_strbuf b = SPK_STRBUF_INIT;
    spk_strbuf_appendf(&b,
                       "# %s with every default written out (spikecl %s): `spikecl train` on "
                       "this file\n# repeats the run.\n",
                       m->name, SPIKECL_VERSION);
    spk_strbuf_appendf(&b, "name: %s\ninput: {shape: [", m->name);
    for (int i = 0; i < m->in_ndim; i++)
        spk_strbuf_appendf(&b, "%s%d", i ? ", " : "", m->in_dims[i]);
    spk_strbuf_appendf(&b, "], scale: ");
    put_float(&b, m->input_scale);
    spk_strbuf_appendf(&b, "}\ntime_steps: %d\nseed: %llu\n", m->time_steps,
                       (unsigned long long)m->seed);
    if (m->n_plugins) {
        spk_strbuf_appendf(&b, "plugins:\n");
        for (int i = 0; i < m->n_plugins; i++) {
            spk_strbuf_appendf(&b, "  - ");
            put_path(&b, m->plugins[i]);
            spk_strbuf_appendf(&b, "\n");
        }
    }
    spk_strbuf_appendf(&b, "layers:\n");
    for (int i = 0; i < m->n_layers; i++)
        put_layer(&b, m, &m->layers[i], 1);
    if (m->readout.type) {
        spk_strbuf_appendf(&b, "readout: ");
        put_layer(&b, m, &m->readout, 0);
    }
    if (m->loss.type) {
        spk_strbuf_appendf(&b, "loss: ");
        put_layer(&b, m, &m->loss, 0);
    }
    const spk_train_config *tc = &m->train;
    spk_strbuf_appendf(&b, "train:\n  batch: %d\n  epochs: %d\n", tc->batch, tc->epochs);
    if (tc->data_format == SPK_DATA_NMNIST && tc->train_images) {
        const spk_frames *f = &tc->frames;
        spk_strbuf_appendf(&b, "  data: {format: nmnist, path: ");
        put_path(&b, tc->train_images);
        if (f->time_window > 0)
            spk_strbuf_appendf(&b, ", time_window: %d", f->time_window);
        spk_strbuf_appendf(&b, ", clip: %s, denoise: %d, downsample: %d}\n",
                           f->clip ? "true" : "false", f->denoise, f->downsample);
        if (tc->test_images) {
            spk_strbuf_appendf(&b, "  test: {format: nmnist, path: ");
            put_path(&b, tc->test_images);
            spk_strbuf_appendf(&b, "}\n");
        }
    } else {
        const char *key[2] = {"data", "test"};
        const char *img[2] = {tc->train_images, tc->test_images};
        const char *lbl[2] = {tc->train_labels, tc->test_labels};
        for (int k = 0; k < 2; k++) {
            if (!img[k] || !lbl[k])
                continue;
            spk_strbuf_appendf(&b, "  %s: {format: idx, images: ", key[k]);
            put_path(&b, img[k]);
            spk_strbuf_appendf(&b, ", labels: ");
            put_path(&b, lbl[k]);
            spk_strbuf_appendf(&b, "}\n");
        }
    }
    const spk_optim_config *o = &tc->optim;
    static const char *const kinds[] = {"sgd", "adam", "adamw"};
    spk_strbuf_appendf(&b, "  optimizer: {type: %s, lr: ", kinds[o->kind]);
    put_float(&b, o->lr);
    if (o->kind == SPK_OPTIM_SGD) {
        spk_strbuf_appendf(&b, ", momentum: ");
        put_float(&b, o->momentum);
        spk_strbuf_appendf(&b, ", nesterov: %s", o->nesterov ? "true" : "false");
    } else {
        spk_strbuf_appendf(&b, ", betas: [");
        put_float(&b, o->beta1);
        spk_strbuf_appendf(&b, ", ");
        put_float(&b, o->beta2);
        spk_strbuf_appendf(&b, "], eps: ");
        put_float(&b, o->eps);
    }
    spk_strbuf_appendf(&b, ", weight_decay: ");
    put_float(&b, o->weight_decay);
    spk_strbuf_appendf(&b, ", clip_norm: ");
    put_float(&b, o->clip_norm);
    spk_strbuf_appendf(
        &b, ", schedule: %s, min_lr: ", o->schedule == SPK_LR_COSINE ? "cosine" : "constant");
    put_float(&b, o->min_lr);
    spk_strbuf_appendf(&b, "}\n");
    *out = spk_strbuf_finish(&b);
    if (!*out)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory writing the model as YAML");
    return SPK_OK;
}
