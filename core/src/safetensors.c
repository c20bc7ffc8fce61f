/* spikecl — safetensors reader and atomic writer for float32 tensors.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data section; offsets are relative to its start. The JSON is read and written by
 * jansson (untrusted input deserves a well-kept parser); this file keeps the format's rules. */
#define _POSIX_C_SOURCE 200809L

#include "spikecl/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"

/* The upstream reader refuses headers above 100 MB; so do we, which also bounds our allocation. */
#define SPK_ST_MAX_HEADER 100000000ull

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

/* Whether jansson takes s as a JSON string: valid UTF-8. A failed allocation of a few bytes here
 * would be reported as bad text; the header build right after would fail on it anyway. */
static int spk_st_is_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
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
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        const spk_st_tensor *t = &tensors[i];
        if (!t->name || !*t->name)
            return spk_error_set(err, SPK_ERR_INVALID, "%s: tensor %d has no name", path, i);
        if (!spk_st_is_utf8(t->name))
            return spk_error_set(err, SPK_ERR_INVALID, "%s: tensor %d's name is not UTF-8 text",
                                 path, i);
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
        /* JSON integers are int64: the offsets must stay below 2^63. */
        if (numel > (uint64_t)INT64_MAX / 4 - total / 4)
            return spk_error_set(err, SPK_ERR_INVALID, "%s: tensors of more than 2^63 bytes", path);
        total += numel * 4;
        if (numel > 0 && !t->data)
            return spk_error_set(err, SPK_ERR_INVALID, "%s: tensor '%s' has no data", path,
                                 t->name);
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_vals[i])
            return spk_error_set(err, SPK_ERR_INVALID, "%s: metadata entry %d is NULL", path, i);
        if (!spk_st_is_utf8(meta_keys[i]) || !spk_st_is_utf8(meta_vals[i]))
            return spk_error_set(err, SPK_ERR_INVALID, "%s: metadata entry %d is not UTF-8 text",
                                 path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(meta_keys[j], meta_keys[i]) == 0)
                return spk_error_set(err, SPK_ERR_INVALID, "%s: duplicate metadata key '%s'", path,
                                     meta_keys[i]);
    }
    return SPK_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Writer */

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

/* What the atomic write puts in the file: length, header, data. */
typedef struct spk_st_out {
    const char *hdr;
    size_t hlen;
    int n;
    const spk_st_tensor *tensors;
} spk_st_out;

static int spk_st_fill(FILE *f, void *ctx)
{
    const spk_st_out *o = ctx;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)o->hlen >> (8 * i));
    if (spk_write_all(f, len8, 8) || spk_write_all(f, o->hdr, o->hlen))
        return -1;
    for (int i = 0; i < o->n; i++) {
        uint64_t numel = 0;
        spk_st_numel(&o->tensors[i], &numel);
        if (spk_st_write_data(f, &o->tensors[i], numel))
            return -1;
    }
    return 0;
}

/* The header object, with contiguous data offsets in the order given; NULL when out of memory.
 * Objects keep their insertion order, so __metadata__ comes first as upstream writes it. */
static json_t *spk_st_header(int n, const spk_st_tensor *tensors, int n_meta,
                             const char *const *meta_keys, const char *const *meta_vals)
{
    json_t *root = json_object(), *meta = n_meta > 0 ? json_object() : NULL;
    int bad = !root || (n_meta > 0 && (!meta || json_object_set(root, "__metadata__", meta)));
    for (int i = 0; i < n_meta && !bad; i++)
        bad = json_object_set_new(meta, meta_keys[i], json_string(meta_vals[i]));
    uint64_t off = 0;
    for (int i = 0; i < n && !bad; i++) {
        const spk_st_tensor *t = &tensors[i];
        uint64_t numel = 0;
        spk_st_numel(t, &numel);
        json_t *e = json_object(), *shape = json_array(), *offs = json_array();
        bad = !e || !shape || !offs || json_object_set_new(e, "dtype", json_string("F32")) ||
              json_object_set(e, "shape", shape) || json_object_set(e, "data_offsets", offs) ||
              json_array_append_new(offs, json_integer((json_int_t)off)) ||
              json_array_append_new(offs, json_integer((json_int_t)(off + numel * 4))) ||
              json_object_set(root, t->name, e);
        for (int d = 0; d < t->ndim && !bad; d++)
            bad = json_array_append_new(shape, json_integer(t->shape[d]));
        json_decref(shape);
        json_decref(offs);
        json_decref(e);
        off += numel * 4;
    }
    json_decref(meta);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int spk_safetensors_write(const char *path, int n, const spk_st_tensor *tensors, int n_meta,
                          const char *const *meta_keys, const char *const *meta_vals,
                          spk_error *err)
{
    int rc = spk_st_check_args(path, n, tensors, n_meta, meta_keys, meta_vals, err);
    if (rc)
        return rc;
    json_t *root = spk_st_header(n, tensors, n_meta, meta_keys, meta_vals);
    size_t len = root ? json_dumpb(root, NULL, 0, JSON_COMPACT) : 0;
    /* Spaces up to a multiple of 8 keep the data section 8-byte aligned, as upstream does. */
    char *hdr = len ? malloc(len + 8) : NULL;
    if (!hdr || json_dumpb(root, hdr, len, JSON_COMPACT) != len) {
        free(hdr);
        json_decref(root);
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    json_decref(root);
    while (len % 8)
        hdr[len++] = ' ';
    spk_st_out o = {hdr, len, n, tensors};
    rc = spk_fs_write_atomic(path, 0666, spk_st_fill, &o, err);
    free(hdr);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reader */

/* Strict: duplicate keys, text after the object, \u0000, invalid UTF-8 and integers beyond int64
 * are refused; jansson also bounds the nesting depth (2048 levels in 2.14). */
static int spk_st_parse_header(const char *path, const char *hdr, size_t len, json_t **out,
                               spk_error *err)
{
    json_error_t je;
    *out = json_loadb(hdr, len, JSON_REJECT_DUPLICATES, &je);
    if (*out)
        return SPK_OK;
    enum json_error_code jc = json_error_code(&je);
    /* jansson's own words for these do not say what is wrong with the file. */
    const char *why = jc == json_error_invalid_utf8       ? " (the header is not valid UTF-8)"
                      : jc == json_error_stack_overflow   ? " (nested too deeply)"
                      : jc == json_error_numeric_overflow ? " (a number out of range)"
                                                          : "";
    return spk_error_set(err, jc == json_error_out_of_memory ? SPK_ERR_NOMEM : SPK_ERR_PARSE,
                         "%s: bad JSON header at byte %d: %s%s", path, je.position, je.text, why);
}

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
static int spk_st_entry_parse(const char *path, const char *name, const json_t *v,
                              uint64_t data_len, spk_st_entry *e, spk_error *err)
{
    if (!json_is_object(v))
        return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': entry is not an object", path,
                             name);
    const json_t *dt = json_object_get(v, "dtype");
    const json_t *sh = json_object_get(v, "shape");
    const json_t *of = json_object_get(v, "data_offsets");
    if (!dt || !sh || !of)
        return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': missing \"%s\"", path, name,
                             !dt   ? "dtype"
                             : !sh ? "shape"
                                   : "data_offsets");
    if (!json_is_string(dt))
        return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': dtype is not a string", path,
                             name);
    if (strcmp(json_string_value(dt), "F32") != 0)
        return spk_error_set(err, SPK_ERR_UNSUPPORTED,
                             "%s: tensor '%s' has dtype %s; only F32 is supported", path, name,
                             json_string_value(dt));
    if (!json_is_array(sh) || json_array_size(sh) > SPK_ST_MAX_DIMS)
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: tensor '%s': shape must be an array of at most %d integers", path,
                             name, SPK_ST_MAX_DIMS);
    uint64_t numel = 1;
    e->name = name;
    e->ndim = (int)json_array_size(sh);
    for (int d = 0; d < e->ndim; d++) {
        const json_t *x = json_array_get(sh, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return spk_error_set(err, SPK_ERR_PARSE,
                                 "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                                 name, d);
        e->shape[d] = json_integer_value(x);
        uint64_t s = (uint64_t)e->shape[d];
        if (s && numel > (UINT64_MAX / 4) / s)
            return spk_error_set(err, SPK_ERR_PARSE, "%s: tensor '%s': shape is too large", path,
                                 name);
        numel *= s;
    }
    if (!json_is_array(of) || json_array_size(of) != 2)
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: tensor '%s': data_offsets must be [begin, end]", path, name);
    for (int k = 0; k < 2; k++)
        if (!json_is_integer(json_array_get(of, (size_t)k)) ||
            json_integer_value(json_array_get(of, (size_t)k)) < 0)
            return spk_error_set(err, SPK_ERR_PARSE,
                                 "%s: tensor '%s': data_offsets[%d] is not a non-negative integer",
                                 path, name, k);
    e->begin = (uint64_t)json_integer_value(json_array_get(of, 0));
    e->end = (uint64_t)json_integer_value(json_array_get(of, 1));
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
    json_t *root = NULL;
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
    if ((rc = spk_st_parse_header(path, hdr, (size_t)hlen, &root, err)))
        goto out;
    if (!json_is_object(root)) {
        rc = spk_error_set(err, SPK_ERR_PARSE, "%s: header is not a JSON object", path);
        goto out;
    }
    uint64_t data_len = fsize - 8 - hlen;
    ents = calloc(json_object_size(root) + 1, sizeof *ents);
    if (!ents) {
        rc = spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    int ne = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) {
            /* Metadata is checked for shape but not returned: the API has no place for it. */
            int ok = json_is_object(v);
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) ok = ok && json_is_string(mv);
            if (!ok) {
                rc = spk_error_set(err, SPK_ERR_PARSE,
                                   "%s: __metadata__ must map strings to strings", path);
                goto out;
            }
            continue;
        }
        if ((rc = spk_st_entry_parse(path, key, v, data_len, &ents[ne], err)))
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
    json_decref(root);
    free(hdr);
    fclose(fp);
    *out = res;
    return rc;
}
