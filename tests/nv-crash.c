/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nv-crash: the NV workload of tests/crashloop/sctpmd.sh, an ESAPI client that records what the
 * TPM acknowledged.
 *
 *   nv-crash define TCTI ACKDIR               defines the indices (once) and writes each one
 *   nv-crash write TCTI ACKDIR INDEX [READY]  writes INDEX until a command fails
 *   nv-crash check TCTI ACKDIR                every index holds what its ack file allows
 *
 * The indices, all owner-authorised (an owner password is not dictionary-attack protected, so
 * the non-orderly startups a crash loop causes never lock the TPM out):
 *
 *   0x01500100 ordinary, 64 bytes, each write replaces it all (a sequence number and a pattern)
 *   0x01500101 ordinary, 1024 bytes, each write replaces one 256-byte chunk (partial writes)
 *   0x01500102 counter (TPM2_NV_Increment)
 *   0x01500103 orderly counter: kept in RAM, so a crash may move it forward, never back
 *   0x01500104 extend, SHA-256 (TPM2_NV_Extend)
 *
 * The ack file ACKDIR/<index> (8 hex digits) is one line, "ACKED INFLIGHT": ACKED is the value the
 * TPM last acknowledged, INFLIGHT the value the command under way will leave ("-" for the orderly
 * counter, which only has to be at least ACKED). A writer rewrites it before every command, and
 * always as a new file renamed over the old one, so a reader never sees half of it: when a write
 * is acknowledged, the next command's line names its result as ACKED. `check` reads every index,
 * fails when one holds neither value, and rewrites the ack file with the value it saw (which is
 * now acknowledged: it was shown to a client).
 *
 * `write` creates READY once it has read its index and recorded it, prints "acked N" when it
 * stops, and exits 0 when the TPM went away (a TCTI or ESAPI error: the daemon was killed), 3 when
 * the TPM itself refused a command, which no crash explains.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#define CHUNK      256
#define MAX_SIZE   1024
#define READ_PIECE 512

enum kind { ORDINARY, CHUNKED, COUNTER, ORDERLY_COUNTER, EXTEND };

struct index {
    TPM2_HANDLE handle;
    enum kind kind;
    uint16_t size;
    const char *name;
};

static const struct index indices[] = {
    {0x01500100, ORDINARY, 64, "ordinary"},              /* rewritten whole */
    {0x01500101, CHUNKED, 1024, "chunked"},              /* one 256-byte chunk at a time */
    {0x01500102, COUNTER, 8, "counter"},                 /* TPM2_NV_Increment */
    {0x01500103, ORDERLY_COUNTER, 8, "orderly-counter"}, /* in RAM, saved now and then */
    {0x01500104, EXTEND, 32, "extend"},                  /* TPM2_NV_Extend, SHA-256 */
};
#define NINDICES (sizeof(indices) / sizeof(indices[0]))

/* A value of an index. */
struct value {
    uint8_t b[MAX_SIZE];
    uint16_t len;
};

struct tpm {
    TSS2_TCTI_CONTEXT *tcti;
    ESYS_CONTEXT *esys;
};

static int tpm_open(struct tpm *t, const char *conf)
{
    TSS2_RC rc;

    t->tcti = NULL;
    t->esys = NULL;
    rc = Tss2_TctiLdr_Initialize(conf, &t->tcti);
    if (rc == TSS2_RC_SUCCESS) {
        rc = Esys_Initialize(&t->esys, t->tcti, NULL);
    }
    if (rc != TSS2_RC_SUCCESS) {
        fprintf(stderr, "nv-crash: cannot reach the TPM at %s: 0x%08x\n", conf, rc);
        return -1;
    }
    return 0;
}

static void tpm_close(struct tpm *t)
{
    Esys_Finalize(&t->esys);
    Tss2_TctiLdr_Finalize(&t->tcti);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* A sequence number and a pattern derived from it: a torn or mixed write cannot match. */
static void fill(uint8_t *p, size_t len, uint64_t seq)
{
    put_u64(p, seq);
    for (size_t i = 8; i < len; i++) {
        p[i] = (uint8_t)(seq * 131 + i * 7);
    }
}

static const struct index *find(const char *arg)
{
    unsigned long h = strtoul(arg, NULL, 16);

    for (size_t i = 0; i < NINDICES; i++) {
        if (indices[i].handle == h) {
            return &indices[i];
        }
    }
    return NULL;
}

static const char *hex(const struct value *v, char *out)
{
    for (size_t i = 0; i < v->len; i++) {
        sprintf(out + 2 * i, "%02x", v->b[i]);
    }
    out[2 * v->len] = '\0';
    return out;
}

/* The start of a value, for a message: whole values are in the ack files. */
static const char *brief(const struct value *v, char *out)
{
    struct value head = *v;

    if (head.len > 16) {
        head.len = 16;
        hex(&head, out);
        sprintf(out + 32, "... (%u bytes)", v->len);
        return out;
    }
    return hex(v, out);
}

static int unhex(const char *s, struct value *v)
{
    size_t n = strlen(s);

    if (n % 2 != 0 || n / 2 > MAX_SIZE) {
        return -1;
    }
    v->len = (uint16_t)(n / 2);
    for (size_t i = 0; i < v->len; i++) {
        unsigned int x;
        if (sscanf(s + 2 * i, "%2x", &x) != 1) {
            return -1;
        }
        v->b[i] = (uint8_t)x;
    }
    return 0;
}

/*
 * Replaces ACKDIR/<index> with "ACKED INFLIGHT" (INFLIGHT NULL: "-"): written to a dot-file and
 * renamed, so that the file is always one whole line.
 */
static int record(const char *dir, const struct index *ix, const struct value *acked,
                  const struct value *inflight)
{
    static char a[2 * MAX_SIZE + 1], f[2 * MAX_SIZE + 1];
    char path[4096], tmp[4096];
    FILE *fp;
    int bad;

    snprintf(path, sizeof(path), "%s/%08x", dir, ix->handle);
    snprintf(tmp, sizeof(tmp), "%s/.%08x.tmp", dir, ix->handle);
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        fprintf(stderr, "nv-crash: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    bad = fprintf(fp, "%s %s\n", hex(acked, a), inflight != NULL ? hex(inflight, f) : "-") < 0;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "nv-crash: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads ACKDIR/<index>; *has_inflight is 0 for "-". */
static int load(const char *dir, const struct index *ix, struct value *acked,
                struct value *inflight, int *has_inflight)
{
    static char a[2 * MAX_SIZE + 2], f[2 * MAX_SIZE + 2];
    char path[4096];
    FILE *fp;
    int n;

    snprintf(path, sizeof(path), "%s/%08x", dir, ix->handle);
    fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "nv-crash: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    n = fscanf(fp, "%2049s %2049s", a, f);
    fclose(fp);
    if (n != 2 || unhex(a, acked) != 0) {
        fprintf(stderr, "nv-crash: %s is malformed\n", path);
        return -1;
    }
    *has_inflight = strcmp(f, "-") != 0;
    if (*has_inflight && unhex(f, inflight) != 0) {
        fprintf(stderr, "nv-crash: %s is malformed\n", path);
        return -1;
    }
    return 0;
}

static TSS2_RC nv_handle(struct tpm *t, const struct index *ix, ESYS_TR *tr)
{
    return Esys_TR_FromTPMPublic(t->esys, ix->handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, tr);
}

static TSS2_RC nv_read(struct tpm *t, const struct index *ix, ESYS_TR tr, struct value *v)
{
    TSS2_RC rc = TSS2_RC_SUCCESS;

    v->len = 0;
    while (v->len < ix->size) {
        TPM2B_MAX_NV_BUFFER *out = NULL;
        uint16_t n = ix->size - v->len > READ_PIECE ? READ_PIECE : ix->size - v->len;

        rc = Esys_NV_Read(t->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                          ESYS_TR_NONE, n, v->len, &out);
        if (rc != TSS2_RC_SUCCESS) {
            break;
        }
        if (out->size != n) {
            fprintf(stderr, "nv-crash: %08x: asked for %u bytes, got %u\n", ix->handle, n,
                    out->size);
            Esys_Free(out);
            return TSS2_ESYS_RC_MALFORMED_RESPONSE;
        }
        memcpy(v->b + v->len, out->buffer, n);
        v->len += n;
        Esys_Free(out);
    }
    return rc;
}

/*
 * The next write to an index holding `cur`: what to send (`data` at `offset`, for the kinds that
 * take data) and the value it leaves (`next`).
 */
static void plan(const struct index *ix, const struct value *cur, TPM2B_MAX_NV_BUFFER *data,
                 uint16_t *offset, struct value *next)
{
    uint64_t seq = 0;

    *next = *cur;
    data->size = 0;
    *offset = 0;
    switch (ix->kind) {
    case ORDINARY:
        fill(next->b, ix->size, get_u64(cur->b) + 1);
        data->size = ix->size;
        memcpy(data->buffer, next->b, ix->size);
        break;
    case CHUNKED:
        for (uint16_t off = 0; off < ix->size; off += CHUNK) {
            uint64_t s = get_u64(cur->b + off);
            seq = s > seq ? s : seq;
        }
        seq++;
        *offset = (uint16_t)(seq % (ix->size / CHUNK) * CHUNK);
        fill(next->b + *offset, CHUNK, seq);
        data->size = CHUNK;
        memcpy(data->buffer, next->b + *offset, CHUNK);
        break;
    case COUNTER:
    case ORDERLY_COUNTER:
        put_u64(next->b, get_u64(cur->b) + 1);
        break;
    case EXTEND: {
        uint8_t cat[64];
        /* The extended data depends on the value, so each step differs. */
        SHA256(cur->b, 32, data->buffer);
        data->size = 32;
        memcpy(cat, cur->b, 32);
        memcpy(cat + 32, data->buffer, 32);
        SHA256(cat, sizeof(cat), next->b);
        break;
    }
    }
}

static TSS2_RC nv_write(struct tpm *t, const struct index *ix, ESYS_TR tr,
                        const TPM2B_MAX_NV_BUFFER *data, uint16_t offset)
{
    switch (ix->kind) {
    case ORDINARY:
    case CHUNKED:
        return Esys_NV_Write(t->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                             ESYS_TR_NONE, data, offset);
    case COUNTER:
    case ORDERLY_COUNTER:
        return Esys_NV_Increment(t->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE);
    case EXTEND:
        return Esys_NV_Extend(t->esys, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                              ESYS_TR_NONE, data);
    }
    return TSS2_ESYS_RC_BAD_VALUE;
}

static int failed(TSS2_RC rc, const struct index *ix, const char *what)
{
    if (rc == TSS2_RC_SUCCESS) {
        return 0;
    }
    fprintf(stderr, "nv-crash: %08x (%s): %s failed: 0x%08x\n", ix->handle, ix->name, what, rc);
    return 1;
}

/* Defines every index that is not there yet and gives it a first value. */
static int cmd_define(struct tpm *t, const char *dir)
{
    for (size_t i = 0; i < NINDICES; i++) {
        const struct index *ix = &indices[i];
        TPMA_NV attrs = TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_NO_DA;
        TPM2B_NV_PUBLIC pub = {
            .nvPublic = {.nvIndex = ix->handle, .nameAlg = TPM2_ALG_SHA256, .dataSize = ix->size}};
        TPM2B_AUTH auth = {.size = 0};
        struct value cur = {.len = ix->size}, next;
        TPM2B_MAX_NV_BUFFER data;
        uint16_t offset;
        ESYS_TR tr;
        int writes = 1;

        switch (ix->kind) {
        case ORDINARY:
        case CHUNKED:
            attrs |= TPM2_NT_ORDINARY << TPMA_NV_TPM2_NT_SHIFT;
            writes = ix->kind == CHUNKED ? ix->size / CHUNK : 1;
            break;
        case COUNTER:
            attrs |= TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT;
            break;
        case ORDERLY_COUNTER:
            attrs |= TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT | TPMA_NV_ORDERLY;
            break;
        case EXTEND:
            attrs |= TPM2_NT_EXTEND << TPMA_NV_TPM2_NT_SHIFT;
            break;
        }
        pub.nvPublic.attributes = attrs;
        if (failed(Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                       ESYS_TR_NONE, &auth, &pub, &tr),
                   ix, "TPM2_NV_DefineSpace")) {
            return 1;
        }
        /* The first writes start from zeros; a counter's first value is the TPM's to choose. */
        memset(cur.b, 0, sizeof(cur.b));
        for (int w = 0; w < writes; w++) {
            plan(ix, &cur, &data, &offset, &next);
            if (failed(nv_write(t, ix, tr, &data, offset), ix, "first write")) {
                return 1;
            }
            cur = next;
        }
        if (failed(nv_read(t, ix, tr, &cur), ix, "TPM2_NV_Read") ||
            record(dir, ix, &cur, &cur) != 0) {
            return 1;
        }
    }
    return 0;
}

static int cmd_write(struct tpm *t, const char *dir, const struct index *ix, const char *ready)
{
    struct value cur, next;
    TPM2B_MAX_NV_BUFFER data;
    unsigned long acked = 0;
    uint16_t offset;
    ESYS_TR tr;
    TSS2_RC rc;

    rc = nv_handle(t, ix, &tr);
    if (rc == TSS2_RC_SUCCESS) {
        rc = nv_read(t, ix, tr, &cur);
    }
    if (rc == TSS2_RC_SUCCESS) {
        plan(ix, &cur, &data, &offset, &next);
        if (record(dir, ix, &cur, ix->kind == ORDERLY_COUNTER ? NULL : &next) != 0) {
            return 1;
        }
        if (ready != NULL) {
            FILE *fp = fopen(ready, "w");
            if (fp != NULL) {
                fclose(fp);
            }
        }
    }
    while (rc == TSS2_RC_SUCCESS) {
        rc = nv_write(t, ix, tr, &data, offset);
        if (rc != TSS2_RC_SUCCESS) {
            break;
        }
        acked++;
        cur = next;
        plan(ix, &cur, &data, &offset, &next);
        if (record(dir, ix, &cur, ix->kind == ORDERLY_COUNTER ? NULL : &next) != 0) {
            return 1;
        }
    }
    printf("acked %lu\n", acked);
    fprintf(stderr, "nv-crash: %08x (%s): stopped after %lu acknowledged writes: 0x%08x\n",
            ix->handle, ix->name, acked, rc);
    /* The TPM's own layer is 0: an answer from a live TPM, not a lost connection. */
    return (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER ? 3 : 0;
}

static int cmd_check(struct tpm *t, const char *dir)
{
    static char a[2 * MAX_SIZE + 1], f[2 * MAX_SIZE + 1], g[2 * MAX_SIZE + 1];
    int status = 0;

    for (size_t i = 0; i < NINDICES; i++) {
        const struct index *ix = &indices[i];
        struct value acked, inflight, got;
        int has_inflight, ok;
        const char *which;
        ESYS_TR tr;

        if (load(dir, ix, &acked, &inflight, &has_inflight) != 0) {
            return 1;
        }
        if (failed(nv_handle(t, ix, &tr), ix, "TPM2_NV_ReadPublic") ||
            failed(nv_read(t, ix, tr, &got), ix, "TPM2_NV_Read")) {
            return 1;
        }
        if (got.len == acked.len && memcmp(got.b, acked.b, got.len) == 0) {
            ok = 1, which = "acknowledged";
        } else if (has_inflight && got.len == inflight.len &&
                   memcmp(got.b, inflight.b, got.len) == 0) {
            ok = 1, which = "in flight";
        } else if (!has_inflight) {
            ok = get_u64(got.b) >= get_u64(acked.b), which = "ahead";
        } else {
            ok = 0, which = "other";
        }
        if (!ok) {
            fprintf(stderr,
                    "nv-crash: %08x (%s) lost an acknowledged write:\n"
                    "  holds        %s\n  acknowledged %s\n  in flight    %s\n",
                    ix->handle, ix->name, brief(&got, g), brief(&acked, a),
                    has_inflight ? brief(&inflight, f) : "- (any value from the acknowledged on)");
            status = 1;
        }
        printf("%08x %s: %s\n", ix->handle, ix->name, which);
        /* What a client was shown is acknowledged from now on. */
        if (record(dir, ix, &got, ix->kind == ORDERLY_COUNTER ? NULL : &got) != 0) {
            return 1;
        }
    }
    return status;
}

int main(int argc, char **argv)
{
    struct tpm t;
    int status = 2;

    /* A write to the socket of a killed daemon is a failed command, not the end of the writer. */
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 4 && strcmp(argv[1], "define") == 0) {
        if (tpm_open(&t, argv[2]) != 0) {
            return 1;
        }
        status = cmd_define(&t, argv[3]);
    } else if ((argc == 5 || argc == 6) && strcmp(argv[1], "write") == 0) {
        const struct index *ix = find(argv[4]);
        if (ix == NULL) {
            fprintf(stderr, "nv-crash: no index %s\n", argv[4]);
            return 2;
        }
        if (tpm_open(&t, argv[2]) != 0) {
            /* The daemon was killed before this writer connected: nothing was written. */
            printf("acked 0\n");
            return 0;
        }
        status = cmd_write(&t, argv[3], ix, argc == 6 ? argv[5] : NULL);
    } else if (argc == 4 && strcmp(argv[1], "check") == 0) {
        if (tpm_open(&t, argv[2]) != 0) {
            return 1;
        }
        status = cmd_check(&t, argv[3]);
    } else {
        fprintf(stderr, "usage: nv-crash define|check TCTI ACKDIR\n"
                        "       nv-crash write TCTI ACKDIR INDEX [READY]\n");
        return 2;
    }
    tpm_close(&t);
    return status;
}
