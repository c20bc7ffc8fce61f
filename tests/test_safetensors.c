/* safetensors: round trips, a file laid out as the upstream (Python/Rust) writer does, corrupt
 * headers, and the atomic write. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spikecl/safetensors.h"
#include "testutil.h"

/* ---- helpers ---- */

static char *tmp_path(const char *name)
{
    size_t n = strlen(spk_test_tmpdir()) + strlen(name) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", spk_test_tmpdir(), name);
    return p;
}

static char *write_bytes(const char *name, const void *data, size_t len)
{
    char *p = tmp_path(name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "cannot create %s", p);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    return p;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0, r;
    unsigned char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* A safetensors file from a header text and data bytes (header length = strlen(header)). */
static char *write_st(const char *name, const char *header, const void *data, size_t dlen)
{
    size_t hl = strlen(header);
    unsigned char *buf = malloc(8 + hl + dlen + 1);
    cr_assert_not_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (dlen)
        memcpy(buf + 8 + hl, data, dlen);
    char *p = write_bytes(name, buf, 8 + hl + dlen);
    free(buf);
    return p;
}

/* Number of entries in dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* memmem is a GNU extension; this is the portable few lines. */
static const void *find_mem(const void *hay, size_t hlen, const char *needle, size_t nlen)
{
    const unsigned char *h = hay;
    for (size_t i = 0; nlen <= hlen && i <= hlen - nlen; i++)
        if (memcmp(h + i, needle, nlen) == 0)
            return h + i;
    return NULL;
}

static void drop(char *path)
{
    if (path)
        remove(path);
    free(path);
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static void expect_tensor(const spk_st_file *f, const spk_st_tensor *want)
{
    const spk_st_tensor *t = spk_st_file_find(f, want->name);
    cr_assert_not_null(t, "tensor '%s' missing", want->name);
    cr_expect_eq(t->ndim, want->ndim, "'%s' ndim", want->name);
    size_t numel = 1;
    for (int d = 0; d < want->ndim; d++) {
        cr_expect_eq(t->shape[d], want->shape[d], "'%s' dim %d", want->name, d);
        numel *= (size_t)want->shape[d];
    }
    cr_expect(same_bits(t->data, want->data, numel), "'%s' data differ", want->name);
}

/* ---- round trips ---- */

Test(safetensors, round_trip_no_metadata)
{
    float a[5] = {1.0f, -2.5f, 0.0f, -0.0f, 3.1415927f};
    float b[12];
    spk_test_fill(b, 12, -1.0f, 1.0f, 3);
    b[3] = INFINITY;
    b[4] = -INFINITY;
    b[5] = NAN;
    float c = 42.0f;
    spk_st_tensor ts[4] = {
        {.name = "fc1.weight", .ndim = 2, .shape = {3, 4}, .data = b},
        {.name = "fc1.bias", .ndim = 1, .shape = {5}, .data = a},
        {.name = "scalar", .ndim = 0, .data = &c},
        {.name = "empty", .ndim = 2, .shape = {0, 3}, .data = NULL},
    };
    char *p = tmp_path("rt.safetensors");
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_write(p, 4, ts, 0, NULL, NULL, &err), SPK_OK, "%s", err.msg);

    /* The layout: u64 LE header length, a multiple of 8, JSON starting with '{', then data. */
    size_t len;
    unsigned char *raw = read_all(p, &len);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)raw[i] << (8 * i);
    cr_expect_eq(hl % 8, 0u, "header length %llu", (unsigned long long)hl);
    cr_expect_eq(raw[8], '{');
    cr_expect_eq(len, 8 + hl + (12 + 5 + 1) * 4);
    cr_expect_null(find_mem(raw + 8, (size_t)hl, "__metadata__", 12));
    /* Little-endian float32 data right after the header, in the order given. */
    cr_expect_eq(memcmp(raw + 8 + hl, b, 48), 0);
    free(raw);

    spk_st_file *f = NULL;
    cr_assert_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(f->n, 4);
    for (int i = 0; i < 4; i++) {
        cr_expect_str_eq(f->tensors[i].name, ts[i].name, "order kept");
        expect_tensor(f, &ts[i]);
    }
    cr_expect_null(spk_st_file_find(f, "nope"));
    spk_st_file_free(f);
    drop(p);
}

Test(safetensors, round_trip_with_metadata_and_odd_names)
{
    float w[6] = {1, 2, 3, 4, 5, 6};
    float v[2] = {-1, 1};
    spk_st_tensor ts[2] = {
        {.name = "quote\"back\\slash\ttab", .ndim = 2, .shape = {2, 3}, .data = w},
        {.name = "\xc2\xb5-\xe2\x82\xac", .ndim = 1, .shape = {2}, .data = v}, /* "µ-€" */
    };
    const char *keys[3] = {"format", "model", "note"};
    const char *vals[3] = {"pt", "name: \"x\"\n", "\x01 control"};
    char *p = tmp_path("meta.safetensors");
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_write(p, 2, ts, 3, keys, vals, &err), SPK_OK, "%s", err.msg);
    size_t len;
    unsigned char *raw = read_all(p, &len);
    cr_expect_not_null(find_mem(raw, len, "\"__metadata__\":{\"format\":\"pt\"", 29));
    cr_expect_not_null(find_mem(raw, len, "\\u0001 control", 14));
    free(raw);

    spk_st_file *f = NULL;
    cr_assert_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(f->n, 2);
    expect_tensor(f, &ts[0]);
    expect_tensor(f, &ts[1]);
    spk_st_file_free(f);
    drop(p);
}

Test(safetensors, zero_tensors)
{
    char *p = tmp_path("none.safetensors");
    spk_error err = {0};
    const char *k = "k", *v = "v";
    cr_assert_eq(spk_safetensors_write(p, 0, NULL, 1, &k, &v, &err), SPK_OK, "%s", err.msg);
    spk_st_file *f = NULL;
    cr_assert_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(f->n, 0);
    spk_st_file_free(f);
    cr_assert_eq(spk_safetensors_write(p, 0, NULL, 0, NULL, NULL, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(f->n, 0);
    spk_st_file_free(f);
    drop(p);
}

/* Bytes as safetensors.torch.save_file writes them for
 *   {"bias": [0.5, -1], "scale": 3.25 (0-d), "weight": [[1, 2, 3], [4, 5, -6.5]]},
 *   metadata={"format": "pt"}:
 * metadata first, tensors sorted by name, compact JSON padded with spaces to a multiple of 8. */
Test(safetensors, read_upstream_layout)
{
    static const char header[] =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"scale\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
        "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[12,36]}}"
        " "; /* 207 bytes of JSON + 1 space = 208 */
    static const unsigned char data[36] = {
        0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80, 0xbf,                         /* 0.5, -1 */
        0x00, 0x00, 0x50, 0x40,                                                 /* 3.25 */
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40, /* 1, 2, 3 */
        0x00, 0x00, 0x80, 0x40, 0x00, 0x00, 0xa0, 0x40, 0x00, 0x00, 0xd0, 0xc0, /* 4, 5, -6.5 */
    };
    cr_assert_eq(strlen(header), 208u);
    unsigned char file[8 + 208 + 36] = {0xd0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(file + 8, header, 208);
    memcpy(file + 216, data, 36);
    char *p = write_bytes("upstream.safetensors", file, sizeof file);

    spk_st_file *f = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(f->n, 3);
    const spk_st_tensor *b = spk_st_file_find(f, "bias");
    const spk_st_tensor *s = spk_st_file_find(f, "scale");
    const spk_st_tensor *w = spk_st_file_find(f, "weight");
    cr_assert(b && s && w);
    cr_expect_eq(b->ndim, 1);
    cr_expect_eq(b->shape[0], 2);
    cr_expect_eq(b->data[0], 0.5f);
    cr_expect_eq(b->data[1], -1.0f);
    cr_expect_eq(s->ndim, 0);
    cr_expect_eq(s->data[0], 3.25f);
    cr_expect_eq(w->ndim, 2);
    cr_expect_eq(w->shape[0], 2);
    cr_expect_eq(w->shape[1], 3);
    const float want[6] = {1, 2, 3, 4, 5, -6.5f};
    for (int i = 0; i < 6; i++)
        cr_expect_eq(w->data[i], want[i], "weight[%d] = %g", i, (double)w->data[i]);
    spk_st_file_free(f);
    drop(p);
}

/* Whitespace, escapes and key order that a hand-written or other writer may produce. */
Test(safetensors, read_json_variants)
{
    const char *header = "{ \"w\\u00e9\\ud83d\\ude00\" : { \"data_offsets\" : [ 0 , 8 ] ,\n"
                         "\t\"shape\" : [ 2 ], \"dtype\" : \"F32\", \"extra\": [true, false, null,"
                         " -1.5e-3, {\"x\": \"\\/\"}] } }";
    const float d[2] = {7.0f, 8.0f};
    char *p = write_st("variants.safetensors", header, d, sizeof d);
    spk_st_file *f = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(f->n, 1);
    /* w, e-acute (U+00E9), grinning face (U+1F600) in UTF-8 */
    cr_expect_str_eq(f->tensors[0].name, "w\xc3\xa9\xf0\x9f\x98\x80");
    cr_expect_eq(f->tensors[0].data[1], 8.0f);
    spk_st_file_free(f);
    drop(p);
}

/* ---- corrupt files ---- */

struct bad_case {
    const char *header;
    size_t dlen;
    int code;
    const char *needle;
};

/* Each case fails with its code, a message holding the needle and the file's path, and no result.
 */
static void expect_bad_cases(const char *prefix, const struct bad_case *cases, size_t n)
{
    static const float data[8] = {0};
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s%zu.safetensors", prefix, i);
        char *p = write_st(name, cases[i].header, data, cases[i].dlen);
        spk_st_file *f = (spk_st_file *)0x1;
        spk_error err = {0};
        int rc = spk_safetensors_read(p, &f, &err);
        cr_expect_eq(rc, cases[i].code, "%s case %zu (%s): rc %d, message: %s", prefix, i,
                     cases[i].header, rc, err.msg);
        cr_expect_null(f, "%s case %zu: out not NULL on failure", prefix, i);
        cr_expect_not_null(strstr(err.msg, cases[i].needle), "%s case %zu: wanted \"%s\" in: %s",
                           prefix, i, cases[i].needle, err.msg);
        cr_expect_not_null(strstr(err.msg, p), "%s case %zu: file not named in: %s", prefix, i,
                           err.msg);
        drop(p);
    }
}

Test(safetensors, corrupt_headers)
{
    const struct bad_case cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",", 8, SPK_ERR_PARSE, "bad JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, SPK_ERR_PARSE,
         "end of file expected near 'x'"},
        {"{\"a\":{\"dtype\":\"F32\" \"shape\":[2],\"data_offsets\":[0,8]}}", 8, SPK_ERR_PARSE,
         "'}' expected near '\"shape\"'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", 8, SPK_ERR_PARSE,
         "bad JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, SPK_ERR_PARSE,
         "bad JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{}}", 8,
         SPK_ERR_PARSE, "duplicate object key near '\"a\"'"},
        {"{\"a\\q\":{}}", 0, SPK_ERR_PARSE, "invalid escape"},
        {"{\"a\\ud800\":{}}", 0, SPK_ERR_PARSE, "invalid Unicode '\\uD800'"},
        {"{\"a\tb\":{}}", 0, SPK_ERR_PARSE, "control character"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}\"unterminated", 8,
         SPK_ERR_PARSE, "bad JSON"},
        {"[1, 2]", 0, SPK_ERR_PARSE, "start with '{'"},
        {"{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8, SPK_ERR_UNSUPPORTED,
         "tensor 'w' has dtype F16; only F32"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[100],\"data_offsets\":[0,400]}}", 8, SPK_ERR_PARSE,
         "outside the 8-byte data section"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, SPK_ERR_PARSE,
         "shape needs 12"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, SPK_ERR_PARSE,
         "end before they begin"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, SPK_ERR_PARSE,
         "shape[0] is not a non-negative integer"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, SPK_ERR_PARSE,
         "shape[0]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8, SPK_ERR_PARSE,
         "data_offsets must be [begin, end]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, SPK_ERR_PARSE, "missing \"data_offsets\""},
        {"{\"w\":[1]}", 0, SPK_ERR_PARSE, "tensor 'w': entry is not an object"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         16, SPK_ERR_PARSE, "overlaps"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, SPK_ERR_PARSE,
         "gap"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, SPK_ERR_PARSE,
         "trailing bytes"},
        {"{\"__metadata__\":{\"k\":1}}", 0, SPK_ERR_PARSE, "__metadata__ must map strings"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         SPK_ERR_PARSE, "at most 8"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", 8,
         SPK_ERR_PARSE, "too big integer near '99999999999999999999' (a number out of range)"},
    };
    expect_bad_cases("bad", cases, sizeof cases / sizeof cases[0]);
}

/* The strict parse: a duplicate key anywhere is refused, not resolved to one of the values. */
Test(safetensors, duplicate_keys_anywhere)
{
    const struct bad_case cases[] = {
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, SPK_ERR_PARSE, "duplicate object key near '\"w\"'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"shape\":[1]}}", 8,
         SPK_ERR_PARSE, "duplicate object key near '\"shape\"'"},
        {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, SPK_ERR_PARSE,
         "duplicate object key near '\"k\"'"},
        /* the same key once escaped, once not */
        {"{\"__metadata__\":{\"k\":\"a\",\"\\u006b\":\"b\"}}", 0, SPK_ERR_PARSE,
         "duplicate object key"},
    };
    expect_bad_cases("dup", cases, sizeof cases / sizeof cases[0]);
}

/* Text that is not UTF-8 (raw bytes, overlong forms, encoded surrogates, beyond U+10FFFF) and
 * NUL characters are refused wherever they stand. */
Test(safetensors, invalid_utf8_and_nul)
{
    const struct bad_case cases[] = {
        {"{\"w\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SPK_ERR_PARSE,
         "unable to decode byte 0xff near '\"w' (the header is not valid UTF-8)"},
        {"{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}", 0, SPK_ERR_PARSE, "not valid UTF-8"},
        {"{\"__metadata__\":{\"k\":\"\xed\xa0\x80\"}}", 0, SPK_ERR_PARSE, "not valid UTF-8"},
        {"{\"__metadata__\":{\"k\":\"\xf4\x90\x80\x80\"}}", 0, SPK_ERR_PARSE, "not valid UTF-8"},
        {"{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, SPK_ERR_PARSE, "\\u0000 is not allowed"},
    };
    expect_bad_cases("utf8", cases, sizeof cases / sizeof cases[0]);

    /* The writer refuses such names before it touches the disk. */
    float v[2] = {1, 2};
    spk_st_tensor t = {.name = "w\xff", .ndim = 1, .shape = {2}, .data = v};
    char *p = tmp_path("utf8w.safetensors");
    spk_error err = {0};
    cr_expect_eq(spk_safetensors_write(p, 1, &t, 0, NULL, NULL, &err), SPK_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "tensor 0's name is not UTF-8"), "message: %s", err.msg);
    const char *k = "k", *bad = "\xc3(";
    spk_error_clear(&err);
    cr_expect_eq(spk_safetensors_write(p, 0, NULL, 1, &k, &bad, &err), SPK_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "metadata entry 0 is not UTF-8"), "message: %s", err.msg);
    struct stat st;
    cr_expect_neq(stat(p, &st), 0, "a file was written");
    cr_expect_eq(count_prefixed(spk_test_tmpdir(), "utf8w.safetensors.tmp"), 0);
    free(p);
}

/* Numbers: integers are exact up to int64 and refused beyond; a real out of double range is
 * refused even in a field we ignore; an offset near 2^63 is a format error, not an overflow. */
Test(safetensors, huge_numbers)
{
    const struct bad_case cases[] = {
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]}}", 8,
         SPK_ERR_PARSE, "too big integer near '9223372036854775808' (a number out of range)"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-9223372036854775809],\"data_offsets\":[0,8]}}", 8,
         SPK_ERR_PARSE, "too big negative integer"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1e400}}", 8,
         SPK_ERR_PARSE, "real number overflow near '1e400'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[9223372036854775799,9223372036854775807]}}",
         8, SPK_ERR_PARSE, "lie outside the 8-byte data section"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],"
         "\"data_offsets\":[0,8]}}",
         8, SPK_ERR_PARSE, "tensor 'w': shape is too large"},
    };
    expect_bad_cases("num", cases, sizeof cases / sizeof cases[0]);
}

/* jansson bounds the nesting (2048 levels in 2.14), so a hostile header cannot exhaust the
 * stack; modest nesting in a field we ignore is fine. */
Test(safetensors, deep_nesting)
{
    static const float data[2] = {7, 8};
    const int deep = 5000, modest = 40;
    size_t cap = 64 + 2 * (size_t)deep;
    char *h = malloc(cap);
    cr_assert_not_null(h);
    for (int round = 0; round < 2; round++) {
        int levels = round ? modest : deep;
        size_t n = (size_t)snprintf(h, cap,
                                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                                    "\"data_offsets\":[0,8],\"x\":");
        memset(h + n, '[', (size_t)levels);
        memset(h + n + levels, ']', (size_t)levels);
        strcpy(h + n + 2 * (size_t)levels, "}}");
        char *p = write_st(round ? "modest.safetensors" : "deep.safetensors", h, data, 8);
        spk_st_file *f = NULL;
        spk_error err = {0};
        int rc = spk_safetensors_read(p, &f, &err);
        if (round) {
            cr_expect_eq(rc, SPK_OK, "%s", err.msg);
            cr_expect(f && f->n == 1 && f->tensors[0].data[1] == 8.0f);
        } else {
            cr_expect_eq(rc, SPK_ERR_PARSE);
            cr_expect_not_null(strstr(err.msg, "maximum parsing depth reached"), "%s", err.msg);
            cr_expect_not_null(strstr(err.msg, "(nested too deeply)"), "%s", err.msg);
            cr_expect_not_null(strstr(err.msg, p), "%s", err.msg);
        }
        spk_st_file_free(f);
        drop(p);
    }
    free(h);
}

Test(safetensors, bad_lengths_and_missing)
{
    spk_st_file *f = NULL;
    spk_error err = {0};

    char *p = write_bytes("short.safetensors", "\x10\0\0", 3);
    cr_expect_eq(spk_safetensors_read(p, &f, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "truncated"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, p), "message: %s", err.msg);
    drop(p);

    /* Header length beyond the end of the file. */
    const unsigned char big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    p = write_bytes("biglen.safetensors", big, sizeof big);
    spk_error_clear(&err);
    cr_expect_eq(spk_safetensors_read(p, &f, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "header length 65535 is not sane"), "message: %s", err.msg);
    drop(p);

    /* Header length with the top bit set (would overflow a signed size). */
    const unsigned char huge[16] = {8, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    p = write_bytes("hugelen.safetensors", huge, sizeof huge);
    spk_error_clear(&err);
    cr_expect_eq(spk_safetensors_read(p, &f, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "not sane"), "message: %s", err.msg);
    drop(p);

    spk_error_clear(&err);
    cr_expect_eq(spk_safetensors_read("/nonexistent-spikecl/x.safetensors", &f, &err), SPK_ERR_IO);
    cr_expect_not_null(strstr(err.msg, "/nonexistent-spikecl/x.safetensors"), "message: %s",
                       err.msg);
    cr_expect_not_null(strstr(err.msg, "No such file"), "message: %s", err.msg);
    cr_expect_null(f);
}

/* ---- the atomic write ---- */

static const spk_st_tensor *one_tensor(float *buf, int n)
{
    static spk_st_tensor t;
    t.name = "w";
    t.ndim = 1;
    t.shape[0] = n;
    t.data = buf;
    return &t;
}

Test(safetensors, overwrite_and_no_temp_left)
{
    const char *dir = spk_test_tmpdir();
    char *p = tmp_path("ckpt.safetensors");
    float v1[3] = {1, 2, 3}, v2[4] = {9, 8, 7, 6};
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_write(p, 1, one_tensor(v1, 3), 0, NULL, NULL, &err), SPK_OK, "%s",
                 err.msg);
    cr_assert_eq(spk_safetensors_write(p, 1, one_tensor(v2, 4), 0, NULL, NULL, &err), SPK_OK, "%s",
                 err.msg);
    cr_expect_eq(count_prefixed(dir, "ckpt.safetensors.tmp"), 0, "a temporary file was left");
    spk_st_file *f = NULL;
    cr_assert_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(f->tensors[0].shape[0], 4);
    cr_expect(same_bits(f->tensors[0].data, v2, 4));
    spk_st_file_free(f);
    drop(p);
}

Test(safetensors, write_into_missing_folder_fails_cleanly)
{
    float v[2] = {1, 2};
    spk_error err = {0};
    const char *p = "/nonexistent-spikecl/sub/ckpt.safetensors";
    cr_expect_eq(spk_safetensors_write(p, 1, one_tensor(v, 2), 0, NULL, NULL, &err), SPK_ERR_IO);
    cr_expect_not_null(strstr(err.msg, p), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "No such file"), "message: %s", err.msg);
}

/* Bad arguments are refused before the disk is touched: the old file stays byte for byte. */
Test(safetensors, invalid_arguments_leave_old_file)
{
    const char *dir = spk_test_tmpdir();
    char *p = tmp_path("keep.safetensors");
    float v[3] = {1, 2, 3};
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_write(p, 1, one_tensor(v, 3), 0, NULL, NULL, &err), SPK_OK, "%s",
                 err.msg);
    size_t len0, len1;
    unsigned char *before = read_all(p, &len0);

    spk_st_tensor dup[2] = {{.name = "a", .ndim = 1, .shape = {3}, .data = v},
                            {.name = "a", .ndim = 1, .shape = {3}, .data = v}};
    cr_expect_eq(spk_safetensors_write(p, 2, dup, 0, NULL, NULL, &err), SPK_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "duplicate tensor name 'a'"), "message: %s", err.msg);
    spk_st_tensor neg = {.name = "n", .ndim = 1, .shape = {-3}, .data = v};
    cr_expect_eq(spk_safetensors_write(p, 1, &neg, 0, NULL, NULL, &err), SPK_ERR_INVALID);
    spk_st_tensor nodata = {.name = "n", .ndim = 1, .shape = {3}, .data = NULL};
    cr_expect_eq(spk_safetensors_write(p, 1, &nodata, 0, NULL, NULL, &err), SPK_ERR_INVALID);
    spk_st_tensor reserved = {.name = "__metadata__", .ndim = 1, .shape = {3}, .data = v};
    cr_expect_eq(spk_safetensors_write(p, 1, &reserved, 0, NULL, NULL, &err), SPK_ERR_INVALID);
    spk_st_tensor deep = {.name = "d", .ndim = SPK_ST_MAX_DIMS + 1, .data = v};
    cr_expect_eq(spk_safetensors_write(p, 1, &deep, 0, NULL, NULL, &err), SPK_ERR_INVALID);

    unsigned char *after = read_all(p, &len1);
    cr_expect_eq(len0, len1);
    cr_expect_eq(memcmp(before, after, len0), 0, "the old file changed");
    cr_expect_eq(count_prefixed(dir, "keep.safetensors.tmp"), 0);
    free(before);
    free(after);
    drop(p);
}

/* The rename fails (the target is a folder): the error says so and no temporary file is left. */
Test(safetensors, rename_failure_cleans_up)
{
    const char *dir = spk_test_tmpdir();
    char *p = tmp_path("isdir.safetensors");
    cr_assert_eq(mkdir(p, 0755), 0);
    float v[2] = {1, 2};
    spk_error err = {0};
    cr_expect_eq(spk_safetensors_write(p, 1, one_tensor(v, 2), 0, NULL, NULL, &err), SPK_ERR_IO);
    cr_expect_not_null(strstr(err.msg, "rename"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, p), "message: %s", err.msg);
    struct stat st;
    cr_expect(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "the folder at the path was replaced");
    cr_expect_eq(count_prefixed(dir, "isdir.safetensors.tmp"), 0, "a temporary file was left");
    rmdir(p);
    free(p);
}

/* A write that fails half way (file-size limit, which holds even for root): the old file is
 * intact and the temporary file is gone. Criterion runs each test in its own process, so the
 * limit stays in this test. */
Test(safetensors, failed_write_keeps_old_file)
{
    const char *dir = spk_test_tmpdir();
    char *p = tmp_path("old.safetensors");
    float small[4] = {1, 2, 3, 4};
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_write(p, 1, one_tensor(small, 4), 0, NULL, NULL, &err), SPK_OK,
                 "%s", err.msg);
    size_t len0, len1;
    unsigned char *before = read_all(p, &len0);

    signal(SIGXFSZ, SIG_IGN); /* so an oversized write fails with EFBIG instead of killing us */
    struct rlimit rl = {.rlim_cur = 64 * 1024, .rlim_max = RLIM_INFINITY};
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    rl.rlim_max = old.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);

    const int n = 100000; /* 400 KB of data, well over the limit */
    float *big = calloc((size_t)n, sizeof *big);
    cr_assert_not_null(big);
    int rc = spk_safetensors_write(p, 1, one_tensor(big, n), 0, NULL, NULL, &err);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_expect_eq(rc, SPK_ERR_IO, "rc %d: %s", rc, err.msg);
    cr_expect_not_null(strstr(err.msg, p), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "left as it was"), "message: %s", err.msg);

    unsigned char *after = read_all(p, &len1);
    cr_expect_eq(len0, len1, "old file size changed");
    cr_expect_eq(memcmp(before, after, len0 < len1 ? len0 : len1), 0, "the old file changed");
    cr_expect_eq(count_prefixed(dir, "old.safetensors.tmp"), 0, "a temporary file was left");
    spk_st_file *f = NULL;
    cr_expect_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    spk_st_file_free(f);
    free(big);
    free(before);
    free(after);
    drop(p);
}

/* Issue #8: a checkpoint writer killed mid-write (here by SIGXFSZ at the file-size limit) leaves
 * its temporary file; the next write of the checkpoint removes it once it is stale. */
Test(safetensors, temp_file_of_killed_writer_is_removed)
{
    char *dir = tmp_path("killed");
    cr_assert_eq(mkdir(dir, 0755), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/ckpt.safetensors", dir);
    const int n = 100000; /* 400 KB, over the 64 KB limit below */
    float *big = calloc((size_t)n, sizeof *big);
    cr_assert_not_null(big);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        struct rlimit fs = {64 * 1024, 64 * 1024}, core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        setrlimit(RLIMIT_FSIZE, &fs);
        signal(SIGXFSZ, SIG_DFL);
        spk_safetensors_write(p, 1, one_tensor(big, n), 0, NULL, NULL, NULL);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ, "the writer was not killed");
    cr_assert_eq(count_prefixed(dir, "ckpt.safetensors.tmp."), 1);

    /* Age it past the threshold (a fresh one might belong to a writer on another host). */
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "ckpt.safetensors.tmp.", 21) != 0)
            continue;
        struct timespec ts[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
        cr_assert_eq(utimensat(dirfd(d), e->d_name, ts, 0), 0);
    }
    closedir(d);
    spk_error err = {0};
    float v[2] = {1, 2};
    cr_assert_eq(spk_safetensors_write(p, 1, one_tensor(v, 2), 0, NULL, NULL, &err), SPK_OK, "%s",
                 err.msg);
    cr_expect_eq(count_prefixed(dir, "ckpt.safetensors.tmp."), 0, "the stale file is still there");
    spk_st_file *f = NULL;
    cr_expect_eq(spk_safetensors_read(p, &f, &err), SPK_OK, "%s", err.msg);
    spk_st_file_free(f);
    remove(p);
    rmdir(dir);
    free(dir);
    free(big);
}
