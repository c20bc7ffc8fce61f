/* spikecl internal — the OpenCL backend (ICD loader, CLBlast GEMM, program build with an on-disk
 * binary cache). Only the core's backend registry and the tests include this header. */
#ifndef SPK_BACKEND_OPENCL_H
#define SPK_BACKEND_OPENCL_H

#include <stddef.h>

#include "spikecl/backend.h"
#include "spikecl/error.h"

/* Opens an OpenCL device. spec is the whole device string:
 *   "opencl"        the first GPU, else the first device of any type
 *   "opencl:P:D"    platform P, device D (indices as listed by spk_backend_opencl_list)
 *   "opencl:NAME"   the first device whose name or vendor contains NAME (case-insensitive)
 * be->description starts with the chosen "opencl:P:D" id and the device name.
 * be->ops->destroy(be) releases everything, be included.
 * Environment: SPIKECL_PROFILE=1 enables per-kernel profiling (see below);
 * SPIKECL_CACHE_DIR overrides the binary cache folder ($XDG_CACHE_HOME/spikecl or
 * ~/.cache/spikecl); SPIKECL_CACHE_DIR=off disables the cache; SPIKECL_CL_BUILD_OPTIONS is
 * appended to the program build options (e.g. -cl-opt-disable; cached apart); SPIKECL_CL_POISON=1
 * fills every new buffer with NaN (a test mode: GPU memory is not zeroed). */
int spk_backend_opencl_open(const char *spec, spk_backend **out, spk_error *err);

/* One malloc'ed line per device, each ending in '\n':
 * "opencl:P:D\t<device name> | <vendor> | <driver version> | <N> CUs | <M> MiB |
 *  max work-group <W> | <GPU|CPU|ACCEL>". An empty string when no platform is installed;
 * NULL (and err set) only when OpenCL itself fails or memory runs out. */
char *spk_backend_opencl_list(spk_error *err);

/* 1 and "opencl:P:D" in id_out if some platform has a GPU, else 0. */
int spk_backend_opencl_first_gpu(char *id_out, size_t n);

/* With SPIKECL_PROFILE=1: waits for the queue, then writes one "owner:kernel\tcalls\tms" line per
 * kernel launched so far (device time from queue profiling), longest first. Returns the number
 * of lines, or -1 when be is not an OpenCL backend or profiling is off. */
int spk_backend_opencl_profile(spk_backend *be, char *buf, size_t n);

/* The exact program text the backend builds for a kernel set (prelude, shared headers, the
 * set's source with its SPK_CPU_ENTRY lines blanked), malloc'ed; NULL when out of memory. Needs
 * no device: the compile check (scripts/cl-compile-check.sh) dumps programs with it. */
char *spk_backend_opencl_program_text(const char *owner, const char *source);

/* The backend's own helper kernels (built on first use by a k = 0 gemm). */
extern const spk_kernel_set spk_backend_opencl_builtin_kernels;

#endif
