/* IDX reading, data-folder lookup and the seeded batch loader. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/data.h"
#include "testutil.h"

/* The first 500 images of MNIST's test split, shipped with the tests (see tests/data/README). */
#define MNIST_DIR   SPK_SOURCE_DIR "/tests/data/mnist"
#define T10K_IMAGES MNIST_DIR "/t10k-images-idx3-ubyte.gz"
#define T10K_LABELS MNIST_DIR "/t10k-labels-idx1-ubyte.gz"

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

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A raw IDX3 file: header with magic and claimed dims, then pix_len bytes of pixels. */
static char *write_idx3(const char *name, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                        const uint8_t *pix, size_t pix_len)
{
    unsigned char *buf = malloc(16 + pix_len);
    cr_assert_not_null(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    if (pix_len)
        memcpy(buf + 16, pix, pix_len);
    char *p = write_bytes(name, buf, 16 + pix_len);
    free(buf);
    return p;
}

static char *write_idx1(const char *name, uint32_t magic, uint32_t n, const uint8_t *lab,
                        size_t lab_len)
{
    unsigned char *buf = malloc(8 + lab_len);
    cr_assert_not_null(buf);
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    if (lab_len)
        memcpy(buf + 8, lab, lab_len);
    char *p = write_bytes(name, buf, 8 + lab_len);
    free(buf);
    return p;
}

static void drop(char *path)
{
    if (path)
        remove(path);
    free(path);
}

static spk_dataset *load_t10k(void)
{
    spk_dataset *ds = NULL;
    spk_error err = {0};
    int rc = spk_dataset_load_idx(T10K_IMAGES, T10K_LABELS, &ds, &err);
    cr_assert_eq(rc, SPK_OK, "loading t10k: %s", err.msg);
    cr_assert_not_null(ds);
    return ds;
}

/* A small synthetic set: n samples of 2 x 3 pixels, pixel j of sample i = (i * 7 + j) % 251,
 * label = i % 10. */
static spk_dataset *make_set(int n)
{
    spk_dataset *ds = calloc(1, sizeof *ds);
    cr_assert_not_null(ds);
    ds->n = n;
    ds->channels = 1;
    ds->height = 2;
    ds->width = 3;
    ds->n_classes = 10;
    ds->pixels = malloc((size_t)n * 6);
    ds->labels = malloc((size_t)n);
    cr_assert(ds->pixels && ds->labels);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 6; j++)
            ds->pixels[i * 6 + j] = (uint8_t)((i * 7 + j) % 251);
        ds->labels[i] = (uint8_t)(i % 10);
    }
    return ds;
}

/* Runs one epoch and stores the sample ids in order; returns how many came. */
static int epoch_order(spk_loader *ld, int epoch, uint32_t *ids, int cap)
{
    spk_loader_start_epoch(ld, epoch);
    int total = 0, got;
    uint32_t buf[64];
    while ((got = spk_loader_next(ld, 1.0f, NULL, NULL, buf)) > 0) {
        cr_assert_leq(total + got, cap);
        memcpy(ids + total, buf, (size_t)got * sizeof *buf);
        total += got;
    }
    return total;
}

/* ---- IDX reading ---- */

Test(data, load_mnist_t10k_gz)
{
    spk_dataset *ds = load_t10k();
    cr_expect_eq(ds->n, 500);
    cr_expect_eq(ds->channels, 1);
    cr_expect_eq(ds->height, 28);
    cr_expect_eq(ds->width, 28);
    cr_expect_eq(ds->n_classes, 10);
    /* First labels and pixel sums, computed independently with Python's gzip module. */
    const uint8_t first[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
    for (int i = 0; i < 10; i++)
        cr_expect_eq(ds->labels[i], first[i], "label %d: %d", i, ds->labels[i]);
    long s0 = 0, s1 = 0;
    long long all = 0;
    for (int j = 0; j < 784; j++) {
        s0 += ds->pixels[j];
        s1 += ds->pixels[784 + j];
    }
    for (size_t j = 0; j < (size_t)500 * 784; j++)
        all += ds->pixels[j];
    cr_expect_eq(s0, 18454, "pixel sum of image 0: %ld", s0);
    cr_expect_eq(s1, 28850, "pixel sum of image 1: %ld", s1);
    cr_expect_eq(all, 12054721LL, "pixel sum of all images: %lld", all);
    const int expect[10] = {42, 67, 55, 45, 55, 50, 43, 49, 40, 54};
    int counts[10] = {0};
    for (int i = 0; i < ds->n; i++)
        counts[ds->labels[i]]++;
    for (int c = 0; c < 10; c++)
        cr_expect_eq(counts[c], expect[c], "class %d has %d samples", c, counts[c]);
    spk_dataset_free(ds);
}

/* A raw (uncompressed) copy of part of the set reads back identically. */
Test(data, load_raw_idx)
{
    spk_dataset *ds = load_t10k();
    char *ip = write_idx3("img-raw", 0x803, 100, 28, 28, ds->pixels, 100 * 784);
    char *lp = write_idx1("lab-raw", 0x801, 100, ds->labels, 100);
    spk_dataset *sub = NULL;
    spk_error err = {0};
    int rc = spk_dataset_load_idx(ip, lp, &sub, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    cr_expect_eq(sub->n, 100);
    cr_expect_eq(sub->height, 28);
    cr_expect_eq(sub->width, 28);
    cr_expect_eq(memcmp(sub->pixels, ds->pixels, 100 * 784), 0);
    cr_expect_eq(memcmp(sub->labels, ds->labels, 100), 0);
    /* n_classes follows the largest label present. */
    int mx = 0;
    for (int i = 0; i < 100; i++)
        mx = ds->labels[i] > mx ? ds->labels[i] : mx;
    cr_expect_eq(sub->n_classes, mx + 1);
    spk_dataset_free(sub);
    spk_dataset_free(ds);
    drop(ip);
    drop(lp);
}

Test(data, n_classes_is_max_label_plus_one)
{
    const uint8_t pix[3 * 4] = {0};
    const uint8_t lab[3] = {0, 3, 1};
    char *ip = write_idx3("img-c", 0x803, 3, 2, 2, pix, sizeof pix);
    char *lp = write_idx1("lab-c", 0x801, 3, lab, sizeof lab);
    spk_dataset *ds = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_dataset_load_idx(ip, lp, &ds, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(ds->n_classes, 4);
    cr_expect_eq(ds->height, 2);
    spk_dataset_free(ds);
    drop(ip);
    drop(lp);
}

Test(data, truncated_pixels)
{
    spk_dataset *ds = load_t10k();
    /* The header claims 100 images but only 50 and a half are there. */
    char *ip = write_idx3("img-trunc", 0x803, 100, 28, 28, ds->pixels, 50 * 784 + 300);
    char *lp = write_idx1("lab-trunc", 0x801, 100, ds->labels, 100);
    spk_dataset *out = (spk_dataset *)0x1;
    spk_error err = {0};
    int rc = spk_dataset_load_idx(ip, lp, &out, &err);
    cr_expect_eq(rc, SPK_ERR_PARSE);
    cr_expect_eq(err.code, SPK_ERR_PARSE);
    cr_expect_null(out);
    cr_expect_not_null(strstr(err.msg, "truncated"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, ip), "message does not name the file: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "78400"), "message lacks the expected size: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "39500"), "message lacks the size found: %s", err.msg);
    spk_dataset_free(ds);
    drop(ip);
    drop(lp);
}

Test(data, truncated_header_and_labels)
{
    const unsigned char half[10] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0};
    char *ip = write_bytes("img-short", half, sizeof half);
    char *lp = write_idx1("lab-ok", 0x801, 1, (const uint8_t *)"\3", 1);
    spk_dataset *out = NULL;
    spk_error err = {0};
    cr_expect_eq(spk_dataset_load_idx(ip, lp, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "truncated"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "header"), "message: %s", err.msg);

    const uint8_t pix[4 * 4] = {0};
    char *ip2 = write_idx3("img-4", 0x803, 4, 2, 2, pix, sizeof pix);
    char *lp2 = write_idx1("lab-short", 0x801, 4, (const uint8_t *)"\1\2", 2);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(ip2, lp2, &out, &err), SPK_ERR_PARSE);
    cr_expect_null(out);
    cr_expect_not_null(strstr(err.msg, "truncated"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, lp2), "message: %s", err.msg);

    /* An empty file is truncated too, not a crash. */
    char *empty = write_bytes("empty", "", 0);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(empty, lp2, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "truncated"), "message: %s", err.msg);
    drop(ip);
    drop(lp);
    drop(ip2);
    drop(lp2);
    drop(empty);
}

/* A gzip file cut in half: zlib hits the end of the stream early. */
Test(data, truncated_gzip)
{
    FILE *f = fopen(T10K_IMAGES, "rb");
    cr_assert_not_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert(n > 10000 && n < sizeof buf, "read %zu bytes", n);
    char *ip = write_bytes("img-half.gz", buf, n / 2);
    spk_dataset *out = NULL;
    spk_error err = {0};
    int rc = spk_dataset_load_idx(ip, T10K_LABELS, &out, &err);
    cr_expect_eq(rc, SPK_ERR_PARSE);
    cr_expect_null(out);
    cr_expect_not_null(strstr(err.msg, "truncated"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, ip), "message: %s", err.msg);
    drop(ip);
}

Test(data, bad_magic)
{
    const uint8_t pix[4] = {1, 2, 3, 4};
    char *ip = write_idx3("img-magic", 0x12345678, 1, 2, 2, pix, 4);
    char *lp = write_idx1("lab-magic", 0x801, 1, (const uint8_t *)"\0", 1);
    spk_dataset *out = NULL;
    spk_error err = {0};
    cr_expect_eq(spk_dataset_load_idx(ip, lp, &out, &err), SPK_ERR_PARSE);
    cr_expect_null(out);
    cr_expect_not_null(strstr(err.msg, "bad magic 0x12345678, expected 0x00000803 (IDX3 images)"),
                       "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, ip), "message: %s", err.msg);

    /* Label and image files swapped: both directions are caught and explained. */
    char *ip2 = write_idx3("img-good", 0x803, 1, 2, 2, pix, 4);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(lp, ip2, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "magic"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "label file"), "message: %s", err.msg);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(ip2, ip2, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "expected 0x00000801 (IDX1 labels)"), "message: %s",
                       err.msg);
    drop(ip);
    drop(lp);
    drop(ip2);
}

Test(data, missing_file)
{
    const char *missing = "/nonexistent-spikecl/t10k-images-idx3-ubyte.gz";
    spk_dataset *out = NULL;
    spk_error err = {0};
    cr_expect_eq(spk_dataset_load_idx(missing, T10K_LABELS, &out, &err), SPK_ERR_IO);
    cr_expect_null(out);
    cr_expect_not_null(strstr(err.msg, missing), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "No such file"), "message: %s", err.msg);

    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(T10K_IMAGES, "/nonexistent-spikecl/labels", &out, &err),
                 SPK_ERR_IO);
    cr_expect_not_null(strstr(err.msg, "/nonexistent-spikecl/labels"), "message: %s", err.msg);
    cr_expect_eq(spk_dataset_load_idx(NULL, T10K_LABELS, &out, NULL), SPK_ERR_INVALID);
}

Test(data, count_mismatch_and_zero)
{
    const uint8_t pix[3 * 4] = {0};
    const uint8_t lab[3] = {1, 2, 3};
    char *ip = write_idx3("img-3", 0x803, 3, 2, 2, pix, sizeof pix);
    char *lp = write_idx1("lab-2", 0x801, 2, lab, 2);
    spk_dataset *out = NULL;
    spk_error err = {0};
    cr_expect_eq(spk_dataset_load_idx(ip, lp, &out, &err), SPK_ERR_PARSE);
    cr_expect_null(out);
    cr_expect_not_null(strstr(err.msg, "label count 2 does not match the image count 3"),
                       "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, lp), "message: %s", err.msg);

    char *lp0 = write_idx1("lab-0", 0x801, 0, lab, 0);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(ip, lp0, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "label count is 0"), "message: %s", err.msg);

    char *ip0 = write_idx3("img-0", 0x803, 0, 2, 2, pix, 0);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(ip0, lp, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "image count is 0"), "message: %s", err.msg);

    /* A header claiming absurd sizes over a short file is truncated, not a huge allocation. */
    char *ipx = write_idx3("img-huge", 0x803, 0x7fffffff, 0x10000, 0x10000, pix, sizeof pix);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(ipx, lp, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "truncated"), "message: %s", err.msg);
    cr_expect_null(out);
    char *ipy = write_idx3("img-wide", 0x803, 1, 0x10001, 1, pix, sizeof pix);
    spk_error_clear(&err);
    cr_expect_eq(spk_dataset_load_idx(ipy, lp, &out, &err), SPK_ERR_PARSE);
    cr_expect_not_null(strstr(err.msg, "implausible dimensions"), "message: %s", err.msg);
    drop(ip);
    drop(lp);
    drop(lp0);
    drop(ip0);
    drop(ipx);
    drop(ipy);
}

/* ---- find_in_dir ---- */

Test(data, find_in_dir_t10k)
{
    char *ip = NULL, *lp = NULL;
    spk_error err = {0};
    int rc = spk_dataset_find_in_dir(MNIST_DIR, 0, &ip, &lp, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    cr_expect_str_eq(ip, T10K_IMAGES);
    cr_expect_str_eq(lp, T10K_LABELS);
    spk_dataset *ds = NULL;
    cr_expect_eq(spk_dataset_load_idx(ip, lp, &ds, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(ds ? ds->n : 0, 500);
    spk_dataset_free(ds);
    free(ip);
    free(lp);
}

Test(data, find_in_dir_train_missing)
{
    char *ip = (char *)0x1, *lp = (char *)0x1;
    spk_error err = {0};
    int rc = spk_dataset_find_in_dir(MNIST_DIR, 1, &ip, &lp, &err);
    cr_expect_eq(rc, SPK_ERR_NOTFOUND);
    cr_expect_null(ip);
    cr_expect_null(lp);
    cr_expect_not_null(strstr(err.msg, MNIST_DIR), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "train-images-idx3-ubyte"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "train-images-idx3-ubyte.gz"), "message: %s", err.msg);
    cr_expect_not_null(strstr(err.msg, "train-labels-idx1-ubyte"), "message: %s", err.msg);

    spk_error_clear(&err);
    rc = spk_dataset_find_in_dir("/nonexistent-spikecl-dir", 0, &ip, &lp, &err);
    cr_expect_eq(rc, SPK_ERR_NOTFOUND);
    cr_expect_not_null(strstr(err.msg, "/nonexistent-spikecl-dir"), "message: %s", err.msg);
}

/* Plain files are found too, and preferred over .gz when both are there. */
Test(data, find_in_dir_raw_and_partial)
{
    const char *dir = spk_test_tmpdir();
    char *a = write_bytes("train-images-idx3-ubyte", "x", 1);
    char *b = write_bytes("train-images-idx3-ubyte.gz", "x", 1);
    char *ip = NULL, *lp = NULL;
    spk_error err = {0};
    /* Only the images: the message says the labels are what is missing. */
    cr_expect_eq(spk_dataset_find_in_dir(dir, 1, &ip, &lp, &err), SPK_ERR_NOTFOUND);
    cr_expect_not_null(strstr(err.msg, "missing train-labels-idx1-ubyte[.gz]"), "message: %s",
                       err.msg);
    char *c = write_bytes("train-labels-idx1-ubyte.gz", "x", 1);
    spk_error_clear(&err);
    cr_assert_eq(spk_dataset_find_in_dir(dir, 1, &ip, &lp, &err), SPK_OK, "%s", err.msg);
    cr_expect_str_eq(ip, a);
    cr_expect_str_eq(lp, c);
    free(ip);
    free(lp);
    drop(a);
    drop(b);
    drop(c);
}

/* ---- loader ---- */

Test(loader, sizes_and_partial_batch)
{
    spk_dataset *ds = make_set(103);
    spk_loader *ld = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_loader_new(ds, 10, 1, 42, 0, &ld, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_loader_size(ld), 103);
    cr_expect_eq(spk_loader_batches(ld), 11);
    float x[10 * 6];
    int32_t lab[10];
    uint32_t ids[10];
    int sizes[12] = {0}, nb = 0, got;
    spk_loader_start_epoch(ld, 0);
    while ((got = spk_loader_next(ld, 0.5f, x, lab, ids)) > 0) {
        cr_assert_lt(nb, 11);
        sizes[nb++] = got;
        for (int k = 0; k < got; k++) {
            cr_assert_lt(ids[k], 103u);
            cr_expect_eq(lab[k], (int32_t)(ids[k] % 10));
            for (int j = 0; j < 6; j++)
                cr_expect_eq(x[k * 6 + j], 0.5f * (float)((ids[k] * 7 + (uint32_t)j) % 251));
        }
    }
    cr_expect_eq(nb, 11);
    for (int b = 0; b < 10; b++)
        cr_expect_eq(sizes[b], 10);
    cr_expect_eq(sizes[10], 3);
    /* The end of an epoch stays the end until the next start. */
    cr_expect_eq(spk_loader_next(ld, 1.0f, x, lab, ids), 0);
    spk_loader_free(ld);

    /* Batch larger than the set: one partial batch. */
    cr_assert_eq(spk_loader_new(ds, 1000, 0, 1, 0, &ld, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_loader_batches(ld), 1);
    spk_loader_free(ld);
    /* An exact multiple has no partial batch. */
    cr_assert_eq(spk_loader_new(ds, 103, 0, 1, 0, &ld, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_loader_batches(ld), 1);
    spk_loader_free(ld);
    spk_dataset_free(ds);
}

Test(loader, each_sample_once_per_epoch)
{
    spk_dataset *ds = make_set(257);
    spk_loader *ld = NULL;
    cr_assert_eq(spk_loader_new(ds, 16, 1, 7, 0, &ld, NULL), SPK_OK);
    uint32_t ids[257];
    for (int e = 0; e < 5; e++) {
        cr_assert_eq(epoch_order(ld, e, ids, 257), 257);
        int seen[257] = {0};
        for (int i = 0; i < 257; i++) {
            cr_assert_lt(ids[i], 257u);
            seen[ids[i]]++;
        }
        for (int i = 0; i < 257; i++)
            cr_expect_eq(seen[i], 1, "epoch %d: sample %d seen %d times", e, i, seen[i]);
    }
    spk_loader_free(ld);
    spk_dataset_free(ds);
}

Test(loader, no_shuffle_is_in_order)
{
    spk_dataset *ds = make_set(50);
    spk_loader *ld = NULL;
    cr_assert_eq(spk_loader_new(ds, 7, 0, 7, 0, &ld, NULL), SPK_OK);
    uint32_t ids[50];
    for (int e = 0; e < 2; e++) {
        cr_assert_eq(epoch_order(ld, e, ids, 50), 50);
        for (int i = 0; i < 50; i++)
            cr_expect_eq(ids[i], (uint32_t)i);
    }
    spk_loader_free(ld);
    spk_dataset_free(ds);
}

Test(loader, orders_depend_on_seed_and_epoch_only)
{
    spk_dataset *ds = make_set(200);
    spk_loader *a = NULL, *b = NULL, *c = NULL;
    cr_assert_eq(spk_loader_new(ds, 32, 1, 1234, 0, &a, NULL), SPK_OK);
    cr_assert_eq(spk_loader_new(ds, 5, 1, 1234, 0, &b, NULL), SPK_OK);
    cr_assert_eq(spk_loader_new(ds, 32, 1, 1235, 0, &c, NULL), SPK_OK);
    uint32_t a0[200], a1[200], a1again[200], b1[200], c1[200], a3[200], b3[200];
    cr_assert_eq(epoch_order(a, 0, a0, 200), 200);
    cr_assert_eq(epoch_order(a, 1, a1, 200), 200);
    cr_assert_eq(epoch_order(a, 3, a3, 200), 200);
    cr_assert_eq(epoch_order(a, 1, a1again, 200), 200);
    /* b jumps straight to epoch 3, as a resumed run would. Batch size does not matter. */
    cr_assert_eq(epoch_order(b, 3, b3, 200), 200);
    cr_assert_eq(epoch_order(b, 1, b1, 200), 200);
    cr_assert_eq(epoch_order(c, 1, c1, 200), 200);
    cr_expect_neq(memcmp(a0, a1, sizeof a0), 0, "epochs 0 and 1 have the same order");
    cr_expect_neq(memcmp(a1, a3, sizeof a0), 0, "epochs 1 and 3 have the same order");
    cr_expect_eq(memcmp(a1, a1again, sizeof a0), 0, "restarting epoch 1 changed its order");
    cr_expect_eq(memcmp(a1, b1, sizeof a0), 0, "same seed, different order");
    cr_expect_eq(memcmp(a3, b3, sizeof a0), 0, "resumed epoch 3 differs");
    cr_expect_neq(memcmp(a1, c1, sizeof a0), 0, "seeds 1234 and 1235 give the same order");
    /* Shuffled means shuffled: few samples keep their place. */
    int fixed = 0;
    for (int i = 0; i < 200; i++)
        fixed += a1[i] == (uint32_t)i;
    cr_expect_lt(fixed, 10, "%d of 200 samples kept their place", fixed);
    spk_loader_free(a);
    spk_loader_free(b);
    spk_loader_free(c);
    spk_dataset_free(ds);
}

/* The documented stream (key = (seed lo ^ seed hi, SPK_RNG_SHUFFLE), counter (i, epoch, k, 0),
 * Lemire bounded ints, Fisher-Yates from the top): permutations computed independently with a
 * Python implementation of Philox4x32-10 checked against the Random123 vectors. */
Test(loader, golden_permutations)
{
    spk_dataset *ds = make_set(12);
    struct {
        int n;
        uint64_t seed;
        int epoch;
        uint32_t want[12];
    } cases[] = {
        {10, 42, 3, {0, 4, 7, 9, 8, 1, 3, 2, 6, 5}},
        {10, 0x123456789abcdef0ull, 0, {5, 3, 6, 8, 1, 4, 0, 7, 9, 2}},
        {12, 7, 0, {4, 3, 7, 1, 11, 5, 0, 2, 10, 6, 9, 8}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        spk_loader *ld = NULL;
        cr_assert_eq(spk_loader_new(ds, 4, 1, cases[c].seed, cases[c].n, &ld, NULL), SPK_OK);
        uint32_t ids[12];
        cr_assert_eq(epoch_order(ld, cases[c].epoch, ids, 12), cases[c].n);
        for (int i = 0; i < cases[c].n; i++)
            cr_expect_eq(ids[i], cases[c].want[i], "case %zu position %d: %u, expected %u", c, i,
                         ids[i], cases[c].want[i]);
        spk_loader_free(ld);
    }
    spk_dataset_free(ds);
}

/* All 24 orders of 4 samples come up about equally often (a biased or Sattolo-style shuffle,
 * which never leaves a sample in place, fails this). */
Test(loader, shuffle_is_uniform)
{
    spk_dataset *ds = make_set(4);
    spk_loader *ld = NULL;
    cr_assert_eq(spk_loader_new(ds, 4, 1, 99, 0, &ld, NULL), SPK_OK);
    int counts[256] = {0};
    const int epochs = 24000;
    for (int e = 0; e < epochs; e++) {
        uint32_t ids[4];
        cr_assert_eq(epoch_order(ld, e, ids, 4), 4);
        counts[ids[0] * 64 + ids[1] * 16 + ids[2] * 4 + ids[3]]++;
    }
    int distinct = 0;
    for (int k = 0; k < 256; k++) {
        if (!counts[k])
            continue;
        distinct++;
        /* Expected 1000, standard deviation about 31. */
        cr_expect(counts[k] > 850 && counts[k] < 1150, "order %02x came %d times", k, counts[k]);
    }
    cr_expect_eq(distinct, 24);
    spk_loader_free(ld);
    spk_dataset_free(ds);
}

Test(loader, limit)
{
    spk_dataset *ds = make_set(100);
    spk_loader *ld = NULL;
    cr_assert_eq(spk_loader_new(ds, 8, 1, 3, 25, &ld, NULL), SPK_OK);
    cr_expect_eq(spk_loader_size(ld), 25);
    cr_expect_eq(spk_loader_batches(ld), 4);
    uint32_t ids[25];
    cr_assert_eq(epoch_order(ld, 0, ids, 25), 25);
    int seen[25] = {0}, inorder = 1;
    for (int i = 0; i < 25; i++) {
        cr_assert_lt(ids[i], 25u, "limit 25 gave sample %u", ids[i]);
        seen[ids[i]]++;
        inorder &= ids[i] == (uint32_t)i;
    }
    for (int i = 0; i < 25; i++)
        cr_expect_eq(seen[i], 1);
    cr_expect_not(inorder, "the limited set was not shuffled");
    spk_loader_free(ld);

    /* A limit above the set size is the whole set. */
    cr_assert_eq(spk_loader_new(ds, 8, 0, 3, 1000, &ld, NULL), SPK_OK);
    cr_expect_eq(spk_loader_size(ld), 100);
    spk_loader_free(ld);
    spk_dataset_free(ds);
}

Test(loader, bad_arguments)
{
    spk_dataset *ds = make_set(10);
    spk_loader *ld = (spk_loader *)0x1;
    spk_error err = {0};
    cr_expect_eq(spk_loader_new(ds, 0, 1, 3, 0, &ld, &err), SPK_ERR_INVALID);
    cr_expect_null(ld);
    cr_expect_not_null(strstr(err.msg, "batch"), "message: %s", err.msg);
    cr_expect_eq(spk_loader_new(NULL, 4, 1, 3, 0, &ld, &err), SPK_ERR_INVALID);
    spk_dataset_free(ds);
}

Test(loader, mnist_batches)
{
    spk_dataset *ds = load_t10k();
    spk_loader *ld = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_loader_new(ds, 128, 1, 1, 400, &ld, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_loader_batches(ld), 4);
    static float x[128 * 784];
    int32_t lab[128];
    uint32_t ids[128];
    int got, last = 0, total = 0;
    spk_loader_start_epoch(ld, 2);
    while ((got = spk_loader_next(ld, 1.0f / 255.0f, x, lab, ids)) > 0) {
        for (int k = 0; k < got; k++) {
            cr_assert_lt(ids[k], 400u);
            cr_expect_eq(lab[k], ds->labels[ids[k]]);
            double s = 0;
            for (int j = 0; j < 784; j++) {
                cr_assert(x[k * 784 + j] >= 0.0f && x[k * 784 + j] <= 1.0f);
                s += x[k * 784 + j];
            }
            if (ids[k] == 0)
                cr_expect(s > 18454 / 255.0 - 1e-3 && s < 18454 / 255.0 + 1e-3, "sum %f", s);
        }
        last = got;
        total += got;
    }
    cr_expect_eq(total, 400);
    cr_expect_eq(last, 400 - 3 * 128);
    spk_loader_free(ld);
    spk_dataset_free(ds);
}
