/* The lane-block neuron kernels (SPK_FOR_LANES, spikecl/kernel.h) against the same sources
 * built one lane wide, bit for bit: every built-in lane-block neuron, forward and backward,
 * every reset, surrogate and flag, at sizes that are not a multiple of the vector width, smaller
 * than it, and large enough (> 4096 items) to be split between OpenMP threads (1 and 3 threads,
 * so block boundaries fall inside and between chunks). Each lane's arithmetic is the one-item
 * code's, so any difference is an indexing, tail or chunking bug. Inputs are random: the
 * backward kernels read whatever saved state they are given. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "neuron_lanes.h"
#include "testutil.h"

extern const spk_cpu_kernel spk_test_lanes1_kernels[];
static const spk_cpu_kernel lanes_kernels[] = SPK_NEURON_LANES_TABLE;

/* Argument roles, one letter per argument in order. Buffers: O written (compared), I read
 * ([T, B*N] values), P per-neuron parameter ([N]). Ints: T steps, B items (B*N), N neurons,
 * X input step stride (0 or B*N), S parameter stride (0 or 1), C cfg. Floats: K slope,
 * V 0.1 (reset value), H 1.0 (threshold). */
typedef struct kcase {
    const char *name;
    const char *roles;
    int n_resets;   /* values of cfg & 3 to try */
    int want_bits;  /* the kernel's WANT_* flags, all set or none */
    float plo, phi; /* range of the P parameters */
} kcase;

static const kcase kcases[] = {
    {"lif_forward", "OOIPPTBNXSSCKV", 3, 0, 0.5f, 1.0f},
    {"lif_backward", "OOOIIPPTBNXSSCKV", 3, 256 | 512 | 1024, 0.5f, 1.0f},
    {"if_forward", "OOIPTBNXSCKV", 3, 0, 0.5f, 1.5f},
    {"if_backward", "OOIIPTBNXSCKV", 3, 256 | 512, 0.5f, 1.5f},
    {"syn_forward", "OOOIPPPTBNXSSSCK", 3, 0, 0.3f, 0.95f},
    {"syn_backward", "OOOOIIIPPPTBNXSSSCK", 3, 256 | 512 | 1024 | 2048, 0.3f, 0.95f},
    {"plif_forward", "OOIPTBNXSCKHV", 4, 0, -2.0f, 2.0f},
    {"plif_backward", "OOIIIPTBNXSCKHV", 4, 256 | 512, -2.0f, 2.0f},
};

typedef struct shape {
    int T, B, N;
} shape;

/* B*N: 1, 7 (< one vector), 33 (vectors and a tail), 4101 (32 blocks and a tail, parallel),
 * 385 (three blocks and a tail, serial) */
static const shape shapes[] = {{3, 1, 1}, {5, 1, 7}, {4, 3, 11}, {3, 3, 1367}, {4, 5, 77}};

static const spk_cpu_kernel *find(const spk_cpu_kernel *table, const char *name)
{
    for (const spk_cpu_kernel *k = table; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

typedef struct run {
    float *buf[24];
    size_t len[24];
    spk_karg a[24];
    int nargs;
} run;

static void run_free(run *r)
{
    for (int i = 0; i < r->nargs; i++)
        free(r->buf[i]);
}

/* Builds the arguments of one call; the same seed gives the same inputs. */
static void build(run *r, const kcase *kc, const shape *sh, int cfg, int in_const, int per_neuron,
                  unsigned seed)
{
    memset(r, 0, sizeof *r);
    const int bn = sh->B * sh->N;
    const size_t big = (size_t)sh->T * (size_t)bn;
    for (const char *p = kc->roles; *p; p++, r->nargs++) {
        spk_karg *a = &r->a[r->nargs];
        const int k = r->nargs;
        switch (*p) {
        case 'O':
        case 'I':
        case 'P': {
            const size_t n = *p == 'P' ? (size_t)sh->N : big;
            r->buf[k] = malloc(n * sizeof(float));
            cr_assert_not_null(r->buf[k]);
            r->len[k] = n;
            if (*p == 'O')
                for (size_t i = 0; i < n; i++)
                    r->buf[k][i] = -12345.0f; /* unwritten stays this on both sides */
            else if (*p == 'I')
                spk_test_fill(r->buf[k], n, -0.5f, 1.5f, seed + (unsigned)k);
            else
                spk_test_fill(r->buf[k], n, kc->plo, kc->phi, seed + (unsigned)k);
            a->type = SPK_KARG_BUF;
            a->v.p = r->buf[k];
            break;
        }
        case 'T':
        case 'B':
        case 'N':
        case 'X':
        case 'S':
        case 'C':
            a->type = SPK_KARG_INT;
            a->v.i = *p == 'T'   ? sh->T
                     : *p == 'B' ? bn
                     : *p == 'N' ? sh->N
                     : *p == 'X' ? (in_const ? 0 : bn)
                     : *p == 'S' ? per_neuron
                                 : cfg;
            break;
        default:
            a->type = SPK_KARG_FLOAT;
            a->v.f = *p == 'K' ? 4.0f : *p == 'H' ? 1.0f : 0.1f;
            break;
        }
    }
}

Test(neuron_lanes, bit_identical_to_one_lane, .timeout = 300)
{
    /* flag sets: plain, smooth, membrane output, no detach, smooth without detach */
    static const int flags[] = {0, 32, 64, 128, 32 | 128};
    int checked = 0;
    const int threads0 = omp_get_max_threads();
    for (size_t c = 0; c < sizeof kcases / sizeof kcases[0]; c++) {
        const kcase *kc = &kcases[c];
        const spk_cpu_kernel *kv = find(lanes_kernels, kc->name);
        const spk_cpu_kernel *k1 = find(spk_test_lanes1_kernels, kc->name);
        cr_assert(kv && k1, "%s: not in the tables", kc->name);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int reset = 0; reset < kc->n_resets; reset++)
                for (int sg = 0; sg < 4; sg++)
                    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
                        for (int v = 0; v < 4; v++) {
                            const int in_const = v & 1, per_neuron = (v >> 1) & 1;
                            const int want = (sg + (int)f) % 2 ? kc->want_bits : 0;
                            const int cfg = reset | sg << 2 | flags[f] | want;
                            const int threads = s == 3 && (sg & 1) ? 3 : 1;
                            const unsigned seed = (unsigned)(c * 7919 + s * 131 + (size_t)v);
                            run ref, lan;
                            build(&ref, kc, &shapes[s], cfg, in_const, per_neuron, seed);
                            build(&lan, kc, &shapes[s], cfg, in_const, per_neuron, seed);
                            omp_set_num_threads(1);
                            k1->entry(ref.a);
                            omp_set_num_threads(threads);
                            kv->entry(lan.a);
                            omp_set_num_threads(threads0);
                            for (int i = 0; i < ref.nargs; i++) {
                                if (kc->roles[i] != 'O')
                                    continue;
                                size_t bad = 0;
                                while (bad < ref.len[i] &&
                                       memcmp(&ref.buf[i][bad], &lan.buf[i][bad], sizeof(float)) ==
                                           0)
                                    bad++;
                                cr_expect(bad == ref.len[i],
                                          "%s T=%d B=%d N=%d cfg=%d in_const=%d per_neuron=%d "
                                          "threads=%d: argument %d differs at [%zu]: %.9g vs one "
                                          "lane %.9g",
                                          kc->name, shapes[s].T, shapes[s].B, shapes[s].N, cfg,
                                          in_const, per_neuron, threads, i + 1, bad,
                                          bad < ref.len[i] ? lan.buf[i][bad] : 0.0,
                                          bad < ref.len[i] ? ref.buf[i][bad] : 0.0);
                                checked++;
                            }
                            run_free(&ref);
                            run_free(&lan);
                        }
    }
    cr_assert_gt(checked, 1000, "only %d comparisons", checked);
}

/* The lane blocks really are wider than one item on the CPU, and one on OpenCL (prelude). */
Test(neuron_lanes, block_width)
{
    cr_assert_gt(SPK_LANES, 1);
}
