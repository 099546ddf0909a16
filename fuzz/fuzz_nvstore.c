/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The state-file loader (emulator/nvstore.c): what sctpmd reads from its state directory at
 * start, where a truncated, corrupt or foreign file must be refused and never half-trusted.
 *
 * The first input byte picks the mode (the rest is the payload):
 *   0  the payload is a state file, loaded without a key;
 *   1  the payload is a state file, loaded with a key;
 *   2  the payload is a blob: saved plain, then loaded, which must give it back;
 *   3  the same, encrypted with a key;
 *   4  the payload is a key file (nvstore_read_key_file);
 * and modes 2 and 3 with bit 3 set (10, 11) take a u16 offset and a byte first, and change the
 * saved file at that offset before loading it: the change must be detected, whatever it is.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io.h"
#include "nvstore.h"

#define NAME "permall"

static char dir[4096], plain_dir[4200], keyed_dir[4200], key_path[4200];
static struct nvstore *plain, *keyed;
static const uint8_t key[NVSTORE_KEY_SIZE] = {0x5c, 0x7e, 0x01};

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    nvstore_close(plain);
    nvstore_close(keyed);
    plain = keyed = NULL;
    if (dir[0] != '\0') {
        (void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        dir[0] = '\0';
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    char err[512];

    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    snprintf(dir, sizeof(dir), "%s/sctpm-fuzz.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "fuzz: cannot create a directory: %s\n", strerror(errno));
        exit(1);
    }
    atexit(cleanup);
    snprintf(plain_dir, sizeof(plain_dir), "%s/plain", dir);
    snprintf(keyed_dir, sizeof(keyed_dir), "%s/keyed", dir);
    snprintf(key_path, sizeof(key_path), "%s/key", dir);
    if (nvstore_open(plain_dir, NULL, NVSTORE_FSYNC_NEVER, &plain, err, sizeof(err)) !=
            SCTPM_RC_SUCCESS ||
        nvstore_open(keyed_dir, key, NVSTORE_FSYNC_NEVER, &keyed, err, sizeof(err)) !=
            SCTPM_RC_SUCCESS) {
        fprintf(stderr, "fuzz: nvstore_open: %s\n", err);
        exit(1);
    }
    return 0;
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || write_full(fd, data, len) != 0) {
        fuzz_fail("cannot write %s: %s", path, strerror(errno));
    }
    close(fd);
}

/* Loads NAME from `st`; returns the code, and checks what every answer must look like. */
static enum sctpm_rc load(struct nvstore *st, uint8_t **data, size_t *len)
{
    enum sctpm_rc rc = nvstore_load(st, NAME, data, len);

    if (rc == SCTPM_RC_SUCCESS) {
        if (*data == NULL || *len > NVSTORE_MAX_BLOB) {
            fuzz_fail("a loaded state of %zu bytes", *len);
        }
    } else {
        if (*data != NULL || *len != 0) {
            fuzz_fail("a refused state left outputs");
        }
        if (nvstore_error(st)[0] == '\0') {
            fuzz_fail("a refused state without a reason (code %d)", (int)rc);
        }
    }
    return rc;
}

static void load_file(struct nvstore *st, const uint8_t *file, size_t len)
{
    char path[4300];
    uint8_t *data = NULL;
    size_t n = 0;

    if (nvstore_path(st, NAME, path, sizeof(path)) != 0) {
        fuzz_fail("nvstore_path");
    }
    write_file(path, file, len);
    (void)load(st, &data, &n);
    free(data);
}

/* Saves `blob`, optionally changes one byte of the file, and loads it again. */
static void round_trip(struct nvstore *st, const uint8_t *blob, size_t len, int tamper, size_t at,
                       uint8_t x)
{
    char path[4300];
    uint8_t *file = NULL, *data = NULL;
    size_t n = 0;
    ssize_t size;
    enum sctpm_rc rc;
    int fd;

    if (nvstore_save(st, NAME, blob, len) != SCTPM_RC_SUCCESS) {
        fuzz_fail("cannot save %zu bytes: %s", len, nvstore_error(st));
    }
    if (tamper && x != 0) {
        if (nvstore_path(st, NAME, path, sizeof(path)) != 0) {
            fuzz_fail("nvstore_path");
        }
        file = malloc(len + 128);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        size = fd >= 0 ? read_full(fd, file, len + 128) : -1;
        if (fd >= 0) {
            close(fd);
        }
        if (file == NULL || size <= 0) {
            fuzz_fail("cannot read back %s", path);
        }
        file[at % (size_t)size] ^= x;
        write_file(path, file, (size_t)size);
        free(file);
    }
    rc = load(st, &data, &n);
    if (tamper && x != 0) {
        if (rc == SCTPM_RC_SUCCESS) {
            fuzz_fail("a changed state file was accepted");
        }
    } else if (rc != SCTPM_RC_SUCCESS || n != len || (len > 0 && memcmp(data, blob, len) != 0)) {
        fuzz_fail("a saved state of %zu bytes did not load back: %s", len, nvstore_error(st));
    }
    free(data);
}

static void key_file(const uint8_t *file, size_t len)
{
    uint8_t k[NVSTORE_KEY_SIZE];
    char err[512];
    enum sctpm_rc rc;
    int hex = len == 64 || (len == 65 && file[64] == '\n');

    write_file(key_path, file, len);
    memset(err, 0, sizeof(err));
    rc = nvstore_read_key_file(key_path, k, err, sizeof(err));
    if (rc == SCTPM_RC_SUCCESS ? !(len == NVSTORE_KEY_SIZE || hex) : err[0] == '\0') {
        fuzz_fail("key file of %zu bytes: code %d", len, (int)rc);
    }
    if (len == NVSTORE_KEY_SIZE && (rc != SCTPM_RC_SUCCESS || memcmp(k, file, len) != 0)) {
        fuzz_fail("a raw key was not read as it is");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    size_t at = 0, len;
    uint8_t x = 0;
    const uint8_t *rest;

    if (mode & 8) {
        at = fuzz_u16(&in);
        x = fuzz_u8(&in);
    }
    rest = fuzz_bytes(&in, in.left, &len);
    switch (mode & 7) {
    case 0:
        load_file(plain, rest, len);
        break;
    case 1:
        load_file(keyed, rest, len);
        break;
    case 2:
        round_trip(plain, rest, len, mode & 8, at, x);
        break;
    case 3:
        round_trip(keyed, rest, len, mode & 8, at, x);
        break;
    case 4:
        key_file(rest, len);
        break;
    default:
        break;
    }
    return 0;
}
