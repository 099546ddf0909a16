/* SPDX-License-Identifier: BSD-2-Clause */
/* Interim: explicit configurations only, through tctildr. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <tss2/tss2_tctildr.h>

#include "select.h"

TSS2_RC select_tcti(const char *conf, TSS2_TCTI_CONTEXT **tcti, struct select_choice *choice)
{
    TSS2_RC r;

    memset(choice, 0, sizeof(*choice));
    if (conf == NULL || *conf == '\0') {
        snprintf(choice->reason, sizeof(choice->reason), "no TCTI configuration given");
        return TSS2_TCTI_RC_NOT_IMPLEMENTED;
    }
    snprintf(choice->conf, sizeof(choice->conf), "%s", conf);
    snprintf(choice->reason, sizeof(choice->reason), "given by the caller");
    r = Tss2_TctiLdr_Initialize(conf, tcti);
    return r;
}

void select_finalize(TSS2_TCTI_CONTEXT *tcti)
{
    Tss2_TctiLdr_Finalize(&tcti);
}
