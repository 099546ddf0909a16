/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>

#include "tpm.h"

static char dir[] = "/tmp/check_tpm.XXXXXX";

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/check_tpm.XXXXXX");
}

static struct nvstore *start(int want_fresh)
{
    struct nvstore *st = NULL;
    char err[256];
    int fresh = -1;

    ck_assert_int_eq(nvstore_open(dir, NULL, NVSTORE_FSYNC_NEVER, &st, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(tpm_start(st, &fresh, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(fresh, want_fresh);
    ck_assert(tpm_running());
    return st;
}

/* Defines an NV index, writes it, restarts the TPM, and reads it back through ESYS. */
START_TEST(test_state_survives_restart)
{
    struct nvstore *st = start(1);
    ESYS_CONTEXT *esys = NULL;
    ESYS_TR nv = ESYS_TR_NONE;
    TPM2B_AUTH auth = {0};
    TPM2B_NV_PUBLIC pub = {.nvPublic = {.nvIndex = 0x01500001,
                                        .nameAlg = TPM2_ALG_SHA256,
                                        .attributes = TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD,
                                        .dataSize = 4}};
    TPM2B_MAX_NV_BUFFER data = {.size = 4, .buffer = {1, 2, 3, 4}};
    TPM2B_MAX_NV_BUFFER *back = NULL;

    ck_assert_int_eq(Esys_Initialize(&esys, tpm_inproc_tcti(), NULL), TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_NV_DefineSpace(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                         ESYS_TR_NONE, &auth, &pub, &nv),
                     TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_NV_Write(esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &data, 0),
                     TSS2_RC_SUCCESS);
    Esys_Finalize(&esys);
    tpm_stop();
    ck_assert(!tpm_running());
    nvstore_close(st);

    st = start(0);
    ck_assert_int_eq(Esys_Initialize(&esys, tpm_inproc_tcti(), NULL), TSS2_RC_SUCCESS);
    /*
     * tpm_start() already sent TPM2_Startup: a client's Startup gets TPM_RC_INITIALIZE, which ESYS
     * reports as success.
     */
    {
        uint8_t startup[] = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0};
        const uint8_t *rsp;
        size_t len;
        tpm_execute(0, startup, sizeof(startup), &rsp, &len);
        ck_assert_uint_eq(len, 10);
        ck_assert_uint_eq(rsp[8], 0x01); /* TPM_RC_INITIALIZE = 0x100 */
        ck_assert_uint_eq(rsp[9], 0x00);
    }
    ck_assert_int_eq(Esys_Startup(esys, TPM2_SU_CLEAR), TSS2_RC_SUCCESS);
    ck_assert_int_eq(
        Esys_TR_FromTPMPublic(esys, 0x01500001, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv),
        TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_NV_Read(esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                  ESYS_TR_NONE, 4, 0, &back),
                     TSS2_RC_SUCCESS);
    ck_assert_uint_eq(back->size, 4);
    ck_assert_mem_eq(back->buffer, data.buffer, 4);
    Esys_Free(back);
    Esys_Finalize(&esys);
    tpm_stop();
    nvstore_close(st);
}
END_TEST

START_TEST(test_powered_off_answers_failure)
{
    struct nvstore *st = start(1);
    uint8_t cmd[] = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};
    const uint8_t *rsp;
    size_t len;

    tpm_execute(0, cmd, sizeof(cmd), &rsp, &len);
    ck_assert_uint_eq(len, 10 + 2 + 8);
    tpm_power_off(1);
    tpm_execute(0, cmd, sizeof(cmd), &rsp, &len);
    ck_assert_uint_eq(len, 10);
    /* TPM_RC_FAILURE = 0x101 */
    ck_assert_uint_eq(rsp[8], 0x01);
    ck_assert_uint_eq(rsp[9], 0x01);
    tpm_stop();
    nvstore_close(st);
}
END_TEST

START_TEST(test_corrupt_state_refused_untouched)
{
    struct nvstore *st = start(1);
    char path[512], err[256];
    FILE *f;
    int fresh;

    tpm_stop();
    nvstore_close(st);
    snprintf(path, sizeof(path), "%s/tpm2-permall", dir);
    f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 200, SEEK_SET);
    fputc('!', f);
    fclose(f);
    ck_assert_int_eq(nvstore_open(dir, NULL, NVSTORE_FSYNC_NEVER, &st, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(tpm_start(st, &fresh, err, sizeof(err)), SCTPM_RC_CORRUPT);
    ck_assert(!tpm_running());
    ck_assert_ptr_nonnull(strstr(err, "integrity check"));
    nvstore_close(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tpm");
    TCase *tc = tcase_create("libtpms");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_state_survives_restart);
    tcase_add_test(tc, test_powered_off_answers_failure);
    tcase_add_test(tc, test_corrupt_state_refused_untouched);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
