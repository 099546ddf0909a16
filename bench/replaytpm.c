/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * replaytpm: an mssim relay in front of sctpmd that answers repeated TPM2_HMAC and
 * TPM2_GetRandom commands from a cache.
 *   replaytpm [--busy-poll-us N] UPSTREAM_PATH PATH
 * It listens on the Unix sockets PATH (command channel) and PATH.ctrl (platform channel), as
 * `sctpmd --unix PATH` does, and relays to the running sctpmd whose sockets are UPSTREAM_PATH and
 * UPSTREAM_PATH.ctrl. It prints "ready" on stdout once both sockets listen, runs until SIGTERM or
 * SIGINT, and removes both socket files on the way out. Errors exit 1 with a message on stderr.
 *
 * It exists only for bench/emulator.sh's "ceiling" row. No TPM work at all is done for a cached
 * command, so the HMAC rate an unchanged ESAPI + tcti-mssim client reaches through this relay is
 * the rate that the client and the kernel allow; the gap to sctpmd's own rate is what the TPM
 * side costs. Everything else (the first HMAC, creating the key, the platform codes) goes to
 * sctpmd unchanged, so the client sees a normal TPM.
 *
 * Each accepted connection is served by a forked child, because tcti-mssim opens the platform
 * and the command connection at once and holds both. Each child opens its own connection to the
 * matching upstream socket, so its cache lives and dies with one client connection. Only the
 * mssim dialect is relayed: raw TPM commands and swtpm control codes are refused.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* mssim codes (TpmTcpProtocol.h; the same values as emulator/proto.h). */
#define MSSIM_POWER_ON                   1
#define MSSIM_PHYS_PRES_OFF              4
#define MSSIM_HASH_START                 5
#define MSSIM_HASH_DATA                  6
#define MSSIM_HASH_END                   7
#define MSSIM_SEND_COMMAND               8
#define MSSIM_CANCEL_ON                  9
#define MSSIM_KEY_CACHE_OFF              14
#define MSSIM_REMOTE_HANDSHAKE           15
#define MSSIM_SET_ALTERNATIVE_RESULT     16
#define MSSIM_SIGNAL_RESET               17
#define MSSIM_SIGNAL_RESTART             18
#define MSSIM_SESSION_END                20
#define MSSIM_STOP                       21
#define MSSIM_GET_COMMAND_RESPONSE_SIZES 25
#define MSSIM_ACT_GET_SIGNALED           26
#define MSSIM_TEST_FAILURE_MODE          30

#define TPM2_CC_HMAC      0x155u
#define TPM2_CC_GETRANDOM 0x17Bu

/* The largest TPM command or response sctpmd accepts or sends, and its HASH_DATA chunk limit. */
#define MAX_COMMAND 4096u
#define MAX_HASH    4096u
/* GET_COMMAND_RESPONSE_SIZES answers with a small structure (8 bytes from sctpmd). */
#define MAX_SIZES_REPLY 64u
#define TPM_HEADER      10u
/* SEND_COMMAND: u32 code, u8 locality, u32 size. */
#define SEND_HEADER 9u
/* A response frame: u32 size, the response, u32 acknowledgement. */
#define MAX_FRAME (8u + MAX_COMMAND)

#define CACHE_SLOTS         8
#define DEFAULT_BUSY_POLL   50u
#define MAX_BUSY_POLL       10000u
#define UNIX_PATH_MAX_BYTES sizeof(((struct sockaddr_un *)0)->sun_path)

/*
 * Bytes read from the client but not yet relayed. It holds two of the largest messages, so a
 * whole message always fits after the consumed bytes are moved out of the way.
 */
struct client {
    int fd;
    int upstream_fd;  /* watched while sleeping, so that an upstream hang-up ends the child */
    unsigned spin_us; /* busy-poll time before sleeping in poll(); 0 sleeps at once */
    size_t start, end;
    uint8_t buf[2 * (SEND_HEADER + MAX_COMMAND)];
};

/*
 * A successful response to a command seen before, replayed without asking the TPM. This is valid
 * for the two commands cached here. TPM2_HMAC with a password session over the same key handle
 * and the same data returns the same bytes every time: the result depends only on the key and
 * the data, and a password session's response authorization carries no nonce. TPM2_GetRandom's
 * bytes repeat, which a rate measurement does not care about (no one should use this relay for
 * randomness). Commands with an HMAC or policy session never match, since their nonces change.
 * A client that flushed a key and loaded another at the same handle within one connection would
 * get a stale HMAC back; tpmbench does not do that.
 */
struct cache_entry {
    uint32_t cmd_len; /* 0 while the slot is empty */
    uint32_t frame_len;
    uint8_t locality;
    uint8_t cmd[MAX_COMMAND];
    uint8_t frame[MAX_FRAME];
};

/* Per child: each child serves a single connection, so these belong to that connection. */
static struct cache_entry cache[CACHE_SLOTS];
static unsigned cache_next;
static struct client the_client;

static volatile sig_atomic_t stop_signal;

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("replaytpm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Writes all `n` bytes; the callers hand over whole frames, which one write() normally takes. */
static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/*
 * Reads exactly `n` bytes from the upstream's blocking socket. Returns 0, or -1 after saying what
 * failed (`what` names the message being read).
 */
static int upstream_read(int fd, uint8_t *p, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            say("reading %s from the upstream: %s", what, strerror(errno));
            return -1;
        }
        if (r == 0) {
            say("the upstream closed the connection while %s was expected", what);
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int upstream_write(int fd, const uint8_t *p, size_t n)
{
    if (write_full(fd, p, n) != 0) {
        say("writing to the upstream: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int client_write(struct client *c, const uint8_t *p, size_t n)
{
    if (write_full(c->fd, p, n) != 0) {
        say("writing to the client: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Makes sure the next `n` bytes from the client (n <= half the buffer) are buffered at
 * c->buf + c->start. While none are ready it spins for c->spin_us after the wait began or the
 * last bytes arrived, yielding the CPU on each round, and only then sleeps in poll(): tcti-mssim
 * sends a command's header and body in two writes and the next command microseconds after the
 * last response, and waking a sleeping process costs more than answering from the cache.
 * Returns 0 when the bytes are here, 1 when the client hung up between messages, -1 on an error
 * or when the upstream hung up (already reported).
 */
static int client_need(struct client *c, size_t n)
{
    uint64_t until = 0;

    if (c->end - c->start >= n) {
        return 0;
    }
    memmove(c->buf, c->buf + c->start, c->end - c->start);
    c->end -= c->start;
    c->start = 0;
    if (c->spin_us > 0) {
        until = now_ns() + (uint64_t)c->spin_us * 1000u;
    }
    while (c->end < n) {
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
                                {.fd = c->upstream_fd, .events = POLLIN}};
        ssize_t r = recv(c->fd, c->buf + c->end, sizeof(c->buf) - c->end, MSG_DONTWAIT);
        if (r > 0) {
            c->end += (size_t)r;
            if (c->spin_us > 0) {
                until = now_ns() + (uint64_t)c->spin_us * 1000u;
            }
            continue;
        }
        if (r == 0) {
            if (c->end == 0) {
                return 1;
            }
            say("the client hung up in the middle of a message");
            return -1;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            say("reading from the client: %s", strerror(errno));
            return -1;
        }
        if (c->spin_us > 0 && now_ns() < until) {
            /* A client waiting for this CPU (two cores, or a loaded machine) runs now. */
            sched_yield();
            continue;
        }
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            say("waiting for the client: %s", strerror(errno));
            return -1;
        }
        /* The upstream speaks only when asked: anything from it now is a hang-up or an error. */
        if (pfd[1].revents != 0) {
            say("the upstream closed the connection");
            return -1;
        }
    }
    return 0;
}

/*
 * Relays one request of `req_len` bytes that is already buffered, then `reply_words` u32s of the
 * upstream's answer in one write. Returns 0, or 1 when `reply_words` is 0 (SESSION_END and STOP
 * end the connection without an answer), or -1 on an error.
 */
static int relay_fixed(struct client *c, int ufd, size_t req_len, size_t reply_words)
{
    uint8_t reply[16];

    if (client_need(c, req_len) != 0) {
        return -1;
    }
    if (upstream_write(ufd, c->buf + c->start, req_len) != 0) {
        return -1;
    }
    c->start += req_len;
    if (reply_words == 0) {
        return 1;
    }
    if (upstream_read(ufd, reply, reply_words * 4, "an answer") != 0) {
        return -1;
    }
    return client_write(c, reply, reply_words * 4);
}

static const struct cache_entry *cache_find(uint8_t locality, const uint8_t *cmd, uint32_t len)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        const struct cache_entry *e = &cache[i];
        if (e->cmd_len == len && e->locality == locality && memcmp(e->cmd, cmd, len) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Keeps a response, replacing the oldest entry once all slots are used. */
static void cache_store(uint8_t locality, const uint8_t *cmd, uint32_t len, const uint8_t *frame,
                        uint32_t frame_len)
{
    struct cache_entry *e = &cache[cache_next];

    cache_next = (cache_next + 1) % CACHE_SLOTS;
    e->locality = locality;
    e->cmd_len = len;
    memcpy(e->cmd, cmd, len);
    e->frame_len = frame_len;
    memcpy(e->frame, frame, frame_len);
}

/*
 * SEND_COMMAND: u8 locality, u32 size, the command. Answers a repeated HMAC or GetRandom from the
 * cache; sends anything else to the upstream and relays its response frame in one write, since
 * tcti-mssim 3.2.1 fails on a response that arrives in pieces. Returns 0, or -1 on an error.
 */
static int relay_command(struct client *c, int ufd)
{
    uint8_t frame[MAX_FRAME];
    const struct cache_entry *e;
    const uint8_t *msg, *cmd;
    uint32_t size, rsize, cc;
    uint8_t locality;
    int cacheable;

    if (client_need(c, SEND_HEADER) != 0) {
        return -1;
    }
    msg = c->buf + c->start;
    locality = msg[4];
    size = get_u32(msg + 5);
    if (size > MAX_COMMAND) {
        say("SEND_COMMAND of %u bytes exceeds the %u-byte command limit; closing the connection",
            size, MAX_COMMAND);
        return -1;
    }
    if (size < TPM_HEADER) {
        say("SEND_COMMAND of %u bytes is smaller than a TPM command header; closing the connection",
            size);
        return -1;
    }
    if (client_need(c, SEND_HEADER + size) != 0) {
        return -1;
    }
    /* client_need() may have moved the buffered bytes. */
    msg = c->buf + c->start;
    cmd = msg + SEND_HEADER;
    cc = get_u32(cmd + 6);
    cacheable = cc == TPM2_CC_HMAC || cc == TPM2_CC_GETRANDOM;
    if (cacheable) {
        e = cache_find(locality, cmd, size);
        if (e != NULL) {
            c->start += SEND_HEADER + size;
            return client_write(c, e->frame, e->frame_len);
        }
    }
    if (upstream_write(ufd, msg, SEND_HEADER + size) != 0 ||
        upstream_read(ufd, frame, 4, "a response size") != 0) {
        return -1;
    }
    rsize = get_u32(frame);
    if (rsize > MAX_COMMAND) {
        say("the upstream sent a response of %u bytes, more than the %u-byte limit", rsize,
            MAX_COMMAND);
        return -1;
    }
    if (upstream_read(ufd, frame + 4, (size_t)rsize + 4, "a response") != 0 ||
        client_write(c, frame, 8 + (size_t)rsize) != 0) {
        return -1;
    }
    /* Only a success with a clean acknowledgement is worth repeating. */
    if (cacheable && rsize >= TPM_HEADER && get_u32(frame + 4 + 6) == 0 &&
        get_u32(frame + 4 + rsize) == 0) {
        cache_store(locality, cmd, size, frame, 8 + rsize);
    }
    c->start += SEND_HEADER + size;
    return 0;
}

/*
 * The command channel, with sctpmd's framing for each code. Returns 0 when the client hung up or
 * ended the session, 1 on an error.
 */
static int serve_command(struct client *c, int ufd)
{
    for (;;) {
        uint32_t code, len;
        int r = client_need(c, 4);
        if (r != 0) {
            return r < 0;
        }
        code = get_u32(c->buf + c->start);
        switch (code) {
        case MSSIM_SEND_COMMAND:
            r = relay_command(c, ufd);
            break;
        case MSSIM_HASH_START:
        case MSSIM_HASH_END:
            r = relay_fixed(c, ufd, 4, 1);
            break;
        case MSSIM_HASH_DATA:
            r = client_need(c, 8);
            if (r != 0) {
                return 1;
            }
            len = get_u32(c->buf + c->start + 4);
            if (len > MAX_HASH) {
                say("HASH_DATA of %u bytes exceeds the %u-byte limit; closing the connection", len,
                    MAX_HASH);
                return 1;
            }
            r = relay_fixed(c, ufd, 8 + (size_t)len, 1);
            break;
        case MSSIM_REMOTE_HANDSHAKE:
            /* Client version in; server version, flags and the acknowledgement out. */
            r = relay_fixed(c, ufd, 8, 3);
            break;
        case MSSIM_SET_ALTERNATIVE_RESULT:
            r = relay_fixed(c, ufd, 8, 1);
            break;
        case MSSIM_SESSION_END:
        case MSSIM_STOP:
            r = relay_fixed(c, ufd, 4, 0);
            break;
        default:
            say("unknown command-channel code %u (0x%08x); closing the connection", code, code);
            return 1;
        }
        if (r != 0) {
            return r < 0;
        }
    }
}

/*
 * GET_COMMAND_RESPONSE_SIZES is answered with u32 length, that many bytes and the
 * acknowledgement; relays it in one write.
 */
static int relay_sizes(struct client *c, int ufd)
{
    uint8_t reply[8 + MAX_SIZES_REPLY];
    uint32_t len;

    if (upstream_write(ufd, c->buf + c->start, 4) != 0) {
        return -1;
    }
    c->start += 4;
    if (upstream_read(ufd, reply, 4, "a structure size") != 0) {
        return -1;
    }
    len = get_u32(reply);
    if (len > MAX_SIZES_REPLY) {
        say("the upstream's GET_COMMAND_RESPONSE_SIZES answer of %u bytes exceeds %u", len,
            MAX_SIZES_REPLY);
        return -1;
    }
    if (upstream_read(ufd, reply + 4, (size_t)len + 4, "the command and response sizes") != 0) {
        return -1;
    }
    return client_write(c, reply, 8 + (size_t)len);
}

/* The platform channel. Returns 0 when the client hung up or ended the session, 1 on an error. */
static int serve_platform(struct client *c, int ufd)
{
    for (;;) {
        uint32_t code;
        int r = client_need(c, 4);
        if (r != 0) {
            return r < 0;
        }
        code = get_u32(c->buf + c->start);
        if ((code >= MSSIM_POWER_ON && code <= MSSIM_PHYS_PRES_OFF) ||
            (code >= MSSIM_CANCEL_ON && code <= MSSIM_KEY_CACHE_OFF) ||
            code == MSSIM_SIGNAL_RESET || code == MSSIM_SIGNAL_RESTART ||
            code == MSSIM_TEST_FAILURE_MODE) {
            r = relay_fixed(c, ufd, 4, 1);
        } else if (code == MSSIM_ACT_GET_SIGNALED) {
            /* The timer handle in; its signaled value and the acknowledgement out. */
            r = relay_fixed(c, ufd, 8, 2);
        } else if (code == MSSIM_GET_COMMAND_RESPONSE_SIZES) {
            r = relay_sizes(c, ufd);
        } else if (code == MSSIM_SESSION_END || code == MSSIM_STOP) {
            r = relay_fixed(c, ufd, 4, 0);
        } else {
            say("unknown platform-channel code %u (0x%08x); closing the connection", code, code);
            return 1;
        }
        if (r != 0) {
            return r < 0;
        }
    }
}

/* Returns a connected blocking socket, or -1 with errno set. */
static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, err;

    /* main() checked every path against sun_path. */
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/*
 * A forked child: serves the client on `cfd` over its own connection to `upstream` until either
 * side hangs up. Returns the child's exit status.
 */
static int serve_child(int cfd, int platform, const char *upstream, unsigned spin_us)
{
    struct client *c = &the_client;
    int ufd, rc = 1;

    ufd = connect_unix(upstream);
    if (ufd < 0) {
        say("cannot connect to the upstream %s socket %s: %s", platform ? "platform" : "command",
            upstream, strerror(errno));
        goto out;
    }
    c->fd = cfd;
    c->upstream_fd = ufd;
    /* sctpmd does not spin on its control channel either: platform codes are rare. */
    c->spin_us = platform ? 0 : spin_us;
    rc = platform ? serve_platform(c, ufd) : serve_command(c, ufd);
out:
    if (ufd >= 0) {
        close(ufd);
    }
    close(cfd);
    return rc;
}

/*
 * Binds a private listening socket on `path`. A socket file nobody listens on (left by a killed
 * run) is replaced; anything else is an error. Returns the socket, or -1 after saying why.
 */
static int listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat sb;
    mode_t old;
    int fd, r;

    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            say("%s exists and is not a socket; refusing to replace it", path);
            return -1;
        }
        fd = connect_unix(path);
        if (fd >= 0) {
            close(fd);
            say("another process is listening on %s", path);
            return -1;
        }
        unlink(path);
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        say("cannot create a Unix socket: %s", strerror(errno));
        return -1;
    }
    /* Private from the start, like sctpmd's sockets: no window in which others could connect. */
    old = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r != 0 || listen(fd, 64) != 0) {
        say("cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Checks that the upstream sctpmd answers on `path`, so that a typo fails at start-up. */
static int probe_upstream(const char *path)
{
    int fd = connect_unix(path);

    if (fd < 0) {
        say("cannot reach the upstream sctpmd at %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: replaytpm [--busy-poll-us N] UPSTREAM_PATH PATH\n"
            "  Relays the mssim Unix sockets PATH and PATH.ctrl to the sctpmd listening on\n"
            "  UPSTREAM_PATH and UPSTREAM_PATH.ctrl, answering repeated TPM2_HMAC and\n"
            "  TPM2_GetRandom commands from a cache.\n"
            "  --busy-poll-us N  spin N microseconds for the client's next bytes before\n"
            "                    sleeping (default 50, 0 sleeps at once, at most 10000)\n");
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"busy-poll-us", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char up_ctrl[UNIX_PATH_MAX_BYTES], path_ctrl[UNIX_PATH_MAX_BYTES];
    const char *upstream, *path, *names[2];
    unsigned spin_us = DEFAULT_BUSY_POLL;
    int lfd[2] = {-1, -1}, rc = 1, opt;
    sigset_t block, orig;
    struct sigaction sa = {.sa_handler = on_signal};
    pid_t parent = getpid();

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        unsigned long v;
        switch (opt) {
        case 'b':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' ||
                v > MAX_BUSY_POLL) {
                say("--busy-poll-us: '%s' is not a number of microseconds from 0 to %u", optarg,
                    MAX_BUSY_POLL);
                return 1;
            }
            spin_us = (unsigned)v;
            break;
        default:
            return usage();
        }
    }
    if (argc - optind != 2) {
        return usage();
    }
    upstream = argv[optind];
    path = argv[optind + 1];
    /* Each path plus ".ctrl" must fit sockaddr_un's sun_path with its terminating NUL. */
    if (snprintf(up_ctrl, sizeof(up_ctrl), "%s.ctrl", upstream) >= (int)sizeof(up_ctrl)) {
        say("upstream path %s is too long: %s.ctrl must fit the %zu bytes of a Unix socket path",
            upstream, upstream, sizeof(up_ctrl) - 1);
        return 1;
    }
    if (snprintf(path_ctrl, sizeof(path_ctrl), "%s.ctrl", path) >= (int)sizeof(path_ctrl)) {
        say("path %s is too long: %s.ctrl must fit the %zu bytes of a Unix socket path", path, path,
            sizeof(path_ctrl) - 1);
        return 1;
    }
    if (probe_upstream(upstream) != 0 || probe_upstream(up_ctrl) != 0) {
        return 1;
    }

    /*
     * Children are reaped by the kernel. SIGPIPE would kill a child writing to a client that has
     * gone; write() reports EPIPE instead. SIGTERM and SIGINT stay blocked except inside ppoll(),
     * so a signal cannot slip in between the check of stop_signal and the wait.
     */
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    names[0] = path;
    names[1] = path_ctrl;
    for (int i = 0; i < 2; i++) {
        lfd[i] = listen_unix(names[i]);
        if (lfd[i] < 0) {
            goto out;
        }
    }
    printf("ready\n");
    fflush(stdout);

    while (!stop_signal) {
        struct pollfd pfd[2] = {{.fd = lfd[0], .events = POLLIN}, {.fd = lfd[1], .events = POLLIN}};
        if (ppoll(pfd, 2, NULL, &orig) < 0) {
            if (errno == EINTR) {
                continue;
            }
            say("waiting for connections: %s", strerror(errno));
            goto out;
        }
        for (int i = 0; i < 2; i++) {
            int cfd;
            pid_t pid;
            if (!(pfd[i].revents & POLLIN)) {
                continue;
            }
            cfd = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
            if (cfd < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ||
                    errno == ECONNABORTED) {
                    continue;
                }
                say("accepting on %s: %s", names[i], strerror(errno));
                goto out;
            }
            pid = fork();
            if (pid < 0) {
                say("cannot fork a child for a connection on %s: %s", names[i], strerror(errno));
                close(cfd);
                continue;
            }
            if (pid == 0) {
                /*
                 * The child dies with the relay, so stopping the relay stops the benchmark's
                 * connections too, and it takes the default action on SIGTERM and SIGINT.
                 */
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                sigprocmask(SIG_SETMASK, &orig, NULL);
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
                    _exit(1);
                }
                close(lfd[0]);
                close(lfd[1]);
                _exit(serve_child(cfd, i == 1, i == 1 ? up_ctrl : upstream, spin_us));
            }
            close(cfd);
        }
    }
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (lfd[i] >= 0) {
            close(lfd[i]);
            unlink(names[i]);
        }
    }
    return rc;
}
