/* spikecl — event-camera recordings in the N-MNIST format, and their frames.
 *
 * File format (Orchard et al., "Converting Static Image Datasets to Spiking Neuromorphic Datasets
 * Using Saccades", 2015; the layout their Read_Ndataset.m loader documents and tonic's NMNIST
 * reader follows): one file per recording, 5 bytes (40 bits) per event, big-endian bit order:
 *   bits 39-32 x (pixels), bits 31-24 y, bit 23 polarity (1 = ON), bits 22-0 timestamp (µs).
 * Events are stored in time order. The sensor is 34 x 34 pixels. */
#define _POSIX_C_SOURCE 200809L

#include "spikecl/data.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SPK_NMNIST_SIDE 34
#define SPK_EVENT_BYTES 5

typedef struct ev_buf {
    spk_event *ev;
    size_t n, cap;
} ev_buf;

static int ev_reserve(ev_buf *b, size_t more, spk_error *err)
{
    if (b->n + more <= b->cap)
        return SPK_OK;
    size_t cap = b->cap ? b->cap : more;
    while (cap < b->n + more) /* a file that grew after it was measured */
        cap *= 2;
    spk_event *e = realloc(b->ev, cap * sizeof *e);
    if (!e)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory for %zu events", cap);
    b->ev = e;
    b->cap = cap;
    return SPK_OK;
}

/* tonic's Denoise: per pixel, the time until which it vouches for its 4 neighbours (its last
 * event + window, initially `window`); an event is kept when a neighbour vouches for it. */
static size_t denoise(spk_event *ev, size_t n, int h, int w, uint32_t window, int64_t *mem)
{
    for (int i = 0; i < h * w; i++)
        mem[i] = window;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int x = ev[i].x, y = ev[i].y;
        int64_t t = ev[i].t;
        mem[y * w + x] = t + window;
        int keep = (x > 0 && mem[y * w + x - 1] > t) || (x < w - 1 && mem[y * w + x + 1] > t) ||
                   (y > 0 && mem[(y - 1) * w + x] > t) || (y < h - 1 && mem[(y + 1) * w + x] > t);
        if (keep)
            ev[kept++] = ev[i];
    }
    return kept;
}

/* Appends one recording's events to b. */
static int read_recording(const char *path, int h, int w, const spk_frames *fr, ev_buf *b,
                          int64_t *mem, spk_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return spk_error_set(err, SPK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int e = errno;
        fclose(f);
        return spk_error_set(err, SPK_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        fclose(f);
        return spk_error_set(err, SPK_ERR_PARSE, "%s: empty recording (no events)", path);
    }
    if (size % SPK_EVENT_BYTES) {
        fclose(f);
        return spk_error_set(err, SPK_ERR_PARSE,
                             "%s: truncated: %zu bytes is not a whole number of 5-byte events "
                             "(the last record has %zu bytes)",
                             path, size, size % SPK_EVENT_BYTES);
    }
    size_t n = size / SPK_EVENT_BYTES;
    unsigned char *raw = malloc(size);
    int rc = raw ? ev_reserve(b, n, err)
                 : spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    if (rc) {
        free(raw);
        fclose(f);
        return rc;
    }
    size_t got = fread(raw, 1, size, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != size) {
        free(raw);
        return spk_error_set(err, rerr ? SPK_ERR_IO : SPK_ERR_PARSE, "%s: read %zu of %zu bytes%s",
                             path, got, size,
                             rerr ? " (read error)" : " (the file shrank while reading)");
    }
    spk_event *dst = b->ev + b->n;
    uint32_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *r = raw + i * SPK_EVENT_BYTES;
        uint32_t t = ((uint32_t)(r[2] & 0x7f) << 16) | ((uint32_t)r[3] << 8) | r[4];
        if (r[0] >= w || r[1] >= h) {
            int x = r[0], y = r[1];
            free(raw);
            return spk_error_set(err, SPK_ERR_PARSE,
                                 "%s: event %zu (byte %zu) is at x=%d, y=%d, outside the %dx%d "
                                 "sensor",
                                 path, i, i * SPK_EVENT_BYTES, x, y, w, h);
        }
        if (t < prev) {
            free(raw);
            return spk_error_set(err, SPK_ERR_PARSE,
                                 "%s: event %zu (byte %zu): timestamp goes backwards (%u µs "
                                 "after %u µs)",
                                 path, i, i * SPK_EVENT_BYTES, (unsigned)t, (unsigned)prev);
        }
        prev = t;
        dst[i] = (spk_event){.t = t, .x = r[0], .y = r[1], .p = (uint8_t)(r[2] >> 7)};
    }
    free(raw);
    if (fr->denoise > 0)
        n = denoise(dst, n, h, w, (uint32_t)fr->denoise, mem);
    b->n += n;
    return SPK_OK;
}

static int check_frames(const spk_frames *fr, spk_error *err)
{
    if (!fr)
        return spk_error_set(err, SPK_ERR_INVALID, "event data: no frame settings");
    if (fr->time_steps < 1 || fr->time_window < 0 || fr->denoise < 0 || fr->downsample < 1)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "event data: bad frame settings (time_steps %d, time_window %d, "
                             "denoise %d, downsample %d)",
                             fr->time_steps, fr->time_window, fr->denoise, fr->downsample);
    return SPK_OK;
}

int spk_dataset_from_event_files(const char *const *paths, const uint8_t *labels, int n,
                                 int sensor_height, int sensor_width, const spk_frames *fr,
                                 spk_dataset **out, spk_error *err)
{
    if (!out)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_dataset_from_event_files: out is NULL");
    *out = NULL;
    int rc = check_frames(fr, err);
    if (rc)
        return rc;
    if (n < 1 || !paths || !labels)
        return spk_error_set(err, SPK_ERR_INVALID, "event data: no recordings");
    if (sensor_height < 1 || sensor_height > 256 || sensor_width < 1 || sensor_width > 256)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "event data: a %dx%d sensor does not fit 8-bit coordinates",
                             sensor_height, sensor_width);
    spk_dataset *ds = calloc(1, sizeof *ds);
    int64_t *mem = malloc((size_t)sensor_height * (size_t)sensor_width * sizeof *mem);
    ev_buf b = {0};
    if (ds) {
        ds->labels = malloc((size_t)n);
        ds->offsets = malloc(((size_t)n + 1) * sizeof *ds->offsets);
    }
    if (!ds || !mem || !ds->labels || !ds->offsets) {
        free(mem);
        spk_dataset_free(ds);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory for %d recordings", n);
    }
    /* reserve the whole set at once (the file sizes say how many events): growing by doubling
     * would hold up to twice the ~2 GB of N-MNIST's training events while reading */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && st.st_size > 0)
            total += (size_t)st.st_size / SPK_EVENT_BYTES;
    }
    rc = ev_reserve(&b, total ? total : 1, err);
    int mx = 0;
    for (int i = 0; i < n && !rc; i++) {
        ds->offsets[i] = b.n;
        ds->labels[i] = labels[i];
        if (labels[i] > mx)
            mx = labels[i];
        rc = read_recording(paths[i], sensor_height, sensor_width, fr, &b, mem, err);
    }
    free(mem);
    if (rc) {
        free(b.ev);
        spk_dataset_free(ds);
        return rc;
    }
    ds->offsets[n] = b.n;
    /* give back what the doubling over-reserved: the full set is large */
    spk_event *shrunk = b.n ? realloc(b.ev, b.n * sizeof *b.ev) : NULL;
    ds->events = shrunk ? shrunk : b.ev;
    if (!ds->events) /* every recording denoised away: keep a valid pointer */
        ds->events = malloc(sizeof *ds->events);
    if (!ds->events) {
        spk_dataset_free(ds);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    ds->n = n;
    ds->n_classes = mx + 1;
    ds->channels = 2;
    ds->sensor_height = sensor_height;
    ds->sensor_width = sensor_width;
    ds->height = (sensor_height + fr->downsample - 1) / fr->downsample;
    ds->width = (sensor_width + fr->downsample - 1) / fr->downsample;
    ds->frames = *fr;
    *out = ds;
    return SPK_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir that pass keep(), sorted; *names is malloc'ed, as is each name. */
static int list_dir(const char *dir, int (*keep)(const char *dir, const char *name), char ***names,
                    int *count, spk_error *err)
{
    *names = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d)
        return spk_error_set(err, errno == ENOENT ? SPK_ERR_NOTFOUND : SPK_ERR_IO,
                             "%s: cannot open the folder: %s", dir, strerror(errno));
    char **v = NULL;
    int n = 0, cap = 0, rc = SPK_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!keep(dir, e->d_name))
            continue;
        if (n == cap) {
            int nc = cap ? cap * 2 : 64;
            char **nv = nc < INT_MAX / 2 ? realloc(v, (size_t)nc * sizeof *nv) : NULL;
            if (!nv) {
                rc = spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory listing it", dir);
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!(v[n] = strdup(e->d_name))) {
            rc = spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory listing it", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return SPK_OK;
}

static int is_label_dir(const char *dir, const char *name)
{
    /* class folders are named by their label: 0 .. 255 */
    size_t len = strlen(name);
    if (len < 1 || len > 3)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] < '0' || name[i] > '9')
            return 0;
    if (atoi(name) > 255)
        return 0;
    char path[PATH_MAX];
    struct stat st;
    return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
           stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_bin_file(const char *dir, const char *name)
{
    size_t len = strlen(name);
    if (len < 5 || strcmp(name + len - 4, ".bin") != 0)
        return 0;
    char path[PATH_MAX];
    struct stat st;
    return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
           stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int spk_dataset_load_nmnist(const char *dir, int train, const spk_frames *fr, spk_dataset **out,
                            spk_error *err)
{
    if (!out)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_dataset_load_nmnist: out is NULL");
    *out = NULL;
    if (!dir)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_dataset_load_nmnist: dir is NULL");
    int rc = check_frames(fr, err);
    if (rc)
        return rc;
    const char *split = train ? "Train" : "Test";
    char root[PATH_MAX];
    if (snprintf(root, sizeof root, "%s/%s", dir, split) >= (int)sizeof root)
        return spk_error_set(err, SPK_ERR_INVALID, "%s: path too long", dir);
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return spk_error_set(err, SPK_ERR_NOTFOUND,
                             "no %s split in %s: expected the N-MNIST layout %s/%s/<digit>/"
                             "<id>.bin (scripts/get-nmnist.sh downloads and extracts it)",
                             train ? "training" : "test", dir, dir, split);
    char **classes = NULL, **paths = NULL;
    uint8_t *labels = NULL;
    int n_classes = 0, n = 0, cap = 0;
    if ((rc = list_dir(root, is_label_dir, &classes, &n_classes, err)))
        return rc;
    for (int c = 0; c < n_classes && !rc; c++) {
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", root, classes[c]) >= (int)sizeof sub) {
            rc = spk_error_set(err, SPK_ERR_INVALID, "%s/%s: path too long", root, classes[c]);
            break;
        }
        char **files = NULL;
        int nf = 0;
        if ((rc = list_dir(sub, is_bin_file, &files, &nf, err)))
            break;
        for (int i = 0; i < nf && !rc; i++) {
            if (n == cap) {
                int nc = cap ? cap * 2 : 1024;
                char **np = nc < INT_MAX / 2 ? realloc(paths, (size_t)nc * sizeof *np) : NULL;
                uint8_t *nl = np ? realloc(labels, (size_t)nc) : NULL;
                if (np)
                    paths = np;
                if (nl)
                    labels = nl;
                if (!np || !nl) {
                    rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory listing %s", root);
                    break;
                }
                cap = nc;
            }
            size_t len = strlen(sub) + strlen(files[i]) + 2;
            if (!(paths[n] = malloc(len))) {
                rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory listing %s", root);
                break;
            }
            snprintf(paths[n], len, "%s/%s", sub, files[i]);
            labels[n++] = (uint8_t)atoi(classes[c]);
        }
        free_names(files, nf);
    }
    free_names(classes, n_classes);
    if (!rc && n == 0)
        rc = spk_error_set(err, SPK_ERR_NOTFOUND,
                           "%s: no recordings: expected <digit>/<id>.bin files under it", root);
    if (!rc)
        rc = spk_dataset_from_event_files((const char *const *)paths, labels, n, SPK_NMNIST_SIDE,
                                          SPK_NMNIST_SIDE, fr, out, err);
    free_names(paths, n);
    free(labels);
    return rc;
}

void spk_dataset_event_frames(const spk_dataset *ds, uint32_t idx, int b, int count, float scale,
                              float *dst)
{
    const spk_frames *fr = &ds->frames;
    const spk_event *ev = ds->events + ds->offsets[idx];
    size_t n = ds->offsets[idx + 1] - ds->offsets[idx];
    if (n == 0)
        return;
    const int T = fr->time_steps, d = fr->downsample, H = ds->height, W = ds->width;
    const size_t plane = (size_t)H * W;
    const uint64_t t0 = ev[0].t, span = (uint64_t)ev[n - 1].t - t0 + 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t rel = ev[i].t - t0;
        uint64_t bin = fr->time_window > 0 ? rel / (uint64_t)fr->time_window : rel * T / span;
        if (bin >= (uint64_t)T)
            break; /* events are in time order: the rest are later still */
        float *px = dst + ((bin * (size_t)count + (size_t)b) * 2 + ev[i].p) * plane +
                    (size_t)(ev[i].y / d) * W + (size_t)(ev[i].x / d);
        if (fr->clip)
            *px = scale;
        else
            *px += scale;
    }
}
