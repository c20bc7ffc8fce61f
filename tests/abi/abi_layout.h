/* The plugin ABI's structs and the fields of ABI 1.0, as X-macro lists, so that one file built
 * against the 1.0 headers (abi10_layout.c) and one built against today's (test_abi.c) measure
 * the same things. Includes no spikecl header: each user includes its own version first. */
#ifndef SPK_TEST_ABI_LAYOUT_H
#define SPK_TEST_ABI_LAYOUT_H

#include <stddef.h>

/* every public struct a plugin and the host share, directly or inside another */
#define SPK_ABI_STRUCTS(X)                                                                         \
    X(spk_layer_type)                                                                              \
    X(spk_host_api)                                                                                \
    X(spk_exec)                                                                                    \
    X(spk_layer)                                                                                   \
    X(spk_weight)                                                                                  \
    X(spk_state)                                                                                   \
    X(spk_tensor)                                                                                  \
    X(spk_shape)                                                                                   \
    X(spk_param_spec)                                                                              \
    X(spk_param_value)                                                                             \
    X(spk_params)                                                                                  \
    X(spk_init)                                                                                    \
    X(spk_surrogate)                                                                               \
    X(spk_kernel_set)                                                                              \
    X(spk_karg)                                                                                    \
    X(spk_cpu_kernel)                                                                              \
    X(spk_error)

/* the fields of ABI 1.0 in the structs that have grown or may grow: a later minor must keep
 * each at its offset */
#define SPK_ABI10_FIELDS(X)                                                                        \
    X(spk_layer_type, abi_major)                                                                   \
    X(spk_layer_type, abi_minor)                                                                   \
    X(spk_layer_type, struct_size)                                                                 \
    X(spk_layer_type, name)                                                                        \
    X(spk_layer_type, kind)                                                                        \
    X(spk_layer_type, summary)                                                                     \
    X(spk_layer_type, params)                                                                      \
    X(spk_layer_type, init)                                                                        \
    X(spk_layer_type, forward)                                                                     \
    X(spk_layer_type, backward)                                                                    \
    X(spk_layer_type, destroy)                                                                     \
    X(spk_layer_type, kernels)                                                                     \
    X(spk_host_api, abi_major)                                                                     \
    X(spk_host_api, abi_minor)                                                                     \
    X(spk_host_api, struct_size)                                                                   \
    X(spk_host_api, param_num)                                                                     \
    X(spk_host_api, param_str)                                                                     \
    X(spk_host_api, param_init)                                                                    \
    X(spk_host_api, param_surrogate)                                                               \
    X(spk_host_api, param_is_set)                                                                  \
    X(spk_host_api, add_weight)                                                                    \
    X(spk_host_api, add_state)                                                                     \
    X(spk_host_api, launch)                                                                        \
    X(spk_host_api, gemm)                                                                          \
    X(spk_host_api, fill)                                                                          \
    X(spk_host_api, copy)                                                                          \
    X(spk_host_api, error)                                                                         \
    X(spk_host_api, alloc)                                                                         \
    X(spk_host_api, free)                                                                          \
    X(spk_host_api, log)                                                                           \
    X(spk_host_api, rng_uniform4)                                                                  \
    X(spk_host_api, register_type)                                                                 \
    X(spk_exec, T)                                                                                 \
    X(spk_exec, B)                                                                                 \
    X(spk_exec, training)                                                                          \
    X(spk_exec, smooth)                                                                            \
    X(spk_exec, seed)                                                                              \
    X(spk_exec, epoch)                                                                             \
    X(spk_exec, batch)                                                                             \
    X(spk_exec, n_in)                                                                              \
    X(spk_exec, in)                                                                                \
    X(spk_exec, out)                                                                               \
    X(spk_exec, grad_out)                                                                          \
    X(spk_exec, grad_in)                                                                           \
    X(spk_exec, labels)                                                                            \
    X(spk_exec, loss)                                                                              \
    X(spk_exec, backend)                                                                           \
    X(spk_exec, err)                                                                               \
    X(spk_exec, sample_ids)                                                                        \
    X(spk_layer, type)                                                                             \
    X(spk_layer, host)                                                                             \
    X(spk_layer, name)                                                                             \
    X(spk_layer, index)                                                                            \
    X(spk_layer, file)                                                                             \
    X(spk_layer, line)                                                                             \
    X(spk_layer, col)                                                                              \
    X(spk_layer, n_in)                                                                             \
    X(spk_layer, in)                                                                               \
    X(spk_layer, out)                                                                              \
    X(spk_layer, params)                                                                           \
    X(spk_layer, time_steps)                                                                       \
    X(spk_layer, n_weights)                                                                        \
    X(spk_layer, weights)                                                                          \
    X(spk_layer, n_state)                                                                          \
    X(spk_layer, state)                                                                            \
    X(spk_layer, priv)                                                                             \
    X(spk_layer, program)                                                                          \
    X(spk_weight, name)                                                                            \
    X(spk_weight, shape)                                                                           \
    X(spk_weight, init)                                                                            \
    X(spk_weight, clamp)                                                                           \
    X(spk_weight, lo)                                                                              \
    X(spk_weight, hi)                                                                              \
    X(spk_weight, decay)                                                                           \
    X(spk_weight, frozen)                                                                          \
    X(spk_weight, value)                                                                           \
    X(spk_weight, grad)                                                                            \
    X(spk_state, name)                                                                             \
    X(spk_state, per_sample)                                                                       \
    X(spk_state, time)                                                                             \
    X(spk_state, t)

enum {
#define SPK_ABI_COUNT_S(s) SPK_ABI_N_STRUCT_##s,
    SPK_ABI_STRUCTS(SPK_ABI_COUNT_S) SPK_ABI_N_STRUCTS
#undef SPK_ABI_COUNT_S
};

/* sizes in SPK_ABI_STRUCTS order, offsets in SPK_ABI10_FIELDS order */
extern const size_t spk_abi10_sizes[];
extern const size_t spk_abi10_offsets[];
extern const int spk_abi10_version[2];

#endif
