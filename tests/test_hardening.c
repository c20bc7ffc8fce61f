/* Regression tests for the defects of the outside audit (issue #8): every input here is made by
 * the test itself (small IDX sets, YAML, damaged checkpoints and plugins) in a temp folder. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spikecl/safetensors.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

/* ---- helpers ---- */

static void put_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* An IDX3 image file of n h x w images and its IDX1 labels (0..9), raw, with the standard
 * names of `split` ("train" or "t10k") in dir. Pixels follow the label, so a net can learn. */
static void write_idx(const char *dir, const char *split, int n, int h, int w)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, split);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    put_be32(f, 0x803);
    put_be32(f, (uint32_t)n);
    put_be32(f, (uint32_t)h);
    put_be32(f, (uint32_t)w);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < h * w; p++)
            fputc((p * 7 + (i % 10) * 31 + i) % 256 < 128 + (i % 10) * 12 ? 200 : 10, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split);
    f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    put_be32(f, 0x801);
    put_be32(f, (uint32_t)n);
    for (int i = 0; i < n; i++)
        fputc(i % 10, f);
    fclose(f);
}

/* dir = tmp/name with a train and a test split of h x w images */
static char *make_data(const char *name, int n, int h, int w)
{
    char *dir = malloc(1024);
    snprintf(dir, 1024, "%s/%s", spk_test_tmpdir(), name);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    cr_assert_eq(spk_test_run(cmd, NULL), 0);
    write_idx(dir, "train", n, h, w);
    write_idx(dir, "t10k", n / 2 > 0 ? n / 2 : 1, h, w);
    return dir;
}

/* A small 28x28 model (direct encoding, 784-32-10). extra is appended to the train: section. */
static char *small_model(const char *file, const char *name_line, const char *optim)
{
    char text[2048];
    snprintf(text, sizeof text,
             "%sinput: {shape: [1, 28, 28], scale: 0.00392157}\ntime_steps: 4\nseed: 3\n"
             "layers:\n"
             "  - {name: enc, type: encoder.direct}\n"
             "  - {name: fc1, type: synapse.linear, out: 32}\n"
             "  - {name: lif1, type: neuron.lif}\n"
             "  - {name: fc2, type: synapse.linear, out: 10}\n"
             "  - {name: lif2, type: neuron.lif}\n"
             "readout: {type: readout.spike_count}\nloss: {type: loss.mse_count}\n"
             "train:\n  batch: 16\n  optimizer: %s\n",
             name_line, optim ? optim : "{type: adam, lr: 0.002}");
    return spk_test_write(file, text);
}

/* SPIKECL_TEST_CLI may name another build of the program (to show a test failing before a fix),
 * as for every test (testutil). */
static int cli(const char *args, char **out)
{
    char cmd[4096];
    const char *bin = getenv("SPIKECL_TEST_CLI");
    snprintf(cmd, sizeof cmd, "cd %s && %s %s", spk_test_tmpdir(), bin && *bin ? bin : SPK_CLI,
             args);
    return spk_test_run(cmd, out);
}

/* ---- 1. image size vs the model's input ---- */

Test(hardening, image_size_mismatch_refused_by_every_command, .timeout = 300)
{
    char *model = small_model("m28.yaml", "", NULL);
    char args[2048], *out;
    /* eval needs weights of the right shape: a checkpoint of a 28x28 run */
    char *ok = make_data("img28", 40, 28, 28);
    snprintf(args, sizeof args, "train %s --data %s --device cpu --epochs 1 --out %s/ok", model, ok,
             spk_test_tmpdir());
    cr_assert_eq(cli(args, &out), 0, "%s", out);
    free(out);
    free(ok);
    const int sizes[2] = {32, 20};
    for (int k = 0; k < 2; k++) {
        char name[32], shape[32];
        snprintf(name, sizeof name, "img%d", sizes[k]);
        snprintf(shape, sizeof shape, "1x%dx%d", sizes[k], sizes[k]);
        char *dir = make_data(name, 40, sizes[k], sizes[k]);
        snprintf(args, sizeof args, "train %s --data %s --device cpu --epochs 1 --out %s/o%d",
                 model, dir, spk_test_tmpdir(), k);
        cr_expect_eq(cli(args, &out), 2, "%s", out);
        cr_expect(strstr(out, shape) && strstr(out, "1x28x28"), "%s", out);
        free(out);
        snprintf(args, sizeof args, "bench %s --data %s --device cpu --batches 1", model, dir);
        cr_expect_eq(cli(args, &out), 2, "%s", out);
        cr_expect(strstr(out, shape) && strstr(out, "1x28x28"), "%s", out);
        free(out);
        snprintf(args, sizeof args,
                 "eval %s --data %s --device cpu --weights %s/ok/model.safetensors", model, dir,
                 spk_test_tmpdir());
        cr_expect_eq(cli(args, &out), 2, "%s", out);
        cr_expect(strstr(out, shape) && strstr(out, "1x28x28"), "%s", out);
        free(out);
        free(dir);
    }
    free(model);
}

/* The library refuses too, where a data set meets a session. */
Test(hardening, image_size_mismatch_refused_by_library)
{
    char *model = small_model("lib28.yaml", "", NULL);
    spk_error err = {0};
    spk_model *m = NULL;
    spk_backend *be = NULL;
    spk_session *s = NULL;
    cr_assert_eq(spk_model_load(model, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_new(m, be, 8, &s, &err), 0, "%s", err.msg);
    uint8_t px[4 * 32 * 32] = {0}, lb[4] = {0, 1, 2, 3};
    spk_dataset big = {.n = 4,
                       .channels = 1,
                       .height = 32,
                       .width = 32,
                       .n_classes = 4,
                       .pixels = px,
                       .labels = lb};
    spk_dataset small = big, right = big;
    small.height = small.width = 20;
    right.height = right.width = 28;
    const spk_dataset *bad[2] = {&big, &small};
    for (int k = 0; k < 2; k++) {
        spk_loader *ld = NULL;
        cr_assert_eq(spk_loader_new(bad[k], 8, 1, 1, 0, &ld, &err), 0);
        spk_batch_stats st;
        cr_expect_eq(spk_train_epoch(s, ld, 0, 1, NULL, NULL, &st, &err), SPK_ERR_SHAPE);
        cr_expect(strstr(err.msg, "28x28"), "%s", err.msg);
        cr_expect_eq(spk_evaluate(s, ld, &st, &err), SPK_ERR_SHAPE);
        spk_loader_free(ld);
    }
    cr_expect_eq(spk_session_check_data(s, &right, &err), SPK_OK, "%s", err.msg);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
    free(model);
}

/* ---- 2 and 3. the optimizer state: tied to its weights, and validated ---- */

/* Trains `epochs` epochs of the small model into tmp/out (resuming when asked). */
static int train_run(const char *model, const char *data, const char *out_name, int epochs,
                     int resume, char **out)
{
    char args[2048];
    snprintf(args, sizeof args, "train %s --data %s --device cpu --epochs %d --out %s/%s%s", model,
             data, epochs, spk_test_tmpdir(), out_name, resume ? " --resume" : "");
    return cli(args, out);
}

/* Copies src to dst (both under the temp folder). */
static void copy_file(const char *src, const char *dst)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp %s/%s %s/%s", spk_test_tmpdir(), src, spk_test_tmpdir(), dst);
    cr_assert_eq(spk_test_run(cmd, NULL), 0, "%s", cmd);
}

Test(hardening, mismatched_weights_and_state_refused, .timeout = 300)
{
    char *model = small_model("pair.yaml", "", NULL);
    char *data = make_data("pairdata", 48, 28, 28);
    char *out;
    cr_assert_eq(train_run(model, data, "pair", 1, 0, &out), 0, "%s", out);
    free(out);
    copy_file("pair/optimizer.safetensors", "opt-epoch1.safetensors");
    cr_assert_eq(train_run(model, data, "pair", 2, 1, &out), 0, "%s", out);
    free(out);
    /* what a crash between the two renames leaves: epoch-2 weights, epoch-1 optimizer state */
    copy_file("opt-epoch1.safetensors", "pair/optimizer.safetensors");
    cr_expect_eq(train_run(model, data, "pair", 3, 1, &out), 2, "%s", out);
    cr_expect(strstr(out, "optimizer.safetensors (epoch 1, step 3) belongs to other weights"), "%s",
              out);
    cr_expect(!strstr(out, "epoch 3/3:"), "trained on:\n%s", out);
    free(out);
    /* the same pair made by a real failure of the second write: a file-size limit between the
     * sizes of the weights (~100 KB) and of the state (~200 KB), with SIGXFSZ ignored, acts
     * as a disk that fills up after the weights */
    cr_assert_eq(train_run(model, data, "full", 1, 0, &out), 0, "%s", out);
    free(out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && bash -c \"trap '' XFSZ; ulimit -f 150; exec %s train %s --data %s "
             "--device cpu --epochs 2 --resume --out %s/full\"",
             spk_test_tmpdir(), SPK_CLI, model, data, spk_test_tmpdir());
    cr_expect_eq(spk_test_run(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, "full/optimizer.safetensors") && strstr(out, "File too large"), "%s",
              out);
    free(out);
    cr_expect_eq(train_run(model, data, "full", 3, 1, &out), 2, "%s", out);
    cr_expect(strstr(out, "optimizer.safetensors (epoch 1, step 3) belongs to other weights"), "%s",
              out);
    free(out);
    free(data);
    free(model);
}

/* Rewrites tensor `name` of the state file tmp/src as dst with the given shape and values. */
static void forge_state(const char *src, const char *dst, const char *name, int64_t len,
                        float value)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", spk_test_tmpdir(), src);
    spk_st_file *f = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_read(path, &f, &err), 0, "%s", err.msg);
    float vals[4] = {value, value, value, value};
    spk_st_tensor *t = (spk_st_tensor *)spk_st_file_find(f, name);
    cr_assert(t && len <= 4);
    free(t->data);
    t->data = malloc(sizeof vals);
    memcpy(t->data, vals, sizeof vals);
    t->shape[0] = len;
    snprintf(path, sizeof path, "%s/%s", spk_test_tmpdir(), dst);
    cr_assert_eq(spk_safetensors_write(path, f->n, f->tensors, 0, NULL, NULL, &err), 0, "%s",
                 err.msg);
    spk_st_file_free(f);
}

Test(hardening, damaged_optimizer_state_refused, .timeout = 300)
{
    char *model = small_model("state.yaml", "", NULL);
    char *data = make_data("statedata", 32, 28, 28);
    char *out;
    cr_assert_eq(train_run(model, data, "st", 1, 0, &out), 0, "%s", out);
    free(out);
    copy_file("st/optimizer.safetensors", "good-state.safetensors");
    struct {
        const char *tensor;
        int64_t len;
        float value;
        const char *expect;
    } cases[] = {
        {"step", 0, 1, "'step' must hold exactly one value"},
        {"epochs_done", 0, 1, "'epochs_done' must hold exactly one value"},
        {"epochs_done", 2, 1, "'epochs_done' must hold exactly one value"},
        {"epochs_done", 1, NAN, "'epochs_done' must be a whole number"},
        {"epochs_done", 1, -1, "'epochs_done' must be a whole number"},
        {"epochs_done", 1, 3e9f, "'epochs_done' must be a whole number"},
        {"epochs_done", 1, 0.5f, "'epochs_done' must be a whole number"},
        {"step", 1, INFINITY, "'step' must be a whole number"},
        {"step", 1, -5, "'step' must be a whole number"},
        {"epochs_done", 1, 7, "already holds 7 epochs"}, /* more than --epochs 3 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        forge_state("good-state.safetensors", "st/optimizer.safetensors", cases[i].tensor,
                    cases[i].len, cases[i].value);
        cr_expect_eq(train_run(model, data, "st", 3, 1, &out), 2, "case %zu: %s", i, out);
        cr_expect(strstr(out, cases[i].expect), "case %zu: %s", i, out);
        free(out);
    }
    /* a truncated and an empty file */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "head -c 100 %s/good-state.safetensors > %s/st/optimizer.safetensors",
             spk_test_tmpdir(), spk_test_tmpdir());
    cr_assert_eq(spk_test_run(cmd, NULL), 0);
    cr_expect_eq(train_run(model, data, "st", 3, 1, &out), 2, "%s", out);
    cr_expect(strstr(out, "optimizer.safetensors"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, ": > %s/st/optimizer.safetensors", spk_test_tmpdir());
    cr_assert_eq(spk_test_run(cmd, NULL), 0);
    cr_expect_eq(train_run(model, data, "st", 3, 1, &out), 2, "%s", out);
    cr_expect(strstr(out, "optimizer.safetensors"), "%s", out);
    free(out);
    /* the good file still resumes */
    copy_file("good-state.safetensors", "st/optimizer.safetensors");
    cr_expect_eq(train_run(model, data, "st", 2, 1, &out), 0, "%s", out);
    cr_expect(strstr(out, "after epoch 1"), "%s", out);
    free(out);
    free(data);
    free(model);
}

/* ---- 6. the model's name, and the JSON result line ---- */

Test(hardening, model_name_validated)
{
    const char *bad[] = {"../../x",        "a/b",  "..",       ".hidden",
                         "'say \"hi\"'",   "x\"y", "\"it's\"", "\"tab\\there\"",
                         "\"new\\nline\"", "a..b", "~",        "[a]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char line[128], *out;
        snprintf(line, sizeof line, "name: %s\n", bad[i]);
        char *model = small_model("badname.yaml", line, NULL);
        char args[1024];
        snprintf(args, sizeof args, "train %s --device cpu --data /nonexistent", model);
        cr_expect_eq(cli(args, &out), 2, "%s: %s", bad[i], out);
        cr_expect(strstr(out, "badname.yaml:1:7: 'name' must be a word"), "%s: %s", bad[i], out);
        free(out);
        free(model);
    }
    spk_model *m = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_model_load_string("name: mlp-v1.2_b\ninput: {shape: [4]}\ntime_steps: 2\n"
                                       "layers:\n  - {name: a, type: neuron.lif}\n",
                                       "ok.yaml", &m, &err),
                 0, "%s", err.msg);
    cr_expect_str_eq(spk_model_name(m), "mlp-v1.2_b");
    spk_model_free(m);
    /* without a name, the file's base name stands in, made to fit the same rule */
    cr_assert_eq(spk_model_load_string("input: {shape: [4]}\ntime_steps: 2\n"
                                       "layers:\n  - {name: a, type: neuron.lif}\n",
                                       "dir/my \"odd\" model.v2.yaml", &m, &err),
                 0, "%s", err.msg);
    cr_expect_str_eq(spk_model_name(m), "my__odd__model_v2");
    spk_model_free(m);
}

/* The last line of train, eval and bench is one JSON object that parses, whatever the paths. */
Test(hardening, json_line_parses_with_odd_paths, .timeout = 300)
{
    char *model = small_model("json.yaml", "", NULL);
    char *data = make_data("jsondata", 32, 28, 28);
    const char *check = "tail -n 1 | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); "
                        "print(\"parsed\", d.get(\"checkpoint\", d.get(\"device\")))'";
    char cmd[4096], *out;
    /* a folder name with a quote, a backslash, a tab and a byte that is not UTF-8 */
    snprintf(cmd, sizeof cmd,
             "cd %s && %s train %s --data %s --device cpu --epochs 1 --out \"$(printf "
             "'o\\042ut\\\\\\\\d\\tir\\377')\" 2>/dev/null | %s",
             spk_test_tmpdir(), SPK_CLI, model, data, check);
    cr_expect_eq(spk_test_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "parsed ") && strstr(out, "model.safetensors"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "cd %s && %s eval %s --data %s --device cpu --weights \"$(printf "
             "'o\\042ut\\\\\\\\d\\tir\\377')\"/model.safetensors 2>/dev/null | %s",
             spk_test_tmpdir(), SPK_CLI, model, data, check);
    cr_expect_eq(spk_test_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "parsed cpu"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "cd %s && %s bench %s --device cpu --batches 1 --batch 4 2>/dev/null | %s",
             spk_test_tmpdir(), SPK_CLI, model, check);
    cr_expect_eq(spk_test_run(cmd, &out), 0, "%s", out);
    cr_expect(strstr(out, "parsed cpu"), "%s", out);
    free(out);
    free(data);
    free(model);
}

/* ---- 4. non-finite numbers ---- */

Test(hardening, non_finite_learning_rates_refused)
{
    char *model = small_model("lrcli.yaml", "", NULL);
    const char *bad[] = {"inf", "-inf", "nan", "1e400", "1e39", "0", "-1", "1e-400x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[1024], *out;
        snprintf(args, sizeof args, "train %s --device cpu --lr %s --data /nonexistent", model,
                 bad[i]);
        cr_expect_eq(cli(args, &out), 2, "--lr %s: %s", bad[i], out);
        cr_expect(strstr(out, "--lr expects a finite number"), "--lr %s: %s", bad[i], out);
        free(out);
    }
    free(model);
    /* YAML: numbers must fit a float (layer parameters included) */
    spk_model *m = NULL;
    spk_error err = {0};
    cr_expect_eq(spk_model_load_string("input: {shape: [4]}\ntime_steps: 2\nlayers:\n"
                                       "  - {name: a, type: neuron.lif, beta: 0.5, threshold: "
                                       "1e300}\n",
                                       "big.yaml", &m, &err),
                 SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "big.yaml:4:") && strstr(err.msg, "'threshold'"), "%s", err.msg);
    cr_expect_eq(spk_model_load_string("input: {shape: [4]}\ntime_steps: 2\nlayers:\n"
                                       "  - {name: a, type: neuron.lif}\n"
                                       "train: {optimizer: {type: sgd, lr: .inf}}\n",
                                       "inf.yaml", &m, &err),
                 SPK_ERR_INVALID);
    cr_expect(strstr(err.msg, "inf.yaml:5:") && strstr(err.msg, "'lr'"), "%s", err.msg);
}

/* lr: 3.0e38 is a float, so it loads; the first step makes the weights infinite and the run
 * stops at once, exit 1, naming epoch, batch and layer, and leaves the last checkpoint alone. */
Test(hardening, diverging_run_stops_and_keeps_checkpoint, .timeout = 300)
{
    char *good = small_model("div-good.yaml", "", NULL);
    char *bad = small_model("div-bad.yaml", "", "{type: adam, lr: 3.0e38}");
    char *data = make_data("divdata", 48, 28, 28);
    char *out, cmd[2048];
    cr_assert_eq(train_run(good, data, "div", 1, 0, &out), 0, "%s", out);
    free(out);
    copy_file("div/model.safetensors", "div-epoch1.safetensors");
    cr_expect_eq(train_run(bad, data, "div", 2, 0, &out), 1, "%s", out);
    cr_expect(strstr(out, "training diverged in epoch 1, batch 1 of 3: layer 'fc1'"), "%s", out);
    cr_expect(strstr(out, "is as it was"), "%s", out);
    cr_expect(!strstr(out, "test_accuracy"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cmp %s/div/model.safetensors %s/div-epoch1.safetensors",
             spk_test_tmpdir(), spk_test_tmpdir());
    cr_expect_eq(spk_test_run(cmd, &out), 0, "checkpoint overwritten: %s", out);
    free(out);
    /* --lr 1e9 keeps the weights finite but huge: the run warns */
    char args[2048];
    snprintf(args, sizeof args, "train %s --data %s --device cpu --epochs 1 --lr 1e9 --out %s/big",
             good, data, spk_test_tmpdir());
    cr_expect_eq(cli(args, &out), 0, "%s", out);
    cr_expect(strstr(out, "warning: epoch 1: |") && strstr(out, "the weights are exploding"), "%s",
              out);
    free(out);
    free(data);
    free(good);
    free(bad);
}

/* eval (and --resume) refuse a checkpoint that holds NaN or infinite weights. */
Test(hardening, non_finite_checkpoint_refused, .timeout = 300)
{
    char *model = small_model("nanw.yaml", "", NULL);
    char *data = make_data("nanwdata", 32, 28, 28);
    char *out, path[1024];
    cr_assert_eq(train_run(model, data, "nanw", 1, 0, &out), 0, "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/nanw/model.safetensors", spk_test_tmpdir());
    spk_st_file *f = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_safetensors_read(path, &f, &err), 0, "%s", err.msg);
    spk_st_tensor *t = (spk_st_tensor *)spk_st_file_find(f, "fc2.weight");
    cr_assert(t);
    t->data[5] = NAN;
    snprintf(path, sizeof path, "%s/nan.safetensors", spk_test_tmpdir());
    cr_assert_eq(spk_safetensors_write(path, f->n, f->tensors, 0, NULL, NULL, &err), 0);
    t->data[5] = INFINITY;
    snprintf(path, sizeof path, "%s/inf.safetensors", spk_test_tmpdir());
    cr_assert_eq(spk_safetensors_write(path, f->n, f->tensors, 0, NULL, NULL, &err), 0);
    spk_st_file_free(f);
    const char *files[2] = {"nan", "inf"};
    for (int k = 0; k < 2; k++) {
        char args[2048];
        snprintf(args, sizeof args, "eval %s --data %s --device cpu --weights %s/%s.safetensors",
                 model, data, spk_test_tmpdir(), files[k]);
        cr_expect_eq(cli(args, &out), 2, "%s", out);
        cr_expect(strstr(out, "tensor 'fc2.weight' holds a non-finite value") &&
                      strstr(out, "at index 5"),
                  "%s", out);
        free(out);
    }
    free(data);
    free(model);
}

/* ---- signals and I/O errors ---- */

static int file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* Starts `spikecl train` as a child with its output in log, waits until log shows `when`, sends
 * sig and returns the child's exit status (-1 if it did not exit normally). */
static int train_and_signal(const char *model, const char *data, const char *out_dir,
                            const char *log, const char *when, int sig)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(99);
        /* one thread: fast enough, and the same arithmetic as the reference run */
        execl(SPK_CLI, SPK_CLI, "train", model, "--data", data, "--device", "cpu", "--threads", "1",
              "--epochs", "2", "--batch", "2", "--limit-train", "1000", "--out", out_dir,
              (char *)NULL);
        _exit(98);
    }
    struct timespec nap = {0, 10 * 1000 * 1000};
    int st, waited = 0;
    for (int i = 0; i < 6000 && !file_has(log, when); i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            waited = 1;
            break;
        }
        nanosleep(&nap, NULL);
    }
    cr_expect(!waited, "the run ended before '%s'", when);
    if (!waited) {
        kill(pid, sig);
        waitpid(pid, &st, 0);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* SIGINT (and SIGTERM) mid-epoch: the batch finishes, a consistent checkpoint pair is written,
 * the resume command is printed, exit 128 + signal; --resume then ends byte-identical to a run
 * that was never stopped. */
Test(hardening, signal_mid_epoch_then_resume, .timeout = 300)
{
    char *model = small_model("sig.yaml", "", NULL);
    char *data = make_data("sigdata", 1000, 28, 28);
    const char *tmp = spk_test_tmpdir();
    char args[2048], ref[512], cmd[8192], log[1024], *out;
    snprintf(ref, sizeof ref, "%s/sigref", tmp);
    snprintf(args, sizeof args,
             "train %s --data %s --device cpu --threads 1 --epochs 2 --batch 2 --limit-train "
             "1000 --out %s",
             model, data, ref);
    cr_assert_eq(cli(args, &out), 0, "%s", out);
    free(out);
    const int sigs[2] = {SIGINT, SIGTERM};
    for (int k = 0; k < 2; k++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/sig%d", tmp, k);
        snprintf(log, sizeof log, "%s/sig%d.log", tmp, k);
        int rc = train_and_signal(model, data, dir, log, "epoch 1/2  20%", sigs[k]);
        cr_expect_eq(rc, 128 + sigs[k], "exit %d", rc);
        snprintf(cmd, sizeof cmd, "cat %s", log);
        spk_test_run(cmd, &out);
        cr_expect(strstr(out, "stopped by signal") && strstr(out, "in epoch 1 after batch ") &&
                      strstr(out, "of 500; "),
                  "%s", out);
        char *resume = strstr(out, "spikecl: resume with: ");
        cr_assert(resume, "%s", out);
        resume += strlen("spikecl: resume with: ");
        char *nl = strchr(resume, '\n');
        if (nl)
            *nl = '\0';
        cr_expect(strstr(resume, " --resume"), "%s", resume);
        /* run the printed command as it is */
        snprintf(cmd, sizeof cmd, "cd %s && %s", tmp, resume);
        free(out);
        cr_assert_eq(spk_test_run(cmd, &out), 0, "%s", out);
        cr_expect(strstr(out, "resuming") && strstr(out, "in epoch 1 after batch"), "%s", out);
        free(out);
        snprintf(cmd, sizeof cmd,
                 "cmp %s/model.safetensors %s/model.safetensors && cmp %s/optimizer.safetensors "
                 "%s/optimizer.safetensors",
                 ref, dir, ref, dir);
        cr_expect_eq(spk_test_run(cmd, &out), 0, "resumed run differs from the reference: %s", out);
        free(out);
    }
    free(data);
    free(model);
}

/* A write that fails (here: a file-size limit, as on a full disk) is not bad input: exit 1. */
Test(hardening, write_error_exits_1, .timeout = 300)
{
    char *model = small_model("io.yaml", "", NULL);
    char *data = make_data("iodata", 32, 28, 28);
    char cmd[4096], *out;
    /* SIGXFSZ ignored, so the write fails with EFBIG instead of killing the program */
    snprintf(cmd, sizeof cmd,
             "cd %s && bash -c \"trap '' XFSZ; ulimit -f 16; exec %s train %s --data %s --device "
             "cpu --epochs 1 --out %s/io\"",
             spk_test_tmpdir(), SPK_CLI, model, data, spk_test_tmpdir());
    cr_expect_eq(spk_test_run(cmd, &out), 1, "%s", out);
    cr_expect(strstr(out, "model.safetensors") && strstr(out, "File too large"), "%s", out);
    free(out);
    free(data);
    free(model);
}
