/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * proto: the wire framing of the two simulator protocols sctpmd speaks, as pure parsers over a
 * byte buffer (no I/O), so that the event loop and the fuzzers share them.
 *
 * Data channel (port N, or PATH). Each message is one of
 *   - a raw TPM command (first byte 0x80: tag 0x8001/0x8002, then a u32 size): the swtpm dialect,
 *     answered with the raw response;
 *   - a big-endian u32 code of the Microsoft simulator ("mssim") protocol: SEND_COMMAND (8: u8
 *     locality, u32 size, command), REMOTE_HANDSHAKE (15: u32 client version), HASH_START (5),
 *     HASH_DATA (6: u32 length, data), HASH_END (7), SET_ALTERNATIVE_RESULT (16: u32),
 *     SESSION_END (20), STOP (21). swtpm clients also send SEND_COMMAND (its "command header").
 * The two cannot be confused: mssim codes are small, so their first byte is 0x00.
 *
 * Control channel (port N+1, or PATH.ctrl). The mssim platform codes are a bare u32 each (plus a
 * u32 for ACT_GET_SIGNALED); the swtpm control codes are a u32 followed by a fixed structure
 * (SET_STATEBLOB and HASH_DATA carry a length and data). The dialects reuse the same numbers with
 * different meanings, so a connection's dialect must be known before its codes can be read; see
 * proto_ctrl_dialect().
 *
 * Every parser returns PROTO_NEED_MORE until a whole message is buffered, PROTO_OK with the
 * message and the number of bytes it used, or PROTO_ERROR with a sentence naming what was wrong.
 * Size fields are checked against the caller's limits before anything is trusted.
 */
#ifndef SCTPM_EMULATOR_PROTO_H
#define SCTPM_EMULATOR_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum proto_status { PROTO_ERROR = -1, PROTO_NEED_MORE = 0, PROTO_OK = 1 };

/* mssim codes (TpmTcpProtocol.h). */
enum mssim_code {
    MSSIM_POWER_ON = 1,
    MSSIM_POWER_OFF = 2,
    MSSIM_PHYS_PRES_ON = 3,
    MSSIM_PHYS_PRES_OFF = 4,
    MSSIM_HASH_START = 5,
    MSSIM_HASH_DATA = 6,
    MSSIM_HASH_END = 7,
    MSSIM_SEND_COMMAND = 8,
    MSSIM_CANCEL_ON = 9,
    MSSIM_CANCEL_OFF = 10,
    MSSIM_NV_ON = 11,
    MSSIM_NV_OFF = 12,
    MSSIM_KEY_CACHE_ON = 13,
    MSSIM_KEY_CACHE_OFF = 14,
    MSSIM_REMOTE_HANDSHAKE = 15,
    MSSIM_SET_ALTERNATIVE_RESULT = 16,
    MSSIM_SIGNAL_RESET = 17,
    MSSIM_SIGNAL_RESTART = 18,
    MSSIM_SESSION_END = 20,
    MSSIM_STOP = 21,
    MSSIM_GET_COMMAND_RESPONSE_SIZES = 25,
    MSSIM_ACT_GET_SIGNALED = 26,
    MSSIM_TEST_FAILURE_MODE = 30,
};

/* swtpm control codes (swtpm's tpm_ioctl.h, CMD_*). */
enum swtpm_code {
    SWTPM_GET_CAPABILITY = 1,
    SWTPM_INIT = 2,
    SWTPM_SHUTDOWN = 3,
    SWTPM_GET_TPMESTABLISHED = 4,
    SWTPM_SET_LOCALITY = 5,
    SWTPM_HASH_START = 6,
    SWTPM_HASH_DATA = 7,
    SWTPM_HASH_END = 8,
    SWTPM_CANCEL_TPM_CMD = 9,
    SWTPM_STORE_VOLATILE = 10,
    SWTPM_RESET_TPMESTABLISHED = 11,
    SWTPM_GET_STATEBLOB = 12,
    SWTPM_SET_STATEBLOB = 13,
    SWTPM_STOP = 14,
    SWTPM_GET_CONFIG = 15,
    SWTPM_SET_DATAFD = 16,
    SWTPM_SET_BUFFERSIZE = 17,
    SWTPM_GET_INFO = 18,
    SWTPM_LOCK_STORAGE = 19,
};

/* PTM_CAP_* bits answered to GET_CAPABILITY. */
#define SWTPM_CAP_INIT                 (1u << 0)
#define SWTPM_CAP_SHUTDOWN             (1u << 1)
#define SWTPM_CAP_GET_TPMESTABLISHED   (1u << 2)
#define SWTPM_CAP_SET_LOCALITY         (1u << 3)
#define SWTPM_CAP_HASHING              (1u << 4)
#define SWTPM_CAP_CANCEL_TPM_CMD       (1u << 5)
#define SWTPM_CAP_STORE_VOLATILE       (1u << 6)
#define SWTPM_CAP_RESET_TPMESTABLISHED (1u << 7)
#define SWTPM_CAP_GET_STATEBLOB        (1u << 8)
#define SWTPM_CAP_SET_STATEBLOB        (1u << 9)
#define SWTPM_CAP_STOP                 (1u << 10)
#define SWTPM_CAP_GET_CONFIG           (1u << 11)
#define SWTPM_CAP_SET_DATAFD           (1u << 12)
#define SWTPM_CAP_SET_BUFFERSIZE       (1u << 13)
#define SWTPM_CAP_GET_INFO             (1u << 14)
#define SWTPM_CAP_SEND_COMMAND_HEADER  (1u << 15)

/* A parsed data-channel message. `data` points into the caller's buffer. */
struct proto_data_msg {
    int raw;       /* a raw TPM command (swtpm dialect), else an mssim code */
    uint32_t code; /* the mssim code (MSSIM_SEND_COMMAND for a raw command too) */
    uint8_t locality;
    uint32_t value; /* REMOTE_HANDSHAKE client version, SET_ALTERNATIVE_RESULT value */
    const uint8_t *data;
    size_t len; /* the TPM command, or HASH_DATA bytes */
};

/*
 * Parses the next data-channel message from `buf` (`len` bytes). TPM commands larger than
 * `max_command` and hash chunks larger than `max_hash` are errors.
 */
enum proto_status proto_parse_data(const uint8_t *buf, size_t len, size_t max_command,
                                   size_t max_hash, struct proto_data_msg *msg, size_t *used,
                                   const char **why);

enum proto_dialect { PROTO_DIALECT_UNKNOWN, PROTO_DIALECT_MSSIM, PROTO_DIALECT_SWTPM };

/*
 * Decides the dialect of a control connection in "auto" mode from its first bytes. The TCTIs'
 * codes do not collide: tcti-mssim sends POWER_ON (1), NV_ON (11), CANCEL_ON/OFF (9, 10);
 * tcti-swtpm sends SET_LOCALITY (5 + 1 byte) and INIT (2 + 4 bytes) in one write each. So 5, and
 * 2 followed at once by its 4 flag bytes, are swtpm; everything else is mssim. Returns
 * PROTO_DIALECT_UNKNOWN until 4 bytes are buffered.
 */
enum proto_dialect proto_ctrl_dialect(const uint8_t *buf, size_t len);

/* A parsed control-channel message. */
struct proto_ctrl_msg {
    uint32_t code;
    uint32_t arg[3];     /* fixed u32 fields in wire order (flags, type, offset, size...) */
    uint64_t arg64;      /* GET_INFO flags */
    uint8_t byte;        /* SET_LOCALITY / RESET_TPMESTABLISHED locality */
    const uint8_t *data; /* HASH_DATA / SET_STATEBLOB payload */
    size_t len;
};

/* Parses one mssim platform-channel message. */
enum proto_status proto_parse_mssim_ctrl(const uint8_t *buf, size_t len, struct proto_ctrl_msg *msg,
                                         size_t *used, const char **why);

/* Parses one swtpm control-channel message; blobs larger than `max_blob` are errors. */
enum proto_status proto_parse_swtpm_ctrl(const uint8_t *buf, size_t len, size_t max_blob,
                                         struct proto_ctrl_msg *msg, size_t *used,
                                         const char **why);

/* Big-endian helpers for building replies. */
static inline void proto_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t proto_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif /* SCTPM_EMULATOR_PROTO_H */
