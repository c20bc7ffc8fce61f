/* OpenCL backend: device choice, buffers, CLBlast GEMM, sync, and the ops table. Program builds
 * and launches live in opencl_program.c. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "opencl.h"
#include "opencl_internal.h"

static const spk_backend_ops spk_ocl_ops;

/* CLBlast keeps compiled programs (holding our contexts) in a process-wide cache; it is cleared
 * when the last OpenCL backend closes. */
static atomic_int spk_ocl_open_count;

/* ---- device enumeration ---- */

typedef struct spk_ocl_topo {
    cl_uint nplat;
    cl_platform_id *plats;
    cl_uint *ndev;
    cl_device_id **devs;
    cl_int *dev_rc; /* clGetDeviceIDs status per platform, kept for messages */
} spk_ocl_topo;

static void spk_ocl_topo_free(spk_ocl_topo *t)
{
    for (cl_uint p = 0; t->devs && p < t->nplat; p++)
        free(t->devs[p]);
    free(t->devs);
    free(t->ndev);
    free(t->dev_rc);
    free(t->plats);
    memset(t, 0, sizeof *t);
}

static int spk_ocl_topo_get(spk_ocl_topo *t, spk_error *err)
{
    memset(t, 0, sizeof *t);
    cl_uint n = 0;
    cl_int rc = clGetPlatformIDs(0, NULL, &n);
    /* The ICD loader answers CL_PLATFORM_NOT_FOUND_KHR when no vendor is installed. */
    if (rc == -1001 || (rc == CL_SUCCESS && n == 0))
        return SPK_OK;
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "cannot list OpenCL platforms");
    t->plats = calloc(n, sizeof *t->plats);
    t->ndev = calloc(n, sizeof *t->ndev);
    t->devs = calloc(n, sizeof *t->devs);
    t->dev_rc = calloc(n, sizeof *t->dev_rc);
    if (!t->plats || !t->ndev || !t->devs || !t->dev_rc) {
        spk_ocl_topo_free(t);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory listing OpenCL platforms");
    }
    rc = clGetPlatformIDs(n, t->plats, NULL);
    if (rc != CL_SUCCESS) {
        spk_ocl_topo_free(t);
        return spk_ocl_fail(err, rc, "cannot list OpenCL platforms");
    }
    t->nplat = n;
    for (cl_uint p = 0; p < n; p++) {
        cl_uint nd = 0;
        rc = clGetDeviceIDs(t->plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (rc == CL_SUCCESS && nd > 0) {
            t->devs[p] = calloc(nd, sizeof **t->devs);
            if (!t->devs[p]) {
                spk_ocl_topo_free(t);
                return spk_error_set(err, SPK_ERR_NOMEM, "out of memory listing OpenCL devices");
            }
            rc = clGetDeviceIDs(t->plats[p], CL_DEVICE_TYPE_ALL, nd, t->devs[p], NULL);
        }
        /* A platform without devices (CL_DEVICE_NOT_FOUND) or a broken one is skipped, not an
         * error: other platforms may still work. */
        t->dev_rc[p] = rc == CL_DEVICE_NOT_FOUND ? CL_SUCCESS : rc;
        t->ndev[p] = rc == CL_SUCCESS ? nd : 0;
    }
    return SPK_OK;
}

/* Copies an info string, trimmed of surrounding blanks (some drivers pad names); "?" if the
 * query fails. */
static void spk_ocl_trim_into(char *out, size_t n, const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

static void spk_ocl_info_str(int is_platform, void *obj, cl_uint param, char *out, size_t n)
{
    size_t sz = 0;
    cl_int rc = is_platform ? clGetPlatformInfo((cl_platform_id)obj, param, 0, NULL, &sz)
                            : clGetDeviceInfo((cl_device_id)obj, param, 0, NULL, &sz);
    char *tmp = rc == CL_SUCCESS ? malloc(sz + 1) : NULL;
    if (tmp) {
        rc = is_platform ? clGetPlatformInfo((cl_platform_id)obj, param, sz, tmp, NULL)
                         : clGetDeviceInfo((cl_device_id)obj, param, sz, tmp, NULL);
        tmp[sz] = '\0';
    }
    spk_ocl_trim_into(out, n, tmp && rc == CL_SUCCESS ? tmp : "?");
    free(tmp);
}

static void spk_ocl_dev_str(cl_device_id d, cl_device_info param, char *out, size_t n)
{
    spk_ocl_info_str(0, d, param, out, n);
}

static void spk_ocl_plat_str(cl_platform_id p, cl_platform_info param, char *out, size_t n)
{
    spk_ocl_info_str(1, p, param, out, n);
}

static cl_device_type spk_ocl_dev_type(cl_device_id d)
{
    cl_device_type t = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL) != CL_SUCCESS)
        return 0;
    return t;
}

static const char *spk_ocl_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (t & CL_DEVICE_TYPE_CPU)
        return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR)
        return "ACCEL";
    return "OTHER";
}

/* ---- listing ---- */

int spk_backend_opencl_devices(spk_device_info **out, int *n, spk_error *err)
{
    *out = NULL;
    *n = 0;
    spk_ocl_topo t;
    int rc = spk_ocl_topo_get(&t, err);
    if (rc)
        return rc;
    size_t total = 0;
    for (cl_uint p = 0; p < t.nplat; p++)
        total += t.ndev[p];
    spk_device_info *list = calloc(total ? total : 1, sizeof *list);
    if (!list) {
        spk_ocl_topo_free(&t);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory listing OpenCL devices");
    }
    int k = 0;
    for (cl_uint p = 0; p < t.nplat; p++) {
        for (cl_uint d = 0; d < t.ndev[p]; d++, k++) {
            cl_device_id dev = t.devs[p][d];
            spk_device_info *di = &list[k];
            cl_uint cus = 0;
            cl_ulong mem = 0;
            size_t wg = 0;
            snprintf(di->id, sizeof di->id, "opencl:%u:%u", p, d);
            spk_ocl_dev_str(dev, CL_DEVICE_NAME, di->name, sizeof di->name);
            spk_ocl_dev_str(dev, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
            spk_ocl_dev_str(dev, CL_DRIVER_VERSION, di->driver, sizeof di->driver);
            /* a device that does not answer keeps 0: the list is informative, opening it
             * reports the real error */
            if (clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL))
                cus = 0;
            if (clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL))
                mem = 0;
            if (clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL))
                wg = 0;
            di->compute_units = (int)cus;
            di->memory_bytes = mem;
            di->max_work_group = wg;
            const cl_device_type type = spk_ocl_dev_type(dev);
            di->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
            snprintf(di->kind, sizeof di->kind, "%s", spk_ocl_type_name(type));
        }
    }
    spk_ocl_topo_free(&t);
    *out = list;
    *n = k;
    return SPK_OK;
}

/* ---- choosing a device ---- */

enum { SPK_SPEC_DEFAULT, SPK_SPEC_INDEX, SPK_SPEC_NAME };

static int spk_ocl_parse_uint(const char *s, const char *end, unsigned *out)
{
    if (s == end)
        return 0;
    unsigned long v = 0;
    for (; s < end; s++) {
        if (!isdigit((unsigned char)*s))
            return 0;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 1000000)
            return 0;
    }
    *out = (unsigned)v;
    return 1;
}

/* Returns the spec kind, or -1 for a malformed string. */
static int spk_ocl_parse_spec(const char *spec, unsigned *p, unsigned *d, const char **name)
{
    if (strncmp(spec, "opencl", 6) != 0)
        return -1;
    const char *rest = spec + 6;
    if (*rest == '\0')
        return SPK_SPEC_DEFAULT;
    if (*rest != ':' || rest[1] == '\0')
        return -1;
    rest++;
    const char *colon = strchr(rest, ':');
    if (colon) {
        if (spk_ocl_parse_uint(rest, colon, p) &&
            spk_ocl_parse_uint(colon + 1, colon + 1 + strlen(colon + 1), d))
            return SPK_SPEC_INDEX;
        return -1;
    }
    /* A bare number is neither an index pair nor a plausible name: say so rather than guess. */
    unsigned dummy;
    if (spk_ocl_parse_uint(rest, rest + strlen(rest), &dummy))
        return -1;
    *name = rest;
    return SPK_SPEC_NAME;
}

static int spk_ocl_icontains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < nl && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == nl)
            return 1;
    }
    return nl == 0;
}

/* "opencl:0:0 (name), opencl:0:1 (name)" for messages; "none" when there is no device. */
static void spk_ocl_available(const spk_ocl_topo *t, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (cl_uint p = 0; p < t->nplat; p++) {
        for (cl_uint d = 0; d < t->ndev[p]; d++) {
            char name[128];
            spk_ocl_dev_str(t->devs[p][d], CL_DEVICE_NAME, name, sizeof name);
            int w =
                snprintf(out + len, n - len, "%sopencl:%u:%u (%s)", len ? ", " : "", p, d, name);
            if (w < 0 || (size_t)w >= n - len)
                return;
            len += (size_t)w;
        }
    }
    if (!len)
        snprintf(out, n, "none");
}

static int spk_ocl_choose(const char *spec, const spk_ocl_topo *t, unsigned *pp, unsigned *dp,
                          spk_error *err)
{
    unsigned p = 0, d = 0;
    const char *name = NULL;
    int kind = spk_ocl_parse_spec(spec, &p, &d, &name);
    if (kind < 0)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "bad device string '%s': expected opencl, opencl:P:D or opencl:NAME",
                             spec);
    if (t->nplat == 0)
        return spk_error_set(
            err, SPK_ERR_NOTFOUND,
            "no OpenCL platform found (is an ICD installed? e.g. pocl-opencl-icd)");

    if (kind == SPK_SPEC_INDEX) {
        char pname[256];
        if (p >= t->nplat) {
            char list[512];
            size_t len = 0;
            list[0] = '\0';
            for (cl_uint i = 0; i < t->nplat && len < sizeof list; i++) {
                spk_ocl_plat_str(t->plats[i], CL_PLATFORM_NAME, pname, sizeof pname);
                int w =
                    snprintf(list + len, sizeof list - len, "%s%u: %s", i ? ", " : "", i, pname);
                if (w < 0)
                    break;
                len += (size_t)w;
            }
            return spk_error_set(err, SPK_ERR_NOTFOUND,
                                 "platform index %u out of range: %u OpenCL platform%s found (%s)",
                                 p, t->nplat, t->nplat == 1 ? "" : "s", list);
        }
        if (d >= t->ndev[p]) {
            spk_ocl_plat_str(t->plats[p], CL_PLATFORM_NAME, pname, sizeof pname);
            if (t->dev_rc[p] != CL_SUCCESS)
                return spk_error_set(err, SPK_ERR_NOTFOUND,
                                     "device index %u out of range: platform %u (%s) has no "
                                     "usable device (clGetDeviceIDs: %s (%d))",
                                     d, p, pname, spk_ocl_strerror(t->dev_rc[p]),
                                     (int)t->dev_rc[p]);
            return spk_error_set(err, SPK_ERR_NOTFOUND,
                                 "device index %u out of range: platform %u (%s) has %u device%s",
                                 d, p, pname, t->ndev[p], t->ndev[p] == 1 ? "" : "s");
        }
        *pp = p;
        *dp = d;
        return SPK_OK;
    }

    int found = 0;
    for (int pass = 0; pass < 2 && !found; pass++) {
        for (cl_uint i = 0; i < t->nplat && !found; i++) {
            for (cl_uint j = 0; j < t->ndev[i] && !found; j++) {
                cl_device_id dev = t->devs[i][j];
                int ok;
                if (kind == SPK_SPEC_DEFAULT) {
                    /* First pass: GPUs only; second: anything. */
                    ok = pass == 1 || (spk_ocl_dev_type(dev) & CL_DEVICE_TYPE_GPU);
                } else {
                    char dname[256], vendor[256];
                    spk_ocl_dev_str(dev, CL_DEVICE_NAME, dname, sizeof dname);
                    spk_ocl_dev_str(dev, CL_DEVICE_VENDOR, vendor, sizeof vendor);
                    ok = spk_ocl_icontains(dname, name) || spk_ocl_icontains(vendor, name);
                }
                if (ok) {
                    *pp = i;
                    *dp = j;
                    found = 1;
                }
            }
        }
        if (kind == SPK_SPEC_NAME)
            break;
    }
    if (found)
        return SPK_OK;
    char avail[768];
    spk_ocl_available(t, avail, sizeof avail);
    if (kind == SPK_SPEC_NAME)
        return spk_error_set(err, SPK_ERR_NOTFOUND, "no OpenCL device matches '%s'; available: %s",
                             name, avail);
    return spk_error_set(err, SPK_ERR_NOTFOUND,
                         "no OpenCL device found: %u platform%s, none with a device", t->nplat,
                         t->nplat == 1 ? "" : "s");
}

/* ---- pinned staging for upload_async ---- */

/* Waits for every outstanding copy, then unmaps and frees the staging buffers and the copy
 * queue. */
static void spk_ocl_stage_free(spk_ocl *o)
{
    if (o->xfer)
        clFinish(o->xfer);
    for (int i = 0; i < SPK_OCL_NSTAGE; i++) {
        spk_ocl_stage *st = &o->stage[i];
        if (st->ev)
            clReleaseEvent(st->ev);
        if (st->ptr) {
            cl_event ev = NULL;
            if (clEnqueueUnmapMemObject(o->xfer, st->mem, st->ptr, 0, NULL, &ev) == CL_SUCCESS &&
                ev) {
                clWaitForEvents(1, &ev);
                clReleaseEvent(ev);
            }
        }
        if (st->mem)
            clReleaseMemObject(st->mem);
        memset(st, 0, sizeof *st);
    }
    if (o->xfer)
        clReleaseCommandQueue(o->xfer);
    o->xfer = NULL;
}

/* The next staging buffer of the ring, at least `bytes` large, once the copy that last read it
 * has completed (in steady state it long has: it belongs to a batch two steps back). */
static int spk_ocl_stage_get(spk_ocl *o, size_t bytes, spk_ocl_stage **out, spk_error *err)
{
    cl_int rc;
    if (!o->xfer) {
        o->xfer = clCreateCommandQueue(o->ctx, o->device, 0, &rc);
        if (rc != CL_SUCCESS || !o->xfer) {
            o->xfer = NULL;
            return spk_ocl_fail(err, rc, "cannot create an OpenCL copy queue on %s", o->dev_name);
        }
    }
    spk_ocl_stage *st = &o->stage[o->next_stage];
    o->next_stage = (o->next_stage + 1) % SPK_OCL_NSTAGE;
    if (st->ev) {
        rc = clWaitForEvents(1, &st->ev);
        clReleaseEvent(st->ev);
        st->ev = NULL;
        if (rc != CL_SUCCESS)
            return spk_ocl_fail(err, rc, "an earlier OpenCL upload on %s failed", o->dev_name);
    }
    if (st->cap < bytes) {
        if (st->ptr) {
            cl_event ev = NULL;
            rc = clEnqueueUnmapMemObject(o->xfer, st->mem, st->ptr, 0, NULL, &ev);
            if (rc == CL_SUCCESS && ev) {
                rc = clWaitForEvents(1, &ev);
                clReleaseEvent(ev);
            }
            st->ptr = NULL;
            if (rc != CL_SUCCESS)
                return spk_ocl_fail(err, rc, "cannot unmap a staging buffer on %s", o->dev_name);
        }
        if (st->mem)
            clReleaseMemObject(st->mem);
        st->mem = NULL;
        st->cap = 0;
        /* at least 64 KiB, so that labels and ids reuse their slots without regrowing */
        size_t cap = bytes < ((size_t)1 << 16) ? ((size_t)1 << 16) : bytes;
        st->mem = clCreateBuffer(o->ctx, CL_MEM_READ_ONLY | CL_MEM_ALLOC_HOST_PTR, cap, NULL, &rc);
        if (rc != CL_SUCCESS || !st->mem) {
            st->mem = NULL;
            return spk_ocl_fail(err, rc,
                                "cannot allocate a pinned staging buffer of %zu bytes on %s", cap,
                                o->dev_name);
        }
        st->ptr =
            clEnqueueMapBuffer(o->xfer, st->mem, CL_TRUE, CL_MAP_WRITE, 0, cap, 0, NULL, NULL, &rc);
        if (rc != CL_SUCCESS || !st->ptr) {
            st->ptr = NULL;
            clReleaseMemObject(st->mem);
            st->mem = NULL;
            return spk_ocl_fail(err, rc, "cannot map a staging buffer of %zu bytes on %s", cap,
                                o->dev_name);
        }
        st->cap = cap;
    }
    *out = st;
    return SPK_OK;
}

/* ---- open / destroy ---- */

static void spk_ocl_destroy(spk_backend *be)
{
    if (!be)
        return;
    spk_ocl *o = be->impl;
    if (o) {
        if (o->queue)
            clFinish(o->queue);
        spk_ocl_stage_free(o);
        if (o->builtin)
            spk_ocl_program_free(be, o->builtin);
        spk_ocl_prof_free(o);
        if (o->queue)
            clReleaseCommandQueue(o->queue);
        if (o->ctx) {
            clReleaseContext(o->ctx);
            if (atomic_fetch_sub(&spk_ocl_open_count, 1) == 1)
                CLBlastClearCache();
        }
        free(o);
    }
    free(be);
}

int spk_backend_opencl_open(const char *spec, spk_backend **out, spk_error *err)
{
    if (!out)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_backend_opencl_open: out is NULL");
    *out = NULL;
    if (!spec)
        spec = "opencl";
    spk_ocl_topo t;
    int rc = spk_ocl_topo_get(&t, err);
    if (rc)
        return rc;
    unsigned p = 0, d = 0;
    rc = spk_ocl_choose(spec, &t, &p, &d, err);
    if (rc) {
        spk_ocl_topo_free(&t);
        return rc;
    }
    cl_platform_id plat = t.plats[p];
    cl_device_id dev = t.devs[p][d];
    spk_ocl_topo_free(&t);

    spk_backend *be = calloc(1, sizeof *be);
    spk_ocl *o = calloc(1, sizeof *o);
    if (!be || !o) {
        free(be);
        free(o);
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory opening OpenCL device");
    }
    /* SPIKECL_CL_OVERLAP=0 makes every upload blocking (the tests compare the two paths) */
    const char *overlap = getenv("SPIKECL_CL_OVERLAP");
    o->ops = spk_ocl_ops;
    if (overlap && strcmp(overlap, "0") == 0)
        o->ops.upload_async = NULL;
    /* A GPU copies with a DMA engine while it computes, given a second queue; a CPU device
     * (PoCL) copies with the threads that run the kernels, so there the copy goes on the one
     * queue, in order, and only the host's wait goes away. SPIKECL_CL_COPY_QUEUE=1 or 0
     * overrides (the tests exercise the two-queue path on PoCL). */
    const char *cq = getenv("SPIKECL_CL_COPY_QUEUE");
    o->copy_queue = cq && cq[0] ? strcmp(cq, "0") != 0 : -1;
    be->ops = &o->ops;
    be->impl = o;
    o->platform = plat;
    o->device = dev;
    o->pidx = p;
    o->didx = d;
    spk_ocl_dev_str(dev, CL_DEVICE_NAME, o->dev_name, sizeof o->dev_name);
    spk_ocl_dev_str(dev, CL_DEVICE_VENDOR, o->dev_vendor, sizeof o->dev_vendor);
    spk_ocl_dev_str(dev, CL_DRIVER_VERSION, o->driver, sizeof o->driver);
    spk_ocl_plat_str(plat, CL_PLATFORM_NAME, o->plat_name, sizeof o->plat_name);
    spk_ocl_plat_str(plat, CL_PLATFORM_VERSION, o->plat_version, sizeof o->plat_version);

    cl_bool avail = CL_FALSE, compiler = CL_FALSE;
    cl_uint cus = 0;
    cl_ulong mem = 0;
    cl_int cr = clGetDeviceInfo(dev, CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
    if (cr == CL_SUCCESS)
        cr = clGetDeviceInfo(dev, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
    if (cr == CL_SUCCESS)
        cr = clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof o->max_alloc, &o->max_alloc,
                             NULL);
    if (cr == CL_SUCCESS)
        cr =
            clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof o->max_wg, &o->max_wg, NULL);
    if (cr == CL_SUCCESS)
        cr = clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
    if (cr == CL_SUCCESS)
        cr = clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    if (cr == CL_SUCCESS)
        cr = clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof o->fp_config, &o->fp_config,
                             NULL);
    if (cr != CL_SUCCESS) {
        rc = spk_ocl_fail(err, cr, "cannot query OpenCL device opencl:%u:%u (%s)", p, d,
                          o->dev_name);
        spk_ocl_destroy(be);
        return rc;
    }
    if (!avail || !compiler) {
        rc = spk_error_set(err, SPK_ERR_BACKEND, "OpenCL device opencl:%u:%u (%s) %s", p, d,
                           o->dev_name, !avail ? "is not available" : "has no OpenCL C compiler");
        spk_ocl_destroy(be);
        return rc;
    }

    /* Arg info lets launch() check argument kinds before OpenCL sees them. Without the rounding
     * flag OpenCL allows 2.5 ulp for x / y and 3 ulp for sqrt (AMD turns 1.0f / x into a bare
     * reciprocal); the CPU rounds both correctly. SPIKECL_CL_BUILD_OPTIONS is appended (tests:
     * -cl-opt-disable); the options are part of the binary cache's key. */
    const char *extra = getenv("SPIKECL_CL_BUILD_OPTIONS");
    int w = snprintf(o->build_options, sizeof o->build_options, "-cl-kernel-arg-info%s%s%s",
                     (o->fp_config & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT)
                         ? " -cl-fp32-correctly-rounded-divide-sqrt"
                         : "",
                     extra && extra[0] ? " " : "", extra ? extra : "");
    if (w < 0 || (size_t)w >= sizeof o->build_options) {
        rc = spk_error_set(err, SPK_ERR_INVALID, "SPIKECL_CL_BUILD_OPTIONS is too long (%zu bytes)",
                           strlen(extra));
        spk_ocl_destroy(be);
        return rc;
    }
    /* GPU memory is not zeroed: SPIKECL_CL_POISON=1 fills every new buffer with NaN so that tests
     * catch kernels that read what nobody wrote. */
    const char *poison = getenv("SPIKECL_CL_POISON");
    o->poison = poison && strcmp(poison, "1") == 0;

    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plat, 0};
    o->ctx = clCreateContext(props, 1, &dev, NULL, NULL, &cr);
    if (cr != CL_SUCCESS || !o->ctx) {
        o->ctx = NULL;
        rc = spk_ocl_fail(err, cr, "cannot create an OpenCL context on opencl:%u:%u (%s)", p, d,
                          o->dev_name);
        spk_ocl_destroy(be);
        return rc;
    }
    atomic_fetch_add(&spk_ocl_open_count, 1);

    if (o->copy_queue < 0)
        o->copy_queue = (spk_ocl_dev_type(dev) & CL_DEVICE_TYPE_GPU) != 0;

    const char *prof = getenv("SPIKECL_PROFILE");
    o->profiling = prof && strcmp(prof, "1") == 0;
    o->queue = clCreateCommandQueue(o->ctx, dev, o->profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &cr);
    if (cr != CL_SUCCESS || !o->queue) {
        o->queue = NULL;
        rc = spk_ocl_fail(err, cr, "cannot create an OpenCL command queue on opencl:%u:%u (%s)", p,
                          d, o->dev_name);
        spk_ocl_destroy(be);
        return rc;
    }

    snprintf(be->description, sizeof be->description,
             "opencl:%u:%u %.120s (%.60s, %u CUs, %llu MiB)", p, d, o->dev_name, o->plat_name, cus,
             (unsigned long long)(mem >> 20));
    *out = be;
    return SPK_OK;
}

/* ---- buffers ---- */

/* 1 if [off, off + n) lies inside a region of size `size`, without overflow. */
static int spk_ocl_in_range(size_t off, size_t n, size_t size)
{
    return off <= size && n <= size - off;
}

static int spk_ocl_alloc(spk_backend *be, size_t bytes, spk_buffer **out, spk_error *err)
{
    spk_ocl *o = be->impl;
    *out = NULL;
    if (bytes > o->max_alloc)
        return spk_error_set(err, SPK_ERR_NOMEM,
                             "OpenCL buffer of %zu MiB exceeds the largest allocation of %s "
                             "(%llu MiB, CL_DEVICE_MAX_MEM_ALLOC_SIZE)",
                             bytes >> 20, o->dev_name, (unsigned long long)(o->max_alloc >> 20));
    spk_buffer *b = calloc(1, sizeof *b);
    if (!b)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    cl_int rc;
    /* OpenCL refuses zero-sized buffers; an empty tensor still needs a valid handle. */
    b->mem = clCreateBuffer(o->ctx, CL_MEM_READ_WRITE, bytes ? bytes : sizeof(float), NULL, &rc);
    if (rc != CL_SUCCESS || !b->mem) {
        free(b);
        return spk_ocl_fail(err, rc, "cannot allocate an OpenCL buffer of %zu bytes on %s", bytes,
                            o->dev_name);
    }
    b->bytes = bytes;
    if (o->poison) {
        const cl_uint nan_bits = 0x7fc00000u; /* a quiet float NaN */
        size_t size = bytes ? bytes : sizeof(float);
        rc = CL_SUCCESS;
        if (size >= sizeof nan_bits)
            rc = clEnqueueFillBuffer(o->queue, b->mem, &nan_bits, sizeof nan_bits, 0,
                                     size / sizeof nan_bits * sizeof nan_bits, 0, NULL, NULL);
        if (rc != CL_SUCCESS) {
            clReleaseMemObject(b->mem);
            free(b);
            return spk_ocl_fail(err, rc, "cannot fill a new OpenCL buffer with NaN on %s",
                                o->dev_name);
        }
    }
    be->stats.bytes_allocated += bytes;
    if (be->stats.bytes_allocated > be->stats.bytes_peak)
        be->stats.bytes_peak = be->stats.bytes_allocated;
    *out = b;
    return SPK_OK;
}

static void spk_ocl_release(spk_backend *be, spk_buffer *buf)
{
    if (!buf)
        return;
    /* OpenCL defers the actual free until queued commands using the buffer are done. */
    clReleaseMemObject(buf->mem);
    be->stats.bytes_allocated -= buf->bytes;
    free(buf);
}

/* The arguments of both uploads, checked before anything is queued. */
static int spk_ocl_upload_args(const spk_buffer *dst, size_t offset, const void *src, size_t bytes,
                               spk_error *err)
{
    if (!dst || (!src && bytes))
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL upload: NULL buffer or source");
    if (!spk_ocl_in_range(offset, bytes, dst->bytes))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "OpenCL upload of %zu bytes at offset %zu overruns a buffer of %zu "
                             "bytes",
                             bytes, offset, dst->bytes);
    return SPK_OK;
}

static int spk_ocl_upload(spk_backend *be, spk_buffer *dst, size_t offset, const void *src,
                          size_t bytes, spk_error *err)
{
    spk_ocl *o = be->impl;
    int arc = spk_ocl_upload_args(dst, offset, src, bytes, err);
    if (arc)
        return arc;
    if (!bytes)
        return SPK_OK;
    /* Blocking: the caller may reuse src as soon as we return. */
    cl_int rc =
        clEnqueueWriteBuffer(o->queue, dst->mem, CL_TRUE, offset, bytes, src, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "OpenCL upload of %zu bytes failed", bytes);
    return SPK_OK;
}

/* The copy runs on the copy queue from a pinned staging buffer; the compute queue gets a barrier
 * on its event, so the commands issued after this call wait for it and those issued before do
 * not. The host reuses the staging buffer only after the event completed (spk_ocl_stage_get). */
static int spk_ocl_upload_async(spk_backend *be, spk_buffer *dst, size_t offset, const void *src,
                                size_t bytes, spk_error *err)
{
    spk_ocl *o = be->impl;
    int arc = spk_ocl_upload_args(dst, offset, src, bytes, err);
    if (arc)
        return arc;
    if (!bytes)
        return SPK_OK;
    spk_ocl_stage *st = NULL;
    int rc = spk_ocl_stage_get(o, bytes, &st, err);
    if (rc)
        return rc;
    memcpy(st->ptr, src, bytes);
    cl_event ev = NULL;
    cl_command_queue q = o->copy_queue ? o->xfer : o->queue;
    cl_int cr = clEnqueueWriteBuffer(q, dst->mem, CL_FALSE, offset, bytes, st->ptr, 0, NULL, &ev);
    if (cr != CL_SUCCESS)
        return spk_ocl_fail(err, cr, "OpenCL upload of %zu bytes failed", bytes);
    /* the copy may sit in the queue until flushed: start it now, while the device computes */
    if (o->copy_queue) {
        cr = clFlush(o->xfer);
        if (cr == CL_SUCCESS)
            cr = clEnqueueBarrierWithWaitList(o->queue, 1, &ev, NULL);
    }
    if (cr != CL_SUCCESS) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
        return spk_ocl_fail(err, cr,
                            "OpenCL upload of %zu bytes: cannot order it before the "
                            "next commands",
                            bytes);
    }
    st->ev = ev;
    return SPK_OK;
}

static int spk_ocl_download(spk_backend *be, const spk_buffer *src, size_t offset, void *dst,
                            size_t bytes, spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!src || (!dst && bytes))
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL download: NULL buffer or destination");
    if (!spk_ocl_in_range(offset, bytes, src->bytes))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "OpenCL download of %zu bytes at offset %zu overruns a buffer of "
                             "%zu bytes",
                             bytes, offset, src->bytes);
    if (!bytes)
        return SPK_OK;
    cl_int rc = clEnqueueReadBuffer(o->queue, src->mem, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "OpenCL download of %zu bytes failed", bytes);
    return SPK_OK;
}

static int spk_ocl_fill(spk_backend *be, spk_buffer *buf, size_t offset, size_t count, float value,
                        spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!buf)
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL fill: NULL buffer");
    size_t nfl = buf->bytes / sizeof(float);
    if (!spk_ocl_in_range(offset, count, nfl))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "OpenCL fill of %zu floats at float offset %zu overruns a buffer of "
                             "%zu floats",
                             count, offset, nfl);
    if (!count)
        return SPK_OK;
    cl_float v = value;
    cl_int rc = clEnqueueFillBuffer(o->queue, buf->mem, &v, sizeof v, offset * sizeof(float),
                                    count * sizeof(float), 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "OpenCL fill of %zu floats failed", count);
    return SPK_OK;
}

static int spk_ocl_copy(spk_backend *be, spk_buffer *dst, size_t dst_offset, const spk_buffer *src,
                        size_t src_offset, size_t bytes, spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!dst || !src)
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL copy: NULL buffer");
    if (!spk_ocl_in_range(src_offset, bytes, src->bytes) ||
        !spk_ocl_in_range(dst_offset, bytes, dst->bytes))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "OpenCL copy of %zu bytes from offset %zu (buffer of %zu) to offset "
                             "%zu (buffer of %zu) is out of range",
                             bytes, src_offset, src->bytes, dst_offset, dst->bytes);
    if (!bytes)
        return SPK_OK;
    if (src == dst && src_offset < dst_offset + bytes && dst_offset < src_offset + bytes)
        return spk_error_set(err, SPK_ERR_INVALID,
                             "OpenCL copy within one buffer: regions [%zu, +%zu) and [%zu, +%zu) "
                             "overlap",
                             src_offset, bytes, dst_offset, bytes);
    cl_int rc = clEnqueueCopyBuffer(o->queue, src->mem, dst->mem, src_offset, dst_offset, bytes, 0,
                                    NULL, NULL);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "OpenCL copy of %zu bytes failed", bytes);
    return SPK_OK;
}

/* ---- GEMM ---- */

/* Helper kernels of the backend itself, single-source like the plugins'. */
static const char spk_ocl_builtin_source[] =
    "/* C[r, c] = beta * C[r, c] over an m x n block (beta == 0 writes zeros, as BLAS does). */\n"
    "SPK_KERNEL void spk_ocl_scale_block(SPK_GLOBAL float *c, const int off, const int ld,\n"
    "                                    const int m, const int n, const float beta)\n"
    "{\n"
    "    SPK_FOR_ITEMS(i, m * n) {\n"
    "        const int r = i / n, col = i - r * n;\n"
    "        SPK_GLOBAL float *p = c + off + (long)r * ld + col;\n"
    "        *p = beta == 0.0f ? 0.0f : beta * *p;\n"
    "    } SPK_END_ITEMS\n"
    "}\n";

const spk_kernel_set spk_backend_opencl_builtin_kernels = {"opencl backend", spk_ocl_builtin_source,
                                                           NULL};

static int spk_ocl_builtin(spk_backend *be, spk_program **out, spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!o->builtin) {
        int rc = spk_ocl_program_build(be, &spk_backend_opencl_builtin_kernels, &o->builtin, err);
        if (rc)
            return rc;
    }
    *out = o->builtin;
    return SPK_OK;
}

/* C = beta * C on the m x n block at c_off with leading dimension ldc (the k == 0 case, which
 * CLBlast rejects). */
static int spk_ocl_scale_block(spk_backend *be, spk_buffer *c, size_t c_off, size_t ldc, size_t m,
                               size_t n, float beta, spk_error *err)
{
    if (m > INT_MAX || n > INT_MAX || m * n > INT_MAX || c_off > INT_MAX || ldc > INT_MAX ||
        ldc < n || !spk_ocl_in_range(c_off, (m - 1) * ldc + n, c->bytes / sizeof(float)))
        return spk_error_set(err, SPK_ERR_INVALID,
                             "OpenCL gemm with k = 0: C block %zu x %zu (ldc %zu, offset %zu) is "
                             "out of range",
                             m, n, ldc, c_off);
    spk_program *prog;
    int rc = spk_ocl_builtin(be, &prog, err);
    if (rc)
        return rc;
    spk_karg a[6];
    a[0].type = SPK_KARG_BUF;
    a[0].v.p = c;
    a[1].type = SPK_KARG_INT;
    a[1].v.i = (int32_t)c_off;
    a[2].type = SPK_KARG_INT;
    a[2].v.i = (int32_t)ldc;
    a[3].type = SPK_KARG_INT;
    a[3].v.i = (int32_t)m;
    a[4].type = SPK_KARG_INT;
    a[4].v.i = (int32_t)n;
    a[5].type = SPK_KARG_FLOAT;
    a[5].v.f = beta;
    return spk_ocl_launch(be, prog, "spk_ocl_scale_block", m * n, 6, a, err);
}

static int spk_ocl_gemm(spk_backend *be, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                        float alpha, const spk_buffer *a, size_t a_off, size_t lda,
                        const spk_buffer *b, size_t b_off, size_t ldb, float beta, spk_buffer *c,
                        size_t c_off, size_t ldc, spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!a || !b || !c)
        return spk_error_set(err, SPK_ERR_INVALID, "OpenCL gemm: NULL buffer");
    if (m == 0 || n == 0)
        return SPK_OK;
    uint64_t t0 = spk_ocl_now_ns();
    int rc;
    if (k == 0) {
        rc = spk_ocl_scale_block(be, c, c_off, ldc, m, n, beta, err);
    } else {
        cl_command_queue q = o->queue;
        CLBlastStatusCode st =
            CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                         trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a->mem,
                         a_off, lda, b->mem, b_off, ldb, beta, c->mem, c_off, ldc, &q, NULL);
        if (st == CLBlastSuccess)
            rc = SPK_OK;
        else
            rc = spk_error_set(
                err,
                (st == CLBlastOpenCLOutOfHostMemory || st == CLBlastTempBufferAllocFailure)
                    ? SPK_ERR_NOMEM
                : (st <= -1007 && st >= -1024) ? SPK_ERR_INVALID
                                               : SPK_ERR_BACKEND,
                "CLBlast SGEMM failed: %s (%d) [m=%zu n=%zu k=%zu trans_a=%d trans_b=%d "
                "a_off=%zu lda=%zu b_off=%zu ldb=%zu c_off=%zu ldc=%zu]",
                spk_clblast_strerror(st), (int)st, m, n, k, trans_a != 0, trans_b != 0, a_off, lda,
                b_off, ldb, c_off, ldc);
    }
    be->stats.gemm_ns += spk_ocl_now_ns() - t0;
    be->stats.gemm_calls++;
    return rc;
}

/* ---- sync, profile, ops ---- */

static int spk_ocl_sync(spk_backend *be, spk_error *err)
{
    spk_ocl *o = be->impl;
    cl_int rc = clFinish(o->queue);
    if (o->profiling)
        spk_ocl_prof_harvest(o, 0);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "OpenCL queue on %s failed", o->dev_name);
    return SPK_OK;
}

static int spk_ocl_prof_cmp(const void *x, const void *y)
{
    const spk_kernel_profile *a = x, *b = y;
    return a->ms < b->ms ? 1 : a->ms > b->ms ? -1 : strcmp(a->name, b->name);
}

static int spk_ocl_profile(spk_backend *be, spk_kernel_profile **out, int *n, spk_error *err)
{
    spk_ocl *o = be->impl;
    if (!o->profiling)
        return spk_error_set(err, SPK_ERR_UNSUPPORTED,
                             "%s keeps no per-kernel profile (set SPIKECL_PROFILE=1 before "
                             "opening it)",
                             o->dev_name);
    cl_int rc = clFinish(o->queue);
    if (rc != CL_SUCCESS)
        return spk_ocl_fail(err, rc, "OpenCL queue on %s failed", o->dev_name);
    spk_ocl_prof_harvest(o, 1);
    spk_kernel_profile *p = calloc(o->nprof ? o->nprof : 1, sizeof *p);
    if (!p)
        return spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
    int k = 0;
    for (size_t i = 0; i < o->nprof; i++) {
        if (!o->prof[i].calls)
            continue;
        snprintf(p[k].name, sizeof p[k].name, "%s", o->prof[i].name);
        p[k].calls = o->prof[i].calls;
        p[k].ms = (double)o->prof[i].ns / 1e6;
        k++;
    }
    qsort(p, (size_t)k, sizeof *p, spk_ocl_prof_cmp);
    *out = p;
    *n = k;
    return SPK_OK;
}

static const spk_backend_ops spk_ocl_ops = {
    .name = "opencl",
    .destroy = spk_ocl_destroy,
    .alloc = spk_ocl_alloc,
    .release = spk_ocl_release,
    .upload = spk_ocl_upload,
    .download = spk_ocl_download,
    .fill = spk_ocl_fill,
    .copy = spk_ocl_copy,
    .gemm = spk_ocl_gemm,
    .program_build = spk_ocl_program_build,
    .program_free = spk_ocl_program_free,
    .launch = spk_ocl_launch,
    .sync = spk_ocl_sync,
    .profile = spk_ocl_profile,
    .upload_async = spk_ocl_upload_async,
};
