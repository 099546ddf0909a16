/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOGMODULE log
#include "log.h"
#include "io.h"

#define MAX_RULES    32
#define MAX_NAME     32
#define LINE_MAX_LEN 4096

struct rule {
    char module[MAX_NAME];
    int level;
};

/* One rule set per source of configuration, applied env first, then the program's own. */
struct ruleset {
    struct rule rules[MAX_RULES];
    size_t count;
    int all; /* level for "all", or -1 when the set does not name it */
};

/*
 * All configuration lives behind `lock`. Readers on the hot path only touch the per-module cache
 * and the generation counter, both atomically, so a disabled log call costs two loads.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int generation = 1;
static int env_loaded;
static int default_level = LOG_LEVEL_NONE;
static struct ruleset env_rules = {.all = -1};
static struct ruleset prog_rules = {.all = -1};
static const char *ident = "sctpm";
static int out_fd = STDERR_FILENO;
static int out_fd_owned;
static int out_fixed; /* log_set_file() was called: SCTPM_LOGFILE no longer applies */

static const char *const level_names[] = {"none", "error", "warning", "info", "debug", "trace"};

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            return (int)i;
        }
    }
    if (strcasecmp(name, "warn") == 0) {
        return LOG_LEVEL_WARNING;
    }
    return -1;
}

/* Parses `spec` into `set`. Returns 0 or -EINVAL; `set` is only written on success. */
static int parse_spec(const char *spec, struct ruleset *set)
{
    struct ruleset tmp = {.all = -1};
    char buf[512];
    char *save = NULL;

    if (strlen(spec) >= sizeof(buf)) {
        return -EINVAL;
    }
    strcpy(buf, spec);
    for (char *item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *plus = strchr(item, '+');
        const char *module = "all";
        const char *lvl = item;
        int level;

        if (plus != NULL) {
            *plus = '\0';
            module = item;
            lvl = plus + 1;
        }
        level = log_level_from_name(lvl);
        if (level < 0 || module[0] == '\0' || strlen(module) >= MAX_NAME) {
            return -EINVAL;
        }
        if (strcmp(module, "all") == 0) {
            tmp.all = level;
            continue;
        }
        if (tmp.count == MAX_RULES) {
            return -EINVAL;
        }
        strcpy(tmp.rules[tmp.count].module, module);
        tmp.rules[tmp.count].level = level;
        tmp.count++;
    }
    *set = tmp;
    return 0;
}

static int open_sink(const char *path, int *fd, int *owned)
{
    if (strcmp(path, "stderr") == 0) {
        *fd = STDERR_FILENO;
        *owned = 0;
        return 0;
    }
    if (strcmp(path, "stdout") == 0) {
        *fd = STDOUT_FILENO;
        *owned = 0;
        return 0;
    }
    *fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (*fd < 0) {
        return -errno;
    }
    *owned = 1;
    return 0;
}

static void set_sink_locked(int fd, int owned)
{
    if (out_fd_owned) {
        close(out_fd);
    }
    out_fd = fd;
    out_fd_owned = owned;
}

/* Reads SCTPM_LOG and SCTPM_LOGFILE once. Called with `lock` held. */
static void load_env_locked(void)
{
    const char *spec = getenv("SCTPM_LOG");
    const char *file = getenv("SCTPM_LOGFILE");

    if (env_loaded) {
        return;
    }
    env_loaded = 1;
    if (spec != NULL && parse_spec(spec, &env_rules) != 0) {
        /* The user asked for logs, so telling them their request is wrong is not noise. */
        static const char msg[] = "sctpm: ignoring malformed SCTPM_LOG (expected e.g. "
                                  "\"warning\" or \"all+warning,rm+debug\")\n";
        (void)write_full(STDERR_FILENO, msg, sizeof(msg) - 1);
    }
    if (file != NULL && file[0] != '\0' && !out_fixed) {
        int fd, owned;
        if (open_sink(file, &fd, &owned) == 0) {
            set_sink_locked(fd, owned);
        }
    }
}

static int lookup(const struct ruleset *set, const char *module)
{
    for (size_t i = 0; i < set->count; i++) {
        if (strcmp(set->rules[i].module, module) == 0) {
            return set->rules[i].level;
        }
    }
    return set->all;
}

static int resolve_locked(const char *module)
{
    int level;

    load_env_locked();
    /* The program's own configuration (a --log flag) is the most specific source. */
    level = lookup(&prog_rules, module);
    if (level >= 0) {
        return level;
    }
    level = lookup(&env_rules, module);
    if (level >= 0) {
        return level;
    }
    return default_level;
}

int log_enabled(struct log_module *m, enum log_level level)
{
    int gen = __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
    int cache = __atomic_load_n(&m->cache, __ATOMIC_RELAXED);

    if (cache == 0 || (cache >> 3) != gen) {
        pthread_mutex_lock(&lock);
        gen = generation;
        cache = gen << 3 | resolve_locked(m->name);
        pthread_mutex_unlock(&lock);
        __atomic_store_n(&m->cache, cache, __ATOMIC_RELAXED);
    }
    return (int)level <= (cache & 7) && level != LOG_LEVEL_NONE;
}

static void bump_generation_locked(void)
{
    /* Stay positive and nonzero so a cache of 0 always means "not resolved". */
    generation = generation >= (1 << 26) ? 1 : generation + 1;
    __atomic_store_n(&generation, generation, __ATOMIC_RELEASE);
}

int log_configure(const char *spec)
{
    struct ruleset set;
    int r = parse_spec(spec, &set);

    if (r != 0) {
        return r;
    }
    pthread_mutex_lock(&lock);
    prog_rules = set;
    bump_generation_locked();
    pthread_mutex_unlock(&lock);
    return 0;
}

void log_set_default(enum log_level level)
{
    pthread_mutex_lock(&lock);
    default_level = level;
    bump_generation_locked();
    pthread_mutex_unlock(&lock);
}

void log_set_ident(const char *name)
{
    pthread_mutex_lock(&lock);
    ident = name;
    pthread_mutex_unlock(&lock);
}

int log_set_file(const char *path)
{
    int fd, owned, r;

    r = open_sink(path, &fd, &owned);
    if (r != 0) {
        return r;
    }
    pthread_mutex_lock(&lock);
    set_sink_locked(fd, owned);
    out_fixed = 1;
    pthread_mutex_unlock(&lock);
    return 0;
}

void log_reset(void)
{
    pthread_mutex_lock(&lock);
    env_loaded = 0;
    default_level = LOG_LEVEL_NONE;
    env_rules = (struct ruleset){.all = -1};
    prog_rules = (struct ruleset){.all = -1};
    set_sink_locked(STDERR_FILENO, 0);
    out_fixed = 0;
    bump_generation_locked();
    pthread_mutex_unlock(&lock);
}

/* Formats the line prefix into buf; returns its length. */
static size_t prefix(char *buf, size_t size, const struct log_module *m, enum log_level level,
                     const char *file, int line, const char *func)
{
    static const char *const tags[] = {"NONE", "ERROR", "WARNING", "INFO", "DEBUG", "TRACE"};
    struct timespec ts;
    struct tm tm;
    const char *base = strrchr(file, '/');
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    base = base != NULL ? base + 1 : file;
    if (level >= LOG_LEVEL_DEBUG) {
        n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s %s: %s:%d %s(): ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, ident, (long)getpid(), tags[level], m->name, base, line,
                     func);
    } else {
        n = snprintf(buf, size,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld] %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, ident, (long)getpid(), tags[level], m->name);
    }
    return n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

/* Writes one finished line with a single write(2) so lines from several processes never mix. */
static void emit_line(char *buf, size_t len, size_t size)
{
    if (len >= size - 1) {
        len = size - 2;
    }
    buf[len++] = '\n';
    pthread_mutex_lock(&lock);
    (void)write_full(out_fd, buf, len);
    pthread_mutex_unlock(&lock);
}

static size_t vformat(char *buf, size_t size, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static size_t vformat(char *buf, size_t size, size_t len, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf + len, size - len, fmt, ap);

    if (n < 0) {
        return len;
    }
    len += (size_t)n;
    return len >= size ? size - 1 : len;
}

void log_emit(struct log_module *m, enum log_level level, const char *file, int line,
              const char *func, const char *fmt, ...)
{
    char buf[LINE_MAX_LEN];
    size_t len = prefix(buf, sizeof(buf), m, level, file, line, func);
    va_list ap;

    va_start(ap, fmt);
    len = vformat(buf, sizeof(buf), len, fmt, ap);
    va_end(ap);
    emit_line(buf, len, sizeof(buf));
}

void log_blob(struct log_module *m, enum log_level level, const char *file, int line,
              const char *func, const void *data, size_t len, const char *fmt, ...)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    char buf[LINE_MAX_LEN];
    size_t n = prefix(buf, sizeof(buf), m, level, file, line, func);
    va_list ap;

    va_start(ap, fmt);
    n = vformat(buf, sizeof(buf), n, fmt, ap);
    va_end(ap);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " (%zu bytes)", len);
    emit_line(buf, n < sizeof(buf) ? n : sizeof(buf) - 1, sizeof(buf));

    /* Sixteen bytes per line, offset first, as xxd and tpm2-tss print them. */
    for (size_t off = 0; off < len; off += 16) {
        size_t k = (size_t)snprintf(buf, sizeof(buf), "    %04zx:", off);
        for (size_t i = off; i < off + 16 && i < len; i++) {
            buf[k++] = ' ';
            buf[k++] = hex[p[i] >> 4];
            buf[k++] = hex[p[i] & 15];
        }
        emit_line(buf, k, sizeof(buf));
    }
}
