/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The resource manager in process: ESYS clients, each on its own space, driving one libtpms TPM.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <tss2/tss2_esys.h>

#include "rm.h"
#include "tpm.h"

/*
 * tss2's TRANSIENT_FIRST and friends shift a signed int into the sign bit, which UBSan
 * rightly rejects; these are the same values.
 */
#define TRANSIENT_FIRST      0x80000000u
#define LOADED_SESSION_FIRST 0x02000000u
#define ACTIVE_SESSION_FIRST 0x03000000u

static char dir[] = "/tmp/check_rm.XXXXXX";
static struct nvstore *store;
static struct rm *rm;

/* A TCTI whose commands run through rm_execute() on one space. */
struct space_tcti {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;
    struct rm_space *space;
    uint8_t cmd[4096], rsp[4096];
    size_t rsp_len;
};

static TSS2_RC st_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *cmd)
{
    struct space_tcti *t = (struct space_tcti *)ctx;
    const uint8_t *rsp;
    size_t len;

    memcpy(t->cmd, cmd, size);
    rm_execute(t->space, 0, t->cmd, size, &rsp, &len);
    memcpy(t->rsp, rsp, len);
    t->rsp_len = len;
    return TSS2_RC_SUCCESS;
}

static TSS2_RC st_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *rsp, int32_t timeout)
{
    struct space_tcti *t = (struct space_tcti *)ctx;

    (void)timeout;
    if (rsp != NULL) {
        memcpy(rsp, t->rsp, t->rsp_len);
    }
    *size = t->rsp_len;
    return TSS2_RC_SUCCESS;
}

static void st_finalize(TSS2_TCTI_CONTEXT *ctx)
{
    (void)ctx;
}

struct client {
    struct space_tcti tcti;
    ESYS_CONTEXT *esys;
    ESYS_TR keys[8];
    uint8_t secrets[8][32];
    int n_keys;
};

static struct client *client_new(const char *name)
{
    struct client *c = calloc(1, sizeof(*c));

    c->tcti.common.v1.magic = 0x74657374ULL;
    c->tcti.common.v1.version = 2;
    c->tcti.common.v1.transmit = st_transmit;
    c->tcti.common.v1.receive = st_receive;
    c->tcti.common.v1.finalize = st_finalize;
    c->tcti.space = rm_space_new(rm, name);
    ck_assert_ptr_nonnull(c->tcti.space);
    ck_assert_int_eq(Esys_Initialize(&c->esys, (TSS2_TCTI_CONTEXT *)&c->tcti, NULL),
                     TSS2_RC_SUCCESS);
    return c;
}

static void client_free(struct client *c)
{
    Esys_Finalize(&c->esys);
    rm_space_free(c->tcti.space);
    free(c);
}

/* Loads an HMAC key with known bytes; returns the TSS2 rc. */
static TSS2_RC load_key(struct client *c)
{
    TPM2B_SENSITIVE sens = {.sensitiveArea = {.sensitiveType = TPM2_ALG_KEYEDHASH}};
    TPM2B_PUBLIC pub = {
        .publicArea = {.type = TPM2_ALG_KEYEDHASH,
                       .nameAlg = TPM2_ALG_SHA256,
                       .objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_USERWITHAUTH,
                       .parameters.keyedHashDetail.scheme = {
                           .scheme = TPM2_ALG_HMAC, .details.hmac.hashAlg = TPM2_ALG_SHA256}}};
    uint8_t *secret = c->secrets[c->n_keys];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int ulen = 32;
    TSS2_RC rc;

    RAND_bytes(secret, 32);
    sens.sensitiveArea.sensitive.bits.size = 32;
    memcpy(sens.sensitiveArea.sensitive.bits.buffer, secret, 32);
    sens.sensitiveArea.seedValue.size = 32;
    RAND_bytes(sens.sensitiveArea.seedValue.buffer, 32);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, sens.sensitiveArea.seedValue.buffer, 32);
    EVP_DigestUpdate(md, secret, 32);
    EVP_DigestFinal_ex(md, pub.publicArea.unique.keyedHash.buffer, &ulen);
    EVP_MD_CTX_free(md);
    pub.publicArea.unique.keyedHash.size = 32;
    rc = Esys_LoadExternal(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &pub,
                           ESYS_TR_RH_NULL, &c->keys[c->n_keys]);
    if (rc == TSS2_RC_SUCCESS) {
        c->n_keys++;
    }
    return rc;
}

/* One HMAC with key k (under `session`, or a password) checked against OpenSSL. */
static void hmac_ok(struct client *c, int k, ESYS_TR session)
{
    TPM2B_MAX_BUFFER data = {.size = 40};
    TPM2B_DIGEST *out = NULL;
    uint8_t want[32];
    unsigned int wl = 32;

    RAND_bytes(data.buffer, data.size);
    ck_assert_int_eq(Esys_HMAC(c->esys, c->keys[k], session, ESYS_TR_NONE, ESYS_TR_NONE, &data,
                               TPM2_ALG_SHA256, &out),
                     TSS2_RC_SUCCESS);
    HMAC(EVP_sha256(), c->secrets[k], 32, data.buffer, data.size, want, &wl);
    ck_assert_uint_eq(out->size, 32);
    ck_assert_mem_eq(out->buffer, want, 32);
    Esys_Free(out);
}

static ESYS_TR start_session(struct client *c)
{
    TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
    ESYS_TR s;

    ck_assert_int_eq(Esys_StartAuthSession(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                           ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym,
                                           TPM2_ALG_SHA256, &s),
                     TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_TRSess_SetAttributes(c->esys, s, TPMA_SESSION_CONTINUESESSION, 0xff),
                     TSS2_RC_SUCCESS);
    return s;
}

/* Handles of one type (0x80 transient, 0x02 loaded sessions) a client sees. */
static uint32_t handles_seen(ESYS_CONTEXT *esys, TPM2_HANDLE first)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    uint32_t n;

    ck_assert_int_eq(Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_HANDLES, first, 64, &more, &cap),
                     TSS2_RC_SUCCESS);
    n = cap->data.handles.count;
    Esys_Free(cap);
    return n;
}

/* What the raw TPM holds, seen without the RM. */
static uint32_t raw_handles(TPM2_HANDLE first)
{
    ESYS_CONTEXT *esys;
    uint32_t n;

    ck_assert_int_eq(Esys_Initialize(&esys, tpm_inproc_tcti(), NULL), TSS2_RC_SUCCESS);
    n = handles_seen(esys, first);
    Esys_Finalize(&esys);
    return n;
}

static void setup_with(unsigned max_objects, unsigned abandoned_max)
{
    struct rm_config cfg = {.max_objects_per_space = max_objects,
                            .max_sessions_per_space = 8,
                            .max_objects_total = 1000,
                            .abandoned_sessions_max = abandoned_max,
                            .abandoned_sessions_ttl = 300};
    char err[256];
    int fresh;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(nvstore_open(dir, NULL, NVSTORE_FSYNC_NEVER, &store, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    ck_assert_int_eq(tpm_start(store, &fresh, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(rm_create(&cfg, &rm, err, sizeof(err)), SCTPM_RC_SUCCESS);
}

static void setup(void)
{
    setup_with(32, 16);
}

static void teardown(void)
{
    char cmd[128];

    rm_destroy(rm);
    tpm_stop();
    nvstore_close(store);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/check_rm.XXXXXX");
}

START_TEST(test_isolated_clients_beyond_three_slots)
{
    struct client *a = client_new("a"), *b = client_new("b");

    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(load_key(a), TSS2_RC_SUCCESS);
        ck_assert_int_eq(load_key(b), TSS2_RC_SUCCESS);
    }
    for (int i = 0; i < 40; i++) {
        hmac_ok(a, i % 5, ESYS_TR_PASSWORD);
        hmac_ok(b, (i * 3) % 5, ESYS_TR_PASSWORD);
    }
    ck_assert_uint_eq(handles_seen(a->esys, TRANSIENT_FIRST), 5);
    ck_assert_uint_eq(handles_seen(b->esys, TRANSIENT_FIRST), 5);
    ck_assert_uint_le(raw_handles(TRANSIENT_FIRST), 3);
    client_free(a);
    client_free(b);
    /* Everything both left behind is flushed. */
    ck_assert_uint_eq(raw_handles(TRANSIENT_FIRST), 0);
    a = client_new("fresh");
    ck_assert_uint_eq(handles_seen(a->esys, TRANSIENT_FIRST), 0);
    client_free(a);
}
END_TEST

START_TEST(test_foreign_handle_refused)
{
    struct client *a = client_new("a"), *b = client_new("b");
    TPM2B_PUBLIC *pub = NULL;
    TPM2_HANDLE tpm_handle;
    ESYS_TR tr;

    ck_assert_int_eq(load_key(a), TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_TR_GetTpmHandle(a->esys, a->keys[0], &tpm_handle), TSS2_RC_SUCCESS);
    /* b names a's handle: TPM_RC_HANDLE for handle 1, as if it did not exist. */
    ck_assert_int_eq(
        Esys_TR_FromTPMPublic(b->esys, tpm_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr) &
            0xfff,
        TPM2_RC_HANDLE | TPM2_RC_1);
    ck_assert_int_eq(Esys_ReadPublic(a->esys, a->keys[0], ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     &pub, NULL, NULL),
                     TSS2_RC_SUCCESS);
    Esys_Free(pub);
    client_free(a);
    client_free(b);
}
END_TEST

START_TEST(test_sessions_beyond_three_slots)
{
    struct client *a = client_new("a"), *b = client_new("b");
    ESYS_TR sa[5], sb[2];

    ck_assert_int_eq(load_key(a), TSS2_RC_SUCCESS);
    ck_assert_int_eq(load_key(b), TSS2_RC_SUCCESS);
    for (int i = 0; i < 5; i++) {
        sa[i] = start_session(a);
    }
    sb[0] = start_session(b);
    sb[1] = start_session(b);
    for (int i = 0; i < 30; i++) {
        hmac_ok(a, 0, sa[i % 5]);
        hmac_ok(b, 0, sb[i % 2]);
    }
    ck_assert_uint_eq(handles_seen(a->esys, LOADED_SESSION_FIRST), 5);
    ck_assert_uint_eq(handles_seen(b->esys, LOADED_SESSION_FIRST), 2);
    ck_assert_int_eq(Esys_FlushContext(a->esys, sa[0]), TSS2_RC_SUCCESS);
    ck_assert_uint_eq(handles_seen(a->esys, LOADED_SESSION_FIRST), 4);
    client_free(a);
    client_free(b);
    ck_assert_uint_eq(raw_handles(LOADED_SESSION_FIRST), 0);
    ck_assert_uint_eq(raw_handles(ACTIVE_SESSION_FIRST), 0);
}
END_TEST

START_TEST(test_sequence_object_flushed_by_complete)
{
    struct client *a = client_new("a");
    TPM2B_AUTH auth = {0};
    TPM2B_MAX_BUFFER data = {.size = 5, .buffer = "hello"};
    TPM2B_DIGEST *out = NULL;
    ESYS_TR seq;

    ck_assert_int_eq(load_key(a), TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_HMAC_Start(a->esys, a->keys[0], ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                     ESYS_TR_NONE, &auth, TPM2_ALG_SHA256, &seq),
                     TSS2_RC_SUCCESS);
    ck_assert_uint_eq(rm_space_objects(a->tcti.space), 2);
    ck_assert_int_eq(
        Esys_SequenceUpdate(a->esys, seq, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &data),
        TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_SequenceComplete(a->esys, seq, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                           ESYS_TR_NONE, NULL, TPM2_RH_NULL, &out, NULL),
                     TSS2_RC_SUCCESS);
    Esys_Free(out);
    /* SequenceComplete flushes the sequence object (TPMA_CC flushed): the RM forgets it. */
    ck_assert_uint_eq(rm_space_objects(a->tcti.space), 1);
    client_free(a);
}
END_TEST

START_TEST(test_quota)
{
    struct client *a, *b;

    teardown();
    setup_with(4, 16);
    a = client_new("greedy");
    b = client_new("other");
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(load_key(a), TSS2_RC_SUCCESS);
    }
    ck_assert_int_eq(load_key(a), TPM2_RC_OBJECT_MEMORY);
    ck_assert_int_eq(load_key(b), TSS2_RC_SUCCESS);
    hmac_ok(b, 0, ESYS_TR_PASSWORD);
    client_free(a);
    client_free(b);
}
END_TEST

START_TEST(test_client_saved_session_outlives_its_client)
{
    struct client *a = client_new("first process"), *b;
    TPMS_CONTEXT *ctx = NULL;
    ESYS_TR s;

    s = start_session(a);
    ck_assert_int_eq(Esys_ContextSave(a->esys, s, &ctx), TSS2_RC_SUCCESS);
    client_free(a);
    b = client_new("second process");
    ck_assert_int_eq(load_key(b), TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_ContextLoad(b->esys, ctx, &s), TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_TRSess_SetAttributes(b->esys, s, TPMA_SESSION_CONTINUESESSION, 0xff),
                     TSS2_RC_SUCCESS);
    hmac_ok(b, 0, s);
    Esys_Free(ctx);
    client_free(b);
    ck_assert_uint_eq(raw_handles(ACTIVE_SESSION_FIRST), 0);
}
END_TEST

START_TEST(test_abandoned_sessions_bounded)
{
    TPMS_CONTEXT *ctx[3];
    struct client *b;
    ESYS_TR s;

    teardown();
    setup_with(32, 2);
    for (int i = 0; i < 3; i++) {
        struct client *a = client_new("saver");
        s = start_session(a);
        ck_assert_int_eq(Esys_ContextSave(a->esys, s, &ctx[i]), TSS2_RC_SUCCESS);
        client_free(a);
    }
    /* Only two are kept: the oldest was flushed. */
    ck_assert_uint_eq(raw_handles(ACTIVE_SESSION_FIRST), 2);
    b = client_new("loader");
    ck_assert_int_ne(Esys_ContextLoad(b->esys, ctx[0], &s), TSS2_RC_SUCCESS);
    ck_assert_int_eq(Esys_ContextLoad(b->esys, ctx[2], &s), TSS2_RC_SUCCESS);
    for (int i = 0; i < 3; i++) {
        Esys_Free(ctx[i]);
    }
    client_free(b);
}
END_TEST

/*
 * Forces TPM_RC_CONTEXT_GAP: one client keeps a session saved while another cycles four policy
 * sessions through the three slots (PolicyAuthValue names its session in the handle area and
 * costs ESYS no cryptography), so that every command saves one; after 2^16 saves the old
 * session's context ID is too far behind. The RM must re-gap it, and it must still work after.
 */
START_TEST(test_context_gap_regapped)
{
    struct client *idle = client_new("idle"), *busy = client_new("busy");
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    ESYS_TR old, s[4];

    ck_assert_int_eq(load_key(idle), TSS2_RC_SUCCESS);
    ck_assert_int_eq(load_key(busy), TSS2_RC_SUCCESS);
    old = start_session(idle);
    hmac_ok(idle, 0, old);
    for (int i = 0; i < 4; i++) {
        TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
        ck_assert_int_eq(Esys_StartAuthSession(busy->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                               ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
                                               &sym, TPM2_ALG_SHA256, &s[i]),
                         TSS2_RC_SUCCESS);
    }
    for (int i = 0; i < 70000; i++) {
        ck_assert_int_eq(
            Esys_PolicyAuthValue(busy->esys, s[i % 4], ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE),
            TSS2_RC_SUCCESS);
    }
    hmac_ok(idle, 0, old);
    /* Clients are told the gap is unlimited: the RM takes care of it. */
    ck_assert_int_eq(Esys_GetCapability(idle->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_TPM_PROPERTIES, TPM2_PT_CONTEXT_GAP_MAX, 1, &more,
                                        &cap),
                     TSS2_RC_SUCCESS);
    ck_assert_uint_eq(cap->data.tpmProperties.tpmProperty[0].value, UINT32_MAX);
    Esys_Free(cap);
    client_free(idle);
    client_free(busy);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("rm");
    TCase *tc = tcase_create("spaces");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_isolated_clients_beyond_three_slots);
    tcase_add_test(tc, test_foreign_handle_refused);
    tcase_add_test(tc, test_sessions_beyond_three_slots);
    tcase_add_test(tc, test_sequence_object_flushed_by_complete);
    tcase_add_test(tc, test_quota);
    tcase_add_test(tc, test_client_saved_session_outlives_its_client);
    tcase_add_test(tc, test_abandoned_sessions_bounded);
    tcase_add_test(tc, test_context_gap_regapped);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
