/* Helpers shared by the tests. */
#ifndef SPK_TESTUTIL_H
#define SPK_TESTUTIL_H

#include <stddef.h>

/* A fresh empty folder under /tmp for this test process (created once, path stays valid). */
const char *spk_test_tmpdir(void);
/* Writes text to dir/name and returns the malloc'ed full path. */
char *spk_test_write(const char *name, const char *text);
/* Runs a shell command, captures stdout+stderr into a malloc'ed string; returns exit status. */
int spk_test_run(const char *cmd, char **output);
/* Deterministic pseudo-random floats in [lo, hi) for test inputs. */
void spk_test_fill(float *x, size_t n, float lo, float hi, unsigned seed);
/* max |a-b| / max(1, max |b|): a normalised error for comparing arrays. */
double spk_test_nerr(const float *a, const float *b, size_t n);

#endif
