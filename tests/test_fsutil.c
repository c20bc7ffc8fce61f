/* The internal file-system helper: dirname, mkdir -p, the atomic write and the removal of the
 * temporary files that a crashed writer left behind. */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "testutil.h"

static char *tmp_path(const char *name)
{
    size_t n = strlen(spk_test_tmpdir()) + strlen(name) + 2;
    char *p = malloc(n);
    cr_assert_not_null(p);
    snprintf(p, n, "%s/%s", spk_test_tmpdir(), name);
    return p;
}

static void put_file(const char *path, const char *text, time_t age)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    if (age) {
        struct timespec ts[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
        cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    }
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static char *slurp(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The pid of a process that has exited (and been reaped). */
static long dead_pid(void)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0)
        _exit(0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return (long)pid;
}

Test(fsutil, dirname)
{
    const char *cases[][2] = {{"a/b/c", "a/b"}, {"c", "."},  {"/c", "/"},
                              {"/a/b", "/a"},   {"a/", "a"}, {"./x", "."}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *d = spk_fs_dirname(cases[i][0]);
        cr_assert_not_null(d);
        cr_expect_str_eq(d, cases[i][1], "dirname(%s)", cases[i][0]);
        free(d);
    }
}

Test(fsutil, mkdir_p)
{
    char *deep = tmp_path("m1/m2/m3/");
    cr_assert_eq(spk_fs_mkdir_p(deep, 0700), 0, "%s", strerror(errno));
    struct stat st;
    cr_expect(stat(deep, &st) == 0 && S_ISDIR(st.st_mode));
    cr_expect_eq(spk_fs_mkdir_p(deep, 0700), 0, "an existing folder is fine");
    /* A file in the way is an error, also when it is the last component. */
    char *file = tmp_path("m1/file");
    put_file(file, "x", 0);
    errno = 0;
    cr_expect_eq(spk_fs_mkdir_p(file, 0700), -1);
    cr_expect_eq(errno, ENOTDIR);
    char *below = tmp_path("m1/file/sub");
    cr_expect_eq(spk_fs_mkdir_p(below, 0700), -1);
    cr_expect_eq(spk_fs_mkdir_p("", 0700), -1);
    free(deep);
    free(file);
    free(below);
}

static int fill_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) < 0 ? -1 : 0;
}

static int fill_fails(FILE *f, void *ctx)
{
    (void)ctx;
    fputs("half", f);
    errno = EIO;
    return -1;
}

Test(fsutil, write_atomic_replaces_or_keeps)
{
    char *p = tmp_path("aw.txt");
    spk_error err = {0};
    cr_assert_eq(spk_fs_write_atomic(p, 0600, fill_text, "one", &err), SPK_OK, "%s", err.msg);
    cr_expect_str_eq(slurp(p), "one");
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(spk_fs_write_atomic(p, 0600, fill_text, "two", &err), SPK_OK, "%s", err.msg);
    cr_expect_str_eq(slurp(p), "two");

    cr_expect_eq(spk_fs_write_atomic(p, 0600, fill_fails, NULL, &err), SPK_ERR_IO);
    cr_expect_not_null(strstr(err.msg, p), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "write of"), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, strerror(EIO)), "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "left as it was"), "%s", err.msg);
    cr_expect_str_eq(slurp(p), "two");

    /* Nothing but the file itself is left in the folder. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '^aw.txt'", spk_test_tmpdir());
    char *out = NULL;
    spk_test_run(cmd, &out);
    cr_expect_str_eq(out, "1\n", "files named aw.txt*: %s", out);
    free(out);
    free(p);
}

/* Temporary files of dead writers are removed once they are a minute old; those of live
 * processes, fresh ones, other people's names and the old form for another file are kept. */
Test(fsutil, stale_temporaries_are_removed)
{
    char *dir = tmp_path("stale");
    cr_assert_eq(mkdir(dir, 0700), 0);
    long dead = dead_pid(), live = (long)getppid();
    const long old = 3600;
    struct {
        const char *fmt;
        long pid;
        time_t age;
        int removed;
    } files[] = {
        {"%s/ckpt.safetensors.tmp.%ld", dead, old, 1},       /* the old form, same target */
        {"%s/ab12.clbin.tmp.%ld.7", dead, old, 1},           /* any name, with a counter */
        {"%s/other.safetensors.tmp.%ld", dead, old, 0},      /* the old form, another target */
        {"%s/fresh.tmp.%ld.0", dead, 0, 0},                  /* written just now */
        {"%s/live.tmp.%ld.0", live, old, 0},                 /* its writer still runs */
        {"%s/notes.tmp.%ldx", dead, old, 0},                 /* not our pattern */
        {"%s/ckpt.safetensors.tmp.%ld.1.bak", dead, old, 0}, /* not our pattern */
    };
    char path[16][600];
    size_t n = sizeof files / sizeof files[0];
    for (size_t i = 0; i < n; i++) {
        snprintf(path[i], sizeof path[i], files[i].fmt, dir, files[i].pid);
        put_file(path[i], "x", files[i].age);
    }
    /* A stale name that is a folder or a link is not ours to remove. */
    char sub[600], link[600];
    snprintf(sub, sizeof sub, "%s/d.tmp.%ld.0", dir, dead);
    snprintf(link, sizeof link, "%s/l.tmp.%ld.0", dir, dead);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(symlink(path[0], link), 0);

    char target[600];
    snprintf(target, sizeof target, "%s/ckpt.safetensors", dir);
    spk_error err = {0};
    cr_assert_eq(spk_fs_write_atomic(target, 0644, fill_text, "new", &err), SPK_OK, "%s", err.msg);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(!exists(path[i]), files[i].removed, "%s: %s", path[i],
                     files[i].removed ? "was kept" : "was removed");
    cr_expect(exists(sub));
    cr_expect(exists(link));
    cr_expect_str_eq(slurp(target), "new");
    free(dir);
}

static int fill_then_die(FILE *f, void *ctx)
{
    (void)ctx;
    fputs("partial", f);
    fflush(f);
    _exit(3); /* as if killed mid-write */
}

/* The defect from issue #8: a writer that dies mid-write leaves its temporary file, and nothing
 * ever removed it. The next atomic write into that folder does (once it is old enough). */
Test(fsutil, crashed_writer_is_cleaned_up)
{
    char *dir = tmp_path("crash");
    cr_assert_eq(mkdir(dir, 0700), 0);
    char target[600];
    snprintf(target, sizeof target, "%s/model.safetensors", dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        spk_fs_write_atomic(target, 0644, fill_then_die, NULL, NULL);
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    char prefix[64], left[700];
    snprintf(prefix, sizeof prefix, "model.safetensors.tmp.%ld.", (long)pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    left[0] = '\0';
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            snprintf(left, sizeof left, "%s/%s", dir, e->d_name);
    closedir(d);
    cr_assert(left[0], "the crashed writer left no %s*", prefix);

    spk_error err = {0};
    /* Still fresh: a writer on another host sharing the folder could own it. */
    cr_assert_eq(spk_fs_write_atomic(target, 0644, fill_text, "a", &err), SPK_OK, "%s", err.msg);
    cr_expect(exists(left));
    struct timespec ts[2] = {{time(NULL) - SPK_FS_STALE_SECONDS - 5, 0},
                             {time(NULL) - SPK_FS_STALE_SECONDS - 5, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, left, ts, 0), 0);
    cr_assert_eq(spk_fs_write_atomic(target, 0644, fill_text, "b", &err), SPK_OK, "%s", err.msg);
    cr_expect(!exists(left), "the stale temporary file is still there");
    cr_expect_str_eq(slurp(target), "b");
    free(dir);
}
