/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A fuzz target for the hub's parsers of untrusted input: the Authorization header (SAS token
 * parsing, scope check and verification) and the telemetry batch body. The first input byte
 * picks the parser.
 *
 * With libFuzzer (clang, from the top of a configured tree):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DHUB_FUZZ_LIBFUZZER -I. -Iinclude \
 *       -Icommon -Ihub $(pkg-config --cflags json-c) tests/hub-fuzz.c hub/sas.c hub/message.c \
 *       hub/util.c common/base64.c common/urlenc.c $(pkg-config --libs json-c libcrypto) \
 *       -o hub-fuzz && ./hub-fuzz -max_total_time=60
 *
 * Without it, `make check` builds this file as tests/hub-fuzz, which runs the target once for
 * each file named on its command line (a corpus or a crash to reproduce), so it cannot rot.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message-priv.h"
#include "sas-priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_sas(const uint8_t *data, size_t size)
{
    static const uint8_t key[32] = {1, 2, 3};
    const uint8_t *keys[1] = {key};
    size_t lens[1] = {sizeof(key)};
    struct hub_sas *t = NULL;
    char *header = malloc(size + 1);

    if (header == NULL) {
        return;
    }
    memcpy(header, data, size);
    header[size] = '\0';
    if (hub_sas_parse(header, &t, NULL) == SCTPM_RC_SUCCESS) {
        (void)hub_sas_check_scope(t, "hub.example", "dev-01", NULL);
        (void)hub_sas_verify(t, keys, lens, 1, 1700000000, 30, NULL);
        hub_sas_free(t);
    }
    free(header);
}

static void fuzz_batch(const uint8_t *data, size_t size)
{
    struct hub_msg *msgs = NULL;
    size_t n = 0;

    if (hub_msg_parse_batch(data, size, &msgs, &n, NULL) == SCTPM_RC_SUCCESS) {
        for (size_t i = 0; i < n; i++) {
            (void)hub_msg_app_json(&msgs[i]);
        }
        hub_msgs_free(msgs, n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    if (data[0] & 1) {
        fuzz_batch(data + 1, size - 1);
    } else {
        fuzz_sas(data + 1, size - 1);
    }
    return 0;
}

#ifndef HUB_FUZZ_LIBFUZZER
/* Reads a whole file of at most 1 MiB; returns NULL on failure. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 1024 * 1024;

    if (f == NULL) {
        return NULL;
    }
    buf = malloc(cap);
    if (buf != NULL) {
        *len = fread(buf, 1, cap, f);
        if (ferror(f) || !feof(f)) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        size_t n = 0;
        uint8_t *buf = slurp(argv[i], &n);

        if (buf == NULL) {
            fprintf(stderr, "hub-fuzz: cannot read %s (or it is over 1 MiB)\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput(buf, n);
        free(buf);
    }
    return 0;
}
#endif
