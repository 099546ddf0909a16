/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#define LOGMODULE rm
#include "log.h"
#include "rm.h"
#include "tpm.h"

#define HDR         10
#define MAX_CC      512
#define RSP_MAX     (TPM_MAX_COMMAND + 64)
#define MAX_AUTHS   3
#define MAX_HANDLES 3 /* no TPM 2.0 command has more than three handles in its handle area */

#define HT(h)            ((uint8_t)((h) >> TPM2_HR_SHIFT))
#define IS_TRANSIENT(h)  (HT(h) == TPM2_HT_TRANSIENT)
#define IS_SESSION(h)    (HT(h) == TPM2_HT_HMAC_SESSION || HT(h) == TPM2_HT_POLICY_SESSION)
#define IS_PERSISTENT(h) (HT(h) == TPM2_HT_PERSISTENT)

/* A transient object: resident in a TPM slot (phandle != 0), or saved as a context blob. */
struct object {
    TPM2_HANDLE vhandle;
    TPM2_HANDLE phandle;
    uint8_t *blob;
    size_t blob_len;
    uint64_t last_use;
    struct object *next;
};

enum sess_state {
    SESS_LOADED,      /* in a TPM session slot */
    SESS_SAVED,       /* saved by us; we hold the blob */
    SESS_SAVED_CLIENT /* saved by the client, which holds the only blob */
};

struct session {
    TPM2_HANDLE handle;
    enum sess_state state;
    uint8_t *blob;
    size_t blob_len;
    uint64_t last_use;
    uint64_t saved_seq; /* order of our saves, to find the oldest when re-gapping */
    struct session *next;
};

struct rm_space {
    struct rm *rm;
    char name[64];
    struct object *objects;
    struct session *sessions;
    unsigned n_objects, n_sessions;
    uint32_t next_vhandle;
    struct rm_space *next;
};

/* A client-saved session whose space closed: kept so a later client can load it. */
struct abandoned {
    TPM2_HANDLE handle;
    time_t since;
    uint64_t saved_seq;
    struct abandoned *next;
};

struct rm {
    struct rm_config cfg;
    uint32_t cc_count;
    TPMA_CC cc_attrs[MAX_CC];
    unsigned max_loaded_objects;  /* TPM_PT_HR_TRANSIENT_MIN */
    unsigned max_loaded_sessions; /* TPM_PT_HR_LOADED_MIN */
    unsigned loaded_objects, loaded_sessions, total_objects;
    struct rm_space *spaces;
    struct abandoned *abandoned;
    unsigned n_abandoned;
    uint64_t clock, save_seq;
    uint8_t cmd[TPM_MAX_COMMAND];
    uint8_t rsp[RSP_MAX];
    size_t rsp_len;
};

/* ---- small helpers around the TPM ---- */

static TPM2_RC rsp_code(const uint8_t *rsp, size_t len)
{
    size_t off = 6;
    TPM2_RC rc = TPM2_RC_FAILURE;

    if (len >= HDR) {
        (void)Tss2_MU_UINT32_Unmarshal(rsp, len, &off, &rc);
    }
    return rc;
}

/* Builds a response carrying only an error code into rm->rsp. */
static void error_response(struct rm *rm, TPM2_RC rc)
{
    size_t off = 0;

    (void)Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, rm->rsp, sizeof(rm->rsp), &off);
    (void)Tss2_MU_UINT32_Marshal(HDR, rm->rsp, sizeof(rm->rsp), &off);
    (void)Tss2_MU_UINT32_Marshal(rc, rm->rsp, sizeof(rm->rsp), &off);
    rm->rsp_len = off;
}

/* Runs a command the RM built itself; the response is copied to rm->rsp. */
static TPM2_RC run(struct rm *rm, uint8_t *cmd, size_t len)
{
    const uint8_t *rsp;
    size_t rsp_len;

    tpm_execute(0, cmd, len, &rsp, &rsp_len);
    if (rsp_len > sizeof(rm->rsp)) {
        rsp_len = sizeof(rm->rsp);
    }
    memcpy(rm->rsp, rsp, rsp_len);
    rm->rsp_len = rsp_len;
    return rsp_code(rm->rsp, rm->rsp_len);
}

/* Starts a no-session command; returns the offset after the header. */
static size_t begin(uint8_t *buf, TPM2_CC cc)
{
    size_t off = 0;

    (void)Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, buf, TPM_MAX_COMMAND, &off);
    (void)Tss2_MU_UINT32_Marshal(0, buf, TPM_MAX_COMMAND, &off); /* size, set by finish() */
    (void)Tss2_MU_TPM2_CC_Marshal(cc, buf, TPM_MAX_COMMAND, &off);
    return off;
}

static size_t finish(uint8_t *buf, size_t len)
{
    size_t off = 2;

    (void)Tss2_MU_UINT32_Marshal((uint32_t)len, buf, TPM_MAX_COMMAND, &off);
    return len;
}

static TPM2_RC tpm_flush(struct rm *rm, TPM2_HANDLE h)
{
    size_t off = begin(rm->cmd, TPM2_CC_FlushContext);

    (void)Tss2_MU_UINT32_Marshal(h, rm->cmd, sizeof(rm->cmd), &off);
    return run(rm, rm->cmd, finish(rm->cmd, off));
}

/* ContextSave of `h`; on success `*blob` (malloc'ed) holds the marshalled TPMS_CONTEXT. */
static TPM2_RC tpm_save(struct rm *rm, TPM2_HANDLE h, uint8_t **blob, size_t *blob_len)
{
    size_t off = begin(rm->cmd, TPM2_CC_ContextSave);
    TPM2_RC rc;

    (void)Tss2_MU_UINT32_Marshal(h, rm->cmd, sizeof(rm->cmd), &off);
    rc = run(rm, rm->cmd, finish(rm->cmd, off));
    if (rc != TPM2_RC_SUCCESS) {
        return rc;
    }
    if (rm->rsp_len <= HDR || (*blob = malloc(rm->rsp_len - HDR)) == NULL) {
        return TPM2_RC_MEMORY;
    }
    memcpy(*blob, rm->rsp + HDR, rm->rsp_len - HDR);
    *blob_len = rm->rsp_len - HDR;
    return TPM2_RC_SUCCESS;
}

/* ContextLoad of a blob; on success `*h` is the handle the TPM gave it. */
static TPM2_RC tpm_load(struct rm *rm, const uint8_t *blob, size_t blob_len, TPM2_HANDLE *h)
{
    size_t off = begin(rm->cmd, TPM2_CC_ContextLoad);
    TPM2_RC rc;

    if (off + blob_len > sizeof(rm->cmd)) {
        return TPM2_RC_SIZE;
    }
    memcpy(rm->cmd + off, blob, blob_len);
    rc = run(rm, rm->cmd, finish(rm->cmd, off + blob_len));
    if (rc == TPM2_RC_SUCCESS) {
        off = HDR;
        (void)Tss2_MU_UINT32_Unmarshal(rm->rsp, rm->rsp_len, &off, h);
    }
    return rc;
}

static TPMA_CC cc_attrs(const struct rm *rm, TPM2_CC cc, int *found)
{
    for (uint32_t i = 0; i < rm->cc_count; i++) {
        if ((rm->cc_attrs[i] & TPMA_CC_COMMANDINDEX_MASK) == (cc & 0xffff) &&
            !!(rm->cc_attrs[i] & TPMA_CC_V) == !!(cc & 0x20000000)) {
            *found = 1;
            return rm->cc_attrs[i];
        }
    }
    *found = 0;
    return 0;
}

/* ---- set-up ---- */

static enum sctpm_rc get_capability(struct rm *rm, TPM2_CAP cap, uint32_t prop, uint32_t count)
{
    size_t off = begin(rm->cmd, TPM2_CC_GetCapability);

    (void)Tss2_MU_UINT32_Marshal(cap, rm->cmd, sizeof(rm->cmd), &off);
    (void)Tss2_MU_UINT32_Marshal(prop, rm->cmd, sizeof(rm->cmd), &off);
    (void)Tss2_MU_UINT32_Marshal(count, rm->cmd, sizeof(rm->cmd), &off);
    return run(rm, rm->cmd, finish(rm->cmd, off)) == TPM2_RC_SUCCESS ? SCTPM_RC_SUCCESS
                                                                     : SCTPM_RC_TPM;
}

static unsigned fixed_property(struct rm *rm, TPM2_PT prop, unsigned dflt)
{
    TPMS_CAPABILITY_DATA data;
    TPMI_YES_NO more;
    size_t off = HDR;

    if (get_capability(rm, TPM2_CAP_TPM_PROPERTIES, prop, 1) != SCTPM_RC_SUCCESS ||
        Tss2_MU_BYTE_Unmarshal(rm->rsp, rm->rsp_len, &off, &more) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(rm->rsp, rm->rsp_len, &off, &data) !=
            TSS2_RC_SUCCESS ||
        data.data.tpmProperties.count < 1 ||
        data.data.tpmProperties.tpmProperty[0].property != prop) {
        return dflt;
    }
    return data.data.tpmProperties.tpmProperty[0].value;
}

enum sctpm_rc rm_create(const struct rm_config *cfg, struct rm **out, char *err, size_t errlen)
{
    struct rm *rm = calloc(1, sizeof(*rm));
    uint32_t next = TPM2_CC_FIRST;
    TPMI_YES_NO more = 1;

    *out = NULL;
    if (rm == NULL) {
        snprintf(err, errlen, "out of memory");
        return SCTPM_RC_NO_MEMORY;
    }
    rm->cfg = *cfg;
    /* The TPM lists its commands in pages; collect the attributes of all of them. */
    while (more && rm->cc_count < MAX_CC) {
        TPMS_CAPABILITY_DATA data;
        size_t off = HDR;
        if (get_capability(rm, TPM2_CAP_COMMANDS, next, MAX_CC - rm->cc_count) !=
                SCTPM_RC_SUCCESS ||
            Tss2_MU_BYTE_Unmarshal(rm->rsp, rm->rsp_len, &off, &more) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(rm->rsp, rm->rsp_len, &off, &data) !=
                TSS2_RC_SUCCESS) {
            snprintf(err, errlen, "cannot read the TPM's command attributes (GetCapability)");
            free(rm);
            return SCTPM_RC_TPM;
        }
        for (uint32_t i = 0; i < data.data.command.count && rm->cc_count < MAX_CC; i++) {
            rm->cc_attrs[rm->cc_count++] = data.data.command.commandAttributes[i];
        }
        if (data.data.command.count == 0) {
            break;
        }
        next = (data.data.command.commandAttributes[data.data.command.count - 1] &
                TPMA_CC_COMMANDINDEX_MASK) +
               1;
    }
    rm->max_loaded_objects = fixed_property(rm, TPM2_PT_HR_TRANSIENT_MIN, 3);
    rm->max_loaded_sessions = fixed_property(rm, TPM2_PT_HR_LOADED_MIN, 3);
    LOG_DEBUG("resource manager: %u commands, %u object slots, %u session slots", rm->cc_count,
              rm->max_loaded_objects, rm->max_loaded_sessions);
    *out = rm;
    return SCTPM_RC_SUCCESS;
}

void rm_destroy(struct rm *rm)
{
    if (rm == NULL) {
        return;
    }
    while (rm->spaces != NULL) {
        rm_space_free(rm->spaces);
    }
    while (rm->abandoned != NULL) {
        struct abandoned *a = rm->abandoned;
        rm->abandoned = a->next;
        (void)tpm_flush(rm, a->handle);
        free(a);
    }
    free(rm);
}

/* ---- spaces ---- */

struct rm_space *rm_space_new(struct rm *rm, const char *name)
{
    struct rm_space *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        return NULL;
    }
    s->rm = rm;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->next_vhandle = 0x80000000u;
    s->next = rm->spaces;
    rm->spaces = s;
    return s;
}

unsigned rm_space_objects(const struct rm_space *s)
{
    return s->n_objects;
}

unsigned rm_space_sessions(const struct rm_space *s)
{
    return s->n_sessions;
}

const char *rm_space_name(const struct rm_space *s)
{
    return s->name;
}

static void object_remove(struct rm_space *s, struct object *o, int flush)
{
    struct rm *rm = s->rm;

    for (struct object **pp = &s->objects; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    if (o->phandle != 0) {
        if (flush) {
            (void)tpm_flush(rm, o->phandle);
        }
        rm->loaded_objects--;
    }
    free(o->blob);
    free(o);
    s->n_objects--;
    rm->total_objects--;
}

static void session_remove(struct rm_space *s, struct session *x, int flush)
{
    struct rm *rm = s->rm;

    for (struct session **pp = &s->sessions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    }
    if (x->state == SESS_LOADED) {
        rm->loaded_sessions--;
    }
    if (flush) {
        /* FlushContext also ends a saved session: its handle stays valid while it is saved. */
        (void)tpm_flush(rm, x->handle);
    }
    free(x->blob);
    free(x);
    s->n_sessions--;
}

static void abandon(struct rm *rm, TPM2_HANDLE h, uint64_t saved_seq)
{
    struct abandoned *a = calloc(1, sizeof(*a));

    if (a == NULL || rm->cfg.abandoned_sessions_max == 0) {
        free(a);
        (void)tpm_flush(rm, h);
        return;
    }
    a->handle = h;
    a->since = time(NULL);
    a->saved_seq = saved_seq;
    a->next = rm->abandoned;
    rm->abandoned = a;
    rm->n_abandoned++;
    /* Bounded: the oldest go first (they are at the end of the list). */
    while (rm->n_abandoned > rm->cfg.abandoned_sessions_max) {
        struct abandoned **pp = &rm->abandoned;
        while ((*pp)->next != NULL) {
            pp = &(*pp)->next;
        }
        LOG_DEBUG("flushing abandoned session 0x%08x: more than %u are kept", (*pp)->handle,
                  rm->cfg.abandoned_sessions_max);
        (void)tpm_flush(rm, (*pp)->handle);
        free(*pp);
        *pp = NULL;
        rm->n_abandoned--;
    }
}

/* A client loaded or flushed an abandoned session: it is no longer ours to expire. */
static void unabandon(struct rm *rm, TPM2_HANDLE h)
{
    for (struct abandoned **pp = &rm->abandoned; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->handle == h) {
            struct abandoned *a = *pp;
            *pp = a->next;
            free(a);
            rm->n_abandoned--;
            return;
        }
    }
}

void rm_expire(struct rm *rm)
{
    time_t now = time(NULL);

    for (struct abandoned **pp = &rm->abandoned; *pp != NULL;) {
        struct abandoned *a = *pp;
        if (now - a->since >= (time_t)rm->cfg.abandoned_sessions_ttl) {
            LOG_DEBUG("flushing abandoned session 0x%08x after %u s", a->handle,
                      rm->cfg.abandoned_sessions_ttl);
            (void)tpm_flush(rm, a->handle);
            *pp = a->next;
            free(a);
            rm->n_abandoned--;
        } else {
            pp = &a->next;
        }
    }
}

void rm_space_free(struct rm_space *s)
{
    struct rm *rm;
    unsigned n_obj, n_sess;

    if (s == NULL) {
        return;
    }
    rm = s->rm;
    n_obj = s->n_objects;
    n_sess = s->n_sessions;
    while (s->objects != NULL) {
        object_remove(s, s->objects, 1);
    }
    while (s->sessions != NULL) {
        struct session *x = s->sessions;
        if (x->state == SESS_SAVED_CLIENT) {
            TPM2_HANDLE h = x->handle;
            uint64_t seq = x->saved_seq;
            session_remove(s, x, 0);
            abandon(rm, h, seq);
        } else {
            session_remove(s, x, 1);
        }
    }
    if (n_obj + n_sess > 0) {
        LOG_DEBUG("space %s closed: flushed %u object(s) and %u session(s)", s->name, n_obj,
                  n_sess);
    }
    for (struct rm_space **pp = &rm->spaces; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    free(s);
}

void rm_tpm_reset(struct rm *rm)
{
    for (struct rm_space *s = rm->spaces; s != NULL; s = s->next) {
        while (s->objects != NULL) {
            object_remove(s, s->objects, 0);
        }
        while (s->sessions != NULL) {
            session_remove(s, s->sessions, 0);
        }
    }
    while (rm->abandoned != NULL) {
        struct abandoned *a = rm->abandoned;
        rm->abandoned = a->next;
        free(a);
    }
    rm->n_abandoned = 0;
    rm->loaded_objects = rm->loaded_sessions = rm->total_objects = 0;
}

/* ---- swapping ---- */

static struct object *find_object(struct rm_space *s, TPM2_HANDLE vh)
{
    for (struct object *o = s->objects; o != NULL; o = o->next) {
        if (o->vhandle == vh) {
            return o;
        }
    }
    return NULL;
}

static struct session *find_session(struct rm_space *s, TPM2_HANDLE h)
{
    for (struct session *x = s->sessions; x != NULL; x = x->next) {
        if (x->handle == h) {
            return x;
        }
    }
    return NULL;
}

static TPM2_RC evict_object(struct rm *rm, struct object *o)
{
    TPM2_RC rc = tpm_save(rm, o->phandle, &o->blob, &o->blob_len);

    if (rc != TPM2_RC_SUCCESS) {
        LOG_ERROR("cannot save object 0x%08x: 0x%08x", o->phandle, rc);
        return rc;
    }
    rc = tpm_flush(rm, o->phandle);
    if (rc != TPM2_RC_SUCCESS) {
        LOG_ERROR("cannot flush object 0x%08x: 0x%08x", o->phandle, rc);
    }
    o->phandle = 0;
    rm->loaded_objects--;
    return TPM2_RC_SUCCESS;
}

/* The oldest session we saved ourselves, in any space, to re-gap. */
static struct session *oldest_saved(struct rm *rm)
{
    struct session *best = NULL;

    for (struct rm_space *s = rm->spaces; s != NULL; s = s->next) {
        for (struct session *x = s->sessions; x != NULL; x = x->next) {
            if (x->state == SESS_SAVED && (best == NULL || x->saved_seq < best->saved_seq)) {
                best = x;
            }
        }
    }
    return best;
}

/* Reloads and re-saves a session we saved, which gives it a fresh context ID. */
static int regap_session(struct rm *rm, struct session *x)
{
    TPM2_HANDLE h;
    uint8_t *blob = NULL;
    size_t len;

    if (tpm_load(rm, x->blob, x->blob_len, &h) != TPM2_RC_SUCCESS ||
        tpm_save(rm, h, &blob, &len) != TPM2_RC_SUCCESS) {
        LOG_ERROR("context gap: cannot re-gap session 0x%08x", x->handle);
        return -1;
    }
    free(x->blob);
    x->blob = blob;
    x->blob_len = len;
    x->saved_seq = ++rm->save_seq;
    LOG_DEBUG("context gap: re-gapped session 0x%08x", x->handle);
    return 0;
}

/* Flushes the oldest abandoned session (the end of the list); returns -1 when there is none. */
static int flush_oldest_abandoned(struct rm *rm, const char *why)
{
    struct abandoned **pp = &rm->abandoned;

    if (*pp == NULL) {
        return -1;
    }
    while ((*pp)->next != NULL) {
        pp = &(*pp)->next;
    }
    LOG_WARNING("flushing the abandoned client-saved session 0x%08x: %s", (*pp)->handle, why);
    (void)tpm_flush(rm, (*pp)->handle);
    free(*pp);
    *pp = NULL;
    rm->n_abandoned--;
    return 0;
}

/*
 * TPM_RC_CONTEXT_GAP, met anyway: re-gap the oldest session we saved, or give up the oldest
 * abandoned one. (The kernel's RM hangs here; abrmd re-gaps.)
 */
static int regap(struct rm *rm)
{
    struct session *x = oldest_saved(rm);

    if (x != NULL && rm->loaded_sessions < rm->max_loaded_sessions) {
        return regap_session(rm, x);
    }
    return flush_oldest_abandoned(rm, "the context gap was reached");
}

static TPM2_RC evict_session(struct rm *rm, struct session *x)
{
    TPM2_RC rc = tpm_save(rm, x->handle, &x->blob, &x->blob_len);

    for (int tries = 0; rc == TPM2_RC_CONTEXT_GAP && tries < 4; tries++) {
        if (regap(rm) != 0) {
            break;
        }
        rc = tpm_save(rm, x->handle, &x->blob, &x->blob_len);
    }
    if (rc != TPM2_RC_SUCCESS) {
        LOG_ERROR("cannot save session 0x%08x: 0x%08x", x->handle, rc);
        return rc;
    }
    x->state = SESS_SAVED;
    x->saved_seq = ++rm->save_seq;
    rm->loaded_sessions--;
    return TPM2_RC_SUCCESS;
}

/* Whether `o`/`x` is among the handles the current command needs. */
static int needed(const TPM2_HANDLE *list, size_t n, TPM2_HANDLE h)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == h) {
            return 1;
        }
    }
    return 0;
}

/*
 * Evicts resident objects until at most `keep` remain, preferring other spaces, then this
 * space's least recently used objects that the command does not need.
 */
static TPM2_RC make_object_room(struct rm *rm, struct rm_space *s, unsigned keep,
                                const TPM2_HANDLE *need, size_t n_need)
{
    while (rm->loaded_objects > keep) {
        struct object *victim = NULL;
        for (struct rm_space *t = rm->spaces; t != NULL && victim == NULL; t = t->next) {
            if (t == s) {
                continue;
            }
            for (struct object *o = t->objects; o != NULL; o = o->next) {
                if (o->phandle != 0) {
                    victim = o;
                    break;
                }
            }
        }
        if (victim == NULL) {
            for (struct object *o = s->objects; o != NULL; o = o->next) {
                if (o->phandle != 0 && !needed(need, n_need, o->vhandle) &&
                    (victim == NULL || o->last_use < victim->last_use)) {
                    victim = o;
                }
            }
        }
        if (victim == NULL) {
            return TPM2_RC_OBJECT_MEMORY;
        }
        if (evict_object(rm, victim) != TPM2_RC_SUCCESS) {
            return TPM2_RC_OBJECT_MEMORY;
        }
    }
    return TPM2_RC_SUCCESS;
}

static TPM2_RC make_session_room(struct rm *rm, struct rm_space *s, unsigned keep,
                                 const TPM2_HANDLE *need, size_t n_need)
{
    while (rm->loaded_sessions > keep) {
        struct session *victim = NULL;
        for (struct rm_space *t = rm->spaces; t != NULL && victim == NULL; t = t->next) {
            if (t == s) {
                continue;
            }
            for (struct session *x = t->sessions; x != NULL; x = x->next) {
                if (x->state == SESS_LOADED) {
                    victim = x;
                    break;
                }
            }
        }
        if (victim == NULL && s != NULL) {
            for (struct session *x = s->sessions; x != NULL; x = x->next) {
                if (x->state == SESS_LOADED && !needed(need, n_need, x->handle) &&
                    (victim == NULL || x->last_use < victim->last_use)) {
                    victim = x;
                }
            }
        }
        if (victim == NULL || evict_session(rm, victim) != TPM2_RC_SUCCESS) {
            return TPM2_RC_SESSION_MEMORY;
        }
    }
    return TPM2_RC_SUCCESS;
}

static TPM2_RC load_object(struct rm *rm, struct object *o)
{
    TPM2_RC rc = tpm_load(rm, o->blob, o->blob_len, &o->phandle);

    if (rc != TPM2_RC_SUCCESS) {
        LOG_ERROR("cannot reload object 0x%08x: 0x%08x", o->vhandle, rc);
        o->phandle = 0;
        return rc;
    }
    free(o->blob);
    o->blob = NULL;
    rm->loaded_objects++;
    return TPM2_RC_SUCCESS;
}

static TPM2_RC load_session(struct rm *rm, struct session *x)
{
    TPM2_HANDLE h = 0;
    TPM2_RC rc = tpm_load(rm, x->blob, x->blob_len, &h);

    if (rc != TPM2_RC_SUCCESS) {
        LOG_ERROR("cannot reload session 0x%08x: 0x%08x", x->handle, rc);
        return rc;
    }
    free(x->blob);
    x->blob = NULL;
    x->state = SESS_LOADED;
    rm->loaded_sessions++;
    return TPM2_RC_SUCCESS;
}

/*
 * libtpms refuses to save a session once the oldest saved one is 2^16 context saves behind
 * (TPM_RC_CONTEXT_GAP). Reacting then is too late when every session slot is full: re-gapping
 * needs a free slot to load the old session into. So sessions that fall half that far behind are
 * re-gapped ahead of time, at the start of a command, when slots can be made free. Abandoned
 * sessions that old are flushed: nobody may ever come back for them.
 */
#define REGAP_DISTANCE 32768

static void keep_gap_small(struct rm *rm)
{
    for (int guard = 0; guard < 64; guard++) {
        struct session *x = oldest_saved(rm);
        if (x == NULL || rm->save_seq - x->saved_seq < REGAP_DISTANCE) {
            break;
        }
        if (make_session_room(rm, NULL, rm->max_loaded_sessions - 1, NULL, 0) != TPM2_RC_SUCCESS ||
            regap_session(rm, x) != 0) {
            break;
        }
    }
    for (struct abandoned **pp = &rm->abandoned; *pp != NULL;) {
        struct abandoned *a = *pp;
        if (rm->save_seq - a->saved_seq >= REGAP_DISTANCE) {
            LOG_DEBUG("flushing abandoned session 0x%08x before it meets the context gap",
                      a->handle);
            (void)tpm_flush(rm, a->handle);
            *pp = a->next;
            free(a);
            rm->n_abandoned--;
        } else {
            pp = &a->next;
        }
    }
}

/* ---- virtualised commands ---- */

/* TPM_RC_HANDLE for handle number `n` (1-based) of the handle area, or a parameter / session. */
#define RC_HANDLE_H(n) (TPM2_RC_HANDLE | TPM2_RC_H | ((TPM2_RC)(n) << 8))
#define RC_HANDLE_P(n) (TPM2_RC_HANDLE | TPM2_RC_P | ((TPM2_RC)(n) << 8))
#define RC_HANDLE_S(n) (TPM2_RC_HANDLE | TPM2_RC_S | ((TPM2_RC)(n) << 8))

static void success_response(struct rm *rm)
{
    error_response(rm, TPM2_RC_SUCCESS);
}

static void flush_context(struct rm_space *s, const uint8_t *cmd, size_t len)
{
    struct rm *rm = s->rm;
    TPM2_HANDLE h;
    size_t off = HDR;

    if (Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &h) != TSS2_RC_SUCCESS) {
        error_response(rm, TPM2_RC_INSUFFICIENT);
        return;
    }
    if (IS_TRANSIENT(h)) {
        struct object *o = find_object(s, h);
        if (o == NULL) {
            error_response(rm, RC_HANDLE_P(1));
            return;
        }
        object_remove(s, o, 1);
        success_response(rm);
        return;
    }
    if (IS_SESSION(h)) {
        struct session *x = find_session(s, h);
        if (x == NULL) {
            /* An abandoned session a client saved earlier may be flushed by anyone. */
            struct abandoned *a = rm->abandoned;
            while (a != NULL && a->handle != h) {
                a = a->next;
            }
            if (a == NULL) {
                error_response(rm, RC_HANDLE_P(1));
                return;
            }
            (void)tpm_flush(rm, h); /* the TPM's response is returned as it is */
            unabandon(rm, h);
            return;
        }
        session_remove(s, x, 0);
        (void)tpm_flush(rm, h);
        return;
    }
    /* Anything else: the TPM answers (with an error for non-flushable handles). */
    (void)run(rm, (uint8_t *)(uintptr_t)cmd, len);
}

/* The handles of one kind the space owns, for GetCapability(TPM_CAP_HANDLES). */
static void capability_handles(struct rm_space *s, TPM2_HANDLE first, uint32_t count)
{
    struct rm *rm = s->rm;
    TPMS_CAPABILITY_DATA data = {.capability = TPM2_CAP_HANDLES};
    TPML_HANDLE *list = &data.data.handles;
    TPMI_YES_NO more = 0;
    TPM2_HANDLE next = first;
    size_t off = 0;
    uint8_t ht = HT(first);

    if (count > TPM2_MAX_CAP_HANDLES) {
        count = TPM2_MAX_CAP_HANDLES;
    }
    /* Emit the owned handles of this type in ascending order, starting at `first`. */
    for (;;) {
        TPM2_HANDLE best = 0;
        int found = 0;
        if (ht == TPM2_HT_TRANSIENT) {
            for (struct object *o = s->objects; o != NULL; o = o->next) {
                if (o->vhandle >= next && (!found || o->vhandle < best)) {
                    best = o->vhandle;
                    found = 1;
                }
            }
        } else {
            /* 0x02: loaded sessions (all a client has not saved itself); 0x03: saved ones. */
            for (struct session *x = s->sessions; x != NULL; x = x->next) {
                int saved = x->state == SESS_SAVED_CLIENT;
                if (saved == (ht == TPM2_HT_SAVED_SESSION) && x->handle >= next &&
                    (!found || x->handle < best)) {
                    best = x->handle;
                    found = 1;
                }
            }
        }
        if (!found || HT(best) != ht) {
            break;
        }
        if (list->count == count) {
            more = 1;
            break;
        }
        list->handle[list->count++] = best;
        next = best + 1;
    }
    (void)Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, rm->rsp, sizeof(rm->rsp), &off);
    (void)Tss2_MU_UINT32_Marshal(0, rm->rsp, sizeof(rm->rsp), &off);
    (void)Tss2_MU_UINT32_Marshal(TPM2_RC_SUCCESS, rm->rsp, sizeof(rm->rsp), &off);
    (void)Tss2_MU_BYTE_Marshal(more, rm->rsp, sizeof(rm->rsp), &off);
    (void)Tss2_MU_TPMS_CAPABILITY_DATA_Marshal(&data, rm->rsp, sizeof(rm->rsp), &off);
    rm->rsp_len = off;
    off = 2;
    (void)Tss2_MU_UINT32_Marshal((uint32_t)rm->rsp_len, rm->rsp, sizeof(rm->rsp), &off);
}

/* What a client is told about slots: its own quota, not the shared TPM's state. */
static void rewrite_properties(struct rm_space *s)
{
    struct rm *rm = s->rm;
    TPMS_CAPABILITY_DATA data;
    TPMI_YES_NO more;
    size_t off = HDR, start;
    unsigned obj_left = rm->cfg.max_objects_per_space - s->n_objects;
    unsigned sess_left = rm->cfg.max_sessions_per_space - s->n_sessions;

    if (Tss2_MU_BYTE_Unmarshal(rm->rsp, rm->rsp_len, &off, &more) != TSS2_RC_SUCCESS) {
        return;
    }
    start = off;
    if (Tss2_MU_TPMS_CAPABILITY_DATA_Unmarshal(rm->rsp, rm->rsp_len, &off, &data) !=
            TSS2_RC_SUCCESS ||
        data.capability != TPM2_CAP_TPM_PROPERTIES) {
        return;
    }
    for (uint32_t i = 0; i < data.data.tpmProperties.count; i++) {
        TPMS_TAGGED_PROPERTY *p = &data.data.tpmProperties.tpmProperty[i];
        switch (p->property) {
        case TPM2_PT_HR_TRANSIENT_AVAIL:
            p->value = obj_left;
            break;
        case TPM2_PT_HR_LOADED:
        case TPM2_PT_HR_ACTIVE:
            p->value = s->n_sessions;
            break;
        case TPM2_PT_HR_LOADED_AVAIL:
        case TPM2_PT_HR_ACTIVE_AVAIL:
            p->value = sess_left;
            break;
        case TPM2_PT_CONTEXT_GAP_MAX:
            /* The RM re-gaps old sessions, so clients never meet the gap. */
            p->value = UINT32_MAX;
            break;
        case TPM2_PT_VENDOR_STRING_1:
            p->value = 0x53572054; /* "SW T": say plainly that this is a software TPM */
            break;
        case TPM2_PT_VENDOR_STRING_2:
            p->value = 0x504d2073; /* "PM s" */
            break;
        case TPM2_PT_VENDOR_STRING_3:
            p->value = 0x6374706d; /* "ctpm" */
            break;
        case TPM2_PT_VENDOR_STRING_4:
            p->value = 0x64000000; /* "d" */
            break;
        default:
            break;
        }
    }
    off = start;
    (void)Tss2_MU_TPMS_CAPABILITY_DATA_Marshal(&data, rm->rsp, sizeof(rm->rsp), &off);
}

/* ---- the general path ---- */

/* Commands after which a new transient object (or session) may come back. */
static int creates_object(TPM2_CC cc)
{
    switch (cc) {
    case TPM2_CC_CreatePrimary:
    case TPM2_CC_Load:
    case TPM2_CC_LoadExternal:
    case TPM2_CC_CreateLoaded:
    case TPM2_CC_HashSequenceStart:
    case TPM2_CC_HMAC_Start:
    case TPM2_CC_ContextLoad:
        return 1;
    default:
        return 0;
    }
}

void rm_execute(struct rm_space *s, uint8_t locality, uint8_t *cmd, size_t len, const uint8_t **rsp,
                size_t *rsp_len)
{
    struct rm *rm = s->rm;
    TPM2_HANDLE handles[MAX_HANDLES], vhandles[MAX_HANDLES];
    TPM2_HANDLE need_obj[MAX_HANDLES], need_sess[MAX_HANDLES + MAX_AUTHS];
    TPM2_HANDLE auth_sessions[MAX_AUTHS];
    int auth_continue[MAX_AUTHS];
    size_t n_need_obj = 0, n_need_sess = 0, n_auth = 0, n_persistent = 0;
    TPM2_ST tag;
    uint32_t size;
    TPM2_CC cc;
    TPMA_CC attrs;
    unsigned nh;
    size_t off = 0;
    int found, creates, starts_session, ctx_load_session = 0;
    TPM2_RC rc;

    *rsp = rm->rsp;
    rm->clock++;
    if (Tss2_MU_TPM2_ST_Unmarshal(cmd, len, &off, &tag) != TSS2_RC_SUCCESS ||
        Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &size) != TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2_CC_Unmarshal(cmd, len, &off, &cc) != TSS2_RC_SUCCESS || size != len) {
        /* Malformed: let the TPM produce its own error. */
        (void)run(rm, cmd, len);
        goto out;
    }
    attrs = cc_attrs(rm, cc, &found);
    if (!found) {
        (void)run(rm, cmd, len);
        goto out;
    }
    nh = (attrs & TPMA_CC_CHANDLES_MASK) >> TPMA_CC_CHANDLES_SHIFT;
    if (nh > MAX_HANDLES || len < HDR + 4u * nh) {
        (void)run(rm, cmd, len);
        goto out;
    }

    /* Commands whose handles travel as parameters, or whose answers we make up. */
    if (cc == TPM2_CC_FlushContext) {
        flush_context(s, cmd, len);
        goto out;
    }
    if (cc == TPM2_CC_GetCapability && tag == TPM2_ST_NO_SESSIONS && len >= HDR + 12) {
        uint32_t cap, prop, count;
        off = HDR;
        (void)Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &cap);
        (void)Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &prop);
        (void)Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &count);
        if (cap == TPM2_CAP_HANDLES &&
            (HT(prop) == TPM2_HT_TRANSIENT || HT(prop) == TPM2_HT_LOADED_SESSION ||
             HT(prop) == TPM2_HT_SAVED_SESSION)) {
            capability_handles(s, prop, count);
            goto out;
        }
        if (run(rm, cmd, len) == TPM2_RC_SUCCESS && cap == TPM2_CAP_TPM_PROPERTIES) {
            rewrite_properties(s);
        }
        goto out;
    }

    /* The handle area: map virtual handles, check ownership. */
    for (unsigned i = 0; i < nh; i++) {
        off = HDR + 4u * i;
        (void)Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &handles[i]);
        vhandles[i] = handles[i];
        if (IS_TRANSIENT(handles[i])) {
            if (find_object(s, handles[i]) == NULL) {
                error_response(rm, RC_HANDLE_H(i + 1));
                goto out;
            }
            need_obj[n_need_obj++] = handles[i];
        } else if (IS_SESSION(handles[i])) {
            struct session *x = find_session(s, handles[i]);
            if (x == NULL || x->state == SESS_SAVED_CLIENT) {
                error_response(rm, RC_HANDLE_H(i + 1));
                goto out;
            }
            need_sess[n_need_sess++] = handles[i];
        } else if (IS_PERSISTENT(handles[i])) {
            n_persistent++; /* the TPM loads it into an object slot for the command */
        }
    }
    /* The authorization area: every session must be this space's. */
    if (tag == TPM2_ST_SESSIONS) {
        uint32_t auth_size;
        size_t end;
        off = HDR + 4u * nh;
        if (Tss2_MU_UINT32_Unmarshal(cmd, len, &off, &auth_size) != TSS2_RC_SUCCESS ||
            auth_size > len - off) {
            (void)run(rm, cmd, len);
            goto out;
        }
        end = off + auth_size;
        while (off < end) {
            TPMS_AUTH_COMMAND a;
            if (Tss2_MU_TPMS_AUTH_COMMAND_Unmarshal(cmd, end, &off, &a) != TSS2_RC_SUCCESS ||
                n_auth == MAX_AUTHS) {
                (void)run(rm, cmd, len);
                goto out;
            }
            if (a.sessionHandle != TPM2_RH_PW) {
                struct session *x = find_session(s, a.sessionHandle);
                if (x == NULL || x->state == SESS_SAVED_CLIENT) {
                    error_response(rm, RC_HANDLE_S(n_auth + 1));
                    goto out;
                }
                if (!needed(need_sess, n_need_sess, a.sessionHandle)) {
                    need_sess[n_need_sess++] = a.sessionHandle;
                }
            }
            auth_sessions[n_auth] = a.sessionHandle;
            auth_continue[n_auth] = !!(a.sessionAttributes & TPMA_SESSION_CONTINUESESSION);
            n_auth++;
        }
    }

    creates = creates_object(cc);
    starts_session = cc == TPM2_CC_StartAuthSession;
    if (cc == TPM2_CC_ContextLoad && len >= HDR + 12) {
        TPMS_CONTEXT ctx;
        off = HDR;
        if (Tss2_MU_TPMS_CONTEXT_Unmarshal(cmd, len, &off, &ctx) == TSS2_RC_SUCCESS &&
            IS_SESSION(ctx.savedHandle)) {
            ctx_load_session = 1;
            creates = 0;
        }
    }
    if (creates && s->n_objects >= rm->cfg.max_objects_per_space) {
        LOG_WARNING("space %s: refused a new object: it holds %u, the limit per client", s->name,
                    s->n_objects);
        error_response(rm, TPM2_RC_OBJECT_MEMORY);
        goto out;
    }
    if (creates && rm->total_objects >= rm->cfg.max_objects_total) {
        LOG_WARNING("space %s: refused a new object: all clients hold %u, the service limit",
                    s->name, rm->total_objects);
        error_response(rm, TPM2_RC_OBJECT_MEMORY);
        goto out;
    }
    if ((starts_session || ctx_load_session) && s->n_sessions >= rm->cfg.max_sessions_per_space) {
        LOG_WARNING("space %s: refused a new session: it holds %u, the limit per client", s->name,
                    s->n_sessions);
        error_response(rm, TPM2_RC_SESSION_MEMORY);
        goto out;
    }

    keep_gap_small(rm);
    for (int attempt = 0; attempt < 2; attempt++) {
        unsigned obj_keep = rm->max_loaded_objects - (unsigned)n_persistent - (creates ? 1 : 0);
        unsigned sess_keep = rm->max_loaded_sessions - (starts_session || ctx_load_session);

        if (attempt == 1) {
            /* The TPM still ran out of slots: keep only what this command needs. */
            obj_keep = (unsigned)n_need_obj;
            sess_keep = (unsigned)n_need_sess;
        }
        /* Load what the command needs, then make sure the rest fits around it. */
        for (size_t i = 0; i < n_need_obj; i++) {
            struct object *o = find_object(s, need_obj[i]);
            o->last_use = rm->clock;
            if (o->phandle == 0) {
                if (make_object_room(rm, s, rm->max_loaded_objects - 1, need_obj, n_need_obj) !=
                        TPM2_RC_SUCCESS ||
                    load_object(rm, o) != TPM2_RC_SUCCESS) {
                    error_response(rm, TPM2_RC_OBJECT_MEMORY);
                    goto out;
                }
            }
        }
        for (size_t i = 0; i < n_need_sess; i++) {
            struct session *x = find_session(s, need_sess[i]);
            x->last_use = rm->clock;
            if (x->state != SESS_LOADED) {
                if (make_session_room(rm, s, rm->max_loaded_sessions - 1, need_sess, n_need_sess) !=
                        TPM2_RC_SUCCESS ||
                    load_session(rm, x) != TPM2_RC_SUCCESS) {
                    error_response(rm, TPM2_RC_SESSION_MEMORY);
                    goto out;
                }
            }
        }
        if (make_object_room(rm, s, obj_keep, need_obj, n_need_obj) != TPM2_RC_SUCCESS ||
            make_session_room(rm, s, sess_keep, need_sess, n_need_sess) != TPM2_RC_SUCCESS) {
            error_response(rm, TPM2_RC_OBJECT_MEMORY);
            goto out;
        }
        for (unsigned i = 0; i < nh; i++) {
            if (IS_TRANSIENT(vhandles[i])) {
                off = HDR + 4u * i;
                (void)Tss2_MU_UINT32_Marshal(find_object(s, vhandles[i])->phandle, cmd, len, &off);
            }
        }

        {
            const uint8_t *r;
            size_t rl;
            tpm_execute(locality, cmd, len, &r, &rl);
            if (rl > sizeof(rm->rsp)) {
                rl = sizeof(rm->rsp);
            }
            memcpy(rm->rsp, r, rl);
            rm->rsp_len = rl;
        }
        rc = rsp_code(rm->rsp, rm->rsp_len);
        if (rc == TPM2_RC_CONTEXT_GAP && regap(rm) == 0) {
            continue;
        }
        if ((rc == TPM2_RC_OBJECT_MEMORY || rc == TPM2_RC_SESSION_MEMORY) && attempt == 0) {
            continue;
        }
        break;
    }
    /* Put the client's handles back, in case the command buffer is looked at again. */
    for (unsigned i = 0; i < nh; i++) {
        off = HDR + 4u * i;
        (void)Tss2_MU_UINT32_Marshal(vhandles[i], cmd, len, &off);
    }
    if (rc != TPM2_RC_SUCCESS) {
        goto out;
    }

    /* Objects the command flushed (sequence completion) are gone from the TPM. */
    if (attrs & TPMA_CC_FLUSHED) {
        for (unsigned i = 0; i < nh; i++) {
            struct object *o = IS_TRANSIENT(vhandles[i]) ? find_object(s, vhandles[i]) : NULL;
            if (o != NULL) {
                object_remove(s, o, 0);
            }
        }
    }
    /* Sessions without continueSession end with a successful command. */
    for (size_t i = 0; i < n_auth; i++) {
        struct session *x =
            auth_sessions[i] != TPM2_RH_PW ? find_session(s, auth_sessions[i]) : NULL;
        if (x != NULL && !auth_continue[i]) {
            session_remove(s, x, 0);
        }
    }
    if (cc == TPM2_CC_ContextSave && nh == 1 && IS_SESSION(vhandles[0])) {
        /* The client holds the blob now; the session is no longer in a slot. */
        struct session *x = find_session(s, vhandles[0]);
        if (x != NULL && x->state == SESS_LOADED) {
            x->state = SESS_SAVED_CLIENT;
            x->saved_seq = ++rm->save_seq;
            rm->loaded_sessions--;
        }
    }
    if ((attrs & TPMA_CC_RHANDLE) && rm->rsp_len >= HDR + 4) {
        TPM2_HANDLE h;
        off = HDR;
        (void)Tss2_MU_UINT32_Unmarshal(rm->rsp, rm->rsp_len, &off, &h);
        if (IS_TRANSIENT(h)) {
            struct object *o = calloc(1, sizeof(*o));
            if (o == NULL) {
                (void)tpm_flush(rm, h);
                error_response(rm, TPM2_RC_MEMORY);
                goto out;
            }
            o->vhandle = s->next_vhandle++;
            o->phandle = h;
            o->last_use = rm->clock;
            o->next = s->objects;
            s->objects = o;
            s->n_objects++;
            rm->loaded_objects++;
            rm->total_objects++;
            off = HDR;
            (void)Tss2_MU_UINT32_Marshal(o->vhandle, rm->rsp, rm->rsp_len, &off);
        } else if (IS_SESSION(h)) {
            struct session *x = find_session(s, h);
            unabandon(rm, h);
            if (x == NULL) {
                x = calloc(1, sizeof(*x));
                if (x == NULL) {
                    (void)tpm_flush(rm, h);
                    error_response(rm, TPM2_RC_MEMORY);
                    goto out;
                }
                x->handle = h;
                x->next = s->sessions;
                s->sessions = x;
                s->n_sessions++;
            } else {
                free(x->blob);
                x->blob = NULL;
            }
            x->state = SESS_LOADED;
            x->last_use = rm->clock;
            rm->loaded_sessions++;
        }
    }
out:
    *rsp_len = rm->rsp_len;
}

void rm_log_status(struct rm *rm)
{
    LOG_INFO("resource manager: %u object(s) held, %u/%u object slots and %u/%u session slots "
             "in use, %u abandoned client-saved session(s)",
             rm->total_objects, rm->loaded_objects, rm->max_loaded_objects, rm->loaded_sessions,
             rm->max_loaded_sessions, rm->n_abandoned);
    for (struct rm_space *s = rm->spaces; s != NULL; s = s->next) {
        char objs[256] = "", sess[256] = "";
        size_t n = 0, m = 0;
        for (struct object *o = s->objects; o != NULL && n < sizeof(objs) - 24; o = o->next) {
            n += (size_t)snprintf(objs + n, sizeof(objs) - n, " 0x%08x%s", o->vhandle,
                                  o->phandle ? "*" : "");
        }
        for (struct session *x = s->sessions; x != NULL && m < sizeof(sess) - 24; x = x->next) {
            m += (size_t)snprintf(sess + m, sizeof(sess) - m, " 0x%08x%s", x->handle,
                                  x->state == SESS_LOADED         ? "*"
                                  : x->state == SESS_SAVED_CLIENT ? "(client-saved)"
                                                                  : "");
        }
        LOG_INFO("  space %s: %u object(s)%s; %u session(s)%s (* = in a TPM slot)", s->name,
                 s->n_objects, objs, s->n_sessions, sess);
    }
}
