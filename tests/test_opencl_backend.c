/* The OpenCL backend on whatever device "opencl" picks (PoCL on a plain CPU machine), or on
 * SPIKECL_TEST_DEVICE when it names an OpenCL device. Without a device the tests skip, except under
 * CI=true where a missing device is a failure. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spikecl/backend.h"
#include "spikecl/kernel.h"
#include "testutil.h"

#include "../backends/opencl/opencl.h"
/* spk_program's fields (from_cache, the kernels' signatures) */
#define CL_TARGET_OPENCL_VERSION 120
#include "../backends/opencl/opencl_internal.h"

static const float SENTINEL = -7777.25f;

static spk_backend *open_dev(void)
{
    /* the OpenCL backend's own tests: the device under test when it is an OpenCL one */
    const char *spec = spk_test_device_env();
    if (!spec || strncmp(spec, "opencl", 6) != 0)
        spec = "opencl";
    spk_error err = {0};
    spk_backend *be = NULL;
    int rc = spk_backend_opencl_open(spec, &be, &err);
    if (rc == SPK_ERR_NOTFOUND)
        spk_test_no_device(err.msg);
    cr_assert_eq(rc, SPK_OK, "open %s: %s", spec, err.msg);
    cr_assert_not_null(be);
    cr_assert_str_eq(be->ops->name, "opencl");
    return be;
}

static spk_buffer *alloc_floats(spk_backend *be, size_t n)
{
    spk_error err = {0};
    spk_buffer *b = NULL;
    cr_assert_eq(be->ops->alloc(be, n * sizeof(float), &b, &err), SPK_OK, "%s", err.msg);
    return b;
}

static void upload(spk_backend *be, spk_buffer *b, const float *x, size_t n)
{
    spk_error err = {0};
    cr_assert_eq(be->ops->upload(be, b, 0, x, n * sizeof(float), &err), SPK_OK, "%s", err.msg);
}

static void download(spk_backend *be, const spk_buffer *b, float *x, size_t n)
{
    spk_error err = {0};
    cr_assert_eq(be->ops->download(be, b, 0, x, n * sizeof(float), &err), SPK_OK, "%s", err.msg);
}

static float *sentinels(size_t n)
{
    float *x = malloc(n * sizeof *x);
    cr_assert_not_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = SENTINEL;
    return x;
}

/* ---- buffers ---- */

Test(opencl_memory, round_trip_and_stats)
{
    spk_backend *be = open_dev();
    spk_error err = {0};
    const size_t n = 1000;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    spk_test_fill(x, n, -3.0f, 3.0f, 1);
    spk_buffer *b = alloc_floats(be, n);
    spk_buffer *b2 = alloc_floats(be, 10);
    cr_assert_eq(be->stats.bytes_allocated, (n + 10) * sizeof(float));
    upload(be, b, x, n);
    download(be, b, y, n);
    cr_assert_eq(memcmp(x, y, n * sizeof *x), 0);

    /* Partial transfers at byte offsets. */
    float part[5] = {1, 2, 3, 4, 5}, back[7];
    cr_assert_eq(be->ops->upload(be, b, 40 * sizeof(float), part, sizeof part, &err), SPK_OK);
    cr_assert_eq(be->ops->download(be, b, 39 * sizeof(float), back, sizeof back, &err), SPK_OK);
    cr_assert_eq(back[0], x[39]);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(back[1 + i], part[i]);
    cr_assert_eq(back[6], x[45]);

    /* Out of range: refused with a message, nothing written. */
    cr_assert_eq(be->ops->upload(be, b, (n - 2) * sizeof(float), part, sizeof part, &err),
                 SPK_ERR_INVALID);
    cr_assert(strstr(err.msg, "overruns"), "%s", err.msg);
    cr_assert_eq(be->ops->download(be, b, SIZE_MAX - 2, back, 8, &err), SPK_ERR_INVALID);

    be->ops->release(be, b2);
    cr_assert_eq(be->stats.bytes_allocated, n * sizeof(float));
    cr_assert_eq(be->stats.bytes_peak, (n + 10) * sizeof(float));
    be->ops->release(be, b);
    cr_assert_eq(be->stats.bytes_allocated, 0);

    /* Zero-sized buffers are valid handles. */
    spk_buffer *z = NULL;
    cr_assert_eq(be->ops->alloc(be, 0, &z, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(be->ops->upload(be, z, 0, x, 0, &err), SPK_OK);
    be->ops->release(be, z);
    free(x);
    free(y);
    spk_backend_free(be);
}

Test(opencl_memory, fill)
{
    spk_backend *be = open_dev();
    spk_error err = {0};
    const size_t n = 203;
    float *x = sentinels(n);
    spk_buffer *b = alloc_floats(be, n);
    upload(be, b, x, n);
    cr_assert_eq(be->ops->fill(be, b, 17, 131, 2.5f, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(be->ops->fill(be, b, 0, 0, 9.0f, &err), SPK_OK, "%s", err.msg);
    download(be, b, x, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(x[i], i >= 17 && i < 17 + 131 ? 2.5f : SENTINEL, "x[%zu] = %g", i, x[i]);
    cr_assert_eq(be->ops->fill(be, b, 200, 4, 1.0f, &err), SPK_ERR_INVALID);
    be->ops->release(be, b);
    free(x);
    spk_backend_free(be);
}

Test(opencl_memory, copy_with_offsets)
{
    spk_backend *be = open_dev();
    spk_error err = {0};
    const size_t n = 300;
    float *src = malloc(n * sizeof *src), *dst = sentinels(n);
    spk_test_fill(src, n, 0.0f, 1.0f, 2);
    spk_buffer *a = alloc_floats(be, n), *b = alloc_floats(be, n);
    upload(be, a, src, n);
    upload(be, b, dst, n);
    cr_assert_eq(
        be->ops->copy(be, b, 101 * sizeof(float), a, 7 * sizeof(float), 77 * sizeof(float), &err),
        SPK_OK, "%s", err.msg);
    download(be, b, dst, n);
    for (size_t i = 0; i < n; i++) {
        float want = i >= 101 && i < 101 + 77 ? src[i - 101 + 7] : SENTINEL;
        cr_assert_eq(dst[i], want, "dst[%zu] = %g, want %g", i, dst[i], want);
    }
    /* Within one buffer: disjoint is fine, overlapping is refused. */
    cr_assert_eq(be->ops->copy(be, a, 0, a, 200 * sizeof(float), 50 * sizeof(float), &err), SPK_OK,
                 "%s", err.msg);
    cr_assert_eq(be->ops->copy(be, a, 0, a, 10 * sizeof(float), 50 * sizeof(float), &err),
                 SPK_ERR_INVALID);
    cr_assert(strstr(err.msg, "overlap"), "%s", err.msg);
    cr_assert_eq(be->ops->copy(be, b, 290 * sizeof(float), a, 0, 20 * sizeof(float), &err),
                 SPK_ERR_INVALID);
    be->ops->release(be, a);
    be->ops->release(be, b);
    free(src);
    free(dst);
    spk_backend_free(be);
}

/* ---- GEMM ---- */

static void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                     size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            double old = beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * s + old);
        }
    }
}

/* One GEMM with offsets, padded leading dimensions and guard floats around every operand;
 * checks the m x n block against the reference and every other float for being untouched. */
static void check_gemm(spk_backend *be, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                       float beta, int nan_c)
{
    const size_t a_off = 5, b_off = 7, c_off = 11, guard = 9;
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k;
    size_t b_rows = tb ? n : k, b_cols = tb ? k : n;
    size_t lda = a_cols + 3, ldb = b_cols + 2, ldc = n + 4;
    size_t na = a_off + a_rows * lda + guard, nb = b_off + b_rows * ldb + guard;
    size_t nc = c_off + m * ldc + guard;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    float *c = malloc(nc * sizeof *c), *want = malloc(nc * sizeof *c),
          *got = malloc(nc * sizeof *c);
    spk_test_fill(a, na, -1.0f, 1.0f, 10 + (unsigned)ta);
    spk_test_fill(b, nb, -1.0f, 1.0f, 20 + (unsigned)tb);
    spk_test_fill(c, nc, -1.0f, 1.0f, 30);
    if (nan_c)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                c[c_off + i * ldc + j] = NAN;
    memcpy(want, c, nc * sizeof *c);
    ref_gemm(ta, tb, m, n, k, alpha, a + a_off, lda, b + b_off, ldb, beta, want + c_off, ldc);

    spk_buffer *da = alloc_floats(be, na), *db = alloc_floats(be, nb), *dc = alloc_floats(be, nc);
    upload(be, da, a, na);
    upload(be, db, b, nb);
    upload(be, dc, c, nc);
    spk_error err = {0};
    int rc = be->ops->gemm(be, ta, tb, m, n, k, alpha, da, a_off, lda, db, b_off, ldb, beta, dc,
                           c_off, ldc, &err);
    cr_assert_eq(rc, SPK_OK, "gemm ta=%d tb=%d: %s", ta, tb, err.msg);
    download(be, dc, got, nc);

    float *bw = malloc(m * n * sizeof *bw), *bg = malloc(m * n * sizeof *bg);
    for (size_t i = 0; i < nc; i++) {
        size_t r = (i - c_off) / ldc, col = (i - c_off) % ldc;
        int inside = i >= c_off && r < m && col < n;
        if (inside) {
            bw[r * n + col] = want[i];
            bg[r * n + col] = got[i];
        } else {
            cr_assert_eq(got[i], c[i], "ta=%d tb=%d: C[%zu] outside the block changed", ta, tb, i);
        }
    }
    double e = spk_test_nerr(bg, bw, m * n);
    cr_assert(e <= 1e-5, "ta=%d tb=%d m=%zu n=%zu k=%zu: normalised error %g", ta, tb, m, n, k, e);
    be->ops->release(be, da);
    be->ops->release(be, db);
    be->ops->release(be, dc);
    free(a);
    free(b);
    free(c);
    free(want);
    free(got);
    free(bw);
    free(bg);
}

Test(opencl_gemm, all_transposes_offsets_odd_sizes, .timeout = 300)
{
    spk_backend *be = open_dev();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            check_gemm(be, ta, tb, 37, 13, 29, 1.5f, -0.5f, 0);
    cr_assert_eq(be->stats.gemm_calls, 4);
    spk_backend_free(be);
    /* Closing the last backend clears CLBlast's program cache; a new one must start clean. */
    be = open_dev();
    check_gemm(be, 1, 0, 5, 3, 4, 1.0f, 1.0f, 0);
    spk_backend_free(be);
}

Test(opencl_gemm, edge_cases, .timeout = 300)
{
    spk_backend *be = open_dev();
    /* beta = 0 must not read C (BLAS semantics): NaN there must not leak into the result. */
    check_gemm(be, 0, 1, 7, 5, 3, 1.0f, 0.0f, 1);
    /* k = 0: C = beta * C. */
    check_gemm(be, 0, 0, 6, 9, 0, 1.0f, 0.5f, 0);
    check_gemm(be, 1, 0, 6, 9, 0, 1.0f, 0.0f, 1);
    /* An empty product is a no-op. */
    spk_error err = {0};
    spk_buffer *x = alloc_floats(be, 16);
    cr_assert_eq(be->ops->gemm(be, 0, 0, 0, 4, 4, 1.0f, x, 0, 4, x, 0, 4, 0.0f, x, 0, 4, &err),
                 SPK_OK, "%s", err.msg);
    be->ops->release(be, x);
    spk_backend_free(be);
}

Test(opencl_gemm, error_names_clblast_status, .timeout = 300)
{
    spk_backend *be = open_dev();
    spk_error err = {0};
    spk_buffer *a = alloc_floats(be, 37 * 29), *b = alloc_floats(be, 29 * 13),
               *c = alloc_floats(be, 37 * 13);
    /* lda = 10 < k = 29 for a row-major, untransposed A. */
    int rc = be->ops->gemm(be, 0, 0, 37, 13, 29, 1.0f, a, 0, 10, b, 0, 13, 0.0f, c, 0, 13, &err);
    cr_assert_neq(rc, SPK_OK);
    cr_assert(strstr(err.msg, "CLBlast SGEMM failed: CLBlastInvalidLeadDimA (-1016)"), "%s",
              err.msg);
    /* C too small for the product. */
    rc = be->ops->gemm(be, 0, 0, 37, 13, 29, 1.0f, a, 0, 29, b, 0, 13, 0.0f, c, 5, 13, &err);
    cr_assert(strstr(err.msg, "CLBlast SGEMM failed: CLBlastInsufficientMemoryC (-1009)"), "%s",
              err.msg);
    be->ops->release(be, a);
    be->ops->release(be, b);
    be->ops->release(be, c);
    spk_backend_free(be);
}

/* ---- programs and launches ---- */

static const char axpb_src[] =
    "/* y[off + i] = a * x[i] + b */\n"
    "SPK_KERNEL void axpb(SPK_GLOBAL float *y, SPK_GLOBAL const float *x, const int off,\n"
    "                     const int n, const float a, const float b)\n"
    "{\n"
    "    SPK_FOR_ITEMS(i, n) {\n"
    "        y[off + i] = a * x[i] + b;\n"
    "    } SPK_END_ITEMS\n"
    "}\n"
    "SPK_CPU_ENTRY(axpb, B, B, I, I, F, F)\n"
    "SPK_KERNEL void neg(SPK_GLOBAL float *y, const int n)\n"
    "{\n"
    "    SPK_FOR_ITEMS(i, n) {\n"
    "        y[i] = -y[i];\n"
    "    } SPK_END_ITEMS\n"
    "}\n"
    "SPK_CPU_ENTRY(neg, B, I)\n";

static spk_program *build(spk_backend *be, const char *owner, const char *src)
{
    spk_kernel_set set = {owner, src, NULL};
    spk_program *p = NULL;
    spk_error err = {0};
    cr_assert_eq(be->ops->program_build(be, &set, &p, &err), SPK_OK, "%s", err.msg);
    cr_assert_not_null(p);
    return p;
}

static int launch_axpb(spk_backend *be, spk_program *p, spk_buffer *y, spk_buffer *x, int off,
                       int n, float a, float b, spk_error *err)
{
    spk_karg args[6];
    args[0].type = SPK_KARG_BUF;
    args[0].v.p = y;
    args[1].type = SPK_KARG_BUF;
    args[1].v.p = x;
    args[2].type = SPK_KARG_INT;
    args[2].v.i = off;
    args[3].type = SPK_KARG_INT;
    args[3].v.i = n;
    args[4].type = SPK_KARG_FLOAT;
    args[4].v.f = a;
    args[5].type = SPK_KARG_FLOAT;
    args[5].v.f = b;
    return be->ops->launch(be, p, "axpb", (size_t)n, 6, args, err);
}

/* Launches axpb over n items (not a multiple of 64) into the middle of a guarded buffer and
 * checks every element exactly (a * x + b rounds the same on both sides: no fma contraction). */
static void check_axpb(spk_backend *be, spk_program *p, int n)
{
    const int guard = 100;
    size_t ny = (size_t)(n + 2 * guard);
    float *x = malloc((size_t)n * sizeof *x), *y = sentinels(ny);
    spk_test_fill(x, (size_t)n, -2.0f, 2.0f, 5);
    spk_buffer *dx = alloc_floats(be, (size_t)n), *dy = alloc_floats(be, ny);
    upload(be, dx, x, (size_t)n);
    upload(be, dy, y, ny);
    spk_error err = {0};
    const float a = 1.7f, b = -0.3f;
    cr_assert_eq(launch_axpb(be, p, dy, dx, guard, n, a, b, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(be->ops->sync(be, &err), SPK_OK, "%s", err.msg);
    download(be, dy, y, ny);
    for (size_t i = 0; i < ny; i++) {
        float want = SENTINEL;
        if (i >= (size_t)guard && i < (size_t)(guard + n)) {
            volatile float t = a * x[i - (size_t)guard];
            want = t + b;
        }
        cr_assert_eq(y[i], want, "n=%d: y[%zu] = %.9g, want %.9g", n, i, y[i], want);
    }
    be->ops->release(be, dx);
    be->ops->release(be, dy);
    free(x);
    free(y);
}

Test(opencl_kernel, launch_guarded_items, .timeout = 120)
{
    spk_backend *be = open_dev();
    spk_program *p = build(be, "test.axpb", axpb_src);
    check_axpb(be, p, 1000);
    check_axpb(be, p, 1);
    check_axpb(be, p, 65);
    cr_assert_eq(be->stats.launches, 3);

    /* The second kernel of the same program. */
    spk_error err = {0};
    float v[3] = {1, -2, 3}, w[3];
    spk_buffer *d = alloc_floats(be, 3);
    upload(be, d, v, 3);
    spk_karg args[2] = {{.type = SPK_KARG_BUF, .v.p = d}, {.type = SPK_KARG_INT, .v.i = 3}};
    cr_assert_eq(be->ops->launch(be, p, "neg", 3, 2, args, &err), SPK_OK, "%s", err.msg);
    download(be, d, w, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(w[i], -v[i]);
    be->ops->release(be, d);
    be->ops->program_free(be, p);
    spk_backend_free(be);
}

Test(opencl_kernel, launch_errors, .timeout = 120)
{
    spk_backend *be = open_dev();
    spk_program *p = build(be, "test.axpb", axpb_src);
    spk_buffer *d = alloc_floats(be, 4);
    spk_error err = {0};
    spk_karg args[2] = {{.type = SPK_KARG_BUF, .v.p = d}, {.type = SPK_KARG_INT, .v.i = 4}};

    cr_assert_eq(be->ops->launch(be, p, "nope", 4, 2, args, &err), SPK_ERR_NOTFOUND);
    cr_assert(strstr(err.msg, "'nope'") && strstr(err.msg, "test.axpb") &&
                  strstr(err.msg, "axpb") && strstr(err.msg, "neg"),
              "%s", err.msg);
    cr_assert_eq(be->ops->launch(be, p, "neg", 4, 1, args, &err), SPK_ERR_INVALID);
    cr_assert(strstr(err.msg, "kernel 'neg' of 'test.axpb' takes 2 arguments, 1 given"), "%s",
              err.msg);
    spk_karg swapped[2] = {{.type = SPK_KARG_INT, .v.i = 4}, {.type = SPK_KARG_BUF, .v.p = d}};
    cr_assert_eq(be->ops->launch(be, p, "neg", 4, 2, swapped, &err), SPK_ERR_INVALID);
    cr_assert(strstr(err.msg, "argument 0"), "%s", err.msg);
    spk_karg null_buf[2] = {{.type = SPK_KARG_BUF, .v.p = NULL}, {.type = SPK_KARG_INT, .v.i = 4}};
    cr_assert_eq(be->ops->launch(be, p, "neg", 4, 2, null_buf, &err), SPK_ERR_INVALID);
    /* Zero items: nothing runs, nothing fails. */
    cr_assert_eq(be->ops->launch(be, p, "neg", 0, 2, args, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(be->ops->sync(be, &err), SPK_OK, "%s", err.msg);

    /* A set without OpenCL text builds to an empty program. */
    spk_kernel_set empty = {"test.empty", NULL, NULL};
    spk_program *e = NULL;
    cr_assert_eq(be->ops->program_build(be, &empty, &e, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(be->ops->launch(be, e, "neg", 4, 2, args, &err), SPK_ERR_NOTFOUND);
    be->ops->program_free(be, e);

    be->ops->release(be, d);
    be->ops->program_free(be, p);
    spk_backend_free(be);
}

Test(opencl_kernel, build_failure_names_owner_and_log, .timeout = 120)
{
    spk_backend *be = open_dev();
    static const char bad[] = "SPK_KERNEL void broken(SPK_GLOBAL float *y, const int n)\n"
                              "{\n"
                              "    SPK_FOR_ITEMS(i, n) {\n"
                              "        y[i] = spk_no_such_symbol;\n"
                              "    } SPK_END_ITEMS\n"
                              "}\n";
    spk_kernel_set set = {"test.broken", bad, NULL};
    spk_program *p = (spk_program *)&set; /* must be reset to NULL on failure */
    spk_error err = {0};
    int rc = be->ops->program_build(be, &set, &p, &err);
    cr_assert_eq(rc, SPK_ERR_PLUGIN, "rc %d: %s", rc, err.msg);
    cr_assert_null(p);
    cr_assert(strstr(err.msg, "test.broken"), "%s", err.msg);
    cr_assert(strstr(err.msg, "build log"), "%s", err.msg);
    cr_assert(strstr(err.msg, "spk_no_such_symbol"), "no build-log fragment: %s", err.msg);
    spk_backend_free(be);
}

/* The prelude carries philox.h: a device draws exactly the CPU's numbers. */
Test(opencl_kernel, philox_matches_cpu, .timeout = 120)
{
    static const char src[] =
        "SPK_KERNEL void draw(SPK_GLOBAL float *out, const int n, const int seed)\n"
        "{\n"
        "    SPK_FOR_ITEMS(i, n) {\n"
        "        spk_philox_ctr c;\n"
        "        c.v[0] = (spk_u32)i; c.v[1] = 5u; c.v[2] = SPK_RNG_POISSON; c.v[3] = 0u;\n"
        "        spk_philox_ctr r = spk_philox4x32_10(c, (spk_u32)seed, 0xABCDu);\n"
        "        for (int j = 0; j < 4; j++)\n"
        "            out[4 * i + j] = spk_u32_to_unit(r.v[j]);\n"
        "    } SPK_END_ITEMS\n"
        "}\n";
    spk_backend *be = open_dev();
    spk_program *p = build(be, "test.philox", src);
    const int n = 333, seed = 42;
    spk_buffer *d = alloc_floats(be, 4 * (size_t)n);
    spk_error err = {0};
    spk_karg args[3] = {{.type = SPK_KARG_BUF, .v.p = d},
                        {.type = SPK_KARG_INT, .v.i = n},
                        {.type = SPK_KARG_INT, .v.i = seed}};
    cr_assert_eq(be->ops->launch(be, p, "draw", (size_t)n, 3, args, &err), SPK_OK, "%s", err.msg);
    float *got = malloc(4 * (size_t)n * sizeof *got);
    download(be, d, got, 4 * (size_t)n);
    for (int i = 0; i < n; i++) {
        spk_philox_ctr c = {{(spk_u32)i, 5u, SPK_RNG_POISSON, 0u}};
        spk_philox_ctr r = spk_philox4x32_10(c, (spk_u32)seed, 0xABCDu);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(got[4 * i + j], spk_u32_to_unit(r.v[j]), "draw %d.%d", i, j);
    }
    free(got);
    be->ops->release(be, d);
    be->ops->program_free(be, p);
    spk_backend_free(be);
}

/* ---- the binary cache ---- */

/* The single .clbin file in dir (malloc'ed path), or NULL. */
static char *cache_file(const char *dir)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return NULL;
    char *found = NULL;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dh))) {
        size_t len = strlen(e->d_name);
        if (len > 6 && strcmp(e->d_name + len - 6, ".clbin") == 0) {
            count++;
            free(found);
            found = malloc(strlen(dir) + len + 2);
            sprintf(found, "%s/%s", dir, e->d_name);
        }
    }
    closedir(dh);
    cr_assert_leq(count, 1, "%d cache files in %s", count, dir);
    return found;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return st.st_ino;
}

static int starts_with_magic(const char *path)
{
    char m[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t r = fread(m, 1, 8, f);
    fclose(f);
    return r == 8 && memcmp(m, "SPKOCLB2", 8) == 0;
}

Test(opencl_cache, binaries_cached_and_corrupt_files_rebuilt, .timeout = 120)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kcache/sub", spk_test_tmpdir());
    setenv("SPIKECL_CACHE_DIR", dir, 1);
    spk_backend *be = open_dev();

    spk_program *p = build(be, "test.axpb", axpb_src);
    be->ops->program_free(be, p);
    char *path = cache_file(dir);
    cr_assert_not_null(path, "no cache file written under %s", dir);
    cr_assert(starts_with_magic(path));
    ino_t ino = inode_of(path);
    /* Written through fsutil: private, and no temporary file left beside it. */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    char ls[700], *out = NULL;
    snprintf(ls, sizeof ls, "ls -a '%s' | grep -c '[.]tmp[.]'", dir);
    spk_test_run(ls, &out);
    cr_expect_str_eq(out, "0\n", "temporary files left in %s", dir);
    free(out);

    /* A hit leaves the file alone (a rebuild would replace it by rename: a new inode). */
    p = build(be, "test.axpb", axpb_src);
    check_axpb(be, p, 70);
    be->ops->program_free(be, p);
    cr_assert_eq(inode_of(path), ino, "cache hit rewrote the file");

    /* Corrupt the binary in place: ignored, rebuilt, replaced. */
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    fseek(f, 60, SEEK_SET);
    fputs("garbage garbage garbage", f);
    fclose(f);
    p = build(be, "test.axpb", axpb_src);
    check_axpb(be, p, 70);
    be->ops->program_free(be, p);
    cr_assert_neq(inode_of(path), ino, "corrupt cache file was not replaced");
    cr_assert(starts_with_magic(path));

    /* Truncated to a partial header. */
    cr_assert_eq(truncate(path, 12), 0);
    p = build(be, "test.axpb", axpb_src);
    check_axpb(be, p, 70);
    be->ops->program_free(be, p);
    cr_assert(starts_with_magic(path));

    /* Unreadable: a folder where the file should be. Still builds; nothing is written. */
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0700), 0);
    p = build(be, "test.axpb", axpb_src);
    check_axpb(be, p, 70);
    be->ops->program_free(be, p);
    rmdir(path);

    /* A different source is a different file. */
    p = build(be, "test.axpb", "SPK_KERNEL void one(SPK_GLOBAL float *y) { y[0] = 1.0f; }\n");
    be->ops->program_free(be, p);
    char *other = cache_file(dir);
    cr_assert_not_null(other);
    free(other);
    free(path);
    spk_backend_free(be);
}

/* A program from the cache must keep the launch's argument check: OpenCL promises argument info
 * only for programs built from source, so the backend keeps the signatures with the entry. */
Test(opencl_cache, cached_program_keeps_argument_check, .timeout = 120)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kcache-sig", spk_test_tmpdir());
    setenv("SPIKECL_CACHE_DIR", dir, 1);
    spk_backend *be = open_dev();
    spk_program *p = build(be, "test.axpb", axpb_src);
    cr_assert_not(p->from_cache);
    be->ops->program_free(be, p);
    /* the entry ends with the signatures the first build reported */
    char *path = cache_file(dir);
    cr_assert_not_null(path);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char file[1 << 20];
    size_t n = fread(file, 1, sizeof file - 1, f);
    fclose(f);
    const char want[] = "axpb BBIIFF\nneg BI\n";
    cr_assert(n > sizeof want && memcmp(file + n - (sizeof want - 1), want, sizeof want - 1) == 0,
              "no signatures at the end of %s", path);
    free(path);

    p = build(be, "test.axpb", axpb_src);
    cr_assert(p->from_cache, "second build did not come from %s", dir);
    for (size_t i = 0; i < p->nkernels; i++)
        cr_assert_null(strchr(p->kernels[i].sig, '?'), "kernel %s: signature %s",
                       p->kernels[i].name, p->kernels[i].sig);
    spk_buffer *d = alloc_floats(be, 4);
    spk_error err = {0};
    spk_karg swapped[2] = {{.type = SPK_KARG_INT, .v.i = 4}, {.type = SPK_KARG_BUF, .v.p = d}};
    cr_assert_eq(be->ops->launch(be, p, "neg", 4, 2, swapped, &err), SPK_ERR_INVALID);
    cr_assert(strstr(err.msg, "argument 0 is a buffer, an int was given"), "%s", err.msg);
    check_axpb(be, p, 70);
    be->ops->release(be, d);
    be->ops->program_free(be, p);
    spk_backend_free(be);
}

/* Hazard: x / y and sqrt may be 2.5-3 ulp off unless the build asks for correct rounding, which a
 * device that supports it must get; SPIKECL_CL_BUILD_OPTIONS is appended (the -cl-opt-disable
 * test mode) and keys the cache apart. */
Test(opencl_build, options_rounding_and_extra, .timeout = 120)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kcache-opts", spk_test_tmpdir());
    setenv("SPIKECL_CACHE_DIR", dir, 1);
    unsetenv("SPIKECL_CL_BUILD_OPTIONS");
    spk_backend *be = open_dev();
    spk_ocl *o = be->impl;
    const int rounded = (o->fp_config & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
    cr_assert_eq(strstr(o->build_options, "-cl-fp32-correctly-rounded-divide-sqrt") != NULL,
                 rounded, "device %s rounding; options '%s'", rounded ? "reports" : "lacks",
                 o->build_options);
    spk_program *p = build(be, "test.axpb", axpb_src);
    cr_assert_not(p->from_cache);
    be->ops->program_free(be, p);
    spk_backend_free(be);

    setenv("SPIKECL_CL_BUILD_OPTIONS", "-cl-opt-disable", 1);
    be = open_dev();
    o = be->impl;
    cr_assert(strstr(o->build_options, " -cl-opt-disable"), "%s", o->build_options);
    p = build(be, "test.axpb", axpb_src);
    cr_assert_not(p->from_cache, "other options must not share the cache entry");
    check_axpb(be, p, 70);
    be->ops->program_free(be, p);
    spk_backend_free(be);
    unsetenv("SPIKECL_CL_BUILD_OPTIONS");
}

/* SPIKECL_CL_POISON=1: a new buffer reads back as NaN (GPU memory is not zeroed). */
Test(opencl_memory, poison_fills_new_buffers_with_nan)
{
    setenv("SPIKECL_CL_POISON", "1", 1);
    spk_backend *be = open_dev();
    unsetenv("SPIKECL_CL_POISON");
    float v[37];
    spk_buffer *b = alloc_floats(be, 37);
    download(be, b, v, 37);
    for (int i = 0; i < 37; i++)
        cr_assert(isnan(v[i]), "v[%d] = %g", i, v[i]);
    be->ops->release(be, b);
    spk_backend_free(be);
}

/* ---- profiling ---- */

Test(opencl_profile, per_kernel_times, .timeout = 120)
{
    setenv("SPIKECL_PROFILE", "1", 1);
    spk_backend *be = open_dev();
    spk_program *p = build(be, "test.axpb", axpb_src);
    spk_buffer *x = alloc_floats(be, 100), *y = alloc_floats(be, 100);
    spk_error err = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(launch_axpb(be, p, y, x, 0, 100, 1.0f, 0.0f, &err), SPK_OK, "%s", err.msg);
    spk_kernel_profile *kp = NULL;
    int nk = -1;
    cr_assert_eq(spk_backend_profile(be, &kp, &nk, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(nk, 1, "%d kernels in the profile", nk);
    cr_assert_str_eq(kp[0].name, "test.axpb:axpb");
    cr_assert_eq(kp[0].calls, 3);
    cr_assert(kp[0].ms >= 0.0, "%g ms", kp[0].ms);
    spk_kernel_profile_free(kp);
    be->ops->release(be, x);
    be->ops->release(be, y);
    be->ops->program_free(be, p);
    spk_backend_free(be);

    unsetenv("SPIKECL_PROFILE");
    be = open_dev();
    cr_assert_eq(spk_backend_profile(be, &kp, &nk, &err), SPK_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "keeps no per-kernel profile"), "%s", err.msg);
    cr_assert_eq(nk, 0);
    spk_backend_free(be);
    /* the CPU has no profile operation */
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(spk_backend_profile(be, &kp, &nk, &err), SPK_ERR_UNSUPPORTED);
    cr_assert_str_eq(err.msg, "cpu keeps no per-kernel profile");
    spk_backend_free(be);
}

/* ---- choosing devices ---- */

static int open_status(const char *spec, spk_error *err)
{
    spk_backend *be = NULL;
    int rc = spk_backend_opencl_open(spec, &be, err);
    if (rc == SPK_OK) {
        cr_assert_not_null(be);
        spk_backend_free(be);
    } else {
        cr_assert_null(be);
    }
    return rc;
}

Test(opencl_devices, bad_device_strings)
{
    const char *bad[] = {"opencl:x:y", "opencl:",      "openclx",     "opencl:0:", "opencl::0",
                         "opencl:1",   "opencl:0:0:0", "opencl:-1:0", "cuda"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spk_error err = {0};
        cr_assert_eq(open_status(bad[i], &err), SPK_ERR_INVALID, "'%s': %s", bad[i], err.msg);
        char want[256];
        snprintf(want, sizeof want,
                 "bad device string '%s': expected opencl, opencl:P:D or opencl:NAME", bad[i]);
        cr_assert_str_eq(err.msg, want);
    }
}

/* The device count of platform 0 from the listing, and the name of opencl:0:0. */
static int platform0_devices(char *name0, size_t n)
{
    spk_error err = {0};
    spk_device_info *list = NULL;
    int nd = 0, count = 0;
    cr_assert_eq(spk_backend_opencl_devices(&list, &nd, &err), SPK_OK, "%s", err.msg);
    for (int i = 0; i < nd; i++)
        if (strncmp(list[i].id, "opencl:0:", 9) == 0) {
            if (count == 0)
                snprintf(name0, n, "%s", list[i].name);
            count++;
        }
    spk_device_list_free(list);
    return count;
}

/* The id of the first OpenCL GPU in the listing, or 0. */
static int first_gpu(char *id, size_t n)
{
    spk_device_info *list = NULL;
    int nd = 0, found = 0;
    if (spk_backend_opencl_devices(&list, &nd, NULL) == SPK_OK)
        for (int i = 0; i < nd && !found; i++)
            if (list[i].is_gpu) {
                snprintf(id, n, "%s", list[i].id);
                found = 1;
            }
    spk_device_list_free(list);
    return found;
}

Test(opencl_devices, index_out_of_range_and_no_match)
{
    spk_backend_free(open_dev());
    char name0[256] = "";
    int nd = platform0_devices(name0, sizeof name0);
    spk_error err = {0};

    cr_assert_eq(open_status("opencl:0:99", &err), SPK_ERR_NOTFOUND, "%s", err.msg);
    cr_assert(strncmp(err.msg, "device index 99 out of range: platform 0 (", 42) == 0, "%s",
              err.msg);
    char tail[64];
    snprintf(tail, sizeof tail, ") has %d device%s", nd, nd == 1 ? "" : "s");
    size_t ml = strlen(err.msg), tl = strlen(tail);
    cr_assert(ml > tl && strcmp(err.msg + ml - tl, tail) == 0, "%s (want ...%s)", err.msg, tail);

    cr_assert_eq(open_status("opencl:99:0", &err), SPK_ERR_NOTFOUND, "%s", err.msg);
    cr_assert(strncmp(err.msg, "platform index 99 out of range", 30) == 0, "%s", err.msg);

    cr_assert_eq(open_status("opencl:nosuchdevice-xyz", &err), SPK_ERR_NOTFOUND, "%s", err.msg);
    char want[512];
    snprintf(want, sizeof want,
             "no OpenCL device matches 'nosuchdevice-xyz'; available: "
             "opencl:0:0 (%s)",
             name0);
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "%s\nwant: %s", err.msg, want);
}

Test(opencl_devices, open_by_index_and_by_name)
{
    spk_backend_free(open_dev());
    char name0[256] = "";
    if (platform0_devices(name0, sizeof name0) == 0)
        cr_skip_test("platform 0 has no device");
    spk_error err = {0};
    spk_backend *be = NULL;
    cr_assert_eq(spk_backend_opencl_open("opencl:0:0", &be, &err), SPK_OK, "%s", err.msg);
    cr_assert(strncmp(be->description, "opencl:0:0 ", 11) == 0, "%s", be->description);
    cr_assert(strstr(be->description, name0), "%s", be->description);
    spk_backend_free(be);

    /* Case-insensitive substring of the name. */
    char upper[256];
    size_t len = strlen(name0);
    cr_assert_gt(len, 2);
    for (size_t i = 0; i <= len; i++)
        upper[i] = (char)((name0[i] >= 'a' && name0[i] <= 'z') ? name0[i] - 32 : name0[i]);
    upper[len - 1] = '\0'; /* a substring, not the whole name */
    char spec[300];
    snprintf(spec, sizeof spec, "opencl:%s", upper + 1);
    cr_assert_eq(spk_backend_opencl_open(spec, &be, &err), SPK_OK, "%s: %s", spec, err.msg);
    cr_assert(strstr(be->description, name0), "%s", be->description);
    spk_backend_free(be);
}

Test(opencl_devices, default_prefers_gpu)
{
    spk_backend *be = NULL;
    spk_error err = {0};
    int rc = spk_backend_opencl_open("opencl", &be, &err);
    if (rc == SPK_ERR_NOTFOUND)
        spk_test_no_device(err.msg);
    cr_assert_eq(rc, SPK_OK, "%s", err.msg);
    char gpu[64];
    if (first_gpu(gpu, sizeof gpu)) {
        strcat(gpu, " ");
        cr_assert(strncmp(be->description, gpu, strlen(gpu)) == 0, "%s (first GPU %s)",
                  be->description, gpu);
    } else {
        cr_assert(strncmp(be->description, "opencl:", 7) == 0, "%s", be->description);
    }
    spk_backend_free(be);
}

Test(opencl_devices, list_format)
{
    spk_backend_free(open_dev());
    spk_error err = {0};
    spk_device_info *list = NULL;
    int nd = 0;
    cr_assert_eq(spk_backend_opencl_devices(&list, &nd, &err), SPK_OK, "%s", err.msg);
    cr_assert_gt(nd, 0, "empty listing with a device present");
    for (int i = 0; i < nd; i++) {
        const spk_device_info *d = &list[i];
        unsigned p, dv;
        char extra;
        cr_assert_eq(sscanf(d->id, "opencl:%u:%u%c", &p, &dv, &extra), 2, "%s", d->id);
        cr_assert_neq(d->name[0], '\0', "%s has no name", d->id);
        cr_assert_gt(d->compute_units, 0, "%s", d->id);
        cr_assert_gt(d->memory_bytes, 0, "%s", d->id);
        cr_assert_gt(d->max_work_group, 0, "%s", d->id);
        cr_assert(strcmp(d->kind, "GPU") == 0 || strcmp(d->kind, "CPU") == 0 ||
                      strcmp(d->kind, "ACCEL") == 0 || strcmp(d->kind, "OTHER") == 0,
                  "%s", d->kind);
        cr_assert_eq(d->is_gpu, strcmp(d->kind, "GPU") == 0, "%s", d->id);
        /* every listed id opens */
        spk_backend *be = NULL;
        cr_assert_eq(spk_backend_open(d->id, &be, &err), SPK_OK, "%s: %s", d->id, err.msg);
        spk_backend_free(be);
    }
    /* the whole registry lists the CPU first, then these */
    spk_device_info *all = NULL;
    int na = 0;
    cr_assert_eq(spk_device_list(&all, &na, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(na, nd + 1);
    cr_assert_str_eq(all[0].id, "cpu");
    for (int i = 0; i < nd; i++)
        cr_assert_str_eq(all[i + 1].id, list[i].id);
    spk_device_list_free(all);
    spk_device_list_free(list);
}

/* With no ICD (the loader pointed at an empty vendor folder), the message says what to install. */
Test(opencl_devices, no_platform_message)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/no-vendors", spk_test_tmpdir());
    mkdir(dir, 0700);
    setenv("OCL_ICD_VENDORS", dir, 1);
    spk_error err = {0};
    cr_assert_eq(open_status("opencl", &err), SPK_ERR_NOTFOUND, "%s", err.msg);
    cr_assert_str_eq(err.msg,
                     "no OpenCL platform found (is an ICD installed? e.g. pocl-opencl-icd)");
    cr_assert_eq(open_status("opencl:x:y", &err), SPK_ERR_INVALID, "%s", err.msg);
    spk_device_info *list = NULL;
    int nd = -1;
    cr_assert_eq(spk_backend_opencl_devices(&list, &nd, &err), SPK_OK, "%s", err.msg);
    cr_assert_eq(nd, 0);
    spk_device_list_free(list);
    char gpu[32];
    cr_assert_eq(first_gpu(gpu, sizeof gpu), 0);
    /* "auto" falls back to the CPU */
    unsetenv("SPIKECL_DEVICE");
    cr_assert_eq(spk_backend_resolve("auto", gpu, sizeof gpu, &err), SPK_OK, "%s", err.msg);
    cr_assert_str_eq(gpu, "cpu");
}

/* OpenCL C 1.2 has no variadic macros, so the backend blanks SPK_CPU_ENTRY(...) itself: every
 * invocation goes, line numbers stay, and a mention in a comment or string swallows nothing. */
Test(opencl_program_text, cpu_entries_blanked_lines_kept)
{
    static const char src[] = "/* see SPK_CPU_ENTRY( in kernel.h */\n"
                              "SPK_KERNEL void k(SPK_GLOBAL float *y, const int n)\n"
                              "{ y[0] = n; }\n"
                              "SPK_CPU_ENTRY(k, B,\n"
                              "              I)\n"
                              "// SPK_CPU_ENTRY(\n"
                              "#define S \"SPK_CPU_ENTRY(\"\n"
                              "SPK_KERNEL void k2(SPK_GLOBAL float *y) { y[0] = 1.0f; }\n"
                              "MY_SPK_CPU_ENTRY(k2)\n";
    char *text = spk_backend_opencl_program_text("t", src);
    cr_assert_not_null(text);
    const char *body = strstr(text, "#line 1 \"t\"\n");
    cr_assert_not_null(body);
    body += strlen("#line 1 \"t\"\n");
    cr_assert_null(strstr(body, "SPK_CPU_ENTRY(k,"), "%s", body);
    cr_assert_null(strstr(body, "I)"), "%s", body);
    cr_assert_not_null(strstr(body, "SPK_KERNEL void k2("), "%s", body);
    cr_assert_not_null(strstr(body, "#define S \"SPK_CPU_ENTRY(\""), "%s", body);
    cr_assert_not_null(strstr(body, "MY_SPK_CPU_ENTRY(k2)"), "%s", body);
    int lines = 0;
    for (const char *p = body; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 9 + 1, "the source's 9 lines plus the final newline: %d", lines);
    /* the shared headers must not use variadic macros either */
    cr_assert_null(strstr(text, "...)"), "a variadic macro in the program text");
    free(text);
}
