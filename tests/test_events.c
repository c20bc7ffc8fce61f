/* N-MNIST event recordings: the reader (generated files and five real ones), its errors, the
 * frames the loader makes, denoising, the model keys, and nmnist_conv trained end to end. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

typedef struct gen_ev {
    int x, y, p;
    uint32_t t;
} gen_ev;

static char *tmp_path(const char *rel)
{
    size_t n = strlen(spk_test_tmpdir()) + strlen(rel) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", spk_test_tmpdir(), rel);
    return p;
}

/* mkdir -p for the folders of a path under the test folder */
static void make_parents(const char *path)
{
    char *p = strdup(path);
    cr_assert_not_null(p);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    free(p);
}

/* Writes events in the N-MNIST format (5 bytes each) to tmp/rel, plus `extra` stray bytes. */
static char *write_events(const char *rel, const gen_ev *ev, int n, int extra)
{
    char *path = tmp_path(rel);
    make_parents(path);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    for (int i = 0; i < n; i++) {
        unsigned char r[5] = {(unsigned char)ev[i].x, (unsigned char)ev[i].y,
                              (unsigned char)((ev[i].p << 7) | ((ev[i].t >> 16) & 0x7f)),
                              (unsigned char)(ev[i].t >> 8), (unsigned char)ev[i].t};
        cr_assert_eq(fwrite(r, 1, 5, f), 5u);
    }
    for (int i = 0; i < extra; i++)
        fputc(7, f);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static spk_frames frames_of(int T, int window)
{
    return (spk_frames){.time_steps = T, .time_window = window, .downsample = 1};
}

/* ---- the reader ---- */

Test(events, reads_the_bit_layout_and_the_folder_layout)
{
    /* the polarity bit must not leak into the 23-bit timestamp, nor the reverse */
    gen_ev a[] = {{0, 0, 1, 5}, {33, 0, 0, 0x12345}, {5, 33, 1, 0x7fffff}};
    gen_ev b[] = {{1, 2, 0, 10}};
    gen_ev c[] = {{3, 4, 1, 20}, {3, 5, 0, 20}};
    free(write_events("rd/Train/3/00001.bin", c, 2, 0));
    free(write_events("rd/Train/0/00010.bin", b, 1, 0));
    free(write_events("rd/Train/0/00002.bin", a, 3, 0));
    free(write_events("rd/Train/0/notes.txt", b, 1, 0)); /* not a recording: ignored */
    char *dir = tmp_path("rd");
    spk_frames fr = frames_of(4, 1000);
    spk_dataset *ds = NULL;
    spk_error err;
    int rc = spk_dataset_load_nmnist(dir, 1, &fr, &ds, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    cr_assert_eq(ds->n, 3);
    cr_expect_eq(ds->n_classes, 4);
    cr_expect_eq(ds->channels, 2);
    cr_expect_eq(ds->height, 34);
    cr_expect_eq(ds->width, 34);
    /* digit, then file name order */
    cr_expect_eq(ds->labels[0], 0);
    cr_expect_eq(ds->labels[1], 0);
    cr_expect_eq(ds->labels[2], 3);
    cr_assert_eq(ds->offsets[1] - ds->offsets[0], 3u);
    cr_assert_eq(ds->offsets[2] - ds->offsets[1], 1u);
    cr_assert_eq(ds->offsets[3] - ds->offsets[2], 2u);
    const spk_event *e = ds->events;
    cr_expect(e[0].x == 0 && e[0].y == 0 && e[0].p == 1 && e[0].t == 5);
    cr_expect(e[1].x == 33 && e[1].y == 0 && e[1].p == 0 && e[1].t == 0x12345);
    cr_expect(e[2].x == 5 && e[2].y == 33 && e[2].p == 1 && e[2].t == 0x7fffff);
    cr_expect(e[3].x == 1 && e[3].y == 2 && e[3].p == 0 && e[3].t == 10);
    spk_dataset_free(ds);
    /* the other split is missing */
    rc = spk_dataset_load_nmnist(dir, 0, &fr, &ds, &err);
    cr_expect_eq(rc, SPK_ERR_NOTFOUND);
    cr_expect_not_null(strstr(err.msg, "Test"), "%s", err.msg);
    cr_expect_null(ds);
    free(dir);
}

Test(events, reads_the_real_recordings)
{
    static const struct {
        size_t n;
        uint32_t t0, t1;
        int on;
    } want[] = {{5028, 937, 305341, 2509},
                {5545, 2463, 306232, 2732},
                {4989, 2519, 311046, 2476},
                {5117, 2520, 305899, 2538},
                {6464, 474, 310188, 3163}};
    spk_frames fr = frames_of(312, 1000);
    spk_dataset *ds = NULL;
    spk_error err;
    int rc = spk_dataset_load_nmnist(SPK_SOURCE_DIR "/tests/data/nmnist-sample", 1, &fr, &ds, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    cr_assert_eq(ds->n, 5);
    for (int i = 0; i < 5; i++) {
        const spk_event *e = ds->events + ds->offsets[i];
        size_t n = ds->offsets[i + 1] - ds->offsets[i];
        cr_expect_eq(n, want[i].n, "recording %d: %zu events", i, n);
        cr_expect_eq(e[0].t, want[i].t0);
        cr_expect_eq(e[n - 1].t, want[i].t1);
        int on = 0, xmax = 0, ymax = 0;
        for (size_t k = 0; k < n; k++) {
            on += e[k].p;
            xmax = e[k].x > xmax ? e[k].x : xmax;
            ymax = e[k].y > ymax ? e[k].y : ymax;
        }
        cr_expect_eq(on, want[i].on, "recording %d: %d ON events", i, on);
        cr_expect_eq(xmax, 33);
        cr_expect_eq(ymax, 33);
        cr_expect_eq(ds->labels[i], 0);
    }
    /* every event lands in one of the 312 1-ms frames: the frame sums are the event counts */
    size_t dim = 2 * 34 * 34;
    float *x = calloc(312 * dim, sizeof *x);
    cr_assert_not_null(x);
    spk_dataset_event_frames(ds, 2, 0, 1, 1.0f, x);
    double sum = 0;
    for (size_t k = 0; k < 312 * dim; k++)
        sum += x[k];
    cr_expect_eq((size_t)sum, want[2].n);
    free(x);
    spk_dataset_free(ds);
}

/* loads the one-file split tmp/<tag>/Train/1/00001.bin and expects an error naming it */
static void expect_bad(const char *tag, const gen_ev *ev, int n, int extra, const char *what)
{
    char rel[128];
    snprintf(rel, sizeof rel, "%s/Train/1/00001.bin", tag);
    char *file = write_events(rel, ev, n, extra);
    char *dir = tmp_path(tag);
    spk_frames fr = frames_of(4, 1000);
    spk_dataset *ds = NULL;
    spk_error err;
    int rc = spk_dataset_load_nmnist(dir, 1, &fr, &ds, &err);
    cr_expect_eq(rc, SPK_ERR_PARSE, "%s: rc %d: %s", tag, rc, err.msg);
    cr_expect_null(ds);
    cr_expect_not_null(strstr(err.msg, file), "%s: the message does not name the file: %s", tag,
                       err.msg);
    cr_expect_not_null(strstr(err.msg, what), "%s: expected '%s' in: %s", tag, what, err.msg);
    free(file);
    free(dir);
}

Test(events, bad_files_are_refused_naming_the_file)
{
    gen_ev ok[] = {{1, 1, 0, 10}, {2, 2, 1, 20}};
    expect_bad("trunc", ok, 2, 3, "truncated");
    gen_ev outside_x[] = {{1, 1, 0, 10}, {34, 2, 1, 20}};
    expect_bad("xout", outside_x, 2, 0, "x=34");
    gen_ev outside_y[] = {{1, 200, 0, 10}};
    expect_bad("yout", outside_y, 1, 0, "outside the 34x34 sensor");
    gen_ev back[] = {{1, 1, 0, 30}, {2, 2, 1, 20}};
    expect_bad("back", back, 2, 0, "backwards");
    expect_bad("empty", ok, 0, 0, "empty recording");
}

Test(events, an_empty_split_is_refused)
{
    char *d = tmp_path("nofiles/Test/5/x");
    make_parents(d); /* Test/5 exists but holds no .bin */
    char *dir = tmp_path("nofiles");
    spk_frames fr = frames_of(4, 1000);
    spk_dataset *ds = NULL;
    spk_error err;
    int rc = spk_dataset_load_nmnist(dir, 0, &fr, &ds, &err);
    cr_expect_eq(rc, SPK_ERR_NOTFOUND);
    cr_expect_not_null(strstr(err.msg, "no recordings"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, dir), "%s", err.msg);
    free(d);
    free(dir);
}

/* ---- frames ---- */

static spk_dataset *one_split(const char *tag, const gen_ev *a, int na, const gen_ev *b, int nb,
                              const spk_frames *fr)
{
    char rel[128];
    snprintf(rel, sizeof rel, "%s/Train/0/a.bin", tag);
    free(write_events(rel, a, na, 0));
    snprintf(rel, sizeof rel, "%s/Train/1/b.bin", tag);
    free(write_events(rel, b, nb, 0));
    char *dir = tmp_path(tag);
    spk_dataset *ds = NULL;
    spk_error err;
    int rc = spk_dataset_load_nmnist(dir, 1, fr, &ds, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    free(dir);
    return ds;
}

#define PX(x_, T_, t, b, p, yy, xx)                                                                \
    (x_)[((((size_t)(t)*2 + (b)) * 2 + (p)) * 34 + (yy)) * 34 + (xx)]

Test(events, time_window_frames_through_the_loader)
{
    /* windows count from each recording's first event; events after T windows are dropped */
    gen_ev a[] = {{3, 4, 1, 1000}, {3, 4, 1, 1999}, {5, 6, 0, 2000}, {7, 8, 1, 4999}};
    gen_ev b[] = {{0, 0, 0, 50}, {33, 33, 1, 3049}, {33, 33, 1, 3050}};
    spk_frames fr = frames_of(3, 1000);
    spk_dataset *ds = one_split("tw", a, 4, b, 3, &fr);
    spk_loader *ld = NULL;
    spk_error err;
    cr_assert_eq(spk_loader_new(ds, 2, 0, 0, 0, &ld, &err), SPK_OK, "%s", err.msg);
    size_t total = 3 * 2 * 2 * 34 * 34;
    float *x = malloc(total * sizeof *x);
    cr_assert_not_null(x);
    for (size_t k = 0; k < total; k++)
        x[k] = 99.0f; /* the loader must zero what it does not set */
    int32_t y[2];
    uint32_t ids[2];
    cr_assert_eq(spk_loader_next(ld, 0.5f, x, y, ids), 2);
    cr_expect(y[0] == 0 && y[1] == 1);
    double sum = 0;
    for (size_t k = 0; k < total; k++)
        sum += x[k];
    /* a: 2 events in frame 0 at (1, 4, 3), 1 in frame 1; the one at 4999 is past frame 2;
     * b: frame 0 at (0, 0, 0), frame 2 holds 3049 (3049 - 50 < 3000), not 3050 */
    cr_expect_float_eq(PX(x, 3, 0, 0, 1, 4, 3), 1.0f, 1e-6);
    cr_expect_float_eq(PX(x, 3, 1, 0, 0, 6, 5), 0.5f, 1e-6);
    cr_expect_float_eq(PX(x, 3, 0, 1, 0, 0, 0), 0.5f, 1e-6);
    cr_expect_float_eq(PX(x, 3, 2, 1, 1, 33, 33), 0.5f, 1e-6);
    cr_expect_float_eq((float)sum, 2.5f, 1e-6, "sum %g", sum);
    spk_loader_free(ld);
    spk_dataset_free(ds);

    /* clip: counts become 1 (times the scale) */
    fr.clip = 1;
    ds = one_split("twc", a, 4, b, 3, &fr);
    memset(x, 0, total * sizeof *x);
    spk_dataset_event_frames(ds, 0, 0, 2, 1.0f, x);
    cr_expect_float_eq(PX(x, 3, 0, 0, 1, 4, 3), 1.0f, 1e-6);
    spk_dataset_free(ds);
    free(x);
}

Test(events, bins_over_the_recording_and_downsampling)
{
    /* time_window 0: T = 4 equal parts of [100, 499], so 100..199 -> 0, ..., 400..499 -> 3 */
    gen_ev a[] = {{0, 0, 0, 100}, {1, 0, 0, 199}, {2, 0, 0, 200}, {33, 32, 1, 499}};
    gen_ev b[] = {{0, 0, 0, 7}};
    spk_frames fr = {.time_steps = 4, .time_window = 0, .downsample = 2};
    spk_dataset *ds = one_split("nb", a, 4, b, 1, &fr);
    cr_assert_eq(ds->height, 17);
    cr_assert_eq(ds->width, 17);
    size_t plane = 17 * 17, total = 4 * 2 * plane;
    float *x = calloc(total, sizeof *x);
    cr_assert_not_null(x);
    spk_dataset_event_frames(ds, 0, 0, 1, 1.0f, x);
    /* (0,0) and (1,0) share the downsampled pixel (0,0) in frame 0 */
    cr_expect_float_eq(x[0], 2.0f, 1e-6);
    cr_expect_float_eq(x[(1 * 2 + 0) * plane + 1], 1.0f, 1e-6); /* (2,0) -> (1,0), frame 1 */
    cr_expect_float_eq(x[(3 * 2 + 1) * plane + 16 * 17 + 16], 1.0f, 1e-6); /* (33,32) -> (16,16) */
    double sum = 0;
    for (size_t k = 0; k < total; k++)
        sum += x[k];
    cr_expect_float_eq((float)sum, 4.0f, 1e-6);
    spk_dataset_free(ds);
    free(x);
}

Test(events, denoise_drops_events_without_a_recent_neighbour)
{
    /* tonic's rule with a 100 µs window: kept when a 4-neighbour fired within the last 100 µs */
    gen_ev a[] = {
        {10, 10, 0, 1000}, /* no neighbour yet: dropped */
        {11, 10, 1, 1050}, /* (10,10) fired 50 µs ago: kept */
        {20, 20, 0, 1060}, /* alone: dropped */
        {11, 11, 0, 1200}, /* (11,10) fired 150 µs ago: dropped */
        {12, 12, 0, 1210}, /* diagonal (11,11) does not count: dropped */
        {11, 12, 1, 1250}, /* (11,11) 50 µs ago: kept */
    };
    gen_ev b[] = {{0, 0, 0, 7}};
    spk_frames fr = frames_of(4, 1000);
    fr.denoise = 100;
    spk_dataset *ds = one_split("dn", a, 6, b, 1, &fr);
    cr_assert_eq(ds->offsets[1] - ds->offsets[0], 2u);
    cr_expect(ds->events[0].x == 11 && ds->events[0].y == 10 && ds->events[0].t == 1050);
    cr_expect(ds->events[1].x == 11 && ds->events[1].y == 12 && ds->events[1].t == 1250);
    spk_dataset_free(ds);
}

/* ---- the model ---- */

static const char *EV_MODEL = "input: {shape: [2, 34, 34]}\n"
                              "time_steps: 8\n"
                              "layers:\n"
                              "  - {name: fc, type: synapse.linear, out: 4}\n"
                              "  - {name: lif, type: neuron.lif}\n"
                              "readout: {type: readout.spike_count}\n"
                              "loss: {type: loss.ce_count}\n"
                              "train:\n"
                              "  data: {format: nmnist, path: /nm, time_window: 500, clip: true, "
                              "denoise: 2000, downsample: 1}\n";

Test(events, model_keys)
{
    spk_model *m = NULL;
    spk_error err;
    int rc = spk_model_load_string(EV_MODEL, "ev.yaml", &m, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    spk_train_config *tc = spk_model_train_config(m);
    cr_expect_eq(tc->data_format, SPK_DATA_NMNIST);
    cr_expect_str_eq(tc->train_images, "/nm");
    cr_expect_str_eq(tc->test_images, "/nm"); /* the Test split of the same folder */
    cr_expect_eq(tc->frames.time_steps, 8);
    cr_expect_eq(tc->frames.time_window, 500);
    cr_expect_eq(tc->frames.clip, 1);
    cr_expect_eq(tc->frames.denoise, 2000);
    cr_expect_eq(tc->frames.downsample, 1);
    spk_model_free(m);

    /* frame keys under test: are refused at their line and column */
    char *y = malloc(strlen(EV_MODEL) + 128);
    cr_assert_not_null(y);
    sprintf(y, "%s  test: {format: nmnist, path: /t, clip: true}\n", EV_MODEL);
    rc = spk_model_load_string(y, "ev.yaml", &m, &err);
    cr_expect_eq(rc, SPK_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "ev.yaml:10:36"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "belongs under train.data"), "%s", err.msg);
    /* a test set of another format */
    sprintf(y, "%s  test: {format: idx, images: a, labels: b}\n", EV_MODEL);
    rc = spk_model_load_string(y, "ev.yaml", &m, &err);
    cr_expect_eq(rc, SPK_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "differs"), "%s", err.msg);
    /* idx keys on an event set */
    const char *bad = "input: {shape: [2, 34, 34]}\ntime_steps: 8\nlayers:\n"
                      "  - {name: fc, type: synapse.linear, out: 4}\n"
                      "train:\n  data: {format: nmnist, images: /nm}\n";
    rc = spk_model_load_string(bad, "ev.yaml", &m, &err);
    cr_expect_eq(rc, SPK_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "ev.yaml:6:"), "%s", err.msg);
    /* an input shape the frames do not have */
    const char *shape = "input: {shape: [2, 34, 34]}\ntime_steps: 8\nlayers:\n"
                        "  - {name: fc, type: synapse.linear, out: 4}\n"
                        "train:\n  data: {format: nmnist, path: /nm, downsample: 2}\n";
    rc = spk_model_load_string(shape, "ev.yaml", &m, &err);
    cr_expect_eq(rc, SPK_ERR_INVALID);
    cr_expect_not_null(strstr(err.msg, "ev.yaml:6:9"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "[2, 17, 17]"), "%s", err.msg);
    free(y);
}

/* Classes 0 and 1 told apart by where their events are (a 6x6 block on the left or the right),
 * dense enough (4 events per pixel and ms for 10 ms) that the untrained network spikes. */
static void write_two_class_set(const char *tag, int per_class)
{
    enum { FRAMES = 10, SIDE = 6, REPS = 4, N = FRAMES * SIDE * SIDE * REPS };
    gen_ev *ev = malloc(N * sizeof *ev);
    cr_assert_not_null(ev);
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < per_class; s++) {
            int k = 0;
            for (int f = 0; f < FRAMES; f++)
                for (int i = 0; i < SIDE * SIDE * REPS; i++, k++)
                    ev[k] = (gen_ev){.x = (c ? 22 : 4) + s % 3 + (i / REPS) % SIDE,
                                     .y = 14 + (i / REPS) / SIDE,
                                     .p = i & 1,
                                     .t = (uint32_t)(f * 1000 + 2 * i)};
            for (int split = 0; split < 2; split++) {
                char rel[160];
                snprintf(rel, sizeof rel, "%s/%s/%d/%05d.bin", tag, split ? "Test" : "Train", c, s);
                free(write_events(rel, ev, N, 0));
            }
        }
    free(ev);
}

Test(events, event_model_loss_falls, .timeout = 300)
{
    write_two_class_set("fall", 4);
    char *dir = tmp_path("fall");
    spk_model *m = NULL;
    spk_error err;
    int rc = spk_model_load(SPK_SOURCE_DIR "/models/nmnist_conv.yaml", &m, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    /* the seed's network with 20 frames instead of 312: the events span 10 ms */
    m->time_steps = 20;
    spk_train_config *tc = spk_model_train_config(m);
    tc->frames.time_steps = 20;
    spk_dataset *ds = NULL;
    rc = spk_dataset_load_nmnist(dir, 1, &tc->frames, &ds, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_open("cpu", &be, &err), SPK_OK, "%s", err.msg);
    spk_session *s = NULL;
    rc = spk_session_new(m, be, 8, &s, &err);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_check_data(s, ds, &err), SPK_OK, "%s", err.msg);
    spk_loader *ld = NULL;
    cr_assert_eq(spk_loader_new(ds, 8, 0, 0, 0, &ld, &err), SPK_OK, "%s", err.msg);
    float *x = malloc((size_t)8 * spk_session_input_size(s) * sizeof *x);
    int32_t y[8];
    uint32_t ids[8];
    cr_assert_not_null(x);
    cr_assert_eq(spk_loader_next(ld, spk_session_input_scale(s), x, y, ids), 8);
    double first = 0, last = 0;
    for (int step = 0; step < 4; step++) {
        spk_batch_stats st = {0};
        rc = spk_session_train_batch(s, x, y, 8, &st, &err);
        cr_assert_eq(rc, SPK_OK, "%s", err.msg);
        cr_assert(isfinite(st.loss_sum));
        if (step == 0)
            first = st.loss_sum;
        last = st.loss_sum;
    }
    cr_expect_lt(last, first, "the loss did not fall: %g -> %g", first, last);
    free(x);
    spk_loader_free(ld);
    spk_session_free(s);
    spk_backend_free(be);
    spk_dataset_free(ds);
    spk_model_free(m);
    free(dir);
}

Test(events, an_image_set_is_refused_by_an_event_model)
{
    spk_model *m = NULL;
    spk_error err;
    cr_assert_eq(spk_model_load_string(EV_MODEL, "ev.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_open("cpu", &be, &err), SPK_OK, "%s", err.msg);
    spk_session *s = NULL;
    cr_assert_eq(spk_session_new(m, be, 2, &s, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_session_input_size(s), 8 * 2 * 34 * 34);
    spk_dataset img = {.n = 1, .channels = 2, .height = 34, .width = 34};
    cr_expect_eq(spk_session_check_data(s, &img, &err), SPK_ERR_SHAPE);
    cr_expect_not_null(strstr(err.msg, "event frames"), "%s", err.msg);
    /* frames of another length than time_steps */
    gen_ev a[] = {{1, 1, 0, 10}};
    spk_frames fr = frames_of(5, 1000);
    spk_dataset *ds = one_split("len", a, 1, a, 1, &fr);
    cr_expect_eq(spk_session_check_data(s, ds, &err), SPK_ERR_SHAPE);
    cr_expect_not_null(strstr(err.msg, "time_steps 8"), "%s", err.msg);
    spk_dataset_free(ds);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}

/* ---- the CLI ---- */

Test(events, nmnist_conv_trains_end_to_end_through_the_cli, .timeout = 300)
{
    write_two_class_set("cli", 2);
    char args[1024], *out = NULL;
    snprintf(args, sizeof args,
             "train models/nmnist_conv.yaml --data %s/cli --batch 2 --epochs 1 --device cpu "
             "--out %s/cli-run",
             spk_test_tmpdir(), spk_test_tmpdir());
    int rc = spk_test_cli(args, &out);
    cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
    double loss = spk_test_json_number(out, "test_loss");
    cr_expect(isfinite(loss) && loss > 0, "test loss %g\n%s", loss, out);
    double acc = spk_test_json_number(out, "test_accuracy");
    cr_expect(acc >= 0 && acc <= 1, "%s", out);
    free(out);
    char *ck = tmp_path("cli-run/model.safetensors");
    struct stat st;
    cr_assert_eq(stat(ck, &st), 0, "no checkpoint at %s", ck);
    /* eval reads the same folder's Test split with the checkpoint */
    snprintf(args, sizeof args,
             "eval models/nmnist_conv.yaml --weights %s --data %s/cli --batch 2 --device cpu", ck,
             spk_test_tmpdir());
    rc = spk_test_cli(args, &out);
    cr_expect_eq(rc, 0, "exit %d\n%s", rc, out);
    cr_expect_float_eq(spk_test_json_number(out, "test_loss"), loss, 1e-4 * loss, "%s", out);
    free(out);
    free(ck);
}

Test(events, a_bad_recording_exits_2_naming_it)
{
    gen_ev back[] = {{1, 1, 0, 30}, {2, 2, 1, 20}};
    char *file = write_events("clibad/Train/2/00007.bin", back, 2, 0);
    char args[1024], *out = NULL;
    snprintf(args, sizeof args,
             "train models/nmnist_conv.yaml --data %s/clibad --device cpu --out %s/clibad-run",
             spk_test_tmpdir(), spk_test_tmpdir());
    int rc = spk_test_cli(args, &out);
    cr_expect_eq(rc, 2, "exit %d\n%s", rc, out);
    cr_expect_not_null(strstr(out, file), "%s", out);
    free(out);
    free(file);
}

/* ---- scripts/get-nmnist.sh, on local archives (no network) ---- */

Test(events, get_nmnist_checks_and_extracts_local_archives, .timeout = 120)
{
    gen_ev a[] = {{1, 1, 0, 10}, {2, 2, 1, 20}};
    free(write_events("zsrc/Train/4/00001.bin", a, 2, 0));
    free(write_events("zsrc/Train/7/00002.bin", a, 2, 0));
    free(write_events("zsrc/Test/4/00003.bin", a, 2, 0));
    const char *t = spk_test_tmpdir();
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "cd %s/zsrc && zip -qr ../Train.zip Train && zip -qr ../Test.zip Test && cd .. && "
             "SPK_NMNIST_URLS=\"file://%s/Train.zip file://%s/Test.zip\" "
             "SPK_NMNIST_MD5S=\"$(md5sum Train.zip | cut -d' ' -f1) $(md5sum Test.zip | cut -d' ' "
             "-f1)\" bash %s/scripts/get-nmnist.sh %s/got",
             t, t, t, SPK_SOURCE_DIR, t);
    int rc = spk_test_run(cmd, &out);
    cr_assert_eq(rc, 0, "exit %d\n%s", rc, out);
    cr_expect_not_null(strstr(out, "Train: 2 recordings"), "%s", out);
    free(out);
    char *got = tmp_path("got");
    spk_frames fr = frames_of(4, 1000);
    spk_dataset *ds = NULL;
    spk_error err;
    cr_assert_eq(spk_dataset_load_nmnist(got, 1, &fr, &ds, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(ds->n, 2);
    cr_expect_eq(ds->labels[1], 7);
    spk_dataset_free(ds);
    cr_assert_eq(spk_dataset_load_nmnist(got, 0, &fr, &ds, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(ds->n, 1);
    spk_dataset_free(ds);

    /* the archives are kept and check out without a download */
    snprintf(cmd, sizeof cmd,
             "cd %s && SPK_NMNIST_MD5S=\"$(md5sum Train.zip | cut -d' ' -f1) $(md5sum Test.zip | "
             "cut -d' ' -f1)\" bash %s/scripts/get-nmnist.sh --verify-only %s/got",
             t, SPK_SOURCE_DIR, t);
    rc = spk_test_run(cmd, &out);
    cr_expect_eq(rc, 0, "exit %d\n%s", rc, out);
    free(out);

    /* a wrong sum: refused, nothing extracted */
    snprintf(cmd, sizeof cmd,
             "cd %s && SPK_NMNIST_URLS=\"file://%s/Train.zip file://%s/Test.zip\" "
             "SPK_NMNIST_MD5S=\"00000000000000000000000000000000 "
             "00000000000000000000000000000000\" bash %s/scripts/get-nmnist.sh %s/bad 2>&1; "
             "echo rc=$?; ls %s/bad",
             t, t, t, SPK_SOURCE_DIR, t, t);
    rc = spk_test_run(cmd, &out);
    cr_expect_not_null(strstr(out, "MISMATCH"), "%s", out);
    cr_expect_not_null(strstr(out, "rc=1"), "%s", out);
    cr_expect_null(strstr(out, "Train\n"), "a split was extracted from a bad archive:\n%s", out);
    free(out);
    free(got);
}

/* ---- the time-varying input on OpenCL ---- */

/* One training step of a small event model on a device; the loss and conv1's weight after it. */
static double event_step(spk_backend *be, const char *dir, int batch, float *w, size_t nw)
{
    static const char *yaml =
        "input: {shape: [2, 34, 34]}\n"
        "time_steps: 12\n"
        "seed: 3\n"
        "layers:\n"
        "  - {name: conv1, type: synapse.conv2d, out: 4, kernel: 5, stride: 2}\n"
        "  - {name: lif1, type: neuron.lif, beta: 0.5, surrogate: atan}\n"
        "  - {name: fc, type: synapse.linear, out: 2}\n"
        "  - {name: lif2, type: neuron.lif, beta: 0.5, surrogate: atan}\n"
        "readout: {type: readout.spike_count}\n"
        "loss: {type: loss.mse_count, correct_rate: 0.8, incorrect_rate: 0.2}\n"
        "train:\n"
        "  data: {format: nmnist, path: x, time_window: 1000}\n"
        "  optimizer: {type: adam, lr: 2.0e-2}\n";
    spk_model *m = NULL;
    spk_error err;
    cr_assert_eq(spk_model_load_string(yaml, "par.yaml", &m, &err), SPK_OK, "%s", err.msg);
    spk_dataset *ds = NULL;
    cr_assert_eq(spk_dataset_load_nmnist(dir, 1, &spk_model_train_config(m)->frames, &ds, &err),
                 SPK_OK, "%s", err.msg);
    spk_session *s = NULL;
    cr_assert_eq(spk_session_new(m, be, batch, &s, &err), SPK_OK, "%s", err.msg);
    spk_loader *ld = NULL;
    cr_assert_eq(spk_loader_new(ds, 3, 0, 0, 0, &ld, &err), SPK_OK, "%s", err.msg);
    float *x = malloc((size_t)3 * spk_session_input_size(s) * sizeof *x);
    cr_assert_not_null(x);
    int32_t y[3];
    uint32_t ids[3];
    cr_assert_eq(spk_loader_next(ld, 1.0f, x, y, ids), 3); /* 3 samples, batch >= 3 */
    spk_batch_stats st = {0};
    cr_assert_eq(spk_session_train_batch(s, x, y, 3, &st, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_session_weight_numel(s, 0), nw);
    cr_assert_eq(spk_session_weight_get(s, 0, w, &err), SPK_OK, "%s", err.msg);
    free(x);
    spk_loader_free(ld);
    spk_session_free(s);
    spk_dataset_free(ds);
    spk_model_free(m);
    return st.loss_sum;
}

Test(events, a_partial_batch_of_frames_equals_a_full_one)
{
    /* n = 3 samples in a session of 8 against a session of exactly 3: the same step */
    write_two_class_set("part", 2);
    char *dir = tmp_path("part");
    spk_backend *cpu = NULL;
    spk_error err;
    cr_assert_eq(spk_backend_open("cpu", &cpu, &err), SPK_OK, "%s", err.msg);
    enum { NW = 4 * 2 * 5 * 5 };
    float w3[NW], w8[NW];
    double l3 = event_step(cpu, dir, 3, w3, NW), l8 = event_step(cpu, dir, 8, w8, NW);
    cr_expect(fabs(l3 - l8) <= 1e-5 * fabs(l3), "loss %g (batch 3) vs %g (3 of 8)", l3, l8);
    double e = spk_test_nerr(w8, w3, NW);
    cr_expect_leq(e, 1e-6, "conv1.weight: normalised error %g", e);
    spk_backend_free(cpu);
    free(dir);
}

Test(events, cpu_and_opencl_agree_on_event_input, .timeout = 300)
{
    write_two_class_set("par", 2);
    char *dir = tmp_path("par");
    spk_backend *ocl = spk_test_opencl_device(NULL, 0);
    spk_backend *cpu = NULL;
    spk_error err;
    cr_assert_eq(spk_backend_open("cpu", &cpu, &err), SPK_OK, "%s", err.msg);
    enum { NW = 4 * 2 * 5 * 5 };
    float wc[NW], wo[NW];
    /* a partial batch: 3 samples in a session of 4 */
    double lc = event_step(cpu, dir, 4, wc, NW), lo = event_step(ocl, dir, 4, wo, NW);
    cr_expect(fabs(lc - lo) <= 1e-4 * fabs(lc), "loss cpu %g, opencl %g", lc, lo);
    double e = spk_test_nerr(wo, wc, NW);
    cr_expect_leq(e, 1e-5, "conv1.weight after one step: normalised error %g", e);
    spk_backend_free(ocl);
    spk_backend_free(cpu);
    free(dir);
}
