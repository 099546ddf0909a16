/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * select: the sctpm order of TPMs (see select.h and docs/tcti-sctpm.md).
 *
 * Every candidate is checked by hand before a tpm2-tss TCTI is asked to open it: tctildr and the
 * TCTIs print an ERROR line for every failed init, and a program that merely has no TPM chip
 * should not print two of them on its way to the emulator. So a device node is stat()ed and
 * opened, a socket connected, a TCP simulator's control channel spoken to (with time limits),
 * and only then is the TCTI initialised.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <tss2/tss2_tctildr.h>

#define LOGMODULE select
#include "io.h"
#include "log.h"
#include "select-priv.h"
#include "select.h"

#ifndef SCTPM_SCTPMD_PATH
#define SCTPM_SCTPMD_PATH "/usr/local/sbin/sctpmd"
#endif

/* How long a TCP simulator may take to acknowledge a control code, and any TPM to answer. */
#define PROBE_TIMEOUT_MS 5000
/* How long a first start (which manufactures the EKs) may take before we give up waiting. */
#define START_TIMEOUT_MS 120000
/*
 * How long a client waits for another one that holds the start-up lock: longer than the holder
 * can take (START_TIMEOUT_MS, STATE_FREE_TIMEOUT_MS and a probe).
 */
#define LOCK_TIMEOUT_MS 200000
/* How long a stopping sctpmd may take to save the state and release the state directory. */
#define STATE_FREE_TIMEOUT_MS 15000

/* ---- small helpers ---- */

static void setf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void setf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Records a candidate that was passed over, in choice->skipped and at debug level. */
static void skip(struct select_choice *ch, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void skip(struct select_choice *ch, const char *fmt, ...)
{
    char item[512];
    size_t used = strlen(ch->skipped);
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(item, sizeof(item), fmt, ap);
    va_end(ap);
    LOG_DEBUG("skipped %s", item);
    if (used + 1 < sizeof(ch->skipped)) {
        setf(ch->skipped + used, sizeof(ch->skipped) - used, "%s%s", used > 0 ? "; " : "", item);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);

    if (n >= len) {
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

/* A decimal number of at most `max`, nothing else. */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || errno != 0 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "yes", "true", "on"};
    static const char *const no[] = {"0", "no", "false", "off"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* ---- options ---- */

/*
 * Sets one option. `from` names where the value came from ("SCTPM_MSSIM_PORT", "option port"),
 * for the error sentence.
 */
static int set_opt(struct select_opts *o, const char *key, const char *value, const char *from,
                   char *err, size_t errlen)
{
    unsigned long v;

    if (strcmp(key, "devices") == 0) {
        if (copy_str(o->devices, sizeof(o->devices), value) != 0) {
            setf(err, errlen, "%s is longer than %zu bytes", from, sizeof(o->devices) - 1);
            return -1;
        }
    } else if (strcmp(key, "system-socket") == 0) {
        if (copy_str(o->system_socket, sizeof(o->system_socket), value) != 0) {
            setf(err, errlen, "%s is longer than %d bytes, too long for a Unix socket", from,
                 SELECT_SOCKET_MAX);
            return -1;
        }
    } else if (strcmp(key, "port") == 0) {
        if (parse_uint(value, 65534, &v) != 0) {
            setf(err, errlen, "%s='%s' is not a port from 0 (none) to 65534", from, value);
            return -1;
        }
        o->port = (unsigned)v;
    } else if (strcmp(key, "autostart") == 0) {
        if (parse_bool(value, &o->autostart) != 0) {
            setf(err, errlen, "%s='%s' is neither yes nor no", from, value);
            return -1;
        }
    } else if (strcmp(key, "idle-exit") == 0) {
        if (parse_uint(value, 31536000, &v) != 0) {
            setf(err, errlen, "%s='%s' is not a number of seconds from 0 (never) to 31536000", from,
                 value);
            return -1;
        }
        o->idle_exit = (unsigned)v;
    } else if (strcmp(key, "sctpmd") == 0) {
        if (value[0] != '/' || copy_str(o->sctpmd, sizeof(o->sctpmd), value) != 0) {
            setf(err, errlen, "%s='%s' is not an absolute path", from, value);
            return -1;
        }
    } else {
        setf(err, errlen, "unknown option '%s' (known: devices, port, autostart, idle-exit)", key);
        return -1;
    }
    return 0;
}

int select_opts_init(struct select_opts *o, const char *sctpmd, char *err, size_t errlen)
{
    static const struct {
        const char *env;
        const char *key;
        int empty_is_value; /* "" means "none" rather than "unset" */
    } vars[] = {
        {"SCTPM_TPM_DEVICES", "devices", 1}, {"SCTPM_SYSTEM_SOCKET", "system-socket", 1},
        {"SCTPM_MSSIM_PORT", "port", 0},     {"SCTPM_AUTOSTART", "autostart", 0},
        {"SCTPM_IDLE_EXIT", "idle-exit", 0}, {"SCTPM_SCTPMD", "sctpmd", 0},
    };

    memset(o, 0, sizeof(*o));
    strcpy(o->devices, SELECT_DEFAULT_DEVICES);
    strcpy(o->system_socket, SELECT_SYSTEM_SOCKET);
    o->port = SELECT_DEFAULT_PORT;
    o->autostart = 1;
    o->idle_exit = SELECT_DEFAULT_IDLE_EXIT;
    if (copy_str(o->sctpmd, sizeof(o->sctpmd), sctpmd) != 0) {
        setf(err, errlen, "the sctpmd path is too long");
        return -1;
    }
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i].env);
        if (v == NULL || (v[0] == '\0' && !vars[i].empty_is_value)) {
            continue;
        }
        if (set_opt(o, vars[i].key, v, vars[i].env, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

int select_opts_parse(struct select_opts *o, const char *options, char *err, size_t errlen)
{
    const char *p = options;

    if (p == NULL) {
        return 0;
    }
    while (*p != '\0') {
        char item[1100], from[64], *eq;
        size_t n = strcspn(p, ",");
        if (n >= sizeof(item)) {
            setf(err, errlen, "an sctpm option is longer than %zu bytes", sizeof(item) - 1);
            return -1;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        p += n;
        if (*p == ',') {
            p++;
        }
        if (n == 0) {
            continue;
        }
        eq = strchr(item, '=');
        if (eq == NULL) {
            setf(err, errlen, "sctpm option '%.64s' is not key=value", item);
            return -1;
        }
        *eq = '\0';
        /* The sctpmd binary comes from the environment or the build, never a conf string. */
        if (strcmp(item, "sctpmd") == 0 || strcmp(item, "system-socket") == 0) {
            setf(err, errlen, "unknown option '%.64s' (known: devices, port, autostart, idle-exit)",
                 item);
            return -1;
        }
        setf(from, sizeof(from), "option %.40s", item);
        if (set_opt(o, item, eq + 1, from, err, errlen) != 0) {
            return -1;
        }
    }
    return 0;
}

int select_conf_is_sctpm(const char *conf, const char **options)
{
    if (conf == NULL || conf[0] == '\0') {
        *options = "";
        return 1;
    }
    if (strncmp(conf, "sctpm", 5) == 0 && (conf[5] == '\0' || conf[5] == ':')) {
        *options = conf[5] == ':' ? conf + 6 : "";
        return 1;
    }
    return 0;
}

int select_list_next(const char **pos, char *item, size_t itemlen)
{
    const char *p = *pos, *end;
    size_t n;

    while (*p == ':') {
        p++;
    }
    if (*p == '\0') {
        *pos = p;
        return 0;
    }
    end = strchr(p, ':');
    if (end == NULL) {
        end = p + strlen(p);
    }
    n = (size_t)(end - p);
    *pos = end;
    if (n >= itemlen) {
        return -1;
    }
    memcpy(item, p, n);
    item[n] = '\0';
    return 1;
}

/* ---- paths ---- */

/* dir + "/" + name, without doubling a trailing slash of dir. */
static int join(char *out, size_t len, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    int r;

    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    r = snprintf(out, len, "%.*s/%s", (int)n, dir, name);
    return r < 0 || (size_t)r >= len ? -1 : 0;
}

static int is_abs(const char *s)
{
    return s != NULL && s[0] == '/';
}

int select_paths_compute(struct select_paths *p, uid_t uid, const char *xdg_runtime_dir,
                         const char *xdg_state_home, const char *home, char *err, size_t errlen)
{
    int r;

    memset(p, 0, sizeof(*p));
    if (is_abs(xdg_state_home)) {
        r = join(p->state_dir, sizeof(p->state_dir), xdg_state_home, "sctpm");
    } else if (uid == 0) {
        p->system = 1;
        r = copy_str(p->state_dir, sizeof(p->state_dir), SELECT_SYSTEM_STATE_DIR);
    } else if (is_abs(home)) {
        r = join(p->state_dir, sizeof(p->state_dir), home, ".local/state/sctpm");
    } else {
        setf(err, errlen,
             "neither XDG_STATE_HOME nor HOME is an absolute path, so there is no "
             "place for the TPM state");
        return -1;
    }
    if (r != 0) {
        setf(err, errlen, "the state directory path is too long");
        return -1;
    }
    if (p->system) {
        r = copy_str(p->runtime_dir, sizeof(p->runtime_dir), SELECT_SYSTEM_RUNTIME_DIR);
    } else if (is_abs(xdg_runtime_dir)) {
        r = join(p->runtime_dir, sizeof(p->runtime_dir), xdg_runtime_dir, "sctpm");
    } else {
        r = copy_str(p->runtime_dir, sizeof(p->runtime_dir), p->state_dir);
    }
    if (r != 0 || join(p->lock, sizeof(p->lock), p->runtime_dir, "sctpmd.lock") != 0 ||
        join(p->pidfile, sizeof(p->pidfile), p->runtime_dir, "sctpmd.pid") != 0 ||
        join(p->log, sizeof(p->log), p->runtime_dir, "sctpmd.log") != 0) {
        setf(err, errlen, "the runtime directory path is too long");
        return -1;
    }
    if (join(p->socket, sizeof(p->socket), p->runtime_dir, "sctpmd.sock") != 0) {
        setf(err, errlen,
             "the socket %.200s/sctpmd.sock would be longer than the %d bytes a "
             "Unix socket path may have; set XDG_RUNTIME_DIR to a shorter directory",
             p->runtime_dir, SELECT_SOCKET_MAX);
        return -1;
    }
    return 0;
}

int select_private_dir(const char *dir, uid_t uid, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct stat sb;

    if (copy_str(path, sizeof(path), dir) != 0 || path[0] != '/') {
        setf(err, errlen, "%.200s is not a usable absolute path", dir);
        return -1;
    }
    /*
     * mkdir -p: every missing component is created private. The mode is set again after mkdir
     * because the caller's umask may take more away: tpm2-tools run with umask 0177, which would
     * leave a directory that cannot even be entered.
     */
    for (char *s = strchr(path + 1, '/');; s = strchr(s + 1, '/')) {
        if (s != NULL) {
            *s = '\0';
        }
        if (mkdir(path, 0700) == 0) {
            if (chmod(path, 0700) != 0) {
                setf(err, errlen, "cannot set the mode of %.200s: %s", path, strerror(errno));
                return -1;
            }
        } else if (errno != EEXIST) {
            setf(err, errlen, "cannot create %.200s: %s", path, strerror(errno));
            return -1;
        }
        if (s == NULL) {
            break;
        }
        *s = '/';
    }
    if (lstat(dir, &sb) != 0) {
        setf(err, errlen, "cannot examine %.200s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        setf(err, errlen,
             "%.200s is not a directory (a symlink or another file); refusing to use "
             "it",
             dir);
        return -1;
    }
    if (sb.st_uid != uid) {
        setf(err, errlen, "%.200s belongs to uid %u, not to uid %u; refusing to use it", dir,
             (unsigned)sb.st_uid, (unsigned)uid);
        return -1;
    }
    if ((sb.st_mode & 022) != 0) {
        setf(err, errlen, "%.200s is writable by others (mode %04o); refusing to use it", dir,
             (unsigned)(sb.st_mode & 07777));
        return -1;
    }
    return 0;
}

/* ---- talking to candidates ---- */

static int send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly `len` bytes within `timeout_ms`. Returns 0 or a negative errno (ETIMEDOUT). */
static int recv_timeout(int fd, void *buf, size_t len, unsigned timeout_ms)
{
    uint8_t *p = buf;
    uint64_t end = now_ms() + timeout_ms;

    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t now = now_ms();
        ssize_t n;
        int r;
        if (now >= end) {
            return -ETIMEDOUT;
        }
        r = poll(&pfd, 1, (int)(end - now));
        if (r < 0 && errno != EINTR) {
            return -errno;
        }
        if (r <= 0) {
            continue;
        }
        n = recv(fd, p, len, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -ECONNRESET;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (copy_str(sa.sun_path, sizeof(sa.sun_path), path) != 0) {
        return -ENAMETOOLONG;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static const char *connect_error(int e)
{
    switch (e) {
    case ENOENT:
        return "no socket";
    case ECONNREFUSED:
        return "nothing listens on it (a stale socket)";
    default:
        return strerror(e);
    }
}

/*
 * Sends TPM2_GetRandom(8) and waits up to PROBE_TIMEOUT_MS for something shaped like a TPM
 * response. Any response code will do (a simulator nobody started answers TPM_RC_INITIALIZE, and
 * that is still a TPM); what matters is that a TPM, not some other service, is at the other end.
 */
static TSS2_RC probe(TSS2_TCTI_CONTEXT *t, char *why, size_t whylen)
{
    static const uint8_t getrandom[12] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8};
    uint8_t rsp[64];
    size_t n = sizeof(rsp);
    TSS2_RC rc;

    rc = Tss2_Tcti_Transmit(t, sizeof(getrandom), getrandom);
    if (rc != TSS2_RC_SUCCESS) {
        setf(why, whylen, "sending a test command failed (0x%08x)", rc);
        return rc;
    }
    rc = Tss2_Tcti_Receive(t, &n, rsp, PROBE_TIMEOUT_MS);
    if (rc != TSS2_RC_SUCCESS) {
        setf(why, whylen, "no answer to a test command within %d ms (0x%08x)", PROBE_TIMEOUT_MS,
             rc);
        return rc;
    }
    if (n < 10 || rsp[0] != 0x80 || (rsp[1] != 0x01 && rsp[1] != 0x02) ||
        ((uint32_t)rsp[2] << 24 | (uint32_t)rsp[3] << 16 | (uint32_t)rsp[4] << 8 | rsp[5]) != n) {
        setf(why, whylen, "the answer to a test command is not a TPM response");
        return TSS2_TCTI_RC_MALFORMED_RESPONSE;
    }
    return TSS2_RC_SUCCESS;
}

/* Opens `conf` through tctildr and probes it; on failure nothing is left open. */
static TSS2_RC open_probed(const char *conf, TSS2_TCTI_CONTEXT **tcti, char *why, size_t whylen)
{
    TSS2_TCTI_CONTEXT *t = NULL;
    TSS2_RC rc;

    rc = Tss2_TctiLdr_Initialize(conf, &t);
    if (rc != TSS2_RC_SUCCESS) {
        setf(why, whylen, "the TCTI could not open it (0x%08x)", rc);
        return rc;
    }
    rc = probe(t, why, whylen);
    if (rc != TSS2_RC_SUCCESS) {
        select_finalize(t);
        return rc;
    }
    *tcti = t;
    return TSS2_RC_SUCCESS;
}

/* ---- 1. device nodes ---- */

static TSS2_RC try_devices(const struct select_opts *o, TSS2_TCTI_CONTEXT **tcti,
                           struct select_choice *ch)
{
    const char *pos = o->devices;
    char dev[PATH_MAX], conf[PATH_MAX + 8];
    int r;

    for (;;) {
        struct stat sb;
        TSS2_RC rc;
        int fd;
        r = select_list_next(&pos, dev, sizeof(dev));
        if (r == 0) {
            break;
        }
        if (r < 0) {
            skip(ch, "a device path in the list is too long");
            continue;
        }
        if (stat(dev, &sb) != 0) {
            skip(ch, "%s: %s", dev, errno == ENOENT ? "does not exist" : strerror(errno));
            continue;
        }
        if (!S_ISCHR(sb.st_mode)) {
            skip(ch, "%s: not a character device", dev);
            continue;
        }
        /* Busy (/dev/tpm0 is exclusive) or not ours to open: say so and move on. */
        fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            skip(ch, "%s: cannot open it: %s", dev, strerror(errno));
            continue;
        }
        close(fd);
        setf(conf, sizeof(conf), "device:%s", dev);
        rc = Tss2_TctiLdr_Initialize(conf, tcti);
        if (rc != TSS2_RC_SUCCESS) {
            *tcti = NULL;
            skip(ch, "%s: tcti-device could not use it (0x%08x)", dev, rc);
            continue;
        }
        setf(ch->conf, sizeof(ch->conf), "%s", conf);
        setf(ch->reason, sizeof(ch->reason), "%s exists and opened (%s)", dev,
             strstr(dev, "tpmrm") != NULL ? "kernel resource manager"
                                          : "TPM device, no resource manager");
        return TSS2_RC_SUCCESS;
    }
    return TSS2_TCTI_RC_NO_CONNECTION;
}

/* ---- 2. a running sctpmd on a Unix socket ---- */

/* Connects to PATH and PATH.ctrl first, so that a missing daemon costs no TCTI error line. */
static TSS2_RC try_socket(const char *path, TSS2_TCTI_CONTEXT **tcti, char *conf, size_t conflen,
                          char *why, size_t whylen)
{
    char ctrl[SELECT_SOCKET_MAX + 8];
    int fd;

    if (strpbrk(path, ",=") != NULL) {
        setf(why, whylen, "the path contains ',' or '=', which a TCTI configuration cannot carry");
        return TSS2_TCTI_RC_BAD_VALUE;
    }
    setf(ctrl, sizeof(ctrl), "%s.ctrl", path);
    fd = connect_unix(path);
    if (fd >= 0) {
        close(fd);
        fd = connect_unix(ctrl);
    }
    if (fd < 0) {
        setf(why, whylen, "%s", connect_error(-fd));
        return TSS2_TCTI_RC_NO_CONNECTION;
    }
    close(fd);
    setf(conf, conflen, "mssim:path=%s", path);
    return open_probed(conf, tcti, why, whylen);
}

/* ---- 3. a simulator on a localhost TCP port ---- */

/*
 * Speaks to the control port (port + 1) as tcti-mssim's init will, but with time limits, so that
 * an unrelated service that accepts and stays silent cannot hang us. POWER_ON (1) and NV_ON (11)
 * are acknowledged with 0 by an mssim server (and change nothing on a running one). swtpm reads
 * code 1 as GET_CAPABILITY and answers 8 bytes, result 0 and a non-zero capability mask, so the
 * second word tells the two protocols apart. Returns 0 for mssim, 1 for swtpm, -1 otherwise.
 */
static int ctrl_probe(const struct addrinfo *ai, unsigned port, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    uint8_t power_on[4] = {0, 0, 0, 1}, nv_on[4] = {0, 0, 0, 11}, ack[4];
    int fd, r = -1, e;

    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ss.ss_family == AF_INET) {
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)(port + 1));
    } else {
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)(port + 1));
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0) {
        setf(why, whylen, "control port %u: %s", port + 1, strerror(errno));
        goto out;
    }
    e = send_all(fd, power_on, sizeof(power_on));
    if (e == 0) {
        e = recv_timeout(fd, ack, sizeof(ack), PROBE_TIMEOUT_MS);
    }
    if (e != 0 || memcmp(ack, "\0\0\0\0", 4) != 0) {
        setf(why, whylen, "control port %u does not acknowledge POWER_ON: %s", port + 1,
             e != 0 ? strerror(-e) : "an error code");
        goto out;
    }
    e = send_all(fd, nv_on, sizeof(nv_on));
    if (e == 0) {
        e = recv_timeout(fd, ack, sizeof(ack), PROBE_TIMEOUT_MS);
    }
    if (e != 0) {
        setf(why, whylen, "control port %u does not acknowledge NV_ON: %s", port + 1, strerror(-e));
        goto out;
    }
    r = memcmp(ack, "\0\0\0\0", 4) == 0 ? 0 : 1;
out:
    if (fd >= 0) {
        close(fd);
    }
    return r;
}

static TSS2_RC try_port(unsigned port, TSS2_TCTI_CONTEXT **tcti, struct select_choice *ch)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[8], host[NI_MAXHOST], why[256] = "nothing listens";
    TSS2_RC rc = TSS2_TCTI_RC_NO_CONNECTION;

    setf(service, sizeof(service), "%u", port);
    if (getaddrinfo("localhost", service, &hints, &res) != 0) {
        skip(ch, "localhost:%u: localhost does not resolve", port);
        return rc;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd, kind;
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), NULL, 0, NI_NUMERICHOST) !=
            0) {
            continue;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            if (fd >= 0) {
                close(fd);
            }
            continue; /* nothing on this address; "localhost" may have another */
        }
        close(fd);
        kind = ctrl_probe(ai, port, why, sizeof(why));
        if (kind < 0) {
            continue;
        }
        setf(ch->conf, sizeof(ch->conf), "%s:host=%s,port=%u", kind == 0 ? "mssim" : "swtpm", host,
             port);
        rc = open_probed(ch->conf, tcti, why, sizeof(why));
        if (rc == TSS2_RC_SUCCESS) {
            if (kind == 0) {
                setf(ch->reason, sizeof(ch->reason),
                     "a TPM simulator answers on localhost:%u (mssim protocol)", port);
            } else {
                setf(ch->reason, sizeof(ch->reason),
                     "a swtpm answers on localhost:%u (tcti-swtpm, a connection per command)",
                     port);
            }
            break;
        }
        ch->conf[0] = '\0';
    }
    freeaddrinfo(res);
    if (rc != TSS2_RC_SUCCESS) {
        skip(ch, "localhost:%u: %s", port, why);
    }
    return rc;
}

/* ---- 4. the embedded default: start sctpmd ---- */

/* Takes an exclusive flock on `fd`, waiting at most timeout_ms. */
static int lock_wait(int fd, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    unsigned nap = 1;

    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return -errno;
        }
        if (now_ms() >= end) {
            return -ETIMEDOUT;
        }
        sleep_ms(nap);
        nap = nap < 20 ? nap * 2 : 20;
    }
    return 0;
}

/*
 * Waits until no sctpmd holds the state directory's lock (DIR/.lock, see emulator/nvstore.c). A
 * daemon that is stopping after --idle-exit has already closed its socket but still saves the
 * state; starting a new one before it is done would only fail on that lock.
 */
static int wait_state_free(const char *state_dir, char *why, size_t whylen)
{
    char path[PATH_MAX + 8], pid[32] = "";
    uint64_t end = now_ms() + STATE_FREE_TIMEOUT_MS;
    int fd, r = 0;
    ssize_t n;

    setf(path, sizeof(path), "%s/.lock", state_dir);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return 0; /* no daemon ever ran here, or it cannot be ours to wait for */
    }
    while (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        if (now_ms() >= end) {
            n = pread(fd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            setf(why, whylen,
                 "the state %s is in use by another sctpmd (pid %s) that does not "
                 "serve the expected socket",
                 state_dir, pid[0] ? pid : "unknown");
            r = -1;
            break;
        }
        sleep_ms(10);
    }
    close(fd); /* also drops our shared lock */
    return r;
}

/*
 * Runs `sctpmd --daemon ...` and waits until it is ready or has failed: sctpmd --daemon returns
 * only once its sockets listen (emulator/daemon.c), and prints the reason when it cannot start.
 * The child gets none of the caller's descriptors, default signal handling and an empty signal
 * mask, "/" as its working directory and umask 077; standard error is a pipe to us until the
 * daemon is ready, for the error sentence. Returns 0, or -1 with a sentence in `why`.
 */
static int spawn_sctpmd(struct select_opts *o, struct select_paths *p, char *why, size_t whylen)
{
    char idle[16], out[512] = "";
    char opt_state[] = "--state", opt_unix[] = "--unix", opt_no_tcp[] = "--no-tcp",
         opt_daemon[] = "--daemon", opt_pidfile[] = "--pidfile", opt_idle[] = "--idle-exit",
         opt_log[] = "--log-file";
    char *argv[] = {o->sctpmd,  opt_state,  p->state_dir, opt_unix,   p->socket,
                    opt_no_tcp, opt_daemon, opt_pidfile,  p->pidfile, opt_idle,
                    idle,       opt_log,    p->log,       NULL};
    int errpipe[2] = {-1, -1}, nullfd = -1, status = 0, r = -1;
    size_t got = 0;
    sigset_t all, old;
    uint64_t end;
    pid_t pid;

    setf(idle, sizeof(idle), "%u", o->idle_exit);
    if (access(o->sctpmd, X_OK) != 0) {
        setf(why, whylen, "cannot execute %s: %s (SCTPM_SCTPMD names another binary)", o->sctpmd,
             strerror(errno));
        return -1;
    }
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nullfd < 0 || pipe2(errpipe, O_CLOEXEC) != 0) {
        setf(why, whylen, "cannot prepare to start sctpmd: %s", strerror(errno));
        goto out;
    }
    /* No handler of the host program may run in the child before its dispositions are reset. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigset_t none;
        /* Only async-signal-safe calls from here on: the parent may have other threads. */
        for (int s = 1; s < NSIG; s++) {
            (void)sigaction(s, &dfl, NULL);
        }
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(nullfd, STDIN_FILENO) < 0 || dup2(nullfd, STDOUT_FILENO) < 0 ||
            dup2(errpipe[1], STDERR_FILENO) < 0) {
            _exit(127);
        }
        close_from(3);
        if (chdir("/") != 0) {
            _exit(127);
        }
        umask(077);
        execv(argv[0], argv);
        {
            static const char msg[] = "sctpmd: error: exec failed\n";
            (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        }
        _exit(127);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        setf(why, whylen, "cannot fork to start sctpmd: %s", strerror(errno));
        goto out;
    }
    close(errpipe[1]);
    errpipe[1] = -1;
    /* EOF on the pipe: the daemon is ready (it then points stderr at /dev/null) or gone. */
    end = now_ms() + START_TIMEOUT_MS;
    for (;;) {
        struct pollfd pfd = {.fd = errpipe[0], .events = POLLIN};
        uint64_t now = now_ms();
        char buf[256];
        ssize_t n;
        int pr;
        if (now >= end) {
            setf(why, whylen, "sctpmd did not report ready within %d s", START_TIMEOUT_MS / 1000);
            goto out; /* it may still come up; not waited for, it is reaped by init */
        }
        pr = poll(&pfd, 1, (int)(end - now));
        if (pr <= 0) {
            continue;
        }
        n = read(errpipe[0], buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        /* Keep the last lines: the error sentence comes last. */
        if (got + (size_t)n >= sizeof(out)) {
            size_t drop = got + (size_t)n - (sizeof(out) - 1);
            drop = drop > got ? got : drop;
            memmove(out, out + drop, got - drop);
            got -= drop;
        }
        if ((size_t)n > sizeof(out) - 1) {
            n = (ssize_t)(sizeof(out) - 1);
        }
        memcpy(out + got, buf, (size_t)n);
        got += (size_t)n;
        out[got] = '\0';
    }
    /*
     * The first child exits as soon as the daemon it forked is ready. A host program that reaps
     * children itself (a SIGCHLD handler, or SIGCHLD ignored) leaves us ECHILD: then the socket
     * check that follows decides.
     */
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 0;
            break;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *msg = out, *nl;
        while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r')) {
            out[--got] = '\0';
        }
        nl = strrchr(out, '\n');
        msg = nl != NULL ? nl + 1 : out;
        if (strncmp(msg, "sctpmd: error: ", 15) == 0) {
            msg += 15;
        }
        if (msg[0] != '\0') {
            setf(why, whylen, "%s", msg);
        } else if (WIFEXITED(status)) {
            setf(why, whylen, "sctpmd exited with status %d", WEXITSTATUS(status));
        } else {
            setf(why, whylen, "sctpmd was killed by signal %d", WTERMSIG(status));
        }
        goto out;
    }
    r = 0;
out:
    if (errpipe[0] >= 0) {
        close(errpipe[0]);
    }
    if (errpipe[1] >= 0) {
        close(errpipe[1]);
    }
    if (nullfd >= 0) {
        close(nullfd);
    }
    return r;
}

static TSS2_RC autostart(struct select_opts *o, struct select_paths *p, TSS2_TCTI_CONTEXT **tcti,
                         struct select_choice *ch)
{
    char why[512] = "", conf[SELECT_SOCKET_MAX + 16];
    uid_t uid = geteuid();
    TSS2_RC rc = TSS2_TCTI_RC_NO_CONNECTION;
    int lockfd = -1, e;

    if (select_private_dir(p->runtime_dir, uid, why, sizeof(why)) != 0 ||
        select_private_dir(p->state_dir, uid, why, sizeof(why)) != 0) {
        setf(ch->reason, sizeof(ch->reason), "cannot start sctpmd: %s", why);
        goto out;
    }
    lockfd = open(p->lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lockfd < 0) {
        setf(ch->reason, sizeof(ch->reason), "cannot start sctpmd: cannot open %s: %s", p->lock,
             strerror(errno));
        goto out;
    }
    e = lock_wait(lockfd, LOCK_TIMEOUT_MS);
    if (e != 0) {
        setf(ch->reason, sizeof(ch->reason), "cannot start sctpmd: cannot lock %s: %s", p->lock,
             e == -ETIMEDOUT ? "another client holds it and is not done" : strerror(-e));
        goto out;
    }
    /* Whoever held the lock before us may have started it: one daemon, however many race. */
    rc = try_socket(p->socket, tcti, conf, sizeof(conf), why, sizeof(why));
    if (rc == TSS2_RC_SUCCESS) {
        setf(ch->conf, sizeof(ch->conf), "%s", conf);
        setf(ch->reason, sizeof(ch->reason),
             "a running sctpmd answers on %s (another client started it a moment ago)", p->socket);
        goto out;
    }
    if (wait_state_free(p->state_dir, why, sizeof(why)) != 0 ||
        spawn_sctpmd(o, p, why, sizeof(why)) != 0) {
        rc = TSS2_TCTI_RC_NO_CONNECTION;
        setf(ch->reason, sizeof(ch->reason), "cannot start sctpmd: %s", why);
        goto out;
    }
    rc = try_socket(p->socket, tcti, conf, sizeof(conf), why, sizeof(why));
    if (rc != TSS2_RC_SUCCESS) {
        setf(ch->reason, sizeof(ch->reason), "started sctpmd, but %s: %s", p->socket, why);
        goto out;
    }
    setf(ch->conf, sizeof(ch->conf), "%s", conf);
    if (o->idle_exit > 0) {
        setf(ch->reason, sizeof(ch->reason),
             "started a %s sctpmd (state %s; it exits after %u s without clients)",
             p->system ? "system" : "per-user", p->state_dir, o->idle_exit);
    } else {
        setf(ch->reason, sizeof(ch->reason), "started a %s sctpmd (state %s)",
             p->system ? "system" : "per-user", p->state_dir);
    }
out:
    if (lockfd >= 0) {
        close(lockfd); /* releases the flock */
    }
    return rc;
}

/* ---- the order ---- */

/* Everything the order needs, on the heap: paths make it too big for a small thread stack. */
struct work {
    struct select_opts opts;
    struct select_paths paths;
    char err[512];
    char why[512];
    char conf[SELECT_SOCKET_MAX + 16];
    char pwbuf[16384];
};

static const char *home_dir(struct work *w)
{
    const char *home = getenv("HOME");
    struct passwd pw, *res = NULL;

    if (is_abs(home)) {
        return home;
    }
    if (getpwuid_r(geteuid(), &pw, w->pwbuf, sizeof(w->pwbuf), &res) == 0 && res != NULL) {
        return res->pw_dir;
    }
    return NULL;
}

static TSS2_RC sctpm_order(struct work *w, TSS2_TCTI_CONTEXT **tcti, struct select_choice *ch)
{
    struct select_opts *o = &w->opts;
    struct select_paths *p = &w->paths;
    int have_paths;
    TSS2_RC rc;

    rc = try_devices(o, tcti, ch);
    if (rc == TSS2_RC_SUCCESS) {
        return rc;
    }
    have_paths =
        select_paths_compute(p, geteuid(), getenv("XDG_RUNTIME_DIR"), getenv("XDG_STATE_HOME"),
                             home_dir(w), w->err, sizeof(w->err)) == 0;
    if (have_paths) {
        rc = try_socket(p->socket, tcti, w->conf, sizeof(w->conf), w->why, sizeof(w->why));
        if (rc == TSS2_RC_SUCCESS) {
            setf(ch->conf, sizeof(ch->conf), "%s", w->conf);
            setf(ch->reason, sizeof(ch->reason), "a running sctpmd answers on %s (%s socket)",
                 p->socket, p->system ? "system" : "per-user");
            return rc;
        }
        skip(ch, "%s: %s", p->socket, w->why);
    } else {
        skip(ch, "per-user sctpmd: %s", w->err);
    }
    if (o->system_socket[0] != '\0' && !(have_paths && strcmp(o->system_socket, p->socket) == 0)) {
        rc = try_socket(o->system_socket, tcti, w->conf, sizeof(w->conf), w->why, sizeof(w->why));
        if (rc == TSS2_RC_SUCCESS) {
            setf(ch->conf, sizeof(ch->conf), "%s", w->conf);
            setf(ch->reason, sizeof(ch->reason), "a running sctpmd answers on %s (system socket)",
                 o->system_socket);
            return rc;
        }
        skip(ch, "%s: %s", o->system_socket, w->why);
    }
    if (o->port != 0) {
        rc = try_port(o->port, tcti, ch);
        if (rc == TSS2_RC_SUCCESS) {
            return rc;
        }
    }
    if (!o->autostart) {
        setf(ch->reason, sizeof(ch->reason),
             "no TPM device and no running sctpmd or simulator, and auto-start is off");
        return TSS2_TCTI_RC_NO_CONNECTION;
    }
    if (!have_paths) {
        setf(ch->reason, sizeof(ch->reason), "cannot start sctpmd: %s", w->err);
        return TSS2_TCTI_RC_NO_CONNECTION;
    }
    return autostart(o, p, tcti, ch);
}

TSS2_RC select_tcti(const char *conf, TSS2_TCTI_CONTEXT **tcti, struct select_choice *choice)
{
    struct select_choice local;
    struct work *w = NULL;
    const char *options;
    TSS2_RC rc = TSS2_TCTI_RC_BAD_REFERENCE;

    if (choice == NULL) {
        choice = &local;
    }
    memset(choice, 0, sizeof(*choice));
    if (tcti == NULL) {
        setf(choice->reason, sizeof(choice->reason), "no place for the TCTI context was given");
        return rc;
    }
    *tcti = NULL;
    if (!select_conf_is_sctpm(conf, &options)) {
        setf(choice->conf, sizeof(choice->conf), "%s", conf);
        rc = Tss2_TctiLdr_Initialize(conf, tcti);
        if (rc == TSS2_RC_SUCCESS) {
            setf(choice->reason, sizeof(choice->reason), "configured explicitly");
        } else {
            *tcti = NULL;
            setf(choice->reason, sizeof(choice->reason),
                 "the configured TCTI \"%.150s\" could not be opened (0x%08x)", conf, rc);
        }
        goto out;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        rc = TSS2_TCTI_RC_MEMORY;
        setf(choice->reason, sizeof(choice->reason), "out of memory");
        goto out;
    }
    if (select_opts_init(&w->opts, SCTPM_SCTPMD_PATH, w->err, sizeof(w->err)) != 0 ||
        select_opts_parse(&w->opts, options, w->err, sizeof(w->err)) != 0) {
        rc = TSS2_TCTI_RC_BAD_VALUE;
        setf(choice->reason, sizeof(choice->reason), "%s", w->err);
        goto out;
    }
    rc = sctpm_order(w, tcti, choice);
out:
    if (rc == TSS2_RC_SUCCESS) {
        LOG_DEBUG("chose %s: %s", choice->conf, choice->reason);
    } else {
        LOG_DEBUG("no TPM (0x%08x): %s; skipped: %s", rc, choice->reason, choice->skipped);
    }
    free(w);
    return rc;
}

void select_finalize(TSS2_TCTI_CONTEXT *tcti)
{
    if (tcti != NULL) {
        Tss2_TctiLdr_Finalize(&tcti);
    }
}
