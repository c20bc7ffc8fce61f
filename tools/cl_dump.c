/* spikecl-cl-dump: writes every OpenCL program the backend would build, exactly as it assembles
 * them, one file per kernel set, for scripts/cl-compile-check.sh. No device is needed.
 *
 *   spikecl-cl-dump DIR [PLUGIN.so | KERNELS.cl ...]
 *
 * DIR/<owner>.cl for the core's kernels, the backend's helpers, every built-in layer type with
 * OpenCL source and every type the given plugins register; a KERNELS.cl argument is assembled
 * as a kernel set of its own (owner: the file's base name), so a plugin's kernels can be checked
 * before the plugin is built. Exit 0 ok, 2 bad usage or an argument that does not load, 1
 * anything else. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core_kernels.h"
#include "opencl.h"
#include "spikecl/plugin.h"
#include "spikecl/spikecl.h"

/* The whole file, malloc'ed and NUL-terminated, or NULL. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int dump(const char *dir, const spk_kernel_set *set)
{
    if (!set->opencl_source)
        return 0;
    const char *owner = set->owner ? set->owner : "unnamed";
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/", dir);
    /* the owner ("neuron.lif") names the file; anything but [A-Za-z0-9._-] becomes '_' */
    for (const char *s = owner; *s && w > 0 && (size_t)w + 5 < sizeof path; s++) {
        const char c = *s;
        const int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-' || c == '_';
        path[w++] = ok ? c : '_';
    }
    if (w <= 0 || (size_t)w + 4 >= sizeof path) {
        fprintf(stderr, "spikecl-cl-dump: path too long for '%s'\n", owner);
        return 1;
    }
    memcpy(path + w, ".cl", 4);
    char *text = spk_backend_opencl_program_text(owner, set->opencl_source);
    if (!text) {
        fprintf(stderr, "spikecl-cl-dump: out of memory\n");
        return 1;
    }
    FILE *f = fopen(path, "w");
    int rc = !f || fputs(text, f) < 0;
    if (f && fclose(f) != 0)
        rc = 1;
    if (rc)
        fprintf(stderr, "spikecl-cl-dump: cannot write %s: %s\n", path, strerror(errno));
    else
        printf("%s\n", path);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: spikecl-cl-dump DIR [PLUGIN.so ...]\n");
        return 2;
    }
    const char *dir = argv[1];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "spikecl-cl-dump: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    spk_error err = {0};
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        if (ends_with(argv[i], ".cl")) {
            char *src = read_text(argv[i]);
            if (!src) {
                fprintf(stderr, "spikecl-cl-dump: cannot read %s: %s\n", argv[i], strerror(errno));
                return 2;
            }
            char owner[256];
            const char *base = strrchr(argv[i], '/');
            snprintf(owner, sizeof owner, "%s", base ? base + 1 : argv[i]);
            owner[strlen(owner) - 3] = '\0';
            spk_kernel_set set = {owner, src, NULL};
            rc |= dump(dir, &set);
            free(src);
        } else if (spk_plugin_load(argv[i], &err) != SPK_OK) {
            fprintf(stderr, "spikecl-cl-dump: %s\n", err.msg);
            return 2;
        }
    }
    rc |= dump(dir, &spk_core_kernels) | dump(dir, &spk_backend_opencl_builtin_kernels);
    const spk_registry *reg = spk_registry_default();
    for (int i = 0; i < spk_registry_count(reg); i++)
        rc |= dump(dir, &spk_registry_get(reg, i, NULL)->kernels);
    return rc ? 1 : 0;
}
