/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_tis.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>

#define LOGMODULE tpm
#include "log.h"
#include "tpm.h"

/* Names libtpms passes to the NV callbacks. */
#define PERMALL  "permall"
#define VOLATILE "volatilestate"

static struct {
    struct nvstore *store;
    int running;
    uint8_t locality;
    /* The permanent state read (and validated) before _TPM_Init, handed to libtpms once. */
    uint8_t *preload;
    size_t preload_len;
    /* A volatile state set by SET_STATEBLOB, and whether `preload` came from a client too. */
    uint8_t *preload_vol;
    size_t preload_vol_len;
    uint8_t *client_perm; /* a copy kept to store once libtpms has accepted it */
    size_t client_perm_len;
    /* libtpms grows this response buffer as needed and we reuse it. */
    unsigned char *rbuf;
    uint32_t rbuf_size;
    uint8_t failure_rsp[16];
    int physical_presence;
} g;

static TPM_RESULT cb_nvram_init(void)
{
    return TPM_SUCCESS;
}

/* A copy of a preloaded blob for libtpms, which frees what it is given. */
static TPM_RESULT hand_over(const uint8_t *blob, size_t len, unsigned char **data, uint32_t *length)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);

    if (copy == NULL) {
        return TPM_FAIL;
    }
    memcpy(copy, blob, len);
    *data = copy;
    *length = (uint32_t)len;
    return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number,
                                    const char *name)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum sctpm_rc rc;

    (void)tpm_number;
    *data = NULL;
    *length = 0;
    /*
     * libtpms reads a state more than once while it initialises (TPMLIB_MainInit checks the
     * permanent state, then NV is enabled from it): every read gets the preloaded blob, not the
     * store's older one. tpm_power_on() drops the preloads once libtpms is done.
     */
    if (strcmp(name, PERMALL) == 0 && g.preload != NULL) {
        return hand_over(g.preload, g.preload_len, data, length);
    }
    if (strcmp(name, VOLATILE) == 0 && g.preload_vol != NULL) {
        return hand_over(g.preload_vol, g.preload_vol_len, data, length);
    }
    rc = nvstore_load(g.store, name, &buf, &len);
    if (rc == SCTPM_RC_NOT_FOUND) {
        /* TPM_RETRY tells libtpms there is no such state: for permall, manufacture a new TPM. */
        return TPM_RETRY;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        LOG_ERROR("cannot load TPM state '%s': %s", name, nvstore_error(g.store));
        return TPM_FAIL;
    }
    *data = buf;
    *length = (uint32_t)len;
    return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_storedata(const unsigned char *data, uint32_t length,
                                     uint32_t tpm_number, const char *name)
{
    (void)tpm_number;
    LOG_TRACE("storing TPM state '%s' (%u bytes)", name, length);
    if (nvstore_save(g.store, name, data, length) != SCTPM_RC_SUCCESS) {
        LOG_ERROR("cannot save TPM state '%s': %s", name, nvstore_error(g.store));
        return TPM_FAIL;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
    (void)tpm_number;
    (void)must_exist;
    if (nvstore_delete(g.store, name) != SCTPM_RC_SUCCESS) {
        LOG_ERROR("cannot delete TPM state '%s': %s", name, nvstore_error(g.store));
        return TPM_FAIL;
    }
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getlocality(TPM_MODIFIER_INDICATOR *locality, uint32_t tpm_number)
{
    (void)tpm_number;
    *locality = g.locality;
    return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number)
{
    (void)tpm_number;
    *pp = g.physical_presence ? TRUE : FALSE;
    return TPM_SUCCESS;
}

static struct libtpms_callbacks callbacks = {
    .sizeOfStruct = sizeof(struct libtpms_callbacks),
    .tpm_nvram_init = cb_nvram_init,
    .tpm_nvram_loaddata = cb_nvram_loaddata,
    .tpm_nvram_storedata = cb_nvram_storedata,
    .tpm_nvram_deletename = cb_nvram_deletename,
    .tpm_io_init = cb_io_init,
    .tpm_io_getlocality = cb_io_getlocality,
    .tpm_io_getphysicalpresence = cb_io_getphysicalpresence,
};

/* ---- the in-process TCTI: tpm2-tss talking straight to libtpms, for our own commands ---- */

#define INPROC_MAGIC 0x736374706d696e70ULL /* "sctpminp" */

struct inproc {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;
    int have_response;
    size_t rsp_len;
    uint8_t cmd[TPM_MAX_COMMAND];
    uint8_t rsp[TPM_MAX_COMMAND];
};

static TSS2_RC inproc_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *command)
{
    struct inproc *t = (struct inproc *)ctx;
    const uint8_t *rsp;
    size_t rsp_len;

    if (t->have_response) {
        return TSS2_TCTI_RC_BAD_SEQUENCE;
    }
    if (size > sizeof(t->cmd) || size < 10) {
        return TSS2_TCTI_RC_BAD_VALUE;
    }
    memcpy(t->cmd, command, size);
    tpm_execute(0, t->cmd, size, &rsp, &rsp_len);
    if (rsp_len > sizeof(t->rsp)) {
        return TSS2_TCTI_RC_GENERAL_FAILURE;
    }
    memcpy(t->rsp, rsp, rsp_len);
    t->rsp_len = rsp_len;
    t->have_response = 1;
    return TSS2_RC_SUCCESS;
}

static TSS2_RC inproc_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *response,
                              int32_t timeout)
{
    struct inproc *t = (struct inproc *)ctx;

    (void)timeout;
    if (!t->have_response) {
        return TSS2_TCTI_RC_BAD_SEQUENCE;
    }
    if (response == NULL) {
        *size = t->rsp_len;
        return TSS2_RC_SUCCESS;
    }
    if (*size < t->rsp_len) {
        *size = t->rsp_len;
        return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
    }
    memcpy(response, t->rsp, t->rsp_len);
    *size = t->rsp_len;
    t->have_response = 0;
    return TSS2_RC_SUCCESS;
}

static void inproc_finalize(TSS2_TCTI_CONTEXT *ctx)
{
    (void)ctx;
}

static TSS2_RC inproc_cancel(TSS2_TCTI_CONTEXT *ctx)
{
    (void)ctx;
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC inproc_get_poll_handles(TSS2_TCTI_CONTEXT *ctx, TSS2_TCTI_POLL_HANDLE *h, size_t *n)
{
    (void)ctx;
    (void)h;
    (void)n;
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC inproc_set_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality)
{
    (void)ctx;
    (void)locality;
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC inproc_make_sticky(TSS2_TCTI_CONTEXT *ctx, TPM2_HANDLE *h, uint8_t sticky)
{
    (void)ctx;
    (void)h;
    (void)sticky;
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static struct inproc inproc = {
    .common =
        {
            .v1 =
                {
                    .magic = INPROC_MAGIC,
                    .version = 2,
                    .transmit = inproc_transmit,
                    .receive = inproc_receive,
                    .finalize = inproc_finalize,
                    .cancel = inproc_cancel,
                    .getPollHandles = inproc_get_poll_handles,
                    .setLocality = inproc_set_locality,
                },
            .makeSticky = inproc_make_sticky,
        },
};

TSS2_TCTI_CONTEXT *tpm_inproc_tcti(void)
{
    inproc.have_response = 0;
    return (TSS2_TCTI_CONTEXT *)&inproc;
}

/* ---- life cycle ---- */

/*
 * TPM2_Startup and TPM2_Shutdown, built and read with tss2-mu straight into libtpms. Not through
 * ESYS: the daemon would otherwise keep ESYS's pages resident for these two commands alone
 * (manufacture, the other user of ESYS, runs in a child process).
 */
static enum sctpm_rc send_startup_or_shutdown(int shutdown, TPM2_SU type)
{
    uint8_t cmd[12];
    const uint8_t *rsp;
    size_t off = 0, rsp_len = 0, roff = 0;
    TPM2_ST tag;
    UINT32 size;
    TPM2_RC r = TPM2_RC_FAILURE;

    if (Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, cmd, sizeof(cmd), &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_UINT32_Marshal(sizeof(cmd), cmd, sizeof(cmd), &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2_CC_Marshal(shutdown ? TPM2_CC_Shutdown : TPM2_CC_Startup, cmd, sizeof(cmd),
                                &off) != TSS2_RC_SUCCESS ||
        Tss2_MU_UINT16_Marshal(type, cmd, sizeof(cmd), &off) != TSS2_RC_SUCCESS) {
        LOG_ERROR("cannot build TPM2_%s", shutdown ? "Shutdown" : "Startup");
        return SCTPM_RC_TPM;
    }
    tpm_execute(0, cmd, off, &rsp, &rsp_len);
    if (Tss2_MU_TPM2_ST_Unmarshal(rsp, rsp_len, &roff, &tag) != TSS2_RC_SUCCESS ||
        Tss2_MU_UINT32_Unmarshal(rsp, rsp_len, &roff, &size) != TSS2_RC_SUCCESS ||
        Tss2_MU_UINT32_Unmarshal(rsp, rsp_len, &roff, &r) != TSS2_RC_SUCCESS || size != rsp_len) {
        LOG_ERROR("TPM2_%s: a malformed response of %zu bytes", shutdown ? "Shutdown" : "Startup",
                  rsp_len);
        return SCTPM_RC_TPM;
    }
    /* TPM_RC_INITIALIZE: the TPM was started already (a resumed volatile state), which is fine. */
    if (r != TPM2_RC_SUCCESS && !(r == TPM2_RC_INITIALIZE && !shutdown)) {
        LOG_ERROR("TPM2_%s failed: 0x%08x", shutdown ? "Shutdown" : "Startup", r);
        return SCTPM_RC_TPM;
    }
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc tpm_power_on(int delete_volatile, enum tpm_startup startup, char *err, size_t errlen)
{
    TPM_RESULT res;

    if (g.running) {
        return SCTPM_RC_SUCCESS;
    }
    if (delete_volatile) {
        free(g.preload_vol);
        g.preload_vol = NULL;
        if (nvstore_delete(g.store, VOLATILE) != SCTPM_RC_SUCCESS) {
            snprintf(err, errlen, "%s", nvstore_error(g.store));
            return SCTPM_RC_IO;
        }
    }
    res = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
    if (res == TPM_SUCCESS) {
        res = TPMLIB_RegisterCallbacks(&callbacks);
    }
    if (res == TPM_SUCCESS) {
        res = TPMLIB_MainInit();
    }
    free(g.preload);
    g.preload = NULL;
    free(g.preload_vol);
    g.preload_vol = NULL;
    if (res != TPM_SUCCESS) {
        /*
         * libtpms keeps what it had set up when it fails half way: without this, every later
         * power-on fails too, whatever the state. As swtpm does, tear it down.
         */
        TPMLIB_Terminate();
        /* A state a client set is dropped; the stored state was never touched. */
        free(g.client_perm);
        g.client_perm = NULL;
        snprintf(err, errlen, "libtpms could not initialise the TPM (TPM_RESULT 0x%x)", res);
        return SCTPM_RC_TPM;
    }
    g.running = 1;
    if (g.client_perm != NULL) {
        /* libtpms accepted the state a client set: only now may it replace the stored one. */
        enum sctpm_rc rc = nvstore_save(g.store, PERMALL, g.client_perm, g.client_perm_len);
        free(g.client_perm);
        g.client_perm = NULL;
        if (rc != SCTPM_RC_SUCCESS) {
            snprintf(err, errlen, "%s", nvstore_error(g.store));
            tpm_power_off(0);
            return rc;
        }
    }
    /* A volatile state is a snapshot for one resume; resuming from it twice would roll back. */
    (void)nvstore_delete(g.store, VOLATILE);
    if (startup != TPM_STARTUP_NONE &&
        send_startup_or_shutdown(0, startup == TPM_STARTUP_CLEAR ? TPM2_SU_CLEAR : TPM2_SU_STATE) !=
            SCTPM_RC_SUCCESS) {
        snprintf(err, errlen, "TPM2_Startup failed");
        tpm_power_off(0);
        return SCTPM_RC_TPM;
    }
    return SCTPM_RC_SUCCESS;
}

void tpm_power_off(int orderly)
{
    if (!g.running) {
        return;
    }
    if (orderly) {
        (void)send_startup_or_shutdown(1, TPM2_SU_STATE);
    }
    TPMLIB_Terminate();
    g.running = 0;
}

enum sctpm_rc tpm_start(struct nvstore *store, int *fresh, char *err, size_t errlen)
{
    enum sctpm_rc rc;

    g.store = store;
    *fresh = 0;
    free(g.preload);
    g.preload = NULL;
    free(g.client_perm);
    g.client_perm = NULL;
    /*
     * Read and check the permanent state ourselves before libtpms sees it: libtpms would treat an
     * unreadable state like a missing one and manufacture a new TPM over it, destroying every key.
     */
    rc = nvstore_load(store, PERMALL, &g.preload, &g.preload_len);
    if (rc == SCTPM_RC_NOT_FOUND) {
        *fresh = 1;
    } else if (rc != SCTPM_RC_SUCCESS) {
        snprintf(err, errlen, "%s", nvstore_error(store));
        return rc;
    }
    return tpm_power_on(0, TPM_STARTUP_CLEAR, err, errlen);
}

void tpm_stop(void)
{
    tpm_power_off(1);
    free(g.rbuf);
    g.rbuf = NULL;
    g.rbuf_size = 0;
}

int tpm_running(void)
{
    return g.running;
}

void tpm_execute(uint8_t locality, uint8_t *cmd, size_t len, const uint8_t **rsp, size_t *rsp_len)
{
    uint32_t out_len = 0;
    TPM_RESULT res;

    if (g.running && len <= UINT32_MAX) {
        g.locality = locality;
        res = TPMLIB_Process(&g.rbuf, &out_len, &g.rbuf_size, cmd, (uint32_t)len);
        if (res == TPM_SUCCESS && out_len >= 10) {
            *rsp = g.rbuf;
            *rsp_len = out_len;
            return;
        }
        LOG_ERROR("libtpms failed to process a command (TPM_RESULT 0x%x)", res);
    }
    /* A powered-off or failed TPM answers TPM_RC_FAILURE, as a chip in failure mode would. */
    {
        size_t off = 0;
        (void)Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, g.failure_rsp, sizeof(g.failure_rsp),
                                      &off);
        (void)Tss2_MU_UINT32_Marshal(10, g.failure_rsp, sizeof(g.failure_rsp), &off);
        (void)Tss2_MU_UINT32_Marshal(TPM2_RC_FAILURE, g.failure_rsp, sizeof(g.failure_rsp), &off);
        *rsp = g.failure_rsp;
        *rsp_len = off;
    }
}

enum sctpm_rc tpm_store_volatile(void)
{
    unsigned char *buf = NULL;
    uint32_t len = 0;
    enum sctpm_rc rc;

    if (!g.running) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    if (TPMLIB_VolatileAll_Store(&buf, &len) != TPM_SUCCESS) {
        return SCTPM_RC_TPM;
    }
    rc = nvstore_save(g.store, VOLATILE, buf, len);
    free(buf);
    return rc;
}

static enum TPMLIB_StateType state_type(uint32_t type)
{
    switch (type) {
    case 1:
        return TPMLIB_STATE_PERMANENT;
    case 2:
        return TPMLIB_STATE_VOLATILE;
    default:
        return TPMLIB_STATE_SAVE_STATE;
    }
}

enum sctpm_rc tpm_get_state_blob(uint32_t type, uint8_t **data, size_t *len)
{
    unsigned char *buf = NULL;
    uint32_t n = 0;
    TPM_RESULT res;

    *data = NULL;
    *len = 0;
    if (type < 1 || type > 3) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    if (type == 2 && g.running) {
        /* The live volatile state, as swtpm gives it. */
        res = TPMLIB_VolatileAll_Store(&buf, &n);
    } else {
        res = TPMLIB_GetState(state_type(type), &buf, &n);
    }
    if (res != TPM_SUCCESS) {
        free(buf);
        return type == 3 ? SCTPM_RC_NOT_FOUND : SCTPM_RC_TPM;
    }
    *data = buf;
    *len = n;
    return SCTPM_RC_SUCCESS;
}

enum sctpm_rc tpm_set_state_blob(uint32_t type, const uint8_t *data, size_t len)
{
    uint8_t *copy, *copy2 = NULL;

    if (g.running) {
        return SCTPM_RC_BUSY;
    }
    if ((type != 1 && type != 2) || len == 0 || len > NVSTORE_MAX_BLOB) {
        return SCTPM_RC_BAD_ARGUMENT;
    }
    /*
     * The blob is only handed to libtpms at the next power-on; the stored state is replaced after
     * libtpms has accepted it there, so a bad blob cannot destroy a good state.
     */
    copy = malloc(len);
    if (type == 1) {
        copy2 = malloc(len);
    }
    if (copy == NULL || (type == 1 && copy2 == NULL)) {
        free(copy);
        free(copy2);
        return SCTPM_RC_NO_MEMORY;
    }
    memcpy(copy, data, len);
    if (type == 1) {
        memcpy(copy2, data, len);
        free(g.preload);
        g.preload = copy;
        g.preload_len = len;
        free(g.client_perm);
        g.client_perm = copy2;
        g.client_perm_len = len;
    } else {
        free(g.preload_vol);
        g.preload_vol = copy;
        g.preload_vol_len = len;
    }
    return SCTPM_RC_SUCCESS;
}

uint32_t tpm_buffer_size(uint32_t wanted, uint32_t *min, uint32_t *max)
{
    if (g.running && wanted != 0) {
        wanted = 0;
    }
    return TPMLIB_SetBufferSize(wanted, min, max);
}

uint32_t tpm_hash_start(void)
{
    g.locality = 4;
    return g.running ? TPM_IO_Hash_Start() : TPM_FAIL;
}

uint32_t tpm_hash_data(const uint8_t *data, size_t len)
{
    g.locality = 4;
    if (!g.running || len > UINT32_MAX) {
        return TPM_FAIL;
    }
    return TPM_IO_Hash_Data(data, (uint32_t)len);
}

uint32_t tpm_hash_end(void)
{
    g.locality = 4;
    return g.running ? TPM_IO_Hash_End() : TPM_FAIL;
}

uint32_t tpm_established_get(int *established)
{
    TPM_BOOL bit = FALSE;
    TPM_RESULT res;

    if (!g.running) {
        return TPM_FAIL;
    }
    res = TPM_IO_TpmEstablished_Get(&bit);
    *established = bit ? 1 : 0;
    return res;
}

uint32_t tpm_established_reset(uint8_t locality)
{
    if (!g.running) {
        return TPM_FAIL;
    }
    g.locality = locality;
    return TPM_IO_TpmEstablished_Reset();
}

void tpm_set_physical_presence(int on)
{
    g.physical_presence = on;
}

char *tpm_get_info(uint64_t flags)
{
    return TPMLIB_GetInfo((enum TPMLIB_InfoFlags)flags);
}
