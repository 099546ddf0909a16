/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sctpm-client run: the long-running device loop.
 *
 * One thread, one poll() loop, three jobs:
 *   input     lines of standard input, and files dropped into --watch DIR, each one message,
 *             enqueued (committed to disk) as soon as it is read; a file is removed only after
 *             its message is committed. A file is taken when inotify says it was closed after
 *             writing or moved into DIR (and at start, and after an event overflow, every file
 *             there), so a file is not read while its writer is still at it. When the queue is
 * full, input stops being read until deliveries make room (back-pressure: nothing read is dropped
 * for lack of room). delivery  the backlog, oldest first, one request at a time; after a failure
 * the next attempt waits with exponential backoff and jitter (Retry-After honoured), and input and
 *             cloud-to-device polling go on meanwhile. This process holds the delivery lock for
 *             its whole life; `send` processes on the same queue only enqueue, and run notices
 *             their messages within QUEUE_POLL_MS.
 *   C2D       every --poll seconds, receive until the hub has nothing; print each message once
 *             (ids printed are remembered in the queue database, so a redelivery after a lost
 *             lock or a restart is completed without being printed again), then complete it.
 *
 * Files dropped into DIR get a message id derived from the file (name, inode, mtime, size and
 * content): if the process dies between the commit and the unlink, the file is read again after
 * a restart and gets the same id, so the hub keeps one copy.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define LOGMODULE run
#include "log.h"
#include "backoff-priv.h"
#include "client-priv.h"
#include "deliver-priv.h"
#include "io.h"
#include "msg-priv.h"

/* How often run looks for messages other processes queued while it holds the delivery lock. */
#define QUEUE_POLL_MS 250
/* A failure that repeats with the same text is reported again at most this often. */
#define REPEAT_REPORT_MS 60000
/* Cloud-to-device messages received per polling round at most (the rest wait for the next). */
#define C2D_PER_ROUND 50
/* Files enqueued per transaction at most. */
#define FILES_PER_COMMIT 64
/* Names of ready files remembered at most; past this a rescan takes the directory as it is. */
#define PENDING_MAX 65536
/* Input buffer: one line of up to a whole message, plus its newline. */
#define INBUF_SIZE (MSG_MAX_SIZE + 2)

struct run {
    const struct client_config *cfg;
    const struct client_run_opts *o;
    struct session s;
    struct deliver d;
    const char *props_text;
    /* Standard input. */
    int stdin_open;
    char *inbuf;
    size_t inlen;
    int discarding; /* inside a line too long to be a message: drop up to its newline */
    unsigned long line_no;
    /* --watch DIR */
    int watch_fd;
    int rescan;     /* take every file in DIR (at start, after an inotify overflow) */
    char **pending; /* names closed after writing or moved into DIR, not taken yet */
    size_t npending;
    size_t cap_pending;
    /* Back-pressure: the queue was full, input waits. */
    int input_paused;
    int64_t paused_since;
    int64_t next_input_retry;
    /* Scheduling, on the monotonic clock. */
    int maybe_queued;
    int64_t next_deliver;
    int64_t next_queue_check;
    int64_t next_c2d;
    struct backoff c2d_backoff;
    /* Failure reporting: the same kind of failure (result code, HTTP status) is not repeated. */
    enum sctpm_rc last_rc;
    long last_status;
    int64_t last_err_ms;
    unsigned long streak;
    int64_t streak_start;
    enum sctpm_rc c2d_rc;
    long c2d_status;
    int64_t c2d_err_ms;
    int fatal; /* stop: the slot's identity changed under us */
    int c2d;   /* polling cloud-to-device messages */
    /* Draining a large backlog: progress lines. */
    uint64_t backlog;
    unsigned long backlog_sent;
    int64_t backlog_start;
    int64_t backlog_reported;
    /* Statistics. */
    unsigned long read_msgs;
    unsigned long c2d_printed;
};

/* ---- reporting ---- */

/* Progress of a large backlog: every CLIENT_PROGRESS_EVERY_MS, and when it is done. */
static void backlog_progress(struct run *r, int done)
{
    int64_t now = deliver_mono_ms();
    double secs = (double)(now - r->backlog_start) / 1000.0;

    if (r->backlog == 0 || (!done && now - r->backlog_reported < CLIENT_PROGRESS_EVERY_MS)) {
        return;
    }
    r->backlog_reported = now;
    if (done) {
        client_error(r->cfg, "backlog delivered: %lu message(s) in %.1f s (%.0f/s)",
                     r->backlog_sent, secs, secs > 0 ? (double)r->backlog_sent / secs : 0.0);
        r->backlog = 0;
    } else {
        client_error(r->cfg, "delivering the backlog: %lu of %llu sent (%.0f/s)", r->backlog_sent,
                     (unsigned long long)r->backlog,
                     secs > 0 ? (double)r->backlog_sent / secs : 0.0);
    }
}

static void on_sent(void *ctx, const struct queue_item *items, size_t n, int batch)
{
    struct run *r = ctx;

    (void)batch;
    r->backlog_sent += n;
    backlog_progress(r, 0);
    if (r->cfg->quiet) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        fprintf(r->cfg->out, "sent %s\n", items[i].id);
    }
    fflush(r->cfg->out);
}

static void on_rejected(void *ctx, const struct queue_item *it, const struct hubapi_result *res)
{
    struct run *r = ctx;

    fprintf(r->cfg->out, "rejected %s\n", it->id);
    fflush(r->cfg->out);
    client_error(r->cfg, "message %s was refused by the hub and moved aside: %s", it->id,
                 res->message);
}

/* A delivery failure: reported when it starts, when its text changes, and once a minute. */
static void report_failure(struct run *r, const struct hubapi_result *res, uint32_t delay_ms)
{
    int64_t now = deliver_mono_ms();
    struct queue_stats st;

    if (r->streak++ == 0) {
        r->streak_start = now;
    }
    if (r->streak > 1 && r->last_rc == res->rc && r->last_status == res->status &&
        now - r->last_err_ms < REPEAT_REPORT_MS) {
        return;
    }
    r->last_rc = res->rc;
    r->last_status = res->status;
    r->last_err_ms = now;
    if (queue_stats(r->s.q, &st) != SCTPM_RC_SUCCESS) {
        memset(&st, 0, sizeof(st));
    }
    client_error(r->cfg, "not delivered: %s; %llu message(s) queued; retrying in %.1f s%s",
                 res->message, (unsigned long long)st.messages, delay_ms / 1000.0,
                 res->retry_after_ms >= 0 ? " (Retry-After)" : "");
}

static void report_recovery(struct run *r)
{
    if (r->streak == 0) {
        return;
    }
    client_error(r->cfg, "delivering again after %lu failed attempt(s) over %.0f s", r->streak,
                 (double)(deliver_mono_ms() - r->streak_start) / 1000.0);
    r->streak = 0;
}

/* ---- input ---- */

/* Grows an array to `n` elements of `size` bytes; on failure the array is unchanged. */
static int grow(void **p, size_t n, size_t size)
{
    void *q = realloc(*p, n * size);

    if (q == NULL) {
        return -1;
    }
    *p = q;
    return 0;
}

/*
 * Enqueues `n` messages in one transaction, or, when they do not all fit, as many of the first
 * ones as the queue has room for. `*taken` says how many were committed. Returns 0 when all were,
 * 1 when the queue is full (input pauses), -1 on another error (reported).
 */
static int enqueue(struct run *r, struct queue_msg *msgs, size_t n, size_t *taken)
{
    const struct queue_limits *lim = &r->cfg->limits;
    struct queue_stats st;
    enum sctpm_rc rc;
    size_t k = 0;
    uint64_t bytes = 0;

    *taken = 0;
    if (n == 0) {
        return 0;
    }
    rc = queue_push(r->s.q, msgs, n, client_wall_ms());
    if (rc == SCTPM_RC_QUEUE_FULL && n > 1 && queue_stats(r->s.q, &st) == SCTPM_RC_SUCCESS) {
        /* The longest prefix that fits; other enqueuers may take the room first (then full). */
        while (k < n && st.messages + k + 1 <= lim->max_messages &&
               st.bytes + bytes + msgs[k].size <= lim->max_bytes) {
            bytes += msgs[k].size;
            k++;
        }
        if (k > 0 && queue_push(r->s.q, msgs, k, client_wall_ms()) == SCTPM_RC_SUCCESS) {
            *taken = k;
            r->maybe_queued = 1;
            r->read_msgs += k;
        }
    }
    if (rc == SCTPM_RC_QUEUE_FULL) {
        if (!r->input_paused) {
            client_error(r->cfg, "%s; input paused until deliveries make room",
                         queue_error(r->s.q));
            r->input_paused = 1;
            r->paused_since = deliver_mono_ms();
        }
        return 1;
    }
    if (rc != SCTPM_RC_SUCCESS) {
        client_error(r->cfg, "%s", queue_error(r->s.q));
        return -1;
    }
    if (r->input_paused) {
        client_error(r->cfg, "queue has room again: input resumed after %.0f s",
                     (double)(deliver_mono_ms() - r->paused_since) / 1000.0);
        r->input_paused = 0;
    }
    *taken = n;
    r->maybe_queued = 1;
    r->read_msgs += n;
    return 0;
}

/*
 * Enqueues every complete line in the buffer (and, at end of input, the last one without its
 * newline); lines the queue has no room for stay in the buffer. Returns 0, 1 when the queue is
 * full, -1 on a fatal queue error.
 */
static int take_lines(struct run *r, int at_eof)
{
    struct queue_msg *msgs = NULL;
    char(*ids)[MSG_ID_SIZE] = NULL;
    size_t *starts = NULL, *ends = NULL;
    unsigned long *lines = NULL;
    size_t n = 0, cap = 0, start = 0, consumed, taken = 0;
    unsigned long line_no = r->line_no;
    int ret = 0;

    while (start < r->inlen) {
        char *nl = memchr(r->inbuf + start, '\n', r->inlen - start);
        size_t end, len;

        if (nl == NULL && !at_eof) {
            break;
        }
        end = nl != NULL ? (size_t)(nl - r->inbuf) : r->inlen;
        len = end - start;
        line_no++;
        if (len > 0 && r->inbuf[start + len - 1] == '\r') {
            len--;
        }
        if (len > 0) {
            if (n == cap) {
                cap = cap > 0 ? cap * 2 : 64;
                if (grow((void **)&msgs, cap, sizeof(*msgs)) != 0 ||
                    grow((void **)&ids, cap, sizeof(*ids)) != 0 ||
                    grow((void **)&starts, cap, sizeof(*starts)) != 0 ||
                    grow((void **)&ends, cap, sizeof(*ends)) != 0 ||
                    grow((void **)&lines, cap, sizeof(*lines)) != 0) {
                    client_error(r->cfg, "out of memory");
                    ret = -1;
                    goto out;
                }
            }
            if (msg_id_new(ids[n]) != SCTPM_RC_SUCCESS) {
                client_error(r->cfg, "cannot make a message id: the random source failed");
                ret = -1;
                goto out;
            }
            memset(&msgs[n], 0, sizeof(msgs[n]));
            msgs[n].body = (const uint8_t *)r->inbuf + start;
            msgs[n].body_len = len;
            msgs[n].props = r->props_text;
            msgs[n].size = msg_size(len, ids[n], r->o->props);
            starts[n] = start;
            ends[n] = end + 1 < r->inlen ? end + 1 : r->inlen;
            lines[n] = line_no;
            if (msgs[n].size > MSG_MAX_SIZE) {
                client_error(r->cfg, "input line %lu is over 256 KiB with its properties: dropped",
                             line_no);
            } else {
                n++;
            }
        }
        start = end + 1;
    }
    consumed = start < r->inlen ? start : r->inlen;
    /* The ids array may have moved while growing: point each message at its final slot. */
    for (size_t i = 0; i < n; i++) {
        msgs[i].id = ids[i];
    }
    ret = enqueue(r, msgs, n, &taken);
    if (ret >= 0 && taken < n) {
        /* The rest waits for room: consumed up to the last line taken. */
        consumed = taken > 0 ? ends[taken - 1] : starts[0];
        line_no = taken > 0 ? lines[taken - 1] : lines[0] - 1;
    }
    if (ret >= 0) {
        memmove(r->inbuf, r->inbuf + consumed, r->inlen - consumed);
        r->inlen -= consumed;
        r->line_no = line_no;
    }
out:
    free(msgs);
    free(ids);
    free(starts);
    free(ends);
    free(lines);
    return ret;
}

/* Reads what standard input has. Returns -1 on a fatal error. */
static int read_input(struct run *r)
{
    ssize_t got;

    if (r->inlen == INBUF_SIZE) {
        /* A full buffer without a newline: that line cannot be a message. */
        r->line_no++;
        client_error(r->cfg, "input line %lu is longer than 256 KiB: dropped", r->line_no);
        r->inlen = 0;
        r->discarding = 1;
    }
    got = read(STDIN_FILENO, r->inbuf + r->inlen, INBUF_SIZE - r->inlen);
    if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            return 0;
        }
        client_error(r->cfg, "cannot read standard input: %s; no longer reading it",
                     strerror(errno));
        r->stdin_open = 0;
        return 0;
    }
    if (got == 0) {
        r->stdin_open = 0;
        LOG_DEBUG("end of standard input");
    }
    if (r->discarding && got > 0) {
        char *nl = memchr(r->inbuf, '\n', (size_t)got);

        if (nl == NULL) {
            return 0;
        }
        memmove(r->inbuf, nl + 1, (size_t)got - (size_t)(nl + 1 - r->inbuf));
        got -= nl + 1 - r->inbuf;
        r->discarding = 0;
    }
    r->inlen += (size_t)got;
    return take_lines(r, !r->stdin_open) < 0 ? -1 : 0;
}

/* The id of a dropped file: the same file always gets the same id. */
static int file_id(const char *name, const struct stat *sb, const uint8_t *data, size_t len,
                   char id[MSG_ID_SIZE])
{
    static const char domain[] = "sctpm-client file v1";
    uint8_t digest[32];
    uint64_t meta[4] = {(uint64_t)sb->st_ino, (uint64_t)sb->st_mtim.tv_sec,
                        (uint64_t)sb->st_mtim.tv_nsec, (uint64_t)sb->st_size};
    unsigned int dlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, domain, sizeof(domain)) == 1 &&
             EVP_DigestUpdate(c, name, strlen(name) + 1) == 1 &&
             EVP_DigestUpdate(c, meta, sizeof(meta)) == 1 && EVP_DigestUpdate(c, data, len) == 1 &&
             EVP_DigestFinal_ex(c, digest, &dlen) == 1 && dlen == sizeof(digest);

    EVP_MD_CTX_free(c);
    if (!ok) {
        return -1;
    }
    msg_id_from_digest(digest, id);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Moves a file that cannot be a message out of the way, keeping it. */
static void set_aside(struct run *r, int dfd, const char *name, const char *why)
{
    char aside[NAME_MAX + 16];

    snprintf(aside, sizeof(aside), ".rejected.%s", name);
    if (renameat(dfd, name, dfd, aside) != 0) {
        client_error(r->cfg, "%s/%s %s, and it cannot be renamed: %s", r->o->watch_dir, name, why,
                     strerror(errno));
        return;
    }
    client_error(r->cfg, "%s/%s %s: renamed to %s", r->o->watch_dir, name, why, aside);
}

/* Remembers a name to take (an event for it, or a file left for lack of room). */
static int add_pending(struct run *r, const char *name)
{
    if (r->npending == r->cap_pending) {
        size_t cap = r->cap_pending > 0 ? r->cap_pending * 2 : 64;

        /* A runaway directory: stop remembering names, take them all by a rescan. */
        if (cap > PENDING_MAX || grow((void **)&r->pending, cap, sizeof(*r->pending)) != 0) {
            r->rescan = 1;
            return 0;
        }
        r->cap_pending = cap;
    }
    r->pending[r->npending] = strdup(name);
    if (r->pending[r->npending] == NULL) {
        r->rescan = 1;
        return 0;
    }
    r->npending++;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

/* Every name in DIR but dot-names. Returns -1 when the directory cannot be read. */
static int list_dir(DIR *dir, char ***namesp, size_t *np)
{
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            cap = cap > 0 ? cap * 2 : 64;
            if (grow((void **)&names, cap, sizeof(*names)) != 0) {
                free_names(names, n);
                return -1;
            }
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            free_names(names, n);
            return -1;
        }
        n++;
    }
    *namesp = names;
    *np = n;
    return 0;
}

/*
 * Enqueues the files of the watched directory that are ready: those named by an event (closed
 * after writing, or moved in), or every file on a rescan. Oldest name first, FILES_PER_COMMIT per
 * transaction, each file removed after its commit. Files the queue has no room for wait.
 * Returns -1 on a fatal error.
 */
static int take_files(struct run *r)
{
    DIR *dir = opendir(r->o->watch_dir);
    char **names = NULL;
    size_t n = 0, i = 0;
    int dfd, ret = 0;

    if (dir == NULL) {
        client_error(r->cfg, "cannot read --watch %s: %s", r->o->watch_dir, strerror(errno));
        return -1;
    }
    dfd = dirfd(dir);
    if (r->rescan) {
        free_names(r->pending, r->npending);
        r->pending = NULL;
        r->npending = r->cap_pending = 0;
        r->rescan = 0;
        if (list_dir(dir, &names, &n) != 0) {
            ret = -1;
            goto out;
        }
    } else {
        names = r->pending;
        n = r->npending;
        r->pending = NULL;
        r->npending = r->cap_pending = 0;
    }
    if (n > 1) {
        qsort(names, n, sizeof(*names), by_name);
    }
    while (i < n && ret == 0) {
        struct queue_msg msgs[FILES_PER_COMMIT];
        char ids[FILES_PER_COMMIT][MSG_ID_SIZE];
        uint8_t *data[FILES_PER_COMMIT];
        size_t taken[FILES_PER_COMMIT];
        size_t k = 0, first = i;

        for (; i < n && k < FILES_PER_COMMIT; i++) {
            struct stat sb;
            ssize_t got;
            int fd;

            if (i > first && strcmp(names[i], names[i - 1]) == 0) {
                continue; /* two events for one file */
            }
            fd = openat(dfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (fd < 0) {
                if (errno != ENOENT) {
                    client_error(r->cfg, "cannot open %s/%s: %s", r->o->watch_dir, names[i],
                                 strerror(errno));
                }
                continue;
            }
            if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
                close(fd);
                continue;
            }
            if (sb.st_size > MSG_MAX_SIZE) {
                close(fd);
                set_aside(r, dfd, names[i], "is larger than 256 KiB");
                continue;
            }
            data[k] = malloc((size_t)sb.st_size + 1);
            if (data[k] == NULL) {
                close(fd);
                ret = -1;
                break;
            }
            got = read_full(fd, data[k], (size_t)sb.st_size + 1);
            close(fd);
            if (got < 0 || got != sb.st_size) {
                /* Changed while we read it: its writer's close brings it back. */
                free(data[k]);
                continue;
            }
            if (file_id(names[i], &sb, data[k], (size_t)got, ids[k]) != 0) {
                free(data[k]);
                ret = -1;
                break;
            }
            memset(&msgs[k], 0, sizeof(msgs[k]));
            msgs[k].id = ids[k];
            msgs[k].props = r->props_text;
            msgs[k].body = data[k];
            msgs[k].body_len = (size_t)got;
            msgs[k].size = msg_size((size_t)got, ids[k], r->o->props);
            if (msgs[k].size > MSG_MAX_SIZE) {
                free(data[k]);
                set_aside(r, dfd, names[i], "is over 256 KiB with its properties");
                continue;
            }
            taken[k] = i;
            k++;
        }
        if (ret == 0 && k > 0) {
            size_t got = 0;
            int e = enqueue(r, msgs, k, &got);

            /* Only committed files are removed. */
            for (size_t j = 0; j < got; j++) {
                if (unlinkat(dfd, names[taken[j]], 0) != 0 && errno != ENOENT) {
                    client_error(r->cfg, "queued %s/%s but cannot remove it: %s", r->o->watch_dir,
                                 names[taken[j]], strerror(errno));
                }
            }
            if (e != 0) {
                /* Full: the files not committed wait for room. */
                for (size_t j = got; j < k; j++) {
                    add_pending(r, names[taken[j]]);
                }
                for (size_t j = i; j < n; j++) {
                    add_pending(r, names[j]);
                }
                ret = e < 0 ? -1 : 0;
                i = n;
            }
        }
        for (size_t j = 0; j < k; j++) {
            free(data[j]);
        }
    }
out:
    free_names(names, n);
    closedir(dir);
    if (ret < 0) {
        client_error(r->cfg, "cannot take the files in %s", r->o->watch_dir);
    }
    return ret;
}

/* Reads inotify events: the names of files that are ready. */
static void read_events(struct run *r)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t len;

    while ((len = read(r->watch_fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;

            if (ev->mask & IN_Q_OVERFLOW) {
                r->rescan = 1;
            } else if (ev->len > 0 && ev->name[0] != '.' &&
                       (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) {
                add_pending(r, ev->name);
            }
            p += sizeof(*ev) + ev->len;
        }
    }
}

/* ---- C2D ---- */

static void c2d_round(struct run *r)
{
    struct hubapi_result res;
    struct hubapi_c2d m;
    int64_t now;
    int got;

    for (int i = 0; i < C2D_PER_ROUND && !*r->cfg->stop; i++) {
        int seen = 0;

        hubapi_receive(&r->s.api, &m, &got, &res);
        if (res.rc != SCTPM_RC_SUCCESS) {
            uint32_t delay = backoff_next(&r->c2d_backoff, backoff_random(), res.retry_after_ms);

            now = deliver_mono_ms();
            if (!res.retryable) {
                delay = BACKOFF_CAP_MS;
            }
            r->next_c2d = now + delay;
            if (r->c2d_rc != res.rc || r->c2d_status != res.status ||
                now - r->c2d_err_ms >= REPEAT_REPORT_MS) {
                r->c2d_rc = res.rc;
                r->c2d_status = res.status;
                r->c2d_err_ms = now;
                client_error(r->cfg, "cannot receive: %s; trying again in %.1f s", res.message,
                             delay / 1000.0);
            }
            return;
        }
        backoff_reset(&r->c2d_backoff);
        r->c2d_rc = SCTPM_RC_SUCCESS;
        r->c2d_status = 0;
        if (!got) {
            break;
        }
        if (m.id[0] != '\0' && queue_c2d_seen(r->s.q, m.id, &seen) != SCTPM_RC_SUCCESS) {
            seen = 0;
        }
        if (!seen) {
            char *line = NULL;

            if (client_c2d_line(&m, &line) == SCTPM_RC_SUCCESS) {
                fprintf(r->cfg->out, "%s\n", line);
                fflush(r->cfg->out);
                r->c2d_printed++;
            }
            free(line);
            /* Printed first, then remembered: a crash in between prints it twice, never zero. */
            if (m.id[0] != '\0' &&
                queue_c2d_mark(r->s.q, m.id, client_wall_ms()) != SCTPM_RC_SUCCESS) {
                client_error(r->cfg, "%s", queue_error(r->s.q));
            }
        } else {
            LOG_DEBUG("cloud-to-device message %s was printed before: completing it", m.id);
        }
        hubapi_settle(&r->s.api, m.lock, HUBAPI_COMPLETE, &res);
        if (res.rc != SCTPM_RC_SUCCESS) {
            client_error(r->cfg,
                         "cannot complete cloud-to-device message %s: %s (it will be "
                         "delivered again and not printed twice)",
                         m.id, res.message);
        }
        hubapi_c2d_clear(&m);
    }
    r->next_c2d = deliver_mono_ms() + (int64_t)(r->o->poll_s * 1000);
}

/* ---- delivery ---- */

/* After the TPM went away (sctpmd restarted, a device reset), a new context may work. */
static void reopen_tpm(struct run *r)
{
    char before[sizeof(r->s.identity)];

    snprintf(before, sizeof(before), "%s", r->s.identity);
    tpm_close(&r->s.tpm);
    if (tpm_open(&r->s.tpm, r->cfg->tcti, r->cfg->slot, r->cfg->require_hardware) !=
        SCTPM_RC_SUCCESS) {
        LOG_DEBUG("TPM still unavailable: %s", r->s.tpm.err);
        return;
    }
    tpm_identity_text(&r->s.tpm, r->s.identity, sizeof(r->s.identity));
    if (strcmp(before, r->s.identity) != 0) {
        client_error(r->cfg, "slot %u now holds %s instead of %s; stopping", r->cfg->slot,
                     r->s.identity, before);
        r->fatal = 1;
    }
}

static int tpm_failure(enum sctpm_rc rc)
{
    return rc == SCTPM_RC_NO_TPM || rc == SCTPM_RC_TPM || rc == SCTPM_RC_IO ||
           rc == SCTPM_RC_NOT_PROVISIONED || rc == SCTPM_RC_GENERAL_FAILURE;
}

static void deliver_some(struct run *r)
{
    struct hubapi_result res;
    int64_t start = deliver_mono_ms(), now;
    enum sctpm_rc rc;
    int empty = 0;

    /* A large backlog (after an outage, at start) gets progress lines until it is gone. */
    if (r->backlog == 0) {
        struct queue_stats st;

        if (queue_stats(r->s.q, &st) == SCTPM_RC_SUCCESS && st.messages >= CLIENT_PROGRESS_MIN) {
            r->backlog = st.messages;
            r->backlog_sent = 0;
            r->backlog_start = start;
            r->backlog_reported = start;
        }
    }
    /* A few requests, then back to the loop so input and C2D are not starved. */
    for (int i = 0; i < 32 && !*r->cfg->stop; i++) {
        rc = deliver_step(&r->d, &empty, &res);
        now = deliver_mono_ms();
        if (rc == SCTPM_RC_SUCCESS) {
            backoff_reset(&r->d.backoff);
            report_recovery(r);
            if (empty) {
                r->maybe_queued = 0;
                backlog_progress(r, 1);
                return;
            }
            r->next_deliver = now;
            if (now - start > 200) {
                return;
            }
            continue;
        }
        {
            uint32_t delay = backoff_next(&r->d.backoff, backoff_random(), res.retry_after_ms);

            if (!res.retryable && delay < BACKOFF_CAP_MS) {
                /* A final failure (TLS, credentials): retried slowly, it may be fixed meanwhile. */
                delay = BACKOFF_CAP_MS;
            }
            r->next_deliver = now + delay;
            report_failure(r, &res, delay);
            if (res.status == 0 && (tpm_failure(rc) || r->s.tpm.ctx == NULL)) {
                reopen_tpm(r);
            }
            return;
        }
    }
}

/* ---- the loop ---- */

int client_run(const struct client_config *cfg, const struct client_run_opts *o)
{
    struct deliver_events ev;
    struct run *r;
    struct queue_stats st;
    enum sctpm_rc rc;
    pid_t holder = 0;
    int ret;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        client_error(cfg, "out of memory");
        return CLIENT_FAILURE;
    }
    r->cfg = cfg;
    r->o = o;
    r->watch_fd = -1;
    r->stdin_open = o->read_stdin;
    ret = session_open(&r->s, cfg, SESSION_TPM | SESSION_QUEUE | SESSION_HUB);
    if (ret != CLIENT_OK) {
        goto out;
    }
    rc = queue_lock_delivery(r->s.q, &holder);
    if (rc != SCTPM_RC_SUCCESS) {
        if (rc == SCTPM_RC_BUSY && holder > 0) {
            client_error(cfg, "process %ld is already delivering the queue in %s", (long)holder,
                         r->s.queue_dir);
        } else {
            client_error(cfg, "%s", queue_error(r->s.q));
        }
        ret = CLIENT_FAILURE;
        goto out;
    }
    r->c2d = o->c2d;
    if (r->c2d && r->s.api.is_module) {
        client_error(cfg,
                     "slot %u holds a module identity: no cloud-to-device polling (IoT Hub "
                     "sends those to devices)",
                     cfg->slot);
        r->c2d = 0;
    }
    r->props_text = msg_props_text(o->props);
    r->inbuf = malloc(INBUF_SIZE);
    if (r->props_text == NULL || r->inbuf == NULL) {
        client_error(cfg, "out of memory");
        ret = CLIENT_FAILURE;
        goto out;
    }
    if (o->watch_dir != NULL) {
        r->watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (r->watch_fd < 0 ||
            inotify_add_watch(r->watch_fd, o->watch_dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
            client_error(cfg, "cannot watch %s: %s", o->watch_dir, strerror(errno));
            ret = CLIENT_USAGE;
            goto out;
        }
        /* The watch is in place first: a file written while we list DIR gets its event. */
        r->rescan = 1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.sent = on_sent;
    ev.rejected = on_rejected;
    ev.ctx = r;
    deliver_init(&r->d, r->s.q, &r->s.api, o->batch, &ev);
    backoff_init(&r->c2d_backoff, BACKOFF_BASE_MS * 2, BACKOFF_CAP_MS);
    r->maybe_queued = 1;
    if (queue_stats(r->s.q, &st) == SCTPM_RC_SUCCESS && st.messages > 0) {
        client_error(cfg, "%llu message(s) queued from before: delivering them first",
                     (unsigned long long)st.messages);
    }
    client_error(cfg, "running as %s (slot %u) against %s; queue %s", r->s.identity, cfg->slot,
                 r->s.api.base, r->s.queue_dir);

    while (!*cfg->stop) {
        struct pollfd pfd[2];
        nfds_t nfds = 0;
        int64_t now = deliver_mono_ms(), wake;
        int timeout, retry_input;

        if (r->fatal) {
            ret = CLIENT_FAILURE;
            break;
        }
        if (now >= r->next_queue_check) {
            r->maybe_queued = 1;
            r->next_queue_check = now + QUEUE_POLL_MS;
        }
        if (r->maybe_queued && now >= r->next_deliver) {
            deliver_some(r);
        }
        if (r->c2d && now >= r->next_c2d) {
            c2d_round(r);
        }
        /* Input waiting for room is tried again twice a second. */
        retry_input = r->input_paused && now >= r->next_input_retry;
        if (retry_input) {
            r->next_input_retry = now + 500;
        }
        if (retry_input && r->inlen > 0) {
            if (take_lines(r, !r->stdin_open) < 0) {
                ret = CLIENT_FAILURE;
                break;
            }
        }
        if (r->watch_fd >= 0 && (r->rescan || r->npending > 0) &&
            (!r->input_paused || retry_input)) {
            if (take_files(r) < 0) {
                ret = CLIENT_FAILURE;
                break;
            }
        }
        if (o->exit_on_eof && !r->stdin_open && r->inlen == 0 && !r->maybe_queued) {
            if (queue_stats(r->s.q, &st) == SCTPM_RC_SUCCESS && st.messages == 0) {
                break;
            }
            r->maybe_queued = 1;
        }
        now = deliver_mono_ms();
        wake = r->next_queue_check;
        if (r->maybe_queued && r->next_deliver < wake) {
            wake = r->next_deliver;
        }
        if (r->c2d && r->next_c2d < wake) {
            wake = r->next_c2d;
        }
        if (r->input_paused && r->next_input_retry < wake) {
            wake = r->next_input_retry;
        }
        timeout = wake > now ? (int)(wake - now) : 0;
        if (r->stdin_open && !r->input_paused) {
            pfd[nfds].fd = STDIN_FILENO;
            pfd[nfds].events = POLLIN;
            nfds++;
        }
        if (r->watch_fd >= 0) {
            pfd[nfds].fd = r->watch_fd;
            pfd[nfds].events = POLLIN;
            nfds++;
        }
        if (poll(pfd, nfds, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            client_error(cfg, "poll: %s", strerror(errno));
            ret = CLIENT_FAILURE;
            break;
        }
        for (nfds_t i = 0; i < nfds; i++) {
            if (pfd[i].revents == 0) {
                continue;
            }
            if (pfd[i].fd == STDIN_FILENO) {
                if (read_input(r) < 0) {
                    ret = CLIENT_FAILURE;
                    goto stopped;
                }
            } else {
                read_events(r);
            }
        }
    }
stopped:
    if (queue_stats(r->s.q, &st) != SCTPM_RC_SUCCESS) {
        memset(&st, 0, sizeof(st));
    }
    client_error(cfg,
                 "%s: read %lu message(s), sent %lu in %lu request(s), %llu queued, printed %lu "
                 "cloud-to-device message(s), %lu token(s) signed (%lu after a 401, %.3f ms each)",
                 *cfg->stop ? "stopped" : "done", r->read_msgs, r->d.sent, r->d.requests,
                 (unsigned long long)st.messages, r->c2d_printed, r->s.tokens.renewals,
                 r->s.api.auth_renewals,
                 r->s.tokens.renewals > 0
                     ? (double)r->s.tokens.renew_ns / 1e6 / (double)r->s.tokens.renewals
                     : 0.0);
out:
    if (r->watch_fd >= 0) {
        close(r->watch_fd);
    }
    free_names(r->pending, r->npending);
    session_close(&r->s);
    free(r->inbuf);
    free(r);
    return ret;
}
