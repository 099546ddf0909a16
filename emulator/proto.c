/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <tss2/tss2_mu.h>

#include "proto.h"

/* A TPM command header: tag (2), commandSize (4), commandCode (4). */
#define TPM_HEADER 10

enum proto_status proto_parse_data(const uint8_t *buf, size_t len, size_t max_command,
                                   size_t max_hash, struct proto_data_msg *msg, size_t *used,
                                   const char **why)
{
    uint32_t code, size;

    *msg = (struct proto_data_msg){0};
    *used = 0;
    if (len == 0) {
        return PROTO_NEED_MORE;
    }
    if (buf[0] == 0x80) {
        size_t off = 2;
        if (len < TPM_HEADER) {
            return PROTO_NEED_MORE;
        }
        (void)Tss2_MU_UINT32_Unmarshal(buf, len, &off, &size);
        if (size < TPM_HEADER) {
            *why = "raw TPM command size is smaller than a command header";
            return PROTO_ERROR;
        }
        if (size > max_command) {
            *why = "raw TPM command size exceeds the command size limit";
            return PROTO_ERROR;
        }
        if (len < size) {
            return PROTO_NEED_MORE;
        }
        msg->raw = 1;
        msg->code = MSSIM_SEND_COMMAND;
        msg->data = buf;
        msg->len = size;
        *used = size;
        return PROTO_OK;
    }
    if (len < 4) {
        return PROTO_NEED_MORE;
    }
    code = proto_get_u32(buf);
    msg->code = code;
    switch (code) {
    case MSSIM_SEND_COMMAND:
        if (len < 9) {
            return PROTO_NEED_MORE;
        }
        msg->locality = buf[4];
        size = proto_get_u32(buf + 5);
        if (size < TPM_HEADER) {
            *why = "SEND_COMMAND size is smaller than a TPM command header";
            return PROTO_ERROR;
        }
        if (size > max_command) {
            *why = "SEND_COMMAND size exceeds the command size limit";
            return PROTO_ERROR;
        }
        if (len - 9 < size) {
            return PROTO_NEED_MORE;
        }
        msg->data = buf + 9;
        msg->len = size;
        *used = 9 + (size_t)size;
        return PROTO_OK;
    case MSSIM_REMOTE_HANDSHAKE:
    case MSSIM_SET_ALTERNATIVE_RESULT:
        if (len < 8) {
            return PROTO_NEED_MORE;
        }
        msg->value = proto_get_u32(buf + 4);
        if (code == MSSIM_REMOTE_HANDSHAKE && msg->value == 0) {
            *why = "REMOTE_HANDSHAKE with client version 0";
            return PROTO_ERROR;
        }
        *used = 8;
        return PROTO_OK;
    case MSSIM_HASH_DATA:
        if (len < 8) {
            return PROTO_NEED_MORE;
        }
        size = proto_get_u32(buf + 4);
        if (size > max_hash) {
            *why = "HASH_DATA length exceeds the limit";
            return PROTO_ERROR;
        }
        if (len - 8 < size) {
            return PROTO_NEED_MORE;
        }
        msg->data = buf + 8;
        msg->len = size;
        *used = 8 + (size_t)size;
        return PROTO_OK;
    case MSSIM_HASH_START:
    case MSSIM_HASH_END:
    case MSSIM_SESSION_END:
    case MSSIM_STOP:
        *used = 4;
        return PROTO_OK;
    default:
        *why = "unknown command-channel code";
        return PROTO_ERROR;
    }
}

enum proto_dialect proto_ctrl_dialect(const uint8_t *buf, size_t len)
{
    uint32_t code;

    if (len < 4) {
        return PROTO_DIALECT_UNKNOWN;
    }
    code = proto_get_u32(buf);
    if (code == SWTPM_SET_LOCALITY || (code == SWTPM_INIT && len >= 8)) {
        return PROTO_DIALECT_SWTPM;
    }
    return PROTO_DIALECT_MSSIM;
}

enum proto_status proto_parse_mssim_ctrl(const uint8_t *buf, size_t len, struct proto_ctrl_msg *msg,
                                         size_t *used, const char **why)
{
    *msg = (struct proto_ctrl_msg){0};
    *used = 0;
    if (len < 4) {
        return PROTO_NEED_MORE;
    }
    msg->code = proto_get_u32(buf);
    switch (msg->code) {
    case MSSIM_POWER_ON:
    case MSSIM_POWER_OFF:
    case MSSIM_PHYS_PRES_ON:
    case MSSIM_PHYS_PRES_OFF:
    case MSSIM_CANCEL_ON:
    case MSSIM_CANCEL_OFF:
    case MSSIM_NV_ON:
    case MSSIM_NV_OFF:
    case MSSIM_KEY_CACHE_ON:
    case MSSIM_KEY_CACHE_OFF:
    case MSSIM_SIGNAL_RESET:
    case MSSIM_SIGNAL_RESTART:
    case MSSIM_SESSION_END:
    case MSSIM_STOP:
    case MSSIM_GET_COMMAND_RESPONSE_SIZES:
    case MSSIM_TEST_FAILURE_MODE:
        *used = 4;
        return PROTO_OK;
    case MSSIM_ACT_GET_SIGNALED:
        if (len < 8) {
            return PROTO_NEED_MORE;
        }
        msg->arg[0] = proto_get_u32(buf + 4);
        *used = 8;
        return PROTO_OK;
    default:
        *why = "unknown platform-channel code";
        return PROTO_ERROR;
    }
}

enum proto_status proto_parse_swtpm_ctrl(const uint8_t *buf, size_t len, size_t max_blob,
                                         struct proto_ctrl_msg *msg, size_t *used, const char **why)
{
    size_t need;

    *msg = (struct proto_ctrl_msg){0};
    *used = 0;
    if (len < 4) {
        return PROTO_NEED_MORE;
    }
    msg->code = proto_get_u32(buf);
    switch (msg->code) {
    case SWTPM_GET_CAPABILITY:
    case SWTPM_SHUTDOWN:
    case SWTPM_GET_TPMESTABLISHED:
    case SWTPM_HASH_START:
    case SWTPM_HASH_END:
    case SWTPM_CANCEL_TPM_CMD:
    case SWTPM_STORE_VOLATILE:
    case SWTPM_STOP:
    case SWTPM_GET_CONFIG:
    case SWTPM_SET_DATAFD:
        need = 4;
        break;
    case SWTPM_SET_LOCALITY:
    case SWTPM_RESET_TPMESTABLISHED:
        need = 5;
        if (len >= need) {
            msg->byte = buf[4];
        }
        break;
    case SWTPM_INIT:
    case SWTPM_SET_BUFFERSIZE:
    case SWTPM_LOCK_STORAGE:
        need = 8;
        if (len >= need) {
            msg->arg[0] = proto_get_u32(buf + 4);
        }
        break;
    case SWTPM_GET_STATEBLOB:
        need = 16;
        if (len >= need) {
            msg->arg[0] = proto_get_u32(buf + 4);  /* flags */
            msg->arg[1] = proto_get_u32(buf + 8);  /* type */
            msg->arg[2] = proto_get_u32(buf + 12); /* offset */
        }
        break;
    case SWTPM_GET_INFO:
        need = 20;
        if (len >= need) {
            msg->arg64 = (uint64_t)proto_get_u32(buf + 4) << 32 | proto_get_u32(buf + 8);
            msg->arg[0] = proto_get_u32(buf + 12); /* offset */
        }
        break;
    case SWTPM_HASH_DATA:
        if (len < 8) {
            return PROTO_NEED_MORE;
        }
        msg->len = proto_get_u32(buf + 4);
        if (msg->len > 4096) {
            *why = "HASH_DATA length exceeds 4096 bytes";
            return PROTO_ERROR;
        }
        need = 8 + msg->len;
        msg->data = buf + 8;
        break;
    case SWTPM_SET_STATEBLOB:
        if (len < 16) {
            return PROTO_NEED_MORE;
        }
        msg->arg[0] = proto_get_u32(buf + 4); /* flags */
        msg->arg[1] = proto_get_u32(buf + 8); /* type */
        msg->len = proto_get_u32(buf + 12);
        if (msg->len > max_blob) {
            *why = "SET_STATEBLOB length exceeds the state size limit";
            return PROTO_ERROR;
        }
        need = 16 + msg->len;
        msg->data = buf + 16;
        break;
    default:
        *why = "unknown control-channel code";
        return PROTO_ERROR;
    }
    if (len < need) {
        return PROTO_NEED_MORE;
    }
    *used = need;
    return PROTO_OK;
}
