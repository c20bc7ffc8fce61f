/* The core's kernel set, compiled for the CPU here and embedded as text for OpenCL. */
#include "core_kernels.h"

#include "core.cl"
#include "core_cl.h"

static const spk_cpu_kernel core_cpu[] = {
    SPK_CPU_KERNEL(spk_add),        SPK_CPU_KERNEL(spk_sumsq),
    SPK_CPU_KERNEL(spk_clip_scale), SPK_CPU_KERNEL(spk_sum_groups),
    SPK_CPU_KERNEL(spk_sgd),        SPK_CPU_KERNEL(spk_adam),
    SPK_CPU_KERNEL(spk_rate_reg),   SPK_CPU_KERNEL(spk_rate_reg_sum),
    SPK_CPU_KERNEL(spk_colsum),     {0},
};

const spk_kernel_set spk_core_kernels = {
    .owner = "core",
    .opencl_source = core_cl_source,
    .cpu_kernels = core_cpu,
};
