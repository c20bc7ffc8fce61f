/* Helpers shared by the tests. */
#ifndef SPK_TESTUTIL_H
#define SPK_TESTUTIL_H

#include <stddef.h>

#include "spikecl/backend.h"

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

/* Runs the CLI from the source folder (`cd SOURCE && spikecl ARGS`), like spk_test_run;
 * $SPIKECL_TEST_SOURCE_DIR and $SPIKECL_TEST_CLI replace the build's paths when set. */
int spk_test_cli(const char *args, char **output);
/* The number after "key": in the last line of out (the CLI's JSON summary), -1 when absent. */
double spk_test_json_number(const char *out, const char *key);

/* The device under test. One variable, SPIKECL_TEST_DEVICE, names it for every test: the layer
 * checks run on it instead of the CPU, and the OpenCL tests use it when it is an OpenCL id. */
const char *spk_test_device_env(void);
/* The OpenCL device to test against: $SPIKECL_TEST_DEVICE when it is an OpenCL id (it must
 * open), else the first OpenCL GPU of spk_device_list, else opencl:0:0. Its id goes to `id`
 * (may be NULL). With no device the test is skipped, or fails under CI=true. */
spk_backend *spk_test_opencl_device(char *id, size_t n);
/* Skips the test for want of a device, or fails it under CI=true (where one must exist). */
void spk_test_no_device(const char *why);

#endif
