/* The backend registry: opens devices by id and lists them. It sits above core and the backends
 * (core never calls it): each backend contributes one entry, {prefix, open, list}, and "auto"
 * picks a device from what the entries list. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spikecl/backend.h"
#ifdef SPIKECL_HAVE_OPENCL
#include "opencl.h"
#endif

int spk_backend_cpu_open(const char *id, spk_backend **out, spk_error *err);
int spk_backend_cpu_devices(spk_device_info **out, int *n, spk_error *err);

typedef struct spk_backend_entry {
    const char *prefix; /* an id is the prefix alone or the prefix, ':' and the backend's rest */
    const char *syntax; /* for the error on an id no entry takes */
    int (*open)(const char *id, spk_backend **out, spk_error *err);
    int (*devices)(spk_device_info **out, int *n, spk_error *err);
} spk_backend_entry;

static const spk_backend_entry spk_backends[] = {
    {"cpu", "cpu", spk_backend_cpu_open, spk_backend_cpu_devices},
#ifdef SPIKECL_HAVE_OPENCL
    {"opencl", "opencl, opencl:P:D, opencl:NAME", spk_backend_opencl_open,
     spk_backend_opencl_devices},
#endif
};
#define SPK_NBACKENDS (sizeof spk_backends / sizeof spk_backends[0])

static int spk_is_auto(const char *id)
{
    return !id || !id[0] || strcmp(id, "auto") == 0;
}

int spk_device_list(spk_device_info **out, int *n, spk_error *err)
{
    *out = NULL;
    *n = 0;
    spk_device_info *all = NULL;
    int total = 0;
    for (size_t b = 0; b < SPK_NBACKENDS; b++) {
        spk_device_info *part = NULL;
        int np = 0;
        /* a platform that fails to enumerate (no ICD, a broken driver) lists nothing; the
         * error surfaces when someone opens one of its ids */
        if (spk_backends[b].devices(&part, &np, NULL) || np == 0) {
            free(part);
            continue;
        }
        spk_device_info *grown = realloc(all, (size_t)(total + np) * sizeof *all);
        if (!grown) {
            free(part);
            free(all);
            return spk_error_set(err, SPK_ERR_NOMEM, "out of memory listing devices");
        }
        all = grown;
        memcpy(all + total, part, (size_t)np * sizeof *all);
        total += np;
        free(part);
    }
    *out = all;
    *n = total;
    return SPK_OK;
}

void spk_device_list_free(spk_device_info *list)
{
    free(list);
}

int spk_backend_resolve(const char *id, char *out, size_t n, spk_error *err)
{
    if (!out || n == 0)
        return spk_error_set(err, SPK_ERR_INVALID, "spk_backend_resolve: no output buffer");
    if (spk_is_auto(id)) {
        const char *env = getenv("SPIKECL_DEVICE");
        if (env && env[0] && strcmp(env, "auto") != 0) {
            id = env;
        } else {
            /* the first GPU any backend lists, else the CPU (a CPU OpenCL device never is) */
            spk_device_info *list = NULL;
            int nd = 0;
            id = "cpu";
            if (spk_device_list(&list, &nd, err) == SPK_OK)
                for (int i = 0; i < nd; i++)
                    if (list[i].is_gpu) {
                        snprintf(out, n, "%s", list[i].id);
                        spk_device_list_free(list);
                        return SPK_OK;
                    }
            spk_device_list_free(list);
        }
    }
    if ((size_t)snprintf(out, n, "%s", id) >= n)
        return spk_error_set(err, SPK_ERR_INVALID, "device string '%.40s...' is too long", id);
    return SPK_OK;
}

int spk_backend_open(const char *id, spk_backend **out, spk_error *err)
{
    char resolved[256];
    if (id && !id[0])
        return spk_error_set(err, SPK_ERR_INVALID, "empty device string");
    int rc = spk_backend_resolve(id, resolved, sizeof resolved, err);
    if (rc)
        return rc;
    for (size_t b = 0; b < SPK_NBACKENDS; b++) {
        size_t k = strlen(spk_backends[b].prefix);
        if (strncmp(resolved, spk_backends[b].prefix, k) == 0 &&
            (resolved[k] == '\0' || resolved[k] == ':'))
            return spk_backends[b].open(resolved, out, err);
    }
#ifndef SPIKECL_HAVE_OPENCL
    if (strncmp(resolved, "opencl", 6) == 0 && (resolved[6] == '\0' || resolved[6] == ':'))
        return spk_error_set(err, SPK_ERR_UNSUPPORTED,
                             "device '%s': this spikecl was built without OpenCL", resolved);
#endif
    char expected[256] = "";
    size_t len = 0;
    for (size_t b = 0; b < SPK_NBACKENDS && len < sizeof expected; b++) {
        int w = snprintf(expected + len, sizeof expected - len, "%s%s", b ? ", " : "",
                         spk_backends[b].syntax);
        len = w < 0 ? sizeof expected : len + (size_t)w;
    }
    return spk_error_set(err, SPK_ERR_INVALID, "bad device string '%s': expected auto, %s",
                         resolved, expected);
}

void spk_backend_free(spk_backend *be)
{
    if (be)
        be->ops->destroy(be);
}

int spk_backend_profile(spk_backend *be, spk_kernel_profile **out, int *n, spk_error *err)
{
    *out = NULL;
    *n = 0;
    if (!be || !be->ops->profile)
        return spk_error_set(err, SPK_ERR_UNSUPPORTED, "%s keeps no per-kernel profile",
                             be ? be->ops->name : "no backend");
    return be->ops->profile(be, out, n, err);
}

void spk_kernel_profile_free(spk_kernel_profile *p)
{
    free(p);
}
