/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * esysdl: the ESAPI functions that first-start manufacture uses, loaded at run time.
 *
 * sctpmd needs ESAPI once in the life of a state, to manufacture the TPM's identity (mfg.h), and
 * does that in a short-lived child process. Linking libtss2-esys (and with it libtss2-sys) into
 * the daemon would map and relocate both for the daemon's whole life, about 250 KiB of resident
 * memory on a device that never uses them again. So the daemon does not link them: the
 * manufacturing child opens libtss2-esys with dlopen() and calls it through this table.
 *
 * The table is also the seam the unit tests use to make one call fail.
 */
#ifndef SCTPM_EMULATOR_ESYSDL_H
#define SCTPM_EMULATOR_ESYSDL_H

#include <stddef.h>

#include <tss2/tss2_esys.h>

#include "sctpm/rc.h"

/* The library's soname: its ABI version, stable across tpm2-tss 2.x to 4.x. */
#define ESYSDL_SONAME "libtss2-esys.so.0"

struct esysdl {
    void *handle; /* from dlopen(); NULL when the table was filled in some other way */
    __typeof__(Esys_Initialize) *Initialize;
    __typeof__(Esys_Finalize) *Finalize;
    __typeof__(Esys_Free) *Free;
    __typeof__(Esys_GetCapability) *GetCapability;
    __typeof__(Esys_CreatePrimary) *CreatePrimary;
    __typeof__(Esys_EvictControl) *EvictControl;
    __typeof__(Esys_FlushContext) *FlushContext;
    __typeof__(Esys_NV_DefineSpace) *NV_DefineSpace;
    __typeof__(Esys_NV_Write) *NV_Write;
    __typeof__(Esys_NV_WriteLock) *NV_WriteLock;
    __typeof__(Esys_NV_UndefineSpace) *NV_UndefineSpace;
};

/*
 * Opens libtss2-esys and resolves every function of the table. Returns SCTPM_RC_SUCCESS, or
 * SCTPM_RC_NOT_FOUND when the library or one of its functions is missing, with one sentence in
 * `err` (naming the library and dlerror()'s reason). On failure nothing is left open.
 */
enum sctpm_rc esysdl_open(struct esysdl *api, char *err, size_t errlen);

/* Closes what esysdl_open() opened and clears the table; a cleared table may be closed again. */
void esysdl_close(struct esysdl *api);

#endif /* SCTPM_EMULATOR_ESYSDL_H */
