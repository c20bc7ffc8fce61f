/* spikecl — safetensors reader and atomic writer for float32 tensors.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data section; offsets are relative to its start. */
#define _POSIX_C_SOURCE 200809L

#include "spikecl/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The upstream reader refuses headers above 100 MB; so do we, which also bounds our allocation. */
#define SPK_ST_MAX_HEADER  100000000ull
#define SPK_JSON_MAX_DEPTH 32

static int spk_host_is_le(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void spk_bswap32_buf(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * A small strict JSON parser (RFC 8259 syntax) into a tree; enough for the safetensors header. */

enum { SPK_J_NULL, SPK_J_BOOL, SPK_J_NUM, SPK_J_STR, SPK_J_ARR, SPK_J_OBJ };

typedef struct spk_json {
    int type;
    int is_int; /* SPK_J_NUM: an integer that fits int64 */
    int64_t ival;
    char *str; /* SPK_J_STR: decoded UTF-8, NUL-terminated (\u0000 is refused) */
    int n;     /* SPK_J_ARR / SPK_J_OBJ: number of items */
    int cap;
    struct spk_json *items;
    char **keys; /* SPK_J_OBJ only */
} spk_json;

typedef struct spk_jparser {
    const char *s;
    size_t len, pos;
    const char *path; /* for messages */
    spk_error *err;
} spk_jparser;

static void spk_json_clear(spk_json *v)
{
    if (!v)
        return;
    free(v->str);
    for (int i = 0; i < v->n; i++) {
        spk_json_clear(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

static int spk_jfail(spk_jparser *p, const char *what)
{
    return spk_error_set(p->err, SPK_ERR_PARSE, "%s: bad JSON header at byte %zu: %s", p->path,
                         p->pos, what);
}

static void spk_jws(spk_jparser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int spk_jhex4(spk_jparser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return spk_jfail(p, "short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return spk_jfail(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return SPK_OK;
}

/* Parses a string at p->pos (which is at the opening quote) into a malloc'ed C string. */
static int spk_jstring(spk_jparser *p, char **out)
{
    p->pos++; /* opening quote */
    /* The decoded text is never longer than the encoded text up to the closing quote. */
    size_t start = p->pos, end = start;
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len) {
        p->pos = p->len;
        return spk_jfail(p, "unterminated string");
    }
    char *buf = malloc(end - start + 1);
    if (!buf)
        return spk_error_set(p->err, SPK_ERR_NOMEM, "%s: out of memory parsing the header",
                             p->path);
    size_t o = 0;
    int rc = SPK_OK;
    for (;;) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            rc = spk_jfail(p, "control character in string");
            goto fail;
        }
        if (c != '\\') {
            buf[o++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"':
            buf[o++] = '"';
            break;
        case '\\':
            buf[o++] = '\\';
            break;
        case '/':
            buf[o++] = '/';
            break;
        case 'b':
            buf[o++] = '\b';
            break;
        case 'f':
            buf[o++] = '\f';
            break;
        case 'n':
            buf[o++] = '\n';
            break;
        case 'r':
            buf[o++] = '\r';
            break;
        case 't':
            buf[o++] = '\t';
            break;
        case 'u': {
            uint32_t cp;
            if ((rc = spk_jhex4(p, &cp)))
                goto fail;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                rc = spk_jfail(p, "lone low surrogate in \\u escape");
                goto fail;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    rc = spk_jfail(p, "high surrogate without a low one");
                    goto fail;
                }
                p->pos += 2;
                if ((rc = spk_jhex4(p, &lo)))
                    goto fail;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    rc = spk_jfail(p, "high surrogate without a low one");
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0) {
                rc = spk_jfail(p, "\\u0000 in string is not supported");
                goto fail;
            }
            /* At most 4 UTF-8 bytes from at least 6 escape bytes: fits the buffer. */
            if (cp < 0x80) {
                buf[o++] = (char)cp;
            } else if (cp < 0x800) {
                buf[o++] = (char)(0xC0 | (cp >> 6));
                buf[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                buf[o++] = (char)(0xE0 | (cp >> 12));
                buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[o++] = (char)(0xF0 | (cp >> 18));
                buf[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[o++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            p->pos--;
            rc = spk_jfail(p, "bad escape in string");
            goto fail;
        }
    }
    buf[o] = '\0';
    *out = buf;
    return SPK_OK;
fail:
    free(buf);
    return rc;
}

static int spk_jnumber(spk_jparser *p, spk_json *v)
{
    size_t i = p->pos;
    int neg = 0, frac = 0;
    if (i < p->len && p->s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
        return spk_jfail(p, "bad number");
    size_t int_start = i;
    if (p->s[i] == '0') {
        i++;
    } else {
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    size_t int_end = i;
    if (i < p->len && p->s[i] == '.') {
        frac = 1;
        i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9') {
            p->pos = i;
            return spk_jfail(p, "bad number: no digits after '.'");
        }
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        frac = 1;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9') {
            p->pos = i;
            return spk_jfail(p, "bad number: no digits in exponent");
        }
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    v->type = SPK_J_NUM;
    v->is_int = 0;
    if (!frac) {
        /* Exact int64 conversion; anything out of range simply is not an integer for us. */
        uint64_t acc = 0;
        int ok = 1;
        for (size_t k = int_start; k < int_end; k++) {
            unsigned d = (unsigned)(p->s[k] - '0');
            if (acc > (UINT64_MAX - d) / 10) {
                ok = 0;
                break;
            }
            acc = acc * 10 + d;
        }
        if (ok && !neg && acc <= (uint64_t)INT64_MAX) {
            v->is_int = 1;
            v->ival = (int64_t)acc;
        } else if (ok && neg && acc <= (uint64_t)INT64_MAX) {
            v->is_int = 1;
            v->ival = -(int64_t)acc;
        }
    }
    p->pos = i;
    return SPK_OK;
}

static int spk_jliteral(spk_jparser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return spk_jfail(p, "unexpected character");
    p->pos += n;
    return SPK_OK;
}

/* Appends an empty item (and key slot for objects); returns it or NULL when out of memory. */
static spk_json *spk_jpush(spk_jparser *p, spk_json *v)
{
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        spk_json *items = realloc(v->items, (size_t)cap * sizeof *items);
        if (!items)
            goto nomem;
        v->items = items;
        if (v->type == SPK_J_OBJ) {
            char **keys = realloc(v->keys, (size_t)cap * sizeof *keys);
            if (!keys)
                goto nomem;
            v->keys = keys;
        }
        v->cap = cap;
    }
    spk_json *it = &v->items[v->n];
    memset(it, 0, sizeof *it);
    if (v->keys)
        v->keys[v->n] = NULL;
    v->n++;
    return it;
nomem:
    spk_error_set(p->err, SPK_ERR_NOMEM, "%s: out of memory parsing the header", p->path);
    return NULL;
}

static int spk_jvalue(spk_jparser *p, spk_json *v, int depth)
{
    spk_jws(p);
    if (p->pos >= p->len)
        return spk_jfail(p, "unexpected end of header");
    if (depth > SPK_JSON_MAX_DEPTH)
        return spk_jfail(p, "nested too deeply");
    char c = p->s[p->pos];
    int rc;
    switch (c) {
    case '{':
    case '[': {
        int obj = c == '{';
        char close = obj ? '}' : ']';
        v->type = obj ? SPK_J_OBJ : SPK_J_ARR;
        p->pos++;
        spk_jws(p);
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return SPK_OK;
        }
        for (;;) {
            char *key = NULL;
            spk_jws(p);
            if (obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"')
                    return spk_jfail(p, "expected a string key");
                if ((rc = spk_jstring(p, &key)))
                    return rc;
                for (int i = 0; i < v->n; i++) {
                    if (strcmp(v->keys[i], key) == 0) {
                        rc = spk_error_set(p->err, SPK_ERR_PARSE,
                                           "%s: bad JSON header at byte %zu: duplicate key \"%s\"",
                                           p->path, p->pos, key);
                        free(key);
                        return rc;
                    }
                }
                spk_jws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') {
                    free(key);
                    return spk_jfail(p, "expected ':' after key");
                }
                p->pos++;
            }
            spk_json *it = spk_jpush(p, v);
            if (!it) {
                free(key);
                return SPK_ERR_NOMEM;
            }
            if (obj)
                v->keys[v->n - 1] = key;
            if ((rc = spk_jvalue(p, it, depth + 1)))
                return rc;
            spk_jws(p);
            if (p->pos >= p->len)
                return spk_jfail(p, obj ? "unterminated object" : "unterminated array");
            if (p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->s[p->pos] == close) {
                p->pos++;
                return SPK_OK;
            }
            return spk_jfail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    case '"':
        v->type = SPK_J_STR;
        return spk_jstring(p, &v->str);
    case 't':
        v->type = SPK_J_BOOL;
        v->ival = 1;
        return spk_jliteral(p, "true");
    case 'f':
        v->type = SPK_J_BOOL;
        return spk_jliteral(p, "false");
    case 'n':
        v->type = SPK_J_NULL;
        return spk_jliteral(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return spk_jnumber(p, v);
        return spk_jfail(p, "unexpected character");
    }
}

/* Parses the whole text as one JSON value with only whitespace after it. */
static int spk_json_parse(const char *s, size_t len, const char *path, spk_json *out,
                          spk_error *err)
{
    spk_jparser p = {s, len, 0, path, err};
    memset(out, 0, sizeof *out);
    int rc = spk_jvalue(&p, out, 0);
    if (!rc) {
        spk_jws(&p);
        if (p.pos != p.len)
            rc = spk_jfail(&p, "unexpected text after the header object");
    }
    if (rc)
        spk_json_clear(out);
    return rc;
}

static const spk_json *spk_json_get(const spk_json *obj, const char *key)
{
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Writer */

typedef struct spk_sbuf {
    char *s;
    size_t len, cap;
    int oom;
} spk_sbuf;

static void spk_sb_put(spk_sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void spk_sb_str(spk_sbuf *b, const char *s)
{
    spk_sb_put(b, s, strlen(s));
}

/* A JSON string literal; bytes >= 0x80 pass through, so UTF-8 names stay UTF-8. */
static void spk_sb_jstr(spk_sbuf *b, const char *s)
{
    spk_sb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"':
            spk_sb_put(b, "\\\"", 2);
            break;
        case '\\':
            spk_sb_put(b, "\\\\", 2);
            break;
        case '\n':
            spk_sb_put(b, "\\n", 2);
            break;
        case '\r':
            spk_sb_put(b, "\\r", 2);
            break;
        case '\t':
            spk_sb_put(b, "\\t", 2);
            break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*c);
                spk_sb_put(b, esc, 6);
            } else {
                spk_sb_put(b, (const char *)c, 1);
            }
        }
    }
    spk_sb_put(b, "\"", 1);
}

static int spk_st_numel(const spk_st_tensor *t, uint64_t *numel)
{
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            return -1;
        uint64_t s = (uint64_t)t->shape[d];
        if (s && n > (UINT64_MAX / 4) / s)
            return -1;
        n *= s;
    }
    *numel = n;
    return 0;
}

/* Checks the arguments before anything touches the disk. */
static int spk_st_check_args(const char *path, int n, const spk_st_tensor *tensors, int n_meta,
                             const char *const *meta_keys, const char *const *meta_vals,
                             spk_error *err)
{
    if (!path || !*path)
        return spk_error_set(err, SPK_ERR_INVALID, "safetensors: empty output path");
    if (n < 0 || (n > 0 && !tensors))
        return spk_error_set(err, SPK_ERR_INVALID, "%s: bad tensor list (n = %d)", path, n);
    if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_vals)))
        return spk_error_set(err, SPK_ERR_INVALID, "%s: bad metadata list (n_meta = %d)", path,
                             n_meta);
    for (int i = 0; i < n; i++) {
        const spk_st_tensor *t = &tensors[i];
        if (!t->name || !*t->name)
            return spk_error_set(err, SPK_ERR_INVALID, "%s: tensor %d has no name", path, i);
        if (strcmp(t->name, "__metadata__") == 0)
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "%s: \"__metadata__\" is reserved and cannot name a tensor", path);
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0)
                return spk_error_set(err, SPK_ERR_INVALID, "%s: duplicate tensor name '%s'", path,
                                     t->name);
        if (t->ndim < 0 || t->ndim > SPK_ST_MAX_DIMS)
            return spk_error_set(err, SPK_ERR_INVALID, "%s: tensor '%s' has %d dimensions (0..%d)",
                                 path, t->name, t->ndim, SPK_ST_MAX_DIMS);
        uint64_t numel;
        if (spk_st_numel(t, &numel))
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "%s: tensor '%s' has a negative or oversized shape", path,
                                 t->name);
        if (numel > 0 && !t->data)
            return spk_error_set(err, SPK_ERR_INVALID, "%s: tensor '%s' has no data", path,
                                 t->name);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_vals[i])
            return spk_error_set(err, SPK_ERR_INVALID, "%s: metadata entry %d is NULL", path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(meta_keys[j], meta_keys[i]) == 0)
                return spk_error_set(err, SPK_ERR_INVALID, "%s: duplicate metadata key '%s'", path,
                                     meta_keys[i]);
    }
    return SPK_OK;
}

static int spk_write_all(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int spk_st_write_data(FILE *f, const spk_st_tensor *t, uint64_t numel)
{
    if (numel == 0)
        return 0;
    if (spk_host_is_le())
        return spk_write_all(f, t->data, (size_t)numel * 4);
    float chunk[1024];
    for (uint64_t off = 0; off < numel; off += 1024) {
        size_t k = numel - off < 1024 ? (size_t)(numel - off) : 1024;
        memcpy(chunk, t->data + off, k * 4);
        spk_bswap32_buf(chunk, k);
        if (spk_write_all(f, chunk, k * 4))
            return -1;
    }
    return 0;
}

/* fsyncs the folder holding path, so the rename itself survives a crash. */
static int spk_sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = malloc(2);
        if (dir)
            strcpy(dir, ".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* Some file systems cannot fsync a folder (EINVAL); there is nothing more to do there. */
    if (rc != 0 && errno == EINVAL)
        rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int spk_safetensors_write(const char *path, int n, const spk_st_tensor *tensors, int n_meta,
                          const char *const *meta_keys, const char *const *meta_vals,
                          spk_error *err)
{
    int rc = spk_st_check_args(path, n, tensors, n_meta, meta_keys, meta_vals, err);
    if (rc)
        return rc;

    /* The header, with contiguous data offsets in the order given. */
    spk_sbuf h = {0};
    char num[64];
    uint64_t off = 0;
    spk_sb_str(&h, "{");
    if (n_meta > 0) {
        spk_sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                spk_sb_str(&h, ",");
            spk_sb_jstr(&h, meta_keys[i]);
            spk_sb_str(&h, ":");
            spk_sb_jstr(&h, meta_vals[i]);
        }
        spk_sb_str(&h, "}");
    }
    for (int i = 0; i < n; i++) {
        const spk_st_tensor *t = &tensors[i];
        uint64_t numel = 0;
        spk_st_numel(t, &numel);
        if (i || n_meta > 0)
            spk_sb_str(&h, ",");
        spk_sb_jstr(&h, t->name);
        spk_sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", t->shape[d]);
            spk_sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off,
                 off + numel * 4);
        spk_sb_str(&h, num);
        off += numel * 4;
    }
    spk_sb_str(&h, "}");
    /* Spaces up to a multiple of 8 keep the data section 8-byte aligned, as upstream does. */
    while (!h.oom && h.len % 8)
        spk_sb_str(&h, " ");
    if (h.oom) {
        free(h.s);
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory building the header", path);
    }

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(h.s);
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = spk_error_set(err, SPK_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                           strerror(errno));
        free(tmp);
        free(h.s);
        return rc;
    }
    const char *stage = "write";
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int bad = spk_write_all(f, len8, 8) || spk_write_all(f, h.s, h.len);
    for (int i = 0; i < n && !bad; i++) {
        uint64_t numel = 0;
        spk_st_numel(&tensors[i], &numel);
        bad = spk_st_write_data(f, &tensors[i], numel);
    }
    if (!bad && fflush(f) != 0)
        bad = 1;
    if (!bad && fsync(fileno(f)) != 0) {
        stage = "fsync";
        bad = 1;
    }
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        stage = "close";
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        stage = "rename";
        bad = 1;
        e = errno;
    }
    if (bad) {
        remove(tmp);
        rc = spk_error_set(err, SPK_ERR_IO,
                           "%s: %s of %s failed: %s (existing file left as it was)", path, stage,
                           strcmp(stage, "rename") ? tmp : "the temporary file", strerror(e));
        free(tmp);
        free(h.s);
        return rc;
    }
    free(tmp);
    free(h.s);
    if (spk_sync_dir_of(path) != 0)
        return spk_error_set(err, SPK_ERR_IO,
                             "%s: written, but syncing its folder failed: %s (the new file may "
                             "not survive a crash)",
                             path, strerror(errno));
    return SPK_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Reader */

void spk_st_file_free(spk_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++) {
        free(f->tensors[i].name);
        free(f->tensors[i].data);
    }
    free(f->tensors);
    free(f);
}

const spk_st_tensor *spk_st_file_find(const spk_st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

typedef struct spk_st_entry {
    const char *name; /* borrowed from the parsed header */
    int ndim;
    int64_t shape[SPK_ST_MAX_DIMS];
    uint64_t begin, end;
} spk_st_entry;

static int spk_st_entry_cmp(const void *a, const void *b)
{
    const spk_st_entry *x = a, *y = b;
    return x->begin < y->begin   ? -1
           : x->begin > y->begin ? 1
                                 : (x->end > y->end) - (x->end < y->end);
}

/* Validates one tensor entry of the header against the data section of data_len bytes. */
static int spk_st_entry_parse(const char *path, const char *name, const spk_json *v,
                              uint64_t data_len, spk_st_entry *e, spk_error *err)
{
    if (v->type != SPK_J_OBJ)
        return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': entry is not an object", path,
                             name);
    const spk_json *dt = spk_json_get(v, "dtype");
    const spk_json *sh = spk_json_get(v, "shape");
    const spk_json *of = spk_json_get(v, "data_offsets");
    if (!dt || !sh || !of)
        return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': missing \"%s\"", path, name,
                             !dt   ? "dtype"
                             : !sh ? "shape"
                                   : "data_offsets");
    if (dt->type != SPK_J_STR)
        return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': dtype is not a string", path,
                             name);
    if (strcmp(dt->str, "F32") != 0)
        return spk_error_set(err, SPK_ERR_UNSUPPORTED,
                             "%s: tensor '%s' has dtype %s; only F32 is supported", path, name,
                             dt->str);
    if (sh->type != SPK_J_ARR || sh->n > SPK_ST_MAX_DIMS)
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: tensor '%s': shape must be an array of at most %d integers", path,
                             name, SPK_ST_MAX_DIMS);
    uint64_t numel = 1;
    e->name = name;
    e->ndim = sh->n;
    for (int d = 0; d < sh->n; d++) {
        const spk_json *x = &sh->items[d];
        if (x->type != SPK_J_NUM || !x->is_int || x->ival < 0)
            return spk_error_set(err, SPK_ERR_PARSE,
                                 "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                                 name, d);
        e->shape[d] = x->ival;
        uint64_t s = (uint64_t)x->ival;
        if (s && numel > (UINT64_MAX / 4) / s)
            return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': shape is too large", path,
                                 name);
        numel *= s;
    }
    if (of->type != SPK_J_ARR || of->n != 2)
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: tensor '%s': data_offsets must be [begin, end]", path, name);
    for (int k = 0; k < 2; k++)
        if (of->items[k].type != SPK_J_NUM || !of->items[k].is_int || of->items[k].ival < 0)
            return spk_error_set(err, SPK_ERR_PARSE,
                                 "%s: tensor '%s': data_offsets[%d] is not a non-negative integer",
                                 path, name, k);
    e->begin = (uint64_t)of->items[0].ival;
    e->end = (uint64_t)of->items[1].ival;
    if (e->end < e->begin)
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                             "] end before they begin",
                             path, name, e->begin, e->end);
    if (e->end > data_len)
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                             "] lie outside the %" PRIu64 "-byte data section",
                             path, name, e->begin, e->end, data_len);
    if (e->end - e->begin != numel * 4)
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: tensor '%s': data_offsets span %" PRIu64
                             " bytes but the shape needs %" PRIu64 " (F32)",
                             path, name, e->end - e->begin, numel * 4);
    return SPK_OK;
}

int spk_safetensors_read(const char *path, spk_st_file **out, spk_error *err)
{
    if (!out)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_safetensors_read: out is NULL");
    *out = NULL;
    if (!path)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_safetensors_read: path is NULL");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return spk_error_set(err, SPK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));

    int rc = SPK_OK;
    char *hdr = NULL;
    spk_json root = {0};
    spk_st_entry *ents = NULL;
    spk_st_file *res = NULL;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        rc = spk_error_set(err, SPK_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = spk_error_set(err, SPK_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    uint64_t fsize = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (fsize < 8 || fread(len8, 1, 8, fp) != 8) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: truncated: %" PRIu64 " bytes, too short for a safetensors file",
                           path, fsize);
        goto out;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen < 2 || hlen > SPK_ST_MAX_HEADER || hlen > fsize - 8) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: header length %" PRIu64 " is not sane for a %" PRIu64
                           "-byte file (not a safetensors file?)",
                           path, hlen, fsize);
        goto out;
    }
    hdr = malloc((size_t)hlen);
    if (!hdr) {
        rc = spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory for the header", path);
        goto out;
    }
    if (fread(hdr, 1, (size_t)hlen, fp) != (size_t)hlen) {
        rc = spk_error_set(err, SPK_ERR_IO, "%s: cannot read the header: %s", path,
                           ferror(fp) ? strerror(errno) : "unexpected end of file");
        goto out;
    }
    if (hdr[0] != '{') {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: header does not start with '{' (not a safetensors file?)", path);
        goto out;
    }
    if ((rc = spk_json_parse(hdr, (size_t)hlen, path, &root, err)))
        goto out;
    if (root.type != SPK_J_OBJ) {
        rc = spk_error_set(err, SPK_ERR_PARSE, "%s: header is not a JSON object", path);
        goto out;
    }
    uint64_t data_len = fsize - 8 - hlen;
    ents = calloc((size_t)root.n + 1, sizeof *ents);
    if (!ents) {
        rc = spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    int ne = 0;
    for (int i = 0; i < root.n; i++) {
        const spk_json *v = &root.items[i];
        if (strcmp(root.keys[i], "__metadata__") == 0) {
            /* Metadata is checked for shape but not returned: the API has no place for it. */
            int ok = v->type == SPK_J_OBJ;
            for (int k = 0; ok && k < v->n; k++)
                ok = v->items[k].type == SPK_J_STR;
            if (!ok) {
                rc = spk_error_set(err, SPK_ERR_PARSE,
                                   "%s: __metadata__ must map strings to strings", path);
                goto out;
            }
            continue;
        }
        if ((rc = spk_st_entry_parse(path, root.keys[i], v, data_len, &ents[ne], err)))
            goto out;
        ne++;
    }
    /* As upstream: the tensors must tile the data section exactly, without gaps or overlaps. */
    qsort(ents, (size_t)ne, sizeof *ents, spk_st_entry_cmp);
    uint64_t at = 0;
    for (int i = 0; i < ne; i++) {
        if (ents[i].begin != at) {
            rc = spk_error_set(err, SPK_ERR_PARSE,
                               "%s: tensor '%s' starts at data offset %" PRIu64
                               ", expected %" PRIu64 " (%s)",
                               path, ents[i].name, ents[i].begin, at,
                               ents[i].begin < at ? "overlaps another tensor" : "gap in the data");
            goto out;
        }
        at = ents[i].end;
    }
    if (at != data_len) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: the tensors cover %" PRIu64
                           " bytes but the data section has %" PRIu64 "%s",
                           path, at, data_len, at < data_len ? " (trailing bytes)" : "");
        goto out;
    }

    res = calloc(1, sizeof *res);
    if (!res || !(res->tensors = calloc((size_t)ne + 1, sizeof *res->tensors))) {
        rc = spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    /* Tensors come back in data order, which for files we wrote is the order they were given. */
    int little = spk_host_is_le();
    for (int i = 0; i < ne; i++) {
        spk_st_tensor *t = &res->tensors[i];
        size_t bytes = (size_t)(ents[i].end - ents[i].begin);
        t->name = malloc(strlen(ents[i].name) + 1);
        t->data = malloc(bytes ? bytes : 1);
        res->n = i + 1; /* so that spk_st_file_free releases what is here so far */
        if (!t->name || !t->data) {
            rc = spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory for tensor '%s'", path,
                               ents[i].name);
            goto out;
        }
        strcpy(t->name, ents[i].name);
        t->ndim = ents[i].ndim;
        memcpy(t->shape, ents[i].shape, sizeof t->shape);
        if (bytes && fread(t->data, 1, bytes, fp) != bytes) {
            rc = spk_error_set(err, SPK_ERR_IO, "%s: cannot read tensor '%s': %s", path, t->name,
                               ferror(fp) ? strerror(errno) : "unexpected end of file");
            goto out;
        }
        if (!little)
            spk_bswap32_buf(t->data, bytes / 4);
    }
out:
    if (rc) {
        spk_st_file_free(res);
        res = NULL;
    }
    free(ents);
    spk_json_clear(&root);
    free(hdr);
    fclose(fp);
    *out = res;
    return rc;
}
