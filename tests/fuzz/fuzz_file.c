/* Scratch files for the fuzz harnesses (see fuzz.h). */
#define _POSIX_C_SOURCE 200809L

#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char spk_fuzz_dir[4096];

static void spk_fuzz_cleanup(void)
{
    DIR *d = opendir(spk_fuzz_dir);
    if (d) {
        struct dirent *e;
        char p[4096 + 256];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", spk_fuzz_dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(spk_fuzz_dir);
}

int spk_fuzz_file(const char *name, const uint8_t *data, size_t size, char *path, size_t n)
{
    if (!spk_fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(spk_fuzz_dir, sizeof spk_fuzz_dir, "%s/spikecl-fuzz-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(spk_fuzz_dir)) {
            perror("spikecl fuzz: mkdtemp");
            spk_fuzz_dir[0] = 0;
            return -1;
        }
        atexit(spk_fuzz_cleanup);
    }
    if ((size_t)snprintf(path, n, "%s/%s", spk_fuzz_dir, name) >= n)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size)
        return -1;
    return 0;
}
