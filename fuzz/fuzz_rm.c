/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The resource manager (emulator/rm.c): how it reads and rewrites client commands (handle
 * areas, authorization areas, FlushContext, GetCapability, ContextSave/Load) and the TPM's
 * responses (new handles, properties), and how it swaps objects and sessions of several clients
 * through libtpms' three slots.
 *
 * The input is a series of records; each starts with a byte whose low two bits pick one of four
 * client spaces and whose next three bits pick the operation:
 *   0  a command: u16 length, then the command; its size field is set to the length
 *   1  the same, with the size field left as it is
 *   2  a command at a locality: a byte (its value mod 5), a u16 length, the command
 *   3  a made-up TPM response: u16 length, then the bytes, answered to the RM's next TPM command
 *      in place of libtpms (the RM must not trust the TPM more than it has to)
 *   4  the space closes (flushing what it held) and a new one takes its place
 *   5  the TPM is reset (rm_tpm_reset, as on a power cycle)
 *   6  abandoned sessions expire (rm_expire)
 *   7  the status is logged (rm_log_status)
 * Every input starts from the TPM as manufactured and a new resource manager. FUZZ_VERBOSE=1 in
 * the environment prints the response code of every command.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "fuzz.h"
#include "proto.h"
#include "rm.h"
#include "tpm.h"

#define SPACES   4
#define MAX_FAKE 8

/* Made-up responses waiting for the RM's next TPM commands. */
static struct {
    uint8_t *rsp;
    size_t len;
} fake[MAX_FAKE];
static size_t n_fake, next_fake;
static uint8_t *fake_out;
static int verbose; /* FUZZ_VERBOSE=1: a line per command, to see what an input does */

void __real_tpm_execute(uint8_t locality, uint8_t *cmd, size_t len, const uint8_t **rsp,
                        size_t *rsp_len);
void __wrap_tpm_execute(uint8_t locality, uint8_t *cmd, size_t len, const uint8_t **rsp,
                        size_t *rsp_len);

/* The RM's calls into tpm.c come here (-Wl,--wrap=tpm_execute). */
void __wrap_tpm_execute(uint8_t locality, uint8_t *cmd, size_t len, const uint8_t **rsp,
                        size_t *rsp_len)
{
    if (next_fake < n_fake) {
        /* An exact-size copy, so that a read past the response's end is caught. */
        free(fake_out);
        fake_out = fake[next_fake].rsp;
        *rsp = fake_out;
        *rsp_len = fake[next_fake].len;
        fake[next_fake].rsp = NULL;
        next_fake++;
        return;
    }
    __real_tpm_execute(locality, cmd, len, rsp, rsp_len);
}

static void clear_fakes(void)
{
    for (size_t i = 0; i < n_fake; i++) {
        free(fake[i].rsp);
        fake[i].rsp = NULL;
    }
    n_fake = next_fake = 0;
    free(fake_out);
    fake_out = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    emu_init();
    return 0;
}

/* Runs one command for `space` and checks the response's framing. */
static void command(struct rm_space *space, uint8_t locality, const uint8_t *bytes, size_t len,
                    int set_size)
{
    uint8_t *cmd = malloc(len > 0 ? len : 1);
    const uint8_t *rsp = NULL;
    size_t rsp_len = 0, fakes = next_fake;

    if (cmd == NULL) {
        return;
    }
    memcpy(cmd, bytes, len);
    if (set_size && len >= 6) {
        cmd[2] = (uint8_t)(len >> 24);
        cmd[3] = (uint8_t)(len >> 16);
        cmd[4] = (uint8_t)(len >> 8);
        cmd[5] = (uint8_t)len;
    }
    rm_execute(space, locality, cmd, len, &rsp, &rsp_len);
    if (verbose) {
        fprintf(stderr, "%s: command 0x%08x -> response code 0x%08x (%zu bytes)\n",
                rm_space_name(space), len >= 10 ? proto_get_u32(cmd + 6) : 0,
                rsp_len >= 10 ? proto_get_u32(rsp + 6) : 0, rsp_len);
    }
    /* The TPM's own responses have a header; a made-up one is passed on as it is. */
    if (rsp == NULL || (rsp_len < 10 && next_fake == fakes) || rsp_len > TPM_MAX_COMMAND + 64) {
        fuzz_fail("a response of %zu bytes", rsp_len);
    }
    free(cmd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct rm_space *spaces[SPACES] = {NULL};
    struct rm *rm = NULL;
    char err[256];

    if (rm_create(&emu_rm_config, &rm, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        fuzz_fail("rm_create: %s", err);
    }
    for (int i = 0; i < SPACES; i++) {
        char name[16] = "space 0";
        name[6] = (char)('0' + i);
        spaces[i] = rm_space_new(rm, name);
    }
    while (in.left > 0) {
        uint8_t op = fuzz_u8(&in), locality = 0;
        struct rm_space **s = &spaces[op & 3];
        const uint8_t *bytes;
        size_t len;

        switch (op >> 2 & 7) {
        case 0:
        case 1:
        case 2:
            if ((op >> 2 & 7) == 2) {
                locality = fuzz_u8(&in) % 5;
            }
            bytes = fuzz_bytes(&in, fuzz_u16(&in), &len);
            if (*s != NULL) {
                command(*s, locality, bytes, len, (op >> 2 & 7) != 1);
            }
            break;
        case 3:
            bytes = fuzz_bytes(&in, fuzz_u16(&in), &len);
            if (n_fake < MAX_FAKE) {
                fake[n_fake].rsp = malloc(len > 0 ? len : 1);
                if (fake[n_fake].rsp != NULL) {
                    memcpy(fake[n_fake].rsp, bytes, len);
                    fake[n_fake++].len = len;
                }
            }
            break;
        case 4:
            rm_space_free(*s);
            *s = rm_space_new(rm, "reopened");
            break;
        case 5:
            emu_reset_tpm();
            rm_tpm_reset(rm);
            break;
        case 6:
            rm_expire(rm);
            break;
        default:
            rm_log_status(rm);
            break;
        }
    }
    rm_destroy(rm); /* frees the spaces too */
    clear_fakes();
    emu_reset_tpm();
    return 0;
}
