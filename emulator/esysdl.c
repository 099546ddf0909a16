/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "esysdl.h"

/*
 * Resolves one symbol into a function pointer. POSIX guarantees that dlsym()'s object pointer can
 * hold a function's address; storing through a void ** avoids ISO C's object-to-function cast.
 */
static int resolve(void *handle, const char *name, void *slot, char *err, size_t errlen)
{
    void *sym;

    dlerror();
    sym = dlsym(handle, name);
    if (sym == NULL) {
        const char *why = dlerror();

        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s has no %s: %s", ESYSDL_SONAME, name,
                     why != NULL ? why : "the symbol is NULL");
        }
        return 0;
    }
    memcpy(slot, &sym, sizeof(sym));
    return 1;
}

enum sctpm_rc esysdl_open(struct esysdl *api, char *err, size_t errlen)
{
    void *h;

    memset(api, 0, sizeof(*api));
    h = dlopen(ESYSDL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        if (err != NULL && errlen > 0) {
            const char *why = dlerror();

            snprintf(err, errlen, "cannot load %s (on Debian 12, package libtss2-esys-3.0.2-0): %s",
                     ESYSDL_SONAME, why != NULL ? why : "unknown reason");
        }
        return SCTPM_RC_NOT_FOUND;
    }
    api->handle = h;
#define RESOLVE(fn)                                                                                \
    if (!resolve(h, "Esys_" #fn, &api->fn, err, errlen)) {                                         \
        goto fail;                                                                                 \
    }
    RESOLVE(Initialize);
    RESOLVE(Finalize);
    RESOLVE(Free);
    RESOLVE(GetCapability);
    RESOLVE(CreatePrimary);
    RESOLVE(EvictControl);
    RESOLVE(FlushContext);
    RESOLVE(NV_DefineSpace);
    RESOLVE(NV_Write);
    RESOLVE(NV_WriteLock);
    RESOLVE(NV_UndefineSpace);
#undef RESOLVE
    return SCTPM_RC_SUCCESS;
fail:
    esysdl_close(api);
    return SCTPM_RC_NOT_FOUND;
}

void esysdl_close(struct esysdl *api)
{
    if (api->handle != NULL) {
        dlclose(api->handle);
    }
    memset(api, 0, sizeof(*api));
}
