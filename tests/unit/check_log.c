/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOGMODULE testmod
#include "log.h"

static char path[] = "/tmp/check_log.XXXXXX";

static void setup(void)
{
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    unsetenv("SCTPM_LOG");
    unsetenv("SCTPM_LOGFILE");
    log_reset();
    ck_assert_int_eq(log_set_file(path), 0);
}

static void teardown(void)
{
    log_reset();
    unlink(path);
    strcpy(path, "/tmp/check_log.XXXXXX");
}

/* Returns the whole log file as a string (static buffer). */
static const char *contents(void)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int evaluated;

static int side_effect(void)
{
    return ++evaluated;
}

START_TEST(test_silent_by_default)
{
    LOG_ERROR("nobody asked for this %d", 1);
    ck_assert_str_eq(contents(), "");
}
END_TEST

START_TEST(test_default_level_filters)
{
    log_set_default(LOG_LEVEL_WARNING);
    LOG_ERROR("error %d", 1);
    LOG_WARNING("warning %s", "two");
    LOG_INFO("info %d", 3);
    LOG_DEBUG("debug %d", 4);
    ck_assert_ptr_nonnull(strstr(contents(), "ERROR testmod: error 1\n"));
    ck_assert_ptr_nonnull(strstr(contents(), "WARNING testmod: warning two\n"));
    ck_assert_ptr_null(strstr(contents(), "info 3"));
    ck_assert_ptr_null(strstr(contents(), "debug 4"));
}
END_TEST

START_TEST(test_arguments_not_evaluated_below_level)
{
    log_set_default(LOG_LEVEL_INFO);
    evaluated = 0;
    LOG_DEBUG("value %d", side_effect());
    LOG_TRACE("value %d", side_effect());
    ck_assert_int_eq(evaluated, 0);
    LOG_INFO("value %d", side_effect());
    ck_assert_int_eq(evaluated, 1);
}
END_TEST

START_TEST(test_env_spec_per_module)
{
    setenv("SCTPM_LOG", "all+error,testmod+debug", 1);
    log_reset(); /* forget the environment read so far */
    ck_assert_int_eq(log_set_file(path), 0);
    LOG_DEBUG("debug shown");
    LOG_TRACE("trace hidden");
    ck_assert_ptr_nonnull(strstr(contents(), "DEBUG testmod:"));
    ck_assert_ptr_nonnull(strstr(contents(), "debug shown"));
    /* Debug lines carry file and line so a reader can find the source. */
    ck_assert_ptr_nonnull(strstr(contents(), "check_log.c:"));
    ck_assert_ptr_null(strstr(contents(), "trace hidden"));
}
END_TEST

START_TEST(test_env_other_module_only)
{
    setenv("SCTPM_LOG", "rm+trace", 1);
    log_reset();
    ck_assert_int_eq(log_set_file(path), 0);
    LOG_ERROR("not for this module");
    ck_assert_str_eq(contents(), "");
}
END_TEST

START_TEST(test_configure_overrides_env)
{
    setenv("SCTPM_LOG", "trace", 1);
    log_reset();
    ck_assert_int_eq(log_set_file(path), 0);
    LOG_TRACE("first");
    ck_assert_int_eq(log_configure("warning"), 0);
    LOG_INFO("second");
    LOG_WARNING("third");
    ck_assert_ptr_nonnull(strstr(contents(), "first"));
    ck_assert_ptr_null(strstr(contents(), "second"));
    ck_assert_ptr_nonnull(strstr(contents(), "third"));
}
END_TEST

START_TEST(test_configure_rejects_bad_spec)
{
    log_set_default(LOG_LEVEL_ERROR);
    ck_assert_int_lt(log_configure("loud"), 0);
    ck_assert_int_lt(log_configure("rm+loud"), 0);
    ck_assert_int_lt(log_configure("+debug"), 0);
    ck_assert_int_lt(log_configure("averyveryveryveryverylongmodulename+debug"), 0);
    /* A rejected specification changes nothing. */
    LOG_WARNING("hidden");
    LOG_ERROR("shown");
    ck_assert_ptr_null(strstr(contents(), "hidden"));
    ck_assert_ptr_nonnull(strstr(contents(), "shown"));
}
END_TEST

START_TEST(test_level_names)
{
    ck_assert_int_eq(log_level_from_name("none"), LOG_LEVEL_NONE);
    ck_assert_int_eq(log_level_from_name("ERROR"), LOG_LEVEL_ERROR);
    ck_assert_int_eq(log_level_from_name("warn"), LOG_LEVEL_WARNING);
    ck_assert_int_eq(log_level_from_name("Trace"), LOG_LEVEL_TRACE);
    ck_assert_int_eq(log_level_from_name("verbose"), -1);
}
END_TEST

START_TEST(test_blob)
{
    const unsigned char data[18] = {0x80, 0x01, 0,    0,    0,    0x0c, 0,    0,    0x01,
                                    0x44, 0xab, 0xcd, 0xef, 0x00, 0x11, 0x22, 0x33, 0x44};

    log_set_default(LOG_LEVEL_DEBUG);
    LOGBLOB_DEBUG(data, sizeof(data), "command from %s", "client");
    ck_assert_ptr_nonnull(strstr(contents(), "command from client (18 bytes)"));
    ck_assert_ptr_nonnull(
        strstr(contents(), "0000: 80 01 00 00 00 0c 00 00 01 44 ab cd ef 00 11 22"));
    ck_assert_ptr_nonnull(strstr(contents(), "0010: 33 44\n"));
    evaluated = 0;
    LOGBLOB_TRACE(data, (size_t)side_effect(), "hidden");
    ck_assert_int_eq(evaluated, 0);
}
END_TEST

START_TEST(test_long_line_truncated)
{
    char big[10000];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_set_default(LOG_LEVEL_INFO);
    LOG_INFO("%s", big);
    LOG_INFO("after");
    /* The long line is cut, still ends in a newline, and the next line is intact. */
    ck_assert_ptr_nonnull(strstr(contents(), "xxx\n"));
    ck_assert_ptr_nonnull(strstr(contents(), "INFO testmod: after\n"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("levels");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_silent_by_default);
    tcase_add_test(tc, test_default_level_filters);
    tcase_add_test(tc, test_arguments_not_evaluated_below_level);
    tcase_add_test(tc, test_env_spec_per_module);
    tcase_add_test(tc, test_env_other_module_only);
    tcase_add_test(tc, test_configure_overrides_env);
    tcase_add_test(tc, test_configure_rejects_bad_spec);
    tcase_add_test(tc, test_level_names);
    tcase_add_test(tc, test_blob);
    tcase_add_test(tc, test_long_line_truncated);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
