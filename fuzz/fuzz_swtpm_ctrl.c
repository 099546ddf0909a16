/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The swtpm control channel as sctpmd serves it: the parser (emulator/proto.c) and the handlers
 * behind it (emulator/server.c: capabilities, INIT and STOP, localities, the H-CRTM hash
 * sequence, state blobs, buffer size, GET_INFO, SET_DATAFD...), on a real server and libtpms.
 *
 * Input: a flags byte (bit 0: connect as an untrusted TCP peer, to whom platform operations are
 * refused; bit 1: --no-rm; bit 2: pass a data socket with the first byte, for SET_DATAFD), a
 * big-endian u16 length, that many bytes sent on the control connection, then the rest sent on a
 * data connection (the passed socket, if the server took it): raw TPM commands or mssim
 * messages, which run with whatever the control messages set up.
 *
 * The parser is also checked on its own: a message lies inside the bytes it used, and every
 * shorter prefix of it is "need more".
 */
#include "config.h"

#include "emu.h"
#include "fuzz.h"
#include "nvstore.h"
#include "proto.h"

static void check_parser(const uint8_t *buf, size_t len)
{
    if (len >= 8 && proto_get_u32(buf) == SWTPM_INIT &&
        proto_ctrl_dialect(buf, len) != PROTO_DIALECT_SWTPM) {
        fuzz_fail("INIT with its flags not taken for swtpm");
    }
    while (len > 0) {
        struct proto_ctrl_msg m, p;
        const char *why = NULL;
        size_t used = 0, pused;
        enum proto_status st = proto_parse_swtpm_ctrl(buf, len, NVSTORE_MAX_BLOB, &m, &used, &why);

        if (st != PROTO_OK) {
            if (used != 0 || (st == PROTO_ERROR && why == NULL)) {
                fuzz_fail("control parser: status %d with %zu bytes used", (int)st, used);
            }
            return;
        }
        if (used < 4 || used > len ||
            (m.data != NULL && (m.data < buf || m.data + m.len > buf + used))) {
            fuzz_fail("control parser: a message outside its bytes");
        }
        for (size_t k = 0; k < used; k++) {
            if (proto_parse_swtpm_ctrl(buf, k, NVSTORE_MAX_BLOB, &p, &pused, &why) !=
                PROTO_NEED_MORE) {
                fuzz_fail("control parser: a %zu-byte prefix of a %zu-byte message is not short", k,
                          used);
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
    unsigned flags = (fuzz_u8(&in) & (EMU_UNTRUSTED | EMU_NO_RM | EMU_PASS_FD)) | EMU_SWTPM;
    size_t ctrl_len, data_len;
    const uint8_t *ctrl = fuzz_bytes(&in, fuzz_u16(&in), &ctrl_len);
    const uint8_t *rest = fuzz_bytes(&in, in.left, &data_len);

    check_parser(ctrl, ctrl_len);
    emu_session(flags, ctrl, ctrl_len, rest, data_len);
    return 0;
}
