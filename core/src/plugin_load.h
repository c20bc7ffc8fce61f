/* spikecl internal — loading plugins on behalf of the model loader. */
#ifndef SPK_PLUGIN_LOAD_INTERNAL_H
#define SPK_PLUGIN_LOAD_INTERNAL_H

#include "spikecl/error.h"

/* spk_plugin_load_path_env, once per process: the first call scans $SPIKECL_PLUGIN_PATH, later
 * calls return the first call's status and message again (a broken plugin in the path fails
 * every model load the same way, not only the first). */
int spk_plugin_load_path_env_once(spk_error *err);

#endif
