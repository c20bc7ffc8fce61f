/* The CPU backend: host memory, GEMM through CBLAS (OpenBLAS), and the plugins' single-source
 * kernels compiled as C, each looping over its work items with OpenMP. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
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
    int poison; /* SPIKECL_CPU_POISON=1: new buffers hold NaN (tests; as SPIKECL_CL_POISON) */
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
    if (((cpu_impl *)be->impl)->poison) {
        /* what nobody wrote reads as NaN, not as whatever the allocator handed back */
        float *f = p;
        for (size_t i = 0; i < rounded / sizeof(float); i++)
            f[i] = NAN;
    }
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
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    /* the session zeroes every weight gradient each step: memset streams; -O2's cheap
     * vectoriser leaves a loop of unknown length scalar, hence the simd pragma for the rest */
    if (bits == 0) {
        memset(p, 0, count * sizeof *p);
    } else {
#pragma omp simd
        for (size_t i = 0; i < count; i++)
            p[i] = v;
    }
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

/* Skinny GEMMs. OpenBLAS 0.3.21 runs a product with ~10 columns (or rows) of C at half its
 * speed or less, and the output layers of the MLPs are that shape: y = x W^T with n = 10
 * outputs, grad_W = gy^T x with m = 10 and grad_x = gy W with k = 10. Three hand kernels take
 * them, where measured faster (min and median of repeated runs, one thread, dot and outer on
 * an AVX-512 Zen 5, bcast on a Zen 4, in the bounds of skinny_kind):
 *   dot:   ta = 0, tb = 1, 2 <= n <= 12: each row of C is n dot products along k, kept in n vector
 *          accumulators and reduced by one shuffle tree (3200 x 10 x 300: 290 -> 155 us);
 *   outer: ta = 1, tb = 0, 8 <= m <= 11: a 16-column strip of C in m accumulators, adding
 *          A[r, i] * B[r, strip] over a block of rows of B that stays in L2 (10 x 300 x 3200:
 *          280 -> 135 us);
 *   bcast: ta = 0, tb = 0, 3 <= k <= 12: the k rows of a 16-column strip of B in registers,
 *          a row of C's strip one chain of k multiply-adds of broadcast A[r, j], the rows in
 *          blocks that keep C's strips in cache (3200 x 300 x 10: 300 -> 260 us, OpenBLAS
 *          zeroing C first; 9984 x 800 x 10: 4.0 -> 3.2 ms; 3200 x 784 x 10 is ~6% slower).
 * They sum in another order than OpenBLAS (within float32 summation error, like any GEMM
 * here), the same order whatever the thread split. Vectors are GCC's vector extensions with
 * fused multiply-adds (contraction on for these functions only); without AVX-512 the 64-byte
 * vectors lower badly, so other builds keep OpenBLAS. */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define SPK_SKINNY 1
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")

#define SK_W 16 /* floats per vector */
typedef float sk_vf __attribute__((vector_size(64)));
typedef float sk_vfu __attribute__((vector_size(64), aligned(4), may_alias));
typedef int sk_vi __attribute__((vector_size(64)));
#define SK_INLINE static inline __attribute__((always_inline))

SK_INLINE sk_vf sk_load(const float *p)
{
    return *(const sk_vfu *)p;
}

/* Lane j of the result is the sum of the lanes of a[j]: a transpose-and-add tree, 15 pairs. */
SK_INLINE sk_vf sk_hsum16(const sk_vf *a)
{
    const sk_vi e1 = {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30};
    const sk_vi o1 = {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31};
    const sk_vi e2 = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
    const sk_vi o2 = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
    const sk_vi e3 = {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27};
    const sk_vi o3 = {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31};
    const sk_vi e4 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const sk_vi o4 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
    sk_vf s1[8], s2[4], s3[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) /* lane 2q + u: pair q of a[2i + u] */
        s1[i] = __builtin_shuffle(a[2 * i], a[2 * i + 1], e1) +
                __builtin_shuffle(a[2 * i], a[2 * i + 1], o1);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) /* lane 4q + u: quad q of a[4i + u] */
        s2[i] = __builtin_shuffle(s1[2 * i], s1[2 * i + 1], e2) +
                __builtin_shuffle(s1[2 * i], s1[2 * i + 1], o2);
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) /* lane 8q + u: half q of a[8i + u] */
        s3[i] = __builtin_shuffle(s2[2 * i], s2[2 * i + 1], e3) +
                __builtin_shuffle(s2[2 * i], s2[2 * i + 1], o3);
    return __builtin_shuffle(s3[0], s3[1], e4) + __builtin_shuffle(s3[0], s3[1], o4);
}

/* C[r, j] = alpha sum_k A[r, k] Bt[j, k] + beta C[r, j] for r < m, j < NJ; k >= SK_W. The
 * last partial vector of k is read as the vector ending at k, its lanes already counted
 * masked out of the products. beta = 0 never reads C (BLAS). */
SK_INLINE void sk_dot_body(const int NJ, size_t m, size_t k, float alpha, const float *A,
                           size_t lda, const float *Bt, size_t ldb, float beta, float *C,
                           size_t ldc)
{
    const size_t kv = k / SK_W * SK_W;
    sk_vi tail;
    for (int l = 0; l < SK_W; l++)
        tail[l] = (size_t)l >= SK_W - (k - kv) ? -1 : 0;
    for (size_t r = 0; r < m; r++) {
        const float *a = A + r * lda;
        sk_vf acc[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            acc[j] = (sk_vf){0};
        for (size_t kk = 0; kk < kv; kk += SK_W) {
            const sk_vf x = sk_load(a + kk);
#pragma GCC unroll 16
            for (int j = 0; j < NJ; j++)
                acc[j] = x * sk_load(Bt + j * ldb + kk) + acc[j];
        }
        if (kv < k) {
            const size_t kk = k - SK_W;
            const sk_vf x = sk_load(a + kk);
#pragma GCC unroll 16
            for (int j = 0; j < NJ; j++)
                acc[j] += (sk_vf)((sk_vi)(x * sk_load(Bt + j * ldb + kk)) & tail);
        }
        const sk_vf s = sk_hsum16(acc);
        float *c = C + r * ldc;
        for (int j = 0; j < NJ; j++)
            c[j] = beta == 0.0f ? alpha * s[j] : alpha * s[j] + beta * c[j];
    }
}

/* Rows [r0, r1) of C = alpha A Bt^T + beta C with A [m x k] (ta = 0), Bt [n x k] (tb = 1). */
static void sk_dot(size_t r0, size_t r1, size_t n, size_t k, float alpha, const float *A,
                   size_t lda, const float *Bt, size_t ldb, float beta, float *C, size_t ldc)
{
    A += r0 * lda;
    C += r0 * ldc;
    const size_t m = r1 - r0;
    switch (n) {
#define SK_DOT(N)                                                                                  \
    case N:                                                                                        \
        sk_dot_body(N, m, k, alpha, A, lda, Bt, ldb, beta, C, ldc);                                \
        break;
        /* clang-format off */
        SK_DOT(2) SK_DOT(3) SK_DOT(4) SK_DOT(5) SK_DOT(6) SK_DOT(7)
        SK_DOT(8) SK_DOT(9) SK_DOT(10) SK_DOT(11) SK_DOT(12)
        /* clang-format on */
#undef SK_DOT
    }
}

/* C[i, c] = alpha sum_r A[r, i] B[r, c] + beta C[i, c] for i < MI, c in [c0, c1) of n >= SK_W
 * columns, r < k, in blocks of rb rows (each block's sum is added to C). The last strip is the
 * vector ending at column n, of which only the columns in [cs, c1) are stored. */
SK_INLINE void sk_outer_body(const int MI, size_t c0, size_t c1, size_t n, size_t k, float alpha,
                             const float *A, size_t lda, const float *B, size_t ldb, float beta,
                             float *C, size_t ldc, size_t rb)
{
    for (size_t r0 = 0; r0 < k; r0 += rb) {
        const size_t r1 = k - r0 > rb ? r0 + rb : k;
        const float bf = r0 == 0 ? beta : 1.0f;
        for (size_t cs = c0; cs < c1; cs += SK_W) {
            const size_t cc = cs + SK_W <= n ? cs : n - SK_W;
            sk_vf acc[16];
#pragma GCC unroll 16
            for (int i = 0; i < MI; i++)
                acc[i] = (sk_vf){0};
            for (size_t r = r0; r < r1; r++) {
                const sk_vf b = sk_load(B + r * ldb + cc);
                const float *a = A + r * lda;
#pragma GCC unroll 16
                for (int i = 0; i < MI; i++)
                    acc[i] = b * a[i] + acc[i];
            }
            const size_t hi = c1 - cc < SK_W ? c1 - cc : SK_W;
            for (int i = 0; i < MI; i++) {
                float *c = C + i * ldc + cc;
                if (cc == cs && hi == SK_W)
                    *(sk_vfu *)c = bf == 0.0f ? alpha * acc[i] : alpha * acc[i] + bf * sk_load(c);
                else
                    for (size_t l = cs - cc; l < hi; l++)
                        c[l] = bf == 0.0f ? alpha * acc[i][l] : alpha * acc[i][l] + bf * c[l];
            }
        }
    }
}

/* Columns [c0, c1) of C = alpha A^T B + beta C with A [k x m] (ta = 1), B [k x n] (tb = 0); c0
 * a multiple of SK_W. */
static void sk_outer(size_t c0, size_t c1, size_t m, size_t n, size_t k, float alpha,
                     const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                     size_t ldc)
{
    /* rows of B per block: ~512 KiB of them, in L2 while the strips walk down them */
    size_t rb = (size_t)(128 * 1024) / ldb;
    rb = rb < 16 ? 16 : rb;
    switch (m) {
#define SK_OUTER(N)                                                                                \
    case N:                                                                                        \
        sk_outer_body(N, c0, c1, n, k, alpha, A, lda, B, ldb, beta, C, ldc, rb);                   \
        break;
        SK_OUTER(8) SK_OUTER(9) SK_OUTER(10) SK_OUTER(11)
#undef SK_OUTER
    }
}
/* C[r, c] = alpha sum_j A[r, j] B[j, c] + beta C[r, c] for rows [r0, r1), j < KJ, n >= SK_W
 * columns: per block of SK_BCAST_ROWS rows and 16-column strip, the strip's KJ rows of B in
 * registers, each row of A broadcast into one chain of multiply-adds (j in order). The last
 * strip is the vector ending at column n, of which only the columns not yet written are
 * stored. A row's sum depends on nothing but the row: the same whatever the thread split. */
#define SK_BCAST_ROWS 128
SK_INLINE void sk_bcast_body(const int KJ, size_t r0, size_t r1, size_t n, float alpha,
                             const float *A, size_t lda, const float *B, size_t ldb, float beta,
                             float *C, size_t ldc)
{
    for (size_t rb = r0; rb < r1; rb += SK_BCAST_ROWS) {
        const size_t re = r1 - rb > SK_BCAST_ROWS ? rb + SK_BCAST_ROWS : r1;
        for (size_t cs = 0; cs < n; cs += SK_W) {
            const size_t cc = cs + SK_W <= n ? cs : n - SK_W;
            sk_vf b[16];
#pragma GCC unroll 16
            for (int j = 0; j < KJ; j++)
                b[j] = sk_load(B + j * ldb + cc);
            for (size_t r = rb; r < re; r++) {
                const float *a = A + r * lda;
                sk_vf acc = b[0] * a[0];
#pragma GCC unroll 16
                for (int j = 1; j < KJ; j++)
                    acc = b[j] * a[j] + acc;
                float *c = C + r * ldc + cc;
                if (cc == cs)
                    *(sk_vfu *)c = beta == 0.0f ? alpha * acc : alpha * acc + beta * sk_load(c);
                else
                    for (size_t l = cs - cc; l < SK_W; l++)
                        c[l] = beta == 0.0f ? alpha * acc[l] : alpha * acc[l] + beta * c[l];
            }
        }
    }
}

/* Rows [r0, r1) of C = alpha A B + beta C with A [m x k] (ta = 0), B [k x n] (tb = 0). */
static void sk_bcast(size_t r0, size_t r1, size_t n, size_t k, float alpha, const float *A,
                     size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    switch (k) {
#define SK_BCAST(N)                                                                                \
    case N:                                                                                        \
        sk_bcast_body(N, r0, r1, n, alpha, A, lda, B, ldb, beta, C, ldc);                          \
        break;
        /* clang-format off */
        SK_BCAST(2) SK_BCAST(3) SK_BCAST(4) SK_BCAST(5) SK_BCAST(6) SK_BCAST(7)
        SK_BCAST(8) SK_BCAST(9) SK_BCAST(10) SK_BCAST(11) SK_BCAST(12)
        /* clang-format on */
#undef SK_BCAST
    }
}
#pragma GCC pop_options
#endif

enum { SK_NONE, SK_DOT, SK_OUTER, SK_BCAST };

/* The hand kernel for a product, or SK_NONE for OpenBLAS: the shapes where they were measured
 * faster, min and median (one thread; tests/test_cpu_gemm.c checks both against a naive
 * product). dot: C tall (m >= 1024) and narrow, op(B) within 32 KiB of the 48 KiB L1
 * (n k <= 8192; at n = 12, k = 1000 OpenBLAS wins), k >= 32 (below, the masked tail vector is
 * most of the work). outer: B neither small (n k < ~150K, OpenBLAS's small-matrix kernels
 * win) nor past ~8 MiB; m = 12 gains only ~10%, so it stays with OpenBLAS. bcast: C tall
 * (m >= 1024) and not narrow (n >= 64); k = 2 ties with OpenBLAS. alpha = 0 stays with BLAS
 * too, which then reads neither A nor B. */
static int skinny_kind(int ta, int tb, size_t m, size_t n, size_t k, float alpha)
{
#ifdef SPK_SKINNY
    if (alpha == 0.0f)
        return SK_NONE;
    if (!ta && tb && n >= 2 && n <= 12 && m >= 1024 && k >= 32 && n * k <= 8192)
        return SK_DOT;
    if (ta && !tb && m >= 8 && m <= 11 && n >= 64 && k >= 512 && n * k >= 150000 &&
        n * k <= ((size_t)1 << 21))
        return SK_OUTER;
    if (!ta && !tb && k >= 3 && k <= 12 && m >= 1024 && n >= 64)
        return SK_BCAST;
#else
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha;
#endif
    return SK_NONE;
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
         * GEMM, instead of two pools spinning against each other on few cores. The outer
         * kernel splits whole 16-column strips. */
        const int kind = skinny_kind(ta, tb, m, n, k, alpha);
        int parts = omp_get_max_threads();
        if ((double)m * (double)n * (double)k < 2e5)
            parts = 1;
        int by_rows = m >= n || kind == SK_BCAST;
        size_t len = kind == SK_OUTER ? (n + 15) / 16 : by_rows ? m : n;
        if ((size_t)parts > len)
            parts = (int)len;
        const float *A = a->data + aoff, *Bm = b->data + boff;
        float *C = c->data + coff;
#pragma omp parallel for num_threads(parts) schedule(static) if (parts > 1)
        for (int p = 0; p < parts; p++) {
            size_t lo = len * (size_t)p / (size_t)parts, hi = len * (size_t)(p + 1) / (size_t)parts;
            if (hi == lo)
                continue;
#ifdef SPK_SKINNY
            if (kind == SK_DOT) {
                sk_dot(lo, hi, n, k, alpha, A, lda, Bm, ldb, beta, C, ldc);
                continue;
            }
            if (kind == SK_BCAST) {
                sk_bcast(lo, hi, n, k, alpha, A, lda, Bm, ldb, beta, C, ldc);
                continue;
            }
            if (kind == SK_OUTER) {
                sk_outer(lo * 16, hi * 16 < n ? hi * 16 : n, m, n, k, alpha, A, lda, Bm, ldb, beta,
                         C, ldc);
                continue;
            }
#endif
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
    const char *poison = getenv("SPIKECL_CPU_POISON");
    impl->poison = poison && strcmp(poison, "1") == 0;
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
