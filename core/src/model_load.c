/* spikecl — the model schema: the keys of a model file and what each holds. The typed reading
 * and its messages ("file:line:col: context: expected ..., got ...") are yaml_read.c's; layer
 * parameters are read against the type's table by params.c. */
#define _POSIX_C_SOURCE 200809L

#include "model.h"
#include "params.h"
#include "plugin_load.h"
#include "registry.h"
#include "yaml_read.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- layers ---- */

void spk_layer_def_clear(spk_layer_def *d)
{
    if (!d)
        return;
    free(d->name);
    spk_params_clear(&d->params);
    memset(d, 0, sizeof *d);
}

static const char *spk_kind_text(int kind)
{
    switch (kind) {
    case SPK_KIND_ENCODER:
        return "an encoder";
    case SPK_KIND_SYNAPSE:
        return "a synapse";
    case SPK_KIND_NEURON:
        return "a neuron";
    case SPK_KIND_READOUT:
        return "a readout";
    case SPK_KIND_LOSS:
        return "a loss";
    }
    return "an 'other'";
}

/* Layer names become weight names ("fc1.weight") and file keys: keep them to one plain word. */
static int spk_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SPK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* A model's name: a layer name that may also hold dots, but never "..", nor start with one. */
static int spk_model_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= SPK_NAME_MAX || s[0] == '.' || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

/* The "name" of a layer mapping as written (NULL when it has none), without checks. */
static const char *spk_raw_layer_name(spk_ld *ld, yaml_node_t *seq, int j)
{
    yaml_node_t *n = spk_ld_node(ld, seq->data.sequence.items.start[j]);
    if (!n || n->type != YAML_MAPPING_NODE)
        return NULL;
    yaml_node_t *v = spk_ld_get(ld, n, "name");
    return spk_is_scalar(v) ? spk_text(v) : NULL;
}

/* The definition already called `name` among the first n_prev layers, readout and loss. */
static const spk_layer_def *spk_name_taken(const spk_model *m, int n_prev, const char *name)
{
    const spk_layer_def *heads[2] = {&m->readout, &m->loss};
    for (int j = 0; j < n_prev + 2; j++) {
        const spk_layer_def *o = j < n_prev ? &m->layers[j] : heads[j - n_prev];
        if (o->name && !strcmp(o->name, name))
            return o;
    }
    return NULL;
}

static int spk_ld_name(spk_ld *ld, yaml_node_t *n, const spk_model *m, int n_prev, char **out)
{
    char fb[96];
    if (!spk_is_scalar(n) || !spk_name_ok(spk_text(n)))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                           "'name' must be a word of letters, digits, '_' and '-' (at most %d "
                           "characters), got %s",
                           SPK_NAME_MAX - 1, spk_found(n, fb, sizeof fb));
    const char *name = spk_text(n);
    const spk_layer_def *o = spk_name_taken(m, n_prev, name);
    if (o)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                           "duplicate layer name '%s' (first used at %d:%d)", name, o->line,
                           o->col);
    *out = strdup(name);
    return *out ? SPK_OK : spk_ld_nomem(ld);
}

/* Looks the type up in the registry and checks that it fits where it is written. */
static int spk_ld_type(spk_ld *ld, yaml_node_t *map, int want_kind, const spk_layer_type **out)
{
    char fb[96];
    yaml_node_t *n = spk_ld_get(ld, map, "type");
    if (!n)
        return spk_ld_fail(ld, map, SPK_ERR_INVALID, "missing required key 'type'");
    if (!spk_is_scalar(n) || spk_is_null(n))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'type' must be a layer type name, got %s",
                           spk_found(n, fb, sizeof fb));
    const char *name = spk_text(n);
    const spk_registry *reg = spk_registry_default();
    const spk_layer_type *t = reg ? spk_registry_find(reg, name) : NULL;
    if (!t) {
        spk_sugg sg;
        spk_sugg_init(&sg, name);
        int count = reg ? spk_registry_count(reg) : 0;
        for (int i = 0; i < count; i++) {
            const char *src = NULL;
            const spk_layer_type *o = spk_registry_get(reg, i, &src);
            if (o && o->name)
                spk_sugg_try(&sg, o->name, strlen(o->name));
        }
        /* a library the search path skipped may be the one that was meant */
        spk_error perr;
        spk_error_clear(&perr);
        int skipped = spk_plugin_load_path_env_once(&perr) != SPK_OK;
        return spk_ld_fail(ld, n, SPK_ERR_NOTFOUND, "unknown layer type '%s'%s%s%s%s", name,
                           spk_sugg_text(&sg), skipped ? " (skipped: " : "",
                           skipped ? perr.msg : "", skipped ? ")" : "");
    }
    if (want_kind < 0 && (t->kind == SPK_KIND_READOUT || t->kind == SPK_KIND_LOSS))
        return spk_ld_fail(
            ld, n, SPK_ERR_INVALID, "type '%s' is %s type; it belongs under '%s:', not in 'layers'",
            name, spk_kind_text(t->kind), t->kind == SPK_KIND_READOUT ? "readout" : "loss");
    if (want_kind >= 0 && t->kind != want_kind)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "type '%s' is %s type, expected %s type", name,
                           spk_kind_text(t->kind), spk_kind_text(want_kind));
    *out = t;
    return SPK_OK;
}

/* `from:` names 1..4 earlier layers. */
static int spk_ld_from(spk_ld *ld, yaml_node_t *n, spk_model *m, yaml_node_t *seq, int idx,
                       spk_layer_def *d)
{
    char fb[96];
    yaml_node_t *items[SPK_MAX_INPUTS];
    int k = 0;
    if (spk_is_scalar(n) && !spk_is_null(n)) {
        items[k++] = n;
    } else if (n->type == YAML_SEQUENCE_NODE) {
        long len = (long)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (len < 1 || len > SPK_MAX_INPUTS)
            return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                               "'from' must be a layer name or a list of 1 to %d names, got %s",
                               SPK_MAX_INPUTS, spk_found(n, fb, sizeof fb));
        for (; k < len; k++)
            items[k] = spk_ld_node(ld, n->data.sequence.items.start[k]);
    } else {
        return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                           "'from' must be a layer name or a list of 1 to %d names, got %s",
                           SPK_MAX_INPUTS, spk_found(n, fb, sizeof fb));
    }
    for (int i = 0; i < k; i++) {
        yaml_node_t *e = items[i];
        if (!spk_is_scalar(e) || spk_is_null(e))
            return spk_ld_fail(ld, e, SPK_ERR_INVALID, "'from' entries must be layer names, got %s",
                               spk_found(e, fb, sizeof fb));
        const char *name = spk_text(e);
        int found = -1;
        for (int j = 0; j < idx && found < 0; j++)
            if (!strcmp(m->layers[j].name, name))
                found = j;
        if (found < 0) {
            if (!strcmp(name, d->name))
                return spk_ld_fail(ld, e, SPK_ERR_INVALID,
                                   "'from' names the layer itself; it must name earlier layers");
            int total = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
            for (int j = idx + 1; j < total; j++) {
                const char *later = spk_raw_layer_name(ld, seq, j);
                if (later && !strcmp(later, name))
                    return spk_ld_fail(ld, e, SPK_ERR_INVALID,
                                       "'from' names '%s', which comes later (layer #%d); a layer "
                                       "takes input only from layers above it",
                                       name, j + 1);
            }
            spk_sugg sg;
            spk_sugg_init(&sg, name);
            for (int j = 0; j < idx; j++)
                spk_sugg_try(&sg, m->layers[j].name, strlen(m->layers[j].name));
            return spk_ld_fail(ld, e, SPK_ERR_INVALID, "'from' names unknown layer '%s'%s", name,
                               spk_sugg_text(&sg));
        }
        /* resolved once here: the session wires inputs by index */
        d->from[i] = found;
        d->n_from = i + 1;
    }
    return SPK_OK;
}

/* `rate_reg: {l1: x, target: r, weight: w}` on a neuron layer: a spike-rate regulariser the
 * core applies (session.c), so every neuron type has it without code of its own. */
static int spk_ld_rate_reg(spk_ld *ld, yaml_node_t *n, spk_layer_def *d)
{
    static const char *const keys[] = {"l1", "target", "weight", NULL};
    int rc;
    double v;
    if ((rc = spk_ld_map(ld, n, "a mapping {l1: x} or {target: rate, weight: w}")) ||
        (rc = spk_ld_keys(ld, n, keys)))
        return rc;
    yaml_node_t *e;
    if ((e = spk_ld_get(ld, n, "l1"))) {
        if ((rc = spk_ld_float(ld, e, "l1", 0, 0, 3.4e38, 0, &v)))
            return rc;
        d->rate_l1 = (float)v;
    }
    yaml_node_t *t = spk_ld_get(ld, n, "target"), *w = spk_ld_get(ld, n, "weight");
    if (w && !t)
        return spk_ld_fail(ld, w, SPK_ERR_INVALID, "'weight' needs a 'target' rate");
    if (t) {
        if ((rc = spk_ld_float(ld, t, "target", 0, 0, 1, 0, &v)))
            return rc;
        d->rate_target = (float)v;
        d->rate_weight = 1.0f;
        if (w) {
            if ((rc = spk_ld_float(ld, w, "weight", 0, 0, 3.4e38, 0, &v)))
                return rc;
            d->rate_weight = (float)v;
        }
    }
    return SPK_OK;
}

static int spk_ld_layer(spk_ld *ld, spk_model *m, yaml_node_t *seq, int idx)
{
    static const char *const extra[] = {"name", "type", "from", NULL};
    static const char *const neuron_extra[] = {"name", "type", "from", "rate_reg", NULL};
    spk_layer_def *d = &m->layers[idx];
    yaml_node_t *n = spk_ld_node(ld, seq->data.sequence.items.start[idx]);
    int rc;
    spk_ld_ctx(ld, "layer #%d: ", idx + 1);
    if ((rc = spk_ld_map(ld, n, "a layer mapping {name: ..., type: ..., ...}")))
        return rc;
    d->line = (int)n->start_mark.line + 1;
    d->col = (int)n->start_mark.column + 1;
    yaml_node_t *name = spk_ld_get(ld, n, "name");
    if (!name)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "missing required key 'name'");
    if ((rc = spk_ld_name(ld, name, m, idx, &d->name)))
        return rc;
    spk_ld_ctx(ld, "layer '%s': ", d->name);
    if ((rc = spk_ld_type(ld, n, -1, &d->type)))
        return rc;
    spk_ld_ctx(ld, "layer '%s' (%s): ", d->name, d->type->name);
    yaml_node_t *from = spk_ld_get(ld, n, "from");
    if (from && (rc = spk_ld_from(ld, from, m, seq, idx, d)))
        return rc;
    int neuron = d->type->kind == SPK_KIND_NEURON;
    yaml_node_t *rr = spk_ld_get(ld, n, "rate_reg");
    if (rr && !neuron)
        return spk_ld_fail(ld, spk_ld_key_node(ld, n, "rate_reg"), SPK_ERR_INVALID,
                           "'rate_reg' applies to neuron layers only");
    if (rr) {
        spk_ld_ctx(ld, "layer '%s' (%s): rate_reg: ", d->name, d->type->name);
        if ((rc = spk_ld_rate_reg(ld, rr, d)))
            return rc;
        spk_ld_ctx(ld, "layer '%s' (%s): ", d->name, d->type->name);
    }
    return spk_ld_params(ld, n, d->type, spk_registry_defaults(spk_registry_default(), d->type),
                         neuron ? neuron_extra : extra, &d->params);
}

/* `readout:` and `loss:`: a type of the given kind, its parameters, an optional name. */
static int spk_ld_head(spk_ld *ld, spk_model *m, yaml_node_t *n, const char *key, int kind,
                       spk_layer_def *d)
{
    static const char *const extra[] = {"name", "type", NULL};
    int rc;
    spk_ld_ctx(ld, "%s: ", key);
    if ((rc = spk_ld_map(ld, n, "a mapping {type: ..., <parameters>}")))
        return rc;
    d->line = (int)n->start_mark.line + 1;
    d->col = (int)n->start_mark.column + 1;
    yaml_node_t *name = spk_ld_get(ld, n, "name");
    if (name) {
        if ((rc = spk_ld_name(ld, name, m, m->n_layers, &d->name)))
            return rc;
    } else {
        /* the default name may still collide with another's */
        const spk_layer_def *o = spk_name_taken(m, m->n_layers, key);
        if (o)
            return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                               "the default name '%s' is already used at %d:%d; give this one a "
                               "'name'",
                               key, o->line, o->col);
        if (!(d->name = strdup(key)))
            return spk_ld_nomem(ld);
    }
    const spk_layer_type *t = NULL;
    if ((rc = spk_ld_type(ld, n, kind, &t)))
        return rc;
    spk_ld_ctx(ld, "%s (%s): ", key, t->name);
    if ((rc = spk_ld_params(ld, n, t, spk_registry_defaults(spk_registry_default(), t), extra,
                            &d->params)))
        return rc;
    d->type = t;
    return SPK_OK;
}

/* ---- input, train, plugins ---- */

/* `input: shape:` a list of 1..SPK_MAX_DIMS sizes whose product fits an int. */
static int spk_ld_shape(spk_ld *ld, yaml_node_t *shape, void *obj)
{
    spk_model *m = obj;
    char fb[96];
    long len = shape->type == YAML_SEQUENCE_NODE
                   ? (long)(shape->data.sequence.items.top - shape->data.sequence.items.start)
                   : 0;
    if (len < 1 || len > SPK_MAX_DIMS)
        return spk_ld_fail(ld, shape, SPK_ERR_INVALID,
                           "'shape' must be a list of 1 to %d integers >= 1, e.g. [1, 28, 28], "
                           "got %s",
                           SPK_MAX_DIMS, spk_found(shape, fb, sizeof fb));
    long long total = 1;
    for (long i = 0; i < len; i++) {
        yaml_node_t *e = spk_ld_node(ld, shape->data.sequence.items.start[i]);
        long long v;
        if (!spk_node_ll(e, &v) || v < 1 || v > INT_MAX)
            return spk_ld_fail(ld, e, SPK_ERR_INVALID,
                               "'shape' entries must be integers >= 1, got %s",
                               spk_found(e, fb, sizeof fb));
        total *= v;
        if (total > INT_MAX)
            return spk_ld_fail(ld, shape, SPK_ERR_INVALID,
                               "'shape' has more than %d values per sample", INT_MAX);
        m->in_dims[i] = (int)v;
    }
    m->in_ndim = (int)len;
    return SPK_OK;
}

#define SPK_NO_MAX 3.4e38 /* floats: no upper bound beyond what a float holds */

static const spk_field spk_input_fields[] = {
    SPK_F_CUSTOM("shape", 1, spk_ld_shape),
    SPK_F_FLOAT("scale", spk_model, input_scale, 0, 1, SPK_NO_MAX, 0, 1.0),
    SPK_F_END,
};

static int spk_ld_input(spk_ld *ld, spk_model *m, yaml_node_t *n)
{
    spk_ld_ctx(ld, "input: ");
    return spk_ld_fields(ld, n, "a mapping {shape: [...], scale: x}", spk_input_fields, m);
}

/* A dataset entry of `train:` (data, test): {format: idx, images, labels} or {format: nmnist,
 * path, <frame keys>}; the frame keys go under train.data only: the test set is framed the same
 * way. */
static int spk_ld_dataset(spk_ld *ld, spk_model *m, yaml_node_t *n, const char *key)
{
    static const char *const idx_keys[] = {"format", "images", "labels", NULL};
    static const char *const ev_keys[] = {"format",  "path",       "time_window", "clip",
                                          "denoise", "downsample", NULL};
    static const char *const frame_keys[] = {"time_window", "clip", "denoise", "downsample", NULL};
    spk_train_config *tc = &m->train;
    const int is_test = strcmp(key, "test") == 0;
    int rc, fmt = SPK_DATA_IDX;
    spk_ld_ctx(ld, "train.%s: ", key);
    if ((rc = spk_ld_map(ld, n,
                         "a mapping {format: idx, images: path, labels: path} or {format: "
                         "nmnist, path: folder, ...}")))
        return rc;
    yaml_node_t *f = spk_ld_get(ld, n, "format");
    if (f && (rc = spk_ld_choice(ld, f, "format", "idx|nmnist", &fmt)))
        return rc;
    if (is_test && tc->train_images && fmt != tc->data_format)
        return spk_ld_fail(ld, f ? f : n, SPK_ERR_INVALID, "format %s differs from train.data's %s",
                           fmt == SPK_DATA_NMNIST ? "nmnist" : "idx",
                           tc->data_format == SPK_DATA_NMNIST ? "nmnist" : "idx");
    tc->data_format = fmt;
    if ((rc = spk_ld_keys(ld, n, fmt == SPK_DATA_NMNIST ? ev_keys : idx_keys)))
        return rc;
    if (fmt == SPK_DATA_NMNIST) {
        yaml_node_t *pn = spk_ld_get(ld, n, "path"), *x;
        if (!pn)
            return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                               "missing required key 'path' (the folder holding Train/ and Test/)");
        if (is_test) {
            for (int i = 0; frame_keys[i]; i++)
                if ((x = spk_ld_key_node(ld, n, frame_keys[i])))
                    return spk_ld_fail(ld, x, SPK_ERR_INVALID,
                                       "'%s' belongs under train.data: the test set is made "
                                       "into frames the same way",
                                       frame_keys[i]);
            if (!tc->train_images) /* no train.data: default frames */
                tc->frames = (spk_frames){.time_steps = m->time_steps, .downsample = 1};
            return spk_ld_path(ld, pn, "path", &tc->test_images);
        }
        spk_frames *fr = &tc->frames;
        long long v;
        *fr = (spk_frames){.time_steps = m->time_steps, .downsample = 1};
        if ((x = spk_ld_get(ld, n, "time_window"))) {
            if ((rc = spk_ld_int(ld, x, "time_window", 1, INT_MAX, &v)))
                return rc;
            fr->time_window = (int)v;
        }
        if ((x = spk_ld_get(ld, n, "clip")) && (rc = spk_ld_bool(ld, x, "clip", &fr->clip)))
            return rc;
        if ((x = spk_ld_get(ld, n, "denoise"))) {
            if ((rc = spk_ld_int(ld, x, "denoise", 0, INT_MAX, &v)))
                return rc;
            fr->denoise = (int)v;
        }
        if ((x = spk_ld_get(ld, n, "downsample"))) {
            if ((rc = spk_ld_int(ld, x, "downsample", 1, 34, &v)))
                return rc;
            fr->downsample = (int)v;
        }
        /* the frames are [2, ceil(34/d), ceil(34/d)]: say so here rather than at the first batch */
        int side = (34 + fr->downsample - 1) / fr->downsample;
        if (m->in_ndim != 3 || m->in_dims[0] != 2 || m->in_dims[1] != side || m->in_dims[2] != side)
            return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                               "format nmnist makes frames of shape [2, %d, %d] (polarity, 34x34 "
                               "sensor / downsample %d); 'input.shape' must be that",
                               side, side, fr->downsample);
        if ((rc = spk_ld_path(ld, pn, "path", &tc->train_images)))
            return rc;
        /* the Test split of the same folder unless test: names another */
        if (!tc->test_images && !(tc->test_images = strdup(tc->train_images)))
            return spk_ld_nomem(ld);
        return SPK_OK;
    }
    char **images = is_test ? &tc->test_images : &tc->train_images;
    char **labels = is_test ? &tc->test_labels : &tc->train_labels;
    yaml_node_t *im = spk_ld_get(ld, n, "images"), *lb = spk_ld_get(ld, n, "labels");
    if (!im)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "missing required key 'images'");
    if (!lb)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "missing required key 'labels'");
    if ((rc = spk_ld_path(ld, im, "images", images)) ||
        (rc = spk_ld_path(ld, lb, "labels", labels)))
        return rc;
    return SPK_OK;
}

/* The table reader hands custom rows the section's struct: train: is the model's `train`. */
static spk_model *spk_model_of_train(void *obj)
{
    return (spk_model *)((char *)obj - offsetof(spk_model, train));
}

static int spk_ld_train_data(spk_ld *ld, yaml_node_t *n, void *obj)
{
    return spk_ld_dataset(ld, spk_model_of_train(obj), n, "data");
}

static int spk_ld_test_data(spk_ld *ld, yaml_node_t *n, void *obj)
{
    return spk_ld_dataset(ld, spk_model_of_train(obj), n, "test");
}

static int spk_nesterov_check(spk_ld *ld, yaml_node_t *n, void *obj)
{
    const spk_optim_config *o = obj;
    if (o->nesterov && !(o->momentum > 0))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'nesterov' needs a 'momentum' > 0");
    return SPK_OK;
}

/* `train: optimizer:`; `type` is read first, as it decides which keys apply and one default.
 * Rows: key, field, bounds (lo, lo excluded, hi, hi excluded), default. */
static const spk_field spk_optim_fields[] = {
    SPK_F_CHOICE("type", spk_optim_config, kind, "sgd|adam|adamw", SPK_OPTIM_ADAM),
    SPK_F_FLOAT("lr", spk_optim_config, lr, 0, 1, SPK_NO_MAX, 0, 1e-3),
    SPK_F_FLOAT("momentum", spk_optim_config, momentum, 0, 0, 1, 1, 0),
    SPK_F_BOOL("nesterov", spk_optim_config, nesterov, 0, spk_nesterov_check),
    SPK_F_FLOAT2("betas", spk_optim_config, beta1, 0, 0, 1, 1, 0.9, 0.999),
    SPK_F_FLOAT("eps", spk_optim_config, eps, 0, 1, SPK_NO_MAX, 0, 1e-8),
    SPK_F_FLOAT("weight_decay", spk_optim_config, weight_decay, 0, 0, SPK_NO_MAX, 0, 0),
    SPK_F_FLOAT("clip_norm", spk_optim_config, clip_norm, 0, 0, SPK_NO_MAX, 0, 0),
    SPK_F_CHOICE("schedule", spk_optim_config, schedule, "constant|cosine", SPK_LR_CONSTANT),
    SPK_F_FLOAT("min_lr", spk_optim_config, min_lr, 0, 0, SPK_NO_MAX, 0, 0),
    SPK_F_END,
};

static void spk_optim_defaults(spk_optim_config *o, int kind)
{
    spk_fields_defaults(spk_optim_fields, o);
    o->kind = kind;
    /* the one default that depends on the type: AdamW decays by default, the others do not */
    if (kind == SPK_OPTIM_ADAMW)
        o->weight_decay = 0.01f;
}

static int spk_ld_optim(spk_ld *ld, yaml_node_t *n, void *obj)
{
    spk_optim_config *o = &((spk_train_config *)obj)->optim;
    static const char *const kind_names[] = {"sgd", "adam", "adamw"};
    int rc, kind = SPK_OPTIM_ADAM;
    spk_ld_ctx(ld, "train.optimizer: ");
    if ((rc = spk_ld_map(ld, n, "a mapping {type: sgd|adam|adamw, lr: x, ...}")) ||
        (rc = spk_ld_fields_keys(ld, n, spk_optim_fields)))
        return rc;
    yaml_node_t *t = spk_ld_get(ld, n, "type");
    if (t && (rc = spk_ld_choice(ld, t, "type", spk_optim_fields[0].choices, &kind)))
        return rc;
    spk_optim_defaults(o, kind);
    /* a key another optimizer uses is almost surely a mistake: say so rather than ignore it */
    static const char *const sgd_only[] = {"momentum", "nesterov", NULL};
    static const char *const adam_only[] = {"betas", "eps", NULL};
    const char *const *foreign = kind == SPK_OPTIM_SGD ? adam_only : sgd_only;
    for (int i = 0; foreign[i]; i++) {
        yaml_node_t *k = spk_ld_key_node(ld, n, foreign[i]);
        if (k)
            return spk_ld_fail(ld, k, SPK_ERR_INVALID, "'%s' applies to %s, not to type %s",
                               foreign[i], kind == SPK_OPTIM_SGD ? "adam and adamw" : "sgd",
                               kind_names[kind]);
    }
    /* the rest of the table, after `type` */
    return spk_ld_fields_read(ld, n, spk_optim_fields + 1, o);
}

/* Read in this order, as before the table: the counts, then the datasets, then the optimizer. */
static const spk_field spk_train_fields[] = {
    SPK_F_INT("batch", spk_train_config, batch, 1, INT_MAX, 128),
    SPK_F_INT("epochs", spk_train_config, epochs, 1, INT_MAX, 1),
    SPK_F_CUSTOM("data", 0, spk_ld_train_data),
    SPK_F_CUSTOM("test", 0, spk_ld_test_data),
    SPK_F_CUSTOM("optimizer", 0, spk_ld_optim),
    SPK_F_END,
};

static int spk_ld_train(spk_ld *ld, spk_model *m, yaml_node_t *n)
{
    spk_ld_ctx(ld, "train: ");
    return spk_ld_fields(ld, n, "a mapping {data: ..., batch: n, optimizer: ...}", spk_train_fields,
                         &m->train);
}

/* Loads each library of `plugins:` as it is read: the layer types they add must be known before
 * `layers:` is checked. A failure is reported at the entry that names the library. */
static int spk_ld_plugins(spk_ld *ld, spk_model *m, yaml_node_t *n)
{
    char fb[96];
    int rc;
    spk_ld_ctx(ld, "%s", "");
    if (n->type != YAML_SEQUENCE_NODE)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'plugins' must be a list of paths, got %s",
                           spk_found(n, fb, sizeof fb));
    long len = (long)(n->data.sequence.items.top - n->data.sequence.items.start);
    m->plugins = calloc(len > 0 ? (size_t)len : 1, sizeof *m->plugins);
    if (!m->plugins)
        return spk_ld_nomem(ld);
    for (long i = 0; i < len; i++) {
        yaml_node_t *e = spk_ld_node(ld, n->data.sequence.items.start[i]);
        if ((rc = spk_ld_path(ld, e, "plugins", &m->plugins[i])))
            return rc;
        m->n_plugins = (int)i + 1;
        spk_error perr;
        spk_error_clear(&perr);
        if ((rc = spk_plugin_load(m->plugins[i], &perr))) {
            spk_ld_ctx(ld, "plugins: ");
            return spk_ld_fail(ld, e, rc, "%s", perr.msg);
        }
    }
    return SPK_OK;
}

/* ---- the model ---- */

static int spk_ld_model(spk_ld *ld, spk_model *m, yaml_node_t *root)
{
    static const char *const keys[] = {"name",    "input", "time_steps", "seed",    "layers",
                                       "readout", "loss",  "train",      "plugins", NULL};
    char fb[96];
    long long v;
    int rc;
    spk_ld_ctx(ld, "%s", "");
    if (!root)
        return spk_ld_fail_at(ld, 1, 1, SPK_ERR_INVALID,
                              "the file is empty; expected a mapping with 'input', 'time_steps' "
                              "and 'layers'");
    if ((rc = spk_ld_map(ld, root,
                         "a mapping of model keys (name, input, time_steps, layers, ...)")) ||
        (rc = spk_ld_keys(ld, root, keys)))
        return rc;
    static const char *const required[] = {"input", "time_steps", "layers", NULL};
    for (int i = 0; required[i]; i++)
        if (!spk_ld_get(ld, root, required[i]))
            return spk_ld_fail(ld, root, SPK_ERR_INVALID, "missing required key '%s'", required[i]);

    yaml_node_t *x;
    if ((x = spk_ld_get(ld, root, "name"))) {
        /* the default output folder is runs/NAME: no '/', '..', quotes or control characters */
        if (!spk_is_scalar(x) || !spk_model_name_ok(spk_text(x)))
            return spk_ld_fail(ld, x, SPK_ERR_INVALID,
                               "'name' must be a word of letters, digits, '_', '-' and '.' (not "
                               "starting with '.', no '..', at most %d characters), got %s",
                               SPK_NAME_MAX - 1, spk_found(x, fb, sizeof fb));
        free(m->name);
        if (!(m->name = strdup(spk_text(x))))
            return spk_ld_nomem(ld);
    }
    if ((rc = spk_ld_input(ld, m, spk_ld_get(ld, root, "input"))))
        return rc;
    spk_ld_ctx(ld, "%s", "");
    if ((rc = spk_ld_int(ld, spk_ld_get(ld, root, "time_steps"), "time_steps", 1, INT_MAX, &v)))
        return rc;
    m->time_steps = (int)v;
    if ((x = spk_ld_get(ld, root, "seed"))) {
        /* seeds are 64-bit: read them unsigned */
        const char *t = spk_is_plain(x) ? spk_text(x) : "";
        char *end;
        errno = 0;
        unsigned long long s = isdigit((unsigned char)t[0]) ? strtoull(t, &end, 10) : 0;
        if (!isdigit((unsigned char)t[0]) || *end || errno == ERANGE)
            return spk_ld_fail(ld, x, SPK_ERR_INVALID,
                               "'seed' must be an integer >= 0 (64-bit), got %s",
                               spk_found(x, fb, sizeof fb));
        m->seed = (uint64_t)s;
    }

    /* types come from the built-ins, $SPIKECL_PLUGIN_PATH and `plugins:`: load the last two
     * before any layer names its type */
    /* a bad library on the search path is skipped (spk_plugin_load_path_env_once reports it;
     * the CLI prints it as a warning); only a type the model needs from it fails the load */
    spk_error perr;
    spk_error_clear(&perr);
    (void)spk_plugin_load_path_env_once(&perr);
    if ((x = spk_ld_get(ld, root, "plugins")) && (rc = spk_ld_plugins(ld, m, x)))
        return rc;
    spk_ld_ctx(ld, "%s", "");

    yaml_node_t *layers = spk_ld_get(ld, root, "layers");
    long n_layers =
        layers->type == YAML_SEQUENCE_NODE
            ? (long)(layers->data.sequence.items.top - layers->data.sequence.items.start)
            : 0;
    if (n_layers < 1)
        return spk_ld_fail(ld, layers, SPK_ERR_INVALID,
                           "'layers' must be a non-empty list of layer mappings, got %s",
                           spk_found(layers, fb, sizeof fb));
    if (n_layers > INT_MAX / 2)
        return spk_ld_fail(ld, layers, SPK_ERR_INVALID, "'layers' is too long");
    m->layers = calloc((size_t)n_layers, sizeof *m->layers);
    if (!m->layers)
        return spk_ld_nomem(ld);
    for (int i = 0; i < n_layers; i++) {
        m->n_layers = i + 1; /* so that a failure frees what this layer holds */
        if ((rc = spk_ld_layer(ld, m, layers, i)))
            return rc;
    }
    if ((x = spk_ld_get(ld, root, "readout")) &&
        (rc = spk_ld_head(ld, m, x, "readout", SPK_KIND_READOUT, &m->readout)))
        return rc;
    if ((x = spk_ld_get(ld, root, "loss")) &&
        (rc = spk_ld_head(ld, m, x, "loss", SPK_KIND_LOSS, &m->loss)))
        return rc;
    if ((x = spk_ld_get(ld, root, "train")) && (rc = spk_ld_train(ld, m, x)))
        return rc;
    return SPK_OK;
}

/* "models/fmnist_lif_mlp.yaml" -> "fmnist_lif_mlp": the default model name. */
static char *spk_base_name(const char *file)
{
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    const char *dot = strrchr(b, '.');
    size_t len = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    if (len == 0)
        return strdup("model");
    if (len >= SPK_NAME_MAX)
        len = SPK_NAME_MAX - 1;
    char *name = strndup(b, len);
    /* the same rule as a written name: anything else becomes '_' */
    for (size_t i = 0; name && i < len; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            name[i] = '_';
    return name;
}

static char *spk_dir_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static int spk_model_parse(const char *text, size_t len, const char *file, int resolve,
                           spk_model **out, spk_error *err)
{
    int rc;
    spk_model *m = calloc(1, sizeof *m);
    if (!m)
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", file);
    m->path = strdup(file);
    m->dir = resolve ? spk_dir_name(file) : strdup(".");
    m->name = spk_base_name(file);
    m->seed = 1;
    spk_fields_defaults(spk_input_fields, m);
    spk_fields_defaults(spk_train_fields, &m->train);
    spk_optim_defaults(&m->train.optim, SPK_OPTIM_ADAM);
    if (!m->path || !m->dir || !m->name) {
        spk_model_free(m);
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", file);
    }

    yaml_parser_t parser;
    yaml_document_t doc, extra;
    if (!yaml_parser_initialize(&parser)) {
        spk_model_free(m);
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", file);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = spk_syntax_error(&parser, file, text, len, err);
        yaml_parser_delete(&parser);
        spk_model_free(m);
        return rc;
    }
    spk_ld ld = {.file = file, .dir = resolve ? m->dir : NULL, .doc = &doc, .err = err};
    rc = spk_ld_model(&ld, m, yaml_document_get_root_node(&doc));
    if (rc == SPK_OK) {
        /* a second document would be silently ignored: refuse it, and catch syntax errors in
         * whatever follows the first */
        if (!yaml_parser_load(&parser, &extra)) {
            rc = spk_syntax_error(&parser, file, text, len, err);
        } else {
            if (yaml_document_get_root_node(&extra))
                rc = spk_error_set(
                    err, SPK_ERR_PARSE, "%s:%d:%d: expected one YAML document, found a second one",
                    file, (int)extra.start_mark.line + 1, (int)extra.start_mark.column + 1);
            yaml_document_delete(&extra);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc) {
        spk_model_free(m);
        return rc;
    }
    *out = m;
    return SPK_OK;
}

int spk_model_load(const char *path, spk_model **out, spk_error *err)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_model_load: path and out are required");
    FILE *f = fopen(path, "rb");
    if (!f)
        return spk_error_set(err, SPK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = SPK_OK;
    while (buf) {
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f))
                rc = spk_error_set(err, SPK_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
        if (len == cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", path);
    if (rc == SPK_OK)
        rc = spk_model_parse(buf, len, path, 1, out, err);
    free(buf);
    return rc;
}

int spk_model_load_string(const char *yaml, const char *name, spk_model **out, spk_error *err)
{
    if (out)
        *out = NULL;
    if (!yaml || !out)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "spk_model_load_string: yaml and out are required");
    return spk_model_parse(yaml, strlen(yaml), name && *name ? name : "<string>", 0, out, err);
}

void spk_model_free(spk_model *m)
{
    if (!m)
        return;
    free(m->path);
    free(m->dir);
    free(m->name);
    for (int i = 0; m->layers && i < m->n_layers; i++)
        spk_layer_def_clear(&m->layers[i]);
    free(m->layers);
    spk_layer_def_clear(&m->readout);
    spk_layer_def_clear(&m->loss);
    free(m->train.train_images);
    free(m->train.train_labels);
    free(m->train.test_images);
    free(m->train.test_labels);
    for (int i = 0; m->plugins && i < m->n_plugins; i++)
        free(m->plugins[i]);
    free(m->plugins);
    free(m);
}

const char *spk_model_name(const spk_model *m)
{
    return m ? m->name : NULL;
}

int spk_model_time_steps(const spk_model *m)
{
    return m ? m->time_steps : 0;
}

spk_train_config *spk_model_train_config(spk_model *m)
{
    return m ? &m->train : NULL;
}

uint64_t spk_model_seed(const spk_model *m)
{
    return m ? m->seed : 0;
}

void spk_model_set_seed(spk_model *m, uint64_t seed)
{
    if (m)
        m->seed = seed;
}
