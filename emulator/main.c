/* SPDX-License-Identifier: BSD-2-Clause */
/* sctpmd: a TPM 2.0 service on libtpms. This file only parses options; see daemon.c. */
#include "config.h"

#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGMODULE emulator
#include "daemon.h"
#include "log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sctpmd --state DIR [options]\n"
            "A TPM 2.0 service on libtpms, reachable like a TPM chip or swtpm through the\n"
            "tpm2-tss TCTIs mssim and swtpm (TCP and Unix sockets).\n"
            "\n"
            "  --state DIR            state directory (created 0700; locked while running)\n"
            "  --port N               TCP command port (default 2321); N+1 is the control port\n"
            "  --listen ADDR          TCP address (default 127.0.0.1; 'localhost' adds ::1)\n"
            "  --no-tcp               serve no TCP, only the Unix sockets\n"
            "  --unix PATH            also serve PATH (commands) and PATH.ctrl (control)\n"
            "  --unix-group GROUP     make the Unix sockets 0660 and owned by GROUP\n"
            "  --foreground           stay in the foreground (the default)\n"
            "  --daemon               detach; return once the service is ready\n"
            "  --pidfile FILE         write the daemon's pid to FILE once ready\n"
            "  --fsync always|never   flush every state write to disk (default always)\n"
            "  --key-file FILE        encrypt the state at rest with this 32-byte key\n"
            "                         (32 raw bytes or 64 hex digits)\n"
            "  --ctrl-dialect auto|mssim|swtpm\n"
            "                         control-channel protocol (default auto: tcti-mssim,\n"
            "                         tcti-swtpm and mssim clients; swtpm_ioctl and QEMU need\n"
            "                         'swtpm')\n"
            "  --allow-platform       let every client reset or power-cycle the TPM, use\n"
            "                         localities 3 and 4, and read or replace its state\n"
            "  --platform-uid UID     allow that to Unix-socket clients running as UID\n"
            "                         (repeatable)\n"
            "  --max-connections N    concurrent connections (default 128)\n"
            "  --no-rm                no resource manager: clients share the TPM's 3 object and\n"
            "                         3 session slots, as with swtpm\n"
            "  --max-objects N        transient objects per client (default 32)\n"
            "  --max-sessions N       sessions per client (default 8)\n"
            "  --max-objects-total N  transient objects of all clients (default 1024)\n"
            "  --swtpm-space-idle S   how long the objects of a swtpm-dialect client outlive\n"
            "                         its last connection (default 30 s; see the man page)\n"
            "  --busy-poll-us N       after a command, poll N microseconds for the next one\n"
            "                         before sleeping (default 50 with two or more CPUs, else 0)\n"
            "  --idle-exit SECONDS    save the state and exit once no client has been\n"
            "                         connected for SECONDS (default 0: never)\n"
            "  --log SPEC             log level: error, warning, info (default), debug, trace,\n"
            "                         or per module: all+info,server+debug\n"
            "  --log-file FILE        log to FILE instead of stderr\n"
            "  --help, --version\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static int bad(const char *opt, const char *value, const char *want)
{
    fprintf(stderr, "sctpmd: error: invalid %s '%s': %s\n", opt, value, want);
    return 2;
}

int main(int argc, char **argv)
{
    enum {
        OPT_STATE = 256,
        OPT_PORT,
        OPT_LISTEN,
        OPT_NO_TCP,
        OPT_UNIX,
        OPT_UNIX_GROUP,
        OPT_FOREGROUND,
        OPT_DAEMON,
        OPT_PIDFILE,
        OPT_FSYNC,
        OPT_KEY_FILE,
        OPT_CTRL_DIALECT,
        OPT_ALLOW_PLATFORM,
        OPT_PLATFORM_UID,
        OPT_MAX_CONN,
        OPT_BUSY_POLL,
        OPT_NO_RM,
        OPT_RM_OBJECTS,
        OPT_RM_SESSIONS,
        OPT_RM_OBJECTS_TOTAL,
        OPT_SWTPM_IDLE,
        OPT_IDLE_EXIT,
        OPT_LOG,
        OPT_LOG_FILE,
        OPT_HELP,
        OPT_VERSION,
    };
    static const struct option opts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"port", required_argument, NULL, OPT_PORT},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"no-tcp", no_argument, NULL, OPT_NO_TCP},
        {"unix", required_argument, NULL, OPT_UNIX},
        {"unix-group", required_argument, NULL, OPT_UNIX_GROUP},
        {"foreground", no_argument, NULL, OPT_FOREGROUND},
        {"daemon", no_argument, NULL, OPT_DAEMON},
        {"pidfile", required_argument, NULL, OPT_PIDFILE},
        {"fsync", required_argument, NULL, OPT_FSYNC},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"ctrl-dialect", required_argument, NULL, OPT_CTRL_DIALECT},
        {"allow-platform", no_argument, NULL, OPT_ALLOW_PLATFORM},
        {"platform-uid", required_argument, NULL, OPT_PLATFORM_UID},
        {"max-connections", required_argument, NULL, OPT_MAX_CONN},
        {"busy-poll-us", required_argument, NULL, OPT_BUSY_POLL},
        {"no-rm", no_argument, NULL, OPT_NO_RM},
        {"max-objects", required_argument, NULL, OPT_RM_OBJECTS},
        {"max-sessions", required_argument, NULL, OPT_RM_SESSIONS},
        {"max-objects-total", required_argument, NULL, OPT_RM_OBJECTS_TOTAL},
        {"swtpm-space-idle", required_argument, NULL, OPT_SWTPM_IDLE},
        {"idle-exit", required_argument, NULL, OPT_IDLE_EXIT},
        {"log", required_argument, NULL, OPT_LOG},
        {"log-file", required_argument, NULL, OPT_LOG_FILE},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct daemon_config cfg = {
        .fsync_mode = NVSTORE_FSYNC_ALWAYS,
        .server =
            {
                .tcp = 1,
                .port = 2321,
                .unix_mode = 0600,
                .unix_gid = (gid_t)-1,
                .ctrl_dialect = PROTO_DIALECT_UNKNOWN,
                .max_connections = 128,
                .max_command = 4096,
                .partial_timeout = 30,
                .busy_poll_us = server_default_busy_poll_us(),
                .raw_space_idle = 30,
                .rm =
                    {
                        .max_objects_per_space = 32,
                        .max_sessions_per_space = 8,
                        .max_objects_total = 1024,
                        .abandoned_sessions_max = 16,
                        .abandoned_sessions_ttl = 300,
                    },
            },
    };
    int foreground = 0, opt;
    unsigned long v;

    opterr = 0; /* we name the bad option ourselves */
    log_set_ident("sctpmd");
    log_set_default(LOG_LEVEL_INFO);
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_STATE:
            cfg.state_dir = optarg;
            break;
        case OPT_PORT:
            if (parse_uint(optarg, 65534, &v) != 0 || v == 0) {
                return bad("--port", optarg, "a port from 1 to 65534 (N+1 is the control port)");
            }
            cfg.server.port = (uint16_t)v;
            break;
        case OPT_LISTEN:
            cfg.server.listen_addr = optarg;
            break;
        case OPT_NO_TCP:
            cfg.server.tcp = 0;
            break;
        case OPT_UNIX:
            cfg.server.unix_path = optarg;
            break;
        case OPT_UNIX_GROUP: {
            struct group *g = getgrnam(optarg);
            if (g == NULL) {
                if (parse_uint(optarg, 0x7fffffff, &v) != 0) {
                    return bad("--unix-group", optarg, "no such group");
                }
                cfg.server.unix_gid = (gid_t)v;
            } else {
                cfg.server.unix_gid = g->gr_gid;
            }
            cfg.server.unix_mode = 0660;
            break;
        }
        case OPT_FOREGROUND:
            foreground = 1;
            break;
        case OPT_DAEMON:
            cfg.detach = 1;
            break;
        case OPT_PIDFILE:
            cfg.pidfile = optarg;
            break;
        case OPT_FSYNC:
            if (strcmp(optarg, "always") == 0) {
                cfg.fsync_mode = NVSTORE_FSYNC_ALWAYS;
            } else if (strcmp(optarg, "never") == 0) {
                cfg.fsync_mode = NVSTORE_FSYNC_NEVER;
            } else {
                return bad("--fsync", optarg, "expected 'always' or 'never'");
            }
            break;
        case OPT_KEY_FILE:
            cfg.key_file = optarg;
            break;
        case OPT_CTRL_DIALECT:
            if (strcmp(optarg, "auto") == 0) {
                cfg.server.ctrl_dialect = PROTO_DIALECT_UNKNOWN;
            } else if (strcmp(optarg, "mssim") == 0) {
                cfg.server.ctrl_dialect = PROTO_DIALECT_MSSIM;
            } else if (strcmp(optarg, "swtpm") == 0) {
                cfg.server.ctrl_dialect = PROTO_DIALECT_SWTPM;
            } else {
                return bad("--ctrl-dialect", optarg, "expected 'auto', 'mssim' or 'swtpm'");
            }
            break;
        case OPT_ALLOW_PLATFORM:
            cfg.server.allow_platform = 1;
            break;
        case OPT_PLATFORM_UID: {
            struct passwd *pw = getpwnam(optarg);
            if (cfg.server.n_platform_uids == SERVER_MAX_PLATFORM_UIDS) {
                return bad("--platform-uid", optarg, "at most 8 may be given");
            }
            if (pw != NULL) {
                v = pw->pw_uid;
            } else if (parse_uint(optarg, 0x7fffffff, &v) != 0) {
                return bad("--platform-uid", optarg, "no such user");
            }
            cfg.server.platform_uids[cfg.server.n_platform_uids++] = (uid_t)v;
            break;
        }
        case OPT_MAX_CONN:
            if (parse_uint(optarg, 100000, &v) != 0 || v == 0) {
                return bad("--max-connections", optarg, "a number from 1 to 100000");
            }
            cfg.server.max_connections = (unsigned)v;
            break;
        case OPT_BUSY_POLL:
            if (parse_uint(optarg, 10000, &v) != 0) {
                return bad("--busy-poll-us", optarg, "microseconds from 0 to 10000");
            }
            cfg.server.busy_poll_us = (unsigned)v;
            break;
        case OPT_NO_RM:
            cfg.server.no_rm = 1;
            break;
        case OPT_RM_OBJECTS:
            if (parse_uint(optarg, 100000, &v) != 0 || v == 0) {
                return bad("--max-objects", optarg, "a number from 1 to 100000");
            }
            cfg.server.rm.max_objects_per_space = (unsigned)v;
            break;
        case OPT_RM_SESSIONS:
            if (parse_uint(optarg, 60, &v) != 0 || v == 0) {
                return bad("--max-sessions", optarg, "a number from 1 to 60");
            }
            cfg.server.rm.max_sessions_per_space = (unsigned)v;
            break;
        case OPT_RM_OBJECTS_TOTAL:
            if (parse_uint(optarg, 1000000, &v) != 0 || v == 0) {
                return bad("--max-objects-total", optarg, "a number from 1 to 1000000");
            }
            cfg.server.rm.max_objects_total = (unsigned)v;
            break;
        case OPT_SWTPM_IDLE:
            if (parse_uint(optarg, 86400, &v) != 0) {
                return bad("--swtpm-space-idle", optarg, "seconds from 0 to 86400");
            }
            cfg.server.raw_space_idle = (unsigned)v;
            break;
        case OPT_IDLE_EXIT:
            if (parse_uint(optarg, 31536000, &v) != 0) {
                return bad("--idle-exit", optarg, "seconds from 0 (never) to 31536000");
            }
            cfg.server.idle_exit = (unsigned)v;
            break;
        case OPT_LOG:
            if (log_configure(optarg) != 0) {
                return bad("--log", optarg,
                           "expected a level (error, warning, info, debug, trace, none) or "
                           "module+level items");
            }
            break;
        case OPT_LOG_FILE:
            if (log_set_file(optarg) != 0) {
                return bad("--log-file", optarg, "cannot open it for appending");
            }
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("sctpmd %s\n", PACKAGE_VERSION);
            return 0;
        default:
            fprintf(stderr, "sctpmd: error: unknown option or missing value: '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sctpmd: error: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (cfg.state_dir == NULL) {
        fprintf(stderr, "sctpmd: error: --state DIR is required\n");
        usage(stderr);
        return 2;
    }
    if (foreground && cfg.detach) {
        fprintf(stderr, "sctpmd: error: --foreground and --daemon exclude each other\n");
        return 2;
    }
    if (!cfg.server.tcp && cfg.server.unix_path == NULL) {
        fprintf(stderr, "sctpmd: error: --no-tcp needs --unix PATH, or nothing would be served\n");
        return 2;
    }
    if (cfg.server.tcp && cfg.server.listen_addr != NULL &&
        strcmp(cfg.server.listen_addr, "127.0.0.1") != 0 &&
        strcmp(cfg.server.listen_addr, "::1") != 0 &&
        strcmp(cfg.server.listen_addr, "localhost") != 0) {
        LOG_WARNING("listening on %s, beyond loopback: anyone who can reach it can use this TPM",
                    cfg.server.listen_addr);
    }
    return daemon_run(&cfg);
}
