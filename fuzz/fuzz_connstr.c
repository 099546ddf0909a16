/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The device connection-string parser (shim/connstr.c): what `sctpm provision` reads from a
 * pipe or a file. The whole input is the string (up to its first NUL). Besides not crashing,
 * a string that parses must give fields that pass the parser's own validity rules, a key of an
 * allowed size, and an NV identity that fits; a failure must leave the result wiped and explain
 * itself in one line.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "connstr.h"
#include "fuzz.h"

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0) {
            return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct connstr c;
    char err[256], uri[SCTPM_NV_URI_MAX + 1];
    char *s = fuzz_str(&in);
    enum sctpm_rc rc;

    if (s == NULL) {
        return 0;
    }
    memset(err, 'x', sizeof(err));
    rc = connstr_parse(s, &c, err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL) {
        fuzz_fail("the error message is not terminated");
    }
    if (rc == SCTPM_RC_SUCCESS) {
        if (err[0] != '\0') {
            fuzz_fail("success with an error message: %s", err);
        }
        if (!connstr_valid_host(c.host) || !connstr_valid_id(c.device_id) ||
            (c.module_id[0] != '\0' && !connstr_valid_id(c.module_id))) {
            fuzz_fail("a parsed field breaks the validity rules");
        }
        if (c.key_len < CONNSTR_KEY_MIN || c.key_len > CONNSTR_KEY_MAX) {
            fuzz_fail("key of %zu bytes accepted", c.key_len);
        }
        if (connstr_uri(c.host, c.device_id, c.module_id, uri, sizeof(uri)) != SCTPM_RC_SUCCESS) {
            fuzz_fail("the NV identity of a parsed string does not fit");
        }
    } else {
        if (rc != SCTPM_RC_BAD_FORMAT && rc != SCTPM_RC_TOO_LARGE) {
            fuzz_fail("unexpected return code %d", (int)rc);
        }
        if (err[0] == '\0' || strchr(err, '\n') != NULL) {
            fuzz_fail("a refusal without a one-line reason");
        }
        if (!all_zero(&c, sizeof(c))) {
            fuzz_fail("a refused string left data behind");
        }
    }
    /* The validators on their own, with whatever the rest of the input holds. */
    (void)connstr_valid_host(s);
    (void)connstr_valid_id(s);
    connstr_wipe(&c);
    free(s);
    return 0;
}
