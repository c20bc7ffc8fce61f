/* spikecl — IDX image/label files (MNIST family): reading, finding them in a folder, freeing a
 * data set. The batch loader is in loader.c. */
#define _POSIX_C_SOURCE 200809L

#include "spikecl/data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define SPK_IDX3_MAGIC 0x00000803u /* unsigned byte data, 3 dimensions */
#define SPK_IDX1_MAGIC 0x00000801u /* unsigned byte data, 1 dimension */

static uint32_t spk_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Opens path with zlib, which reads gzip and plain files alike. */
static int spk_idx_open(const char *path, gzFile *out, spk_error *err)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        if (errno == 0) /* zlib could not allocate its state */
            return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory opening the file", path);
        return spk_error_set(err, SPK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    *out = f;
    return SPK_OK;
}

/* zlib's messages start with the file name; we put it in front ourselves. */
static const char *spk_zmsg(const char *zmsg, const char *path)
{
    size_t n = strlen(path);
    if (!zmsg)
        return "unknown zlib error";
    if (strncmp(zmsg, path, n) == 0 && zmsg[n] == ':' && zmsg[n + 1] == ' ')
        return zmsg + n + 2;
    return zmsg;
}

/* Reads up to len bytes; *got says how many came. A short read without an error is the end of
 * the data; *cut is set when it is a gzip stream that ends early (zlib's Z_BUF_ERROR), in which
 * case zlib may hold back the last bytes it decoded, so *got can undercount. Only real read or
 * decompression errors return an error: the caller words truncation from the byte counts. */
static int spk_idx_read(gzFile f, const char *path, void *buf, size_t len, size_t *got, int *cut,
                        spk_error *err)
{
    size_t done = 0;
    *cut = 0;
    while (done < len) {
        size_t want = len - done;
        if (want > (1u << 30)) /* gzread takes an unsigned count; keep chunks well below it */
            want = 1u << 30;
        int r = gzread(f, (unsigned char *)buf + done, (unsigned)want);
        if (r < 0) {
            int zerr = 0;
            const char *zmsg = gzerror(f, &zerr);
            if (zerr == Z_ERRNO)
                return spk_error_set(err, SPK_ERR_IO, "%s: read error: %s", path, strerror(errno));
            return spk_error_set(err, SPK_ERR_PARSE, "%s: corrupt gzip data: %s", path,
                                 spk_zmsg(zmsg, path));
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    if (done < len) {
        int zerr = 0;
        const char *zmsg = gzerror(f, &zerr);
        if (zerr == Z_ERRNO)
            return spk_error_set(err, SPK_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (zerr == Z_BUF_ERROR)
            *cut = 1;
        else if (zerr != Z_OK)
            return spk_error_set(err, SPK_ERR_PARSE, "%s: corrupt gzip data: %s", path,
                                 spk_zmsg(zmsg, path));
    }
    return SPK_OK;
}

#define SPK_CUT_NOTE(cut) ((cut) ? " (the gzip stream ends early)" : "")

/* Reads `want` bytes into a new buffer that grows as data arrives, so that a header claiming
 * absurd counts gives a "truncated" error, not a giant allocation. On success *out holds *got
 * bytes (*got < want when the data ends early); on error nothing is allocated. */
static int spk_idx_read_alloc(gzFile f, const char *path, size_t want, const char *what,
                              uint8_t **out, size_t *got, int *cut, spk_error *err)
{
    size_t cap = want < ((size_t)16 << 20) ? want : ((size_t)16 << 20), have = 0;
    uint8_t *buf = NULL;
    *out = NULL;
    *got = 0;
    *cut = 0;
    for (;;) {
        uint8_t *nb = realloc(buf, cap);
        if (!nb) {
            free(buf);
            return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory for %zu bytes of %s", path,
                                 cap, what);
        }
        buf = nb;
        size_t n = 0;
        int rc = spk_idx_read(f, path, buf + have, cap - have, &n, cut, err);
        if (rc) {
            free(buf);
            return rc;
        }
        have += n;
        if (have < cap || cap == want)
            break;
        cap = want - cap < cap ? want : cap * 2;
    }
    *out = buf;
    *got = have;
    return SPK_OK;
}

static int spk_read_images(const char *path, spk_dataset *ds, spk_error *err)
{
    gzFile f;
    int rc = spk_idx_open(path, &f, err);
    if (rc)
        return rc;
    unsigned char hdr[16];
    size_t got = 0;
    int cut = 0;
    rc = spk_idx_read(f, path, hdr, sizeof hdr, &got, &cut, err);
    if (rc)
        goto out;
    if (got >= 4 && spk_be32(hdr) != SPK_IDX3_MAGIC) {
        uint32_t m = spk_be32(hdr);
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: bad magic 0x%08x, expected 0x00000803 (IDX3 images)%s", path,
                           (unsigned)m,
                           m == SPK_IDX1_MAGIC   ? "; this looks like a label file (IDX1)"
                           : (m >> 16) == 0x1f8b ? "; this looks like a damaged gzip file"
                                                 : "");
        goto out;
    }
    if (got < sizeof hdr) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: truncated: expected 16 bytes of IDX3 header, got %zu%s", path, got,
                           SPK_CUT_NOTE(cut));
        goto out;
    }
    uint32_t n = spk_be32(hdr + 4), rows = spk_be32(hdr + 8), cols = spk_be32(hdr + 12);
    if (n == 0) {
        rc = spk_error_set(err, SPK_ERR_PARSE, "%s: image count is 0", path);
        goto out;
    }
    if (rows == 0 || cols == 0 || rows > 65536 || cols > 65536 || n > (uint32_t)INT_MAX) {
        rc = spk_error_set(err, SPK_ERR_PARSE, "%s: implausible dimensions %u x %u x %u", path,
                           (unsigned)n, (unsigned)rows, (unsigned)cols);
        goto out;
    }
    uint64_t per = (uint64_t)rows * cols;
    if ((uint64_t)n > (uint64_t)SIZE_MAX / per) {
        rc = spk_error_set(err, SPK_ERR_PARSE, "%s: %u images of %u x %u cannot be addressed", path,
                           (unsigned)n, (unsigned)rows, (unsigned)cols);
        goto out;
    }
    size_t bytes = (size_t)(per * n);
    rc = spk_idx_read_alloc(f, path, bytes, "pixels", &ds->pixels, &got, &cut, err);
    if (rc)
        goto out;
    if (got < bytes) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: truncated: expected %zu bytes of pixels (%u images of %u x %u), "
                           "got %zu%s",
                           path, bytes, (unsigned)n, (unsigned)rows, (unsigned)cols, got,
                           SPK_CUT_NOTE(cut));
        goto out;
    }
    /* Bytes after the last image are ignored, as other IDX readers do. */
    ds->n = (int)n;
    ds->channels = 1;
    ds->height = (int)rows;
    ds->width = (int)cols;
out:
    gzclose(f);
    return rc;
}

static int spk_read_labels(const char *path, spk_dataset *ds, spk_error *err)
{
    gzFile f;
    int rc = spk_idx_open(path, &f, err);
    if (rc)
        return rc;
    unsigned char hdr[8];
    size_t got = 0;
    int cut = 0;
    rc = spk_idx_read(f, path, hdr, sizeof hdr, &got, &cut, err);
    if (rc)
        goto out;
    if (got >= 4 && spk_be32(hdr) != SPK_IDX1_MAGIC) {
        uint32_t m = spk_be32(hdr);
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: bad magic 0x%08x, expected 0x00000801 (IDX1 labels)%s", path,
                           (unsigned)m,
                           m == SPK_IDX3_MAGIC   ? "; this looks like an image file (IDX3)"
                           : (m >> 16) == 0x1f8b ? "; this looks like a damaged gzip file"
                                                 : "");
        goto out;
    }
    if (got < sizeof hdr) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: truncated: expected 8 bytes of IDX1 header, got %zu%s", path, got,
                           SPK_CUT_NOTE(cut));
        goto out;
    }
    uint32_t n = spk_be32(hdr + 4);
    if (n == 0) {
        rc = spk_error_set(err, SPK_ERR_PARSE, "%s: label count is 0", path);
        goto out;
    }
    if (n != (uint32_t)ds->n) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: label count %u does not match the image count %d of the image file",
                           path, (unsigned)n, ds->n);
        goto out;
    }
    rc = spk_idx_read_alloc(f, path, n, "labels", &ds->labels, &got, &cut, err);
    if (rc)
        goto out;
    if (got < n) {
        rc = spk_error_set(err, SPK_ERR_PARSE,
                           "%s: truncated: expected %u bytes of labels, got %zu%s", path,
                           (unsigned)n, got, SPK_CUT_NOTE(cut));
        goto out;
    }
    int mx = 0;
    for (uint32_t i = 0; i < n; i++)
        if (ds->labels[i] > mx)
            mx = ds->labels[i];
    ds->n_classes = mx + 1;
out:
    gzclose(f);
    return rc;
}

int spk_dataset_load_idx(const char *images_path, const char *labels_path, spk_dataset **out,
                         spk_error *err)
{
    if (!out)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_dataset_load_idx: out is NULL");
    *out = NULL;
    if (!images_path || !labels_path)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_dataset_load_idx: %s path is NULL",
                             images_path ? "labels" : "images");
    spk_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory for a data set");
    int rc = spk_read_images(images_path, ds, err);
    if (!rc)
        rc = spk_read_labels(labels_path, ds, err);
    if (rc) {
        spk_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return SPK_OK;
}

void spk_dataset_free(spk_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    free(ds->events);
    free(ds->offsets);
    free(ds);
}

static int spk_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds dir/base or dir/base.gz (the plain file first: it loads faster). */
static int spk_find_one(const char *dir, const char *base, char **path, spk_error *err)
{
    size_t len = strlen(dir) + strlen(base) + 5;
    char *p = malloc(len);
    if (!p)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    snprintf(p, len, "%s/%s", dir, base);
    if (spk_is_file(p)) {
        *path = p;
        return SPK_OK;
    }
    snprintf(p, len, "%s/%s.gz", dir, base);
    if (spk_is_file(p)) {
        *path = p;
        return SPK_OK;
    }
    free(p);
    *path = NULL;
    return SPK_OK;
}

int spk_dataset_find_in_dir(const char *dir, int train, char **images_path, char **labels_path,
                            spk_error *err)
{
    if (!images_path || !labels_path)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_dataset_find_in_dir: NULL output");
    *images_path = NULL;
    *labels_path = NULL;
    if (!dir)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_dataset_find_in_dir: dir is NULL");
    struct stat st;
    if (stat(dir, &st) != 0)
        return spk_error_set(err, errno == ENOENT ? SPK_ERR_NOTFOUND : SPK_ERR_IO,
                             "data folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return spk_error_set(err, SPK_ERR_INVALID, "data folder %s is not a folder", dir);

    const char *split = train ? "train" : "t10k";
    char img[64], lab[64];
    snprintf(img, sizeof img, "%s-images-idx3-ubyte", split);
    snprintf(lab, sizeof lab, "%s-labels-idx1-ubyte", split);
    char *ip = NULL, *lp = NULL;
    int rc = spk_find_one(dir, img, &ip, err);
    if (!rc)
        rc = spk_find_one(dir, lab, &lp, err);
    if (!rc && (!ip || !lp)) {
        char missing[256];
        if (!ip && !lp)
            snprintf(missing, sizeof missing, "%s[.gz] and %s[.gz]", img, lab);
        else
            snprintf(missing, sizeof missing, "%s[.gz]", ip ? lab : img);
        rc =
            spk_error_set(err, SPK_ERR_NOTFOUND,
                          "no %s split in %s: looked for %s-images-idx3-ubyte, "
                          "%s-images-idx3-ubyte.gz, %s-labels-idx1-ubyte and "
                          "%s-labels-idx1-ubyte.gz; missing %s%s",
                          train ? "training" : "test", dir, split, split, split, split, missing,
                          train ? " (for MNIST, scripts/get-mnist.sh downloads the full set)" : "");
    }
    if (rc) {
        free(ip);
        free(lp);
        return rc;
    }
    *images_path = ip;
    *labels_path = lp;
    return SPK_OK;
}
