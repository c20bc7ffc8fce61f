/* spikecl — the command-line program. Thin: parses flags and calls the library.
 * Exit codes: 0 ok, 2 bad usage or bad input (message on stderr), 128 + N when signal N stopped
 * train (after writing a checkpoint it can resume from), 1 any other failure. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "fsutil.h" /* core/src: compiled into the CLI too (CMakeLists.txt) */
#include "runlog.h"
#include "spikecl/nir.h"
#include "spikecl/spikecl.h"

#define EXIT_USAGE 2
/* A weight larger than this is taken as a sign of divergence worth a warning (trained spiking
 * nets keep their weights within a few units; 1e4 leaves wide room). */
#define SPK_CLI_WARN_WEIGHT 1e4

/* The options, in the order --help lists them; getopt_long returns OPT_VAL0 + the index. */
enum {
    OPT_WEIGHTS,
    OPT_DEVICE,
    OPT_EPOCHS,
    OPT_BATCH,
    OPT_BATCHES,
    OPT_LR,
    OPT_SEED,
    OPT_OUT,
    OPT_DATA,
    OPT_LIMIT_TRAIN,
    OPT_LIMIT_TEST,
    OPT_THREADS,
    OPT_RESUME,
    OPT_NO_PLOTS,
    OPT_LOG_EVERY,
    OPT_PREDICTIONS,
    OPT_OUTPUT,
    OPT_TIME_STEPS,
    OPT_DT,
    OPT_INPUT_SCALE,
    OPT_APPROXIMATE,
    OPT_NO_UPDATE,
    OPT_COUNT
};
#define OPT_VAL0   256
#define OPT_BIT(i) (1u << (i))

static const struct option long_opts[] = {
    {"weights", required_argument, NULL, OPT_VAL0 + OPT_WEIGHTS},
    {"device", required_argument, NULL, OPT_VAL0 + OPT_DEVICE},
    {"epochs", required_argument, NULL, OPT_VAL0 + OPT_EPOCHS},
    {"batch", required_argument, NULL, OPT_VAL0 + OPT_BATCH},
    {"batches", required_argument, NULL, OPT_VAL0 + OPT_BATCHES},
    {"lr", required_argument, NULL, OPT_VAL0 + OPT_LR},
    {"seed", required_argument, NULL, OPT_VAL0 + OPT_SEED},
    {"out", required_argument, NULL, OPT_VAL0 + OPT_OUT},
    {"data", required_argument, NULL, OPT_VAL0 + OPT_DATA},
    {"limit-train", required_argument, NULL, OPT_VAL0 + OPT_LIMIT_TRAIN},
    {"limit-test", required_argument, NULL, OPT_VAL0 + OPT_LIMIT_TEST},
    {"threads", required_argument, NULL, OPT_VAL0 + OPT_THREADS},
    {"resume", no_argument, NULL, OPT_VAL0 + OPT_RESUME},
    {"no-plots", no_argument, NULL, OPT_VAL0 + OPT_NO_PLOTS},
    {"log-every", required_argument, NULL, OPT_VAL0 + OPT_LOG_EVERY},
    {"predictions", required_argument, NULL, OPT_VAL0 + OPT_PREDICTIONS},
    {"output", required_argument, NULL, OPT_VAL0 + OPT_OUTPUT},
    {"time-steps", required_argument, NULL, OPT_VAL0 + OPT_TIME_STEPS},
    {"dt", required_argument, NULL, OPT_VAL0 + OPT_DT},
    {"input-scale", required_argument, NULL, OPT_VAL0 + OPT_INPUT_SCALE},
    {"approximate", no_argument, NULL, OPT_VAL0 + OPT_APPROXIMATE},
    {"no-update", no_argument, NULL, OPT_VAL0 + OPT_NO_UPDATE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* What --help says of each option (a '\n' continues the text on the next line). */
static const char *const opt_help[OPT_COUNT] = {
    [OPT_WEIGHTS] =
        "FILE  the checkpoint to evaluate, draw or export (a train run's model.safetensors)",
    [OPT_DEVICE] = "ID  cpu, opencl, opencl:P:D, opencl:NAME or auto (default auto:\n"
                   "$SPIKECL_DEVICE, else the first OpenCL GPU, else cpu;\n"
                   "`spikecl devices` lists them)",
    [OPT_EPOCHS] = "N  epochs to train in all (default: the model's train: epochs)",
    [OPT_BATCH] = "N  samples per batch (default: the model's train: batch)",
    [OPT_BATCHES] = "N  batches per timed pass (default: 20)",
    [OPT_LR] = "X  learning rate (default: the model's optimizer: lr)",
    [OPT_SEED] = "N  seed of initialisation, shuffling and Poisson spikes\n"
                 "(default: the model's seed:)",
    [OPT_OUT] = "DIR  folder for model.safetensors and optimizer.safetensors\n"
                "(default: runs/NAME, NAME being the model's name:)",
    [OPT_DATA] = "DIR  a folder with the standard IDX files (train-images-idx3-ubyte,\n"
                 "t10k-images-idx3-ubyte, ... each optionally .gz) instead of the\n"
                 "model's train: paths",
    [OPT_LIMIT_TRAIN] = "N  only the first N training images",
    [OPT_LIMIT_TEST] = "N  only the first N test images",
    [OPT_THREADS] = "N  CPU threads (default: OpenMP's, i.e. $OMP_NUM_THREADS or all cores)",
    [OPT_RESUME] = "continue the run in the --out folder from its last checkpoint pair\n"
                   "(give the same --epochs)",
    [OPT_NO_PLOTS] = "do not draw the run folder's pictures at the end",
    [OPT_LOG_EVERY] = "N  a metrics.jsonl line every N batches (default 50; 0: epochs only)",
    [OPT_PREDICTIONS] = "FILE  write index,label,prediction,count_0.. per test sample (CSV)",
    [OPT_OUTPUT] = "PATH  (also -o) export: the NIR file; import: the folder for\n"
                   "model.yaml and model.safetensors",
    [OPT_TIME_STEPS] = "N  time_steps of the imported model (default: the file's metadata)",
    [OPT_DT] = "X  seconds per step relating NIR time constants to decays\n"
               "(default: the file's metadata, else 1e-4 as snnTorch)",
    [OPT_INPUT_SCALE] = "X  input.scale of the imported model (default: the file's, else 1)",
    [OPT_APPROXIMATE] = "allow the approximations docs/NIR.md lists (reset: subtract as a\n"
                        "reset to zero, neuron.synaptic <-> CubaLIF)",
    [OPT_NO_UPDATE] = "time forward and backward only: gradients, no optimizer step\n"
                      "(nor its state), as the Open Neuromorphic benchmark times them",
};

struct opts;
typedef struct command {
    const char *name;
    int (*run)(const struct opts *o);
    int needs_model;
    unsigned options; /* OPT_BIT set of the options that apply */
    const char *synopsis;
    const char *about;
} command;

typedef struct opts {
    int argc;
    char **argv;
    const command *cmd; /* NULL with help: the overview */
    int help;
    const char *model, *device, *out, *data, *weights;
    int epochs, batch, seed_set, limit_train, limit_test, threads, batches, resume;
    int no_plots, log_every, no_update;
    const char *predictions;
    double lr;
    const char *output;          /* export, import */
    int time_steps, approximate; /* import; export and import */
    double dt, input_scale;      /* export and import; import */
    unsigned long long seed;
} opts;

static int cmd_train(const opts *o);
static int cmd_eval(const opts *o);
static int cmd_bench(const opts *o);
static int cmd_devices(const opts *o);
static int cmd_plugins(const opts *o);
static int cmd_plot(const opts *o);
static int cmd_export(const opts *o);
static int cmd_import(const opts *o);

static const command commands[] = {
    {"train", cmd_train, 1,
     OPT_BIT(OPT_DEVICE) | OPT_BIT(OPT_EPOCHS) | OPT_BIT(OPT_BATCH) | OPT_BIT(OPT_LR) |
         OPT_BIT(OPT_SEED) | OPT_BIT(OPT_OUT) | OPT_BIT(OPT_DATA) | OPT_BIT(OPT_LIMIT_TRAIN) |
         OPT_BIT(OPT_LIMIT_TEST) | OPT_BIT(OPT_THREADS) | OPT_BIT(OPT_RESUME) |
         OPT_BIT(OPT_NO_PLOTS) | OPT_BIT(OPT_LOG_EVERY),
     "  spikecl train MODEL.yaml [--device ID] [--epochs N] [--batch N] [--lr X] [--seed N]\n"
     "                           [--out DIR] [--data DIR] [--limit-train N] [--limit-test N]\n"
     "                           [--threads N] [--resume] [--no-plots] [--log-every N]\n",
     "Trains the model, evaluates it on the test split after every epoch and writes the\n"
     "checkpoint pair (model.safetensors, optimizer.safetensors) to the --out folder, with\n"
     "the run's record: model.yaml (every default written out), run.json, metrics.jsonl,\n"
     "best.safetensors and, at the end, the pictures (see `spikecl plot`). The last line\n"
     "of stdout is a JSON object with the figures.\n"},
    {"eval", cmd_eval, 1,
     OPT_BIT(OPT_WEIGHTS) | OPT_BIT(OPT_DEVICE) | OPT_BIT(OPT_DATA) | OPT_BIT(OPT_LIMIT_TEST) |
         OPT_BIT(OPT_BATCH) | OPT_BIT(OPT_THREADS) | OPT_BIT(OPT_PREDICTIONS),
     "  spikecl eval  MODEL.yaml --weights FILE [--device ID] [--data DIR] [--limit-test N]\n"
     "                           [--batch N] [--threads N] [--predictions FILE.csv]\n",
     "Evaluates a checkpoint of the model on the test split. The last line of stdout is a\n"
     "JSON object with the figures, the confusion matrix (rows: true class) and the\n"
     "accuracy of each class.\n"},
    {"bench", cmd_bench, 1,
     OPT_BIT(OPT_DEVICE) | OPT_BIT(OPT_BATCHES) | OPT_BIT(OPT_BATCH) | OPT_BIT(OPT_THREADS) |
         OPT_BIT(OPT_DATA) | OPT_BIT(OPT_NO_UPDATE),
     "  spikecl bench MODEL.yaml [--device ID] [--batches N] [--batch N] [--threads N]\n"
     "                           [--data DIR] [--no-update]\n",
     "Times training and inference on one batch, repeated (on the model's data, else on\n"
     "uniform noise); the time per layer and the memory held by kind go to stderr, the\n"
     "figures to the last line of stdout as a JSON object. Training runs as `spikecl train`\n"
     "does (its last neuron summing into a spike-count readout), each next batch uploaded\n"
     "while the step before computes (SPIKECL_CL_OVERLAP=0: blocking uploads).\n"
     "SPIKECL_PROFILE=1 adds each OpenCL kernel's device time.\n"},
    {"plot", cmd_plot, 1,
     OPT_BIT(OPT_WEIGHTS) | OPT_BIT(OPT_DEVICE) | OPT_BIT(OPT_DATA) | OPT_BIT(OPT_LIMIT_TEST) |
         OPT_BIT(OPT_BATCH) | OPT_BIT(OPT_THREADS),
     "  spikecl plot  RUN_DIR [--weights FILE] [--device ID] [--data DIR] [--limit-test N]\n"
     "                        [--batch N] [--threads N]\n",
     "Draws the pictures of a train run's folder (RUN_DIR/model.yaml, model.safetensors,\n"
     "metrics.jsonl; data and limits as run.json recorded them): curves.png, raster.png,\n"
     "spike_counter.png, confusion.png (with confusion.json) and membrane.png.\n"},
    {"devices", cmd_devices, 0, 0, "  spikecl devices\n",
     "Lists the CPU and every OpenCL device with its id for --device.\n"},
    {"plugins", cmd_plugins, 0, 0, "  spikecl plugins\n",
     "Lists the layer types (built-in and from $SPIKECL_PLUGIN_PATH) with their parameters.\n"},
    {"export", cmd_export, 1,
     OPT_BIT(OPT_WEIGHTS) | OPT_BIT(OPT_OUTPUT) | OPT_BIT(OPT_DT) | OPT_BIT(OPT_APPROXIMATE),
     "  spikecl export MODEL.yaml --weights FILE -o NET.nir [--dt X] [--approximate]\n",
     "Writes the model's layers with the checkpoint's weights as a NIR graph (HDF5) that\n"
     "snnTorch, Norse, Lava, ... import (docs/NIR.md). The last line of stdout is a JSON\n"
     "object.\n"},
    {"import", cmd_import, 1,
     OPT_BIT(OPT_OUTPUT) | OPT_BIT(OPT_TIME_STEPS) | OPT_BIT(OPT_DT) | OPT_BIT(OPT_INPUT_SCALE) |
         OPT_BIT(OPT_APPROXIMATE),
     "  spikecl import NET.nir -o DIR [--time-steps N] [--dt X] [--input-scale X]\n"
     "                            [--approximate]\n",
     "Reads a NIR graph and writes DIR/model.yaml and DIR/model.safetensors, which train,\n"
     "eval and bench take as they are (docs/NIR.md). The last line of stdout is a JSON\n"
     "object.\n"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char *devices_note =
    "Devices: cpu, opencl, opencl:P:D, opencl:NAME, auto (the default: $SPIKECL_DEVICE, else the\n"
    "first OpenCL GPU, else cpu).\n";

/* The command a usage error is about (its synopsis follows the message), NULL before one is
 * known. */
static const command *usage_cmd;

static void print_synopsis(FILE *f, const command *c)
{
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!c || c == &commands[i])
            fputs(commands[i].synopsis, f);
    if (!c)
        fprintf(f, "%s'spikecl COMMAND --help' describes a command and its options.\n",
                devices_note);
    else
        fprintf(f, "'spikecl %s --help' describes the options.\n", c->name);
}

/* `spikecl CMD --help`: the synopsis, what the command does and each of its options. */
static void print_help(const command *c)
{
    if (!c) {
        print_synopsis(stdout, NULL);
        return;
    }
    printf("usage:\n%s\n%s\noptions:\n", c->synopsis, c->about);
    for (int i = 0; i < OPT_COUNT; i++) {
        if (!(c->options & OPT_BIT(i)))
            continue;
        /* "ARG  text": the argument joins the option's name */
        const char *h = opt_help[i], *sp = strstr(h, "  ");
        int has_arg = long_opts[i].has_arg == required_argument;
        char head[48];
        snprintf(head, sizeof head, "--%s%s%.*s", long_opts[i].name, has_arg ? " " : "",
                 has_arg ? (int)(sp - h) : 0, h);
        printf("  %-18s ", head);
        for (const char *p = has_arg ? sp + 2 : h; *p; p++)
            if (*p == '\n')
                printf("\n%21s", "");
            else
                putchar(*p);
        putchar('\n');
    }
    printf("  %-18s this text\n", "-h, --help");
}

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "spikecl: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    print_synopsis(stderr, usage_cmd);
    return EXIT_USAGE;
}

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
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
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi)
        return usage_error("%s expects an integer in [%ld, %ld], got '%s'", flag, lo, hi, v);
    *out = (int)x;
    return 0;
}

/* An option getopt_long did not take: unknown, or a prefix of several (it accepts a unique
 * prefix, --epoch for --epochs). arg is the word as given, "--name" or "--name=value". */
static int bad_option(const char *arg, int short_opt)
{
    if (short_opt)
        return usage_error("unknown option '-%c' for '%s'", short_opt, usage_cmd->name);
    size_t n = strcspn(arg, "=");
    char matches[256] = "";
    int count = 0;
    for (const struct option *lo = long_opts; n > 2 && lo->name; lo++)
        if (strncmp(lo->name, arg + 2, n - 2) == 0) {
            size_t used = strlen(matches);
            snprintf(matches + used, sizeof matches - used, "%s--%s", count ? ", " : "", lo->name);
            count++;
        }
    if (count > 1)
        return usage_error("option '%.*s' is ambiguous: %s", (int)n, arg, matches);
    return usage_error("unknown option '%.*s' for '%s'", (int)n, arg, usage_cmd->name);
}

/* "--x applies to train, eval and bench": the commands that take option i. */
static int option_elsewhere(int i)
{
    char list[128] = "";
    int count = 0, total = 0;
    for (size_t k = 0; k < N_COMMANDS; k++)
        total += !!(commands[k].options & OPT_BIT(i));
    for (size_t k = 0; k < N_COMMANDS; k++) {
        if (!(commands[k].options & OPT_BIT(i)))
            continue;
        size_t used = strlen(list);
        count++;
        snprintf(list + used, sizeof list - used, "%s%s",
                 count == 1       ? ""
                 : count == total ? " and "
                                  : ", ",
                 commands[k].name);
    }
    return usage_error("--%s applies to %s", long_opts[i].name, list);
}

static int take_positional(opts *o, const char *arg)
{
    if (o->cmd->needs_model && !o->model) {
        o->model = arg;
        return 0;
    }
    return usage_error("unexpected argument '%s' for '%s'", arg, o->cmd->name);
}

static int take_option(opts *o, int i, const char *v)
{
    char flag[32];
    snprintf(flag, sizeof flag, "--%s", long_opts[i].name);
    switch (i) {
    case OPT_WEIGHTS:
        o->weights = v;
        return 0;
    case OPT_DEVICE:
        o->device = v;
        return 0;
    case OPT_OUT:
        o->out = v;
        return 0;
    case OPT_DATA:
        o->data = v;
        return 0;
    case OPT_RESUME:
        o->resume = 1;
        return 0;
    case OPT_NO_PLOTS:
        o->no_plots = 1;
        return 0;
    case OPT_NO_UPDATE:
        o->no_update = 1;
        return 0;
    case OPT_PREDICTIONS:
        o->predictions = v;
        return 0;
    case OPT_LOG_EVERY:
        return parse_int(flag, v, 0, 1 << 30, &o->log_every);
    case OPT_OUTPUT:
        o->output = v;
        return 0;
    case OPT_APPROXIMATE:
        o->approximate = 1;
        return 0;
    case OPT_TIME_STEPS:
        return parse_int(flag, v, 1, 1000000, &o->time_steps);
    case OPT_DT:
    case OPT_INPUT_SCALE: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (*end || end == v || errno || !isfinite(x) || !(x > 0))
            return usage_error("%s expects a positive number, got '%s'", flag, v);
        *(i == OPT_DT ? &o->dt : &o->input_scale) = x;
        return 0;
    }
    case OPT_EPOCHS:
        return parse_int(flag, v, 1, 100000, &o->epochs);
    case OPT_BATCH:
        return parse_int(flag, v, 1, 1 << 20, &o->batch);
    case OPT_BATCHES:
        return parse_int(flag, v, 1, 1 << 20, &o->batches);
    case OPT_LIMIT_TRAIN:
        return parse_int(flag, v, 1, 1 << 30, &o->limit_train);
    case OPT_LIMIT_TEST:
        return parse_int(flag, v, 1, 1 << 30, &o->limit_test);
    case OPT_THREADS:
        return parse_int(flag, v, 1, 1024, &o->threads);
    case OPT_SEED: {
        char *end;
        errno = 0;
        o->seed = strtoull(v, &end, 10);
        if (errno || *end || end == v || v[0] == '-')
            return usage_error("--seed expects a non-negative integer, got '%s'", v);
        o->seed_set = 1;
        return 0;
    }
    case OPT_LR: {
        char *end;
        errno = 0;
        o->lr = strtod(v, &end);
        /* inf, nan and anything a float cannot hold (1e400, 1e39) would train to NaN */
        if (*end || end == v || errno || !isfinite(o->lr) || !(o->lr > 0) || o->lr > FLT_MAX)
            return usage_error("--lr expects a finite number in (0, %g], got '%s'", (double)FLT_MAX,
                               v);
        return 0;
    }
    }
    return 0;
}

/* spikecl COMMAND [MODEL] [options], the options in any order around the model. */
static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->argc = argc;
    o->argv = argv;
    o->epochs = o->batch = o->limit_train = o->limit_test = -1;
    o->batches = 20;
    o->log_every = 50;
    o->lr = -1;
    if (argc < 2)
        return usage_error("no command given");
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        /* spikecl help [COMMAND] */
        o->help = 1;
        if (argc > 2 && !(o->cmd = find_command(argv[2])))
            return usage_error("unknown command '%s'", argv[2]);
        if (argc > 3)
            return usage_error("unexpected argument '%s'", argv[3]);
        return 0;
    }
    if (!(o->cmd = find_command(name)))
        return usage_error("unknown command '%s'", name);
    usage_cmd = o->cmd;
    /* the command's words only, as if it were its own program; "-" first: positional words
     * come back in place (code 1), so the order is kept whatever POSIXLY_CORRECT says, and ":"
     * reports a missing value as ':' instead of printing getopt's own message */
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    opterr = 0;
    optind = 1;
    int c, rc = 0;
    while (!rc) {
        int at = optind; /* the word getopt_long is about to read */
        c = getopt_long(sub_argc, sub_argv, "-:ho:", long_opts, NULL);
        if (c == -1)
            break;
        if (c == 'h') {
            o->help = 1;
            return 0;
        } else if (c == 'o') { /* -o: export and import's --output */
            rc = o->cmd->options & OPT_BIT(OPT_OUTPUT) ? take_option(o, OPT_OUTPUT, optarg)
                                                       : option_elsewhere(OPT_OUTPUT);
        } else if (c == 1) {
            rc = take_positional(o, optarg);
        } else if (c == ':') {
            const char *f = optopt >= OPT_VAL0 ? long_opts[optopt - OPT_VAL0].name : "";
            rc = usage_error("--%s needs a value", f);
        } else if (c == '?' && optopt >= OPT_VAL0) { /* --resume=x */
            rc = usage_error("--%s takes no value", long_opts[optopt - OPT_VAL0].name);
        } else if (c == '?') {
            rc = bad_option(at < sub_argc ? sub_argv[at] : "", optopt < OPT_VAL0 ? optopt : 0);
        } else if (c >= OPT_VAL0 && c < OPT_VAL0 + OPT_COUNT) {
            int i = c - OPT_VAL0;
            rc = o->cmd->options & OPT_BIT(i) ? take_option(o, i, optarg) : option_elsewhere(i);
        }
    }
    for (int i = optind; !rc && i < sub_argc; i++) /* the words after "--" */
        rc = take_positional(o, sub_argv[i]);
    if (rc)
        return rc;
    if (o->cmd->needs_model && !o->model)
        return usage_error("'%s' needs %s", o->cmd->name,
                           o->cmd->run == cmd_plot     ? "a run folder"
                           : o->cmd->run == cmd_import ? "a NIR file"
                                                       : "a model file");
    if ((o->cmd->run == cmd_export || o->cmd->run == cmd_import) && !o->output)
        return usage_error("%s needs -o %s", o->cmd->name,
                           o->cmd->run == cmd_export ? "NET.nir" : "DIR");
    if (o->cmd->run == cmd_eval && !o->weights)
        return usage_error("eval needs --weights FILE");
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

/* s as a JSON string, bytes that are not UTF-8 replaced (runlog.c). */
static json_t *json_text(const char *s)
{
    return spk_json_text(s);
}

/* x rounded to `decimals` places; printed with JSON_REAL_PRECISION(15) that is the shortest
 * form (0.8339, not 0.83389999999999997). null when not finite, which JSON cannot hold. */
static json_t *json_fixed(double x, int decimals)
{
    if (!isfinite(x))
        return json_null();
    double scale = pow(10, decimals);
    return json_real(round(x * scale) / scale);
}

/* The last line of train, eval and bench: one JSON object, keys in the order packed, with
 * jansson's ", " and ": " separators (scripts and the tests look for `"key": value`). Takes
 * line (NULL when packing it failed). */
static int print_json_line(json_t *line)
{
    char *text = line ? json_dumps(line, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(line);
    if (!text) {
        fprintf(stderr, "spikecl: error: out of memory writing the result line\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
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
    spk_runlog *rl; /* metrics.jsonl's batch lines (NULL: none) */
    spk_session *s; /* for the learning rate */
} progress_state;

static void on_progress(const spk_progress *p, void *user)
{
    progress_state *ps = user;
    if (ps->rl)
        spk_runlog_batch(ps->rl, p, spk_session_lr(ps->s));
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

/* The pictures of a run (spikecl plot) from a checkpoint, in a session that keeps every layer's
 * output for them. */
static int draw_pictures(const char *dir, spk_model *m, spk_backend *be, int batch,
                         spk_loader *test, const char *weights, spk_error *err)
{
    spk_session *s = NULL;
    int rc = spk_session_new(m, be, batch, &s, err);
    if (!rc)
        rc = spk_session_load(s, weights, err);
    if (!rc)
        rc = spk_runlog_pictures(dir, s, test, spk_model_time_steps(m), spk_model_name(m), weights,
                                 err);
    spk_session_free(s);
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
    /* the output layer's spikes are not kept: the pictures at the end use a session of their own */
    if (!rc)
        rc = spk_session_new_flags(m, be, tc->batch, SPK_SESSION_FUSE_READOUT, &s, &err);
    /* before anything is written: both splits must fit the model's input */
    if (!rc && (rc = spk_session_check_data(s, tr, &err)))
        spk_error_prefix(&err, rc, "training set");
    if (!rc && (rc = spk_session_check_data(s, te, &err)))
        spk_error_prefix(&err, rc, "test set");
    int write_failed = 0; /* I/O errors on output are not bad input: exit 1 */
    if (!rc && spk_fs_mkdir_p(outdir, 0777) != 0) {
        rc =
            spk_error_set(&err, SPK_ERR_IO, "cannot create folder %s: %s", outdir, strerror(errno));
        write_failed = 1;
    }
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
    spk_runlog rl = {0}; /* the run folder: model.yaml, run.json, metrics.jsonl, best */
    spk_run_info ri = {o->argc,       o->argv,  be ? be->description : "", o->data, o->limit_train,
                       o->limit_test, o->resume};
    if (!rc && o->data)
        rc = spk_runlog_take_data(m, o->data, &err);
    if (!rc && (rc = spk_runlog_open(&rl, outdir, m, &ri, o->log_every, tc->batch, &err)))
        write_failed = rc == SPK_ERR_IO;
    catch_stop_signals();
    int stopped = 0;
    double t0 = now_s(), train_s = 0;
    spk_batch_stats st = {0}, ev = {0};
    long trained = 0;
    progress_state ps = {.tty = isatty(2), .rl = &rl, .s = s};
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
        if (!rc &&
            (rc = spk_runlog_epoch(&rl, s, e, tc->epochs, &st, &ev, st.n / (now_s() - te0), &err)))
            write_failed = rc == SPK_ERR_IO;
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
    spk_runlog_close(&rl);
    if (!rc && !stopped && !o->no_plots) {
        spk_session_free(s); /* its memory, before the pictures' session takes its own */
        s = NULL;
        rc = draw_pictures(outdir, m, be, tc->batch, lte, ckpt, &err);
        write_failed = rc == SPK_ERR_IO;
        if (!rc)
            fprintf(stderr, "spikecl: pictures in %s (spikecl plot %s draws them again)\n", outdir,
                    outdir);
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
        code = print_json_line(json_pack(
            "{s:o, s:o, s:o, s:o, s:i, s:o, s:o, s:o, s:o}", "test_accuracy",
            json_fixed((double)ev.correct / ev.n, 4), "test_loss",
            json_fixed(ev.loss_sum / ev.n, 5), "train_loss", json_fixed(st.loss_sum / st.n, 5),
            "train_accuracy", json_fixed((double)st.correct / st.n, 4), "epochs", tc->epochs,
            "samples_per_s", json_fixed(train_s > 0 ? trained / train_s : 0.0, 1), "seconds",
            json_fixed(now_s() - t0, 2), "device", json_text(be->ops->name), "checkpoint",
            json_text(ckpt)));
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
    spk_probe pr = {0}; /* the evaluation, with each sample's result */
    if (!rc)
        rc = spk_probe_run(s, lte, spk_model_time_steps(m), &pr, &err);
    FILE *pf = NULL;
    if (!rc && o->predictions && !(pf = fopen(o->predictions, "w")))
        rc =
            spk_error_set(&err, SPK_ERR_IO, "cannot write %s: %s", o->predictions, strerror(errno));
    if (pf && (spk_probe_write_csv(&pr, pf) | fclose(pf)))
        rc =
            spk_error_set(&err, SPK_ERR_IO, "cannot write %s: %s", o->predictions, strerror(errno));
    int code = 0;
    if (rc)
        code =
            rc == SPK_ERR_IO ? (fprintf(stderr, "spikecl: error: %s\n", err.msg), 1) : fail(&err);
    else
        code = print_json_line(json_pack("{s:o, s:o, s:i, s:o, s:o, s:o}", "test_accuracy",
                                         json_fixed((double)pr.correct / pr.n, 4), "test_loss",
                                         json_fixed(pr.loss_sum / pr.n, 5), "samples", pr.n,
                                         "device", json_text(be->ops->name), "confusion",
                                         spk_probe_confusion_json(&pr), "per_class_accuracy",
                                         spk_probe_class_accuracy_json(&pr)));
    spk_probe_free(&pr);
    spk_session_free(s);
    spk_backend_free(be);
    spk_loader_free(lte);
    spk_dataset_free(te);
    spk_model_free(m);
    return code;
}

/* One timed training batch: the step, or with --no-update its forward and backward alone. */
static int bench_step(spk_session *s, int no_update, const float *x, const int32_t *y, int n,
                      spk_batch_stats *st, spk_error *err)
{
    return no_update ? spk_session_forward_backward(s, x, y, n, st, err)
                     : spk_session_train_batch(s, x, y, n, st, err);
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
    if (!rc) /* as train runs it */
        rc = spk_session_new_flags(m, be, batch, SPK_SESSION_FUSE_READOUT, &s, &err);
    if (!rc && !synthetic)
        rc = spk_session_check_data(s, tr, &err);
    int in = rc ? 0 : spk_session_input_size(s);
    float *x = rc ? NULL : malloc((size_t)batch * in * sizeof(float));
    int32_t *y = rc ? NULL : malloc((size_t)batch * sizeof(int32_t));
    uint32_t *ids = rc ? NULL : malloc((size_t)batch * sizeof(uint32_t));
    if (!rc && (!x || !y || !ids))
        rc = spk_error_set(&err, SPK_ERR_NOMEM, "out of memory");
    double train_s = 0, infer_s = 0, gemm_frac = 0;
    int json_code = 0;
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
            rc = bench_step(s, o->no_update, x, y, n, &st, &err);
        if (!rc)
            rc = be->ops->sync(be, &err);
        spk_backend_stats before = be->stats;
        double t0 = now_s();
        /* as spk_train_epoch runs: the next batch is staged (uploaded while the step runs, on a
         * device that uploads asynchronously) before the step's loss is read back */
        if (!rc && o->batches > 0 && !o->no_update)
            rc = spk_session_stage_batch(s, x, y, n, &err);
        for (int i = 0; !rc && o->no_update && i < o->batches; i++)
            rc = bench_step(s, 1, x, y, n, &st, &err);
        for (int i = 0; !rc && !o->no_update && i < o->batches; i++) {
            rc = spk_session_train_submit_staged(s, &err);
            if (!rc && i + 1 < o->batches)
                rc = spk_session_stage_batch(s, x, y, n, &err);
            if (!rc)
                rc = spk_session_train_finish(s, &st, &err);
        }
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
            rc = bench_step(s, o->no_update, x, y, n, &st, &err);
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
            spk_memory_report mr;
            spk_session_memory(s, &mr);
            const double mib = 1.0 / (1024 * 1024);
            fprintf(stderr,
                    "memory (MiB): weights %.1f, gradients %.1f, optimizer %.1f, activations "
                    "%.1f in %d buffer%s, layer state %.1f",
                    mib * (double)mr.weights, mib * (double)mr.gradients,
                    mib * (double)mr.optimizer, mib * (double)mr.activations, mr.buffers,
                    mr.buffers == 1 ? "" : "s", mib * (double)mr.state);
            if (mr.fused >= 0)
                fprintf(stderr, "; '%s' sums its output into the readout",
                        spk_session_node_name(s, mr.fused));
            fprintf(stderr, "\n");
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
        if (strcmp(be->ops->name, "cpu") != 0)
            fprintf(stderr,
                    "gemm_fraction: not measured on %s (GEMM runs asynchronously); the "
                    "synapse layers' share above is its upper bound\n",
                    be->ops->name);
        if (!rc)
            json_code = print_json_line(json_pack(
                "{s:o, s:o, s:o, s:o, s:i, s:i, s:i, s:o, s:s, s:b}", "train_samples_per_s",
                json_fixed((double)n * o->batches / train_s, 1), "infer_samples_per_s",
                json_fixed((double)n * o->batches / infer_s, 1), "gemm_fraction",
                strcmp(be->ops->name, "cpu") == 0 ? json_fixed(gemm_frac, 3) : json_null(),
                "peak_rss_mb", json_fixed(peak_rss_mb(), 1), "batch", n, "batches", o->batches,
                "time_steps", spk_model_time_steps(m), "device", json_text(be->ops->name), "data",
                synthetic ? "synthetic" : "real", "update", !o->no_update));
    }
    int code = rc ? fail(&err) : json_code;
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

/* `spikecl plot RUN_DIR`: the run's model and weights on its test split (as run.json recorded
 * --data and --limit-test, unless given again), drawn into RUN_DIR. */
static int cmd_plot(const opts *o)
{
    const char *dir = o->model;
    char path[4200], weights[4200];
    spk_error err = {0};
    spk_model *m = NULL;
    spk_backend *be = NULL;
    spk_dataset *te = NULL;
    spk_loader *lte = NULL;
    opts po = *o; /* --data and --limit-test from run.json's last invocation */
    snprintf(path, sizeof path, "%s/run.json", dir);
    json_t *run = json_load_file(path, 0, NULL);
    json_t *inv = run ? json_array_get(json_object_get(run, "invocations"),
                                       json_array_size(json_object_get(run, "invocations")) - 1)
                      : NULL;
    if (!po.data && inv && json_is_string(json_object_get(inv, "data")))
        po.data = json_string_value(json_object_get(inv, "data"));
    if (po.limit_test < 0 && inv && json_is_integer(json_object_get(inv, "limit_test")))
        po.limit_test = (int)json_integer_value(json_object_get(inv, "limit_test"));
    snprintf(path, sizeof path, "%s/model.yaml", dir);
    snprintf(weights, sizeof weights, "%s", o->weights ? o->weights : "");
    if (!o->weights)
        snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    int rc = spk_model_load(path, &m, &err);
    if (rc) { /* not a run folder, or a broken model.yaml: bad input either way */
        fprintf(stderr, "spikecl: error: %s is not a train run's folder (its model.yaml): %s\n",
                dir, err.msg);
        json_decref(run);
        return EXIT_USAGE;
    }
    spk_train_config *tc = spk_model_train_config(m);
    int batch = o->batch > 0 ? o->batch : tc->batch;
    if (!rc)
        rc = load_split(&po, tc, 0, &te, &err);
    if (!rc)
        rc = spk_loader_new(te, batch, 0, 0, po.limit_test, &lte, &err);
    if (!rc)
        rc = open_device(o, &be, &err);
    if (!rc)
        rc = draw_pictures(dir, m, be, batch, lte, weights, &err);
    int code = 0;
    if (rc)
        code =
            rc == SPK_ERR_IO ? (fprintf(stderr, "spikecl: error: %s\n", err.msg), 1) : fail(&err);
    else
        code = print_json_line(json_pack("{s:o, s:[s, s, s, s, s], s:o}", "folder", json_text(dir),
                                         "pictures", "curves.png", "raster.png",
                                         "spike_counter.png", "confusion.png", "membrane.png",
                                         "weights", json_text(weights)));
    json_decref(run);
    spk_backend_free(be);
    spk_loader_free(lte);
    spk_dataset_free(te);
    spk_model_free(m);
    return code;
}

static int cmd_devices(const opts *o)
{
    (void)o;
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

static int cmd_plugins(const opts *o)
{
    (void)o;
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

/* export: the model on the CPU with the checkpoint's weights (or its initial ones), to NIR */
static int cmd_export(const opts *o)
{
    spk_error err = {0};
    spk_model *m = NULL;
    spk_backend *be = NULL;
    spk_session *s = NULL;
    spk_nir_options no = {.dt = o->dt, .approximate = o->approximate};
    int rc = spk_model_load(o->model, &m, &err);
    if (!rc)
        rc = spk_backend_open("cpu", &be, &err);
    if (!rc)
        rc = spk_session_new(m, be, 1, &s, &err);
    if (!rc && o->weights)
        rc = spk_session_load(s, o->weights, &err);
    if (!rc)
        rc = spk_nir_export(s, o->output, &no, &err);
    int code = rc ? fail(&err)
                  : print_json_line(
                        json_pack("{s:s, s:b}", "nir", o->output, "weights", o->weights != NULL));
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
    return code;
}

static int cmd_import(const opts *o)
{
    spk_error err = {0};
    spk_nir_options no = {.dt = o->dt,
                          .time_steps = o->time_steps,
                          .input_scale = (float)o->input_scale,
                          .approximate = o->approximate};
    if (spk_nir_import(o->model, o->output, &no, &err))
        return fail(&err);
    char model[4096], weights[4096];
    snprintf(model, sizeof model, "%s/model.yaml", o->output);
    snprintf(weights, sizeof weights, "%s/model.safetensors", o->output);
    return print_json_line(json_pack("{s:s, s:s}", "model", model, "weights", weights));
}

/* The OpenMP wait policy. libgomp's threads spin up to 300,000 times at every barrier and
 * between parallel regions (OMP_WAIT_POLICY unset); with another process busy on one of the
 * cores, the thread sharing that core spins against it and each barrier waits for a scheduler
 * slice: 2-thread training fell ~7x. A bounded spin keeps back-to-back kernels fast and sleeps
 * soon after. libgomp reads its settings once, when it loads, so when the user set neither
 * variable the CLI sets GOMP_SPINCOUNT and runs itself again (measurements: docs/ARCHITECTURE.md,
 * "Threads"). */
#define SPK_CLI_SPINCOUNT "1000"

static void bound_omp_spin(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
        return;
    if (setenv("GOMP_SPINCOUNT", SPK_CLI_SPINCOUNT, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* no exec (no /proc): carry on with the runtime's defaults */
}

int main(int argc, char **argv)
{
    bound_omp_spin(argv);
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (o.help) {
        print_help(o.cmd);
        return 0;
    }
    /* one rule for every command: a library on the search path that does not load is skipped
     * with a warning; a model that needs one of its types fails at that layer */
    if (o.cmd->run != cmd_devices) {
        spk_error perr = {0};
        if (spk_plugin_load_path_env_once(&perr))
            fprintf(stderr, "spikecl: warning: %s; skipped\n", perr.msg);
    }
    return o.cmd->run(&o);
}
