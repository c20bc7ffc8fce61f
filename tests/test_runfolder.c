/* The run folder of `spikecl train --out DIR` (model.yaml, run.json, metrics.jsonl,
 * best.safetensors, confusion.json and the pictures), `spikecl plot` and `eval --predictions`,
 * on the 500 MNIST digits of tests/data/mnist (the test split stands in for the training one). */
#include <cairo.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot.h" /* tools/: the pictures' sizes */
#include "spikecl/spikecl.h"
#include "testutil.h"

#define LIMITS "--limit-train 96 --limit-test 64 --batch 32 --device cpu --threads 1"

/* A folder with the MNIST file names, the training pair linked to the test pair. */
static const char *data_dir(void)
{
    static char dir[512];
    char cmd[2048];
    snprintf(dir, sizeof dir, "%s/mn", spk_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && cd %s && for f in images-idx3-ubyte labels-idx1-ubyte; do "
             "ln -sf %s/tests/data/mnist/t10k-$f.gz t10k-$f.gz && "
             "ln -sf %s/tests/data/mnist/t10k-$f.gz train-$f.gz; done",
             dir, dir, SPK_SOURCE_DIR, SPK_SOURCE_DIR);
    cr_assert_eq(spk_test_run(cmd, NULL), 0);
    return dir;
}

/* Trains mnist_lif_mlp into tmp/name and returns the folder. */
static const char *train_run(const char *name, const char *extra)
{
    static char run[512];
    char args[2048], *out;
    snprintf(run, sizeof run, "%s/%s", spk_test_tmpdir(), name);
    snprintf(args, sizeof args, "train models/mnist_lif_mlp.yaml --data %s " LIMITS " --out %s %s",
             data_dir(), run, extra);
    int rc = spk_test_cli(args, &out);
    cr_assert_eq(rc, 0, "spikecl %s: %s", args, out);
    free(out);
    return run;
}

static char *path_in(const char *dir, const char *file)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return p;
}

/* The lines of metrics.jsonl, each parsed; *n_epoch and *n_batch count the kinds. */
static json_t *read_metrics(const char *run, int *n_epoch, int *n_batch)
{
    FILE *f = fopen(path_in(run, "metrics.jsonl"), "r");
    cr_assert(f, "no metrics.jsonl in %s", run);
    json_t *lines = json_array();
    char line[8192];
    *n_epoch = *n_batch = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        cr_assert(j, "metrics.jsonl: %s in: %s", e.text, line);
        const char *kind = json_string_value(json_object_get(j, "kind"));
        cr_assert(kind, "a line without kind: %s", line);
        if (!strcmp(kind, "epoch")) {
            (*n_epoch)++;
            for (const char *const *k = (const char *const[]){"train_loss", "train_accuracy",
                                                              "test_loss", "test_accuracy", "lr",
                                                              "samples_per_s", "elapsed_s", NULL};
                 *k; k++)
                cr_expect(json_is_number(json_object_get(j, *k)), "no %s in %s", *k, line);
            json_t *sr = json_object_get(j, "spike_rate");
            cr_expect(json_is_number(json_object_get(sr, "lif1")) &&
                          json_is_number(json_object_get(sr, "lif2")),
                      "spike rates of lif1 and lif2 missing: %s", line);
            double r = json_number_value(json_object_get(sr, "lif1"));
            cr_expect(r > 0 && r < 1, "lif1's rate %g", r);
        } else if (!strcmp(kind, "batch")) {
            (*n_batch)++;
        }
        json_array_append_new(lines, j);
    }
    fclose(f);
    return lines;
}

Test(runfolder, files_parse_and_resume_appends)
{
    const char *run = train_run("r1", "--epochs 1 --log-every 1 --no-plots");
    const char *files[] = {"model.yaml",       "run.json",          "metrics.jsonl",
                           "best.safetensors", "model.safetensors", "optimizer.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        cr_expect_eq(access(path_in(run, files[i]), R_OK), 0, "%s missing", files[i]);
    cr_expect_neq(access(path_in(run, "curves.png"), F_OK), 0, "--no-plots drew pictures");

    /* model.yaml: every default written out, loadable, with the run's settings */
    spk_model *m = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_model_load(path_in(run, "model.yaml"), &m, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_model_train_config(m)->batch, 32);
    cr_expect_eq(spk_model_train_config(m)->epochs, 1);
    cr_expect_eq(spk_model_time_steps(m), 25);
    spk_model_free(m);
    char *yaml = NULL;
    FILE *f = fopen(path_in(run, "model.yaml"), "r");
    cr_assert(f);
    yaml = calloc(1, 65536);
    cr_assert(yaml);
    cr_expect(fread(yaml, 1, 65535, f) > 0);
    fclose(f);
    cr_expect(strstr(yaml, "reset: subtract") && strstr(yaml, "detach_reset: true") &&
                  strstr(yaml, "eps: 1e-08") && strstr(yaml, "/mn/train-images-idx3-ubyte.gz"),
              "defaults or --data paths missing:\n%s", yaml);
    free(yaml);

    /* run.json: the version and the command line */
    json_error_t je;
    json_t *rj = json_load_file(path_in(run, "run.json"), 0, &je);
    cr_assert(rj, "run.json: %s", je.text);
    cr_expect_str_eq(json_string_value(json_object_get(rj, "spikecl_version")), SPIKECL_VERSION);
    json_t *inv = json_object_get(rj, "invocations");
    cr_assert_eq(json_array_size(inv), 1);
    cr_expect_str_eq(
        json_string_value(json_array_get(json_object_get(json_array_get(inv, 0), "argv"), 1)),
        "train");
    json_decref(rj);

    int ne, nb;
    json_t *lines = read_metrics(run, &ne, &nb);
    cr_expect_eq(ne, 1);
    cr_expect_eq(nb, 2, "3 batches, a line after each but the last: %d", nb);
    char *first = json_dumps(json_array_get(lines, 0), JSON_SORT_KEYS);
    json_decref(lines);

    /* resuming appends: the old lines stay, a second epoch line follows */
    train_run("r1", "--epochs 2 --log-every 1 --no-plots --resume");
    lines = read_metrics(run, &ne, &nb);
    cr_expect_eq(ne, 2);
    cr_expect_eq(nb, 4);
    char *again = json_dumps(json_array_get(lines, 0), JSON_SORT_KEYS);
    cr_expect_str_eq(again, first, "the first line changed on resume");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(lines, 5), "epoch")), 2);
    free(first);
    free(again);
    json_decref(lines);
    rj = json_load_file(path_in(run, "run.json"), 0, &je);
    cr_assert(rj);
    cr_expect_eq(json_array_size(json_object_get(rj, "invocations")), 2);
    json_decref(rj);
}

/* The run repeats from its model.yaml alone: same figures. */
Test(runfolder, model_yaml_repeats_the_run)
{
    char *a, *b, args[2048];
    const char *run = train_run("r2", "--epochs 1 --no-plots --seed 7 --lr 0.003");
    snprintf(args, sizeof args,
             "train models/mnist_lif_mlp.yaml --data %s " LIMITS
             " --epochs 1 --no-plots --seed 7 --lr 0.003 --out %s/r2a",
             data_dir(), spk_test_tmpdir());
    cr_assert_eq(spk_test_cli(args, &a), 0, "%s", a);
    snprintf(args, sizeof args,
             "train %s/model.yaml --limit-train 96 --limit-test 64 --device cpu --threads 1 "
             "--no-plots --out %s/r2b",
             run, spk_test_tmpdir());
    cr_assert_eq(spk_test_cli(args, &b), 0, "%s", b);
    cr_expect_eq(spk_test_json_number(a, "train_loss"), spk_test_json_number(b, "train_loss"),
                 "%s\n%s", a, b);
    cr_expect_eq(spk_test_json_number(a, "test_accuracy"),
                 spk_test_json_number(b, "test_accuracy"));
    free(a);
    free(b);
}

/* A PNG of the expected size whose pixels are not all alike, and (colour) with data drawn in
 * the palette's colours. */
static void check_png_c(const char *run, const char *name, int w, int h, int colour)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path_in(run, name));
    cr_assert_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS, "%s: %s", name,
                 cairo_status_to_string(cairo_surface_status(s)));
    cr_expect_eq(cairo_image_surface_get_width(s), w, "%s width", name);
    cr_expect_eq(cairo_image_surface_get_height(s), h, "%s height", name);
    cairo_surface_flush(s);
    const unsigned char *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    double sum = 0, sum2 = 0, n = 0;
    long coloured = 0; /* pixels of the palette (not grey) */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const unsigned char *p = px + (size_t)y * stride + 4 * (size_t)x; /* B, G, R, X */
            double l = 0.114 * p[0] + 0.587 * p[1] + 0.299 * p[2];
            sum += l;
            sum2 += l * l;
            n++;
            coloured += abs(p[0] - p[2]) > 40;
        }
    double var = sum2 / n - (sum / n) * (sum / n);
    cr_expect(var > 100, "%s looks blank: luminance variance %.1f", name, var);
    if (colour)
        cr_expect(coloured > 200, "%s has no data drawn in colour (%ld pixels)", name, coloured);
    cairo_surface_destroy(s);
}

static void check_png(const char *run, const char *name, int w, int h)
{
    check_png_c(run, name, w, h, 1);
}

static void check_pictures(const char *run)
{
    check_png(run, "curves.png", SPK_PLOT_CURVES_W, SPK_PLOT_CURVES_H);
    check_png(run, "raster.png", SPK_PLOT_RASTER_W, SPK_PLOT_RASTER_H);
    check_png(run, "spike_counter.png", SPK_PLOT_COUNTER_W, SPK_PLOT_COUNTER_H);
    check_png(run, "confusion.png", SPK_PLOT_CONFUSION_W, SPK_PLOT_CONFUSION_H);
    check_png(run, "membrane.png", SPK_PLOT_MEMBRANE_W, SPK_PLOT_MEMBRANE_H);
}

Test(runfolder, pictures_and_confusion_match_eval_predictions)
{
    const char *run = train_run("r3", "--epochs 1");
    check_pictures(run);

    /* eval --predictions on the same weights and samples */
    char args[2048], *out, csv[600];
    snprintf(csv, sizeof csv, "%s/pred.csv", spk_test_tmpdir());
    snprintf(args, sizeof args,
             "eval models/mnist_lif_mlp.yaml --weights %s/model.safetensors --data %s "
             "--limit-test 64 --batch 32 --device cpu --threads 1 --predictions %s",
             run, data_dir(), csv);
    cr_assert_eq(spk_test_cli(args, &out), 0, "%s", out);
    const char *line = strrchr(out, '{');
    cr_assert(line, "%s", out);
    json_t *ev = json_loads(line, 0, NULL);
    cr_assert(ev, "%s", out);

    long from_csv[10][10] = {{0}};
    FILE *f = fopen(csv, "r");
    cr_assert(f);
    char buf[1024];
    cr_assert(fgets(buf, sizeof buf, f));
    cr_expect_str_eq(buf, "index,label,prediction,count_0,count_1,count_2,count_3,count_4,"
                          "count_5,count_6,count_7,count_8,count_9\n");
    int rows = 0;
    while (fgets(buf, sizeof buf, f)) {
        int idx, label, pred;
        double c[10];
        int got =
            sscanf(buf, "%d,%d,%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &idx, &label, &pred,
                   &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &c[9]);
        cr_assert_eq(got, 13, "bad line: %s", buf);
        cr_expect_eq(idx, rows, "samples in data-set order");
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (c[k] > c[best])
                best = k;
        cr_expect_eq(pred, best, "the prediction is the first largest count: %s", buf);
        from_csv[label][pred]++;
        rows++;
    }
    fclose(f);
    cr_expect_eq(rows, 64);

    json_error_t je;
    json_t *cj = json_load_file(path_in(run, "confusion.json"), 0, &je);
    cr_assert(cj, "confusion.json: %s", je.text);
    cr_expect_eq(json_integer_value(json_object_get(cj, "samples")), 64);
    json_t *cm = json_object_get(cj, "confusion"), *em = json_object_get(ev, "confusion");
    cr_assert_eq(json_array_size(cm), 10);
    long diag = 0;
    for (int t = 0; t < 10; t++)
        for (int p = 0; p < 10; p++) {
            long v = (long)json_integer_value(json_array_get(json_array_get(cm, t), p));
            cr_expect_eq(v, from_csv[t][p], "confusion.json [%d][%d] %ld, csv %ld", t, p, v,
                         from_csv[t][p]);
            cr_expect_eq(v, (long)json_integer_value(json_array_get(json_array_get(em, t), p)),
                         "eval's confusion [%d][%d]", t, p);
            diag += t == p ? v : 0;
        }
    cr_expect(fabs(json_number_value(json_object_get(ev, "test_accuracy")) - diag / 64.0) < 1e-4);
    json_t *pc = json_object_get(ev, "per_class_accuracy");
    cr_expect_eq(json_array_size(pc), 10);
    json_decref(cj);
    json_decref(ev);
    free(out);

    /* spikecl plot draws them again from the folder alone */
    cr_assert_eq(unlink(path_in(run, "membrane.png")), 0);
    snprintf(args, sizeof args, "plot %s --device cpu --threads 1", run);
    cr_assert_eq(spk_test_cli(args, &out), 0, "%s", out);
    free(out);
    check_pictures(run);

    /* a folder that is not a run says so */
    snprintf(args, sizeof args, "plot %s --device cpu", spk_test_tmpdir());
    cr_expect_eq(spk_test_cli(args, &out), 2, "%s", out);
    cr_expect(strstr(out, "is not a train run's folder"), "%s", out);
    free(out);
}

/* An event model (N-MNIST frames, convolutions, T = 312) on the sample recordings, which serve
 * as both splits: every picture is drawn (an untrained network spikes little, so colour is not
 * required of the raster). */
Test(runfolder, event_model_pictures, .timeout = 120)
{
    char dir[512], run[512], cmd[2048], *out;
    snprintf(dir, sizeof dir, "%s/nm", spk_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && ln -sfn %s/tests/data/nmnist-sample/Train %s/Train && "
             "ln -sfn %s/tests/data/nmnist-sample/Train %s/Test",
             dir, SPK_SOURCE_DIR, dir, SPK_SOURCE_DIR, dir);
    cr_assert_eq(spk_test_run(cmd, NULL), 0);
    snprintf(run, sizeof run, "%s/ev", spk_test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "train models/nmnist_conv.yaml --data %s --limit-train 2 --limit-test 4 --batch 2 "
             "--epochs 1 --device cpu --threads 1 --out %s",
             dir, run);
    cr_assert_eq(spk_test_cli(cmd, &out), 0, "%s", out);
    free(out);
    check_png(run, "curves.png", SPK_PLOT_CURVES_W, SPK_PLOT_CURVES_H);
    check_png_c(run, "raster.png", SPK_PLOT_RASTER_W, SPK_PLOT_RASTER_H, 0);
    check_png(run, "spike_counter.png", SPK_PLOT_COUNTER_W, SPK_PLOT_COUNTER_H);
    check_png(run, "confusion.png", SPK_PLOT_CONFUSION_W, SPK_PLOT_CONFUSION_H);
    check_png(run, "membrane.png", SPK_PLOT_MEMBRANE_W, SPK_PLOT_MEMBRANE_H);
    spk_model *m = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_model_load(path_in(run, "model.yaml"), &m, &err), SPK_OK, "%s", err.msg);
    cr_expect_eq(spk_model_train_config(m)->data_format, SPK_DATA_NMNIST);
    spk_model_free(m);
}
