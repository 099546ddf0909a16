/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hub API without a network: endpoint parsing, URL and path building (device ids that need
 * encoding, modules), the settle URLs, the classification of every status the client meets
 * (with Retry-After in both forms and both error body formats), and the --verbose redaction.
 */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubapi-priv.h"

static const char *why;

START_TEST(test_base_url)
{
    char out[512];

    ck_assert_int_eq(hubapi_base_url(NULL, "myhub.azure-devices.net", out, sizeof(out), &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "https://myhub.azure-devices.net");
    ck_assert_int_eq(hubapi_base_url("https://127.0.0.1:8443", "h", out, sizeof(out), &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "https://127.0.0.1:8443");
    ck_assert_int_eq(hubapi_base_url("https://gw.local/", "h", out, sizeof(out), &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "https://gw.local");
    ck_assert_int_eq(hubapi_base_url("HTTPS://[::1]:443", "h", out, sizeof(out), &why),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(out, "https://[::1]:443");
    ck_assert_int_eq(hubapi_base_url("https://[::1]", "h", out, sizeof(out), &why),
                     SCTPM_RC_SUCCESS);
}
END_TEST

START_TEST(test_bad_base_urls)
{
    static const char *const bad[] = {
        "http://127.0.0.1:8443",
        "127.0.0.1:8443",
        "https://",
        "https://:8443",
        "https://h:",
        "https://h:0",
        "https://h:65536",
        "https://h:99999999999999999999",
        "https://h:80a",
        "https://h/path",
        "https://h:1/devices",
        "https://h?x=1",
        "https://user@h",
        "https://h#frag",
        "https://h x",
        "https://[::1",
        "https://[]:1",
        "https://[::1]x",
    };
    char out[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        ck_assert_msg(hubapi_base_url(bad[i], "h", out, sizeof(out), &why) != SCTPM_RC_SUCCESS,
                      "accepted %s", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

START_TEST(test_device_urls)
{
    struct hubapi a;
    char url[HUBAPI_URL_MAX];

    ck_assert_int_eq(
        hubapi_init(&a, NULL, NULL, "https://127.0.0.1:8443", "hub.example", "dev-01", "", &why),
        SCTPM_RC_SUCCESS);
    ck_assert_str_eq(a.base, "https://127.0.0.1:8443");
    ck_assert_str_eq(
        a.events_url,
        "https://127.0.0.1:8443/devices/dev-01/messages/events?api-version=" HUBAPI_VERSION);
    ck_assert_str_eq(a.c2d_prefix, "https://127.0.0.1:8443/devices/dev-01/messages/devicebound");
    ck_assert_str_eq(a.to, "/devices/dev-01/messages/events");
    ck_assert_int_eq(a.is_module, 0);
    ck_assert_int_eq(hubapi_settle_url(&a, "lock-1", HUBAPI_COMPLETE, url, sizeof(url)),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(url, "https://127.0.0.1:8443/devices/dev-01/messages/devicebound/lock-1"
                          "?api-version=" HUBAPI_VERSION);
    ck_assert_int_eq(hubapi_settle_url(&a, "lock-1", HUBAPI_REJECT, url, sizeof(url)),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(url, "https://127.0.0.1:8443/devices/dev-01/messages/devicebound/lock-1"
                          "?api-version=" HUBAPI_VERSION "&reject");
    ck_assert_int_eq(hubapi_settle_url(&a, "lock-1", HUBAPI_ABANDON, url, sizeof(url)),
                     SCTPM_RC_SUCCESS);
    ck_assert_str_eq(url, "https://127.0.0.1:8443/devices/dev-01/messages/devicebound/lock-1"
                          "/abandon?api-version=" HUBAPI_VERSION);
}
END_TEST

START_TEST(test_default_endpoint_and_encoding)
{
    struct hubapi a;

    /* Azure allows these characters in ids; the path carries them percent-encoded. */
    ck_assert_int_eq(
        hubapi_init(&a, NULL, NULL, NULL, "hub.azure-devices.net", "a b#c?d/e%f", NULL, &why),
        SCTPM_RC_SUCCESS);
    ck_assert_str_eq(a.events_url, "https://hub.azure-devices.net/devices/a%20b%23c%3fd%2fe%25f/"
                                   "messages/events?api-version=" HUBAPI_VERSION);
    /* iothub-to names the device as it is. */
    ck_assert_str_eq(a.to, "/devices/a b#c?d/e%f/messages/events");
}
END_TEST

START_TEST(test_module_urls)
{
    struct hubapi a;

    ck_assert_int_eq(
        hubapi_init(&a, NULL, NULL, "https://gw:8443", "hub.example", "dev", "mod:1", &why),
        SCTPM_RC_SUCCESS);
    ck_assert_int_eq(a.is_module, 1);
    ck_assert_str_eq(a.events_url, "https://gw:8443/devices/dev/modules/mod%3a1/messages/events"
                                   "?api-version=" HUBAPI_VERSION);
    ck_assert_str_eq(a.to, "/devices/dev/modules/mod:1/messages/events");
}
END_TEST

START_TEST(test_init_refuses_bad_endpoint)
{
    struct hubapi a;

    why = NULL;
    ck_assert_int_eq(hubapi_init(&a, NULL, NULL, "http://x", "h", "d", NULL, &why),
                     SCTPM_RC_BAD_ARGUMENT);
    ck_assert_ptr_nonnull(why);
}
END_TEST

/* A response with a status, optional headers ("Name", "value", ... NULL) and a body. */
static void response(struct http_response *r, long status, const char *body, ...)
{
    va_list ap;
    const char *name;

    memset(r, 0, sizeof(*r));
    r->status = status;
    if (body != NULL) {
        r->body = strdup(body);
        r->body_len = strlen(body);
    }
    va_start(ap, body);
    while ((name = va_arg(ap, const char *)) != NULL) {
        r->headers[r->nheaders].name = strdup(name);
        r->headers[r->nheaders].value = strdup(va_arg(ap, const char *));
        r->nheaders++;
    }
    va_end(ap);
}

START_TEST(test_classify_success)
{
    struct http_response r;
    struct hubapi_result res;

    response(&r, 204, NULL, NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_SUCCESS);
    ck_assert_int_eq(res.status, 204);
    ck_assert_int_eq(res.retry_after_ms, -1);
    http_response_clear(&r);
    response(&r, 200, "body", NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_SUCCESS);
    http_response_clear(&r);
}
END_TEST

START_TEST(test_classify_401)
{
    struct http_response r;
    struct hubapi_result res;

    /* sctpm-hub's (and IoT Hub's) error body, both formats. */
    response(&r, 401,
             "{\"Message\":\"ErrorCode:IotHubUnauthorizedAccess;Unauthorized: signature mismatch\","
             "\"ExceptionMessage\":\"Tracking ID:x\",\"errorCode\":401002,"
             "\"message\":\"Unauthorized: signature mismatch\"}",
             "iothub-errorcode", "IotHubUnauthorizedAccess", NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_UNAUTHORIZED);
    ck_assert_int_eq(res.retryable, 0);
    ck_assert_str_eq(res.error_code, "IotHubUnauthorizedAccess");
    ck_assert_ptr_nonnull(strstr(res.message, "401 IotHubUnauthorizedAccess: Unauthorized: "
                                              "signature mismatch"));
    http_response_clear(&r);
    /* The older format alone. */
    response(&r, 401, "{\"Message\":\"ErrorCode:IotHubUnauthorized;Expired\"}", NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_ptr_nonnull(strstr(res.message, "401: Expired"));
    http_response_clear(&r);
}
END_TEST

START_TEST(test_classify_retryable)
{
    static const long statuses[] = {429, 500, 502, 503, 504, 408, 403};
    struct http_response r;
    struct hubapi_result res;

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        response(&r, statuses[i], "not json", NULL);
        hubapi_classify(&r, 0, &res);
        ck_assert_int_eq(res.rc, SCTPM_RC_SERVER);
        ck_assert_int_eq(res.retryable, 1);
        ck_assert_int_eq(res.retry_after_ms, -1);
        http_response_clear(&r);
    }
    response(&r, 429, NULL, "Retry-After", "7", "iothub-errorcode", "ThrottlingException", NULL);
    hubapi_classify(&r, 1000, &res);
    ck_assert_int_eq(res.retry_after_ms, 7000);
    ck_assert_ptr_nonnull(strstr(res.message, "throttling"));
    http_response_clear(&r);
    /* 1994-11-06 08:49:37 is 784111777: twenty seconds after "now". */
    response(&r, 503, NULL, "retry-after", "Sun, 06 Nov 1994 08:49:37 GMT", NULL);
    hubapi_classify(&r, 784111757, &res);
    ck_assert_int_eq(res.retry_after_ms, 20000);
    http_response_clear(&r);
    response(&r, 503, NULL, "Retry-After", "soon", NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.retry_after_ms, -1);
    ck_assert_int_eq(res.retryable, 1);
    http_response_clear(&r);
}
END_TEST

START_TEST(test_classify_final)
{
    struct http_response r;
    struct hubapi_result res;

    response(&r, 400, "{\"message\":\"invalid message id\"}", NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_BAD_FORMAT);
    ck_assert_int_eq(res.retryable, 0);
    ck_assert_ptr_nonnull(strstr(res.message, "invalid message id"));
    http_response_clear(&r);
    response(&r, 413, NULL, NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_TOO_LARGE);
    http_response_clear(&r);
    response(&r, 412, NULL, "iothub-errorcode", "DeviceMessageLockLost", NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_EXPIRED);
    ck_assert_str_eq(res.error_code, "DeviceMessageLockLost");
    http_response_clear(&r);
    response(&r, 404, NULL, NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(res.retryable, 0);
    http_response_clear(&r);
    response(&r, 405, NULL, NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_int_eq(res.rc, SCTPM_RC_SERVER);
    ck_assert_int_eq(res.retryable, 0);
    http_response_clear(&r);
}
END_TEST

START_TEST(test_classify_hostile_text)
{
    struct http_response r;
    struct hubapi_result res;

    /* Control characters from the server never reach the terminal. */
    response(&r, 400, "{\"message\":\"a\\u001b[2Jb\\nc\"}", "iothub-errorcode", "X\x1b", NULL);
    hubapi_classify(&r, 0, &res);
    ck_assert_ptr_null(strchr(res.message, '\x1b'));
    ck_assert_ptr_null(strchr(res.message, '\n'));
    ck_assert_ptr_null(strchr(res.error_code, '\x1b'));
    http_response_clear(&r);
}
END_TEST

static void redact(const char *in, char *out, size_t size)
{
    http_redact(in, strlen(in), out, size);
}

START_TEST(test_redaction)
{
    char out[512];

    redact("Authorization: SharedAccessSignature sr=hub%2fdevices%2fd&sig=AbC%2bdEf%3d&se=1700000"
           "000",
           out, sizeof(out));
    ck_assert_str_eq(out, "Authorization: SharedAccessSignature sr=hub%2fdevices%2fd&sig=[redacted]"
                          "&se=1700000000");
    /* sig last, or first, or in another case of the header name. */
    redact("authorization: SharedAccessSignature sr=x&se=1&sig=SECRET", out, sizeof(out));
    ck_assert_ptr_null(strstr(out, "SECRET"));
    redact("AUTHORIZATION: SharedAccessSignature sig=SECRET&sr=x&se=1", out, sizeof(out));
    ck_assert_ptr_null(strstr(out, "SECRET"));
    /* Not a SAS token: nothing of the value is shown. */
    redact("Authorization: Bearer SECRET", out, sizeof(out));
    ck_assert_str_eq(out, "Authorization: [redacted]");
    /* A signature anywhere else is hidden too. */
    redact("* some text sig=SECRET here", out, sizeof(out));
    ck_assert_ptr_null(strstr(out, "SECRET"));
    /* Other lines pass, control characters made visible. */
    redact("iothub-messageid: abc\x1b", out, sizeof(out));
    ck_assert_str_eq(out, "iothub-messageid: abc.");
    /* Truncation keeps the output terminated and secret-free. */
    redact("Authorization: SharedAccessSignature sr=x&sig=SECRETSECRET&se=1", out, 45);
    ck_assert_uint_lt(strlen(out), 45);
    ck_assert_ptr_null(strstr(out, "SECRET"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_hubapi");
    TCase *tc = tcase_create("hubapi");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_base_url);
    tcase_add_test(tc, test_bad_base_urls);
    tcase_add_test(tc, test_device_urls);
    tcase_add_test(tc, test_default_endpoint_and_encoding);
    tcase_add_test(tc, test_module_urls);
    tcase_add_test(tc, test_init_refuses_bad_endpoint);
    tcase_add_test(tc, test_classify_success);
    tcase_add_test(tc, test_classify_401);
    tcase_add_test(tc, test_classify_retryable);
    tcase_add_test(tc, test_classify_final);
    tcase_add_test(tc, test_classify_hostile_text);
    tcase_add_test(tc, test_redaction);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
