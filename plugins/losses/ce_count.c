/* loss.ce_count — cross-entropy of softmax(spike counts) against the label (snnTorch
 * ce_count_loss); per-sample loss, gradient of the batch mean. */
#include "builtin.h"
#include "ce_impl.h"

const spk_layer_type spk_builtin_loss_ce_count = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "loss.ce_count",
    .kind = SPK_KIND_LOSS,
    .summary = "cross-entropy of the softmax of spike counts",
    .params = ce_params,
    .init = ce_init,
    .forward = ce_forward,
    .backward = ce_backward,
    .destroy = NULL,
    .kernels = {.owner = "loss.ce_count",
                .opencl_source = ce_cl_source,
                .cpu_kernels = ce_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_loss_ce_count);
