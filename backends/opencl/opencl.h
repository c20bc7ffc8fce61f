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
 * ~/.cache/spikecl); SPIKECL_CACHE_DIR=off disables the cache. */
int spk_backend_opencl_open(const char *spec, spk_backend **out, spk_error *err);

/* Every device of every platform, as spk_device_list entries ("opencl:P:D" ids); none (and
 * SPK_OK) when no platform is installed. Errors only when OpenCL itself fails or memory runs
 * out. Per-kernel profiles (SPIKECL_PROFILE=1) come through the backend's optional profile
 * operation, spk_backend_profile. */
int spk_backend_opencl_devices(spk_device_info **out, int *n, spk_error *err);

#endif
