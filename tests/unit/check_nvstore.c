/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nvstore.h"

static char dir[] = "/tmp/check_nvstore.XXXXXX";
static const uint8_t key1[NVSTORE_KEY_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key2[NVSTORE_KEY_SIZE] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(dir, "/tmp/check_nvstore.XXXXXX");
}

static struct nvstore *open_store(const uint8_t *key)
{
    struct nvstore *st = NULL;
    char err[256];

    ck_assert_int_eq(nvstore_open(dir, key, NVSTORE_FSYNC_ALWAYS, &st, err, sizeof(err)),
                     SCTPM_RC_SUCCESS);
    return st;
}

/* Reads a whole file into a malloc'ed buffer. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(1 << 20);

    ck_assert_ptr_nonnull(f);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void spit(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void roundtrip(const uint8_t *key)
{
    struct nvstore *st = open_store(key);
    uint8_t data[3000], *back = NULL;
    size_t len = 0;

    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 31);
    }
    ck_assert_int_eq(nvstore_load(st, "permall", &back, &len), SCTPM_RC_NOT_FOUND);
    ck_assert_int_eq(nvstore_save(st, "permall", data, sizeof(data)), SCTPM_RC_SUCCESS);
    ck_assert_int_eq(nvstore_load(st, "permall", &back, &len), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(len, sizeof(data));
    ck_assert_mem_eq(back, data, len);
    free(back);
    nvstore_close(st);
}

START_TEST(test_roundtrip_plain)
{
    roundtrip(NULL);
}
END_TEST

START_TEST(test_roundtrip_encrypted)
{
    char path[512];
    uint8_t *file;
    size_t len;

    roundtrip(key1);
    /* The plaintext pattern must not appear in the file. */
    snprintf(path, sizeof(path), "%s/tpm2-permall", dir);
    file = slurp(path, &len);
    ck_assert_ptr_null(memmem(file, len, "\x00\x1f\x3e\x5d\x7c", 5));
    free(file);
}
END_TEST

START_TEST(test_files_private)
{
    struct nvstore *st = open_store(NULL);
    char path[512];
    struct stat sb;

    ck_assert_int_eq(nvstore_save(st, "permall", (const uint8_t *)"x", 1), SCTPM_RC_SUCCESS);
    snprintf(path, sizeof(path), "%s/tpm2-permall", dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    nvstore_close(st);
}
END_TEST

/* Every corruption or truncation is refused, and the file is left byte for byte as it was. */
static void expect_refused(const uint8_t *key, enum sctpm_rc want, size_t cut, int flip)
{
    struct nvstore *st = open_store(key);
    uint8_t data[500], *file, *after, *back = NULL;
    size_t flen, alen, len;
    char path[512];

    memset(data, 0x5a, sizeof(data));
    ck_assert_int_eq(nvstore_save(st, "permall", data, sizeof(data)), SCTPM_RC_SUCCESS);
    nvstore_close(st);
    snprintf(path, sizeof(path), "%s/tpm2-permall", dir);
    file = slurp(path, &flen);
    if (cut != 0) {
        flen = cut;
    }
    if (flip >= 0) {
        file[flip] ^= 0x10;
    }
    spit(path, file, flen);
    st = open_store(key);
    ck_assert_int_eq(nvstore_load(st, "permall", &back, &len), want);
    ck_assert_ptr_null(back);
    ck_assert_str_ne(nvstore_error(st), "");
    nvstore_close(st);
    after = slurp(path, &alen);
    ck_assert_uint_eq(alen, flen);
    ck_assert_mem_eq(after, file, flen);
    free(file);
    free(after);
}

START_TEST(test_corrupt_plain)
{
    expect_refused(NULL, SCTPM_RC_CORRUPT, 0, 100);  /* payload bit flip */
    expect_refused(NULL, SCTPM_RC_CORRUPT, 0, 540);  /* checksum bit flip */
    expect_refused(NULL, SCTPM_RC_CORRUPT, 300, -1); /* truncated */
    expect_refused(NULL, SCTPM_RC_CORRUPT, 10, -1);  /* truncated inside the header */
    expect_refused(NULL, SCTPM_RC_CORRUPT, 0, 0);    /* magic */
    expect_refused(NULL, SCTPM_RC_CORRUPT, 0, 13);   /* length field */
}
END_TEST

START_TEST(test_corrupt_encrypted)
{
    expect_refused(key1, SCTPM_RC_CORRUPT, 0, 100); /* ciphertext bit flip */
    expect_refused(key1, SCTPM_RC_CORRUPT, 0, 35);  /* nonce bit flip */
    expect_refused(key1, SCTPM_RC_CORRUPT, 400, -1);
    expect_refused(key1, SCTPM_RC_BAD_KEY, 0, 17); /* key check damaged: reads as another key */
}
END_TEST

START_TEST(test_wrong_key)
{
    struct nvstore *st = open_store(key1);
    uint8_t *back = NULL;
    size_t len;

    ck_assert_int_eq(nvstore_save(st, "permall", (const uint8_t *)"secret", 6), SCTPM_RC_SUCCESS);
    nvstore_close(st);
    st = open_store(key2);
    ck_assert_int_eq(nvstore_load(st, "permall", &back, &len), SCTPM_RC_BAD_KEY);
    ck_assert_ptr_nonnull(strstr(nvstore_error(st), "different key"));
    nvstore_close(st);
    st = open_store(NULL);
    ck_assert_int_eq(nvstore_load(st, "permall", &back, &len), SCTPM_RC_BAD_KEY);
    ck_assert_ptr_nonnull(strstr(nvstore_error(st), "--key-file"));
    nvstore_close(st);
}
END_TEST

START_TEST(test_key_for_plain_state)
{
    struct nvstore *st = open_store(NULL);
    uint8_t *back = NULL;
    size_t len;

    ck_assert_int_eq(nvstore_save(st, "permall", (const uint8_t *)"plain", 5), SCTPM_RC_SUCCESS);
    nvstore_close(st);
    st = open_store(key1);
    ck_assert_int_eq(nvstore_load(st, "permall", &back, &len), SCTPM_RC_BAD_KEY);
    nvstore_close(st);
}
END_TEST

START_TEST(test_lock_excludes_second_process)
{
    struct nvstore *st = open_store(NULL);
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        struct nvstore *other = NULL;
        char err[256];
        enum sctpm_rc rc = nvstore_open(dir, NULL, NVSTORE_FSYNC_NEVER, &other, err, sizeof(err));
        _exit(rc == SCTPM_RC_BUSY && strstr(err, "in use by another sctpmd") != NULL ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    nvstore_close(st);
    /* Released on close. */
    st = open_store(NULL);
    nvstore_close(st);
}
END_TEST

/*
 * The daemon that took the lock died, but a child of it (the one making a new TPM) still holds it
 * for a moment: the next open waits for the child rather than failing.
 */
START_TEST(test_lock_waits_for_orphaned_holder)
{
    pid_t holder = fork();
    int status;
    struct nvstore *st;

    if (holder == 0) {
        struct nvstore *mine = NULL;
        char err[256];
        struct timespec ts = {0, 300 * 1000 * 1000};

        if (nvstore_open(dir, NULL, NVSTORE_FSYNC_NEVER, &mine, err, sizeof(err)) !=
            SCTPM_RC_SUCCESS) {
            _exit(1);
        }
        if (fork() == 0) {
            /* Keeps the inherited lock 300 ms after the holder the lock file names is gone. */
            nanosleep(&ts, NULL);
            _exit(0);
        }
        _exit(0);
    }
    ck_assert_int_eq(waitpid(holder, &status, 0), holder);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    st = open_store(NULL);
    nvstore_close(st);
}
END_TEST

START_TEST(test_names)
{
    struct nvstore *st = open_store(NULL);

    ck_assert_int_eq(nvstore_save(st, "../etc", (const uint8_t *)"x", 1), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(nvstore_save(st, "", (const uint8_t *)"x", 1), SCTPM_RC_BAD_ARGUMENT);
    ck_assert_int_eq(nvstore_delete(st, "absent"), SCTPM_RC_SUCCESS);
    nvstore_close(st);
}
END_TEST

START_TEST(test_key_files)
{
    char path[512], err[256];
    uint8_t key[NVSTORE_KEY_SIZE];
    uint8_t raw[32];

    snprintf(path, sizeof(path), "%s/key", dir);
    spit(path,
         (const uint8_t *)"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 65);
    ck_assert_int_eq(nvstore_read_key_file(path, key, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_uint_eq(key[0], 0);
    ck_assert_uint_eq(key[31], 0x1f);
    memset(raw, 0xab, sizeof(raw));
    spit(path, raw, sizeof(raw));
    ck_assert_int_eq(nvstore_read_key_file(path, key, err, sizeof(err)), SCTPM_RC_SUCCESS);
    ck_assert_mem_eq(key, raw, 32);
    spit(path, (const uint8_t *)"tooshort", 8);
    ck_assert_int_eq(nvstore_read_key_file(path, key, err, sizeof(err)), SCTPM_RC_BAD_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "32 raw bytes or 64 hexadecimal digits"));
    spit(path, (const uint8_t *)"zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
         64);
    ck_assert_int_eq(nvstore_read_key_file(path, key, err, sizeof(err)), SCTPM_RC_BAD_FORMAT);
    snprintf(path, sizeof(path), "%s/absent", dir);
    ck_assert_int_eq(nvstore_read_key_file(path, key, err, sizeof(err)), SCTPM_RC_IO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nvstore");
    TCase *tc = tcase_create("state");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_plain);
    tcase_add_test(tc, test_roundtrip_encrypted);
    tcase_add_test(tc, test_files_private);
    tcase_add_test(tc, test_corrupt_plain);
    tcase_add_test(tc, test_corrupt_encrypted);
    tcase_add_test(tc, test_wrong_key);
    tcase_add_test(tc, test_key_for_plain_state);
    tcase_add_test(tc, test_lock_excludes_second_process);
    tcase_add_test(tc, test_lock_waits_for_orphaned_holder);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_key_files);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
