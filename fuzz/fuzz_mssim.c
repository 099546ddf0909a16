/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Microsoft simulator ("mssim") protocol as sctpmd speaks it: the framing parsers of the data
 * and platform channels (emulator/proto.c), and the whole path behind them, through a real server
 * (emulator/server.c), the resource manager and libtpms.
 *
 * Input: a flags byte (bit 0: connect as an untrusted TCP peer; bit 1: --no-rm), a big-endian
 * u16 length, that many bytes sent on a platform (control) connection, whose dialect the server
 * decides from its first bytes, then the rest sent on a data connection: mssim messages
 * (SEND_COMMAND, REMOTE_HANDSHAKE, HASH_*, SESSION_END...) or raw TPM commands.
 *
 * The parsers are also checked on their own: a message parsed from a buffer must lie inside the
 * bytes it used, and every shorter prefix of it must be "need more", never a different message.
 */
#include "config.h"

#include "emu.h"
#include "fuzz.h"
#include "proto.h"

#define MAX_COMMAND 4096
#define MAX_HASH    4096

static void check_data_parser(const uint8_t *buf, size_t len)
{
    while (len > 0) {
        struct proto_data_msg m, p;
        const char *why = NULL;
        size_t used = 0, pused;
        enum proto_status st = proto_parse_data(buf, len, MAX_COMMAND, MAX_HASH, &m, &used, &why);

        if (st != PROTO_OK) {
            if (used != 0 || (st == PROTO_ERROR && why == NULL)) {
                fuzz_fail("data parser: status %d with %zu bytes used", (int)st, used);
            }
            return;
        }
        if (used == 0 || used > len ||
            (m.data != NULL && (m.data < buf || m.data + m.len > buf + used)) ||
            (m.code == MSSIM_SEND_COMMAND && (m.len < 10 || m.len > MAX_COMMAND)) ||
            (m.code == MSSIM_HASH_DATA && m.len > MAX_HASH)) {
            fuzz_fail("data parser: a message outside its bytes or limits");
        }
        for (size_t k = 0; k < used; k++) {
            if (proto_parse_data(buf, k, MAX_COMMAND, MAX_HASH, &p, &pused, &why) !=
                PROTO_NEED_MORE) {
                fuzz_fail("data parser: a %zu-byte prefix of a %zu-byte message is not short", k,
                          used);
            }
        }
        buf += used;
        len -= used;
    }
}

static void check_ctrl_parser(const uint8_t *buf, size_t len)
{
    if (proto_ctrl_dialect(buf, len) == PROTO_DIALECT_UNKNOWN && len >= 4) {
        fuzz_fail("no dialect decided from %zu bytes", len);
    }
    while (len > 0) {
        struct proto_ctrl_msg m, p;
        const char *why = NULL;
        size_t used = 0, pused;
        enum proto_status st = proto_parse_mssim_ctrl(buf, len, &m, &used, &why);

        if (st != PROTO_OK) {
            if (used != 0 || (st == PROTO_ERROR && why == NULL)) {
                fuzz_fail("platform parser: status %d with %zu bytes used", (int)st, used);
            }
            return;
        }
        if (used != 4 && used != 8) {
            fuzz_fail("platform parser: %zu bytes used", used);
        }
        for (size_t k = 0; k < used; k++) {
            if (proto_parse_mssim_ctrl(buf, k, &p, &pused, &why) != PROTO_NEED_MORE) {
                fuzz_fail("platform parser: a prefix of a message is not short");
            }
        }
        buf += used;
        len -= used;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    emu_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    unsigned flags = fuzz_u8(&in) & (EMU_UNTRUSTED | EMU_NO_RM);
    size_t ctrl_len, data_len;
    const uint8_t *ctrl = fuzz_bytes(&in, fuzz_u16(&in), &ctrl_len);
    const uint8_t *rest = fuzz_bytes(&in, in.left, &data_len);

    check_ctrl_parser(ctrl, ctrl_len);
    check_data_parser(rest, data_len);
    emu_session(flags, ctrl, ctrl_len, rest, data_len);
    return 0;
}
