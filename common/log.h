/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Logging for every sctpm component.
 *
 * Each source file names its module before including this header:
 *
 *     #define LOGMODULE emulator
 *     #include "log.h"
 *
 * and logs with LOG_ERROR(...) .. LOG_TRACE(...), printf-style. The level of each module is
 * decided at run time, most specific first:
 *   1. log_configure() (a program's --log option),
 *   2. the SCTPM_LOG environment variable,
 *   3. the program's default from log_set_default() (NONE unless a program sets it, so library
 *      code stays silent unless someone asks for logs).
 * A specification is a comma-separated list of `module+level` items, where `all` names every
 * module and a bare level means `all+level`: "warning", "all+warning,rm+debug".
 * SCTPM_LOGFILE names the destination: a file path (appended to), "stderr" (default) or "stdout".
 *
 * The macros test the level before evaluating their arguments, so expensive arguments cost nothing
 * when a level is off. Never pass key material to a log call at any level.
 */
#ifndef SCTPM_LOG_H
#define SCTPM_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_NONE = 0,
    LOG_LEVEL_ERROR = 1,
    LOG_LEVEL_WARNING = 2,
    LOG_LEVEL_INFO = 3,
    LOG_LEVEL_DEBUG = 4,
    LOG_LEVEL_TRACE = 5,
};

/*
 * Per-file module state. `cache` holds (generation << 3 | level) once resolved, or 0 before;
 * a new configuration bumps the generation, so every file re-resolves on its next log call.
 */
struct log_module {
    const char *name;
    int cache;
};

/* Returns nonzero when `level` is enabled for module `m`. */
int log_enabled(struct log_module *m, enum log_level level);

void log_emit(struct log_module *m, enum log_level level, const char *file, int line,
              const char *func, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Logs a hex dump of `len` bytes of `data` after a printf-style title line. */
void log_blob(struct log_module *m, enum log_level level, const char *file, int line,
              const char *func, const void *data, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/*
 * Applies a specification on top of SCTPM_LOG and the default. Returns 0, or -EINVAL when the
 * specification names an unknown level or is malformed (nothing is changed then).
 */
int log_configure(const char *spec);

/* Sets the level for modules nothing else names. Programs call it once at start. */
void log_set_default(enum log_level level);

/* Sets the name shown in each line (the program name); `ident` must outlive all logging. */
void log_set_ident(const char *ident);

/*
 * Redirects output to `path` ("stderr", "stdout" or a file opened for append), overriding
 * SCTPM_LOGFILE. Returns 0 or a negative errno.
 */
int log_set_file(const char *path);

/* Parses a level name ("error", "warning", "info", "debug", "trace", "none"); -1 if unknown. */
int log_level_from_name(const char *name);

/* Forgets every configuration and reopens nothing: for tests only. */
void log_reset(void);

#ifndef LOGMODULE
#error "Define LOGMODULE before including log.h"
#endif

#define LOG_STR_(x) #x
#define LOG_STR(x)  LOG_STR_(x)

static struct log_module log_this_module __attribute__((unused)) = {LOG_STR(LOGMODULE), 0};

#define LOG_AT(level, ...)                                                                         \
    do {                                                                                           \
        if (log_enabled(&log_this_module, (level))) {                                              \
            log_emit(&log_this_module, (level), __FILE__, __LINE__, __func__, __VA_ARGS__);        \
        }                                                                                          \
    } while (0)

#define LOG_ERROR(...)   LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define LOG_WARNING(...) LOG_AT(LOG_LEVEL_WARNING, __VA_ARGS__)
#define LOG_INFO(...)    LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...)   LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define LOG_TRACE(...)   LOG_AT(LOG_LEVEL_TRACE, __VA_ARGS__)

#define LOGBLOB_AT(level, data, len, ...)                                                          \
    do {                                                                                           \
        if (log_enabled(&log_this_module, (level))) {                                              \
            log_blob(&log_this_module, (level), __FILE__, __LINE__, __func__, (data), (len),       \
                     __VA_ARGS__);                                                                 \
        }                                                                                          \
    } while (0)

#define LOGBLOB_DEBUG(data, len, ...) LOGBLOB_AT(LOG_LEVEL_DEBUG, data, len, __VA_ARGS__)
#define LOGBLOB_TRACE(data, len, ...) LOGBLOB_AT(LOG_LEVEL_TRACE, data, len, __VA_ARGS__)

#endif /* SCTPM_LOG_H */
