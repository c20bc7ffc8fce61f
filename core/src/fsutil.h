/* spikecl internal — file-system helpers shared by checkpoints and the OpenCL binary cache. */
#ifndef SPK_FSUTIL_H
#define SPK_FSUTIL_H

#include <stdio.h>
#include <sys/types.h>

#include "spikecl/error.h"

/* The folder part of path ("." when it has none, "/" for a file in the root); malloc'ed, NULL
 * when out of memory. */
char *spk_fs_dirname(const char *path);

/* Makes dir and any missing parents with mode; 0, or -1 with errno set. */
int spk_fs_mkdir_p(const char *dir, mode_t mode);

/* Writes the content of a file to f; 0, or -1 with errno set. */
typedef int (*spk_fs_fill_fn)(FILE *f, void *ctx);

/* Replaces path atomically with what fill writes: a new temporary file
 * "<path>.tmp.<pid>.<n>" in the same folder (created with mode, less the umask), fsync, rename,
 * fsync of the folder. On failure the old file at path is untouched and the temporary file is
 * gone. Before that, stale temporary files in the folder are removed (spk_fs_remove_stale). */
int spk_fs_write_atomic(const char *path, mode_t mode, spk_fs_fill_fn fill, void *ctx,
                        spk_error *err);

/* Removes temporary files that an atomic write into dir left behind when its process died:
 * "<any>.tmp.<pid>.<n>", and the older form "<base>.tmp.<pid>" for base (may be NULL), whose
 * pid no longer runs, that are regular files of ours and were last written at least
 * SPK_FS_STALE_SECONDS ago (a folder shared between hosts may hold the file of a live process
 * elsewhere, whose pid means nothing here; a live writer does not leave its file untouched that
 * long). Best effort: returns the number removed. */
#define SPK_FS_STALE_SECONDS 60
int spk_fs_remove_stale(const char *dir, const char *base);

#endif
