/* spikecl — the command-line program. Thin: parses flags and calls the library.
 * Exit codes: 0 ok, 2 bad usage or bad input (message on stderr), 128 + N when signal N stopped
 * train (after writing a checkpoint it can resume from), 1 any other failure. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spikecl/spikecl.h"

#define EXIT_USAGE 2
/* A weight larger than this is taken as a sign of divergence worth a warning (trained spiking
 * nets keep their weights within a few units; 1e4 leaves wide room). */
#define SPK_CLI_WARN_WEIGHT 1e4

static const char *usage_text =
    "usage:\n"
    "  spikecl train MODEL.yaml [--device ID] [--epochs N] [--batch N] [--lr X] [--seed N]\n"
    "                           [--out DIR] [--data DIR] [--limit-train N] [--limit-test N]\n"
    "                           [--threads N] [--resume]\n"
    "  spikecl eval  MODEL.yaml --weights FILE [--device ID] [--data DIR] [--limit-test N]\n"
    "                           [--batch N] [--threads N]\n"
    "  spikecl bench MODEL.yaml [--device ID] [--batches N] [--batch N] [--threads N]\n"
    "  spikecl devices\n"
    "  spikecl plugins\n"
    "Devices: cpu, opencl, opencl:P:D, opencl:NAME (default: $SPIKECL_DEVICE, else the first\n"
    "OpenCL GPU, else cpu).\n";

typedef struct opts {
    int argc;
    char **argv;
    const char *cmd, *model, *device, *out, *data, *weights;
    int epochs, batch, seed_set, limit_train, limit_test, threads, batches, resume;
    double lr;
    unsigned long long seed;
} opts;

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spikecl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage_text);
    va_end(ap);
    return EXIT_USAGE;
}

/* Status codes that mean the user's input was wrong map to exit code 2. */
static int fail(const spk_error *err)
{
    fprintf(stderr, "spikecl: error: %s\n", err->msg);
    switch (err->code) {
    case SPK_ERR_NOMEM:
    case SPK_ERR_BACKEND:
    case SPK_ERR_NUMERIC: /* the input was fine; the run diverged */
        return 1;
    default:
        return EXIT_USAGE;
    }
}

static int parse_int(const char *flag, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || end == v || x < lo || x > hi)
        return usage_error("%s expects an integer in [%ld, %ld], got '%s'", flag, lo, hi,
                           v ? v : "(nothing)");
    *out = (int)x;
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->argc = argc;
    o->argv = argv;
    o->epochs = o->batch = o->limit_train = o->limit_test = -1;
    o->batches = 20;
    o->lr = -1;
    if (argc < 2)
        return usage_error("no command given");
    o->cmd = argv[1];
    int i = 2;
    if (strcmp(o->cmd, "train") == 0 || strcmp(o->cmd, "eval") == 0 ||
        strcmp(o->cmd, "bench") == 0) {
        if (argc < 3 || argv[2][0] == '-')
            return usage_error("'%s' needs a model file", o->cmd);
        o->model = argv[2];
        i = 3;
    } else if (strcmp(o->cmd, "devices") && strcmp(o->cmd, "plugins") && strcmp(o->cmd, "--help") &&
               strcmp(o->cmd, "help") && strcmp(o->cmd, "-h")) {
        return usage_error("unknown command '%s'", o->cmd);
    }
    for (; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(f, "--device") == 0 && v)
            o->device = v;
        else if (strcmp(f, "--out") == 0 && v)
            o->out = v;
        else if (strcmp(f, "--data") == 0 && v)
            o->data = v;
        else if (strcmp(f, "--weights") == 0 && v)
            o->weights = v;
        else if (strcmp(f, "--resume") == 0) {
            o->resume = 1;
            continue;
        } else if (strcmp(f, "--epochs") == 0)
            rc = parse_int(f, v, 1, 100000, &o->epochs);
        else if (strcmp(f, "--batch") == 0)
            rc = parse_int(f, v, 1, 1 << 20, &o->batch);
        else if (strcmp(f, "--limit-train") == 0)
            rc = parse_int(f, v, 1, 1 << 30, &o->limit_train);
        else if (strcmp(f, "--limit-test") == 0)
            rc = parse_int(f, v, 1, 1 << 30, &o->limit_test);
        else if (strcmp(f, "--threads") == 0)
            rc = parse_int(f, v, 1, 1024, &o->threads);
        else if (strcmp(f, "--batches") == 0)
            rc = parse_int(f, v, 1, 1 << 20, &o->batches);
        else if (strcmp(f, "--seed") == 0) {
            char *end;
            errno = 0;
            o->seed = v ? strtoull(v, &end, 10) : 0;
            if (!v || errno || *end || v[0] == '-')
                return usage_error("--seed expects a non-negative integer, got '%s'",
                                   v ? v : "(nothing)");
            o->seed_set = 1;
        } else if (strcmp(f, "--lr") == 0) {
            char *end;
            errno = 0;
            o->lr = v ? strtod(v, &end) : -1;
            /* inf, nan and anything a float cannot hold (1e400, 1e39) would train to NaN */
            if (!v || *end || end == v || errno || !isfinite(o->lr) || !(o->lr > 0) ||
                o->lr > FLT_MAX)
                return usage_error("--lr expects a finite number in (0, %g], got '%s'",
                                   (double)FLT_MAX, v ? v : "(nothing)");
        } else if (f[0] == '-' && f[1] == '-' && !v && strcmp(f, "--help"))
            return usage_error("%s needs a value", f);
        else
            return usage_error("unknown option '%s' for '%s'", f, o->cmd);
        if (rc)
            return rc;
        i++;
    }
    if (o->resume && strcmp(o->cmd, "train") != 0)
        return usage_error("--resume applies to train");
    return 0;
}

static int open_device(const opts *o, spk_backend **be, spk_error *err)
{
    /* "auto" (no --device) is the registry's: $SPIKECL_DEVICE, else the first GPU, else cpu */
    char id[256];
    int rc = spk_backend_resolve(o->device ? o->device : "auto", id, sizeof id, err);
    if (rc)
        return rc;
    if (strcmp(id, "cpu") == 0)
        rc = spk_backend_cpu_new(o->threads > 0 ? o->threads : 0, be, err);
    else
        rc = spk_backend_open(id, be, err);
    if (!rc)
        fprintf(stderr, "spikecl: device %s: %s\n", id, (*be)->description);
    return rc;
}

/* Prints s as a JSON string: quotes, backslashes and control characters escaped, and bytes
 * that are not valid UTF-8 replaced by U+FFFD, so that the result line always parses. */
static void json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            p++;
        } else {
            /* length of a well-formed sequence (RFC 3629), 0 if it is not one */
            int len = c >= 0xc2 && c <= 0xdf   ? 2
                      : c >= 0xe0 && c <= 0xef ? 3
                      : c >= 0xf0 && c <= 0xf4 ? 4
                                               : 0;
            for (int k = 1; k < len; k++)
                if ((p[k] & 0xc0) != 0x80)
                    len = 0;
            if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f)))
                len = 0; /* overlong, or a surrogate */
            if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f)))
                len = 0;
            if (len) {
                fwrite(p, 1, (size_t)len, f);
                p += len;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* mkdir -p */
static int make_dirs(const char *path, spk_error *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return spk_error_set(err, SPK_ERR_IO, "cannot create folder %s: %s", buf,
                                 strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return spk_error_set(err, SPK_ERR_IO, "cannot create folder %s: %s", buf, strerror(errno));
    return SPK_OK;
}

/* Paths of a split: from --data DIR when given, else from the model's train: section. */
static int split_paths(const opts *o, spk_train_config *tc, int train, char **img, char **lbl,
                       spk_error *err)
{
    *img = *lbl = NULL;
    if (o->data)
        return spk_dataset_find_in_dir(o->data, train, img, lbl, err);
    const char *i = train ? tc->train_images : tc->test_images;
    const char *l = train ? tc->train_labels : tc->test_labels;
    if (!i || !l)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "the model has no train: %s: data; give --data DIR",
                             train ? "data" : "test");
    *img = strdup(i);
    *lbl = strdup(l);
    if (!*img || !*lbl)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    return SPK_OK;
}

static int load_split(const opts *o, spk_train_config *tc, int train, spk_dataset **ds,
                      spk_error *err)
{
    if (tc->data_format == SPK_DATA_NMNIST) { /* event recordings: a folder per split */
        const char *dir = o->data ? o->data : train ? tc->train_images : tc->test_images;
        if (!dir)
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "the model has no train: %s: path; give --data DIR",
                                 train ? "data" : "test");
        return spk_dataset_load_nmnist(dir, train, &tc->frames, ds, err);
    }
    char *img, *lbl;
    int rc = split_paths(o, tc, train, &img, &lbl, err);
    if (!rc)
        rc = spk_dataset_load_idx(img, lbl, ds, err);
    free(img);
    free(lbl);
    return rc;
}

typedef struct progress_state {
    int tty;
    int next_decile;
} progress_state;

static void on_progress(const spk_progress *p, void *user)
{
    progress_state *ps = user;
    double frac = p->total ? (double)p->done / p->total : 1.0;
    if (ps->tty) {
        int w = 30, filled = (int)(frac * w);
        char bar[64];
        for (int i = 0; i < w; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[w] = '\0';
        fprintf(stderr,
                "\repoch %d/%d [%s] %5.1f%%  %7.0f samples/s  loss %.4f  acc %.3f  ETA %3.0fs ",
                p->epoch + 1, p->epochs, bar, 100 * frac, p->samples_per_s, p->loss, p->accuracy,
                p->eta_s);
        if (p->done >= p->total)
            fputc('\n', stderr);
    } else {
        while (frac * 10 >= ps->next_decile && ps->next_decile <= 10) {
            fprintf(stderr, "epoch %d/%d %3d%%  %.0f samples/s  loss %.4f  acc %.3f\n",
                    p->epoch + 1, p->epochs, ps->next_decile * 10, p->samples_per_s, p->loss,
                    p->accuracy);
            ps->next_decile++;
        }
    }
    fflush(stderr);
}

/* SIGINT/SIGTERM during train: finish the batch, write a checkpoint pair, say how to resume.
 * SA_RESETHAND: a second signal ends the program at once. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* s quoted for a POSIX shell when it holds anything but safe characters */
static void shell_word(FILE *f, const char *s)
{
    if (*s &&
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=+,@") ==
            strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

/* The command that continues this run: the same arguments with --resume (and --out). */
static void print_resume_command(const opts *o, const char *outdir)
{
    fprintf(stderr, "spikecl: resume with: ");
    for (int i = 0; i < o->argc; i++) {
        if (i)
            fputc(' ', stderr);
        shell_word(stderr, o->argv[i]);
    }
    if (!o->resume)
        fputs(" --resume", stderr);
    if (!o->out) {
        fputs(" --out ", stderr);
        shell_word(stderr, outdir);
    }
    fputc('\n', stderr);
}

/* Weights first: should the state write fail, the weights and the old state no longer pair,
 * which the state's weights digest makes --resume refuse. */
static int save_pair(spk_session *s, const char *ckpt, const char *state, int epochs_done,
                     int batches_done, int *write_failed, spk_error *err)
{
    int rc = spk_session_save(s, ckpt, err);
    if (!rc)
        rc = spk_session_save_state_at(s, state, epochs_done, batches_done, err);
    if (rc == SPK_ERR_IO)
        *write_failed = 1;
    return rc;
}

static int cmd_train(const opts *o)
{
    spk_error err = {0};
    spk_model *m = NULL;
    spk_backend *be = NULL;
    spk_session *s = NULL;
    spk_dataset *tr = NULL, *te = NULL;
    spk_loader *ltr = NULL, *lte = NULL;
    int rc = spk_model_load(o->model, &m, &err);
    if (rc)
        return fail(&err);
    spk_train_config *tc = spk_model_train_config(m);
    if (o->epochs > 0)
        tc->epochs = o->epochs;
    if (o->batch > 0)
        tc->batch = o->batch;
    if (o->lr > 0)
        tc->optim.lr = (float)o->lr;
    if (o->seed_set)
        spk_model_set_seed(m, o->seed);
    char outdir[4096];
    snprintf(outdir, sizeof outdir, "%s", o->out ? o->out : "");
    if (!o->out)
        snprintf(outdir, sizeof outdir, "runs/%s", spk_model_name(m));
    char ckpt[4200], state[4200];
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", outdir);
    snprintf(state, sizeof state, "%s/optimizer.safetensors", outdir);

    rc = load_split(o, tc, 1, &tr, &err);
    if (!rc)
        rc = load_split(o, tc, 0, &te, &err);
    if (!rc)
        rc = spk_loader_new(tr, tc->batch, 1, spk_model_seed(m), o->limit_train, &ltr, &err);
    if (!rc)
        rc = spk_loader_new(te, tc->batch, 0, 0, o->limit_test, &lte, &err);
    if (!rc)
        rc = open_device(o, &be, &err);
    if (!rc)
        rc = spk_session_new(m, be, tc->batch, &s, &err);
    /* before anything is written: both splits must fit the model's input */
    if (!rc && (rc = spk_session_check_data(s, tr, &err)))
        spk_error_prefix(&err, rc, "training set");
    if (!rc && (rc = spk_session_check_data(s, te, &err)))
        spk_error_prefix(&err, rc, "test set");
    int write_failed = 0; /* I/O errors on output are not bad input: exit 1 */
    if (!rc && (rc = make_dirs(outdir, &err)))
        write_failed = 1;
    int first = 0;       /* epochs already done by the run being resumed */
    int first_batch = 0; /* and batches of the next one, when it was stopped mid-epoch */
    if (!rc && o->resume) {
        rc = spk_session_load(s, ckpt, &err);
        if (!rc)
            rc = spk_session_load_state_at(s, state, &first, &first_batch, &err);
        if (!rc && first >= tc->epochs)
            rc = spk_error_set(&err, SPK_ERR_INVALID,
                               "%s already holds %d epochs; ask for more with --epochs", outdir,
                               first);
        if (!rc && first_batch)
            fprintf(stderr, "spikecl: resuming %s in epoch %d after batch %d\n", outdir, first + 1,
                    first_batch);
        else if (!rc)
            fprintf(stderr, "spikecl: resuming %s after epoch %d\n", outdir, first);
    }
    catch_stop_signals();
    int stopped = 0;
    double t0 = now_s(), train_s = 0;
    spk_batch_stats st = {0}, ev = {0};
    long trained = 0;
    progress_state ps = {.tty = isatty(2)};
    for (int e = first; !rc && e < tc->epochs; e++) {
        ps.next_decile = 1;
        double te0 = now_s();
        int done_b = 0, nb = spk_loader_batches(ltr);
        rc = spk_train_epoch_part(s, ltr, e, tc->epochs, e == first ? first_batch : 0, &stop_signal,
                                  &done_b, on_progress, &ps, &st, &err);
        train_s += now_s() - te0;
        trained += st.n;
        if (!rc && done_b < nb) { /* a signal stopped the epoch */
            if (ps.tty)
                fputc('\n', stderr);
            rc = save_pair(s, ckpt, state, e, done_b, &write_failed, &err);
            if (!rc)
                fprintf(stderr,
                        "spikecl: stopped by signal %d in epoch %d after batch %d of %d; %s and "
                        "%s are a consistent pair\n",
                        (int)stop_signal, e + 1, done_b, nb, ckpt, state);
            stopped = !rc;
            break;
        }
        if (!rc)
            rc = spk_evaluate(s, lte, &ev, &err);
        /* non-finite weights stop the run (the last checkpoint stays); exploding ones warn */
        double max_abs = 0;
        char max_name[2 * SPK_NAME_MAX + 2];
        if (!rc)
            rc = spk_session_check_weights(s, &max_abs, max_name, sizeof max_name, &err);
        if (!rc && max_abs > SPK_CLI_WARN_WEIGHT)
            fprintf(stderr,
                    "spikecl: warning: epoch %d: |%s| reaches %.3g; the weights are exploding "
                    "(learning rate %g too high?)\n",
                    e + 1, max_name, max_abs, (double)tc->optim.lr);
        if (!rc)
            rc = save_pair(s, ckpt, state, e + 1, 0, &write_failed, &err);
        if (!rc)
            printf("epoch %d/%d: train loss %.4f acc %.4f | test loss %.4f acc %.4f | %.0f "
                   "samples/s\n",
                   e + 1, tc->epochs, st.loss_sum / st.n, (double)st.correct / st.n,
                   ev.loss_sum / ev.n, (double)ev.correct / ev.n, st.n / (now_s() - te0));
        fflush(stdout);
        if (!rc && stop_signal && e + 1 < tc->epochs) { /* stopped between epochs */
            fprintf(stderr,
                    "spikecl: stopped by signal %d after epoch %d; %s and %s are a "
                    "consistent pair\n",
                    (int)stop_signal, e + 1, ckpt, state);
            stopped = 1;
            break;
        }
    }
    int code = 0;
    if (stopped) {
        print_resume_command(o, outdir);
        code = 128 + (int)stop_signal; /* the shell's convention: 130 for SIGINT */
    } else if (rc && write_failed) {
        fprintf(stderr, "spikecl: error: %s\n", err.msg);
        code = 1;
    } else if (rc) {
        code = fail(&err);
        if (err.code == SPK_ERR_NUMERIC && access(ckpt, F_OK) == 0)
            fprintf(stderr, "spikecl: nothing written for the diverged epoch; %s is as it was\n",
                    ckpt);
    } else {
        printf("{\"test_accuracy\": %.4f, \"test_loss\": %.5f, \"train_loss\": %.5f, "
               "\"train_accuracy\": %.4f, \"epochs\": %d, \"samples_per_s\": %.1f, "
               "\"seconds\": %.2f, \"device\": ",
               (double)ev.correct / ev.n, ev.loss_sum / ev.n, st.loss_sum / st.n,
               (double)st.correct / st.n, tc->epochs, train_s > 0 ? trained / train_s : 0.0,
               now_s() - t0);
        json_str(stdout, be->ops->name);
        printf(", \"checkpoint\": ");
        json_str(stdout, ckpt);
        printf("}\n");
    }
    spk_session_free(s);
    spk_backend_free(be);
    spk_loader_free(ltr);
    spk_loader_free(lte);
    spk_dataset_free(tr);
    spk_dataset_free(te);
    spk_model_free(m);
    return code;
}

static int cmd_eval(const opts *o)
{
    if (!o->weights)
        return usage_error("eval needs --weights FILE");
    spk_error err = {0};
    spk_model *m = NULL;
    spk_backend *be = NULL;
    spk_session *s = NULL;
    spk_dataset *te = NULL;
    spk_loader *lte = NULL;
    int rc = spk_model_load(o->model, &m, &err);
    if (rc)
        return fail(&err);
    spk_train_config *tc = spk_model_train_config(m);
    int batch = o->batch > 0 ? o->batch : tc->batch;
    rc = load_split(o, tc, 0, &te, &err);
    if (!rc)
        rc = spk_loader_new(te, batch, 0, 0, o->limit_test, &lte, &err);
    if (!rc)
        rc = open_device(o, &be, &err);
    if (!rc)
        rc = spk_session_new(m, be, batch, &s, &err);
    if (!rc)
        rc = spk_session_load(s, o->weights, &err);
    spk_batch_stats ev = {0};
    if (!rc)
        rc = spk_evaluate(s, lte, &ev, &err);
    int code = 0;
    if (rc)
        code = fail(&err);
    else {
        printf("{\"test_accuracy\": %.4f, \"test_loss\": %.5f, \"samples\": %d, \"device\": ",
               (double)ev.correct / ev.n, ev.loss_sum / ev.n, ev.n);
        json_str(stdout, be->ops->name);
        printf("}\n");
    }
    spk_session_free(s);
    spk_backend_free(be);
    spk_loader_free(lte);
    spk_dataset_free(te);
    spk_model_free(m);
    return code;
}

static int cmd_bench(const opts *o)
{
    spk_error err = {0};
    spk_model *m = NULL;
    spk_backend *be = NULL;
    spk_session *s = NULL;
    spk_dataset *tr = NULL;
    spk_loader *ld = NULL;
    int rc = spk_model_load(o->model, &m, &err);
    if (rc)
        return fail(&err);
    spk_train_config *tc = spk_model_train_config(m);
    int batch = o->batch > 0 ? o->batch : tc->batch;
    /* real data when the model names some (spike rates, and so the work of some layers,
     * depend on the input); otherwise uniform noise, said in the output */
    int synthetic = !o->data && !tc->train_images;
    if (!synthetic)
        rc = load_split(o, tc, 1, &tr, &err);
    if (!rc && !synthetic)
        rc = spk_loader_new(tr, batch, 1, spk_model_seed(m), 0, &ld, &err);
    if (!rc)
        rc = open_device(o, &be, &err);
    if (!rc)
        rc = spk_session_new(m, be, batch, &s, &err);
    if (!rc && !synthetic)
        rc = spk_session_check_data(s, tr, &err);
    int in = rc ? 0 : spk_session_input_size(s);
    float *x = rc ? NULL : malloc((size_t)batch * in * sizeof(float));
    int32_t *y = rc ? NULL : malloc((size_t)batch * sizeof(int32_t));
    uint32_t *ids = rc ? NULL : malloc((size_t)batch * sizeof(uint32_t));
    if (!rc && (!x || !y || !ids))
        rc = spk_error_set(&err, SPK_ERR_NOMEM, "out of memory");
    double train_s = 0, infer_s = 0, gemm_frac = 0;
    if (!rc) {
        int n = batch;
        if (synthetic) {
            int classes = spk_session_classes(s);
            for (size_t i = 0; i < (size_t)batch * in; i++)
                x[i] = (float)((i * 2654435761u) >> 8 & 0xffff) / 65536.0f;
            for (int b = 0; b < batch; b++)
                y[b] = b % classes;
        } else {
            n = spk_loader_next(ld, spk_session_input_scale(s), x, y, ids);
        }
        spk_batch_stats st = {0};
        for (int i = 0; !rc && i < 2; i++) /* warm-up: first-touch pages, OpenCL builds */
            rc = spk_session_train_batch(s, x, y, n, &st, &err);
        if (!rc)
            rc = be->ops->sync(be, &err);
        spk_backend_stats before = be->stats;
        double t0 = now_s();
        for (int i = 0; !rc && i < o->batches; i++)
            rc = spk_session_train_batch(s, x, y, n, &st, &err);
        if (!rc)
            rc = be->ops->sync(be, &err);
        train_s = now_s() - t0;
        gemm_frac = (double)(be->stats.gemm_ns - before.gemm_ns) * 1e-9 / train_s;
        t0 = now_s();
        for (int i = 0; !rc && i < o->batches; i++)
            rc = spk_session_eval_batch(s, x, y, n, &st, &err);
        if (!rc)
            rc = be->ops->sync(be, &err);
        infer_s = now_s() - t0;
        /* a second, profiled pass for the split per layer (synchronising after every layer
         * slows it a little, so the figures above come from the unprofiled pass) */
        spk_session_set_profile(s, 1);
        t0 = now_s();
        for (int i = 0; !rc && i < o->batches; i++)
            rc = spk_session_train_batch(s, x, y, n, &st, &err);
        double prof_s = now_s() - t0;
        spk_session_set_profile(s, 0);
        if (!rc) {
            fprintf(stderr, "%-12s %10s %10s %7s   (ms per training batch)\n", "layer", "forward",
                    "backward", "share");
            for (int i = 0; i < spk_session_node_count(s); i++) {
                double f, b;
                spk_session_node_times(s, i, &f, &b);
                fprintf(stderr, "%-12s %10.3f %10.3f %6.1f%%\n", spk_session_node_name(s, i),
                        1e3 * f / o->batches, 1e3 * b / o->batches, 100 * (f + b) / prof_s);
            }
            double opt = spk_session_optimizer_time(s);
            fprintf(stderr, "%-12s %10.3f %10s %6.1f%%\n", "optimizer", 1e3 * opt / o->batches, "",
                    100 * opt / prof_s);
        }
        /* SPIKECL_PROFILE=1 makes an OpenCL backend time every kernel on the device (it is read
         * when the device opens); the figures cover all passes above, warm-up included */
        const char *prof = getenv("SPIKECL_PROFILE");
        if (!rc && prof && strcmp(prof, "1") == 0) {
            spk_kernel_profile *kp = NULL;
            int nk = 0;
            spk_error perr = {0};
            if (spk_backend_profile(be, &kp, &nk, &perr)) {
                fprintf(stderr, "SPIKECL_PROFILE: %s\n", perr.msg);
            } else {
                /* the profile covers every pass above: 2 warm-up and 2 x batches training
                 * batches, and batches inference batches */
                fprintf(stderr, "%-40s %8s %10s %10s   (device time, all passes)\n", "kernel",
                        "calls", "total ms", "ms/call");
                for (int i = 0; i < nk; i++)
                    fprintf(stderr, "%-40s %8llu %10.3f %10.4f\n", kp[i].name,
                            (unsigned long long)kp[i].calls, kp[i].ms,
                            kp[i].calls ? kp[i].ms / (double)kp[i].calls : 0.0);
            }
            spk_kernel_profile_free(kp);
        }
        /* GEMM time is measured on the host around each call: right for the CPU, where the
         * call does the work, meaningless for a device queue (it would count enqueueing only) */
        char frac[32] = "null";
        if (strcmp(be->ops->name, "cpu") == 0)
            snprintf(frac, sizeof frac, "%.3f", gemm_frac);
        else
            fprintf(stderr,
                    "gemm_fraction: not measured on %s (GEMM runs asynchronously); the "
                    "synapse layers' share above is its upper bound\n",
                    be->ops->name);
        if (!rc)
            printf("{\"train_samples_per_s\": %.1f, \"infer_samples_per_s\": %.1f, "
                   "\"gemm_fraction\": %s, \"peak_rss_mb\": %.1f, \"batch\": %d, "
                   "\"batches\": %d, \"time_steps\": %d, \"device\": ",
                   (double)n * o->batches / train_s, (double)n * o->batches / infer_s, frac,
                   peak_rss_mb(), n, o->batches, spk_model_time_steps(m));
        if (!rc) {
            json_str(stdout, be->ops->name);
            printf(", \"data\": \"%s\"}\n", synthetic ? "synthetic" : "real");
        }
    }
    int code = rc ? fail(&err) : 0;
    free(x);
    free(y);
    free(ids);
    spk_session_free(s);
    spk_backend_free(be);
    spk_loader_free(ld);
    spk_dataset_free(tr);
    spk_model_free(m);
    return code;
}

static int cmd_devices(void)
{
    spk_error err = {0};
    spk_device_info *list = NULL;
    int n = 0;
    if (spk_device_list(&list, &n, &err))
        return fail(&err);
    for (int i = 0; i < n; i++) {
        const spk_device_info *d = &list[i];
        printf("%s\t%s", d->id, d->name);
        if (d->vendor[0])
            printf(" | %s", d->vendor);
        if (d->driver[0])
            printf(" | %s", d->driver);
        if (d->compute_units)
            printf(" | %d CUs", d->compute_units);
        if (d->memory_bytes)
            printf(" | %llu MiB", (unsigned long long)(d->memory_bytes >> 20));
        if (d->max_work_group)
            printf(" | max work-group %zu", d->max_work_group);
        printf(" | %s\n", d->kind);
    }
    spk_device_list_free(list);
    return 0;
}

static int cmd_plugins(void)
{
    spk_registry *reg = spk_registry_default();
    static const char *kinds[] = {"encoder", "synapse", "neuron", "readout", "loss", "other"};
    static const char *types[] = {"float", "int", "bool", "choice", "string", "init", "surrogate"};
    for (int i = 0; i < spk_registry_count(reg); i++) {
        const char *src;
        const spk_layer_type *t = spk_registry_get(reg, i, &src);
        /* the registry hands out full-size descriptors: version is NULL for a 1.0 plugin */
        printf("%s (%s, %s%s%s)%s%s\n", t->name, kinds[t->kind], src,
               t->version ? ", version " : "", t->version ? t->version : "", t->summary ? ": " : "",
               t->summary ? t->summary : "");
        for (const spk_param_spec *p = t->params; p && p->name; p++)
            printf("    %-22s %-9s default %-14s %s%s%s\n", p->name, types[p->type],
                   p->def ? p->def : "(required)", p->choices ? "[" : "",
                   p->choices ? p->choices : "", p->choices ? "] " : "");
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    /* one rule for every command: a library on the search path that does not load is skipped
     * with a warning; a model that needs one of its types fails at that layer */
    if (strcmp(o.cmd, "devices") != 0) {
        spk_error perr = {0};
        if (spk_plugin_load_path_env_once(&perr))
            fprintf(stderr, "spikecl: warning: %s; skipped\n", perr.msg);
    }
    if (strcmp(o.cmd, "train") == 0)
        return cmd_train(&o);
    if (strcmp(o.cmd, "eval") == 0)
        return cmd_eval(&o);
    if (strcmp(o.cmd, "bench") == 0)
        return cmd_bench(&o);
    if (strcmp(o.cmd, "devices") == 0)
        return cmd_devices();
    if (strcmp(o.cmd, "plugins") == 0)
        return cmd_plugins();
    printf("%s", usage_text);
    return 0;
}
