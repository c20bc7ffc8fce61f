/* The CPU backend's GEMM against a naive double-precision product, on the shapes of its
 * hand-written skinny kernels (backends/cpu/cpu.c: "dot" for ta = 0, tb = 1 with 2 <= n <= 12
 * and m >= 1024; "outer" for ta = 1, tb = 0 with 8 <= m <= 11; "bcast" for ta = 0, tb = 0 with
 * 3 <= k <= 12, m >= 1024 and n >= 64) and around their bounds, with
 * odd sizes, every transpose, alpha and beta, offsets, padded leading dimensions and guard
 * floats, on one and two threads. Builds without AVX-512 run the same checks through OpenBLAS. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/backend.h"
#include "spikecl/spikecl.h"
#include "testutil.h"

typedef struct gcase {
    int ta, tb;
    size_t m, n, k;
    float alpha, beta;
    size_t pad_a, pad_b, pad_c; /* leading dimension minus the minimum */
} gcase;

/* The result and, per element, sum |alpha a b| + |beta c|: the scale of its rounding error. */
static void ref_gemm(const gcase *g, const float *a, size_t lda, const float *b, size_t ldb,
                     const float *c, size_t ldc, double *want, double *scale)
{
    for (size_t i = 0; i < g->m; i++)
        for (size_t j = 0; j < g->n; j++) {
            double s = 0.0, mag = 0.0;
            for (size_t p = 0; p < g->k; p++) {
                double av = g->ta ? a[p * lda + i] : a[i * lda + p];
                double bv = g->tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
                mag += fabs(av * bv);
            }
            double old = g->beta == 0.0f ? 0.0 : (double)g->beta * c[i * ldc + j];
            want[i * g->n + j] = g->alpha * s + old;
            scale[i * g->n + j] = fabs(g->alpha) * mag + fabs(old);
        }
}

static spk_buffer *put(spk_backend *be, const float *x, size_t n)
{
    spk_buffer *b = NULL;
    spk_error err = {0};
    cr_assert_eq(be->ops->alloc(be, n * sizeof(float), &b, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(be->ops->upload(be, b, 0, x, n * sizeof(float), &err), SPK_OK, "%s", err.msg);
    return b;
}

/* Runs case g with operands at offsets inside guarded buffers and C's block prefilled with NaN
 * when beta = 0 (BLAS never reads it then); returns C's whole buffer (malloc'ed). */
static float *run_case(spk_backend *be, const gcase *g, unsigned seed, float **a_out, float **b_out,
                       float **c_out, size_t *lda, size_t *ldb, size_t *ldc, size_t *nc_out)
{
    const size_t a_off = 3, b_off = 5, c_off = 7, guard = 17;
    size_t a_rows = g->ta ? g->k : g->m, a_cols = (g->ta ? g->m : g->k);
    size_t b_rows = g->tb ? g->n : g->k, b_cols = (g->tb ? g->k : g->n);
    *lda = a_cols + g->pad_a, *ldb = b_cols + g->pad_b, *ldc = g->n + g->pad_c;
    size_t na = a_off + a_rows * *lda + guard, nb = b_off + b_rows * *ldb + guard;
    size_t nc = c_off + g->m * *ldc + guard;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
    float *got = malloc(nc * sizeof *got);
    cr_assert(a && b && c && got);
    spk_test_fill(a, na, -1.0f, 1.0f, seed);
    spk_test_fill(b, nb, -1.0f, 1.0f, seed + 1);
    spk_test_fill(c, nc, -1.0f, 1.0f, seed + 2);
    if (g->beta == 0.0f)
        for (size_t i = 0; i < g->m; i++)
            for (size_t j = 0; j < g->n; j++)
                c[c_off + i * *ldc + j] = NAN;
    spk_buffer *da = put(be, a, na), *db = put(be, b, nb), *dc = put(be, c, nc);
    spk_error err = {0};
    int rc = be->ops->gemm(be, g->ta, g->tb, g->m, g->n, g->k, g->alpha, da, a_off, *lda, db, b_off,
                           *ldb, g->beta, dc, c_off, *ldc, &err);
    cr_assert_eq(rc, SPK_OK, "gemm: %s", err.msg);
    cr_assert_eq(be->ops->download(be, dc, 0, got, nc * sizeof(float), &err), SPK_OK);
    be->ops->release(be, da);
    be->ops->release(be, db);
    be->ops->release(be, dc);
    /* hand back the operands as the GEMM saw them */
    memmove(a, a + a_off, (na - a_off) * sizeof *a);
    memmove(b, b + b_off, (nb - b_off) * sizeof *b);
    *a_out = a, *b_out = b, *c_out = c, *nc_out = nc;
    return got;
}

#define C_OFF 7

static void check_case(spk_backend *be, const gcase *g, unsigned seed)
{
    float *a, *b, *c;
    size_t lda, ldb, ldc, nc;
    float *got = run_case(be, g, seed, &a, &b, &c, &lda, &ldb, &ldc, &nc);
    double *want = malloc(g->m * g->n * sizeof *want), *scale = malloc(g->m * g->n * sizeof *scale);
    cr_assert(want && scale);
    ref_gemm(g, a, lda, b, ldb, c + C_OFF, ldc, want, scale);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < nc; i++) {
        size_t r = (i - C_OFF) / ldc, col = (i - C_OFF) % ldc;
        if (i >= C_OFF && r < g->m && col < g->n) {
            double w = want[r * g->n + col], s = scale[r * g->n + col];
            /* float32 summation error is ~sqrt(k) u of the terms' magnitude; 1e-5 of it
             * leaves a margin, while a wrong or missing term is off by a whole term */
            if (!(fabs(got[i] - w) <= 1e-5 * s + 1e-30))
                first = bad++ ? first : i;
        } else if (memcmp(&got[i], &c[i], sizeof(float)) != 0) {
            cr_assert_fail("ta=%d tb=%d m=%zu n=%zu k=%zu: C[%zu] outside the block changed", g->ta,
                           g->tb, g->m, g->n, g->k, i);
        }
    }
    cr_assert_eq(bad, 0,
                 "ta=%d tb=%d m=%zu n=%zu k=%zu alpha=%g beta=%g lds+%zu/%zu/%zu: %zu of %zu "
                 "wrong, first C[%zu] = %g",
                 g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->beta, g->pad_a, g->pad_b, g->pad_c,
                 bad, g->m * g->n, first, got[first]);
    free(a), free(b), free(c), free(got), free(want), free(scale);
}

static spk_backend *cpu(int threads)
{
    spk_backend *be = NULL;
    spk_error err = {0};
    cr_assert_eq(spk_backend_cpu_new(threads, &be, &err), SPK_OK, "%s", err.msg);
    return be;
}

static const float alphas[] = {1.0f, 1.5f, -0.5f};
static const float betas[] = {0.0f, 1.0f, 0.25f};

/* dot: y = x W^T-like, C tall and narrow; k across the 16-float vectors' tails, n up to the
 * bound and past it. */
Test(cpu_gemm, dot_shapes, .timeout = 600)
{
    spk_backend *be = cpu(1);
    const size_t ns[] = {1, 2, 3, 10, 12, 13}, ks[] = {32, 33, 47, 300, 1000};
    unsigned seed = 1;
    for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
        for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++) {
            gcase g = {0,
                       1,
                       1029,
                       ns[in],
                       ks[ik],
                       alphas[seed % 3],
                       betas[(seed / 3) % 3],
                       seed % 4,
                       (seed + 1) % 3,
                       seed % 5};
            check_case(be, &g, seed++);
        }
    /* at the bounds: m = 1023 and 1024, k = 31, n k = 8192 and past it, k a multiple of 16 */
    const gcase edge[] = {
        {0, 1, 1023, 10, 300, 1.0f, 0.0f, 0, 0, 0}, {0, 1, 1024, 10, 300, 1.0f, 0.0f, 0, 0, 0},
        {0, 1, 1100, 10, 31, 1.0f, 1.0f, 1, 0, 0},  {0, 1, 1100, 8, 1024, 2.0f, 0.0f, 0, 0, 3},
        {0, 1, 1100, 8, 1025, 2.0f, 0.5f, 0, 1, 0}, {0, 1, 1024, 2, 4096, 1.0f, 0.0f, 0, 0, 0},
        {0, 1, 1024, 12, 16, 1.0f, 0.0f, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
        check_case(be, &edge[i], seed++);
    spk_backend_free(be);
}

/* outer: grad_W = gy^T x-like, C short and wide; column counts off the 16-column strips, k
 * across several row blocks (padded ldb makes the blocks shorter). */
Test(cpu_gemm, outer_shapes, .timeout = 600)
{
    spk_backend *be = cpu(1);
    const size_t ms[] = {7, 8, 10, 11, 12}, ns[] = {64, 65, 300, 301};
    const size_t ks[] = {511, 512, 777, 3200};
    unsigned seed = 100;
    for (size_t im = 0; im < sizeof ms / sizeof *ms; im++)
        for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
            for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++) {
                gcase g = {1,
                           0,
                           ms[im],
                           ns[in],
                           ks[ik],
                           alphas[seed % 3],
                           betas[(seed / 3) % 3],
                           seed % 3,
                           1 + seed % 97,
                           seed % 4};
                check_case(be, &g, seed++);
            }
    /* the widest: n k just under 2M floats, C columns split into 125 strips */
    const gcase wide = {1, 0, 9, 2000, 1000, 1.0f, 0.0f, 0, 5, 1};
    check_case(be, &wide, seed);
    spk_backend_free(be);
}

/* bcast: grad_x = gy W-like, C tall, k small; columns off the 16-column strips (the last strip
 * overlaps the one before), rows across several row blocks and past their multiple, k at and
 * past both bounds. */
Test(cpu_gemm, bcast_shapes, .timeout = 600)
{
    spk_backend *be = cpu(1);
    const size_t ks[] = {2, 3, 4, 10, 12, 13}, ns[] = {64, 65, 300, 801};
    unsigned seed = 200;
    for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++)
        for (size_t in = 0; in < sizeof ns / sizeof *ns; in++) {
            gcase g = {0,
                       0,
                       1029,
                       ns[in],
                       ks[ik],
                       alphas[seed % 3],
                       betas[(seed / 3) % 3],
                       seed % 3,
                       seed % 5,
                       (seed + 1) % 4};
            check_case(be, &g, seed++);
        }
    /* at the bounds: m = 1023 and 1024, n = 63, several 128-row blocks with a partial one */
    const gcase edge[] = {
        {0, 0, 1023, 300, 10, 1.0f, 0.0f, 0, 0, 0},
        {0, 0, 1024, 300, 10, 1.0f, 0.0f, 0, 0, 0},
        {0, 0, 1100, 63, 10, 1.0f, 1.0f, 0, 0, 0},
        {0, 0, 3201, 300, 10, -0.5f, 0.25f, 1, 2, 3},
    };
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++)
        check_case(be, &edge[i], seed++);
    spk_backend_free(be);
}

/* Every transpose on odd sizes (OpenBLAS and both kernels' neighbours), and k = 0. */
Test(cpu_gemm, all_transposes)
{
    spk_backend *be = cpu(1);
    unsigned seed = 300;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const gcase gs[] = {
                {ta, tb, 37, 13, 29, 1.5f, -0.5f, 1, 2, 3},
                {ta, tb, 1029, 10, 33, 1.0f, 0.0f, 0, 1, 0},
                {ta, tb, 10, 301, 600, 1.0f, 1.0f, 2, 0, 1},
                {ta, tb, 6, 9, 0, 1.0f, 0.5f, 0, 0, 0},
            };
            for (size_t i = 0; i < sizeof gs / sizeof *gs; i++)
                check_case(be, &gs[i], seed++);
        }
    spk_backend_free(be);
}

/* The hand kernels' sums do not depend on how the threads split C: 1 and 2 threads agree bit
 * for bit (the outer kernel splits whole 16-column strips). Only where cpu.c compiles them (the
 * same condition; this file gets the same flags): OpenBLAS alone promises no such thing, its
 * edge-column kernels sum in another order than its full-width ones (case 1 differs in the
 * portable build). */
Test(cpu_gemm, threads_bit_identical, .timeout = 600)
{
#if !(defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__))
    cr_skip_test("no hand kernels in this build (no AVX-512 or not GCC)");
#endif
    const gcase gs[] = {
        {0, 1, 3001, 10, 300, 1.0f, 0.0f, 0, 0, 0},
        {1, 0, 10, 301, 3200, 1.0f, 1.0f, 0, 3, 0},
        {0, 0, 3001, 300, 10, 1.0f, 0.0f, 0, 0, 0},
        {1, 0, 11, 80, 2000, -1.0f, 0.5f, 1, 0, 2},
    };
    for (size_t i = 0; i < sizeof gs / sizeof *gs; i++) {
        float *r[2];
        size_t nc = 0;
        for (int t = 0; t < 2; t++) {
            spk_backend *be = cpu(t + 1);
            float *a, *b, *c;
            size_t lda, ldb, ldc;
            r[t] = run_case(be, &gs[i], 500 + (unsigned)i, &a, &b, &c, &lda, &ldb, &ldc, &nc);
            free(a), free(b), free(c);
            spk_backend_free(be);
        }
        cr_expect(memcmp(r[0], r[1], nc * sizeof(float)) == 0, "case %zu: 1 and 2 threads differ",
                  i);
        free(r[0]), free(r[1]);
    }
}

/* Non-finite operands: an infinity in A or B gives an infinity, also in the lanes that the dot
 * kernel's last vector reads twice and masks (k = 33: columns 17..31). */
Test(cpu_gemm, infinities_stay_infinite)
{
    spk_backend *be = cpu(1);
    const size_t m = 1024, n = 10, k = 33;
    float *a = malloc(m * k * sizeof *a), *b = malloc(n * k * sizeof *b);
    float *c = malloc(m * n * sizeof *c);
    cr_assert(a && b && c);
    for (size_t i = 0; i < m * k; i++)
        a[i] = 1.0f;
    for (size_t i = 0; i < n * k; i++)
        b[i] = 0.5f;
    a[5 * k + 20] = INFINITY; /* row 5, a masked-and-reread column */
    b[3 * k + 25] = INFINITY; /* column 3 of C */
    spk_buffer *da = put(be, a, m * k), *db = put(be, b, n * k), *dc = put(be, c, m * n);
    spk_error err = {0};
    cr_assert_eq(be->ops->gemm(be, 0, 1, m, n, k, 1.0f, da, 0, k, db, 0, k, 0.0f, dc, 0, n, &err),
                 SPK_OK, "%s", err.msg);
    cr_assert_eq(be->ops->download(be, dc, 0, c, m * n * sizeof(float), &err), SPK_OK);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float v = c[i * n + j];
            if (i == 5 || j == 3)
                cr_assert(isinf(v) && v > 0, "C[%zu, %zu] = %g, expected +inf", i, j, v);
            else
                cr_assert(v == 16.5f, "C[%zu, %zu] = %g, expected 16.5", i, j, v);
        }
    be->ops->release(be, da);
    be->ops->release(be, db);
    be->ops->release(be, dc);
    free(a), free(b), free(c);
    spk_backend_free(be);
}

/* SPIKECL_CPU_POISON=1 (CI's sanitizer run): a new buffer reads as NaN in every float, the
 * odd-sized tail included, so a kernel that reads what nobody wrote fails every time. */
Test(cpu_backend, poison_fills_new_buffers_with_nan)
{
    const char *was = getenv("SPIKECL_CPU_POISON");
    setenv("SPIKECL_CPU_POISON", "1", 1);
    spk_backend *be = cpu(1);
    if (was)
        setenv("SPIKECL_CPU_POISON", was, 1);
    else
        unsetenv("SPIKECL_CPU_POISON");
    enum { N = 37 };
    spk_buffer *buf = NULL;
    spk_error err = {0};
    cr_assert_eq(be->ops->alloc(be, N * sizeof(float), &buf, &err), SPK_OK, "%s", err.msg);
    float got[N];
    cr_assert_eq(be->ops->download(be, buf, 0, got, sizeof got, &err), SPK_OK, "%s", err.msg);
    for (int i = 0; i < N; i++)
        cr_expect(isnan(got[i]), "float %d of a new buffer is %g, not NaN", i, got[i]);
    be->ops->release(be, buf);
    spk_backend_free(be);
}
