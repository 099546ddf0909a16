/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tcti-which: shows what select_tcti() chooses, for tests and for people wondering.
 *   tcti-which [CONF]
 * Prints "conf: ...", "reason: ..." and "skipped: ..." lines, then sends TPM2_GetRandom(8)
 * through the chosen TCTI and prints "random: HEX". Exits 0 when both worked, 1 otherwise (the
 * reason is printed either way).
 */
#include <stdio.h>
#include <string.h>

#include <tss2/tss2_tcti.h>

#include "select.h"

int main(int argc, char **argv)
{
    static const uint8_t getrandom[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8};
    struct select_choice ch;
    TSS2_TCTI_CONTEXT *tcti = NULL;
    uint8_t rsp[64];
    size_t n = sizeof(rsp);
    TSS2_RC rc;
    int status = 1;

    rc = select_tcti(argc > 1 ? argv[1] : NULL, &tcti, &ch);
    printf("conf: %s\nreason: %s\nskipped: %s\n", ch.conf, ch.reason, ch.skipped);
    if (rc != TSS2_RC_SUCCESS) {
        fprintf(stderr, "tcti-which: select_tcti failed: 0x%08x\n", rc);
        return 1;
    }
    rc = Tss2_Tcti_Transmit(tcti, sizeof(getrandom), getrandom);
    if (rc == TSS2_RC_SUCCESS) {
        rc = Tss2_Tcti_Receive(tcti, &n, rsp, TSS2_TCTI_TIMEOUT_BLOCK);
    }
    if (rc != TSS2_RC_SUCCESS || n != 20 || rsp[6] != 0 || rsp[7] != 0 || rsp[8] != 0 ||
        rsp[9] != 0) {
        fprintf(stderr, "tcti-which: TPM2_GetRandom failed: 0x%08x (%zu bytes)\n", rc, n);
        goto out;
    }
    printf("random: ");
    for (size_t i = 12; i < 20; i++) {
        printf("%02x", rsp[i]);
    }
    printf("\n");
    status = 0;
out:
    select_finalize(tcti);
    return status;
}
