/* spikecl CLI — the run folder (runlog.h). */
#define _POSIX_C_SOURCE 200809L
#include "runlog.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsutil.h"
#include "plot.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* s as a JSON string. jansson escapes it and takes UTF-8 only; a name or path that is not
 * (a folder name in Latin-1, say) keeps its valid sequences and has each other byte replaced by
 * U+FFFD, so that the line still parses. NULL when out of memory. */
json_t *spk_json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s), len = 0;
    char *fixed = malloc(3 * n + 1); /* each byte becomes at most the 3 bytes of U+FFFD */
    if (!fixed)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        if ((unsigned char)s[i] >= 0x80) /* jansson decides which sequence is valid */
            for (k = 2; k <= 4 && i + k <= n; k++) {
                json_t *t = json_stringn(s + i, k);
                json_decref(t);
                if (t)
                    break;
            }
        if (k > 4 || i + k > n) {
            memcpy(fixed + len, "\xef\xbf\xbd", 3);
            len += 3;
            i++;
        } else {
            memcpy(fixed + len, s + i, k);
            len += k;
            i += k;
        }
    }
    j = json_stringn(fixed, len);
    free(fixed);
    return j;
}

/* x rounded to `decimals` places (null when not finite). */
static json_t *num(double x, int decimals)
{
    if (!isfinite(x))
        return json_null();
    double scale = pow(10, decimals);
    return json_real(round(x * scale) / scale);
}

typedef struct text_ctx {
    const char *text;
} text_ctx;

static int fill_text(FILE *f, void *ctx)
{
    const char *t = ((text_ctx *)ctx)->text;
    return fputs(t, f) < 0 ? -1 : 0;
}

static int write_text(const char *path, const char *text, spk_error *err)
{
    text_ctx c = {text};
    return spk_fs_write_atomic(path, 0666, fill_text, &c, err);
}

static int write_json(const char *path, json_t *j, spk_error *err)
{
    char *text =
        j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(j);
    if (!text)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory writing %s", path);
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory writing %s", path);
    }
    t2[n] = '\n';
    t2[n + 1] = '\0';
    int rc = write_text(path, t2, err);
    free(t2);
    return rc;
}

/* The best test accuracy in an existing metrics.jsonl (-1 when none). */
static double best_in(const char *path)
{
    double best = -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return best;
    char line[65536];
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        json_t *acc = j ? json_object_get(j, "test_accuracy") : NULL;
        if (acc && json_is_number(acc) && json_number_value(acc) > best)
            best = json_number_value(acc);
        json_decref(j);
    }
    fclose(f);
    return best;
}

static json_t *invocation(const spk_run_info *ri)
{
    json_t *argv = json_array();
    for (int i = 0; argv && i < ri->argc; i++)
        json_array_append_new(argv, spk_json_text(ri->argv[i]));
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    return json_pack("{s:o, s:s, s:o, s:b, s:o, s:o, s:o}", "argv", argv, "started", when, "device",
                     spk_json_text(ri->device), "resume", ri->resume, "data",
                     ri->data ? spk_json_text(ri->data) : json_null(), "limit_train",
                     ri->limit_train > 0 ? json_integer(ri->limit_train) : json_null(),
                     "limit_test", ri->limit_test > 0 ? json_integer(ri->limit_test) : json_null());
}

static int write_run_json(const char *dir, const spk_run_info *ri, spk_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/run.json", dir);
    json_t *run = ri->resume ? json_load_file(path, 0, NULL) : NULL;
    json_t *list = run ? json_object_get(run, "invocations") : NULL;
    if (!run || !json_is_array(list)) {
        json_decref(run);
        run = json_pack("{s:s, s:s, s:[]}", "spikecl_version", SPIKECL_VERSION, "model",
                        "model.yaml", "invocations");
        list = run ? json_object_get(run, "invocations") : NULL;
    }
    json_t *inv = invocation(ri);
    if (!run || !list || !inv || json_array_append_new(list, inv)) {
        json_decref(run);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory writing %s", path);
    }
    return write_json(path, run, err);
}

int spk_runlog_take_data(spk_model *m, const char *data, spk_error *err)
{
    spk_train_config *tc = spk_model_train_config(m);
    if (tc->data_format == SPK_DATA_NMNIST) {
        char *a = strdup(data), *b = strdup(data);
        if (!a || !b) {
            free(a);
            free(b);
            return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        }
        free(tc->train_images);
        free(tc->test_images);
        tc->train_images = a;
        tc->test_images = b;
        return SPK_OK;
    }
    for (int train = 1; train >= 0; train--) {
        char *img, *lbl;
        int rc = spk_dataset_find_in_dir(data, train, &img, &lbl, err);
        if (rc)
            return rc;
        char **pi = train ? &tc->train_images : &tc->test_images;
        char **pl = train ? &tc->train_labels : &tc->test_labels;
        free(*pi);
        free(*pl);
        *pi = img;
        *pl = lbl;
    }
    return SPK_OK;
}

int spk_runlog_open(spk_runlog *rl, const char *dir, const spk_model *m, const spk_run_info *ri,
                    int every, int batch, spk_error *err)
{
    memset(rl, 0, sizeof *rl);
    snprintf(rl->dir, sizeof rl->dir, "%s", dir);
    rl->t0 = now_s();
    rl->every = every;
    rl->batch = batch;
    char path[4200];
    char *yaml = NULL;
    int rc = spk_model_to_yaml(m, &yaml, err);
    snprintf(path, sizeof path, "%s/model.yaml", dir);
    if (!rc)
        rc = write_text(path, yaml, err);
    free(yaml);
    if (!rc)
        rc = write_run_json(dir, ri, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    rl->best_acc = ri->resume ? best_in(path) : -1;
    if (!(rl->metrics = fopen(path, ri->resume ? "a" : "w")))
        return spk_error_set(err, SPK_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return SPK_OK;
}

void spk_runlog_close(spk_runlog *rl)
{
    if (rl && rl->metrics)
        fclose(rl->metrics);
    if (rl)
        rl->metrics = NULL;
}

static void put_line(spk_runlog *rl, json_t *line)
{
    char *text = line ? json_dumps(line, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(line);
    if (!text || !rl->metrics) {
        free(text);
        return;
    }
    fprintf(rl->metrics, "%s\n", text);
    fflush(rl->metrics);
    free(text);
}

void spk_runlog_batch(spk_runlog *rl, const spk_progress *p, double lr)
{
    if (!rl || !rl->metrics || rl->every < 1 || rl->batch < 1)
        return;
    int b = (p->done + rl->batch - 1) / rl->batch;
    if (b % rl->every != 0 || b == rl->last_logged || p->done >= p->total)
        return;
    rl->last_logged = b;
    put_line(rl, json_pack("{s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:o}", "kind", "batch",
                           "epoch", p->epoch + 1, "batch", b, "batches",
                           (p->total + rl->batch - 1) / rl->batch, "train_loss", num(p->loss, 5),
                           "train_accuracy", num(p->accuracy, 4), "lr", num(lr, 8), "samples_per_s",
                           num(p->samples_per_s, 1), "elapsed_s", num(now_s() - rl->t0, 2)));
}

int spk_runlog_epoch(spk_runlog *rl, spk_session *s, int epoch, int epochs,
                     const spk_batch_stats *train, const spk_batch_stats *test,
                     double samples_per_s, spk_error *err)
{
    char names[32][SPK_PROBE_NAME];
    double rates[32];
    int n_rates = 0;
    int rc = spk_probe_rates(s, names, rates, 32, &n_rates, err);
    if (rc)
        return rc;
    json_t *sr = json_object();
    for (int i = 0; sr && i < n_rates; i++)
        json_object_set_new(sr, names[i], num(rates[i], 5));
    double acc = test->n ? (double)test->correct / test->n : 0;
    put_line(rl,
             json_pack("{s:s, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "kind", "epoch",
                       "epoch", epoch + 1, "epochs", epochs, "train_loss",
                       num(train->loss_sum / train->n, 5), "train_accuracy",
                       num((double)train->correct / train->n, 4), "test_loss",
                       num(test->loss_sum / test->n, 5), "test_accuracy", num(acc, 4), "lr",
                       num(spk_session_lr(s), 8), "samples_per_s", num(samples_per_s, 1),
                       "elapsed_s", num(now_s() - rl->t0, 2), "spike_rate", sr ? sr : json_null()));
    if (acc > rl->best_acc) {
        char path[4200];
        snprintf(path, sizeof path, "%s/best.safetensors", rl->dir);
        if ((rc = spk_session_save(s, path, err)))
            return rc;
        rl->best_acc = acc;
    }
    return SPK_OK;
}

json_t *spk_probe_confusion_json(const spk_probe *p)
{
    json_t *rows = json_array();
    for (int t = 0; rows && t < p->classes; t++) {
        json_t *row = json_array();
        for (int c = 0; row && c < p->classes; c++)
            json_array_append_new(row, json_integer(p->confusion[(size_t)t * p->classes + c]));
        json_array_append_new(rows, row);
    }
    return rows;
}

json_t *spk_probe_class_accuracy_json(const spk_probe *p)
{
    json_t *acc = json_array();
    for (int t = 0; acc && t < p->classes; t++) {
        long total = 0;
        for (int c = 0; c < p->classes; c++)
            total += p->confusion[(size_t)t * p->classes + c];
        json_array_append_new(
            acc, total ? num((double)p->confusion[(size_t)t * p->classes + t] / (double)total, 4)
                       : json_null());
    }
    return acc;
}

int spk_runlog_write_confusion(const char *dir, const char *weights, const spk_probe *p,
                               spk_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/confusion.json", dir);
    return write_json(path,
                      json_pack("{s:o, s:i, s:o, s:i, s:o, s:o}", "weights", spk_json_text(weights),
                                "samples", p->n, "accuracy",
                                num(p->n ? (double)p->correct / p->n : 0, 4), "classes", p->classes,
                                "confusion", spk_probe_confusion_json(p), "per_class_accuracy",
                                spk_probe_class_accuracy_json(p)),
                      err);
}

int spk_runlog_pictures(const char *dir, spk_session *s, spk_loader *test, int T, const char *title,
                        const char *weights, spk_error *err)
{
    spk_probe p;
    int rc = spk_probe_run(s, test, T, &p, err);
    if (rc)
        return rc;
    rc = spk_runlog_write_confusion(dir, weights, &p, err);
    if (!rc)
        rc = spk_plot_all(dir, title, &p, err);
    spk_probe_free(&p);
    return rc;
}
