/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* TPM2_GetRandom(8): tag 8001, size 12, code 0000017b, bytesRequested 0008. */
static const uint8_t getrandom[] = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};

START_TEST(test_raw_command)
{
    struct proto_data_msg m;
    const char *why = NULL;
    size_t used;

    ck_assert_int_eq(proto_parse_data(getrandom, sizeof(getrandom), 4096, 4096, &m, &used, &why),
                     PROTO_OK);
    ck_assert(m.raw);
    ck_assert_uint_eq(m.len, 12);
    ck_assert_uint_eq(used, 12);
    ck_assert_ptr_eq(m.data, getrandom);
}
END_TEST

START_TEST(test_raw_command_every_prefix_needs_more)
{
    struct proto_data_msg m;
    const char *why = NULL;
    size_t used;

    for (size_t n = 0; n < sizeof(getrandom); n++) {
        ck_assert_int_eq(proto_parse_data(getrandom, n, 4096, 4096, &m, &used, &why),
                         PROTO_NEED_MORE);
    }
}
END_TEST

START_TEST(test_raw_command_bad_sizes)
{
    uint8_t small[12], big[12];
    struct proto_data_msg m;
    const char *why = NULL;
    size_t used;

    memcpy(small, getrandom, 12);
    small[5] = 9; /* smaller than a header */
    ck_assert_int_eq(proto_parse_data(small, 12, 4096, 4096, &m, &used, &why), PROTO_ERROR);
    ck_assert_ptr_nonnull(why);
    memcpy(big, getrandom, 12);
    big[2] = 0x7f; /* 2 GiB: refused before anything is buffered */
    why = NULL;
    ck_assert_int_eq(proto_parse_data(big, 10, 4096, 4096, &m, &used, &why), PROTO_ERROR);
    ck_assert_str_eq(why, "raw TPM command size exceeds the command size limit");
}
END_TEST

START_TEST(test_send_command)
{
    uint8_t buf[9 + 12 + 4];
    struct proto_data_msg m;
    const char *why = NULL;
    size_t used;

    proto_put_u32(buf, MSSIM_SEND_COMMAND);
    buf[4] = 3;
    proto_put_u32(buf + 5, 12);
    memcpy(buf + 9, getrandom, 12);
    proto_put_u32(buf + 21, MSSIM_SESSION_END); /* a second message behind it */
    for (size_t n = 0; n < 21; n++) {
        ck_assert_int_eq(proto_parse_data(buf, n, 4096, 4096, &m, &used, &why), PROTO_NEED_MORE);
    }
    ck_assert_int_eq(proto_parse_data(buf, sizeof(buf), 4096, 4096, &m, &used, &why), PROTO_OK);
    ck_assert(!m.raw);
    ck_assert_uint_eq(m.code, MSSIM_SEND_COMMAND);
    ck_assert_uint_eq(m.locality, 3);
    ck_assert_uint_eq(m.len, 12);
    ck_assert_uint_eq(used, 21);
    ck_assert_mem_eq(m.data, getrandom, 12);
    ck_assert_int_eq(proto_parse_data(buf + used, sizeof(buf) - used, 4096, 4096, &m, &used, &why),
                     PROTO_OK);
    ck_assert_uint_eq(m.code, MSSIM_SESSION_END);
    ck_assert_uint_eq(used, 4);
}
END_TEST

START_TEST(test_send_command_oversized)
{
    uint8_t buf[9];
    struct proto_data_msg m;
    const char *why = NULL;
    size_t used;

    proto_put_u32(buf, MSSIM_SEND_COMMAND);
    buf[4] = 0;
    proto_put_u32(buf + 5, 0xffffffff);
    ck_assert_int_eq(proto_parse_data(buf, 9, 4096, 4096, &m, &used, &why), PROTO_ERROR);
    ck_assert_str_eq(why, "SEND_COMMAND size exceeds the command size limit");
    proto_put_u32(buf + 5, 4097);
    ck_assert_int_eq(proto_parse_data(buf, 9, 4096, 4096, &m, &used, &why), PROTO_ERROR);
    proto_put_u32(buf + 5, 0);
    ck_assert_int_eq(proto_parse_data(buf, 9, 4096, 4096, &m, &used, &why), PROTO_ERROR);
}
END_TEST

START_TEST(test_handshake_and_hash)
{
    uint8_t buf[16];
    struct proto_data_msg m;
    const char *why = NULL;
    size_t used;

    proto_put_u32(buf, MSSIM_REMOTE_HANDSHAKE);
    proto_put_u32(buf + 4, 1);
    ck_assert_int_eq(proto_parse_data(buf, 8, 4096, 4096, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.value, 1);
    proto_put_u32(buf + 4, 0);
    ck_assert_int_eq(proto_parse_data(buf, 8, 4096, 4096, &m, &used, &why), PROTO_ERROR);

    proto_put_u32(buf, MSSIM_HASH_DATA);
    proto_put_u32(buf + 4, 3);
    memcpy(buf + 8, "abc", 3);
    ck_assert_int_eq(proto_parse_data(buf, 10, 4096, 4096, &m, &used, &why), PROTO_NEED_MORE);
    ck_assert_int_eq(proto_parse_data(buf, 11, 4096, 4096, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.len, 3);
    ck_assert_uint_eq(used, 11);
    proto_put_u32(buf + 4, 5000);
    ck_assert_int_eq(proto_parse_data(buf, 8, 4096, 4096, &m, &used, &why), PROTO_ERROR);
}
END_TEST

START_TEST(test_unknown_data_code)
{
    uint8_t buf[4];
    struct proto_data_msg m;
    const char *why = NULL;
    size_t used;

    proto_put_u32(buf, 0x12345);
    ck_assert_int_eq(proto_parse_data(buf, 4, 4096, 4096, &m, &used, &why), PROTO_ERROR);
    ck_assert_str_eq(why, "unknown command-channel code");
    /* A TPM 1.2 command (tag 00c1) is not spoken here. */
    buf[0] = 0;
    buf[1] = 0xc1;
    buf[2] = 0;
    buf[3] = 0;
    ck_assert_int_eq(proto_parse_data(buf, 4, 4096, 4096, &m, &used, &why), PROTO_ERROR);
}
END_TEST

START_TEST(test_ctrl_dialect)
{
    uint8_t buf[8];

    proto_put_u32(buf, MSSIM_POWER_ON);
    ck_assert_int_eq(proto_ctrl_dialect(buf, 3), PROTO_DIALECT_UNKNOWN);
    ck_assert_int_eq(proto_ctrl_dialect(buf, 4), PROTO_DIALECT_MSSIM);
    proto_put_u32(buf, MSSIM_NV_ON);
    ck_assert_int_eq(proto_ctrl_dialect(buf, 4), PROTO_DIALECT_MSSIM);
    proto_put_u32(buf, SWTPM_SET_LOCALITY);
    buf[4] = 0;
    ck_assert_int_eq(proto_ctrl_dialect(buf, 5), PROTO_DIALECT_SWTPM);
    /* INIT is swtpm only with its flags in the same write; a bare 2 is mssim POWER_OFF. */
    proto_put_u32(buf, 2);
    ck_assert_int_eq(proto_ctrl_dialect(buf, 4), PROTO_DIALECT_MSSIM);
    proto_put_u32(buf + 4, 1);
    ck_assert_int_eq(proto_ctrl_dialect(buf, 8), PROTO_DIALECT_SWTPM);
}
END_TEST

START_TEST(test_mssim_ctrl)
{
    uint8_t buf[8];
    struct proto_ctrl_msg m;
    const char *why = NULL;
    size_t used;

    proto_put_u32(buf, MSSIM_NV_ON);
    ck_assert_int_eq(proto_parse_mssim_ctrl(buf, 4, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.code, MSSIM_NV_ON);
    ck_assert_uint_eq(used, 4);
    proto_put_u32(buf, MSSIM_ACT_GET_SIGNALED);
    proto_put_u32(buf + 4, 0x40000110);
    ck_assert_int_eq(proto_parse_mssim_ctrl(buf, 7, &m, &used, &why), PROTO_NEED_MORE);
    ck_assert_int_eq(proto_parse_mssim_ctrl(buf, 8, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.arg[0], 0x40000110);
    proto_put_u32(buf, 99);
    ck_assert_int_eq(proto_parse_mssim_ctrl(buf, 4, &m, &used, &why), PROTO_ERROR);
    ck_assert_str_eq(why, "unknown platform-channel code");
}
END_TEST

START_TEST(test_swtpm_ctrl_fixed)
{
    uint8_t buf[32] = {0};
    struct proto_ctrl_msg m;
    const char *why = NULL;
    size_t used;

    proto_put_u32(buf, SWTPM_SET_LOCALITY);
    buf[4] = 2;
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 4, 1024, &m, &used, &why), PROTO_NEED_MORE);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 5, 1024, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.byte, 2);
    ck_assert_uint_eq(used, 5);

    proto_put_u32(buf, SWTPM_GET_STATEBLOB);
    proto_put_u32(buf + 4, 1);
    proto_put_u32(buf + 8, 2);
    proto_put_u32(buf + 12, 77);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 15, 1024, &m, &used, &why), PROTO_NEED_MORE);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 16, 1024, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.arg[0], 1);
    ck_assert_uint_eq(m.arg[1], 2);
    ck_assert_uint_eq(m.arg[2], 77);

    proto_put_u32(buf, SWTPM_GET_INFO);
    proto_put_u32(buf + 4, 0);
    proto_put_u32(buf + 8, 3);
    proto_put_u32(buf + 12, 5);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 20, 1024, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.arg64, 3);
    ck_assert_uint_eq(m.arg[0], 5);
    ck_assert_uint_eq(used, 20);

    proto_put_u32(buf, 0x77);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 4, 1024, &m, &used, &why), PROTO_ERROR);
}
END_TEST

START_TEST(test_swtpm_ctrl_variable)
{
    uint8_t buf[64] = {0};
    struct proto_ctrl_msg m;
    const char *why = NULL;
    size_t used;

    proto_put_u32(buf, SWTPM_SET_STATEBLOB);
    proto_put_u32(buf + 4, 0);
    proto_put_u32(buf + 8, 1);
    proto_put_u32(buf + 12, 20);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 35, 1024, &m, &used, &why), PROTO_NEED_MORE);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 36, 1024, &m, &used, &why), PROTO_OK);
    ck_assert_uint_eq(m.len, 20);
    ck_assert_ptr_eq(m.data, buf + 16);
    proto_put_u32(buf + 12, 2000);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 16, 1024, &m, &used, &why), PROTO_ERROR);

    proto_put_u32(buf, SWTPM_HASH_DATA);
    proto_put_u32(buf + 4, 4097);
    ck_assert_int_eq(proto_parse_swtpm_ctrl(buf, 8, 1024, &m, &used, &why), PROTO_ERROR);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("framing");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_raw_command);
    tcase_add_test(tc, test_raw_command_every_prefix_needs_more);
    tcase_add_test(tc, test_raw_command_bad_sizes);
    tcase_add_test(tc, test_send_command);
    tcase_add_test(tc, test_send_command_oversized);
    tcase_add_test(tc, test_handshake_and_hash);
    tcase_add_test(tc, test_unknown_data_code);
    tcase_add_test(tc, test_ctrl_dialect);
    tcase_add_test(tc, test_mssim_ctrl);
    tcase_add_test(tc, test_swtpm_ctrl_fixed);
    tcase_add_test(tc, test_swtpm_ctrl_variable);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
