/* SPDX-License-Identifier: BSD-2-Clause */
/* shim/connstr: device connection strings, every field and every way they go wrong. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connstr.h"

/* base64 of the 32 bytes 0x00..0x1f. */
#define KEY32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* base64 of 16 zero bytes, and of 64 and 65 zero bytes. */
#define KEY16 "AAAAAAAAAAAAAAAAAAAAAA=="
#define KEY64                                                                                      \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
#define KEY65                                                                                      \
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

static char err[256];

START_TEST(test_device)
{
    struct connstr c;

    ck_assert_int_eq(connstr_parse("HostName=hub.azure-devices.net;DeviceId=dev-01;"
                                   "SharedAccessKey=" KEY32,
                                   &c, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(c.host, "hub.azure-devices.net");
    ck_assert_str_eq(c.device_id, "dev-01");
    ck_assert_str_eq(c.module_id, "");
    ck_assert_uint_eq(c.key_len, 32);
    for (int i = 0; i < 32; i++) {
        ck_assert_uint_eq(c.key[i], i);
    }
    ck_assert_str_eq(err, "");
    connstr_wipe(&c);
    ck_assert_uint_eq(c.key_len, 0);
    ck_assert_uint_eq(c.key[0] | c.key[1] | c.key[31], 0);
}
END_TEST

START_TEST(test_module_any_order_any_case_trailing)
{
    struct connstr c;

    ck_assert_int_eq(connstr_parse("sharedaccesskey=" KEY16 ";MODULEID=m1;deviceid=d;"
                                   "hostname=h.example;\r\n",
                                   &c, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(c.host, "h.example");
    ck_assert_str_eq(c.device_id, "d");
    ck_assert_str_eq(c.module_id, "m1");
    ck_assert_uint_eq(c.key_len, 16);
    connstr_wipe(&c);
    ck_assert_int_eq(
        connstr_parse("HostName=h.example;DeviceId=d;SharedAccessKey=" KEY64, &c, err, sizeof(err)),
        SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(c.key_len, 64);
    connstr_wipe(&c);
}
END_TEST

START_TEST(test_id_characters)
{
    struct connstr c;

    ck_assert_int_eq(connstr_parse("HostName=h.example;DeviceId=a-.+%_#*?!(),:=@$'z;"
                                   "SharedAccessKey=" KEY32,
                                   &c, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(c.device_id, "a-.+%_#*?!(),:=@$'z");
    connstr_wipe(&c);
}
END_TEST

/* Each bad input and the words its error must contain. */
static const struct {
    const char *in;
    enum sctpm_rc rc;
    const char *says;
} bad[] = {
    {"", SCTPM_RC_BAD_FORMAT, "empty"},
    {"\n", SCTPM_RC_BAD_FORMAT, "empty"},
    {"DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT, "HostName is missing"},
    {"HostName=h.example;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT, "DeviceId is missing"},
    {"HostName=h.example;DeviceId=d", SCTPM_RC_BAD_FORMAT, "SharedAccessKey is missing"},
    {"HostName=h.example;HostName=i.example;DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "HostName appears twice"},
    {"HostName=h.example;DeviceId=d;deviceid=e;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "DeviceId appears twice"},
    {"HostName=h.example;DeviceId=d;SharedAccessKey=" KEY32 ";SharedAccessKey=" KEY32,
     SCTPM_RC_BAD_FORMAT, "SharedAccessKey appears twice"},
    {"HostName=h.example;DeviceId=d;SharedAccessKey=not-base64!", SCTPM_RC_BAD_FORMAT,
     "SharedAccessKey is not valid base64"},
    {"HostName=h.example;DeviceId=d;SharedAccessKey=AAAA", SCTPM_RC_BAD_FORMAT,
     "decodes to 3 bytes"},
    {"HostName=h.example;DeviceId=d;SharedAccessKey=" KEY65, SCTPM_RC_BAD_FORMAT,
     "decodes to 65 bytes"},
    {"HostName=h.example;DeviceId=d;SharedAccessKey=", SCTPM_RC_BAD_FORMAT,
     "SharedAccessKey is empty"},
    {"HostName=;DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT, "HostName is empty"},
    {"HostName=h_x.example;DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "HostName is not a valid DNS host name"},
    {"HostName=-h.example;DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "not a valid DNS host name"},
    {"HostName=h..example;DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "not a valid DNS host name"},
    {"HostName=h.example;DeviceId=d/e;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "DeviceId has a character IoT Hub does not allow"},
    {"HostName=h.example;DeviceId=d;ModuleId=m&;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "ModuleId has a character"},
    {"HostName=h.example;DeviceId=d;SharedAccessKeyName=device;SharedAccessKey=" KEY32,
     SCTPM_RC_BAD_FORMAT, "SharedAccessKeyName names a hub access policy"},
    {"HostName=h.example;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=x",
     SCTPM_RC_BAD_FORMAT, "whitespace"},
    {"HostName=h.example;DeviceId=d;SharedAccessSignature=x", SCTPM_RC_BAD_FORMAT,
     "SharedAccessSignature carries a token"},
    {"HostName=h.example;DeviceId=d;x509=true", SCTPM_RC_BAD_FORMAT, "x509 selects an X.509"},
    {"HostName=h.example;DeviceId=d;GatewayHostName=g;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "GatewayHostName is not stored in the TPM"},
    {"HostName=h.example;DeviceId=d;Colour=blue;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT,
     "unknown field \"Colour\""},
    {"HostName=h.example;;DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT, "empty field"},
    {";HostName=h.example;DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT, "empty field"},
    {"HostName=h.example;DeviceId;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT, "has no '='"},
    {"HostName=h.example; DeviceId=d;SharedAccessKey=" KEY32, SCTPM_RC_BAD_FORMAT, "whitespace"},
};

START_TEST(test_bad)
{
    struct connstr c;

    ck_assert_int_eq(connstr_parse(bad[_i].in, &c, err, sizeof(err)), bad[_i].rc);
    ck_assert_msg(strstr(err, bad[_i].says) != NULL, "input %d: error \"%s\" lacks \"%s\"", _i, err,
                  bad[_i].says);
    /* The error never quotes the key, and the failed parse leaves nothing behind. */
    ck_assert_ptr_null(strstr(err, KEY32));
    ck_assert_uint_eq(c.key_len, 0);
    ck_assert_str_eq(c.host, "");
}
END_TEST

START_TEST(test_limits)
{
    char id[SCTPM_ID_MAX + 2], host[SCTPM_HOST_MAX + 2], in[2048];
    struct connstr c;

    memset(id, 'a', SCTPM_ID_MAX);
    id[SCTPM_ID_MAX] = '\0';
    snprintf(in, sizeof(in), "HostName=h.example;DeviceId=%s;SharedAccessKey=" KEY32, id);
    ck_assert_int_eq(connstr_parse(in, &c, err, sizeof(err)), SCTPM_RC_SUCCESS);
    connstr_wipe(&c);
    strcat(id, "a");
    snprintf(in, sizeof(in), "HostName=h.example;DeviceId=%s;SharedAccessKey=" KEY32, id);
    ck_assert_int_eq(connstr_parse(in, &c, err, sizeof(err)), SCTPM_RC_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err, "DeviceId is 129 characters"));

    /* 255 characters of labels: the longest DNS name. */
    memset(host, 'a', SCTPM_HOST_MAX);
    for (int i = 63; i < SCTPM_HOST_MAX; i += 64) {
        host[i] = '.';
    }
    host[SCTPM_HOST_MAX] = '\0';
    snprintf(in, sizeof(in), "HostName=%s;DeviceId=d;SharedAccessKey=" KEY32, host);
    ck_assert_int_eq(connstr_parse(in, &c, err, sizeof(err)), SCTPM_RC_SUCCESS);
    connstr_wipe(&c);
    /* Host, device and module all at their limits exceed the 512-byte NV index. */
    memset(id, 'a', SCTPM_ID_MAX);
    id[SCTPM_ID_MAX] = '\0';
    snprintf(in, sizeof(in), "HostName=%s;DeviceId=%s;ModuleId=%s;SharedAccessKey=" KEY32, host, id,
             id);
    ck_assert_int_eq(connstr_parse(in, &c, err, sizeof(err)), SCTPM_RC_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err, "HostName is too long"));
    ck_assert_ptr_nonnull(strstr(err, "512-byte NV index"));
    host[SCTPM_HOST_MAX] = 'a';
    host[SCTPM_HOST_MAX + 1] = '\0';
    snprintf(in, sizeof(in), "HostName=%s;DeviceId=d;SharedAccessKey=" KEY32, host);
    ck_assert_int_eq(connstr_parse(in, &c, err, sizeof(err)), SCTPM_RC_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err, "HostName is 256 characters"));
}
END_TEST

START_TEST(test_uri)
{
    char out[16];

    ck_assert_int_eq(connstr_uri("h", "d", NULL, out, sizeof(out)), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "h/d");
    ck_assert_int_eq(connstr_uri("h", "d", "m", out, sizeof(out)), SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "h/d/m");
    ck_assert_int_eq(connstr_uri("hhhhhhhh", "dddd", "mmm", out, sizeof(out)), SCTPM_RC_TOO_LARGE);
    ck_assert_str_eq(out, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("connstr");
    TCase *tc = tcase_create("parse");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_device);
    tcase_add_test(tc, test_module_any_order_any_case_trailing);
    tcase_add_test(tc, test_id_characters);
    tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_uri);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
