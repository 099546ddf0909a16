/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define LOGMODULE nvstore
#include "log.h"
#include "io.h"
#include "nvstore.h"

#define MAGIC          "SCTPMST1"
#define HDR_SIZE       16
#define FLAG_ENCRYPTED 1u
#define CHECK_SIZE     16
#define NONCE_SIZE     12
#define TAG_SIZE       16

struct nvstore {
    char dir[PATH_MAX];
    int dirfd;
    int lockfd;
    int encrypted;
    uint8_t enc_key[32];
    uint8_t key_check[CHECK_SIZE];
    enum nvstore_fsync fsync_mode;
    char err[512];
};

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static enum sctpm_rc fail(struct nvstore *st, enum sctpm_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum sctpm_rc fail(struct nvstore *st, enum sctpm_rc rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->err, sizeof(st->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* Derives a subkey for one purpose, so the encryption key and the key check are unrelated. */
static int derive(const uint8_t *key, const char *label, uint8_t out[32])
{
    unsigned int len = 32;

    return HMAC(EVP_sha256(), key, NVSTORE_KEY_SIZE, (const unsigned char *)label, strlen(label),
                out, &len) != NULL
               ? 0
               : -1;
}

/* Whether the process the lock file names (the daemon that took the lock) no longer exists. */
static int holder_gone(int lockfd)
{
    char buf[32];
    ssize_t n = pread(lockfd, buf, sizeof(buf) - 1, 0);
    long pid;
    char *end;

    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == '\0') && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/*
 * Takes the state lock without waiting; 0, or -1 with errno (EWOULDBLOCK: held). One case
 * waits: the daemon the lock file names is gone but the lock is still held, by the child it was
 * making a new TPM in (emulator/daemon.c), which dies with it (PR_SET_PDEATHSIG) and is about to
 * exit. A restart after such a crash waits for that, up to two seconds, instead of failing.
 */
static int lock_state(int lockfd)
{
    if (flock(lockfd, LOCK_EX | LOCK_NB) == 0) {
        return 0;
    }
    if (errno != EWOULDBLOCK) {
        return -1;
    }
    if (!holder_gone(lockfd)) {
        errno = EWOULDBLOCK;
        return -1;
    }
    for (int i = 0; i < 200; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        nanosleep(&ts, NULL);
        if (flock(lockfd, LOCK_EX | LOCK_NB) == 0) {
            return 0;
        }
        if (errno != EWOULDBLOCK) {
            return -1;
        }
    }
    return -1;
}

enum sctpm_rc nvstore_open(const char *dir, const uint8_t *key, enum nvstore_fsync fsync_mode,
                           struct nvstore **out, char *err, size_t errlen)
{
    enum sctpm_rc rc = SCTPM_RC_IO;
    struct nvstore *st = NULL;
    uint8_t check[32];

    *out = NULL;
    if (strlen(dir) + 32 >= PATH_MAX) {
        snprintf(err, errlen, "state directory path is too long");
        return SCTPM_RC_BAD_ARGUMENT;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return SCTPM_RC_NO_MEMORY;
    }
    st->dirfd = -1;
    st->lockfd = -1;
    st->fsync_mode = fsync_mode;
    strcpy(st->dir, dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
        rc = errno == EACCES ? SCTPM_RC_PERMISSION : SCTPM_RC_IO;
        goto out;
    }
    st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dirfd < 0) {
        snprintf(err, errlen, "cannot open state directory %s: %s", dir, strerror(errno));
        rc = errno == EACCES ? SCTPM_RC_PERMISSION : SCTPM_RC_IO;
        goto out;
    }
    st->lockfd = openat(st->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (st->lockfd < 0) {
        snprintf(err, errlen, "cannot create lock file %s/.lock: %s", dir, strerror(errno));
        rc = errno == EACCES || errno == EROFS ? SCTPM_RC_PERMISSION : SCTPM_RC_IO;
        goto out;
    }
    if (lock_state(st->lockfd) != 0) {
        if (errno == EWOULDBLOCK) {
            char pid[32] = "";
            ssize_t n = pread(st->lockfd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            snprintf(err, errlen, "state directory %s is in use by another sctpmd%s%s%s", dir,
                     pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
            rc = SCTPM_RC_BUSY;
        } else {
            snprintf(err, errlen, "cannot lock %s/.lock: %s", dir, strerror(errno));
        }
        goto out;
    }
    /* Record who holds the lock, for the message a second daemon prints. */
    if (ftruncate(st->lockfd, 0) == 0) {
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
        (void)!pwrite(st->lockfd, pid, (size_t)n, 0);
    }
    if (key != NULL) {
        st->encrypted = 1;
        if (derive(key, "sctpm state encryption v1", st->enc_key) != 0 ||
            derive(key, "sctpm state key check v1", check) != 0) {
            snprintf(err, errlen, "cannot derive the state keys");
            rc = SCTPM_RC_GENERAL_FAILURE;
            goto out;
        }
        memcpy(st->key_check, check, CHECK_SIZE);
        explicit_bzero(check, sizeof(check));
    }
    *out = st;
    st = NULL;
    rc = SCTPM_RC_SUCCESS;
out:
    nvstore_close(st);
    return rc;
}

void nvstore_close(struct nvstore *st)
{
    if (st == NULL) {
        return;
    }
    if (st->lockfd >= 0) {
        close(st->lockfd);
    }
    if (st->dirfd >= 0) {
        close(st->dirfd);
    }
    explicit_bzero(st->enc_key, sizeof(st->enc_key));
    explicit_bzero(st->key_check, sizeof(st->key_check));
    free(st);
}

const char *nvstore_dir(const struct nvstore *st)
{
    return st->dir;
}

const char *nvstore_error(const struct nvstore *st)
{
    return st->err;
}

int nvstore_path(const struct nvstore *st, const char *name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/tpm2-%s", st->dir, name);

    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int valid_name(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 32) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* AES-256-GCM in one call; returns 0 on success, -1 on failure (for decryption: a bad tag). */
static int gcm(int enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = 0, n;

    /* `tag` is written when encrypting and read when decrypting. */

    if (c == NULL) {
        return -1;
    }
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1) {
        goto out;
    }
    if (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1) {
        goto out;
    }
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, tag) != 1) {
        goto out;
    }
    if (EVP_CipherFinal_ex(c, out + len, &n) != 1) {
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_SIZE, tag) != 1) {
        goto out;
    }
    ok = 1;
out:
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

enum sctpm_rc nvstore_load(struct nvstore *st, const char *name, uint8_t **data, size_t *len)
{
    enum sctpm_rc rc = SCTPM_RC_IO;
    char path[PATH_MAX];
    uint8_t *file = NULL, *plain = NULL;
    struct stat sb;
    size_t size, payload;
    uint32_t flags;
    int fd = -1;
    ssize_t n;

    *data = NULL;
    *len = 0;
    st->err[0] = '\0';
    if (!valid_name(name)) {
        return fail(st, SCTPM_RC_BAD_ARGUMENT, "invalid state name '%s'", name);
    }
    if (nvstore_path(st, name, path, sizeof(path)) != 0) {
        return fail(st, SCTPM_RC_BAD_ARGUMENT, "state path too long");
    }
    fd = openat(st->dirfd, path + strlen(st->dir) + 1, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            return fail(st, SCTPM_RC_NOT_FOUND, "%s does not exist", path);
        }
        return fail(st, errno == EACCES ? SCTPM_RC_PERMISSION : SCTPM_RC_IO, "cannot open %s: %s",
                    path, strerror(errno));
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = fail(st, SCTPM_RC_IO, "%s is not a regular file", path);
        goto out;
    }
    if ((uint64_t)sb.st_size > NVSTORE_MAX_BLOB + 256) {
        rc = fail(st, SCTPM_RC_CORRUPT, "%s is %lld bytes, more than a TPM state can be", path,
                  (long long)sb.st_size);
        goto out;
    }
    size = (size_t)sb.st_size;
    file = malloc(size + 1);
    if (file == NULL) {
        rc = fail(st, SCTPM_RC_NO_MEMORY, "out of memory");
        goto out;
    }
    n = read_full(fd, file, size);
    if (n < 0) {
        rc = fail(st, SCTPM_RC_IO, "cannot read %s: %s", path, strerror((int)-n));
        goto out;
    }
    if ((size_t)n != size || size < HDR_SIZE || memcmp(file, MAGIC, 7) != 0) {
        rc = fail(st, SCTPM_RC_CORRUPT, "%s is not an sctpm state file, or is truncated", path);
        goto out;
    }
    if (file[7] != MAGIC[7]) {
        rc = fail(st, SCTPM_RC_UNSUPPORTED,
                  "%s has state format version '%c', which this sctpmd does not know", path,
                  file[7]);
        goto out;
    }
    flags = get_u32(file + 8);
    payload = get_u32(file + 12);
    if ((flags & ~FLAG_ENCRYPTED) != 0 || payload > NVSTORE_MAX_BLOB) {
        rc = fail(st, SCTPM_RC_CORRUPT, "%s has an invalid header", path);
        goto out;
    }
    if (!(flags & FLAG_ENCRYPTED)) {
        uint8_t digest[SHA256_DIGEST_LENGTH];
        if (st->encrypted) {
            rc = fail(st, SCTPM_RC_BAD_KEY,
                      "%s is not encrypted, but a key file was given; refusing to guess", path);
            goto out;
        }
        if (size != HDR_SIZE + payload + SHA256_DIGEST_LENGTH) {
            rc = fail(st, SCTPM_RC_CORRUPT, "%s is truncated or has trailing bytes", path);
            goto out;
        }
        SHA256(file, HDR_SIZE + payload, digest);
        if (CRYPTO_memcmp(digest, file + HDR_SIZE + payload, sizeof(digest)) != 0) {
            rc = fail(st, SCTPM_RC_CORRUPT, "%s fails its integrity check (SHA-256)", path);
            goto out;
        }
        plain = malloc(payload + 1);
        if (plain == NULL) {
            rc = fail(st, SCTPM_RC_NO_MEMORY, "out of memory");
            goto out;
        }
        memcpy(plain, file + HDR_SIZE, payload);
    } else {
        const uint8_t *check = file + HDR_SIZE;
        const uint8_t *nonce = check + CHECK_SIZE;
        const uint8_t *ct = nonce + NONCE_SIZE;
        if (!st->encrypted) {
            rc = fail(st, SCTPM_RC_BAD_KEY, "%s is encrypted: give its key with --key-file", path);
            goto out;
        }
        if (size != HDR_SIZE + CHECK_SIZE + NONCE_SIZE + payload + TAG_SIZE) {
            rc = fail(st, SCTPM_RC_CORRUPT, "%s is truncated or has trailing bytes", path);
            goto out;
        }
        if (CRYPTO_memcmp(check, st->key_check, CHECK_SIZE) != 0) {
            rc = fail(st, SCTPM_RC_BAD_KEY, "%s was encrypted with a different key", path);
            goto out;
        }
        plain = malloc(payload + 1);
        if (plain == NULL) {
            rc = fail(st, SCTPM_RC_NO_MEMORY, "out of memory");
            goto out;
        }
        uint8_t tag[TAG_SIZE];
        memcpy(tag, ct + payload, TAG_SIZE);
        if (gcm(0, st->enc_key, nonce, file, HDR_SIZE, ct, payload, plain, tag) != 0) {
            explicit_bzero(plain, payload);
            rc = fail(st, SCTPM_RC_CORRUPT, "%s fails its integrity check (AES-GCM tag)", path);
            goto out;
        }
    }
    *data = plain;
    *len = payload;
    plain = NULL;
    rc = SCTPM_RC_SUCCESS;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (file != NULL) {
        explicit_bzero(file, size);
        free(file);
    }
    free(plain);
    return rc;
}

enum sctpm_rc nvstore_save(struct nvstore *st, const char *name, const uint8_t *data, size_t len)
{
    enum sctpm_rc rc = SCTPM_RC_IO;
    char path[PATH_MAX], tmp[PATH_MAX];
    const char *rel, *reltmp;
    uint8_t *file = NULL;
    size_t size;
    int fd = -1, r;

    st->err[0] = '\0';
    if (!valid_name(name)) {
        return fail(st, SCTPM_RC_BAD_ARGUMENT, "invalid state name '%s'", name);
    }
    if (len > NVSTORE_MAX_BLOB) {
        return fail(st, SCTPM_RC_TOO_LARGE, "state '%s' of %zu bytes is too large", name, len);
    }
    if (nvstore_path(st, name, path, sizeof(path)) != 0 ||
        snprintf(tmp, sizeof(tmp), "%s/.tpm2-%s.tmp", st->dir, name) >= (int)sizeof(tmp)) {
        return fail(st, SCTPM_RC_BAD_ARGUMENT, "state path too long");
    }
    rel = path + strlen(st->dir) + 1;
    reltmp = tmp + strlen(st->dir) + 1;

    size = HDR_SIZE + len +
           (st->encrypted ? CHECK_SIZE + NONCE_SIZE + TAG_SIZE : SHA256_DIGEST_LENGTH);
    file = malloc(size);
    if (file == NULL) {
        return fail(st, SCTPM_RC_NO_MEMORY, "out of memory");
    }
    memcpy(file, MAGIC, 8);
    put_u32(file + 8, st->encrypted ? FLAG_ENCRYPTED : 0);
    put_u32(file + 12, (uint32_t)len);
    if (st->encrypted) {
        uint8_t *nonce = file + HDR_SIZE + CHECK_SIZE;
        memcpy(file + HDR_SIZE, st->key_check, CHECK_SIZE);
        if (RAND_bytes(nonce, NONCE_SIZE) != 1 ||
            gcm(1, st->enc_key, nonce, file, HDR_SIZE, data, len, nonce + NONCE_SIZE,
                nonce + NONCE_SIZE + len) != 0) {
            rc = fail(st, SCTPM_RC_GENERAL_FAILURE, "cannot encrypt state '%s'", name);
            goto out;
        }
    } else {
        memcpy(file + HDR_SIZE, data, len);
        SHA256(file, HDR_SIZE + len, file + HDR_SIZE + len);
    }

    fd = openat(st->dirfd, reltmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = fail(st, SCTPM_RC_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    r = write_full(fd, file, size);
    if (r != 0) {
        rc = fail(st, SCTPM_RC_IO, "cannot write %s: %s", tmp, strerror(-r));
        goto out;
    }
    if (st->fsync_mode == NVSTORE_FSYNC_ALWAYS && fsync(fd) != 0) {
        rc = fail(st, SCTPM_RC_IO, "cannot flush %s to disk: %s", tmp, strerror(errno));
        goto out;
    }
    r = close(fd);
    fd = -1;
    if (r != 0) {
        rc = fail(st, SCTPM_RC_IO, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (renameat(st->dirfd, reltmp, st->dirfd, rel) != 0) {
        rc = fail(st, SCTPM_RC_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    /* The rename is durable only once the directory itself is on disk. */
    if (st->fsync_mode == NVSTORE_FSYNC_ALWAYS && fsync(st->dirfd) != 0) {
        rc = fail(st, SCTPM_RC_IO, "cannot flush directory %s: %s", st->dir, strerror(errno));
        goto out;
    }
    rc = SCTPM_RC_SUCCESS;
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        unlinkat(st->dirfd, reltmp, 0);
    }
    explicit_bzero(file, size);
    free(file);
    return rc;
}

enum sctpm_rc nvstore_delete(struct nvstore *st, const char *name)
{
    char path[PATH_MAX];

    st->err[0] = '\0';
    if (!valid_name(name)) {
        return fail(st, SCTPM_RC_BAD_ARGUMENT, "invalid state name '%s'", name);
    }
    if (nvstore_path(st, name, path, sizeof(path)) != 0) {
        return fail(st, SCTPM_RC_BAD_ARGUMENT, "state path too long");
    }
    if (unlinkat(st->dirfd, path + strlen(st->dir) + 1, 0) != 0 && errno != ENOENT) {
        return fail(st, SCTPM_RC_IO, "cannot delete %s: %s", path, strerror(errno));
    }
    if (st->fsync_mode == NVSTORE_FSYNC_ALWAYS) {
        (void)fsync(st->dirfd);
    }
    return SCTPM_RC_SUCCESS;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

enum sctpm_rc nvstore_read_key_file(const char *path, uint8_t key[NVSTORE_KEY_SIZE], char *err,
                                    size_t errlen)
{
    enum sctpm_rc rc = SCTPM_RC_BAD_FORMAT;
    uint8_t buf[80];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return SCTPM_RC_IO;
    }
    n = read_full(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "cannot read key file %s: %s", path, strerror((int)-n));
        rc = SCTPM_RC_IO;
        goto out;
    }
    if (n == NVSTORE_KEY_SIZE) {
        memcpy(key, buf, NVSTORE_KEY_SIZE);
        rc = SCTPM_RC_SUCCESS;
        goto out;
    }
    if (n == 65 && buf[64] == '\n') {
        n = 64;
    }
    if (n == 64) {
        for (int i = 0; i < NVSTORE_KEY_SIZE; i++) {
            int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "key file %s: 64 characters, but not all hexadecimal", path);
                goto out;
            }
            key[i] = (uint8_t)(hi << 4 | lo);
        }
        rc = SCTPM_RC_SUCCESS;
        goto out;
    }
    snprintf(err, errlen,
             "key file %s must hold 32 raw bytes or 64 hexadecimal digits (it has %zd bytes)", path,
             n);
out:
    explicit_bzero(buf, sizeof(buf));
    if (rc != SCTPM_RC_SUCCESS) {
        explicit_bzero(key, NVSTORE_KEY_SIZE);
    }
    return rc;
}
