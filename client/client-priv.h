/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sctpm-client's commands. main.c parses the command line into these structures and calls one
 * function; everything else is in libclient, which the tests link.
 *
 * Output: standard output carries results, one line per outcome, each starting with a word a
 * script can match ("sent", "queued", "rejected", "c2d", "completed", ...); standard error carries
 * errors and notes, one line each, starting with "sctpm-client: ". Neither ever shows a key, a
 * token or a signature.
 */
#ifndef SCTPM_CLIENT_CLIENT_PRIV_H
#define SCTPM_CLIENT_CLIENT_PRIV_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "hubapi-priv.h"
#include "queue-priv.h"
#include "token-priv.h"
#include "tpm-priv.h"

/* Exit codes, documented in docs/sctpm-client.1. 2-7 mean what they mean for sctpm(1). */
enum client_exit {
    CLIENT_OK = 0,
    CLIENT_FAILURE = 1,         /* anything not listed below */
    CLIENT_USAGE = 2,           /* bad command line */
    CLIENT_BAD_INPUT = 3,       /* a message or option value that cannot be sent as given */
    CLIENT_NO_TPM = 4,          /* no TPM could be reached */
    CLIENT_TPM_ERROR = 5,       /* the TPM refused or failed a command */
    CLIENT_NOT_HARDWARE = 6,    /* an emulated TPM was refused by --require-hardware */
    CLIENT_NOT_PROVISIONED = 7, /* the slot holds no identity or key */
    CLIENT_QUEUE_FULL = 8,      /* send: the queue is at its bound; nothing was accepted */
    CLIENT_UNREACHABLE = 9,     /* the hub could not be reached, or stayed unavailable */
    CLIENT_TLS = 10,            /* TLS failed: the server could not be verified */
    CLIENT_UNAUTHORIZED = 11,   /* the hub refused the token, also after a renewal */
    CLIENT_REFUSED = 12,        /* the hub refused the request (4xx) */
    CLIENT_INTERRUPTED = 130,   /* stopped by a signal before finishing */
};

struct client_config {
    const char *tcti; /* NULL: libsctpm's order */
    unsigned int slot;
    int require_hardware;
    const char *ca_file;   /* added to the system CAs */
    const char *endpoint;  /* https://HOST[:PORT], NULL: https://<HostName> */
    const char *queue_dir; /* NULL: queue_default_dir() */
    struct queue_limits limits;
    uint32_t token_ttl; /* seconds; 0: SCTPM_DEFAULT_TTL */
    int verbose;
    int quiet;                         /* no "sent" lines */
    FILE *out;                         /* results (stdout) */
    FILE *err;                         /* errors, notes, --verbose (stderr) */
    const volatile sig_atomic_t *stop; /* raised by SIGINT/SIGTERM/SIGHUP */
};

struct client_send_opts {
    char **bodies; /* the BODY arguments ("-": standard input) */
    size_t nbodies;
    int lines;              /* each line of standard input is a message */
    int batch;              /* deliver in batch requests */
    int no_flush;           /* only enqueue */
    double timeout_s;       /* how long delivery may keep retrying (0: one attempt) */
    json_object *props;     /* --prop and system properties; borrowed */
    const char *message_id; /* --message-id, for one message */
};

enum client_settle { CLIENT_SETTLE_NONE, CLIENT_COMPLETE, CLIENT_REJECT, CLIENT_ABANDON };

struct client_receive_opts {
    enum client_settle settle;
    const char *lock; /* settle this lock token instead of receiving */
    double wait_s;    /* poll this long for a message (0: ask once) */
};

struct client_run_opts {
    int batch;
    int read_stdin;
    const char *watch_dir; /* files dropped here are messages */
    int c2d;               /* poll cloud-to-device messages */
    double poll_s;         /* the C2D polling interval */
    int exit_on_eof;       /* stop once standard input ended and the queue is empty */
    json_object *props;    /* properties for every message read; borrowed */
};

int client_send(const struct client_config *cfg, const struct client_send_opts *o);
int client_flush(const struct client_config *cfg, int batch, double timeout_s);
int client_receive(const struct client_config *cfg, const struct client_receive_opts *o);
int client_run(const struct client_config *cfg, const struct client_run_opts *o);
int client_queue_status(const struct client_config *cfg);

/* The exit code for a failure with result code `rc` (hub outcomes and local errors alike). */
int client_exit_code(enum sctpm_rc rc, int retryable);

/*
 * Formats a cloud-to-device message as its output line (without the newline):
 *   c2d id=<id> lock=<lock> delivery=<n> [cid=<id>] [ct=<type>] [ce=<enc>] props=<json>
 *       body=<text> | body64=<base64>
 * The body is shown as text when it is printable UTF-8 without line breaks. `*line` is
 * callee-allocated (free()).
 */
enum sctpm_rc client_c2d_line(const struct hubapi_c2d *m, char **line);

/* --- shared by client.c and run.c --- */

/* A backlog at least this large gets progress lines on standard error while it drains. */
#define CLIENT_PROGRESS_MIN      1000
#define CLIENT_PROGRESS_EVERY_MS 2000

/* What a command needs opened. */
enum { SESSION_TPM = 1, SESSION_QUEUE = 2, SESSION_HUB = 4 };

struct session {
    const struct client_config *cfg;
    struct client_tpm tpm;
    struct token_cache tokens;
    struct http *http;
    struct hubapi api;
    struct queue *q;
    char identity[SCTPM_HOST_MAX + 2 * SCTPM_ID_MAX + 3];
    char queue_dir[4096];
};

/*
 * Opens what `what` asks for, in order: the TPM and the slot's identity, the queue (tied to the
 * identity), the HTTPS client and the hub API. On failure prints one line and returns the exit
 * code (session_close() is still needed); CLIENT_OK otherwise.
 */
int session_open(struct session *s, const struct client_config *cfg, unsigned what);
void session_close(struct session *s);

/* "sctpm-client: <text>" on cfg->err. */
void client_error(const struct client_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Wall-clock milliseconds since the epoch. */
int64_t client_wall_ms(void);

#endif /* SCTPM_CLIENT_CLIENT_PRIV_H */
