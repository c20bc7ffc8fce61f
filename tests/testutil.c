#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

const char *spk_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/spikecl-test-XXXXXX");
        if (!mkdtemp(dir))
            return "/tmp";
    }
    return dir;
}

char *spk_test_write(const char *name, const char *text)
{
    size_t n = strlen(spk_test_tmpdir()) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/%s", spk_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(path);
        return NULL;
    }
    fputs(text, f);
    fclose(f);
    return path;
}

int spk_test_run(const char *cmd, char **output)
{
    char *full = malloc(strlen(cmd) + 16);
    if (!full)
        return -1;
    sprintf(full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
    if (!p)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += r;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = '\0';
    int st = pclose(p);
    if (output)
        *output = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void spk_test_fill(float *x, size_t n, float lo, float hi, unsigned seed)
{
    unsigned s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)(s >> 8) / 16777216.0f;
    }
}

double spk_test_nerr(const float *a, const float *b, size_t n)
{
    double mx = 1.0, d = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(b[i]) > mx)
            mx = fabs(b[i]);
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > d || isnan(e))
            d = isnan(e) ? INFINITY : e;
    }
    return d / mx;
}

/* A relocated copy of the tests (scripts/bundle.sh) names its own CLI and the folder that holds
 * models/; a build tree uses the paths compiled in. */
static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

int spk_test_cli(const char *args, char **output)
{
    const char *src = env_or("SPIKECL_TEST_SOURCE_DIR", SPK_SOURCE_DIR);
    const char *cli = env_or("SPIKECL_TEST_CLI", SPK_CLI);
    size_t n = strlen(src) + strlen(cli) + strlen(args) + 16;
    char *cmd = malloc(n);
    if (!cmd)
        return -1;
    snprintf(cmd, n, "cd %s && %s %s", src, cli, args);
    int rc = spk_test_run(cmd, output);
    free(cmd);
    return rc;
}

double spk_test_json_number(const char *out, const char *key)
{
    const char *last = out;
    for (const char *p = out; *p; p++)
        if (*p == '\n' && p[1])
            last = p + 1;
    char k[128];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *v = strstr(last, k);
    return v ? atof(v + strlen(k)) : -1.0;
}

void spk_test_no_device(const char *why)
{
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        cr_assert_fail("CI=true and no OpenCL device to test against: %s", why);
    fprintf(stderr, "SKIP: no OpenCL device: %s\n", why);
    cr_skip_test("no OpenCL device: %s", why);
}

const char *spk_test_device_env(void)
{
    const char *env = getenv("SPIKECL_TEST_DEVICE");
    return env && env[0] ? env : NULL;
}

spk_backend *spk_test_opencl_device(char *id, size_t n)
{
    spk_error err = {0};
    spk_backend *be = NULL;
    char fallback[64];
    if (!id) {
        id = fallback;
        n = sizeof fallback;
    }
    const char *env = spk_test_device_env();
    if (env && strncmp(env, "opencl", 6) == 0) {
        snprintf(id, n, "%s", env);
        cr_assert_eq(spk_backend_open(env, &be, &err), SPK_OK, "SPIKECL_TEST_DEVICE=%s: %s", env,
                     err.msg);
        return be;
    }
    snprintf(id, n, "opencl:0:0");
    spk_device_info *list = NULL;
    int nd = 0;
    if (spk_device_list(&list, &nd, &err) == SPK_OK)
        for (int i = 0; i < nd; i++)
            if (list[i].is_gpu && strncmp(list[i].id, "opencl:", 7) == 0) {
                snprintf(id, n, "%s", list[i].id);
                break;
            }
    spk_device_list_free(list);
    int rc = spk_backend_open(id, &be, &err);
    if (rc == SPK_ERR_NOTFOUND || rc == SPK_ERR_UNSUPPORTED)
        spk_test_no_device(err.msg);
    cr_assert_eq(rc, SPK_OK, "%s: %s", id, err.msg);
    return be;
}
