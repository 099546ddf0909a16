/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sctpm-hub: a local Azure IoT Hub device endpoint. This file only parses the command line;
 * the commands live in cli.c and the hub itself in libhub.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOGMODULE hub
#include "log.h"
#include "cli-priv.h"
#include "util-priv.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: sctpm-hub --data DIR [OPTIONS]                  serve HTTPS on 127.0.0.1 and "
        "[::1]\n"
        "       sctpm-hub --data DIR device add ID [--primary-key B64] [--secondary-key B64]\n"
        "                                       [--disabled]\n"
        "       sctpm-hub --data DIR device list|show|remove|enable|disable [ID]\n"
        "       sctpm-hub --data DIR messages [--device ID] [--follow] [--after SEQ] [--json]\n"
        "       sctpm-hub --data DIR c2d send ID BODY [--message-id ID] [--correlation-id ID]\n"
        "                                       [--content-type T] [--content-encoding E]\n"
        "                                       [--user-id U] [--property NAME=VALUE]...\n"
        "                                       [--ttl SECONDS] [--ack "
        "none|positive|negative|full]\n"
        "       sctpm-hub --data DIR c2d list ID [--json]\n"
        "       sctpm-hub --data DIR token ID [--ttl SECONDS]\n"
        "\n"
        "Options:\n"
        "  --data DIR                 hub state: database, CA (DIR/ca.pem) and certificates\n"
        "  --port N                   TCP port (default %d)\n"
        "  --hostname NAME            the hub's host name (default: the last one used, or %s)\n"
        "  --idle-timeout S           close idle connections after S seconds (default %d)\n"
        "  --request-timeout S        close connections whose request takes S seconds (default "
        "%d)\n"
        "  --c2d-lock-timeout S       cloud-to-device lock duration (default %d)\n"
        "  --c2d-max-delivery N       deliveries before a message is dead-lettered (default %d)\n"
        "  --clock-skew S             accept tokens S seconds past their expiry (default %d)\n"
        "  --max-connections N        concurrent connections (default %d)\n"
        "  --log SPEC                 logging, e.g. debug or all+warning,hub+debug\n"
        "  -h, --help                 this text\n"
        "  -V, --version              the version\n",
        HUB_DEFAULT_PORT, HUB_DEFAULT_HOSTNAME, HUB_DEFAULT_IDLE_TIMEOUT,
        HUB_DEFAULT_REQUEST_TIMEOUT, HUB_DEFAULT_C2D_LOCK_TIMEOUT, HUB_DEFAULT_C2D_MAX_DELIVERY,
        HUB_DEFAULT_CLOCK_SKEW, HUB_DEFAULT_MAX_CONNECTIONS);
}

static int bad_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "sctpm-hub: %s%s%s\n", msg, arg != NULL ? ": " : "", arg != NULL ? arg : "");
    fprintf(stderr, "Try 'sctpm-hub --help'.\n");
    return 2;
}

/* Parses a decimal number in [min, max]; returns 0 or -1. */
static int parse_num(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long v;

    if (s == NULL || s[0] < '0' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    OPT_DATA = 256,
    OPT_PORT,
    OPT_HOSTNAME,
    OPT_IDLE,
    OPT_REQUEST,
    OPT_LOCK,
    OPT_MAX_DELIVERY,
    OPT_SKEW,
    OPT_MAX_CONN,
    OPT_LOG,
    OPT_DEVICE,
    OPT_FOLLOW,
    OPT_AFTER,
    OPT_JSON,
    OPT_PRIMARY,
    OPT_SECONDARY,
    OPT_DISABLED,
    OPT_MESSAGE_ID,
    OPT_CORRELATION_ID,
    OPT_CONTENT_TYPE,
    OPT_CONTENT_ENCODING,
    OPT_USER_ID,
    OPT_PROPERTY,
    OPT_TTL,
    OPT_ACK,
};

static const struct option global_options[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"port", required_argument, NULL, OPT_PORT},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"request-timeout", required_argument, NULL, OPT_REQUEST},
    {"c2d-lock-timeout", required_argument, NULL, OPT_LOCK},
    {"c2d-max-delivery", required_argument, NULL, OPT_MAX_DELIVERY},
    {"clock-skew", required_argument, NULL, OPT_SKEW},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"log", required_argument, NULL, OPT_LOG},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Command options; each command accepts the subset it documents (checked after parsing). */
static const struct option command_opts[] = {
    {"device", required_argument, NULL, OPT_DEVICE},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"after", required_argument, NULL, OPT_AFTER},
    {"json", no_argument, NULL, OPT_JSON},
    {"primary-key", required_argument, NULL, OPT_PRIMARY},
    {"secondary-key", required_argument, NULL, OPT_SECONDARY},
    {"disabled", no_argument, NULL, OPT_DISABLED},
    {"message-id", required_argument, NULL, OPT_MESSAGE_ID},
    {"correlation-id", required_argument, NULL, OPT_CORRELATION_ID},
    {"content-type", required_argument, NULL, OPT_CONTENT_TYPE},
    {"content-encoding", required_argument, NULL, OPT_CONTENT_ENCODING},
    {"user-id", required_argument, NULL, OPT_USER_ID},
    {"property", required_argument, NULL, OPT_PROPERTY},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"ack", required_argument, NULL, OPT_ACK},
    {NULL, 0, NULL, 0},
};

static int parse_global(int argc, char **argv, struct hub_cli *o)
{
    unsigned long v;
    int c;

    for (;;) {
        /* "+": stop at the first non-option, which is the command. */
        c = getopt_long(argc, argv, "+hV", global_options, NULL);
        if (c == -1) {
            break;
        }
        switch (c) {
        case OPT_DATA:
            o->data_dir = optarg;
            break;
        case OPT_PORT:
            if (parse_num(optarg, 0, 65535, &v) != 0) {
                return bad_usage("invalid --port", optarg);
            }
            o->server.port = (uint16_t)v;
            break;
        case OPT_HOSTNAME:
            if (!hub_hostname_valid(optarg)) {
                return bad_usage("invalid --hostname (letters, digits, '-' and '.')", optarg);
            }
            o->hostname = optarg;
            break;
        case OPT_IDLE:
        case OPT_REQUEST:
        case OPT_LOCK:
        case OPT_SKEW:
            if (parse_num(optarg, c == OPT_SKEW ? 0 : 1, 86400, &v) != 0) {
                return bad_usage("invalid number of seconds", optarg);
            }
            if (c == OPT_IDLE) {
                o->server.idle_timeout_s = (unsigned)v;
            } else if (c == OPT_REQUEST) {
                o->server.request_timeout_s = (unsigned)v;
            } else if (c == OPT_LOCK) {
                o->server.c2d_lock_timeout_s = (unsigned)v;
            } else {
                o->server.clock_skew_s = (unsigned)v;
            }
            break;
        case OPT_MAX_DELIVERY:
        case OPT_MAX_CONN:
            if (parse_num(optarg, 1, 100000, &v) != 0) {
                return bad_usage("invalid count", optarg);
            }
            if (c == OPT_MAX_DELIVERY) {
                o->server.c2d_max_delivery = (unsigned)v;
            } else {
                o->server.max_connections = (unsigned)v;
            }
            break;
        case OPT_LOG:
            if (log_configure(optarg) != 0) {
                return bad_usage("invalid --log specification", optarg);
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("sctpm-hub %s\n", PACKAGE_VERSION);
            exit(0);
        default:
            return bad_usage("invalid option", NULL);
        }
    }
    return 0;
}

/* Which command options each command takes. */
#define TAKES(...)                                                                                 \
    (const int[])                                                                                  \
    {                                                                                              \
        __VA_ARGS__, 0                                                                             \
    }

static int takes(const int *list, int opt)
{
    for (; *list != 0; list++) {
        if (*list == opt) {
            return 1;
        }
    }
    return 0;
}

/*
 * Parses the options of a command. `argv[0]` is the last command word; the arguments after it
 * may mix options and operands (GNU getopt moves the operands to the end, from optind on).
 */
static int parse_command_options(int argc, char **argv, struct hub_cli *o, const int *allowed,
                                 const char *command)
{
    unsigned long v;
    int c;

    optind = 0; /* GNU getopt: start over on this argument vector */
    for (;;) {
        c = getopt_long(argc, argv, "", command_opts, NULL);
        if (c == -1) {
            break;
        }
        if (c == '?' || !takes(allowed, c)) {
            fprintf(stderr, "sctpm-hub: %s does not take that option\n", command);
            return 2;
        }
        switch (c) {
        case OPT_DEVICE:
            o->device_id = optarg;
            break;
        case OPT_FOLLOW:
            o->follow = 1;
            break;
        case OPT_AFTER:
            if (parse_num(optarg, 0, LONG_MAX, &v) != 0) {
                return bad_usage("invalid --after", optarg);
            }
            o->after_seq = (int64_t)v;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_PRIMARY:
            o->primary_key = optarg;
            break;
        case OPT_SECONDARY:
            o->secondary_key = optarg;
            break;
        case OPT_DISABLED:
            o->disabled = 1;
            break;
        case OPT_MESSAGE_ID:
            o->message_id = optarg;
            break;
        case OPT_CORRELATION_ID:
            o->correlation_id = optarg;
            break;
        case OPT_CONTENT_TYPE:
            o->content_type = optarg;
            break;
        case OPT_CONTENT_ENCODING:
            o->content_encoding = optarg;
            break;
        case OPT_USER_ID:
            o->user_id = optarg;
            break;
        case OPT_PROPERTY:
            if (o->nprops == HUB_CLI_MAX_PROPS) {
                return bad_usage("too many --property options", NULL);
            }
            o->props[o->nprops++] = optarg;
            break;
        case OPT_TTL:
            if (parse_num(optarg, 1, 365UL * 86400, &v) != 0) {
                return bad_usage("invalid --ttl", optarg);
            }
            o->ttl_s = (unsigned)v;
            break;
        case OPT_ACK:
            o->ack = optarg;
            break;
        default:
            return 2;
        }
    }
    return 0;
}

/* The arguments left for a command: `argv[0]` is the command word just taken. */
struct args {
    int argc;
    char **argv;
};

/* Takes the next positional argument, or NULL. */
static const char *next_arg(struct args *a)
{
    return optind < a->argc ? a->argv[optind++] : NULL;
}

/* Narrows `a` to start at the command word just taken, and parses that command's options. */
static int command_options(struct args *a, struct hub_cli *o, const int *allowed,
                           const char *command)
{
    a->argv += optind - 1;
    a->argc -= optind - 1;
    return parse_command_options(a->argc, a->argv, o, allowed, command);
}

static int device_command(struct args *a, struct hub_cli *o)
{
    const char *sub = next_arg(a);
    int st;

    if (sub == NULL) {
        return bad_usage("device wants add, list, show, remove, enable or disable", NULL);
    }
    if (strcmp(sub, "add") == 0) {
        st = command_options(a, o, TAKES(OPT_PRIMARY, OPT_SECONDARY, OPT_DISABLED), "device add");
    } else {
        st = command_options(a, o, TAKES(-1), sub);
    }
    if (st != 0) {
        return st;
    }
    if (strcmp(sub, "list") == 0) {
        return optind == a->argc ? hub_cli_device_list(o) : bad_usage("too many arguments", NULL);
    }
    o->device_id = next_arg(a);
    if (o->device_id == NULL || optind != a->argc) {
        return bad_usage("device commands take one device id", NULL);
    }
    if (strcmp(sub, "add") == 0) {
        return hub_cli_device_add(o);
    }
    if (strcmp(sub, "show") == 0) {
        return hub_cli_device_show(o);
    }
    if (strcmp(sub, "remove") == 0) {
        return hub_cli_device_remove(o);
    }
    if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0) {
        return hub_cli_device_enable(o, strcmp(sub, "enable") == 0);
    }
    return bad_usage("unknown device command", sub);
}

static int c2d_command(struct args *a, struct hub_cli *o)
{
    const char *sub = next_arg(a);
    int st;

    if (sub != NULL && strcmp(sub, "send") == 0) {
        st = command_options(a, o,
                             TAKES(OPT_MESSAGE_ID, OPT_CORRELATION_ID, OPT_CONTENT_TYPE,
                                   OPT_CONTENT_ENCODING, OPT_USER_ID, OPT_PROPERTY, OPT_TTL,
                                   OPT_ACK),
                             "c2d send");
        if (st != 0) {
            return st;
        }
        o->device_id = next_arg(a);
        o->body = next_arg(a);
        if (o->body == NULL || optind != a->argc) {
            return bad_usage("c2d send takes a device id and a body", NULL);
        }
        return hub_cli_c2d_send(o);
    }
    if (sub != NULL && strcmp(sub, "list") == 0) {
        st = command_options(a, o, TAKES(OPT_JSON), "c2d list");
        if (st != 0) {
            return st;
        }
        o->device_id = next_arg(a);
        if (o->device_id == NULL || optind != a->argc) {
            return bad_usage("c2d list takes a device id", NULL);
        }
        return hub_cli_c2d_list(o);
    }
    return bad_usage("c2d wants send or list", sub);
}

int main(int argc, char **argv)
{
    struct args a = {argc, argv};
    struct hub_cli o;
    const char *cmd;
    int st;

    memset(&o, 0, sizeof(o));
    o.server.port = HUB_DEFAULT_PORT;
    o.server.idle_timeout_s = HUB_DEFAULT_IDLE_TIMEOUT;
    o.server.request_timeout_s = HUB_DEFAULT_REQUEST_TIMEOUT;
    o.server.c2d_lock_timeout_s = HUB_DEFAULT_C2D_LOCK_TIMEOUT;
    o.server.c2d_max_delivery = HUB_DEFAULT_C2D_MAX_DELIVERY;
    o.server.clock_skew_s = HUB_DEFAULT_CLOCK_SKEW;
    o.server.max_connections = HUB_DEFAULT_MAX_CONNECTIONS;
    o.ttl_s = HUB_DEFAULT_C2D_TTL;
    log_set_ident("sctpm-hub");

    st = parse_global(argc, argv, &o);
    if (st != 0) {
        return st;
    }
    if (o.data_dir == NULL) {
        return bad_usage("--data DIR is required", NULL);
    }
    cmd = next_arg(&a);
    if (cmd == NULL) {
        /* The server reports what it does; the commands stay quiet unless something fails. */
        log_set_default(LOG_LEVEL_INFO);
        return hub_cli_serve(&o);
    }
    log_set_default(LOG_LEVEL_WARNING);
    if (strcmp(cmd, "device") == 0) {
        return device_command(&a, &o);
    }
    if (strcmp(cmd, "c2d") == 0) {
        return c2d_command(&a, &o);
    }
    if (strcmp(cmd, "messages") == 0) {
        st =
            command_options(&a, &o, TAKES(OPT_DEVICE, OPT_FOLLOW, OPT_AFTER, OPT_JSON), "messages");
        if (st != 0) {
            return st;
        }
        return optind == a.argc ? hub_cli_messages(&o) : bad_usage("too many arguments", NULL);
    }
    if (strcmp(cmd, "token") == 0) {
        st = command_options(&a, &o, TAKES(OPT_TTL), "token");
        if (st != 0) {
            return st;
        }
        o.device_id = next_arg(&a);
        if (o.device_id == NULL || optind != a.argc) {
            return bad_usage("token takes a device id", NULL);
        }
        return hub_cli_token(&o);
    }
    return bad_usage("unknown command", cmd);
}
