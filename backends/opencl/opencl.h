/* spikecl internal — the OpenCL backend (ICD loader, CLBlast GEMM, program build with an on-disk
 * binary cache). Only the backend registry (backends/registry.c) and the tests include this header.
 */
#ifndef SPK_BACKEND_OPENCL_H
#define SPK_BACKEND_OPENCL_H

#include <stddef.h>

#include "spikecl/backend.h"
#include "spikecl/error.h"

/* Opens an OpenCL device. spec is the whole device string:
 *   "opencl"        the first GPU, else the first device of any type
 *   "opencl:P:D"    platform P, device D (indices as listed by spk_backend_opencl_devices)
 *   "opencl:NAME"   the first device whose name or vendor contains NAME (case-insensitive)
 * be->description starts with the chosen "opencl:P:D" id and the device name.
 * be->ops->destroy(be) releases everything, be included.
 * Environment: SPIKECL_PROFILE=1 enables per-kernel profiling (see below);
 * SPIKECL_CACHE_DIR overrides the binary cache folder ($XDG_CACHE_HOME/spikecl or
 * ~/.cache/spikecl); SPIKECL_CACHE_DIR=off disables the cache; SPIKECL_CL_BUILD_OPTIONS is
 * appended to the program build options (e.g. -cl-opt-disable; cached apart); SPIKECL_CL_POISON=1
 * fills every new buffer with NaN (a test mode: GPU memory is not zeroed). */
int spk_backend_opencl_open(const char *spec, spk_backend **out, spk_error *err);

/* Every device of every platform, as spk_device_list entries ("opencl:P:D" ids); none (and
 * SPK_OK) when no platform is installed. Errors only when OpenCL itself fails or memory runs
 * out. Per-kernel profiles (SPIKECL_PROFILE=1) come through the backend's optional profile
 * operation, spk_backend_profile. */
int spk_backend_opencl_devices(spk_device_info **out, int *n, spk_error *err);

/* The exact program text the backend builds for a kernel set (prelude, shared headers, the
 * set's source with its SPK_CPU_ENTRY lines blanked), malloc'ed; NULL when out of memory. Needs
 * no device: the compile check (scripts/cl-compile-check.sh) dumps programs with it. */
char *spk_backend_opencl_program_text(const char *owner, const char *source);

/* The backend's own helper kernels (built on first use by a k = 0 gemm). */
extern const spk_kernel_set spk_backend_opencl_builtin_kernels;

#endif
