/* spikecl internal — how a built-in layer type registers itself: SPK_BUILTIN(type) after the
 * descriptor puts a pointer to it in the linker section "spk_builtins", which the registry walks
 * at first use. No central list to edit when a layer file is added. */
#ifndef SPK_BUILTIN_H
#define SPK_BUILTIN_H

#include "spikecl/plugin.h"

#define SPK_BUILTIN(type)                                                                          \
    __attribute__((                                                                                \
        used, section("spk_builtins"))) static const spk_layer_type *const type##__builtin = &type

/* Built-in layers only (they ship with the host, so they may look behind spk_exec's host-private
 * backend pointer, which a plugin reaches only through the host table): whether the backend's
 * buffers are host memory, where reading a few values back costs a copy and no wait on a device
 * queue, and that read. The layers that choose a path by the measured density of their input
 * (synapse.conv2d, synapse.linear) use them. */
#include <string.h>

static inline int spk_builtin_host_memory(const spk_exec *x)
{
    const spk_backend *be = (const spk_backend *)x->backend;
    return be && be->ops && be->ops->name && strcmp(be->ops->name, "cpu") == 0;
}

/* n floats of t from float index `first` into dst. */
static inline int spk_builtin_read(spk_exec *x, const spk_tensor *t, size_t first, float *dst,
                                   size_t n)
{
    spk_backend *be = (spk_backend *)x->backend;
    if (first + n > t->numel)
        return spk_error_set(x->err, SPK_ERR_SHAPE, "read of floats [%zu, %zu) from %zu", first,
                             first + n, t->numel);
    return be->ops->download(be, t->buf, first * sizeof(float), dst, n * sizeof(float), x->err);
}

/* The backend's GEMM with offsets (in floats) into each matrix, which the host table's gemm
 * leaves out: row blocks of a larger matrix, e.g. a few images at a time that stay in cache. */
static inline int spk_builtin_gemm_at(spk_exec *x, int ta, int tb, size_t m, size_t n, size_t k,
                                      float alpha, const spk_tensor *a, size_t a_off, size_t lda,
                                      const spk_tensor *b, size_t b_off, size_t ldb, float beta,
                                      spk_tensor *c, size_t c_off, size_t ldc)
{
    spk_backend *be = (spk_backend *)x->backend;
    return be->ops->gemm(be, ta, tb, m, n, k, alpha, a->buf, a_off, lda, b->buf, b_off, ldb, beta,
                         c->buf, c_off, ldc, x->err);
}

#endif
