/* loss.ce_membrane — cross-entropy of softmax(membrane readout) against the label, for a
 * readout.membrane over a neuron with `output: membrane`; per-sample loss, gradient of the
 * batch mean. */
#include "builtin.h"
#include "ce_impl.h"

const spk_layer_type spk_builtin_loss_ce_membrane = {
    .abi_major = SPK_ABI_MAJOR,
    .abi_minor = SPK_ABI_MINOR,
    .struct_size = sizeof(spk_layer_type),
    .name = "loss.ce_membrane",
    .kind = SPK_KIND_LOSS,
    .summary = "cross-entropy of the softmax of a membrane readout",
    .params = ce_params,
    .init = ce_init,
    .forward = ce_forward,
    .backward = ce_backward,
    .destroy = NULL,
    .kernels = {.owner = "loss.ce_membrane",
                .opencl_source = ce_cl_source,
                .cpu_kernels = ce_cpu_kernels},
};
SPK_BUILTIN(spk_builtin_loss_ce_membrane);
