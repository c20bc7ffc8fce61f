/* spikecl internal — atomic writes, mkdir -p, dirname, and the clean-up of temporary files that
 * a crashed process left behind. */
#define _POSIX_C_SOURCE 200809L

#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *spk_fs_dirname(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir)
        return NULL;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    return dir;
}

int spk_fs_mkdir_p(const char *dir, mode_t mode)
{
    if (!dir || !*dir) {
        errno = ENOENT;
        return -1;
    }
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(p, dir, n + 1);
    int rc = 0;
    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            rc = -1;
        p[i] = c;
    }
    free(p);
    if (rc)
        return -1;
    /* EEXIST also covers a file of that name: only a folder will do. */
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* The decimal number at s, ending at *after; -1 when there is none. */
static long spk_fs_number(const char *s, const char **after)
{
    long v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > 100000000L) /* far above any pid_max or counter */
            return -1;
        v = v * 10 + (*p - '0');
    }
    *after = p;
    return p == s ? -1 : v;
}

/* The pid in a temporary file name of ours, or 0 when name is not one. */
static long spk_fs_tmp_pid(const char *name, const char *base)
{
    const char *t = NULL;
    for (const char *s = strstr(name, ".tmp."); s; s = strstr(s + 1, ".tmp."))
        t = s; /* the last one */
    if (!t || t == name)
        return 0;
    const char *end, *end2;
    long pid = spk_fs_number(t + 5, &end);
    if (pid <= 0)
        return 0;
    if (*end == '.') /* "<any>.tmp.<pid>.<n>" */
        return spk_fs_number(end + 1, &end2) >= 0 && *end2 == '\0' ? pid : 0;
    /* "<base>.tmp.<pid>", written before the counter was added: only for the file being written,
     * so that a user's "notes.tmp.2024" is never touched. */
    size_t bl = base ? strlen(base) : 0;
    if (*end == '\0' && bl && (size_t)(t - name) == bl && strncmp(name, base, bl) == 0)
        return pid;
    return 0;
}

int spk_fs_remove_stale(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int fd = dirfd(d);
    time_t now = time(NULL);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = spk_fs_tmp_pid(e->d_name, base);
        if (pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* running (EPERM: running as someone else) */
        struct stat st;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != geteuid() || now - st.st_mtime < SPK_FS_STALE_SECONDS)
            continue;
        removed += unlinkat(fd, e->d_name, 0) == 0;
    }
    closedir(d);
    return removed;
}

/* fsyncs the folder dir, so that a rename into it survives a crash. */
static int spk_fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* Some file systems cannot fsync a folder (EINVAL); there is nothing more to do there. */
    if (rc != 0 && errno == EINVAL)
        rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Distinguishes the temporary files of several threads writing the same path. */
static atomic_uint spk_fs_tmp_counter;

/* Creates a new temporary file for path; the stream, with its name in *tmp, or NULL. */
static FILE *spk_fs_create_tmp(const char *path, mode_t mode, char **tmp)
{
    size_t n = strlen(path) + 48;
    *tmp = malloc(n);
    if (!*tmp) {
        errno = ENOMEM;
        return NULL;
    }
    for (int tries = 0; tries < 100; tries++) {
        unsigned k = atomic_fetch_add(&spk_fs_tmp_counter, 1u);
        snprintf(*tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), k);
        /* O_EXCL: never write through a file or link that is already there. */
        int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return NULL;
        FILE *f = fdopen(fd, "wb");
        if (!f) {
            int e = errno;
            close(fd);
            unlink(*tmp);
            errno = e;
        }
        return f;
    }
    errno = EEXIST;
    return NULL;
}

int spk_fs_write_atomic(const char *path, mode_t mode, spk_fs_fill_fn fill, void *ctx,
                        spk_error *err)
{
    if (!path || !*path || !fill)
        return spk_error_set(err, SPK_ERR_INVALID, "atomic write: no path or content");
    char *dir = spk_fs_dirname(path);
    if (!dir)
        return spk_error_set(err, SPK_ERR_NOMEM, "%s: out of memory", path);
    const char *slash = strrchr(path, '/');
    spk_fs_remove_stale(dir, slash ? slash + 1 : path);

    char *tmp = NULL;
    int rc = SPK_OK;
    FILE *f = spk_fs_create_tmp(path, mode, &tmp);
    if (!f) {
        rc = spk_error_set(err, errno == ENOMEM ? SPK_ERR_NOMEM : SPK_ERR_IO,
                           "%s: cannot create temporary file %s: %s", path, tmp ? tmp : "",
                           strerror(errno));
        goto out;
    }
    const char *stage = "write";
    errno = 0;
    int bad = fill(f, ctx) != 0 || fflush(f) != 0;
    if (!bad && fsync(fileno(f)) != 0) {
        stage = "fsync";
        bad = 1;
    }
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        stage = "close";
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        stage = "rename";
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(tmp);
        rc =
            spk_error_set(err, SPK_ERR_IO, "%s: %s of %s failed: %s (existing file left as it was)",
                          path, stage, strcmp(stage, "rename") ? tmp : "the temporary file",
                          e ? strerror(e) : "unknown error");
        goto out;
    }
    if (spk_fs_sync_dir(dir) != 0)
        rc = spk_error_set(err, SPK_ERR_IO,
                           "%s: written, but syncing its folder failed: %s (the new file may "
                           "not survive a crash)",
                           path, strerror(errno));
out:
    free(tmp);
    free(dir);
    return rc;
}
