/* spk_nir_export / spk_nir_import in a build without libhdf5 (cmake -DSPIKECL_NIR=OFF, as the
 * GPU bundle is built): the calls exist, so the ABI does not depend on the option, and say why
 * they cannot run. */
#include "spikecl/nir.h"

static int nir_absent(const char *path, spk_error *err)
{
    return spk_error_set(err, SPK_ERR_UNSUPPORTED,
                         "%s: this spikecl was built without NIR (cmake -DSPIKECL_NIR=OFF: no "
                         "libhdf5); rebuild with -DSPIKECL_NIR=ON to read or write NIR files",
                         path ? path : "(null)");
}

int spk_nir_export(spk_session *s, const char *path, const spk_nir_options *opt, spk_error *err)
{
    (void)s;
    (void)opt;
    return nir_absent(path, err);
}

int spk_nir_import(const char *path, const char *dir, const spk_nir_options *opt, spk_error *err)
{
    (void)dir;
    (void)opt;
    return nir_absent(path, err);
}
