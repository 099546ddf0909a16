/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "emu.h"
#include "fuzz.h"
#include "nvstore.h"
#include "server.h"
#include "tpm.h"

/* A session that takes more rounds than this neither finishes nor fails: a hang. */
#define MAX_ROUNDS 100000

const struct rm_config emu_rm_config = {
    .max_objects_per_space = 32,
    .max_sessions_per_space = 8,
    .max_objects_total = 1024,
    .abandoned_sessions_max = 16,
    .abandoned_sessions_ttl = 300,
};

static char state_dir[4096];
static struct nvstore *store;
static uint8_t *pristine;
static size_t pristine_len;
static uint32_t default_buffer_size;

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

/*
 * Removes the state directory. The TPM is left as it is: OpenSSL, which it needs to shut down,
 * may have been cleaned up by its own exit handler already.
 */
static void emu_exit(void)
{
    nvstore_close(store);
    store = NULL;
    free(pristine);
    pristine = NULL;
    if (state_dir[0] != '\0') {
        (void)nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        state_dir[0] = '\0';
    }
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, why);
    exit(1);
}

void emu_init(void)
{
    const char *tmp = getenv("TMPDIR");
    char err[512];
    uint32_t min, max;
    int fresh;

    if (store != NULL) {
        return;
    }
    fuzz_quiet_logs();
    snprintf(state_dir, sizeof(state_dir), "%s/sctpm-fuzz.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(state_dir) == NULL) {
        state_dir[0] = '\0';
        die("cannot create a state directory", strerror(errno));
    }
    atexit(emu_exit);
    if (nvstore_open(state_dir, NULL, NVSTORE_FSYNC_NEVER, &store, err, sizeof(err)) !=
            SCTPM_RC_SUCCESS ||
        tpm_start(store, &fresh, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        die("cannot start the TPM", err);
    }
    if (tpm_get_state_blob(1, &pristine, &pristine_len) != SCTPM_RC_SUCCESS) {
        die("cannot read the TPM's state", "GetState failed");
    }
    default_buffer_size = tpm_buffer_size(0, &min, &max);
}

void emu_reset_tpm(void)
{
    char err[512];
    uint32_t min, max;

    tpm_power_off(0);
    (void)tpm_buffer_size(default_buffer_size, &min, &max);
    tpm_set_physical_presence(0);
    if (tpm_set_state_blob(1, pristine, pristine_len) != SCTPM_RC_SUCCESS ||
        tpm_power_on(1, TPM_STARTUP_CLEAR, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        fuzz_fail("the TPM cannot be started again: %s", err);
    }
}

/* Reads everything the server sent; returns the byte count, or -1 once it closed its end. */
static ssize_t drain(int fd)
{
    uint8_t buf[8192];
    ssize_t total = 0;

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            total += n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            return -1;
        }
        return total;
    }
}

/* Bytes we sent that the server has not read yet. */
static int unread(int fd)
{
    int n = 0;

    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : 0;
}

/*
 * Sends `len` bytes on `fd` (the first with `pass`, a descriptor, when not -1) and serves them,
 * reading the replies, until the server has read everything and answers nothing more, or closes
 * the connection.
 */
static void feed(struct server *srv, int fd, const uint8_t *buf, size_t len, int pass)
{
    size_t off = 0;
    int quiet = 0;

    if (pass >= 0 && len > 0) {
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = {(void *)(uintptr_t)buf, 1};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf)};
        struct cmsghdr *h;

        memset(&ctl, 0, sizeof(ctl));
        h = CMSG_FIRSTHDR(&msg);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &pass, sizeof(int));
        if (sendmsg(fd, &msg, MSG_NOSIGNAL) == 1) {
            off = 1;
        }
    }
    for (int round = 0; round < MAX_ROUNDS; round++) {
        ssize_t got;

        if (off < len) {
            ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                off = len; /* the server hung up: what is left will never be read */
            }
        }
        if (server_poll(srv, 0) < 0) {
            fuzz_fail("the server loop failed");
        }
        got = drain(fd);
        if (got < 0) {
            return;
        }
        quiet = off == len && got == 0 && unread(fd) == 0 ? quiet + 1 : 0;
        if (quiet == 2) {
            return;
        }
    }
    fuzz_fail("the server neither served %zu bytes nor closed the connection", len);
}

/* A socketpair whose one end the server adopts; returns the other end, or -1. */
static int connect_to(struct server *srv, int control, int as_tcp)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        return -1;
    }
    if (server_adopt(srv, sv[0], control, as_tcp) != 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    return sv[1];
}

/* Closes our end and lets the server notice. */
static void hang_up(struct server *srv, int fd)
{
    close(fd);
    (void)server_poll(srv, 0);
}

void emu_session(unsigned flags, const uint8_t *ctrl, size_t ctrl_len, const uint8_t *data,
                 size_t data_len)
{
    struct server_config cfg = {
        .unix_mode = 0600,
        .unix_gid = (gid_t)-1,
        .ctrl_dialect = flags & EMU_SWTPM ? PROTO_DIALECT_SWTPM : PROTO_DIALECT_UNKNOWN,
        .platform_uids = {getuid()},
        .n_platform_uids = 1,
        .max_connections = 16,
        .max_command = TPM_MAX_COMMAND,
        .no_rm = !!(flags & EMU_NO_RM),
        .rm = emu_rm_config,
    };
    struct server *srv = NULL;
    char err[256];
    int as_tcp = !!(flags & EMU_UNTRUSTED), pass[2] = {-1, -1}, fd;

    if (server_create(&cfg, &srv, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        fuzz_fail("server_create: %s", err);
    }
    if ((flags & EMU_PASS_FD) && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pass) != 0) {
        pass[0] = pass[1] = -1;
    }
    if (ctrl_len > 0) {
        fd = connect_to(srv, 1, as_tcp);
        if (fd >= 0) {
            feed(srv, fd, ctrl, ctrl_len, pass[0]);
            hang_up(srv, fd);
        }
    }
    if (pass[0] >= 0) {
        close(pass[0]); /* the server has its own copy, if it took it */
    }
    if (data_len > 0) {
        /* Handed over with SET_DATAFD, or else a connection of its own. */
        fd = pass[1] >= 0 ? pass[1] : connect_to(srv, 0, as_tcp);
        pass[1] = -1;
        if (fd >= 0) {
            feed(srv, fd, data, data_len, -1);
            hang_up(srv, fd);
        }
    }
    if (pass[1] >= 0) {
        close(pass[1]);
    }
    server_destroy(srv);
    /* Here, so that an input that leaves the TPM unable to start again is the one that fails. */
    emu_reset_tpm();
}
