/* spikecl — networks in and out of the Neuromorphic Intermediate Representation (NIR, an HDF5
 * file that snnTorch, Norse, SpikingJelly, Sinabs, Lava and neuromorphic chips read and write).
 * The layout follows the `nir` Python package's nir.write / nir.read; the node mapping and its
 * equations are in docs/NIR.md. */
#ifndef SPIKECL_NIR_H
#define SPIKECL_NIR_H

#include "spikecl/spikecl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spk_nir_options {
    /* Seconds per time step, which relates NIR's time constants to spikecl's per-step decays
     * (beta = 1 - dt / tau). Export writes it to the graph's metadata; import takes it when > 0,
     * else the file's metadata "dt", else 1e-4 (what snnTorch's export_to_nir assumes). */
    double dt;
    /* Import: time_steps of the model when > 0, else the file's metadata "time_steps", else
     * SPK_ERR_INVALID asking for it. Export ignores it (it writes the model's). */
    int time_steps;
    /* Import: input.scale of the model when > 0, else the file's metadata "input_scale", else 1. */
    float input_scale;
    /* Allow the documented approximations: neuron.lif / neuron.if with reset: subtract exported
     * as NIR's reset to v_reset (what snnTorch's export does with Leaky), and neuron.synaptic
     * <-> CubaLIF, whose reset timing differs (docs/NIR.md). 0: such layers are refused. */
    int approximate;
} spk_nir_options;

/* Writes the session's network (its layers, not the readout and the loss) with its current
 * weights to path as a NIR graph, atomically. Layers NIR cannot express are refused with
 * SPK_ERR_UNSUPPORTED naming the layer. opt may be NULL (defaults: dt 1e-4, exact only). */
SPK_API int spk_nir_export(spk_session *s, const char *path, const spk_nir_options *opt,
                           spk_error *err);

/* Reads the NIR graph at path and writes dir/model.yaml and dir/model.safetensors (creating dir),
 * which spk_model_load and spk_session_load take as they are: readout.spike_count and
 * loss.ce_count follow the graph's last node. Errors name the file and the node: SPK_ERR_PARSE
 * for a file that is not HDF5 or lacks a dataset, SPK_ERR_SHAPE for shapes that do not fit,
 * SPK_ERR_UNSUPPORTED for node types or parameters spikecl cannot run, SPK_ERR_INVALID for
 * cycles and bad values. */
SPK_API int spk_nir_import(const char *path, const char *dir, const spk_nir_options *opt,
                           spk_error *err);

#ifdef __cplusplus
}
#endif
#endif
