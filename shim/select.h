/* SPDX-License-Identifier: BSD-2-Clause */
/* Interim: TCTI selection (replaced by the full sctpm order). */
#ifndef SCTPM_SHIM_SELECT_H
#define SCTPM_SHIM_SELECT_H

#include <tss2/tss2_tcti.h>

struct select_choice {
    char conf[256];
    char reason[256];
};

TSS2_RC select_tcti(const char *conf, TSS2_TCTI_CONTEXT **tcti, struct select_choice *choice);
void select_finalize(TSS2_TCTI_CONTEXT *tcti);

#endif
