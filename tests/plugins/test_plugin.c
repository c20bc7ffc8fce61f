/* The plugins test_plugin_abi loads: one source, built once per TP_VARIANT (CMakeLists.txt), each
 * variant wrong in one way the loader must catch and explain. The good one is a tiny neuron-kind
 * layer, y = gain * x, written like a user plugin: only the host table, no libspikecl. */
#include <string.h>

#include "spikecl/kernel.h"
#include "spikecl/plugin.h"

#include "test_plugin.cl"

#define TP_GOOD     1  /* neuron.tp_scale */
#define TP_MAJOR    2  /* descriptor built for ABI major 99 */
#define TP_MINOR    3  /* descriptor built for a newer minor than the host's */
#define TP_NOENTRY  4  /* exports no spk_plugin_init */
#define TP_DUP      5  /* registers "neuron.lif", a built-in name */
#define TP_PARAMS   6  /* a choice parameter without choices */
#define TP_BADCL    7  /* its OpenCL text does not compile */
#define TP_INITFAIL 8  /* registers a type, then refuses a host older than it needs */
#define TP_OLD      9  /* a descriptor as a 1.0 plugin has it: shorter than today's */
#define TP_SHORT    10 /* a descriptor shorter than any ABI version's */
#define TP_BADDEF   11 /* a parameter default outside its own range */

#ifndef TP_VARIANT
#error "TP_VARIANT must be defined"
#endif

#if TP_VARIANT == TP_GOOD
#define TP_NAME "neuron.tp_scale"
#elif TP_VARIANT == TP_MAJOR
#define TP_NAME "neuron.tp_major"
#elif TP_VARIANT == TP_MINOR
#define TP_NAME "neuron.tp_minor"
#elif TP_VARIANT == TP_DUP
#define TP_NAME "neuron.lif"
#elif TP_VARIANT == TP_PARAMS
#define TP_NAME "neuron.tp_params"
#elif TP_VARIANT == TP_BADCL
#define TP_NAME "neuron.tp_badcl"
#elif TP_VARIANT == TP_OLD
#define TP_NAME "neuron.tp_old"
#elif TP_VARIANT == TP_SHORT
#define TP_NAME "neuron.tp_short"
#elif TP_VARIANT == TP_BADDEF
#define TP_NAME "neuron.tp_baddef"
#else
#define TP_NAME "neuron.tp_other"
#endif

static const spk_param_spec tp_params[] = {
#if TP_VARIANT == TP_BADDEF
    {"gain", SPK_PARAM_FLOAT, "12.5", 0, 10, NULL, "y = gain * x"},
#else
    {"gain", SPK_PARAM_FLOAT, "2.0", 0, 10, NULL, "y = gain * x"},
#endif
#if TP_VARIANT == TP_PARAMS
    {"mode", SPK_PARAM_CHOICE, "a", 1, 0, NULL, "a choice with nothing to choose from"},
#endif
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static int tp_init(spk_layer *l, spk_error *err)
{
    if (l->n_in != 1)
        return l->host->set_error(err, SPK_ERR_SHAPE, "expected 1 input, got %d", l->n_in);
    if (l->in[0].time == SPK_TIME_NONE)
        return l->host->set_error(err, SPK_ERR_SHAPE, "expected an input over time");
    l->host->set_output(l, l->in[0]);
    return SPK_OK;
}

static int tp_forward(spk_layer *l, spk_exec *x)
{
    float gain = (float)l->host->param_num(l, "gain");
    return SPK_LAUNCH(l, x, "tp_scale", x->out->numel, SPK_ARG_BUF(x->out), SPK_ARG_BUF(x->in[0]),
                      SPK_ARG_INT(x->out->numel), SPK_ARG_FLOAT(gain));
}

static int tp_backward(spk_layer *l, spk_exec *x)
{
    if (!x->grad_in[0])
        return SPK_OK;
    float gain = (float)l->host->param_num(l, "gain");
    return SPK_LAUNCH(l, x, "tp_scale", x->grad_out->numel, SPK_ARG_BUF(x->grad_in[0]),
                      SPK_ARG_BUF(x->grad_out), SPK_ARG_INT(x->grad_out->numel),
                      SPK_ARG_FLOAT(gain));
}

static const spk_cpu_kernel tp_cpu_kernels[] = {
    SPK_CPU_KERNEL(tp_scale),
    {0},
};

#if TP_VARIANT == TP_BADCL
/* the CPU kernels are fine; the OpenCL text names a variable that does not exist */
static const char tp_opencl_source[] =
    "__kernel void tp_scale(__global float *y, __global const float *x, const int n,\n"
    "                       const float a)\n"
    "{\n"
    "    y[get_global_id(0)] = a * x[get_global_id(0)] + tp_no_such_variable;\n"
    "}\n";
#else
#include "test_plugin_cl.h"
#define tp_opencl_source test_plugin_cl_source
#endif

static const spk_layer_type tp_type = {
#if TP_VARIANT == TP_MAJOR
    .abi_major = 99,
#else
    .abi_major = SPK_ABI_MAJOR,
#endif
#if TP_VARIANT == TP_MINOR
    .abi_minor = SPK_ABI_MINOR + 1,
#else
    .abi_minor = SPK_ABI_MINOR,
#endif
#if TP_VARIANT == TP_OLD
    .struct_size = SPK_LAYER_TYPE_SIZE_1_0,
    .version = "not part of a 1.0 descriptor: the host must not read it",
#elif TP_VARIANT == TP_SHORT
    .struct_size = SPK_LAYER_TYPE_SIZE_1_0 - sizeof(spk_kernel_set),
#else
    .struct_size = sizeof(spk_layer_type),
    .version = "0.3.1",
#endif
    .name = TP_NAME,
    .kind = SPK_KIND_NEURON,
    .summary = "test plugin: y = gain * x",
    .params = tp_params,
    .init = tp_init,
    .forward = tp_forward,
    .backward = tp_backward,
    .kernels = {.owner = TP_NAME, .opencl_source = tp_opencl_source, .cpu_kernels = tp_cpu_kernels},
};

#if TP_VARIANT == TP_NOENTRY
/* something to export, just not the entry point */
int tp_not_the_entry(void);
int tp_not_the_entry(void)
{
    return tp_type.abi_major;
}
#elif TP_VARIANT == TP_INITFAIL
int spk_plugin_init(const spk_host_api *host, spk_registry *reg, spk_error *err);
int spk_plugin_init(const spk_host_api *host, spk_registry *reg, spk_error *err)
{
    if (host->abi_major != SPK_ABI_MAJOR)
        return SPK_ERR_PLUGIN;
    int rc = host->register_type(reg, &tp_type, err);
    /* Pretend to need a host function added in the next minor: refuse an older host, after a
     * type is already registered (the loader must take it back). */
    if (rc == SPK_OK && host->abi_minor < SPK_ABI_MINOR + 1)
        return host->set_error(
            err, SPK_ERR_PLUGIN, "needs spikecl ABI %d.%d or newer, the host has %u.%u",
            SPK_ABI_MAJOR, SPK_ABI_MINOR + 1, (unsigned)host->abi_major, (unsigned)host->abi_minor);
    return rc;
}
#else
SPK_PLUGIN_DEFINE(&tp_type)
#endif
