/* spikecl internal — loading plugins on behalf of the model loader. */
#ifndef SPK_PLUGIN_LOAD_INTERNAL_H
#define SPK_PLUGIN_LOAD_INTERNAL_H

/* spk_plugin_load_path_env_once is public (spikecl.h): the CLI reports what it skipped */
#include "spikecl/spikecl.h"

#endif
