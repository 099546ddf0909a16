/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOGMODULE emulator
#include "daemon.h"
#include "io.h"
#include "log.h"
#include "mfg.h"
#include "tpm.h"

/*
 * Tells systemd (Type=notify) that we are ready or stopping: one datagram to $NOTIFY_SOCKET, the
 * documented sd_notify protocol. Done by hand because linking libsystemd (and what it pulls in)
 * would add most of a megabyte to the daemon's resident size for these few lines.
 */
static void notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len;
    int fd;

    if (path == NULL || (path[0] != '/' && path[0] != '@') ||
        (len = strlen(path)) >= sizeof(sa.sun_path)) {
        return;
    }
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@') {
        sa.sun_path[0] = '\0'; /* an abstract socket */
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
        LOG_DEBUG("sd_notify to %s failed: %s", path, strerror(errno));
    }
    close(fd);
}

/*
 * With --daemon the parent waits on a pipe: the child writes "0" once it serves, or "1" and the
 * reason. So `sctpmd --daemon` returns only when the service is really there, and a start-up
 * error reaches the terminal that started it.
 */
static int ready_fd = -1;

static void report_ready(int ok, const char *msg)
{
    char buf[600];
    int n;

    if (ready_fd < 0) {
        return;
    }
    n = snprintf(buf, sizeof(buf), "%d%s", ok ? 0 : 1, msg != NULL ? msg : "");
    (void)write_full(ready_fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    close(ready_fd);
    ready_fd = -1;
}

static int detach(void)
{
    int p[2];
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "sctpmd: error: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "sctpmd: error: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        char buf[600];
        ssize_t n;
        close(p[1]);
        n = read_full(p[0], buf, sizeof(buf) - 1);
        close(p[0]);
        if (n >= 1 && buf[0] == '0') {
            _exit(0);
        }
        buf[n > 0 ? n : 0] = '\0';
        fprintf(stderr, "sctpmd: error: %s\n",
                n > 1 ? buf + 1 : "the daemon exited before it was ready");
        waitpid(pid, NULL, 0);
        _exit(1);
    }
    close(p[0]);
    ready_fd = p[1];
    setsid();
    return 0;
}

static int write_pidfile(const char *path, char *err, size_t errlen)
{
    char tmp[PATH_MAX], buf[32];
    int fd, n;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "pidfile path %s is too long", path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create pidfile %s: %s", path, strerror(errno));
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (write_full(fd, buf, (size_t)n) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write pidfile %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/*
 * First start must be all or nothing: libtpms saves its state after every command, so a crash
 * while the identity (EKs, certificates, SRK) is being made would leave a TPM that looks
 * manufactured but is not. A marker file exists from before the new TPM's first save until its
 * identity is complete; finding it at start means the last first start was interrupted, and its
 * partial state (which cannot hold anybody's keys yet) is discarded so manufacture runs again.
 */
#define MANUFACTURING ".manufacturing"

static int dirfd_of(struct nvstore *store)
{
    return open(nvstore_dir(store), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Returns 1 when the state holds no TPM yet (the marker is then in place), 0 when it holds one,
 * -1 with the reason in err. */
static int prepare_first_start(struct nvstore *store, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX + 64];
    struct stat sb;
    int dfd = dirfd_of(store), fd, r = -1;

    if (dfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    if (fstatat(dfd, MANUFACTURING, &sb, 0) == 0) {
        LOG_WARNING("the first start of %s was interrupted while its identity was made; "
                    "discarding the incomplete TPM and manufacturing again",
                    dir);
        if (nvstore_delete(store, "permall") != SCTPM_RC_SUCCESS ||
            nvstore_delete(store, "volatilestate") != SCTPM_RC_SUCCESS) {
            snprintf(err, errlen, "%s", nvstore_error(store));
            goto out;
        }
        (void)unlinkat(dfd, MFG_CA_CERT_FILE, 0);
        (void)unlinkat(dfd, MFG_CA_KEY_FILE, 0);
    } else {
        if (nvstore_path(store, "permall", path, sizeof(path)) != 0) {
            snprintf(err, errlen, "state path too long");
            goto out;
        }
        if (stat(path, &sb) == 0) {
            r = 0; /* an existing TPM: nothing to prepare */
            goto out;
        }
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            goto out;
        }
    }
    fd = openat(dfd, MANUFACTURING, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || fsync(fd) != 0 || fsync(dfd) != 0) {
        snprintf(err, errlen, "cannot create %s/%s: %s", dir, MANUFACTURING, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        goto out;
    }
    close(fd);
    r = 1;
out:
    close(dfd);
    return r;
}

/*
 * Makes the new TPM's identity (mfg_run) in a child process, which starts libtpms on the fresh
 * state, manufactures, shuts the TPM down orderly (the state is saved) and exits; the daemon then
 * starts the TPM from that state like any restart. The daemon itself never runs the manufacturing
 * code, so it keeps none of its memory: not the EK CA's private key, not the pages of ESYS and of
 * OpenSSL's X.509 and key generation (about 1.3 MiB of resident size). The child inherits the
 * state lock, and dies with the daemon (PR_SET_PDEATHSIG), so a daemon killed mid-manufacture
 * leaves no writer behind; the MANUFACTURING marker makes the next start begin again.
 * Returns 0, or -1 with the reason in err.
 */
static int manufacture_in_child(struct nvstore *store, const char *dir, char *err, size_t errlen)
{
    pid_t parent = getpid(), pid, w;
    int pfd[2], st = 0;
    size_t got = 0;
    ssize_t n;

    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        char e[PATH_MAX + 700] = "";
        int fresh = 0, ok = 0;

        close(pfd[0]);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
            _exit(1);
        }
        if (tpm_start(store, &fresh, e, sizeof(e)) == SCTPM_RC_SUCCESS) {
            if (!fresh) {
                snprintf(e, sizeof(e), "a state appeared in %s while the TPM was being made", dir);
                tpm_power_off(0);
            } else if (mfg_run(dir, e, sizeof(e)) == SCTPM_RC_SUCCESS) {
                tpm_stop();
                ok = 1;
            } else {
                /* Nothing of the half-made TPM may be saved: no orderly shutdown. */
                tpm_power_off(0);
            }
        }
        if (!ok) {
            (void)!write(pfd[1], e, strlen(e));
        }
        /* The state, its lock and the pipe are the daemon's; the lock stays held through its copy.
         */
        close_from(3);
        _exit(ok ? 0 : 1);
    }
    close(pfd[1]);
    while (got + 1 < errlen &&
           ((n = read(pfd[0], err + got, errlen - 1 - got)) > 0 || (n < 0 && errno == EINTR))) {
        got += n > 0 ? (size_t)n : 0;
    }
    if (errlen > 0) {
        err[got] = '\0';
    }
    close(pfd[0]);
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        return 0;
    }
    if (got == 0) {
        if (w == pid && WIFSIGNALED(st)) {
            snprintf(err, errlen, "the manufacturing process died of signal %d", WTERMSIG(st));
        } else {
            snprintf(err, errlen, "the manufacturing process failed");
        }
    }
    return -1;
}

static void fail_start(const char *msg)
{
    LOG_ERROR("%s", msg);
    if (ready_fd >= 0) {
        report_ready(0, msg);
    } else if (!log_enabled(&log_this_module, LOG_LEVEL_ERROR)) {
        fprintf(stderr, "sctpmd: error: %s\n", msg);
    }
}

int daemon_run(const struct daemon_config *cfg)
{
    struct nvstore *store = NULL;
    struct server *srv = NULL;
    struct server_config scfg = cfg->server;
    uint8_t key[NVSTORE_KEY_SIZE];
    char err[PATH_MAX + 700], msg[2 * PATH_MAX + 1500];
    int have_key = 0, fresh = 0, new_tpm, status = 1, tpm_on = 0, pid_written = 0;
    struct timespec t0, t1;
    char dir[PATH_MAX];

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cfg->detach && detach() != 0) {
        return 1;
    }
    server_block_signals();
    if (cfg->key_file != NULL) {
        if (nvstore_read_key_file(cfg->key_file, key, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
            fail_start(err);
            goto out;
        }
        have_key = 1;
        scfg.key_file = 1;
    }
    if (nvstore_open(cfg->state_dir, have_key ? key : NULL, cfg->fsync_mode, &store, err,
                     sizeof(err)) != SCTPM_RC_SUCCESS) {
        fail_start(err);
        goto out;
    }
    if (realpath(cfg->state_dir, dir) == NULL) {
        snprintf(dir, sizeof(dir), "%s", cfg->state_dir);
    }
    new_tpm = prepare_first_start(store, dir, err, sizeof(err));
    if (new_tpm < 0) {
        fail_start(err);
        goto out;
    }
    if (new_tpm) {
        if (manufacture_in_child(store, dir, err, sizeof(err)) != 0) {
            snprintf(msg, sizeof(msg),
                     "cannot manufacture the new TPM in %s: %s (nothing was "
                     "saved; the next start tries again)",
                     dir, err);
            fail_start(msg);
            goto out;
        }
        {
            int dfd = dirfd_of(store);
            int bad = dfd < 0 || unlinkat(dfd, MANUFACTURING, 0) != 0 || fsync(dfd) != 0;
            if (dfd >= 0) {
                close(dfd);
            }
            if (bad) {
                snprintf(msg, sizeof(msg), "cannot remove %s/%s: %s", dir, MANUFACTURING,
                         strerror(errno));
                fail_start(msg);
                goto out;
            }
        }
    }
    if (tpm_start(store, &fresh, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        snprintf(msg, sizeof(msg),
                 "cannot start the TPM from state %s: %s (the state was left "
                 "untouched)",
                 dir, err);
        fail_start(msg);
        goto out;
    }
    tpm_on = 1;
    if (fresh) {
        /* The child saved the TPM it made; finding none now means it was not saved. */
        fail_start("the manufactured TPM was not saved");
        goto out;
    }
    if (new_tpm) {
        LOG_INFO("manufactured a new TPM in %s: EKs at 0x81010001 (RSA) and 0x81010002 (ECC) "
                 "with certificates from %s/ek-ca.pem, SRK at 0x81000001",
                 dir, dir);
    }
    if (server_create(&scfg, &srv, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        fail_start(err);
        goto out;
    }
    if (cfg->pidfile != NULL && write_pidfile(cfg->pidfile, err, sizeof(err)) != 0) {
        fail_start(err);
        goto out;
    }
    pid_written = cfg->pidfile != NULL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    LOG_INFO("ready in %ld ms (state %s%s; busy-poll %u us)",
             (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000), dir,
             have_key ? ", encrypted" : "", scfg.busy_poll_us);
    notify("READY=1\nSTATUS=serving");
    if (cfg->detach) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            if (null > STDERR_FILENO) {
                close(null);
            }
        }
        report_ready(1, NULL);
    }
    status = server_run(srv) == 0 ? 0 : 1;
    notify("STOPPING=1");
out:
    server_destroy(srv);
    if (tpm_on) {
        /* Shutdown(STATE) then save: the next start is orderly and DA counters do not climb. */
        tpm_stop();
        LOG_INFO("TPM shut down orderly; state saved");
    }
    /*
     * The pidfile goes before the state lock is released: the next daemon on this state (one the
     * sctpm TCTI starts after an --idle-exit, say) may write the same pidfile as soon as it holds
     * the lock, and must not see it removed under it.
     */
    if (pid_written) {
        unlink(cfg->pidfile);
    }
    nvstore_close(store);
    explicit_bzero(key, sizeof(key));
    report_ready(0, "the daemon exited before it was ready");
    return status;
}
