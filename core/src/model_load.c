/* spikecl — the YAML model loader. libyaml's document API gives us a node tree with positions;
 * every value is checked here (model keys by fixed schemas, layer keys by the layer type's
 * parameter table) so that errors read "file:line:col: context: expected ..., got ...". */
#define _POSIX_C_SOURCE 200809L

#include "model.h"
#include "plugin_load.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* ---- "did you mean": closest candidate by optimal string alignment distance ---- */

#define SPK_SUGG_MAXLEN 64

static int spk_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > SPK_SUGG_MAXLEN || m > SPK_SUGG_MAXLEN)
        return INT_MAX;
    int d[SPK_SUGG_MAXLEN + 1][SPK_SUGG_MAXLEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            /* case differences count as typos but cost nothing: "Beta" is surely "beta" */
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            int cost = ca != cb;
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

typedef struct spk_sugg {
    const char *word;
    int limit, best_d;
    char best[SPK_SUGG_MAXLEN + 1];
    char text[SPK_SUGG_MAXLEN + 24]; /* "; did you mean 'x'?" or "" */
} spk_sugg;

static void spk_sugg_init(spk_sugg *s, const char *word)
{
    s->word = word;
    /* short words are one typo away from many others: allow less */
    s->limit = strlen(word) <= 3 ? 1 : 2;
    s->best_d = s->limit + 1;
    s->best[0] = '\0';
}

static void spk_sugg_try(spk_sugg *s, const char *cand, size_t len)
{
    char buf[SPK_SUGG_MAXLEN + 1];
    if (!cand || len == 0 || len > SPK_SUGG_MAXLEN)
        return;
    memcpy(buf, cand, len);
    buf[len] = '\0';
    int d = spk_edit_distance(s->word, buf);
    if (d < s->best_d) {
        s->best_d = d;
        memcpy(s->best, buf, len + 1);
    }
}

static const char *spk_sugg_text(spk_sugg *s)
{
    if (s->best[0])
        snprintf(s->text, sizeof s->text, "; did you mean '%s'?", s->best);
    else
        s->text[0] = '\0';
    return s->text;
}

/* Index of word in "a|b|c", or -1; suggestion filled when sg is given. */
static int spk_choice_index(const char *choices, const char *word, spk_sugg *sg)
{
    if (!choices)
        return -1;
    int idx = 0;
    size_t wl = strlen(word);
    const char *p = choices;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == wl && strncmp(p, word, len) == 0)
            return idx;
        if (sg)
            spk_sugg_try(sg, p, len);
        if (!bar)
            return -1;
        p = bar + 1;
        idx++;
    }
}

/* ---- the loader's context and messages ---- */

typedef struct spk_ld {
    const char *file; /* name for messages; NULL: no location prefix (defaults in tables) */
    const char *dir;  /* folder for relative paths; NULL: leave them as written */
    yaml_document_t *doc;
    spk_error *err;
    char ctx[192]; /* what is being read, e.g. "layer 'lif1' (neuron.lif): " */
} spk_ld;

static int spk_ld_vfail(spk_ld *ld, int line, int col, int code, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (ld->file && line > 0)
        return spk_error_set(ld->err, code, "%s:%d:%d: %s%s", ld->file, line, col, ld->ctx, msg);
    if (ld->file)
        return spk_error_set(ld->err, code, "%s: %s%s", ld->file, ld->ctx, msg);
    return spk_error_set(ld->err, code, "%s%s", ld->ctx, msg);
}

#if defined(__GNUC__)
#define SPK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SPK_PRINTF(a, b)
#endif

/* Fails at a node's position (1-based; libyaml's marks are 0-based). */
static int SPK_PRINTF(4, 5)
    spk_ld_fail(spk_ld *ld, const yaml_node_t *at, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int line = at ? (int)at->start_mark.line + 1 : 0;
    int col = at ? (int)at->start_mark.column + 1 : 0;
    int rc = spk_ld_vfail(ld, line, col, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int SPK_PRINTF(5, 6)
    spk_ld_fail_at(spk_ld *ld, int line, int col, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = spk_ld_vfail(ld, line, col, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int SPK_PRINTF(2, 3) spk_ld_ctx(spk_ld *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->ctx, sizeof ld->ctx, fmt, ap);
    va_end(ap);
    return 0;
}

static int spk_ld_nomem(spk_ld *ld)
{
    return spk_error_set(ld->err, SPK_ERR_NOMEM, "%s%sout of memory", ld->file ? ld->file : "",
                         ld->file ? ": " : "");
}

/* ---- nodes and scalars ---- */

static yaml_node_t *spk_ld_node(spk_ld *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

static const char *spk_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int spk_is_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE;
}

static int spk_is_plain(const yaml_node_t *n)
{
    return spk_is_scalar(n) && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int spk_is_null(const yaml_node_t *n)
{
    if (!spk_is_plain(n))
        return 0;
    const char *t = spk_text(n);
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

/* Numbers are plain decimal text that a float can hold; quoted scalars stay strings, as in
 * YAML. Letters other than an exponent are refused so that strtod's "inf", "nan" and hex forms
 * do not slip through. */
static int spk_parse_double(const char *s, double *out)
{
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!strchr("0123456789+-.eE", *p))
            return 0;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    /* layers compute in float: a larger value would become an infinity there */
    if (*end || end == s || !isfinite(d) || fabs(d) > FLT_MAX)
        return 0;
    *out = d;
    return 1;
}

static int spk_parse_ll(const char *s, long long *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return 0;
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end)
        return 0;
    *out = v;
    return 1;
}

static int spk_parse_bool(const char *s, int *out)
{
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes")) {
        *out = 1;
        return 1;
    }
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no")) {
        *out = 0;
        return 1;
    }
    return 0;
}

static int spk_node_num(const yaml_node_t *n, double *out)
{
    return spk_is_plain(n) && spk_parse_double(spk_text(n), out);
}

static int spk_node_ll(const yaml_node_t *n, long long *out)
{
    return spk_is_plain(n) && spk_parse_ll(spk_text(n), out);
}

static int spk_node_bool(const yaml_node_t *n, int *out)
{
    return spk_is_plain(n) && spk_parse_bool(spk_text(n), out);
}

/* What was found, for "got ...": the text of a scalar, or the kind of a collection. */
static const char *spk_found(const yaml_node_t *n, char *buf, size_t size)
{
    if (!n)
        return "nothing";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    if (n->type == YAML_SEQUENCE_NODE) {
        long k = (long)(n->data.sequence.items.top - n->data.sequence.items.start);
        snprintf(buf, size, "a list of %ld item%s", k, k == 1 ? "" : "s");
        return buf;
    }
    if (n->type != YAML_SCALAR_NODE)
        return "nothing";
    if (spk_is_null(n))
        return "an empty value";
    const char *t = spk_text(n);
    size_t len = strlen(t);
    double d;
    int b;
    /* '12' in quotes looks right but is a string: say why it was refused */
    int quoted_lookalike = !spk_is_plain(n) && (spk_parse_double(t, &d) || spk_parse_bool(t, &b));
    snprintf(buf, size, "'%.*s%s'%s", len > 48 ? 48 : (int)len, t, len > 48 ? "..." : "",
             quoted_lookalike ? " (quoted, so a string)" : "");
    return buf;
}

/* " in [lo, hi]", " >= lo", " > lo", ...; bounds at or beyond +-1e30 count as none. */
static const char *spk_range(double lo, int lo_open, double hi, int hi_open, char *buf, size_t size)
{
    int has_lo = lo > -1e30, has_hi = hi < 1e30;
    if (has_lo && has_hi)
        snprintf(buf, size, " in %c%.10g, %.10g%c", lo_open ? '(' : '[', lo, hi,
                 hi_open ? ')' : ']');
    else if (has_lo)
        snprintf(buf, size, " %s %.10g", lo_open ? ">" : ">=", lo);
    else if (has_hi)
        snprintf(buf, size, " %s %.10g", hi_open ? "<" : "<=", hi);
    else
        buf[0] = '\0';
    return buf;
}

static int spk_in_range(double v, double lo, int lo_open, double hi, int hi_open)
{
    if (lo_open ? !(v > lo) : !(v >= lo))
        return 0;
    if (hi_open ? !(v < hi) : !(v <= hi))
        return 0;
    return 1;
}

/* ---- mappings ---- */

/* Every mapping read goes through here: keys must be scalars, each given once (libyaml keeps
 * duplicate keys; YAML forbids them and the second would silently win). */
static int spk_ld_map(spk_ld *ld, yaml_node_t *n, const char *expected)
{
    char fb[96];
    if (!n || n->type != YAML_MAPPING_NODE)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "expected %s, got %s", expected,
                           spk_found(n, fb, sizeof fb));
    yaml_node_pair_t *p0 = n->data.mapping.pairs.start;
    for (yaml_node_pair_t *p = p0; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = spk_ld_node(ld, p->key);
        if (!spk_is_scalar(k))
            return spk_ld_fail(ld, k, SPK_ERR_INVALID, "keys must be words, got %s",
                               spk_found(k, fb, sizeof fb));
        for (yaml_node_pair_t *q = p0; q < p; q++) {
            yaml_node_t *kq = spk_ld_node(ld, q->key);
            if (kq && kq->type == YAML_SCALAR_NODE && !strcmp(spk_text(kq), spk_text(k)))
                return spk_ld_fail(ld, k, SPK_ERR_INVALID,
                                   "duplicate key '%s' (first given at %d:%d)", spk_text(k),
                                   (int)kq->start_mark.line + 1, (int)kq->start_mark.column + 1);
        }
    }
    return SPK_OK;
}

static yaml_node_t *spk_ld_get(spk_ld *ld, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = spk_ld_node(ld, p->key);
        if (spk_is_scalar(k) && !strcmp(spk_text(k), key))
            return spk_ld_node(ld, p->value);
    }
    return NULL;
}

static yaml_node_t *spk_ld_key_node(spk_ld *ld, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = spk_ld_node(ld, p->key);
        if (spk_is_scalar(k) && !strcmp(spk_text(k), key))
            return k;
    }
    return NULL;
}

static int spk_in_list(const char *const *list, const char *word)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], word))
            return 1;
    return 0;
}

/* Refuses keys outside `allowed` (NULL-terminated), suggesting the closest one. */
static int spk_ld_keys(spk_ld *ld, yaml_node_t *map, const char *const *allowed)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = spk_ld_node(ld, p->key);
        if (spk_in_list(allowed, spk_text(k)))
            continue;
        spk_sugg sg;
        spk_sugg_init(&sg, spk_text(k));
        for (int i = 0; allowed[i]; i++)
            spk_sugg_try(&sg, allowed[i], strlen(allowed[i]));
        return spk_ld_fail(ld, k, SPK_ERR_INVALID, "unknown key '%s'%s", spk_text(k),
                           spk_sugg_text(&sg));
    }
    return SPK_OK;
}

/* ---- typed values with the standard message ---- */

static int spk_ld_int(spk_ld *ld, yaml_node_t *n, const char *key, double lo, double hi,
                      long long *out)
{
    long long v;
    char fb[96], rb[64];
    if (!spk_node_ll(n, &v) || !spk_in_range((double)v, lo, 0, hi, 0))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' must be an integer%s, got %s", key,
                           spk_range(lo <= INT_MIN ? -INFINITY : lo, 0,
                                     hi >= INT_MAX ? INFINITY : hi, 0, rb, sizeof rb),
                           spk_found(n, fb, sizeof fb));
    *out = v;
    return SPK_OK;
}

static int spk_ld_float(spk_ld *ld, yaml_node_t *n, const char *key, double lo, int lo_open,
                        double hi, int hi_open, double *out)
{
    double v;
    char fb[96], rb[64];
    if (!spk_node_num(n, &v) || !spk_in_range(v, lo, lo_open, hi, hi_open))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' must be a number%s, got %s", key,
                           spk_range(lo, lo_open, hi, hi_open, rb, sizeof rb),
                           spk_found(n, fb, sizeof fb));
    *out = v;
    return SPK_OK;
}

static int spk_ld_bool(spk_ld *ld, yaml_node_t *n, const char *key, int *out)
{
    char fb[96];
    if (!spk_node_bool(n, out))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' must be true or false, got %s", key,
                           spk_found(n, fb, sizeof fb));
    return SPK_OK;
}

/* A word from "a|b|c"; the message lists them and suggests the closest. */
static int spk_ld_choice(spk_ld *ld, yaml_node_t *n, const char *key, const char *choices, int *idx)
{
    char fb[96];
    spk_sugg sg;
    if (spk_is_scalar(n) && !spk_is_null(n)) {
        spk_sugg_init(&sg, spk_text(n));
        *idx = spk_choice_index(choices, spk_text(n), &sg);
        if (*idx >= 0)
            return SPK_OK;
    } else {
        spk_sugg_init(&sg, "");
    }
    return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' must be one of %s, got %s%s", key,
                       choices ? choices : "(none)", spk_found(n, fb, sizeof fb),
                       spk_sugg_text(&sg));
}

static char *spk_join_path(const char *dir, const char *path)
{
    /* relative to the model file's folder; absolute paths and "." folders stay as written */
    if (!dir || path[0] == '/' || !strcmp(dir, "."))
        return strdup(path);
    size_t dl = strlen(dir), pl = strlen(path);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *s = malloc(dl + slash + pl + 1);
    if (!s)
        return NULL;
    memcpy(s, dir, dl);
    if (slash)
        s[dl] = '/';
    memcpy(s + dl + slash, path, pl + 1);
    return s;
}

static int spk_ld_path(spk_ld *ld, yaml_node_t *n, const char *key, char **out)
{
    char fb[96];
    if (!spk_is_scalar(n) || spk_is_null(n) || !*spk_text(n))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' must be a path, got %s", key,
                           spk_found(n, fb, sizeof fb));
    free(*out);
    *out = spk_join_path(ld->dir, spk_text(n));
    if (!*out)
        return spk_ld_nomem(ld);
    return SPK_OK;
}

/* A list of exactly two numbers, e.g. [lo, hi]. */
static int spk_node_pair(spk_ld *ld, yaml_node_t *n, double v[2], yaml_node_t *el[2])
{
    if (!n || n->type != YAML_SEQUENCE_NODE ||
        n->data.sequence.items.top - n->data.sequence.items.start != 2)
        return 0;
    for (int i = 0; i < 2; i++) {
        el[i] = spk_ld_node(ld, n->data.sequence.items.start[i]);
        if (!spk_node_num(el[i], &v[i]))
            return 0;
    }
    return 1;
}

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

/* libyaml's syntax error as "file:line:col: YAML syntax error: problem (context at l:c)". */
static int spk_syntax_error(const yaml_parser_t *p, const char *file, const char *text, size_t len,
                            spk_error *err)
{
    if (p->error == YAML_MEMORY_ERROR)
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory while reading YAML", file);
    int line = 1, col = 1;
    char ctx[160] = "";
    if (p->error == YAML_READER_ERROR) {
        /* the reader reports a byte offset, not a mark */
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
                col++;
            }
        }
        if (p->problem_value != -1)
            snprintf(ctx, sizeof ctx, " (byte 0x%02X)", (unsigned)p->problem_value & 0xFFu);
    } else {
        line = (int)p->problem_mark.line + 1;
        col = (int)p->problem_mark.column + 1;
        if (p->context)
            snprintf(ctx, sizeof ctx, " (%s at %d:%d)", p->context, (int)p->context_mark.line + 1,
                     (int)p->context_mark.column + 1);
    }
    return spk_error_set(err, SPK_ERR_PARSE, "%s:%d:%d: YAML syntax error: %s%s", file, line, col,
                         p->problem ? p->problem : "malformed input", ctx);
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

/* Defaults first (so a bare surrogate name can take the table's slope); required keys stay
 * unset for the caller to report. */
static int spk_params_fill(const spk_layer_type *type, spk_params *out, spk_error *err)
{
    int rc;
    if ((rc = spk_params_alloc(type, out, err)))
        return rc;
    for (int i = 0; i < out->n; i++) {
        if (!out->spec[i].def)
            continue;
        if ((rc = spk_param_default(type, &out->spec[i], &out->v[i], err))) {
            spk_params_clear(out);
            return rc;
        }
    }
    return SPK_OK;
}

/* The parameters of one layer mapping: every key not in `extra` must be in the type's table. */
static int spk_ld_params(spk_ld *ld, yaml_node_t *map, const spk_layer_type *type,
                         const char *const *extra, spk_params *out)
{
    int rc;
    if ((rc = spk_params_fill(type, out, ld->err)))
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
    if ((rc = spk_params_fill(type, out, err)))
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
        rc = spk_ld_params(&ld, root, type, none, out);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- layers ---- */

void spk_layer_def_clear(spk_layer_def *d)
{
    if (!d)
        return;
    free(d->name);
    spk_params_clear(&d->params);
    for (int i = 0; i < SPK_MAX_INPUTS; i++)
        free(d->from[i]);
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
        int found = 0;
        for (int j = 0; j < idx && !found; j++)
            found = !strcmp(m->layers[j].name, name);
        if (!found) {
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
        d->from[i] = strdup(name);
        if (!d->from[i])
            return spk_ld_nomem(ld);
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
    return spk_ld_params(ld, n, d->type, neuron ? neuron_extra : extra, &d->params);
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
    if ((rc = spk_ld_params(ld, n, t, extra, &d->params)))
        return rc;
    d->type = t;
    return SPK_OK;
}

/* ---- input, train, plugins ---- */

static int spk_ld_input(spk_ld *ld, spk_model *m, yaml_node_t *n)
{
    static const char *const keys[] = {"shape", "scale", NULL};
    char fb[96];
    int rc;
    spk_ld_ctx(ld, "input: ");
    if ((rc = spk_ld_map(ld, n, "a mapping {shape: [...], scale: x}")) ||
        (rc = spk_ld_keys(ld, n, keys)))
        return rc;
    yaml_node_t *shape = spk_ld_get(ld, n, "shape");
    if (!shape)
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "missing required key 'shape'");
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
    m->input_scale = 1.0f;
    yaml_node_t *scale = spk_ld_get(ld, n, "scale");
    double d;
    if (scale) {
        if ((rc = spk_ld_float(ld, scale, "scale", 0, 1, 3.4e38, 0, &d)))
            return rc;
        m->input_scale = (float)d;
    }
    return SPK_OK;
}

/* {format: idx, images, labels} or {format: nmnist, path, <frame keys>}; the frame keys go
 * under train.data only: the test set is framed the same way. */
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

static void spk_optim_defaults(spk_optim_config *o, int kind)
{
    o->kind = kind;
    o->lr = 1e-3f;
    o->momentum = 0.0f;
    o->nesterov = 0;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->weight_decay = kind == SPK_OPTIM_ADAMW ? 0.01f : 0.0f;
    o->clip_norm = 0.0f;
    o->schedule = SPK_LR_CONSTANT;
    o->min_lr = 0.0f;
}

static int spk_ld_optim(spk_ld *ld, yaml_node_t *n, spk_optim_config *o)
{
    static const char *const keys[] = {"type", "lr",           "momentum",  "nesterov", "betas",
                                       "eps",  "weight_decay", "clip_norm", "schedule", "min_lr",
                                       NULL};
    static const char *const kind_names[] = {"sgd", "adam", "adamw"};
    char fb[96];
    int rc, kind = SPK_OPTIM_ADAM;
    double d;
    spk_ld_ctx(ld, "train.optimizer: ");
    if ((rc = spk_ld_map(ld, n, "a mapping {type: sgd|adam|adamw, lr: x, ...}")) ||
        (rc = spk_ld_keys(ld, n, keys)))
        return rc;
    yaml_node_t *t = spk_ld_get(ld, n, "type");
    if (t && (rc = spk_ld_choice(ld, t, "type", "sgd|adam|adamw", &kind)))
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
    yaml_node_t *v;
    if ((v = spk_ld_get(ld, n, "lr"))) {
        if ((rc = spk_ld_float(ld, v, "lr", 0, 1, 3.4e38, 0, &d)))
            return rc;
        o->lr = (float)d;
    }
    if ((v = spk_ld_get(ld, n, "momentum"))) {
        if ((rc = spk_ld_float(ld, v, "momentum", 0, 0, 1, 1, &d)))
            return rc;
        o->momentum = (float)d;
    }
    if ((v = spk_ld_get(ld, n, "nesterov"))) {
        if ((rc = spk_ld_bool(ld, v, "nesterov", &o->nesterov)))
            return rc;
        if (o->nesterov && !(o->momentum > 0))
            return spk_ld_fail(ld, v, SPK_ERR_INVALID, "'nesterov' needs a 'momentum' > 0");
    }
    if ((v = spk_ld_get(ld, n, "betas"))) {
        double b[2];
        yaml_node_t *el[2];
        int ok = spk_node_pair(ld, v, b, el);
        for (int i = 0; ok && i < 2; i++)
            ok = spk_in_range(b[i], 0, 0, 1, 1);
        if (!ok)
            return spk_ld_fail(
                ld, v, SPK_ERR_INVALID,
                "'betas' must be a list of two numbers in [0, 1), e.g. [0.9, 0.999], "
                "got %s",
                spk_found(v, fb, sizeof fb));
        o->beta1 = (float)b[0];
        o->beta2 = (float)b[1];
    }
    if ((v = spk_ld_get(ld, n, "eps"))) {
        if ((rc = spk_ld_float(ld, v, "eps", 0, 1, 3.4e38, 0, &d)))
            return rc;
        o->eps = (float)d;
    }
    if ((v = spk_ld_get(ld, n, "weight_decay"))) {
        if ((rc = spk_ld_float(ld, v, "weight_decay", 0, 0, 3.4e38, 0, &d)))
            return rc;
        o->weight_decay = (float)d;
    }
    if ((v = spk_ld_get(ld, n, "clip_norm"))) {
        if ((rc = spk_ld_float(ld, v, "clip_norm", 0, 0, 3.4e38, 0, &d)))
            return rc;
        o->clip_norm = (float)d;
    }
    if ((v = spk_ld_get(ld, n, "schedule")) &&
        (rc = spk_ld_choice(ld, v, "schedule", "constant|cosine", &o->schedule)))
        return rc;
    if ((v = spk_ld_get(ld, n, "min_lr"))) {
        if ((rc = spk_ld_float(ld, v, "min_lr", 0, 0, 3.4e38, 0, &d)))
            return rc;
        o->min_lr = (float)d;
    }
    return SPK_OK;
}

static int spk_ld_train(spk_ld *ld, spk_model *m, yaml_node_t *n)
{
    static const char *const keys[] = {"data", "test", "batch", "epochs", "optimizer", NULL};
    spk_train_config *tc = &m->train;
    long long v;
    int rc;
    spk_ld_ctx(ld, "train: ");
    if ((rc = spk_ld_map(ld, n, "a mapping {data: ..., batch: n, optimizer: ...}")) ||
        (rc = spk_ld_keys(ld, n, keys)))
        return rc;
    yaml_node_t *x;
    if ((x = spk_ld_get(ld, n, "batch"))) {
        if ((rc = spk_ld_int(ld, x, "batch", 1, INT_MAX, &v)))
            return rc;
        tc->batch = (int)v;
    }
    if ((x = spk_ld_get(ld, n, "epochs"))) {
        if ((rc = spk_ld_int(ld, x, "epochs", 1, INT_MAX, &v)))
            return rc;
        tc->epochs = (int)v;
    }
    if ((x = spk_ld_get(ld, n, "data")) && (rc = spk_ld_dataset(ld, m, x, "data")))
        return rc;
    if ((x = spk_ld_get(ld, n, "test")) && (rc = spk_ld_dataset(ld, m, x, "test")))
        return rc;
    if ((x = spk_ld_get(ld, n, "optimizer")) && (rc = spk_ld_optim(ld, x, &tc->optim)))
        return rc;
    return SPK_OK;
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
    m->input_scale = 1.0f;
    m->train.batch = 128;
    m->train.epochs = 1;
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
