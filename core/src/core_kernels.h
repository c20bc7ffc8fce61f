#ifndef SPK_CORE_KERNELS_H
#define SPK_CORE_KERNELS_H
#include "spikecl/backend.h"
#include "spikecl/kernel.h"
extern const spk_kernel_set spk_core_kernels;
#endif
