/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#define LOGMODULE server
#include "log.h"
#include "nvstore.h"
#include "server.h"
#include "tpm.h"

#define MAX_LISTENERS 8
#define MAX_EVENTS    64
/* What one mssim HASH_DATA message may carry. */
#define MAX_HASH_CHUNK 4096
/* swtpm GET_INFO answers at most this much per request, as swtpm does. */
#define INFO_CHUNK 3072
/* mssim REMOTE_HANDSHAKE flags: platform available, raw mode, physical presence supported. */
#define MSSIM_FLAGS          (0x01u | 0x04u | 0x08u)
#define MSSIM_SERVER_VERSION 1

enum channel { CHANNEL_DATA, CHANNEL_CTRL };
enum ev_type { EV_LISTENER, EV_CONN, EV_SIGNAL };

struct listener {
    enum ev_type type; /* EV_LISTENER; first member, for epoll dispatch */
    int fd;
    enum channel channel;
    int is_unix;
    char name[96];
};

/*
 * One client connection. Input accumulates in `in` until a whole message is there; the reply to
 * each message is built whole in `out` and handed to the kernel in one send(), because
 * tcti-mssim 3.2.1 fails on a response that arrives in pieces. A connection with an unsent reply
 * is not served again until the client has read it.
 */
struct conn {
    enum ev_type type; /* EV_CONN */
    int fd;
    unsigned id;
    enum channel channel;
    int is_unix;
    int is_tcp;
    int trusted;
    enum proto_dialect dialect;
    pid_t pid;
    uid_t uid;
    struct sockaddr_storage peer_addr; /* TCP: the peer's address, from accept() */
    socklen_t peer_len;
    char peer[64];
    uint8_t *in;
    size_t in_len, in_cap, in_max;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    int close_after_send;
    int polling_out; /* registered for EPOLLOUT (a reply is pending) instead of EPOLLIN */
    int dead;
    int passed_fd; /* a descriptor received with SCM_RIGHTS (swtpm SET_DATAFD), or -1 */
    time_t partial_since;
    unsigned long commands;
    /*
     * The resource-manager space this connection's commands run in: its own for mssim-framed
     * commands; for raw (swtpm-dialect) commands a space shared by the connections of one peer,
     * because tcti-swtpm opens a new connection for every command.
     */
    struct rm_space *space;
    struct keyed_space *keyed;
    struct conn *next;
};

/*
 * A space for swtpm-dialect clients, keyed by who they are. Over a Unix socket that is the peer
 * process (SO_PEERCRED pid), and the space lives as long as the process does. Over TCP the peer
 * process cannot be known cheaply, so it is the user (the uid of the peer socket, from
 * /proc/net/tcp): the space lives while connections use it and for raw_space_idle seconds after
 * the last one.
 */
struct keyed_space {
    char key[48];
    pid_t pid; /* 0 when keyed by uid */
    struct rm_space *space;
    unsigned refs;
    uint64_t idle_since; /* monotonic ns */
    struct keyed_space *next;
};

struct server {
    struct server_config cfg;
    int epfd;
    struct {
        enum ev_type type;
        int fd;
    } sig;
    struct listener listeners[MAX_LISTENERS];
    size_t n_listeners;
    struct conn *conns;
    unsigned n_conns;
    unsigned next_id;
    int stop;
    /* The locality of raw (swtpm-dialect) commands, set through the swtpm control channel. */
    uint8_t swtpm_locality;
    struct rm *rm; /* NULL with --no-rm */
    struct keyed_space *keyed;
    int diag_fd; /* NETLINK_SOCK_DIAG, for the uid of TCP peers; -1 until needed */
    char unix_ctrl_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
};

static struct rm *the_rm; /* for power_cycle(): the TPM's contents are gone after a reset */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static time_t now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* ---- listeners ---- */

static int add_listener(struct server *srv, int fd, enum channel channel, int is_unix,
                        const char *name)
{
    struct listener *l = &srv->listeners[srv->n_listeners];
    struct epoll_event ev = {.events = EPOLLIN};

    l->type = EV_LISTENER;
    l->fd = fd;
    l->channel = channel;
    l->is_unix = is_unix;
    snprintf(l->name, sizeof(l->name), "%s", name);
    ev.data.ptr = l;
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        return -errno;
    }
    srv->n_listeners++;
    return 0;
}

/*
 * The numeric host of an IPv4 or IPv6 socket address, formatted without getnameinfo(), which
 * would bring in the resolver (see numeric_addr()).
 */
static const char *addr_host(const struct sockaddr *sa, char *buf, size_t len)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    size_t n;

    if (sa->sa_family == AF_INET) {
        /* By hand: it keeps inet_ntop()'s page of libc out of a daemon that serves only IPv4. */
        const uint8_t *b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        snprintf(buf, len, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
        return buf;
    }
    if (sa->sa_family != AF_INET6 ||
        inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len) == NULL) {
        snprintf(buf, len, "?");
        return buf;
    }
    n = strlen(buf);
    if (s6->sin6_scope_id != 0 && n < len) {
        snprintf(buf + n, len - n, "%%%u", (unsigned)s6->sin6_scope_id);
    }
    return buf;
}

static unsigned addr_port(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6  ? ntohs(((const struct sockaddr_in6 *)sa)->sin6_port)
           : sa->sa_family == AF_INET ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
                                      : 0;
}

/*
 * Parses a numeric IPv4 or IPv6 address (the default 127.0.0.1, ::1) into `ai`, which points into
 * `ss`. getaddrinfo() would do the same, but even for a numeric address it first sets up glibc's
 * resolver (resolv.conf, interface lists), and the ~150 KiB of library code that takes stays
 * resident for the daemon's lifetime. Returns 0 when `addr` is not numeric.
 */
static int numeric_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss,
                        struct addrinfo *ai)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    memset(ai, 0, sizeof(*ai));
    /* The default needs no parsing at all (nor inet_pton()'s page of libc). */
    if (strcmp(addr, "127.0.0.1") == 0) {
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    if (s4->sin_addr.s_addr != 0 || inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        ai->ai_addrlen = sizeof(*s4);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        ai->ai_addrlen = sizeof(*s6);
    } else {
        return 0;
    }
    ai->ai_family = ss->ss_family;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_addr = (struct sockaddr *)ss;
    return 1;
}

/*
 * Listens on every address `addr` resolves to. With `optional`, an address family or address
 * this host lacks (::1 without IPv6) is skipped rather than an error.
 */
static enum sctpm_rc listen_tcp(struct server *srv, const char *addr, uint16_t port,
                                enum channel channel, int optional, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                             .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL, *ai, numeric;
    struct sockaddr_storage ss;
    char portstr[8];
    enum sctpm_rc rc = SCTPM_RC_IO;
    int r, bound = 0;

    if (numeric_addr(addr, port, &ss, &numeric)) {
        ai = &numeric;
    } else {
        snprintf(portstr, sizeof(portstr), "%u", port);
        r = getaddrinfo(addr, portstr, &hints, &res);
        if (r != 0) {
            snprintf(err, errlen, "cannot resolve listen address '%s': %s", addr, gai_strerror(r));
            return SCTPM_RC_BAD_ARGUMENT;
        }
        ai = res;
    }
    for (; ai != NULL; ai = ai->ai_next) {
        int one = 1;
        char host[64], name[96];
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            if (optional) {
                bound = 1;
            }
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            int e = errno;
            close(fd);
            /* "localhost" may include ::1 on a host without IPv6: that one is optional. */
            if (e == EADDRNOTAVAIL &&
                (optional || (ai->ai_family == AF_INET6 && ai->ai_next == NULL && bound))) {
                bound = 1;
                continue;
            }
            snprintf(err, errlen, "cannot listen on %s port %u: %s%s",
                     addr_host(ai->ai_addr, host, sizeof(host)), port, strerror(e),
                     e == EADDRINUSE ? " (is another sctpmd or swtpm running? choose --port)" : "");
            goto out;
        }
        addr_host(ai->ai_addr, host, sizeof(host));
        snprintf(name, sizeof(name), "%s%s%s:%u", ai->ai_family == AF_INET6 ? "[" : "", host,
                 ai->ai_family == AF_INET6 ? "]" : "", port);
        if (srv->n_listeners == MAX_LISTENERS || add_listener(srv, fd, channel, 0, name) != 0) {
            close(fd);
            snprintf(err, errlen, "too many listeners");
            goto out;
        }
        bound = 1;
    }
    rc = bound ? SCTPM_RC_SUCCESS : SCTPM_RC_IO;
    if (!bound) {
        snprintf(err, errlen, "no usable address for '%s'", addr);
    }
out:
    if (res != NULL) {
        freeaddrinfo(res);
    }
    return rc;
}

/* Removes a leftover socket file, but only when nobody listens on it any more. */
static enum sctpm_rc clear_stale_socket(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat sb;
    int fd, r;

    if (lstat(path, &sb) != 0) {
        return SCTPM_RC_SUCCESS;
    }
    if (!S_ISSOCK(sb.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket; refusing to replace it", path);
        return SCTPM_RC_EXISTS;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    r = fd >= 0 ? connect(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (r == 0) {
        snprintf(err, errlen, "another process is listening on %s", path);
        return SCTPM_RC_BUSY;
    }
    unlink(path);
    return SCTPM_RC_SUCCESS;
}

static enum sctpm_rc listen_unix(struct server *srv, const char *path, enum channel channel,
                                 char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    enum sctpm_rc rc;
    mode_t old;
    int fd, r;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "Unix socket path %s is longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return SCTPM_RC_BAD_ARGUMENT;
    }
    rc = clear_stale_socket(path, err, errlen);
    if (rc != SCTPM_RC_SUCCESS) {
        return rc;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a Unix socket: %s", strerror(errno));
        return SCTPM_RC_IO;
    }
    /* Create the socket private from the start: no window in which others could connect. */
    old = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return errno == EACCES ? SCTPM_RC_PERMISSION : SCTPM_RC_IO;
    }
    if ((srv->cfg.unix_gid != (gid_t)-1 && chown(path, (uid_t)-1, srv->cfg.unix_gid) != 0) ||
        chmod(path, srv->cfg.unix_mode) != 0) {
        snprintf(err, errlen, "cannot set the owner or mode of %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return SCTPM_RC_PERMISSION;
    }
    if (srv->n_listeners == MAX_LISTENERS || add_listener(srv, fd, channel, 1, path) != 0) {
        snprintf(err, errlen, "too many listeners");
        close(fd);
        unlink(path);
        return SCTPM_RC_IO;
    }
    return SCTPM_RC_SUCCESS;
}

void server_block_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

enum sctpm_rc server_create(const struct server_config *cfg, struct server **out, char *err,
                            size_t errlen)
{
    enum sctpm_rc rc = SCTPM_RC_IO;
    struct server *srv;
    struct epoll_event ev = {.events = EPOLLIN};
    sigset_t set;

    *out = NULL;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, errlen, "out of memory");
        return SCTPM_RC_NO_MEMORY;
    }
    srv->cfg = *cfg;
    srv->cfg.listen_addr = NULL; /* not kept: the caller's string */
    srv->cfg.unix_path = NULL;
    srv->sig.fd = -1;
    srv->diag_fd = -1;
    srv->next_id = 1;
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    srv->sig.type = EV_SIGNAL;
    srv->sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    ev.data.ptr = &srv->sig;
    if (srv->sig.fd < 0 || epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->sig.fd, &ev) != 0) {
        snprintf(err, errlen, "signalfd: %s", strerror(errno));
        goto fail;
    }
    if (cfg->tcp) {
        const char *addr = cfg->listen_addr != NULL ? cfg->listen_addr : "127.0.0.1";
        if (cfg->port == 65535) {
            snprintf(err, errlen, "port %u leaves no room for the control port %u", cfg->port,
                     cfg->port + 1);
            rc = SCTPM_RC_BAD_ARGUMENT;
            goto fail;
        }
        /*
         * "localhost" means both loopback addresses, whatever /etc/hosts says (Debian maps
         * ::1 to ip6-localhost only); ::1 is skipped on a host without IPv6.
         */
        int both = strcmp(addr, "localhost") == 0;
        const char *first = both ? "127.0.0.1" : addr;
        rc = SCTPM_RC_SUCCESS;
        for (int ch = 0; ch < 2 && rc == SCTPM_RC_SUCCESS; ch++) {
            uint16_t port = (uint16_t)(cfg->port + ch);
            enum channel channel = ch == 0 ? CHANNEL_DATA : CHANNEL_CTRL;
            rc = listen_tcp(srv, first, port, channel, 0, err, errlen);
            if (rc == SCTPM_RC_SUCCESS && both) {
                rc = listen_tcp(srv, "::1", port, channel, 1, err, errlen);
            }
        }
        if (rc != SCTPM_RC_SUCCESS) {
            goto fail;
        }
    }
    if (cfg->unix_path != NULL) {
        if (strlen(cfg->unix_path) + 6 > sizeof(srv->unix_ctrl_path)) {
            snprintf(err, errlen, "Unix socket path %s is too long", cfg->unix_path);
            rc = SCTPM_RC_BAD_ARGUMENT;
            goto fail;
        }
        snprintf(srv->unix_ctrl_path, sizeof(srv->unix_ctrl_path), "%s.ctrl", cfg->unix_path);
        rc = listen_unix(srv, cfg->unix_path, CHANNEL_DATA, err, errlen);
        if (rc == SCTPM_RC_SUCCESS) {
            rc = listen_unix(srv, srv->unix_ctrl_path, CHANNEL_CTRL, err, errlen);
        }
        if (rc != SCTPM_RC_SUCCESS) {
            goto fail;
        }
    }
    if (!cfg->no_rm) {
        rc = rm_create(&cfg->rm, &srv->rm, err, errlen);
        if (rc != SCTPM_RC_SUCCESS) {
            goto fail;
        }
        the_rm = srv->rm;
    }
    for (size_t i = 0; i < srv->n_listeners; i++) {
        LOG_INFO("listening on %s (%s channel)", srv->listeners[i].name,
                 srv->listeners[i].channel == CHANNEL_DATA ? "command" : "control");
    }
    *out = srv;
    return SCTPM_RC_SUCCESS;
fail:
    server_destroy(srv);
    return rc;
}

/* ---- connections ---- */

static void conn_close(struct server *srv, struct conn *c, const char *why)
{
    if (c->dead) {
        return;
    }
    if (why != NULL) {
        LOG_DEBUG("connection %u (%s) closed: %s", c->id, c->peer, why);
    }
    close(c->fd); /* also leaves the epoll set: the descriptor is never duplicated */
    if (c->passed_fd >= 0) {
        close(c->passed_fd);
    }
    /* Everything a client left behind is flushed with its space. */
    rm_space_free(c->space);
    c->space = NULL;
    if (c->keyed != NULL && --c->keyed->refs == 0) {
        c->keyed->idle_since = now_ns();
    }
    c->keyed = NULL;
    c->dead = 1;
    srv->n_conns--;
}

static void conn_free(struct conn *c)
{
    free(c->in);
    free(c->out);
    free(c);
}

static int is_trusted(const struct server *srv, const struct conn *c)
{
    if (srv->cfg.allow_platform) {
        return 1;
    }
    if (!c->is_unix) {
        return 0;
    }
    for (size_t i = 0; i < srv->cfg.n_platform_uids; i++) {
        if (srv->cfg.platform_uids[i] == c->uid) {
            return 1;
        }
    }
    return 0;
}

static struct conn *conn_add(struct server *srv, int fd, enum channel channel, int is_unix,
                             const struct sockaddr_storage *addr, socklen_t addr_len)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
    struct conn *c = calloc(1, sizeof(*c));
    size_t max;

    if (c == NULL) {
        return NULL;
    }
    c->type = EV_CONN;
    c->fd = fd;
    c->id = srv->next_id++;
    c->channel = channel;
    c->is_unix = is_unix;
    c->passed_fd = -1;
    c->uid = (uid_t)-1;
    c->dialect = channel == CHANNEL_DATA ? PROTO_DIALECT_UNKNOWN : srv->cfg.ctrl_dialect;
    /* A data channel holds at most one command and its framing; a control channel a state blob. */
    max = channel == CHANNEL_DATA ? srv->cfg.max_command + 64 : NVSTORE_MAX_BLOB + 64;
    c->in_max = max;
    c->in_cap = 4096 + 64 < max ? 4096 + 64 : max;
    c->in = malloc(c->in_cap);
    if (c->in == NULL) {
        free(c);
        return NULL;
    }
    if (is_unix) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            c->pid = cred.pid;
            c->uid = cred.uid;
        }
        snprintf(c->peer, sizeof(c->peer), "unix pid %ld uid %ld", (long)c->pid, (long)c->uid);
    } else {
        char host[64] = "?";
        unsigned port = 0;
        int one = 1;
        if (addr != NULL && addr_len > 0 && addr_len <= sizeof(c->peer_addr)) {
            memcpy(&c->peer_addr, addr, addr_len);
            c->peer_len = addr_len;
            addr_host((const struct sockaddr *)&c->peer_addr, host, sizeof(host));
            port = addr_port((const struct sockaddr *)&c->peer_addr);
        }
        snprintf(c->peer, sizeof(c->peer), "tcp %s:%u", host, port);
        /*
         * Our replies go out whole, at once: no Nagle. (The client's own Nagle, holding the body
         * of a command until its header is acknowledged, is answered with TCP_QUICKACK when half
         * a message is buffered; see process_one().)
         */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->is_tcp = 1;
    }
    c->trusted = is_trusted(srv, c);
    ev.data.ptr = c;
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c->in);
        free(c);
        return NULL;
    }
    c->next = srv->conns;
    srv->conns = c;
    srv->n_conns++;
    LOG_DEBUG("connection %u: %s on the %s channel%s", c->id, c->peer,
              channel == CHANNEL_DATA ? "command" : "control", c->trusted ? " (trusted)" : "");
    return c;
}

/*
 * Accepts one connection. The listener is level-triggered, so further pending connections are
 * reported again at once; not looping until EAGAIN saves a system call for clients such as
 * tcti-swtpm that connect for every command.
 */
static void do_accept(struct server *srv, struct listener *l)
{
    for (int once = 0; once < 1; once++) {
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof(addr);
        int fd = accept4(l->fd, (struct sockaddr *)&addr, &addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED) {
                LOG_WARNING("accept on %s: %s", l->name, strerror(errno));
            }
            return;
        }
        if (srv->n_conns >= srv->cfg.max_connections) {
            LOG_WARNING("refusing a connection on %s: %u connections is the limit "
                        "(--max-connections)",
                        l->name, srv->cfg.max_connections);
            close(fd);
            continue;
        }
        if (conn_add(srv, fd, l->channel, l->is_unix, &addr, addr_len) == NULL) {
            LOG_ERROR("cannot set up a connection on %s: out of memory", l->name);
            close(fd);
        }
    }
}

static void update_events(struct server *srv, struct conn *c)
{
    struct epoll_event ev = {.data.ptr = c};
    int want_out = c->out_off < c->out_len;

    /* While a reply waits for the client to read it, stop reading: that is our backpressure. */
    if (want_out == c->polling_out) {
        return;
    }
    ev.events = want_out ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
    if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        c->polling_out = want_out;
    }
}

static void flush_out(struct server *srv, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                update_events(srv, c);
                return;
            }
            conn_close(srv, c, strerror(errno));
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    if (c->close_after_send) {
        conn_close(srv, c, "closed after its last reply");
        return;
    }
    update_events(srv, c);
}

/* Appends to the pending reply; the whole reply is sent by flush_out() in one send(). */
static int out_append(struct conn *c, const void *data, size_t len)
{
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        uint8_t *p;
        while (cap < c->out_len + len) {
            cap *= 2;
        }
        p = realloc(c->out, cap);
        if (p == NULL) {
            return -1;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

static int out_u32(struct conn *c, uint32_t v)
{
    uint8_t b[4];

    proto_put_u32(b, v);
    return out_append(c, b, 4);
}

/* ---- the data channel ---- */

/* Builds a TPM error response for a command we refuse to pass to the TPM. */
static void tpm_error_response(uint32_t rc, uint8_t buf[10], size_t *len)
{
    size_t off = 0;

    (void)Tss2_MU_TPM2_ST_Marshal(TPM2_ST_NO_SESSIONS, buf, 10, &off);
    (void)Tss2_MU_UINT32_Marshal(10, buf, 10, &off);
    (void)Tss2_MU_UINT32_Marshal(rc, buf, 10, &off);
    *len = off;
}

static void refuse_log(const struct conn *c, const char *what)
{
    LOG_WARNING("refused %s from connection %u (%s): it would affect every client of this "
                "TPM; allow it with --allow-platform or --platform-uid",
                what, c->id, c->peer);
}

/*
 * The uid owning the peer end of a loopback TCP connection. The kernel answers this exactly for
 * one socket through sock_diag (NETLINK_SOCK_DIAG, no privileges needed): the peer's socket is
 * the one whose source is our peer address and whose destination is our address. Scanning
 * /proc/net/tcp instead costs milliseconds once tcti-swtpm's per-command connections have filled
 * it with TIME_WAIT entries. Returns -1 when it cannot be found.
 */
static long tcp_peer_uid(struct server *srv, const struct conn *c)
{
    const struct sockaddr_storage *pp = &c->peer_addr;
    struct sockaddr_storage peer, self;
    socklen_t sl = sizeof(self);
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg = {0};
    struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
    union {
        struct nlmsghdr nlh;
        char buf[1024];
    } rsp;
    long uid = -1;
    ssize_t n;
    int s;

    if (c->peer_len == 0 || getsockname(c->fd, (struct sockaddr *)&self, &sl) != 0 ||
        pp->ss_family != self.ss_family) {
        return -1;
    }
    peer = *pp;
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = (uint8_t)peer.ss_family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0u;
    msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (peer.ss_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)&peer;
        const struct sockaddr_in *m = (const struct sockaddr_in *)&self;
        msg.req.id.idiag_sport = p->sin_port;
        msg.req.id.idiag_dport = m->sin_port;
        memcpy(msg.req.id.idiag_src, &p->sin_addr, 4);
        memcpy(msg.req.id.idiag_dst, &m->sin_addr, 4);
    } else if (peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)&peer;
        const struct sockaddr_in6 *m = (const struct sockaddr_in6 *)&self;
        msg.req.id.idiag_sport = p->sin6_port;
        msg.req.id.idiag_dport = m->sin6_port;
        memcpy(msg.req.id.idiag_src, &p->sin6_addr, 16);
        memcpy(msg.req.id.idiag_dst, &m->sin6_addr, 16);
    } else {
        return -1;
    }
    /* One netlink socket serves every lookup; it is reopened if it ever misbehaves. */
    if (srv->diag_fd < 0) {
        srv->diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (srv->diag_fd < 0) {
            return -1;
        }
    }
    s = srv->diag_fd;
    if (sendto(s, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) ==
        (ssize_t)sizeof(msg)) {
        n = recv(s, &rsp, sizeof(rsp), 0);
        if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) &&
            NLMSG_OK(&rsp.nlh, (size_t)n) && rsp.nlh.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            const struct inet_diag_msg *d = NLMSG_DATA(&rsp.nlh);
            uid = (long)d->idiag_uid;
        }
    }
    if (uid < 0) {
        close(srv->diag_fd);
        srv->diag_fd = -1;
    }
    return uid;
}

static struct keyed_space *keyed_get(struct server *srv, struct conn *c)
{
    struct keyed_space *k;
    char key[48];
    pid_t pid = 0;

    if (c->is_unix && c->pid > 0) {
        snprintf(key, sizeof(key), "pid %ld", (long)c->pid);
        pid = c->pid;
    } else {
        long uid = c->is_tcp ? tcp_peer_uid(srv, c) : -1;
        if (uid >= 0) {
            snprintf(key, sizeof(key), "tcp uid %ld", uid);
        } else {
            snprintf(key, sizeof(key), "tcp");
        }
    }
    for (k = srv->keyed; k != NULL; k = k->next) {
        if (strcmp(k->key, key) == 0) {
            return k;
        }
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    snprintf(k->key, sizeof(k->key), "%s", key);
    k->pid = pid;
    k->space = rm_space_new(srv->rm, key);
    if (k->space == NULL) {
        free(k);
        return NULL;
    }
    k->next = srv->keyed;
    srv->keyed = k;
    return k;
}

/* Frees keyed spaces whose last connection is long gone, or whose process has exited. */
static void keyed_reap(struct server *srv, int all)
{
    uint64_t now = now_ns();

    for (struct keyed_space **pp = &srv->keyed; *pp != NULL;) {
        struct keyed_space *k = *pp;
        int gone = k->refs == 0 &&
                   (all || (k->pid > 0 ? kill(k->pid, 0) != 0 && errno == ESRCH
                                       : now - k->idle_since >=
                                             (uint64_t)srv->cfg.raw_space_idle * 1000000000u));
        if (gone) {
            LOG_DEBUG("swtpm-dialect space %s released", k->key);
            rm_space_free(k->space);
            *pp = k->next;
            free(k);
        } else {
            pp = &k->next;
        }
    }
}

/* The space a connection's commands run in; created on first use. NULL when out of memory. */
static struct rm_space *conn_space(struct server *srv, struct conn *c, int raw)
{
    char name[96];

    if (raw) {
        if (c->keyed == NULL) {
            c->keyed = keyed_get(srv, c);
            if (c->keyed == NULL) {
                return NULL;
            }
            c->keyed->refs++;
        }
        return c->keyed->space;
    }
    if (c->space == NULL) {
        snprintf(name, sizeof(name), "%u (%s)", c->id, c->peer);
        c->space = rm_space_new(srv->rm, name);
    }
    return c->space;
}

static int execute(struct server *srv, struct conn *c, uint8_t locality, uint8_t *cmd, size_t len,
                   int framed)
{
    uint8_t err_rsp[10];
    const uint8_t *rsp;
    size_t rsp_len;
    int r = 0;

    if (locality > 4) {
        tpm_error_response(TPM2_RC_LOCALITY, err_rsp, &rsp_len);
        rsp = err_rsp;
        LOG_WARNING("connection %u: locality %u does not exist", c->id, locality);
    } else if (locality >= 3 && !c->trusted) {
        tpm_error_response(TPM2_RC_LOCALITY, err_rsp, &rsp_len);
        rsp = err_rsp;
        refuse_log(c, locality == 3 ? "a command at locality 3" : "a command at locality 4");
    } else {
        struct rm_space *space = srv->rm != NULL ? conn_space(srv, c, !framed) : NULL;
        LOGBLOB_TRACE(cmd, len, "connection %u: command at locality %u", c->id, locality);
        if (space != NULL) {
            rm_execute(space, locality, cmd, len, &rsp, &rsp_len);
        } else if (srv->rm != NULL) {
            tpm_error_response(TPM2_RC_MEMORY, err_rsp, &rsp_len);
            rsp = err_rsp;
        } else {
            tpm_execute(locality, cmd, len, &rsp, &rsp_len);
        }
        LOGBLOB_TRACE(rsp, rsp_len, "connection %u: response", c->id);
    }
    c->commands++;
    if (framed) {
        r |= out_u32(c, (uint32_t)rsp_len);
        r |= out_append(c, rsp, rsp_len);
        r |= out_u32(c, 0);
    } else {
        r |= out_append(c, rsp, rsp_len);
    }
    return r;
}

/*
 * mssim SESSION_END and STOP, valid on both channels: the connection ends without a reply; STOP
 * also ends the service, when the peer is trusted.
 */
static int end_session(struct server *srv, struct conn *c, int stop)
{
    c->close_after_send = 1;
    if (!stop) {
        return 0;
    }
    if (!c->trusted) {
        refuse_log(c, "STOP (ending the service)");
        return 0;
    }
    LOG_INFO("connection %u (%s) asked the service to stop", c->id, c->peer);
    srv->stop = 1;
    return 0;
}

static int handle_data(struct server *srv, struct conn *c, const struct proto_data_msg *m)
{
    uint32_t res;

    if (m->raw) {
        /* The message points into c->in, which nothing else touches until we return. */
        return execute(srv, c, srv->swtpm_locality, (uint8_t *)(uintptr_t)m->data, m->len, 0);
    }
    switch (m->code) {
    case MSSIM_SEND_COMMAND:
        return execute(srv, c, m->locality, (uint8_t *)(uintptr_t)m->data, m->len, 1);
    case MSSIM_REMOTE_HANDSHAKE:
        return out_u32(c, MSSIM_SERVER_VERSION) | out_u32(c, MSSIM_FLAGS) | out_u32(c, 0);
    case MSSIM_SET_ALTERNATIVE_RESULT:
        return out_u32(c, 0);
    case MSSIM_HASH_START:
    case MSSIM_HASH_DATA:
    case MSSIM_HASH_END:
        if (!c->trusted) {
            refuse_log(c, "an H-CRTM hash sequence (locality 4)");
            return out_u32(c, 1);
        }
        res = m->code == MSSIM_HASH_START  ? tpm_hash_start()
              : m->code == MSSIM_HASH_DATA ? tpm_hash_data(m->data, m->len)
                                           : tpm_hash_end();
        return out_u32(c, res == 0 ? 0 : 1);
    case MSSIM_SESSION_END:
    case MSSIM_STOP:
        return end_session(srv, c, m->code == MSSIM_STOP);
    default:
        return -1;
    }
}

/* ---- the control channel ---- */

static const char *power_error = "";

static int power_cycle(int orderly, enum tpm_startup startup, int delete_volatile)
{
    char err[256];

    if (the_rm != NULL) {
        rm_tpm_reset(the_rm);
    }
    tpm_power_off(orderly);
    if (tpm_power_on(delete_volatile, startup, err, sizeof(err)) != SCTPM_RC_SUCCESS) {
        LOG_ERROR("the TPM did not come back on: %s", err);
        power_error = "the TPM did not come back on";
        return -1;
    }
    return 0;
}

static int handle_mssim_ctrl(struct server *srv, struct conn *c, const struct proto_ctrl_msg *m)
{
    char err[256];

    switch (m->code) {
    case MSSIM_POWER_ON:
        /* Every tcti-mssim client sends this on connect: it must not reset a running TPM. */
        if (tpm_running()) {
            return out_u32(c, 0);
        }
        if (!c->trusted) {
            refuse_log(c, "POWER_ON of a powered-off TPM");
            return out_u32(c, 1);
        }
        return out_u32(
            c, tpm_power_on(0, TPM_STARTUP_CLEAR, err, sizeof(err)) == SCTPM_RC_SUCCESS ? 0 : 1);
    case MSSIM_POWER_OFF:
        if (!c->trusted) {
            refuse_log(c, "POWER_OFF");
            return out_u32(c, 1);
        }
        LOG_INFO("connection %u (%s) powered the TPM off", c->id, c->peer);
        if (srv->rm != NULL) {
            rm_tpm_reset(srv->rm);
        }
        tpm_power_off(0);
        return out_u32(c, 0);
    case MSSIM_SIGNAL_RESET:
    case MSSIM_SIGNAL_RESTART:
        if (!c->trusted) {
            refuse_log(c, m->code == MSSIM_SIGNAL_RESET ? "SIGNAL_RESET" : "SIGNAL_RESTART");
            return out_u32(c, 1);
        }
        LOG_INFO("connection %u (%s) reset the TPM", c->id, c->peer);
        return out_u32(
            c, power_cycle(m->code == MSSIM_SIGNAL_RESTART, TPM_STARTUP_CLEAR, 0) == 0 ? 0 : 1);
    case MSSIM_PHYS_PRES_ON:
    case MSSIM_PHYS_PRES_OFF:
        if (!c->trusted) {
            refuse_log(c, "a physical presence signal");
            return out_u32(c, 1);
        }
        tpm_set_physical_presence(m->code == MSSIM_PHYS_PRES_ON);
        return out_u32(c, 0);
    case MSSIM_NV_ON:
    case MSSIM_NV_OFF:
    case MSSIM_CANCEL_ON:
    case MSSIM_CANCEL_OFF:
    case MSSIM_KEY_CACHE_ON:
    case MSSIM_KEY_CACHE_OFF:
        /*
         * NV is always available, commands run to completion before the next message is read
         * (so there is nothing to cancel), and there is no key cache: acknowledge.
         */
        return out_u32(c, 0);
    case MSSIM_GET_COMMAND_RESPONSE_SIZES:
        return out_u32(c, 8) | out_u32(c, srv->cfg.max_command) | out_u32(c, srv->cfg.max_command) |
               out_u32(c, 0);
    case MSSIM_ACT_GET_SIGNALED:
        /* No Authenticated Countdown Timers in libtpms: never signaled. */
        return out_u32(c, 0) | out_u32(c, 0);
    case MSSIM_TEST_FAILURE_MODE:
        LOG_WARNING("connection %u: TEST_FAILURE_MODE is not supported", c->id);
        return out_u32(c, 1);
    case MSSIM_SESSION_END:
    case MSSIM_STOP:
        return end_session(srv, c, m->code == MSSIM_STOP);
    default:
        return -1;
    }
}

/* Answers a swtpm control message that needs trust; returns 1 when it was refused. */
static int swtpm_refused(struct conn *c, const char *what)
{
    if (c->trusted) {
        return 0;
    }
    refuse_log(c, what);
    return 1;
}

static int add_passed_data_fd(struct server *srv, struct conn *c)
{
    int fd = c->passed_fd;
    struct conn *d;

    c->passed_fd = -1;
    if (fd < 0) {
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    d = conn_add(srv, fd, CHANNEL_DATA, 1, NULL, 0);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    d->trusted = c->trusted;
    return 0;
}

static int handle_swtpm_ctrl(struct server *srv, struct conn *c, const struct proto_ctrl_msg *m)
{
    char err[256];
    uint8_t *blob = NULL;
    size_t blob_len;
    uint32_t res;
    int est = 0, r;

    switch (m->code) {
    case SWTPM_GET_CAPABILITY: {
        uint32_t caps = SWTPM_CAP_INIT | SWTPM_CAP_SHUTDOWN | SWTPM_CAP_GET_TPMESTABLISHED |
                        SWTPM_CAP_SET_LOCALITY | SWTPM_CAP_HASHING | SWTPM_CAP_CANCEL_TPM_CMD |
                        SWTPM_CAP_STORE_VOLATILE | SWTPM_CAP_RESET_TPMESTABLISHED |
                        SWTPM_CAP_GET_STATEBLOB | SWTPM_CAP_SET_STATEBLOB | SWTPM_CAP_STOP |
                        SWTPM_CAP_GET_CONFIG | SWTPM_CAP_SET_BUFFERSIZE | SWTPM_CAP_GET_INFO |
                        SWTPM_CAP_SEND_COMMAND_HEADER;
        if (c->is_unix) {
            caps |= SWTPM_CAP_SET_DATAFD;
        }
        /* A u64 on the wire: the high half is zero. */
        return out_u32(c, 0) | out_u32(c, caps);
    }
    case SWTPM_INIT:
        if (swtpm_refused(c, "INIT (a TPM reset)")) {
            return out_u32(c, TPM_FAIL);
        }
        LOG_INFO("connection %u (%s) re-initialised the TPM", c->id, c->peer);
        /* Like swtpm 0.8+, shut down orderly first so the DA counter does not climb. */
        return out_u32(c, power_cycle(1, TPM_STARTUP_CLEAR, m->arg[0] & 1) == 0 ? TPM_SUCCESS
                                                                                : TPM_FAIL);
    case SWTPM_SHUTDOWN:
        if (swtpm_refused(c, "SHUTDOWN (ending the service)")) {
            return out_u32(c, TPM_FAIL);
        }
        LOG_INFO("connection %u (%s) asked the service to shut down", c->id, c->peer);
        srv->stop = 1;
        return out_u32(c, TPM_SUCCESS);
    case SWTPM_GET_TPMESTABLISHED:
        res = tpm_established_get(&est);
        return out_u32(c, res) | out_u32(c, (uint32_t)est << 24);
    case SWTPM_SET_LOCALITY:
        if (m->byte > 4) {
            return out_u32(c, TPM_BAD_LOCALITY);
        }
        if (m->byte >= 3 && swtpm_refused(c, "SET_LOCALITY 3 or 4")) {
            return out_u32(c, TPM_BAD_LOCALITY);
        }
        srv->swtpm_locality = m->byte;
        return out_u32(c, TPM_SUCCESS);
    case SWTPM_HASH_START:
    case SWTPM_HASH_DATA:
    case SWTPM_HASH_END:
        if (swtpm_refused(c, "an H-CRTM hash sequence (locality 4)")) {
            return out_u32(c, TPM_FAIL);
        }
        res = m->code == SWTPM_HASH_START  ? tpm_hash_start()
              : m->code == SWTPM_HASH_DATA ? tpm_hash_data(m->data, m->len)
                                           : tpm_hash_end();
        return out_u32(c, res);
    case SWTPM_CANCEL_TPM_CMD:
        return out_u32(c, TPM_SUCCESS);
    case SWTPM_STORE_VOLATILE:
        if (swtpm_refused(c, "STORE_VOLATILE")) {
            return out_u32(c, TPM_FAIL);
        }
        return out_u32(c, tpm_store_volatile() == SCTPM_RC_SUCCESS ? TPM_SUCCESS : TPM_FAIL);
    case SWTPM_RESET_TPMESTABLISHED:
        if (m->byte > 4) {
            return out_u32(c, TPM_BAD_LOCALITY);
        }
        if (swtpm_refused(c, "RESET_TPMESTABLISHED (locality 3 or 4)")) {
            return out_u32(c, TPM_BAD_LOCALITY);
        }
        return out_u32(c, tpm_established_reset(m->byte));
    case SWTPM_GET_STATEBLOB:
        /* The permanent state holds the TPM's seeds: only trusted peers may read it. */
        if (swtpm_refused(c, "GET_STATEBLOB (reading the TPM's secrets)")) {
            return out_u32(c, TPM_FAIL) | out_u32(c, 0) | out_u32(c, 0) | out_u32(c, 0);
        }
        if (tpm_get_state_blob(m->arg[1], &blob, &blob_len) != SCTPM_RC_SUCCESS ||
            m->arg[2] > blob_len) {
            free(blob);
            return out_u32(c, TPM_FAIL) | out_u32(c, 0) | out_u32(c, 0) | out_u32(c, 0);
        }
        /* An empty blob (no saved state) comes back as NULL: it has no bytes to send. */
        r = out_u32(c, TPM_SUCCESS) | out_u32(c, 0) | out_u32(c, (uint32_t)blob_len) |
            out_u32(c, (uint32_t)(blob_len - m->arg[2]));
        if (blob != NULL) {
            r |= out_append(c, blob + m->arg[2], blob_len - m->arg[2]);
            explicit_bzero(blob, blob_len);
            free(blob);
        }
        return r;
    case SWTPM_SET_STATEBLOB:
        if (swtpm_refused(c, "SET_STATEBLOB (replacing the TPM's state)")) {
            return out_u32(c, TPM_FAIL);
        }
        if (tpm_running()) {
            return out_u32(c, TPM_INVALID_POSTINIT);
        }
        if (m->arg[0] & 2) {
            LOG_WARNING("connection %u: SET_STATEBLOB of an encrypted blob is not supported",
                        c->id);
            return out_u32(c, TPM_BAD_PARAMETER);
        }
        return out_u32(c, tpm_set_state_blob(m->arg[1], m->data, m->len) == SCTPM_RC_SUCCESS
                              ? TPM_SUCCESS
                              : TPM_BAD_PARAMETER);
    case SWTPM_STOP:
        if (swtpm_refused(c, "STOP (powering the TPM off)")) {
            return out_u32(c, TPM_FAIL);
        }
        LOG_INFO("connection %u (%s) stopped the TPM", c->id, c->peer);
        if (srv->rm != NULL) {
            rm_tpm_reset(srv->rm);
        }
        tpm_power_off(1);
        return out_u32(c, TPM_SUCCESS);
    case SWTPM_GET_CONFIG:
        return out_u32(c, TPM_SUCCESS) | out_u32(c, srv->cfg.key_file ? 1 : 0);
    case SWTPM_SET_DATAFD:
        if (!c->is_unix || swtpm_refused(c, "SET_DATAFD")) {
            return out_u32(c, TPM_FAIL);
        }
        return out_u32(c, add_passed_data_fd(srv, c) == 0 ? TPM_SUCCESS : TPM_FAIL);
    case SWTPM_SET_BUFFERSIZE: {
        uint32_t min = 0, max = 0, size;
        if (m->arg[0] != 0 && tpm_running()) {
            return out_u32(c, TPM_INVALID_POSTINIT) | out_u32(c, 0) | out_u32(c, 0) | out_u32(c, 0);
        }
        size = tpm_buffer_size(m->arg[0], &min, &max);
        return out_u32(c, TPM_SUCCESS) | out_u32(c, size) | out_u32(c, min) | out_u32(c, max);
    }
    case SWTPM_GET_INFO: {
        char *info = tpm_get_info(m->arg64);
        size_t total = info != NULL ? strlen(info) : 0, off = m->arg[0], n;
        if (info == NULL || off > total) {
            free(info);
            return out_u32(c, TPM_FAIL) | out_u32(c, 0) | out_u32(c, 0);
        }
        n = total - off < INFO_CHUNK ? total - off : INFO_CHUNK;
        r = out_u32(c, TPM_SUCCESS) | out_u32(c, (uint32_t)total) | out_u32(c, (uint32_t)n) |
            out_append(c, info + off, n);
        free(info);
        return r;
    }
    case SWTPM_LOCK_STORAGE:
        /* The state directory is locked for as long as the service runs. */
        return out_u32(c, TPM_SUCCESS);
    default:
        (void)err;
        return -1;
    }
}

/* ---- reading and dispatch ---- */

/*
 * tcti-mssim writes a command's 9-byte header and its body in two write() calls, microseconds
 * apart. When only part of a message is here, wait for the rest without sleeping for a short
 * while: going back to epoll would put this thread to sleep and wake it again for every command.
 * Returns 1 when more bytes arrived.
 */
static int read_rest(struct server *srv, struct conn *c)
{
    uint64_t until = now_ns() + (uint64_t)srv->cfg.busy_poll_us * 1000u;

    if (srv->cfg.busy_poll_us == 0 || c->in_len == c->in_cap || c->channel != CHANNEL_DATA) {
        return 0;
    }
    do {
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        if (n > 0) {
            c->in_len += (size_t)n;
            return 1;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            return 0; /* epoll reports the hang-up or error */
        }
        sched_yield();
    } while (now_ns() < until);
    return 0;
}

static int read_input(struct server *srv, struct conn *c)
{
    ssize_t n;

    if (c->in_len == c->in_cap) {
        size_t cap = c->in_cap * 2 < c->in_max ? c->in_cap * 2 : c->in_max;
        uint8_t *p;
        if (cap <= c->in_cap) {
            /* Cannot happen: every message that fits the limits fits the buffer. */
            conn_close(srv, c, "input buffer full");
            return -1;
        }
        p = realloc(c->in, cap);
        if (p == NULL) {
            conn_close(srv, c, "out of memory");
            return -1;
        }
        c->in = p;
        c->in_cap = cap;
    }
    if (c->is_unix && c->channel == CHANNEL_CTRL) {
        /* QEMU passes its data channel as a descriptor on the control socket. */
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = {c->in + c->in_len, c->in_cap - c->in_len};
        struct msghdr msg = {.msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf)};
        n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
        if (n > 0) {
            for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); h != NULL; h = CMSG_NXTHDR(&msg, h)) {
                if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
                    h->cmsg_len == CMSG_LEN(sizeof(int))) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(h), sizeof(int));
                    if (c->passed_fd >= 0) {
                        close(c->passed_fd);
                    }
                    c->passed_fd = fd;
                }
            }
        }
    } else {
        n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return 0;
        }
        conn_close(srv, c, strerror(errno));
        return -1;
    }
    if (n == 0) {
        conn_close(srv, c, c->in_len ? "peer left in the middle of a message" : "peer closed");
        return -1;
    }
    c->in_len += (size_t)n;
    return 0;
}

/*
 * Handles one complete message buffered on `c`. Returns 1 when a message was handled, 0 when
 * none is complete, -1 when the connection was closed.
 */
static int process_one(struct server *srv, struct conn *c)
{
    const char *why = "malformed message";
    size_t used = 0;
    int r = -1;

    if (c->dead || c->in_len == 0 || c->out_len > 0) {
        return 0;
    }
    if (c->channel == CHANNEL_DATA) {
        struct proto_data_msg m;
        enum proto_status st;
        for (;;) {
            st = proto_parse_data(c->in, c->in_len, srv->cfg.max_command, MAX_HASH_CHUNK, &m, &used,
                                  &why);
            if (st != PROTO_NEED_MORE) {
                break;
            }
            if (c->is_tcp) {
                /*
                 * Half a message: the client may be holding the rest back (Nagle) until this part
                 * is acknowledged, which Linux would delay by ~40 ms. Setting TCP_QUICKACK sends
                 * the pending ACK now. Clearing it again at once puts the socket back in delayed
                 * ACK mode before the rest arrives, so that the rest is acknowledged by the
                 * response instead of a pure ACK of its own: one segment fewer per command.
                 */
                int one = 1, zero = 0;
                setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
                setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
            }
            if (!read_rest(srv, c)) {
                return 0;
            }
        }
        if (st == PROTO_OK) {
            r = handle_data(srv, c, &m);
        }
    } else {
        struct proto_ctrl_msg m;
        enum proto_status st;
        if (c->dialect == PROTO_DIALECT_UNKNOWN) {
            c->dialect = proto_ctrl_dialect(c->in, c->in_len);
            if (c->dialect == PROTO_DIALECT_UNKNOWN) {
                return 0;
            }
            LOG_DEBUG("connection %u speaks the %s control dialect", c->id,
                      c->dialect == PROTO_DIALECT_SWTPM ? "swtpm" : "mssim");
        }
        st = c->dialect == PROTO_DIALECT_SWTPM
                 ? proto_parse_swtpm_ctrl(c->in, c->in_len, NVSTORE_MAX_BLOB, &m, &used, &why)
                 : proto_parse_mssim_ctrl(c->in, c->in_len, &m, &used, &why);
        if (st == PROTO_NEED_MORE) {
            return 0;
        }
        if (st == PROTO_OK) {
            r = c->dialect == PROTO_DIALECT_SWTPM ? handle_swtpm_ctrl(srv, c, &m)
                                                  : handle_mssim_ctrl(srv, c, &m);
        }
    }
    if (r != 0) {
        /* A protocol error: tell the peer where the protocol allows it, then hang up. */
        if (used == 0) {
            LOG_WARNING("connection %u (%s): %s; closing it", c->id, c->peer, why);
            if (c->channel == CHANNEL_CTRL && c->dialect == PROTO_DIALECT_MSSIM) {
                (void)out_u32(c, 1);
            }
        } else {
            LOG_ERROR("connection %u (%s): out of memory building a reply", c->id, c->peer);
        }
        c->in_len = 0;
        c->close_after_send = 1;
        flush_out(srv, c);
        return -1;
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->partial_since = 0;
    if (c->out_len > 0 || c->close_after_send) {
        flush_out(srv, c);
    }
    return c->dead ? -1 : 1;
}

/*
 * Serves every buffered message, one per connection per round, until none is complete. Returns
 * whether any message was served.
 */
static int process_all(struct server *srv)
{
    int progress, any = 0;

    do {
        progress = 0;
        for (struct conn *c = srv->conns; c != NULL && !srv->stop; c = c->next) {
            if (process_one(srv, c) == 1) {
                progress = 1;
                any = 1;
            }
        }
    } while (progress && !srv->stop);
    return any;
}

static void reap(struct server *srv)
{
    struct conn **pp = &srv->conns;
    time_t now = now_s();

    if (srv->rm != NULL) {
        keyed_reap(srv, 0);
        rm_expire(srv->rm);
    }

    while (*pp != NULL) {
        struct conn *c = *pp;
        if (!c->dead && c->in_len > 0 && srv->cfg.partial_timeout > 0) {
            /* A half-sent message may not pin a connection slot forever. */
            if (c->partial_since == 0) {
                c->partial_since = now;
            } else if (now - c->partial_since >= (time_t)srv->cfg.partial_timeout) {
                LOG_WARNING("connection %u (%s): no complete message within %u s; closing it",
                            c->id, c->peer, srv->cfg.partial_timeout);
                conn_close(srv, c, NULL);
            }
        }
        if (c->dead) {
            *pp = c->next;
            conn_free(c);
        } else {
            pp = &c->next;
        }
    }
}

static void log_status(struct server *srv)
{
    LOG_INFO("status: %u connection(s), TPM %s", srv->n_conns, tpm_running() ? "on" : "off");
    if (srv->rm != NULL) {
        rm_log_status(srv->rm);
    }
    for (struct conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->dead) {
            continue;
        }
        LOG_INFO("  connection %u: %s, %s channel, %s dialect, %lu command(s)%s", c->id, c->peer,
                 c->channel == CHANNEL_DATA ? "command" : "control",
                 c->dialect == PROTO_DIALECT_SWTPM   ? "swtpm"
                 : c->dialect == PROTO_DIALECT_MSSIM ? "mssim"
                                                     : "undecided",
                 c->commands, c->trusted ? ", trusted" : "");
    }
}

static void handle_signal(struct server *srv)
{
    struct signalfd_siginfo si;

    while (read(srv->sig.fd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            LOG_INFO("signal %u: shutting down", si.ssi_signo);
            srv->stop = 1;
            break;
        case SIGUSR1:
            log_status(srv);
            break;
        default:
            break;
        }
    }
}

/*
 * Milliseconds until the idle period that began at `idle_since` ends (0 when it has), capped at a
 * minute so that a very long --idle-exit needs no overflow care: the loop just wakes up and asks
 * again.
 */
static int idle_left_ms(const struct server *srv, uint64_t idle_since)
{
    uint64_t end = idle_since + (uint64_t)srv->cfg.idle_exit * 1000000000u, now = now_ns();

    if (now >= end) {
        return 0;
    }
    return end - now >= 60000000000u ? 60000 : (int)((end - now + 999999u) / 1000000u);
}

/*
 * One round of the loop: waits for events (spinning without sleeping until `spin_until`, then
 * sleeping at most `timeout` ms), reads, serves every complete message and reaps. Returns 1 when
 * a message was served, 0 when none was, -1 on a fatal error.
 */
static int loop_once(struct server *srv, uint64_t spin_until, int timeout)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = 0, served;

    while (spin_until != 0 && n == 0 && now_ns() < spin_until) {
        n = epoll_wait(srv->epfd, evs, MAX_EVENTS, 0);
        if (n == 0) {
            /* A client waiting for this core (a loaded or small machine) runs now, not later. */
            sched_yield();
        }
    }
    if (n == 0) {
        n = epoll_wait(srv->epfd, evs, MAX_EVENTS, timeout);
    }
    if (n < 0) {
        if (errno == EINTR) {
            return 0;
        }
        LOG_ERROR("epoll_wait: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        enum ev_type type = *(enum ev_type *)evs[i].data.ptr;
        if (type == EV_SIGNAL) {
            handle_signal(srv);
        } else if (type == EV_LISTENER) {
            do_accept(srv, evs[i].data.ptr);
        } else {
            struct conn *c = evs[i].data.ptr;
            if (c->dead) {
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                flush_out(srv, c);
            }
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
                (void)read_input(srv, c);
            }
        }
    }
    served = process_all(srv);
    reap(srv);
    return served;
}

int server_run(struct server *srv)
{
    uint64_t spin_until = 0;
    /* Start of the current period without any connection; 0 while there are connections. */
    uint64_t idle_since = now_ns();

    while (!srv->stop) {
        int timeout = srv->rm != NULL ? 1000 : -1, served;
        for (struct conn *c = srv->conns; c != NULL; c = c->next) {
            if (c->in_len > 0 && srv->cfg.partial_timeout > 0) {
                timeout = 1000;
                break;
            }
        }
        if (srv->cfg.idle_exit > 0 && idle_since != 0) {
            int left = idle_left_ms(srv, idle_since);
            if (timeout < 0 || left < timeout) {
                timeout = left;
            }
        }
        /*
         * Right after serving a command, poll without sleeping for a short while: a client in a
         * command loop sends its next command within microseconds, and waking a sleeping thread
         * costs more than the command itself. Idle periods still sleep.
         */
        served = loop_once(srv, spin_until, timeout);
        if (served < 0) {
            return -1;
        }
        spin_until = served > 0 && srv->cfg.busy_poll_us > 0
                         ? now_ns() + (uint64_t)srv->cfg.busy_poll_us * 1000u
                         : 0;
        /*
         * Idle exit. Connections still waiting in a listen backlog are not counted: stopping
         * closes the listeners and resets them, and their clients (tcti-mssim waits for the
         * POWER_ON acknowledgement during its init) see a failed connect rather than a TPM that
         * vanishes between commands. The sctpm TCTI then starts a new daemon.
         */
        if (srv->cfg.idle_exit > 0) {
            if (srv->n_conns > 0) {
                idle_since = 0;
            } else if (idle_since == 0) {
                idle_since = now_ns();
            } else if (idle_left_ms(srv, idle_since) == 0) {
                LOG_INFO("no client for %u s: shutting down (--idle-exit)", srv->cfg.idle_exit);
                srv->stop = 1;
            }
        }
    }
    return 0;
}

unsigned server_default_busy_poll_us(void)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return 0;
    }
    return CPU_COUNT(&set) >= 2 ? SERVER_BUSY_POLL_US : 0;
}

int server_adopt(struct server *srv, int fd, int control, int as_tcp)
{
    struct conn *c;

    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        return -errno;
    }
    c = conn_add(srv, fd, control ? CHANNEL_CTRL : CHANNEL_DATA, !as_tcp, NULL, 0);
    return c != NULL ? 0 : -ENOMEM;
}

int server_poll(struct server *srv, int timeout_ms)
{
    int r = loop_once(srv, 0, timeout_ms);

    if (r < 0) {
        return -1;
    }
    if (srv->stop) {
        srv->stop = 0;
        return 1;
    }
    return 0;
}

void server_destroy(struct server *srv)
{
    if (srv == NULL) {
        return;
    }
    for (struct conn *c = srv->conns; c != NULL; c = c->next) {
        conn_close(srv, c, NULL);
    }
    reap(srv);
    if (srv->rm != NULL) {
        keyed_reap(srv, 1);
        rm_destroy(srv->rm);
        the_rm = NULL;
    }
    for (size_t i = 0; i < srv->n_listeners; i++) {
        struct listener *l = &srv->listeners[i];
        if (l->is_unix) {
            unlink(l->name);
        }
        close(l->fd);
    }
    if (srv->sig.fd >= 0) {
        close(srv->sig.fd);
    }
    if (srv->diag_fd >= 0) {
        close(srv->diag_fd);
    }
    if (srv->epfd >= 0) {
        close(srv->epfd);
    }
    free(srv);
}
