/* spikecl — layer parameter tables: reading one value by its spec (numbers, choices, init and
 * surrogate mappings), defaults, and the spk_params_* lookups the host table serves plugins. */
#define _POSIX_C_SOURCE 200809L

#include "params.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameter values ---- */

static const char *const spk_sg_names[] = {"fast_sigmoid", "atan", "sigmoid", "triangle", NULL};
static const float spk_sg_slope[] = {25.0f, 2.0f, 5.0f, 1.0f};
#define SPK_SG_ALL "fast_sigmoid|atan|sigmoid|triangle"

/* Bounds of a parameter's range for checks and messages (min > max: none). */
static void spk_spec_bounds(const spk_param_spec *s, double *lo, double *hi)
{
    if (s->min <= s->max) {
        *lo = s->min;
        *hi = s->max;
    } else {
        *lo = -INFINITY;
        *hi = INFINITY;
    }
}

static int spk_ld_sg_kind(spk_ld *ld, const spk_param_spec *s, yaml_node_t *n, int *kind)
{
    char fb[96];
    const char *allowed = s->choices ? s->choices : SPK_SG_ALL;
    spk_sugg sg;
    spk_sugg_init(&sg, spk_is_scalar(n) ? spk_text(n) : "");
    if (spk_is_scalar(n) && !spk_is_null(n) && spk_choice_index(allowed, spk_text(n), &sg) >= 0) {
        for (int k = 0; spk_sg_names[k]; k++) {
            if (!strcmp(spk_sg_names[k], spk_text(n))) {
                *kind = k;
                return SPK_OK;
            }
        }
        return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                           "'%s': surrogate '%s' is listed by the layer type but unknown to "
                           "spikecl (known: " SPK_SG_ALL ")",
                           s->name, spk_text(n));
    }
    if (!spk_is_scalar(n))
        sg.best[0] = '\0';
    return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                       "'%s' must be one of %s or {type: name, slope: x}, got %s%s", s->name,
                       allowed, spk_found(n, fb, sizeof fb), spk_sugg_text(&sg));
}

/* A name, or {type: name, slope: x}; atan calls its parameter alpha. A bare name takes the
 * slope of the table's default when that default is the same kind, else the kind's own. */
static int spk_ld_surrogate(spk_ld *ld, const spk_param_spec *s, yaml_node_t *n,
                            const spk_surrogate *hint, spk_param_value *v)
{
    int kind = 0, rc;
    char fb[96];
    yaml_node_t *type_node = n, *map = NULL;
    if (n && n->type == YAML_MAPPING_NODE) {
        map = n;
        if ((rc = spk_ld_map(ld, map, "a surrogate mapping")))
            return rc;
        static const char *const keys[] = {"type", "slope", "alpha", NULL};
        if ((rc = spk_ld_keys(ld, map, keys)))
            return rc;
        type_node = spk_ld_get(ld, map, "type");
        if (!type_node)
            return spk_ld_fail(ld, map, SPK_ERR_INVALID, "'%s': missing required key 'type'",
                               s->name);
    }
    if ((rc = spk_ld_sg_kind(ld, s, type_node, &kind)))
        return rc;
    v->sg.kind = kind;
    v->sg.slope = hint && hint->kind == kind ? hint->slope : spk_sg_slope[kind];
    v->num = kind;
    if (map) {
        const char *want = kind == SPK_SG_ATAN ? "alpha" : "slope";
        const char *other = kind == SPK_SG_ATAN ? "slope" : "alpha";
        yaml_node_t *bad = spk_ld_key_node(ld, map, other);
        if (bad)
            return spk_ld_fail(ld, bad, SPK_ERR_INVALID,
                               "'%s': surrogate '%s' takes '%s', not '%s'", s->name,
                               spk_sg_names[kind], want, other);
        yaml_node_t *x = spk_ld_get(ld, map, want);
        double d;
        if (x) {
            if (!spk_node_num(x, &d) || !(d > 0) || d > 3.4e38)
                return spk_ld_fail(ld, x, SPK_ERR_INVALID,
                                   "'%s': '%s' of surrogate '%s' must be a number > 0, got %s",
                                   s->name, want, spk_sg_names[kind], spk_found(x, fb, sizeof fb));
            v->sg.slope = (float)d;
        }
    }
    return SPK_OK;
}

/* A number (a constant), or {uniform: [lo, hi]} / {normal: [mean, std]} / {constant: v}. */
static int spk_ld_init(spk_ld *ld, const spk_param_spec *s, yaml_node_t *n, spk_param_value *v)
{
    double lo, hi, x, ab[2];
    yaml_node_t *el[2];
    char fb[96], rb[64];
    int rc;
    spk_spec_bounds(s, &lo, &hi);
    spk_range(lo, 0, hi, 0, rb, sizeof rb);
    if (n && n->type == YAML_MAPPING_NODE) {
        if ((rc = spk_ld_map(ld, n, "an init mapping")))
            return rc;
        long npairs = (long)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (npairs != 1)
            return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                               "'%s' must be a mapping with one key (uniform, normal or "
                               "constant), got %ld keys",
                               s->name, npairs);
        yaml_node_t *k = spk_ld_node(ld, n->data.mapping.pairs.start->key);
        yaml_node_t *val = spk_ld_node(ld, n->data.mapping.pairs.start->value);
        const char *kw = spk_text(k);
        if (!strcmp(kw, "constant")) {
            if (!spk_node_num(val, &x) || !spk_in_range(x, lo, 0, hi, 0))
                return spk_ld_fail(ld, val, SPK_ERR_INVALID,
                                   "'%s': constant must be a number%s, got %s", s->name, rb,
                                   spk_found(val, fb, sizeof fb));
            v->init = (spk_init){SPK_INIT_CONSTANT, (float)x, 0.0f};
            v->num = x;
            return SPK_OK;
        }
        if (!strcmp(kw, "uniform")) {
            if (!spk_node_pair(ld, val, ab, el))
                return spk_ld_fail(ld, val, SPK_ERR_INVALID,
                                   "'%s': uniform must be a list [lo, hi] of two numbers, got %s",
                                   s->name, spk_found(val, fb, sizeof fb));
            for (int i = 0; i < 2; i++)
                if (!spk_in_range(ab[i], lo, 0, hi, 0))
                    return spk_ld_fail(ld, el[i], SPK_ERR_INVALID,
                                       "'%s': uniform bounds must be numbers%s, got %s", s->name,
                                       rb, spk_found(el[i], fb, sizeof fb));
            if (ab[0] > ab[1])
                return spk_ld_fail(ld, val, SPK_ERR_INVALID,
                                   "'%s': uniform [lo, hi] needs lo <= hi, got [%g, %g]", s->name,
                                   ab[0], ab[1]);
            v->init = (spk_init){SPK_INIT_UNIFORM, (float)ab[0], (float)ab[1]};
            return SPK_OK;
        }
        if (!strcmp(kw, "normal")) {
            if (!spk_node_pair(ld, val, ab, el))
                return spk_ld_fail(ld, val, SPK_ERR_INVALID,
                                   "'%s': normal must be a list [mean, std] of two numbers, got %s",
                                   s->name, spk_found(val, fb, sizeof fb));
            if (ab[1] < 0)
                return spk_ld_fail(ld, el[1], SPK_ERR_INVALID,
                                   "'%s': the std of normal must be >= 0, got %s", s->name,
                                   spk_found(el[1], fb, sizeof fb));
            v->init = (spk_init){SPK_INIT_NORMAL, (float)ab[0], (float)ab[1]};
            return SPK_OK;
        }
        static const char *const kinds[] = {"uniform", "normal", "constant", NULL};
        spk_sugg sg;
        spk_sugg_init(&sg, kw);
        for (int i = 0; kinds[i]; i++)
            spk_sugg_try(&sg, kinds[i], strlen(kinds[i]));
        return spk_ld_fail(ld, k, SPK_ERR_INVALID,
                           "'%s': unknown init '%s'; expected uniform, normal or constant%s",
                           s->name, kw, spk_sugg_text(&sg));
    }
    if (!spk_node_num(n, &x) || !spk_in_range(x, lo, 0, hi, 0))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                           "'%s' must be a number%s or a mapping {uniform: [lo, hi]}, "
                           "{normal: [mean, std]} or {constant: v}, got %s",
                           s->name, rb, spk_found(n, fb, sizeof fb));
    v->init = (spk_init){SPK_INIT_CONSTANT, (float)x, 0.0f};
    v->num = x;
    return SPK_OK;
}

/* One value of a parameter table into v (fresh, zeroed). */
static int spk_ld_param(spk_ld *ld, const spk_param_spec *s, yaml_node_t *n,
                        const spk_surrogate *hint, spk_param_value *v)
{
    char fb[96];
    double lo, hi, d;
    long long i;
    int b = 0, rc;
    spk_spec_bounds(s, &lo, &hi);
    switch (s->type) {
    case SPK_PARAM_FLOAT:
        if ((rc = spk_ld_float(ld, n, s->name, lo, 0, hi, 0, &d)))
            return rc;
        v->num = d;
        return SPK_OK;
    case SPK_PARAM_INT:
        /* the value must also fit an int, whatever the table allows */
        if (lo < INT_MIN)
            lo = INT_MIN;
        if (hi > INT_MAX)
            hi = INT_MAX;
        if ((rc = spk_ld_int(ld, n, s->name, lo, hi, &i)))
            return rc;
        v->num = (double)i;
        return SPK_OK;
    case SPK_PARAM_BOOL:
        if ((rc = spk_ld_bool(ld, n, s->name, &b)))
            return rc;
        v->num = b;
        return SPK_OK;
    case SPK_PARAM_CHOICE:
        if ((rc = spk_ld_choice(ld, n, s->name, s->choices, &b)))
            return rc;
        v->num = b;
        v->str = strdup(spk_text(n));
        return v->str ? SPK_OK : spk_ld_nomem(ld);
    case SPK_PARAM_STRING:
        if (!spk_is_scalar(n) || spk_is_null(n))
            return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' must be a string, got %s", s->name,
                               spk_found(n, fb, sizeof fb));
        v->str = strdup(spk_text(n));
        return v->str ? SPK_OK : spk_ld_nomem(ld);
    case SPK_PARAM_INIT:
        return spk_ld_init(ld, s, n, v);
    case SPK_PARAM_SURROGATE:
        return spk_ld_surrogate(ld, s, n, hint, v);
    }
    return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' has an unknown parameter type %d in its table",
                       s->name, s->type);
}

/* ---- parameter tables ---- */

static int spk_spec_count(const spk_param_spec *s)
{
    int n = 0;
    while (s && s[n].name)
        n++;
    return n;
}

static int spk_spec_index(const spk_param_spec *s, const char *name)
{
    for (int i = 0; s && s[i].name; i++)
        if (!strcmp(s[i].name, name))
            return i;
    return -1;
}

const spk_param_value *spk_params_find(const spk_params *p, const char *name)
{
    if (!p || !p->v || !name)
        return NULL;
    int i = spk_spec_index(p->spec, name);
    return i >= 0 && i < p->n ? &p->v[i] : NULL;
}

void spk_params_clear(spk_params *p)
{
    if (!p)
        return;
    for (int i = 0; p->v && i < p->n; i++)
        free(p->v[i].str);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Reads the table's default for s into v. A default is YAML text read by the same rules as a
 * value in a file; a bad one is the plugin's bug, so the message names the type. */
static int spk_param_default(const spk_layer_type *type, const spk_param_spec *s,
                             spk_param_value *v, spk_error *err)
{
    memset(v, 0, sizeof *v);
    if (s->type == SPK_PARAM_STRING && !s->def[0]) {
        v->str = strdup(""); /* "" parses as an empty document, not an empty string */
        return v->str ? SPK_OK : spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)s->def, strlen(s->def));
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = spk_syntax_error(&parser, "default", s->def, strlen(s->def), err);
        yaml_parser_delete(&parser);
        return spk_error_prefix(err, rc, "layer type '%s': default of '%s' ('%s')", type->name,
                                s->name, s->def);
    }
    spk_ld ld = {.file = NULL, .dir = NULL, .doc = &doc, .err = err};
    snprintf(ld.ctx, sizeof ld.ctx, "layer type '%s': bad default: ", type->name);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        rc = spk_error_set(err, SPK_ERR_INVALID, "layer type '%s': default of '%s' is empty",
                           type->name, s->name);
    else
        rc = spk_ld_param(&ld, s, root, NULL, v);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc) {
        free(v->str);
        v->str = NULL;
    }
    return rc;
}

static int spk_params_alloc(const spk_layer_type *type, spk_params *out, spk_error *err)
{
    memset(out, 0, sizeof *out);
    out->spec = type->params;
    out->n = spk_spec_count(type->params);
    out->v = calloc(out->n > 0 ? (size_t)out->n : 1, sizeof *out->v);
    if (!out->v)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    return SPK_OK;
}

void spk_param_values_free(spk_param_value *v, int n)
{
    for (int i = 0; v && i < n; i++)
        free(v[i].str);
    free(v);
}

int spk_params_parse_defaults(const spk_layer_type *type, spk_param_value **out, int *n,
                              spk_error *err)
{
    *out = NULL;
    *n = spk_spec_count(type->params);
    spk_param_value *v = calloc(*n > 0 ? (size_t)*n : 1, sizeof *v);
    if (!v)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    for (int i = 0; i < *n; i++) {
        if (!type->params[i].def)
            continue;
        int rc = spk_param_default(type, &type->params[i], &v[i], err);
        if (rc) {
            spk_param_values_free(v, *n);
            return rc;
        }
    }
    *out = v;
    return SPK_OK;
}

/* Defaults first (so a bare surrogate name can take the table's slope); required keys stay
 * unset for the caller to report. Copies `defaults` (the registry's, parsed once) when given;
 * a type outside the registry has its defaults parsed here. */
static int spk_params_fill(const spk_layer_type *type, const spk_param_value *defaults,
                           spk_params *out, spk_error *err)
{
    int rc;
    if ((rc = spk_params_alloc(type, out, err)))
        return rc;
    for (int i = 0; i < out->n; i++) {
        if (!out->spec[i].def)
            continue;
        if (defaults) {
            out->v[i] = defaults[i];
            if (defaults[i].str && !(out->v[i].str = strdup(defaults[i].str))) {
                spk_params_clear(out);
                return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
            }
        } else if ((rc = spk_param_default(type, &out->spec[i], &out->v[i], err))) {
            spk_params_clear(out);
            return rc;
        }
    }
    return SPK_OK;
}

/* The parameters of one layer mapping: every key not in `extra` must be in the type's table. */
int spk_ld_params(spk_ld *ld, yaml_node_t *map, const spk_layer_type *type,
                  const spk_param_value *defaults, const char *const *extra, spk_params *out)
{
    int rc;
    if ((rc = spk_params_fill(type, defaults, out, ld->err)))
        return rc;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = spk_ld_node(ld, p->key), *val = spk_ld_node(ld, p->value);
        const char *key = spk_text(k);
        if (spk_in_list(extra, key))
            continue;
        int i = spk_spec_index(out->spec, key);
        if (i < 0) {
            spk_sugg sg;
            spk_sugg_init(&sg, key);
            for (int j = 0; j < out->n; j++)
                spk_sugg_try(&sg, out->spec[j].name, strlen(out->spec[j].name));
            for (int j = 0; extra[j]; j++)
                spk_sugg_try(&sg, extra[j], strlen(extra[j]));
            rc = spk_ld_fail(ld, k, SPK_ERR_INVALID, "unknown key '%s'%s", key, spk_sugg_text(&sg));
            goto fail;
        }
        spk_param_value t;
        memset(&t, 0, sizeof t);
        spk_surrogate hint = out->v[i].sg;
        rc = spk_ld_param(ld, &out->spec[i], val, out->spec[i].def ? &hint : NULL, &t);
        if (rc) {
            free(t.str);
            goto fail;
        }
        free(out->v[i].str);
        out->v[i] = t;
        out->v[i].is_set = 1;
        out->v[i].line = (int)val->start_mark.line + 1;
        out->v[i].col = (int)val->start_mark.column + 1;
    }
    for (int i = 0; i < out->n; i++) {
        if (!out->spec[i].def && !out->v[i].is_set) {
            rc = spk_ld_fail(ld, map, SPK_ERR_INVALID, "missing required key '%s'",
                             out->spec[i].name);
            goto fail;
        }
    }
    return SPK_OK;
fail:
    spk_params_clear(out);
    return rc;
}

int spk_params_defaults(const spk_layer_type *type, spk_params *out, spk_error *err)
{
    int rc;
    if (!type || !out)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "spk_params_defaults: type and out are required");
    if ((rc = spk_params_fill(type, NULL, out, err)))
        return rc;
    for (int i = 0; i < out->n; i++) {
        if (!out->spec[i].def) {
            rc = spk_error_set(err, SPK_ERR_INVALID, "%s: missing required key '%s'", type->name,
                               out->spec[i].name);
            spk_params_clear(out);
            return rc;
        }
    }
    return SPK_OK;
}

int spk_params_from_yaml(const spk_layer_type *type, const char *yaml, spk_params *out,
                         spk_error *err)
{
    if (!type || !out)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "spk_params_from_yaml: type and out are required");
    memset(out, 0, sizeof *out);
    if (!yaml)
        return spk_params_defaults(type, out, err);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    size_t len = strlen(yaml);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = spk_syntax_error(&parser, "params", yaml, len, err);
        yaml_parser_delete(&parser);
        return rc;
    }
    spk_ld ld = {.file = "params", .dir = NULL, .doc = &doc, .err = err};
    snprintf(ld.ctx, sizeof ld.ctx, "%s: ", type->name);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    static const char *const none[] = {NULL};
    if (!root)
        rc = spk_params_defaults(type, out, err);
    else if (!(rc = spk_ld_map(&ld, root, "a mapping of parameters")))
        rc = spk_ld_params(&ld, root, type, NULL, none, out);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}
