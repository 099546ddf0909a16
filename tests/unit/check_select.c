/* SPDX-License-Identifier: BSD-2-Clause */
/* select's pure parts: options from the environment and the configuration, paths, lists. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "select-priv.h"
#include "select.h"

static const char *const env_vars[] = {"SCTPM_TPM_DEVICES", "SCTPM_SYSTEM_SOCKET",
                                       "SCTPM_MSSIM_PORT",  "SCTPM_AUTOSTART",
                                       "SCTPM_IDLE_EXIT",   "SCTPM_SCTPMD"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
        unsetenv(env_vars[i]);
    }
}

START_TEST(test_defaults)
{
    struct select_opts o;
    char err[256];

    clear_env();
    ck_assert_int_eq(select_opts_init(&o, "/usr/sbin/sctpmd", err, sizeof(err)), 0);
    ck_assert_str_eq(o.devices, "/dev/tpmrm0:/dev/tpm0");
    ck_assert_str_eq(o.system_socket, "/run/sctpm/sctpmd.sock");
    ck_assert_uint_eq(o.port, 2321);
    ck_assert_int_eq(o.autostart, 1);
    ck_assert_uint_eq(o.idle_exit, 600);
    ck_assert_str_eq(o.sctpmd, "/usr/sbin/sctpmd");
}
END_TEST

START_TEST(test_env)
{
    struct select_opts o;
    char err[256];

    clear_env();
    setenv("SCTPM_TPM_DEVICES", "", 1);
    setenv("SCTPM_SYSTEM_SOCKET", "", 1);
    setenv("SCTPM_MSSIM_PORT", "4321", 1);
    setenv("SCTPM_AUTOSTART", "no", 1);
    setenv("SCTPM_IDLE_EXIT", "0", 1);
    setenv("SCTPM_SCTPMD", "/opt/sctpmd", 1);
    ck_assert_int_eq(select_opts_init(&o, "/usr/sbin/sctpmd", err, sizeof(err)), 0);
    ck_assert_str_eq(o.devices, "");
    ck_assert_str_eq(o.system_socket, "");
    ck_assert_uint_eq(o.port, 4321);
    ck_assert_int_eq(o.autostart, 0);
    ck_assert_uint_eq(o.idle_exit, 0);
    ck_assert_str_eq(o.sctpmd, "/opt/sctpmd");

    /* An empty value means unset where "none" makes no sense. */
    clear_env();
    setenv("SCTPM_MSSIM_PORT", "", 1);
    setenv("SCTPM_SCTPMD", "", 1);
    ck_assert_int_eq(select_opts_init(&o, "/usr/sbin/sctpmd", err, sizeof(err)), 0);
    ck_assert_uint_eq(o.port, 2321);
    ck_assert_str_eq(o.sctpmd, "/usr/sbin/sctpmd");
    clear_env();
}
END_TEST

static const struct {
    const char *var;
    const char *value;
    const char *message; /* a part of the error sentence */
} bad_env[] = {
    {"SCTPM_MSSIM_PORT", "http", "SCTPM_MSSIM_PORT='http' is not a port"},
    {"SCTPM_MSSIM_PORT", "65535", "not a port"},
    {"SCTPM_MSSIM_PORT", "-1", "not a port"},
    {"SCTPM_MSSIM_PORT", "12 ", "not a port"},
    {"SCTPM_AUTOSTART", "maybe", "neither yes nor no"},
    {"SCTPM_IDLE_EXIT", "1h", "not a number of seconds"},
    {"SCTPM_IDLE_EXIT", "99999999999999999999", "not a number of seconds"},
    {"SCTPM_SCTPMD", "sctpmd", "not an absolute path"},
    {"SCTPM_SYSTEM_SOCKET",
     "/a/very/long/path/for/a/unix/socket/that/does/not/fit/into/sun_path/because/it/is/far/"
     "longer/than/a/hundred/and/two/bytes",
     "too long for a Unix socket"},
};

START_TEST(test_env_bad)
{
    struct select_opts o;
    char err[256] = "";

    clear_env();
    setenv(bad_env[_i].var, bad_env[_i].value, 1);
    ck_assert_int_eq(select_opts_init(&o, "/usr/sbin/sctpmd", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, bad_env[_i].message) != NULL, "error '%s' lacks '%s'", err,
                  bad_env[_i].message);
    clear_env();
}
END_TEST

START_TEST(test_options)
{
    struct select_opts o;
    char err[256];

    clear_env();
    setenv("SCTPM_MSSIM_PORT", "4321", 1);
    ck_assert_int_eq(select_opts_init(&o, "/usr/sbin/sctpmd", err, sizeof(err)), 0);
    /* Options override the environment; empty items are ignored. */
    ck_assert_int_eq(select_opts_parse(&o,
                                       "devices=/dev/a:/dev/b,,port=0,autostart=off,"
                                       "idle-exit=30",
                                       err, sizeof(err)),
                     0);
    ck_assert_str_eq(o.devices, "/dev/a:/dev/b");
    ck_assert_uint_eq(o.port, 0);
    ck_assert_int_eq(o.autostart, 0);
    ck_assert_uint_eq(o.idle_exit, 30);
    ck_assert_int_eq(select_opts_parse(&o, "devices=", err, sizeof(err)), 0);
    ck_assert_str_eq(o.devices, "");
    ck_assert_int_eq(select_opts_parse(&o, "", err, sizeof(err)), 0);
    ck_assert_int_eq(select_opts_parse(&o, NULL, err, sizeof(err)), 0);
    clear_env();
}
END_TEST

static const struct {
    const char *options;
    const char *message;
} bad_options[] = {
    {"colour=blue", "unknown option 'colour'"},
    {"port", "is not key=value"},
    {"port=x", "option port='x' is not a port"},
    /* The binary to execute and the system socket come from the environment only. */
    {"sctpmd=/tmp/evil", "unknown option 'sctpmd'"},
    {"system-socket=/tmp/s", "unknown option 'system-socket'"},
    {"autostart=yes,idle-exit=-5", "not a number of seconds"},
};

START_TEST(test_options_bad)
{
    struct select_opts o;
    char err[256] = "";

    clear_env();
    ck_assert_int_eq(select_opts_init(&o, "/usr/sbin/sctpmd", err, sizeof(err)), 0);
    ck_assert_int_eq(select_opts_parse(&o, bad_options[_i].options, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, bad_options[_i].message) != NULL, "error '%s' lacks '%s'", err,
                  bad_options[_i].message);
}
END_TEST

START_TEST(test_conf_is_sctpm)
{
    const char *opts = "unchanged";

    ck_assert_int_eq(select_conf_is_sctpm(NULL, &opts), 1);
    ck_assert_str_eq(opts, "");
    ck_assert_int_eq(select_conf_is_sctpm("", &opts), 1);
    ck_assert_int_eq(select_conf_is_sctpm("sctpm", &opts), 1);
    ck_assert_str_eq(opts, "");
    ck_assert_int_eq(select_conf_is_sctpm("sctpm:", &opts), 1);
    ck_assert_str_eq(opts, "");
    ck_assert_int_eq(select_conf_is_sctpm("sctpm:port=0,devices=", &opts), 1);
    ck_assert_str_eq(opts, "port=0,devices=");
    ck_assert_int_eq(select_conf_is_sctpm("sctpmx", &opts), 0);
    ck_assert_int_eq(select_conf_is_sctpm("mssim:host=localhost", &opts), 0);
    ck_assert_int_eq(select_conf_is_sctpm("device:/dev/tpmrm0", &opts), 0);
    ck_assert_int_eq(select_conf_is_sctpm("libtss2-tcti-sctpm.so.0", &opts), 0);
}
END_TEST

START_TEST(test_list)
{
    const char *pos = "::/dev/tpmrm0::/dev/a-very-long-name:/dev/tpm0:";
    char item[16];

    ck_assert_int_eq(select_list_next(&pos, item, sizeof(item)), 1);
    ck_assert_str_eq(item, "/dev/tpmrm0");
    ck_assert_int_eq(select_list_next(&pos, item, sizeof(item)), -1); /* too long: skipped */
    ck_assert_int_eq(select_list_next(&pos, item, sizeof(item)), 1);
    ck_assert_str_eq(item, "/dev/tpm0");
    ck_assert_int_eq(select_list_next(&pos, item, sizeof(item)), 0);
    ck_assert_int_eq(select_list_next(&pos, item, sizeof(item)), 0);
    pos = "";
    ck_assert_int_eq(select_list_next(&pos, item, sizeof(item)), 0);
}
END_TEST

static const struct {
    unsigned uid;
    const char *runtime, *state, *home;
    const char *want_runtime, *want_state;
    int system;
} layouts[] = {
    /* A user session. */
    {1000, "/run/user/1000", NULL, "/home/u", "/run/user/1000/sctpm", "/home/u/.local/state/sctpm",
     0},
    {1000, "/run/user/1000/", "/home/u/st/", "/home/u", "/run/user/1000/sctpm", "/home/u/st/sctpm",
     0},
    /* No XDG_RUNTIME_DIR: next to the state, as gpg-agent does in ~/.gnupg. */
    {1000, NULL, NULL, "/home/u", "/home/u/.local/state/sctpm", "/home/u/.local/state/sctpm", 0},
    /* Relative XDG paths are ignored (XDG base directory specification). */
    {1000, "run", "state", "/home/u", "/home/u/.local/state/sctpm", "/home/u/.local/state/sctpm",
     0},
    /* Root shares the system's TPM, login session or not... */
    {0, NULL, NULL, "/root", "/run/sctpm", "/var/lib/sctpm", 1},
    {0, "/run/user/0", NULL, "/root", "/run/sctpm", "/var/lib/sctpm", 1},
    /* ...unless it names a state home (as the tests do). */
    {0, "/tmp/t/run", "/tmp/t/state", "/root", "/tmp/t/run/sctpm", "/tmp/t/state/sctpm", 0},
    {0, NULL, "/tmp/t/state", "/root", "/tmp/t/state/sctpm", "/tmp/t/state/sctpm", 0},
};

START_TEST(test_paths)
{
    struct select_paths p;
    char err[256], want[4200];

    ck_assert_int_eq(select_paths_compute(&p, layouts[_i].uid, layouts[_i].runtime,
                                          layouts[_i].state, layouts[_i].home, err, sizeof(err)),
                     0);
    ck_assert_str_eq(p.runtime_dir, layouts[_i].want_runtime);
    ck_assert_str_eq(p.state_dir, layouts[_i].want_state);
    ck_assert_int_eq(p.system, layouts[_i].system);
    snprintf(want, sizeof(want), "%s/sctpmd.sock", layouts[_i].want_runtime);
    ck_assert_str_eq(p.socket, want);
    snprintf(want, sizeof(want), "%s/sctpmd.lock", layouts[_i].want_runtime);
    ck_assert_str_eq(p.lock, want);
    snprintf(want, sizeof(want), "%s/sctpmd.pid", layouts[_i].want_runtime);
    ck_assert_str_eq(p.pidfile, want);
    snprintf(want, sizeof(want), "%s/sctpmd.log", layouts[_i].want_runtime);
    ck_assert_str_eq(p.log, want);
}
END_TEST

START_TEST(test_paths_bad)
{
    struct select_paths p;
    char err[256] = "", longdir[200];

    ck_assert_int_eq(select_paths_compute(&p, 1000, NULL, NULL, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "no place for the TPM state"));
    ck_assert_int_eq(select_paths_compute(&p, 1000, NULL, NULL, "relative", err, sizeof(err)), -1);
    /* /x/xxx.../sctpm/sctpmd.sock must leave room for ".ctrl" in sun_path. */
    memset(longdir, 'x', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    longdir[90] = '\0';
    ck_assert_int_eq(select_paths_compute(&p, 1000, longdir, NULL, "/h", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "set XDG_RUNTIME_DIR to a shorter directory"));
    longdir[90] = 'x';
    longdir[82] = '\0'; /* 82 + "/sctpm/sctpmd.sock" = 100: fits */
    ck_assert_int_eq(select_paths_compute(&p, 1000, longdir, NULL, "/h", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_private_dir)
{
    char base[] = "/tmp/check_select.XXXXXX", dir[256], err[256] = "";
    struct stat sb;

    ck_assert_ptr_nonnull(mkdtemp(base));
    /* Missing parents are created, all private. */
    snprintf(dir, sizeof(dir), "%s/a/b/sctpm", base);
    ck_assert_int_eq(select_private_dir(dir, geteuid(), err, sizeof(err)), 0);
    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 07777, 0700);
    snprintf(dir, sizeof(dir), "%s/a", base);
    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 07777, 0700);
    /* An existing private directory is fine; one others may write to is refused. */
    snprintf(dir, sizeof(dir), "%s/a/b/sctpm", base);
    ck_assert_int_eq(select_private_dir(dir, geteuid(), err, sizeof(err)), 0);
    ck_assert_int_eq(chmod(dir, 0777), 0);
    ck_assert_int_eq(select_private_dir(dir, geteuid(), err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "writable by others (mode 0777)"));
    ck_assert_int_eq(chmod(dir, 0755), 0);
    ck_assert_int_eq(select_private_dir(dir, geteuid(), err, sizeof(err)), 0);
    /* Another owner is refused (we ask for a uid that does not own it). */
    ck_assert_int_eq(select_private_dir(dir, geteuid() + 1, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "refusing to use it"));
    ck_assert_ptr_nonnull(strstr(err, "belongs to uid"));
    /* A symlink in the last place is refused, even to a good directory. */
    snprintf(err, sizeof(err), "%s/a/b/sctpm", base);
    snprintf(dir, sizeof(dir), "%s/link", base);
    ck_assert_int_eq(symlink(err, dir), 0);
    ck_assert_int_eq(select_private_dir(dir, geteuid(), err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a directory"));
    ck_assert_int_eq(unlink(dir), 0);
    snprintf(dir, sizeof(dir), "%s/a/b/sctpm", base);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/a/b", base);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/a", base);
    rmdir(dir);
    rmdir(base);
}
END_TEST

/* Bad options reach the caller as TSS2_TCTI_RC_BAD_VALUE with the sentence, before any I/O. */
START_TEST(test_select_bad_value)
{
    struct select_choice ch;
    TSS2_TCTI_CONTEXT *tcti = (TSS2_TCTI_CONTEXT *)&ch;

    clear_env();
    ck_assert_uint_eq(select_tcti("sctpm:port=99999", &tcti, &ch), TSS2_TCTI_RC_BAD_VALUE);
    ck_assert_ptr_null(tcti);
    ck_assert_ptr_nonnull(strstr(ch.reason, "option port='99999' is not a port"));
    setenv("SCTPM_AUTOSTART", "perhaps", 1);
    ck_assert_uint_eq(select_tcti(NULL, &tcti, NULL), TSS2_TCTI_RC_BAD_VALUE);
    ck_assert_uint_eq(select_tcti(NULL, NULL, &ch), TSS2_TCTI_RC_BAD_REFERENCE);
    clear_env();
    select_finalize(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("pure");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_env);
    tcase_add_loop_test(tc, test_env_bad, 0, sizeof(bad_env) / sizeof(bad_env[0]));
    tcase_add_test(tc, test_options);
    tcase_add_loop_test(tc, test_options_bad, 0, sizeof(bad_options) / sizeof(bad_options[0]));
    tcase_add_test(tc, test_conf_is_sctpm);
    tcase_add_test(tc, test_list);
    tcase_add_loop_test(tc, test_paths, 0, sizeof(layouts) / sizeof(layouts[0]));
    tcase_add_test(tc, test_paths_bad);
    tcase_add_test(tc, test_private_dir);
    tcase_add_test(tc, test_select_bad_value);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
