/* spikecl internal — how a built-in layer type registers itself: SPK_BUILTIN(type) after the
 * descriptor puts a pointer to it in the linker section "spk_builtins", which the registry walks
 * at first use. No central list to edit when a layer file is added. */
#ifndef SPK_BUILTIN_H
#define SPK_BUILTIN_H

#include "spikecl/plugin.h"

#define SPK_BUILTIN(type)                                                                          \
    __attribute__((                                                                                \
        used, section("spk_builtins"))) static const spk_layer_type *const type##__builtin = &type

#endif
