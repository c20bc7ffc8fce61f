/* OpenCL backend: building kernel sets into programs (with an on-disk binary cache), the kernel
 * objects of a program, and launches. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "opencl.h"
#include "opencl_internal.h"
#include "strbuf.h"

#include "philox_cl.h"         /* philox_cl_source: core/include/spikecl/philox.h */
#include "prelude_opencl_cl.h" /* prelude_opencl_cl_source: core/kernels/prelude_opencl.cl */
#include "surrogate_cl.h"      /* surrogate_cl_source: core/include/spikecl/surrogate.h */

/* Bumped when the cache file layout or the way sources are assembled changes. */
static const char spk_ocl_cache_format[] = "spikecl-opencl-cache-2";

#define SPK_OCL_MAGIC      "SPKOCLB2"
#define SPK_OCL_MAX_BINARY ((uint64_t)256 << 20)

static char *spk_ocl_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---- source assembly ---- */

static int spk_ocl_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Blanks every `SPK_CPU_ENTRY(...)` in text (newlines kept, so #line numbers stay right).
 * OpenCL C 1.2 has no variadic macros, so the prelude cannot define it away as a macro; comments
 * and literals are skipped so that a mention in a comment cannot swallow code. */
static void spk_ocl_strip_cpu_entries(char *text)
{
    static const char word[] = "SPK_CPU_ENTRY";
    const size_t wn = sizeof word - 1;
    char *p = text;
    while (*p) {
        if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else if (*p == '"' || *p == '\'') {
            const char q = *p++;
            while (*p && *p != q && *p != '\n')
                p += (p[0] == '\\' && p[1]) ? 2 : 1;
            if (*p == q)
                p++;
        } else if (spk_ocl_ident_char(*p)) {
            char *s = p;
            while (spk_ocl_ident_char(*p))
                p++;
            if ((size_t)(p - s) != wn || memcmp(s, word, wn) != 0)
                continue;
            char *q = p;
            while (*q == ' ' || *q == '\t' || *q == '\n')
                q++;
            if (*q != '(')
                continue;
            int depth = 0;
            for (; *q; q++) {
                depth += *q == '(' ? 1 : *q == ')' ? -1 : 0;
                if (depth == 0)
                    break;
            }
            if (!*q)
                return; /* unbalanced: leave it for the compiler to report */
            for (char *c = s; c <= q; c++)
                if (*c != '\n')
                    *c = ' ';
            p = q + 1;
        } else {
            p++;
        }
    }
}

/* prelude + philox + surrogates + the set's text. Contraction into fma is switched off so that
 * OpenCL rounds like the CPU build (ISO C mode, -ffp-contract=off); #line makes build logs point
 * into the set's own file. */
char *spk_backend_opencl_program_text(const char *owner, const char *source)
{
    static const char pragma[] = "#pragma OPENCL FP_CONTRACT OFF\n";
    char line[160];
    size_t o = 0;
    /* Quotes or backslashes in an owner name would break the #line directive. */
    for (const char *s = owner; *s && o + 1 < 100; s++)
        line[o++] = (*s == '"' || *s == '\\' || *s == '\n') ? '_' : *s;
    line[o] = '\0';
    spk_strbuf b = SPK_STRBUF_INIT;
    spk_strbuf_appendf(&b, "%s%s\n%s\n%s\n#line 1 \"%s\"\n", pragma, prelude_opencl_cl_source,
                       philox_cl_source, surrogate_cl_source, line);
    const size_t head = b.len;
    spk_strbuf_appendf(&b, "%s\n", source);
    char *text = spk_strbuf_finish(&b);
    if (text)
        spk_ocl_strip_cpu_entries(text + head);
    return text;
}

/* ---- the binary cache ---- */

typedef struct spk_ocl_hash {
    uint64_t a, b;
} spk_ocl_hash;

/* Two FNV-1a streams with different bases and byte mixing: 128 bits, enough to name files. */
static void spk_ocl_hash_bytes(spk_ocl_hash *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ p[i]) * 0x100000001b3ull;
        h->b = (h->b ^ (unsigned char)(p[i] ^ 0x5c)) * 0x100000001b3ull;
        h->b ^= h->b >> 29;
    }
}

/* Hashes s and its terminating NUL, so that ("ab", "c") and ("a", "bc") differ. */
static void spk_ocl_hash_str(spk_ocl_hash *h, const char *s)
{
    spk_ocl_hash_bytes(h, s, strlen(s) + 1);
}

static uint64_t spk_ocl_checksum(const void *data, size_t n)
{
    spk_ocl_hash h = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    spk_ocl_hash_bytes(&h, data, n);
    return h.a ^ (h.b * 0x9e3779b97f4a7c15ull);
}

/* The cache folder, or 0 when caching is off or there is no home to put it in. */
static int spk_ocl_cache_dir(char *out, size_t n)
{
    const char *env = getenv("SPIKECL_CACHE_DIR");
    int w;
    if (env && env[0]) {
        if (strcmp(env, "off") == 0 || strcmp(env, "0") == 0)
            return 0;
        w = snprintf(out, n, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) && env[0] == '/') {
        w = snprintf(out, n, "%s/spikecl", env);
    } else if ((env = getenv("HOME")) && env[0]) {
        w = snprintf(out, n, "%s/.cache/spikecl", env);
    } else {
        return 0;
    }
    return w > 0 && (size_t)w < n;
}

static void spk_ocl_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t spk_ocl_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* magic, key a, key b, binary size, signature size, checksum; then the binary, then the
 * kernels' signatures as "name BIF\n" lines (OpenCL promises argument info only for programs
 * built from source, so the cache keeps what the first build reported). */
#define SPK_OCL_HEADER 48

/* Reads a cached binary for key and its signatures (*sigs, NUL-terminated, after the binary in
 * the same allocation); NULL (and nothing else) if absent, unreadable or corrupt. */
static unsigned char *spk_ocl_cache_read(const char *path, spk_ocl_hash key, size_t *size,
                                         const char **sigs)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char hdr[SPK_OCL_HEADER];
    unsigned char *bin = NULL;
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr || memcmp(hdr, SPK_OCL_MAGIC, 8) != 0 ||
        spk_ocl_get_u64(hdr + 8) != key.a || spk_ocl_get_u64(hdr + 16) != key.b)
        goto fail;
    uint64_t n = spk_ocl_get_u64(hdr + 24), ns = spk_ocl_get_u64(hdr + 32);
    if (n == 0 || n > SPK_OCL_MAX_BINARY || ns > SPK_OCL_MAX_BINARY)
        goto fail;
    bin = malloc((size_t)(n + ns) + 1);
    if (!bin || fread(bin, 1, (size_t)(n + ns), f) != (size_t)(n + ns) || fgetc(f) != EOF ||
        spk_ocl_checksum(bin, (size_t)(n + ns)) != spk_ocl_get_u64(hdr + 40) ||
        memchr(bin + n, '\0', (size_t)ns))
        goto fail;
    fclose(f);
    bin[n + ns] = '\0';
    *size = (size_t)n;
    *sigs = (const char *)bin + n;
    return bin;
fail:
    free(bin);
    fclose(f);
    return NULL;
}

typedef struct spk_ocl_blob {
    unsigned char hdr[SPK_OCL_HEADER];
    const unsigned char *bin;
    size_t n;
    const char *sigs;
    size_t ns;
} spk_ocl_blob;

static int spk_ocl_blob_fill(FILE *f, void *ctx)
{
    const spk_ocl_blob *b = ctx;
    return fwrite(b->hdr, 1, sizeof b->hdr, f) == sizeof b->hdr &&
                   fwrite(b->bin, 1, b->n, f) == b->n && fwrite(b->sigs, 1, b->ns, f) == b->ns
               ? 0
               : -1;
}

/* Writes the binary atomically (fsutil). Failures are ignored: the cache only saves time. */
static void spk_ocl_cache_write(const char *dir, const char *path, spk_ocl_hash key,
                                const unsigned char *bin, size_t n, const char *sigs)
{
    if (spk_fs_mkdir_p(dir, 0700) != 0)
        return;
    spk_ocl_blob b = {.bin = bin, .n = n, .sigs = sigs, .ns = strlen(sigs)};
    memcpy(b.hdr, SPK_OCL_MAGIC, 8);
    spk_ocl_put_u64(b.hdr + 8, key.a);
    spk_ocl_put_u64(b.hdr + 16, key.b);
    spk_ocl_hash h = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    spk_ocl_hash_bytes(&h, bin, n);
    spk_ocl_hash_bytes(&h, sigs, b.ns);
    spk_ocl_put_u64(b.hdr + 24, (uint64_t)n);
    spk_ocl_put_u64(b.hdr + 32, (uint64_t)b.ns);
    spk_ocl_put_u64(b.hdr + 40, h.a ^ (h.b * 0x9e3779b97f4a7c15ull));
    spk_fs_write_atomic(path, 0600, spk_ocl_blob_fill, &b, NULL);
}

/* The binary of a built single-device program (malloc'ed), or NULL. */
static unsigned char *spk_ocl_program_binary(cl_program prog, size_t *size)
{
    cl_uint ndev = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS ||
        ndev != 1)
        return NULL;
    size_t n = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS ||
        n == 0 || n > SPK_OCL_MAX_BINARY)
        return NULL;
    unsigned char *bin = malloc(n);
    if (!bin)
        return NULL;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
        free(bin);
        return NULL;
    }
    *size = n;
    return bin;
}

/* A program built from a cached binary, or NULL to build from source. */
static cl_program spk_ocl_from_binary(spk_ocl *o, const unsigned char *bin, size_t n)
{
    cl_int rc, status = CL_SUCCESS;
    cl_program prog = clCreateProgramWithBinary(o->ctx, 1, &o->device, &n, &bin, &status, &rc);
    if (rc != CL_SUCCESS || status != CL_SUCCESS || !prog) {
        if (prog)
            clReleaseProgram(prog);
        return NULL;
    }
    if (clBuildProgram(prog, 1, &o->device, o->build_options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(prog);
        return NULL;
    }
    return prog;
}

/* ---- building from source ---- */

static char *spk_ocl_build_log(spk_ocl *o, cl_program prog)
{
    size_t n = 0;
    if (clGetProgramBuildInfo(prog, o->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS ||
        n == 0)
        return NULL;
    char *log = malloc(n + 1);
    if (!log)
        return NULL;
    if (clGetProgramBuildInfo(prog, o->device, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS) {
        free(log);
        return NULL;
    }
    log[n] = '\0';
    return log;
}

/* The part of a build log worth showing in a 1 KiB message: from the line of the first error
 * (warnings before it would crowd it out), else from the start. */
static const char *spk_ocl_log_excerpt(const char *log)
{
    const char *e = strstr(log, "error");
    if (!e)
        return log;
    while (e > log && e[-1] != '\n')
        e--;
    return e;
}

static int spk_ocl_from_source(spk_ocl *o, const char *owner, const char *text, cl_program *out,
                               spk_error *err)
{
    cl_int rc;
    cl_program prog = clCreateProgramWithSource(o->ctx, 1, &text, NULL, &rc);
    if (rc != CL_SUCCESS || !prog)
        return spk_ocl_fail(err, rc, "cannot create the OpenCL program of '%s'", owner);
    rc = clBuildProgram(prog, 1, &o->device, o->build_options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        char *log = spk_ocl_build_log(o, prog);
        /* a kernel that does not compile is the plugin's fault (bad input: CLI exit 2), unless
         * the device ran out of resources */
        int st =
            spk_error_set(err, rc == CL_BUILD_PROGRAM_FAILURE ? SPK_ERR_PLUGIN : SPK_ERR_BACKEND,
                          "OpenCL build of the kernels of '%s' failed on %s: %s (%d); "
                          "build log:\n%s",
                          owner, o->dev_name, spk_ocl_strerror(rc), (int)rc,
                          log ? spk_ocl_log_excerpt(log) : "(no log)");
        free(log);
        clReleaseProgram(prog);
        return st;
    }
    *out = prog;
    return SPK_OK;
}

/* ---- kernels of a program ---- */

static char spk_ocl_arg_kind(cl_kernel k, cl_uint i)
{
    cl_kernel_arg_address_qualifier aq;
    if (clGetKernelArgInfo(k, i, CL_KERNEL_ARG_ADDRESS_QUALIFIER, sizeof aq, &aq, NULL) !=
        CL_SUCCESS)
        return '?';
    if (aq == CL_KERNEL_ARG_ADDRESS_GLOBAL || aq == CL_KERNEL_ARG_ADDRESS_CONSTANT)
        return 'B';
    if (aq != CL_KERNEL_ARG_ADDRESS_PRIVATE)
        return '?';
    char type[64];
    if (clGetKernelArgInfo(k, i, CL_KERNEL_ARG_TYPE_NAME, sizeof type, type, NULL) != CL_SUCCESS)
        return '?';
    if (strcmp(type, "int") == 0 || strcmp(type, "uint") == 0 || strcmp(type, "unsigned int") == 0)
        return 'I';
    if (strcmp(type, "float") == 0)
        return 'F';
    return '?';
}

/* The signature recorded for kernel `name` in a cache entry's lines, copied into out (nargs
 * characters); 0 when the entry has none that fits. */
static int spk_ocl_stored_sig(const char *sigs, const char *name, cl_uint nargs, char *out)
{
    const size_t nl = strlen(name);
    for (const char *l = sigs; *l;) {
        const char *end = strchr(l, '\n');
        if (!end)
            return 0;
        if ((size_t)(end - l) == nl + 1 + nargs && memcmp(l, name, nl) == 0 && l[nl] == ' ') {
            memcpy(out, l + nl + 1, nargs);
            return 1;
        }
        l = end + 1;
    }
    return 0;
}

/* sigs: NULL for a program built from source (argument info is queried), else the signature
 * lines of its cache entry; a kernel missing from them is SPK_ERR_BACKEND (the caller rebuilds). */
static int spk_ocl_kernel_init(spk_ocl *o, const char *owner, cl_kernel k, spk_ocl_kernel *sk,
                               const char *sigs, spk_error *err)
{
    sk->k = k;
    size_t n = 0;
    cl_int rc = clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, 0, NULL, &n);
    if (rc == CL_SUCCESS && !(sk->name = malloc(n + 1)))
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    if (rc == CL_SUCCESS)
        rc = clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, n, sk->name, NULL);
    if (rc == CL_SUCCESS) {
        sk->name[n] = '\0';
        rc = clGetKernelInfo(k, CL_KERNEL_NUM_ARGS, sizeof sk->nargs, &sk->nargs, NULL);
    }
    size_t maxwg = 0, pref = 0;
    if (rc == CL_SUCCESS)
        rc = clGetKernelWorkGroupInfo(k, o->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof maxwg, &maxwg,
                                      NULL);
    if (rc == CL_SUCCESS)
        rc = clGetKernelWorkGroupInfo(k, o->device, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE,
                                      sizeof pref, &pref, NULL);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "cannot query the kernels of '%s'", owner);

    sk->sig = malloc(sk->nargs + 1);
    if (!sk->sig)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    sk->sig[sk->nargs] = '\0';
    if (sigs) {
        if (!spk_ocl_stored_sig(sigs, sk->name, sk->nargs, sk->sig))
            return spk_error_set(err, SPK_ERR_BACKEND,
                                 "cached program of '%s' has no signature for kernel '%s'", owner,
                                 sk->name);
    } else {
        for (cl_uint i = 0; i < sk->nargs; i++)
            sk->sig[i] = spk_ocl_arg_kind(k, i);
    }

    /* 64 items per group, rounded up to the kernel's preferred multiple (the warp/wavefront),
     * within the kernel's own limit. */
    if (pref == 0)
        pref = 1;
    size_t local = (64 + pref - 1) / pref * pref;
    if (maxwg && local > maxwg) {
        local = maxwg / pref * pref;
        if (local == 0)
            local = maxwg;
    }
    sk->local = local ? local : 1;

    sk->prof_id = (size_t)-1;
    if (o->profiling) {
        char pname[256];
        snprintf(pname, sizeof pname, "%s:%s", owner, sk->name);
        sk->prof_id = spk_ocl_prof_id(o, pname);
    }
    return SPK_OK;
}

static int spk_ocl_make_kernels(spk_ocl *o, spk_program *p, const char *sigs, spk_error *err)
{
    cl_uint nk = 0;
    cl_int rc = clCreateKernelsInProgram(p->prog, 0, NULL, &nk);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "cannot create the kernels of '%s'", p->owner);
    if (nk == 0)
        return SPK_OK;
    cl_kernel *ks = calloc(nk, sizeof *ks);
    p->kernels = calloc(nk, sizeof *p->kernels);
    if (!ks || !p->kernels) {
        free(ks);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    rc = clCreateKernelsInProgram(p->prog, nk, ks, NULL);
    if (rc != CL_SUCCESS) {
        free(ks);
        return spk_ocl_fail(err, rc, "cannot create the kernels of '%s'", p->owner);
    }
    int st = SPK_OK;
    for (cl_uint i = 0; i < nk; i++) {
        /* Every kernel object is owned by p from here, so program_free releases them all. */
        p->nkernels = i + 1;
        if (st == SPK_OK)
            st = spk_ocl_kernel_init(o, p->owner, ks[i], &p->kernels[i], sigs, err);
        else
            p->kernels[i].k = ks[i];
    }
    free(ks);
    return st;
}

/* Releases the program and kernels of prog, keeping prog itself and its owner. */
static void spk_ocl_program_clear(spk_program *prog)
{
    for (size_t i = 0; i < prog->nkernels; i++) {
        if (prog->kernels[i].k)
            clReleaseKernel(prog->kernels[i].k);
        free(prog->kernels[i].name);
        free(prog->kernels[i].sig);
    }
    free(prog->kernels);
    prog->kernels = NULL;
    prog->nkernels = 0;
    if (prog->prog)
        clReleaseProgram(prog->prog);
    prog->prog = NULL;
    prog->from_cache = 0;
}

void spk_ocl_program_free(spk_backend *be, spk_program *prog)
{
    (void)be;
    if (!prog)
        return;
    spk_ocl_program_clear(prog);
    free(prog->owner);
    free(prog);
}

/* "name SIG\n" per kernel of p (malloc'ed), or NULL when out of memory. */
static char *spk_ocl_sig_lines(const spk_program *p)
{
    size_t n = 1;
    for (size_t i = 0; i < p->nkernels; i++)
        n += strlen(p->kernels[i].name) + strlen(p->kernels[i].sig) + 2;
    char *s = malloc(n);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < p->nkernels; i++)
        o += (size_t)snprintf(s + o, n - o, "%s %s\n", p->kernels[i].name, p->kernels[i].sig);
    s[o] = '\0';
    return s;
}

int spk_ocl_program_build(spk_backend *be, const spk_kernel_set *set, spk_program **out,
                          spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!out)
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL program build: out is NULL");
    *out = NULL;
    if (!set)
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL program build: no kernel set");
    const char *owner = set->owner ? set->owner : "(unnamed kernel set)";
    spk_program *p = calloc(1, sizeof *p);
    if (!p || !(p->owner = spk_ocl_strdup(owner))) {
        free(p);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }
    /* A set without OpenCL text (e.g. a layer that only uses gemm) is an empty program; a
     * launch on it reports the missing kernel. */
    if (!set->opencl_source) {
        *out = p;
        return SPK_OK;
    }
    char *text = spk_backend_opencl_program_text(owner, set->opencl_source);
    if (!text) {
        spk_ocl_program_free(be, p);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    }

    spk_ocl_hash key = {0xcbf29ce484222325ull, 0x6c62272e07bb0142ull};
    spk_ocl_hash_str(&key, spk_ocl_cache_format);
    spk_ocl_hash_str(&key, o->dev_name);
    spk_ocl_hash_str(&key, o->driver);
    spk_ocl_hash_str(&key, o->plat_version);
    spk_ocl_hash_str(&key, text);
    spk_ocl_hash_str(&key, o->build_options);
    char dir[1024], path[1100];
    int cache = spk_ocl_cache_dir(dir, sizeof dir);
    if (cache) {
        int w = snprintf(path, sizeof path, "%s/%016llx%016llx.clbin", dir,
                         (unsigned long long)key.a, (unsigned long long)key.b);
        cache = w > 0 && (size_t)w < sizeof path;
    }
    int rc = SPK_OK;
    if (cache) {
        size_t n = 0;
        const char *sigs = NULL;
        unsigned char *bin = spk_ocl_cache_read(path, key, &n, &sigs);
        if (bin) {
            p->prog = spk_ocl_from_binary(o, bin, n);
            p->from_cache = p->prog != NULL;
            /* an entry whose signatures do not fit is rebuilt like a corrupt one */
            if (p->prog && spk_ocl_make_kernels(o, p, sigs, err) != SPK_OK)
                spk_ocl_program_clear(p);
            free(bin);
        }
    }
    if (!p->prog) {
        rc = spk_ocl_from_source(o, owner, text, &p->prog, err);
        if (rc == SPK_OK)
            rc = spk_ocl_make_kernels(o, p, NULL, err);
        if (rc == SPK_OK && cache) {
            size_t n = 0;
            unsigned char *bin = spk_ocl_program_binary(p->prog, &n);
            char *sigs = spk_ocl_sig_lines(p);
            if (bin && sigs)
                spk_ocl_cache_write(dir, path, key, bin, n, sigs);
            free(bin);
            free(sigs);
        }
    }
    free(text);
    if (rc != SPK_OK) {
        spk_ocl_program_free(be, p);
        return rc;
    }
    *out = p;
    return SPK_OK;
}

/* ---- launch ---- */

static const char *spk_ocl_kind_name(int c)
{
    switch (c) {
    case 'B':
        return "a buffer";
    case 'I':
        return "an int";
    case 'F':
        return "a float";
    }
    return "an unsupported type";
}

int spk_ocl_launch(spk_backend *be, spk_program *prog, const char *name, size_t items, int nargs,
                   const spk_karg *args, spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!prog || !name)
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL launch: no program or kernel name");
    spk_ocl_kernel *sk = NULL;
    for (size_t i = 0; i < prog->nkernels && !sk; i++)
        if (strcmp(prog->kernels[i].name, name) == 0)
            sk = &prog->kernels[i];
    if (!sk) {
        char names[512];
        size_t len = 0;
        names[0] = '\0';
        for (size_t i = 0; i < prog->nkernels && len < sizeof names; i++) {
            int w = snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                             prog->kernels[i].name);
            if (w < 0)
                break;
            len += (size_t)w;
        }
        return spk_error_set(err, SPK_ERR_NOTFOUND,
                             "no OpenCL kernel '%s' in the kernels of '%s' (it has: %s)", name,
                             prog->owner, prog->nkernels ? names : "none");
    }
    if (nargs < 0 || (cl_uint)nargs != sk->nargs || (nargs && !args))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "kernel '%s' of '%s' takes %u argument%s, %d given", name, prog->owner,
                             sk->nargs, sk->nargs == 1 ? "" : "s", nargs);
    if (items > (size_t)INT_MAX)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "kernel '%s' of '%s': %zu work items exceed the int index range", name,
                             prog->owner, items);
    for (int i = 0; i < nargs; i++) {
        int t = args[i].type;
        if (t != 'B' && t != 'I' && t != 'F')
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "kernel '%s' of '%s': argument %d has unknown type %d", name,
                                 prog->owner, i, t);
        if (sk->sig[i] != '?' && sk->sig[i] != t)
            return spk_error_set(
                err, SPK_ERR_INVALID, "kernel '%s' of '%s': argument %d is %s, %s was given", name,
                prog->owner, i, spk_ocl_kind_name(sk->sig[i]), spk_ocl_kind_name(t));
        if (t == 'B' && !args[i].v.p)
            return spk_error_set(err, SPK_ERR_INVALID,
                                 "kernel '%s' of '%s': argument %d is a NULL buffer", name,
                                 prog->owner, i);
    }
    if (items == 0)
        return SPK_OK;

    uint64_t t0 = spk_ocl_now_ns();
    for (int i = 0; i < nargs; i++) {
        cl_int rc;
        if (args[i].type == 'B') {
            const spk_buffer *b = args[i].v.p;
            rc = clSetKernelArg(sk->k, (cl_uint)i, sizeof(cl_mem), &b->mem);
        } else if (args[i].type == 'I') {
            cl_int v = args[i].v.i;
            rc = clSetKernelArg(sk->k, (cl_uint)i, sizeof v, &v);
        } else {
            cl_float v = args[i].v.f;
            rc = clSetKernelArg(sk->k, (cl_uint)i, sizeof v, &v);
        }
        if (rc != CL_SUCCESS)
            return spk_ocl_fail(err, rc, "kernel '%s' of '%s': cannot set argument %d (%s)", name,
                                prog->owner, i, spk_ocl_kind_name(args[i].type));
    }
    /* OpenCL 1.2 needs the global size to be a multiple of the local size; the kernels guard
     * the tail with SPK_FOR_ITEMS. */
    size_t local = sk->local;
    size_t global = (items + local - 1) / local * local;
    cl_event ev = NULL;
    int profile = o->profiling && sk->prof_id != (size_t)-1;
    cl_int rc = clEnqueueNDRangeKernel(o->queue, sk->k, 1, NULL, &global, &local, 0, NULL,
                                       profile ? &ev : NULL);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc,
                            "cannot launch kernel '%s' of '%s' (%zu items, work-group %zu)", name,
                            prog->owner, items, local);
    if (profile && ev)
        spk_ocl_prof_add(o, sk->prof_id, ev);
    be->stats.launch_ns += spk_ocl_now_ns() - t0;
    be->stats.launches++;
    return SPK_OK;
}
