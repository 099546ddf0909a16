/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tpmbench: one ESAPI client timing TPM2_HMAC and TPM2_GetRandom.
 *   tpmbench TCTI N
 * TCTI is any tctildr configuration ("mssim:path=/x", "swtpm:port=2321"), or "raw:PORT" /
 * "raw:unix:PATH": a persistent connection sending raw TPM commands (the swtpm data-channel
 * dialect), which lets sctpmd and swtpm be compared on one persistent connection each.
 * Prints one line: hmac_ops_per_s=... hmac_p50_us=... hmac_p99_us=... getrandom_ops_per_s=...
 * hmac_client_cpu_us=...: the last is the CPU time (user and system) this client spent per HMAC,
 * in ESAPI, the TCTI and the kernel's socket calls. No TPM, however fast, can serve this client
 * at more than 1e6 / hmac_client_cpu_us HMACs a second.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

/* ---- a minimal persistent raw TCTI ---- */
struct raw {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;
    int fd;
    uint8_t rsp[4096];
    size_t rsp_len;
};

static int read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static TSS2_RC raw_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *cmd)
{
    struct raw *t = (struct raw *)ctx;
    uint32_t len = 0;
    size_t off = 2;

    if (write(t->fd, cmd, size) != (ssize_t)size || read_all(t->fd, t->rsp, 10) != 0) {
        return TSS2_TCTI_RC_IO_ERROR;
    }
    Tss2_MU_UINT32_Unmarshal(t->rsp, 10, &off, &len);
    if (len < 10 || len > sizeof(t->rsp) || read_all(t->fd, t->rsp + 10, len - 10) != 0) {
        return TSS2_TCTI_RC_IO_ERROR;
    }
    t->rsp_len = len;
    return TSS2_RC_SUCCESS;
}

static TSS2_RC raw_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *rsp, int32_t timeout)
{
    struct raw *t = (struct raw *)ctx;

    (void)timeout;
    if (rsp == NULL) {
        *size = t->rsp_len;
        return TSS2_RC_SUCCESS;
    }
    if (*size < t->rsp_len) {
        return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
    }
    memcpy(rsp, t->rsp, t->rsp_len);
    *size = t->rsp_len;
    return TSS2_RC_SUCCESS;
}

static void raw_finalize(TSS2_TCTI_CONTEXT *ctx)
{
    close(((struct raw *)ctx)->fd);
}

static TSS2_TCTI_CONTEXT *raw_open(const char *conf)
{
    struct raw *t = calloc(1, sizeof(*t));
    int one = 1;

    t->common.v1.magic = 0x7261777463746931ULL;
    t->common.v1.version = 2;
    t->common.v1.transmit = raw_transmit;
    t->common.v1.receive = raw_receive;
    t->common.v1.finalize = raw_finalize;
    if (strncmp(conf, "unix:", 5) == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", conf + 5);
        t->fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(t->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            return NULL;
        }
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(conf))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        t->fd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(t->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            return NULL;
        }
    }
    return (TSS2_TCTI_CONTEXT *)t;
}

static double now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU time (user and system) this process has used, in seconds. */
static double cpu_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

#define CK(x)                                                                                      \
    do {                                                                                           \
        TSS2_RC r_ = (x);                                                                          \
        if (r_ != TSS2_RC_SUCCESS) {                                                               \
            fprintf(stderr, "tpmbench: %s failed: 0x%08x\n", #x, r_);                              \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    ESYS_CONTEXT *ctx;
    TPM2B_SENSITIVE_CREATE insens = {0};
    TPM2B_DATA outside = {0};
    TPML_PCR_SELECTION pcr = {0};
    TPM2B_PUBLIC tmpl = {
        .publicArea = {.type = TPM2_ALG_KEYEDHASH,
                       .nameAlg = TPM2_ALG_SHA256,
                       .objectAttributes = TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_NODA |
                                           TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_FIXEDTPM |
                                           TPMA_OBJECT_FIXEDPARENT |
                                           TPMA_OBJECT_SENSITIVEDATAORIGIN,
                       .parameters.keyedHashDetail.scheme = {
                           .scheme = TPM2_ALG_HMAC, .details.hmac.hashAlg = TPM2_ALG_SHA256}}};
    TPM2B_MAX_BUFFER buf = {.size = 64};
    ESYS_TR key;
    double *lat, t0, th, tr, c0, ch;
    int n;

    if (argc != 3 || (n = atoi(argv[2])) < 10) {
        fprintf(stderr, "usage: tpmbench TCTI N (N >= 10)\n");
        return 2;
    }
    if (strncmp(argv[1], "raw:", 4) == 0) {
        tcti = raw_open(argv[1] + 4);
        if (tcti == NULL) {
            fprintf(stderr, "tpmbench: cannot connect to %s\n", argv[1]);
            return 1;
        }
    } else {
        CK(Tss2_TctiLdr_Initialize(argv[1], &tcti));
    }
    CK(Esys_Initialize(&ctx, tcti, NULL));
    CK(Esys_CreatePrimary(ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                          &insens, &tmpl, &outside, &pcr, &key, NULL, NULL, NULL, NULL));
    memset(buf.buffer, 'a', buf.size);
    lat = malloc(sizeof(double) * (size_t)n);
    c0 = cpu_now();
    t0 = now();
    for (int i = 0; i < n; i++) {
        TPM2B_DIGEST *out;
        double a = now();
        CK(Esys_HMAC(ctx, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &buf, TPM2_ALG_SHA256,
                     &out));
        Esys_Free(out);
        lat[i] = now() - a;
    }
    th = now() - t0;
    ch = cpu_now() - c0;
    t0 = now();
    for (int i = 0; i < n; i++) {
        TPM2B_DIGEST *rnd;
        CK(Esys_GetRandom(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 32, &rnd));
        Esys_Free(rnd);
    }
    tr = now() - t0;
    qsort(lat, (size_t)n, sizeof(double), cmp);
    CK(Esys_FlushContext(ctx, key));
    printf("hmac_ops_per_s=%.0f hmac_p50_us=%.1f hmac_p99_us=%.1f getrandom_ops_per_s=%.0f "
           "hmac_client_cpu_us=%.1f\n",
           n / th, lat[n / 2] * 1e6, lat[(int)(n * 0.99)] * 1e6, n / tr, ch / n * 1e6);
    free(lat);
    Esys_Finalize(&ctx);
    if (strncmp(argv[1], "raw:", 4) == 0) {
        raw_finalize(tcti);
        free(tcti);
    } else {
        Tss2_TctiLdr_Finalize(&tcti);
    }
    return 0;
}
