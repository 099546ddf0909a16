/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * server: sctpmd's event loop. One thread, one epoll set: listeners, client connections and a
 * signalfd. Commands from all connections are serialised into the one libtpms TPM, taking at
 * most one message per connection per round so that a busy client cannot starve the others.
 *
 * Each listener is a pair, as the TCTIs expect: the data (command) channel on port N or PATH and
 * the control (platform) channel on port N+1 or PATH.ctrl. See proto.h for the framing and
 * docs/sctpmd-design.md for how one port pair serves tcti-mssim, tcti-swtpm and clients that
 * configure nothing.
 */
#ifndef SCTPM_EMULATOR_SERVER_H
#define SCTPM_EMULATOR_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sctpm/rc.h"
#include "proto.h"
#include "rm.h"

#define SERVER_MAX_PLATFORM_UIDS 8

struct server_config {
    int tcp;                 /* serve TCP on listen_addr:port and port+1 */
    const char *listen_addr; /* NULL: 127.0.0.1; "localhost": 127.0.0.1 and ::1 */
    uint16_t port;
    const char *unix_path; /* NULL: no Unix sockets; else PATH and PATH.ctrl */
    mode_t unix_mode;      /* permissions of the Unix sockets (0600 unless a group is given) */
    gid_t unix_gid;        /* (gid_t)-1: keep the default group */
    /* Control-channel dialect: PROTO_DIALECT_UNKNOWN decides per connection (see proto.h). */
    enum proto_dialect ctrl_dialect;
    /*
     * Platform operations (power cycles, TPM reset, localities 3 and 4, state blobs, stopping the
     * service) affect every client of the shared TPM. They are allowed to every connection when
     * allow_platform is set, else only to Unix-socket peers whose uid is listed.
     */
    int allow_platform;
    uid_t platform_uids[SERVER_MAX_PLATFORM_UIDS];
    size_t n_platform_uids;
    unsigned max_connections;
    uint32_t max_command;     /* largest TPM command accepted, in bytes */
    unsigned partial_timeout; /* seconds a connection may hold half a message */
    int key_file;             /* the state is encrypted (swtpm GET_CONFIG reports it) */
    unsigned busy_poll_us;    /* after serving a command, poll this long before sleeping */
    int no_rm;                /* serve the TPM unvirtualised, shared by all clients like swtpm */
    struct rm_config rm;      /* resource manager quotas */
    unsigned raw_space_idle;  /* seconds a swtpm-dialect space outlives its last connection */
    /*
     * Seconds without any client connection after which server_run() returns as if asked to
     * stop, so the caller saves the state and exits; 0 (the default) never. This is what lets a
     * per-user sctpmd that the sctpm TCTI started on demand go away when nobody uses it.
     */
    unsigned idle_exit;
};

struct server;

/*
 * Binds every listener of `cfg` (copied). Errors (address in use, bad address, another sctpmd on
 * the Unix socket) come back with a sentence in `err`.
 */
enum sctpm_rc server_create(const struct server_config *cfg, struct server **out, char *err,
                            size_t errlen);

/*
 * Runs until SIGTERM or SIGINT arrives, a trusted client asks the service to stop (mssim STOP,
 * swtpm SHUTDOWN), or no connection has existed for cfg->idle_exit seconds. The caller must have
 * blocked SIGTERM, SIGINT, SIGHUP and SIGUSR1 in every thread; SIGUSR1 logs the state of every
 * connection. Returns 0, or -1 on a fatal loop error.
 */
int server_run(struct server *srv);

/*
 * For tests and fuzzers, which drive the loop themselves on connections they made:
 *
 * server_adopt() serves `fd`, a connected stream socket such as one end of a socketpair, on the
 * control channel when `control` is set, else on the data channel: as a Unix-socket peer
 * (trusted as the configuration says), or with `as_tcp` as a TCP peer (never trusted). Returns 0,
 * and the server owns `fd` from then on, or a negative errno, and the caller still owns it.
 *
 * server_poll() runs one round of server_run()'s loop, waiting at most `timeout_ms` for events:
 * it reads, serves every complete message and closes what must be closed. Returns 1 when a
 * client asked the service to stop (the request is consumed: the caller decides), 0 otherwise,
 * -1 on a fatal error.
 */
int server_adopt(struct server *srv, int fd, int control, int as_tcp);
int server_poll(struct server *srv, int timeout_ms);

/* Closes every connection and listener and removes the Unix socket files. NULL is a no-op. */
void server_destroy(struct server *srv);

/* The signals server_run() consumes; block them before creating threads or the server. */
void server_block_signals(void);

/*
 * The default of busy_poll_us: SERVER_BUSY_POLL_US when this process may run on two or more
 * CPUs, 0 on one (the spinning daemon would only delay the client it waits for).
 */
#define SERVER_BUSY_POLL_US 50
unsigned server_default_busy_poll_us(void);

#endif /* SCTPM_EMULATOR_SERVER_H */
