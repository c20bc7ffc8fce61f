/* spikecl — the typed YAML reader under the model loader and the parameter tables. libyaml's
 * document API gives a node tree with positions; these helpers read scalars by type and fail
 * with "file:line:col: context: expected ..., got ..." and a "did you mean" for near misses. */
#define _POSIX_C_SOURCE 200809L

#include "yaml_read.h"

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

/* ---- "did you mean": closest candidate by optimal string alignment distance ---- */

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

void spk_sugg_init(spk_sugg *s, const char *word)
{
    s->word = word;
    /* short words are one typo away from many others: allow less */
    s->limit = strlen(word) <= 3 ? 1 : 2;
    s->best_d = s->limit + 1;
    s->best[0] = '\0';
}

void spk_sugg_try(spk_sugg *s, const char *cand, size_t len)
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

const char *spk_sugg_text(spk_sugg *s)
{
    if (s->best[0])
        snprintf(s->text, sizeof s->text, "; did you mean '%s'?", s->best);
    else
        s->text[0] = '\0';
    return s->text;
}

/* Index of word in "a|b|c", or -1; suggestion filled when sg is given. */
int spk_choice_index(const char *choices, const char *word, spk_sugg *sg)
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

/* Fails at a node's position (1-based; libyaml's marks are 0-based). */
int SPK_PRINTF(4, 5) spk_ld_fail(spk_ld *ld, const yaml_node_t *at, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int line = at ? (int)at->start_mark.line + 1 : 0;
    int col = at ? (int)at->start_mark.column + 1 : 0;
    int rc = spk_ld_vfail(ld, line, col, code, fmt, ap);
    va_end(ap);
    return rc;
}

int SPK_PRINTF(5, 6) spk_ld_fail_at(spk_ld *ld, int line, int col, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = spk_ld_vfail(ld, line, col, code, fmt, ap);
    va_end(ap);
    return rc;
}

int SPK_PRINTF(2, 3) spk_ld_ctx(spk_ld *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->ctx, sizeof ld->ctx, fmt, ap);
    va_end(ap);
    return 0;
}

int spk_ld_nomem(spk_ld *ld)
{
    return spk_error_set(ld->err, SPK_ERR_NOMEM, "%s%sout of memory", ld->file ? ld->file : "",
                         ld->file ? ": " : "");
}

/* ---- nodes and scalars ---- */

yaml_node_t *spk_ld_node(spk_ld *ld, int id)
{
    return yaml_document_get_node(ld->doc, id);
}

const char *spk_text(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

int spk_is_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE;
}

int spk_is_plain(const yaml_node_t *n)
{
    return spk_is_scalar(n) && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

int spk_is_null(const yaml_node_t *n)
{
    if (!spk_is_plain(n))
        return 0;
    const char *t = spk_text(n);
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

/* Numbers are plain decimal text that a float can hold; quoted scalars stay strings, as in
 * YAML. Letters other than an exponent are refused so that strtod's "inf", "nan" and hex forms
 * do not slip through. */
int spk_parse_double(const char *s, double *out)
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

int spk_parse_bool(const char *s, int *out)
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

int spk_node_num(const yaml_node_t *n, double *out)
{
    return spk_is_plain(n) && spk_parse_double(spk_text(n), out);
}

int spk_node_ll(const yaml_node_t *n, long long *out)
{
    return spk_is_plain(n) && spk_parse_ll(spk_text(n), out);
}

int spk_node_bool(const yaml_node_t *n, int *out)
{
    return spk_is_plain(n) && spk_parse_bool(spk_text(n), out);
}

/* What was found, for "got ...": the text of a scalar, or the kind of a collection. */
const char *spk_found(const yaml_node_t *n, char *buf, size_t size)
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
const char *spk_range(double lo, int lo_open, double hi, int hi_open, char *buf, size_t size)
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

int spk_in_range(double v, double lo, int lo_open, double hi, int hi_open)
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
int spk_ld_map(spk_ld *ld, yaml_node_t *n, const char *expected)
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

yaml_node_t *spk_ld_get(spk_ld *ld, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = spk_ld_node(ld, p->key);
        if (spk_is_scalar(k) && !strcmp(spk_text(k), key))
            return spk_ld_node(ld, p->value);
    }
    return NULL;
}

yaml_node_t *spk_ld_key_node(spk_ld *ld, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = spk_ld_node(ld, p->key);
        if (spk_is_scalar(k) && !strcmp(spk_text(k), key))
            return k;
    }
    return NULL;
}

int spk_in_list(const char *const *list, const char *word)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], word))
            return 1;
    return 0;
}

/* Refuses keys outside `allowed` (NULL-terminated), suggesting the closest one. */
int spk_ld_keys(spk_ld *ld, yaml_node_t *map, const char *const *allowed)
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

int spk_ld_int(spk_ld *ld, yaml_node_t *n, const char *key, double lo, double hi, long long *out)
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

int spk_ld_float(spk_ld *ld, yaml_node_t *n, const char *key, double lo, int lo_open, double hi,
                 int hi_open, double *out)
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

int spk_ld_bool(spk_ld *ld, yaml_node_t *n, const char *key, int *out)
{
    char fb[96];
    if (!spk_node_bool(n, out))
        return spk_ld_fail(ld, n, SPK_ERR_INVALID, "'%s' must be true or false, got %s", key,
                           spk_found(n, fb, sizeof fb));
    return SPK_OK;
}

/* A word from "a|b|c"; the message lists them and suggests the closest. */
int spk_ld_choice(spk_ld *ld, yaml_node_t *n, const char *key, const char *choices, int *idx)
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

char *spk_join_path(const char *dir, const char *path)
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

int spk_ld_path(spk_ld *ld, yaml_node_t *n, const char *key, char **out)
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
int spk_node_pair(spk_ld *ld, yaml_node_t *n, double v[2], yaml_node_t *el[2])
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

/* libyaml's syntax error as "file:line:col: YAML syntax error: problem (context at l:c)". */
int spk_syntax_error(const yaml_parser_t *p, const char *file, const char *text, size_t len,
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

/* ---- declarative sections ---- */

#define SPK_FIELDS_MAX 32

void spk_fields_defaults(const spk_field *f, void *obj)
{
    char *base = obj;
    for (; f->key; f++) {
        switch (f->type) {
        case SPK_FIELD_INT:
        case SPK_FIELD_BOOL:
        case SPK_FIELD_CHOICE:
            *(int *)(base + f->offset) = (int)f->def;
            break;
        case SPK_FIELD_FLOAT2:
            ((float *)(base + f->offset))[1] = (float)f->def2;
            /* fall through */
        case SPK_FIELD_FLOAT:
            *(float *)(base + f->offset) = (float)f->def;
            break;
        case SPK_FIELD_CUSTOM:
            break;
        }
    }
}

int spk_ld_fields_keys(spk_ld *ld, yaml_node_t *map, const spk_field *f)
{
    const char *allowed[SPK_FIELDS_MAX + 1];
    int n = 0;
    for (; f->key && n < SPK_FIELDS_MAX; f++)
        allowed[n++] = f->key;
    allowed[n] = NULL;
    return spk_ld_keys(ld, map, allowed);
}

static int spk_ld_field(spk_ld *ld, yaml_node_t *n, const spk_field *f, void *obj)
{
    char *at = (char *)obj + f->offset;
    char fb[96], rb[64];
    long long i;
    double d, ab[2];
    yaml_node_t *el[2];
    int rc = SPK_OK, ok;
    switch (f->type) {
    case SPK_FIELD_INT:
        if (!(rc = spk_ld_int(ld, n, f->key, f->lo, f->hi, &i)))
            *(int *)at = (int)i;
        break;
    case SPK_FIELD_FLOAT:
        if (!(rc = spk_ld_float(ld, n, f->key, f->lo, f->lo_open, f->hi, f->hi_open, &d)))
            *(float *)at = (float)d;
        break;
    case SPK_FIELD_FLOAT2:
        ok = spk_node_pair(ld, n, ab, el);
        for (int k = 0; ok && k < 2; k++)
            ok = spk_in_range(ab[k], f->lo, f->lo_open, f->hi, f->hi_open);
        if (!ok)
            return spk_ld_fail(ld, n, SPK_ERR_INVALID,
                               "'%s' must be a list of two numbers%s, e.g. [%g, %g], got %s",
                               f->key,
                               spk_range(f->lo, f->lo_open, f->hi, f->hi_open, rb, sizeof rb),
                               f->def, f->def2, spk_found(n, fb, sizeof fb));
        ((float *)at)[0] = (float)ab[0];
        ((float *)at)[1] = (float)ab[1];
        break;
    case SPK_FIELD_BOOL:
        rc = spk_ld_bool(ld, n, f->key, (int *)at);
        break;
    case SPK_FIELD_CHOICE:
        rc = spk_ld_choice(ld, n, f->key, f->choices, (int *)at);
        break;
    case SPK_FIELD_CUSTOM:
        return f->read(ld, n, obj);
    }
    if (rc == SPK_OK && f->read)
        rc = f->read(ld, n, obj);
    return rc;
}

int spk_ld_fields_read(spk_ld *ld, yaml_node_t *map, const spk_field *f, void *obj)
{
    int rc;
    for (; f->key; f++) {
        yaml_node_t *n = spk_ld_get(ld, map, f->key);
        if (!n) {
            if (f->required)
                return spk_ld_fail(ld, map, SPK_ERR_INVALID, "missing required key '%s'", f->key);
            continue;
        }
        if ((rc = spk_ld_field(ld, n, f, obj)))
            return rc;
    }
    return SPK_OK;
}

int spk_ld_fields(spk_ld *ld, yaml_node_t *map, const char *expected, const spk_field *fields,
                  void *obj)
{
    int rc;
    if ((rc = spk_ld_map(ld, map, expected)) || (rc = spk_ld_fields_keys(ld, map, fields)))
        return rc;
    return spk_ld_fields_read(ld, map, fields, obj);
}
