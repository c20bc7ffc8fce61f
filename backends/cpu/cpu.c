/* The CPU backend: host memory, GEMM through CBLAS (OpenBLAS), and the plugins' single-source
 * kernels compiled as C, each looping over its work items with OpenMP. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spikecl/backend.h"

struct spk_buffer {
    size_t bytes;
    float *data;
};

struct spk_program {
    const spk_kernel_set *set;
    const spk_cpu_kernel *last; /* launches repeat: remember the last kernel found */
};

typedef struct cpu_impl {
    int threads;
} cpu_impl;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cpu_destroy(spk_backend *be)
{
    free(be->impl);
    free(be);
}

static int cpu_alloc(spk_backend *be, size_t bytes, spk_buffer **out, spk_error *err)
{
    spk_buffer *b = malloc(sizeof *b);
    /* 64-byte alignment keeps vector loads and OpenBLAS panels on cache lines */
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (!b || posix_memalign(&p, 64, rounded ? rounded : 64) != 0) {
        free(b);
        return spk_error_set(err, SPK_ERR_NOMEM, "cpu: cannot allocate %zu bytes", bytes);
    }
    b->bytes = bytes;
    b->data = p;
    be->stats.bytes_allocated += bytes;
    if (be->stats.bytes_allocated > be->stats.bytes_peak)
        be->stats.bytes_peak = be->stats.bytes_allocated;
    *out = b;
    return SPK_OK;
}

static void cpu_release(spk_backend *be, spk_buffer *b)
{
    if (!b)
        return;
    be->stats.bytes_allocated -= b->bytes;
    free(b->data);
    free(b);
}

static int check_range(const spk_buffer *b, size_t off, size_t bytes, const char *op,
                       spk_error *err)
{
    if (off > b->bytes || bytes > b->bytes - off)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "cpu: %s of %zu bytes at offset %zu overruns a %zu-byte buffer", op,
                             bytes, off, b->bytes);
    return SPK_OK;
}

static int cpu_upload(spk_backend *be, spk_buffer *dst, size_t off, const void *src, size_t bytes,
                      spk_error *err)
{
    (void)be;
    int rc = check_range(dst, off, bytes, "upload", err);
    if (rc)
        return rc;
    memcpy((char *)dst->data + off, src, bytes);
    return SPK_OK;
}

static int cpu_download(spk_backend *be, const spk_buffer *src, size_t off, void *dst, size_t bytes,
                        spk_error *err)
{
    (void)be;
    int rc = check_range(src, off, bytes, "download", err);
    if (rc)
        return rc;
    memcpy(dst, (const char *)src->data + off, bytes);
    return SPK_OK;
}

static int cpu_fill(spk_backend *be, spk_buffer *b, size_t off, size_t count, float v,
                    spk_error *err)
{
    (void)be;
    int rc = check_range(b, off * sizeof(float), count * sizeof(float), "fill", err);
    if (rc)
        return rc;
    float *p = b->data + off;
    for (size_t i = 0; i < count; i++)
        p[i] = v;
    return SPK_OK;
}

static int cpu_copy(spk_backend *be, spk_buffer *dst, size_t doff, const spk_buffer *src,
                    size_t soff, size_t bytes, spk_error *err)
{
    (void)be;
    int rc = check_range(dst, doff, bytes, "copy", err);
    if (!rc)
        rc = check_range(src, soff, bytes, "copy", err);
    if (rc)
        return rc;
    memmove((char *)dst->data + doff, (const char *)src->data + soff, bytes);
    return SPK_OK;
}

/* Bytes a row-major operand of `rows` x `cols` with leading dimension ld spans from its offset. */
static size_t span(size_t rows, size_t cols, size_t ld)
{
    return rows ? ((rows - 1) * ld + cols) * sizeof(float) : 0;
}

static int cpu_gemm(spk_backend *be, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                    const spk_buffer *a, size_t aoff, size_t lda, const spk_buffer *b, size_t boff,
                    size_t ldb, float beta, spk_buffer *c, size_t coff, size_t ldc, spk_error *err)
{
    if (m == 0 || n == 0)
        return SPK_OK;
    size_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    if (lda < ac || ldb < bc || ldc < n)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "cpu gemm: leading dimension too small (lda %zu, ldb %zu, ldc %zu)",
                             lda, ldb, ldc);
    int rc = check_range(a, aoff * sizeof(float), span(ar, ac, lda), "gemm A", err);
    if (!rc)
        rc = check_range(b, boff * sizeof(float), span(br, bc, ldb), "gemm B", err);
    if (!rc)
        rc = check_range(c, coff * sizeof(float), span(m, n, ldc), "gemm C", err);
    if (rc)
        return rc;
    uint64_t t0 = now_ns();
    if (k == 0) {
        /* BLAS leaves C untouched when k = 0 only if beta = 1; do the scaling ourselves */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                c->data[coff + i * ldc + j] *= beta;
    } else {
        /* OpenBLAS runs single-threaded (see spk_backend_cpu_new) and the OpenMP team splits C
         * into blocks of rows (or of columns when C is wide): one thread pool for kernels and
         * GEMM, instead of two pools spinning against each other on few cores. */
        int parts = omp_get_max_threads();
        if ((double)m * (double)n * (double)k < 2e5)
            parts = 1;
        int by_rows = m >= n;
        size_t len = by_rows ? m : n;
        if ((size_t)parts > len)
            parts = (int)len;
        const float *A = a->data + aoff, *Bm = b->data + boff;
        float *C = c->data + coff;
#pragma omp parallel for num_threads(parts) schedule(static) if (parts > 1)
        for (int p = 0; p < parts; p++) {
            size_t lo = len * (size_t)p / (size_t)parts, hi = len * (size_t)(p + 1) / (size_t)parts;
            if (hi == lo)
                continue;
            if (by_rows) /* rows lo..hi of op(A) and C */
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                            tb ? CblasTrans : CblasNoTrans, (blasint)(hi - lo), (blasint)n,
                            (blasint)k, alpha, ta ? A + lo : A + lo * lda, (blasint)lda, Bm,
                            (blasint)ldb, beta, C + lo * ldc, (blasint)ldc);
            else /* columns lo..hi of op(B) and C */
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                            tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)(hi - lo),
                            (blasint)k, alpha, A, (blasint)lda, tb ? Bm + lo * ldb : Bm + lo,
                            (blasint)ldb, beta, C + lo, (blasint)ldc);
        }
    }
    be->stats.gemm_ns += now_ns() - t0;
    be->stats.gemm_calls++;
    return SPK_OK;
}

static int cpu_program_build(spk_backend *be, const spk_kernel_set *set, spk_program **out,
                             spk_error *err)
{
    (void)be;
    if (!set->cpu_kernels)
        return spk_error_set(err, SPK_ERR_UNSUPPORTED, "%s: no kernels compiled for the CPU",
                             set->owner ? set->owner : "?");
    spk_program *p = calloc(1, sizeof *p);
    if (!p)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    p->set = set;
    *out = p;
    return SPK_OK;
}

static void cpu_program_free(spk_backend *be, spk_program *p)
{
    (void)be;
    free(p);
}

/* Checks the arguments against the kernel's signature ("B, B, I, F"). */
static int check_signature(const spk_kernel_set *set, const spk_cpu_kernel *k, int nargs,
                           const spk_karg *args, spk_error *err)
{
    int i = 0;
    for (const char *s = k->signature; *s; s++) {
        if (*s != 'B' && *s != 'I' && *s != 'F')
            continue;
        if (i >= nargs || args[i].type != *s)
            break;
        i++;
    }
    int expected = 0;
    for (const char *s = k->signature; *s; s++)
        expected += (*s == 'B' || *s == 'I' || *s == 'F');
    if (i != expected || nargs != expected)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "%s: kernel '%s' expects arguments (%s), the launch passed %d "
                             "(mismatch at argument %d)",
                             set->owner ? set->owner : "?", k->name, k->signature, nargs, i + 1);
    return SPK_OK;
}

#define SPK_CPU_MAX_ARGS 24

static int cpu_launch(spk_backend *be, spk_program *p, const char *name, size_t items, int nargs,
                      const spk_karg *args, spk_error *err)
{
    (void)items; /* the kernel loops over its own n */
    const spk_cpu_kernel *k = p->last;
    if (!k || strcmp(k->name, name) != 0) {
        k = NULL;
        for (const spk_cpu_kernel *c = p->set->cpu_kernels; c->name; c++)
            if (strcmp(c->name, name) == 0) {
                k = c;
                break;
            }
        if (!k)
            return spk_error_set(err, SPK_ERR_NOTFOUND, "%s: no kernel named '%s'",
                                 p->set->owner ? p->set->owner : "?", name);
        p->last = k;
    }
    if (nargs > SPK_CPU_MAX_ARGS)
        return spk_error_set(err, SPK_ERR_INVALID, "kernel '%s': more than %d arguments", name,
                             SPK_CPU_MAX_ARGS);
    int rc = check_signature(p->set, k, nargs, args, err);
    if (rc)
        return rc;
    spk_karg a[SPK_CPU_MAX_ARGS];
    for (int i = 0; i < nargs; i++) {
        a[i] = args[i];
        if (a[i].type == SPK_KARG_BUF) {
            const spk_buffer *b = args[i].v.p;
            if (!b)
                return spk_error_set(err, SPK_ERR_INVALID, "kernel '%s': argument %d is NULL", name,
                                     i + 1);
            a[i].v.p = b->data;
        }
    }
    uint64_t t0 = now_ns();
    k->entry(a);
    be->stats.launch_ns += now_ns() - t0;
    be->stats.launches++;
    return SPK_OK;
}

static int cpu_sync(spk_backend *be, spk_error *err)
{
    (void)be;
    (void)err;
    return SPK_OK;
}

static const spk_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_upload,
    .download = cpu_download,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .gemm = cpu_gemm,
    .program_build = cpu_program_build,
    .program_free = cpu_program_free,
    .launch = cpu_launch,
    .sync = cpu_sync,
};

int spk_backend_cpu_new(int threads, spk_backend **out, spk_error *err)
{
    spk_backend *be = calloc(1, sizeof *be);
    cpu_impl *impl = calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    if (threads > 0)
        omp_set_num_threads(threads);
    openblas_set_num_threads(1);
    impl->threads = threads > 0 ? threads : omp_get_max_threads();
    be->ops = &cpu_ops;
    be->impl = impl;
    snprintf(be->description, sizeof be->description, "cpu (%s, %d threads)", openblas_get_config(),
             impl->threads);
    *out = be;
    return SPK_OK;
}

/* The registry's entry points (backends/registry.c): the CPU is the one device "cpu". */
int spk_backend_cpu_open(const char *id, spk_backend **out, spk_error *err);
int spk_backend_cpu_devices(spk_device_info **out, int *n, spk_error *err);

int spk_backend_cpu_open(const char *id, spk_backend **out, spk_error *err)
{
    if (strcmp(id, "cpu") != 0)
        return spk_error_set(err, SPK_ERR_INVALID, "bad device string '%s': the CPU is just 'cpu'",
                             id);
    return spk_backend_cpu_new(0, out, err);
}

int spk_backend_cpu_devices(spk_device_info **out, int *n, spk_error *err)
{
    spk_device_info *d = calloc(1, sizeof *d);
    if (!d)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    snprintf(d->id, sizeof d->id, "cpu");
    snprintf(d->name, sizeof d->name, "the host CPU (OpenBLAS + OpenMP)");
    snprintf(d->driver, sizeof d->driver, "%s", openblas_get_config());
    snprintf(d->kind, sizeof d->kind, "CPU");
    d->compute_units = omp_get_num_procs();
    *out = d;
    *n = 1;
    return SPK_OK;
}
