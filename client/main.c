/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sctpm-client: option parsing only; the commands are in libclient (client.c, run.c).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOGMODULE client
#include "log.h"
#include "client-priv.h"
#include "msg-priv.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: sctpm-client [OPTIONS] COMMAND [COMMAND OPTIONS] [ARGS]\n"
        "\n"
        "Commands:\n"
        "  send [--prop K=V]... [--batch] [--lines] BODY...|-\n"
        "                      queue messages durably, then deliver the backlog\n"
        "  flush [--batch]     deliver the backlog; the exit status says whether it all went\n"
        "  receive [--complete | --reject | --abandon] [--lock-token T] [--wait S]\n"
        "                      receive one cloud-to-device message and settle it\n"
        "  run [--watch DIR] [--batch] [--poll S] [--no-c2d] [--exit-on-eof]\n"
        "                      send lines of standard input (or files dropped in DIR),\n"
        "                      print cloud-to-device messages; until a signal stops it\n"
        "  queue               show the queue: messages, bytes, oldest, rejected\n"
        "\n"
        "Options:\n"
        "  --tcti CONF               the TPM (default: $SCTPM_TCTI, else libsctpm's order)\n"
        "  --slot N                  identity slot 0-9 (default 0)\n"
        "  --require-hardware        refuse an emulated TPM\n"
        "  --endpoint https://H[:P]  reach the hub or a gateway here (tokens still name\n"
        "                            the slot's HostName)\n"
        "  --ca-file FILE            trust these CA certificates too\n"
        "  --queue DIR               the queue (default $XDG_STATE_HOME/sctpm/queue-N, or\n"
        "                            /var/lib/sctpm/queue-N for root)\n"
        "  --queue-max-messages N    queue bound in messages (default %d)\n"
        "  --queue-max-bytes N[KMG]  queue bound in bytes (default 64M)\n"
        "  --token-ttl SECONDS       token lifetime (default 3600; renewed at 80%%)\n"
        "  --timeout SECONDS         send/flush: how long to keep retrying (10 / 60)\n"
        "  -v, --verbose             show the HTTP exchange (never a key, token or signature)\n"
        "  -q, --quiet               no \"sent\" lines\n"
        "  --log SPEC                logging, as SCTPM_LOG\n"
        "\n"
        "Send options: --prop NAME=VALUE (repeatable), --content-type T, --content-encoding E,\n"
        "  --correlation-id ID, --message-id ID (one message; makes a retried send idempotent),\n"
        "  --batch, --lines (each line of standard input is a message), --no-flush.\n"
        "Run options: --prop, --content-type, --content-encoding, --batch, --watch DIR,\n"
        "  --stdin (also with --watch), --no-stdin, --poll SECONDS (default 10), --no-c2d,\n"
        "  --exit-on-eof.\n"
        "\n"
        "Exit status: 0 ok (send: every message is queued on disk, delivered or not),\n"
        "1 failure, 2 usage, 3 bad input, 4 no TPM, 5 TPM error, 6 not hardware,\n"
        "7 not provisioned, 8 queue full, 9 hub unreachable, 10 TLS, 11 unauthorized,\n"
        "12 refused by the hub. See sctpm-client(1).\n",
        QUEUE_DEFAULT_MAX_MESSAGES);
}

enum {
    OPT_TCTI = 256,
    OPT_SLOT,
    OPT_REQUIRE_HARDWARE,
    OPT_ENDPOINT,
    OPT_CA_FILE,
    OPT_QUEUE,
    OPT_QUEUE_MAX_MESSAGES,
    OPT_QUEUE_MAX_BYTES,
    OPT_TOKEN_TTL,
    OPT_TIMEOUT,
    OPT_LOG,
    OPT_PROP,
    OPT_CONTENT_TYPE,
    OPT_CONTENT_ENCODING,
    OPT_CORRELATION_ID,
    OPT_MESSAGE_ID,
    OPT_BATCH,
    OPT_LINES,
    OPT_NO_FLUSH,
    OPT_COMPLETE,
    OPT_REJECT,
    OPT_ABANDON,
    OPT_LOCK_TOKEN,
    OPT_WAIT,
    OPT_WATCH,
    OPT_STDIN,
    OPT_NO_STDIN,
    OPT_POLL,
    OPT_NO_C2D,
    OPT_EXIT_ON_EOF,
    OPT_VERSION,
};

static const struct option options[] = {
    {"tcti", required_argument, NULL, OPT_TCTI},
    {"slot", required_argument, NULL, OPT_SLOT},
    {"require-hardware", no_argument, NULL, OPT_REQUIRE_HARDWARE},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"queue-max-messages", required_argument, NULL, OPT_QUEUE_MAX_MESSAGES},
    {"queue-max-bytes", required_argument, NULL, OPT_QUEUE_MAX_BYTES},
    {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"log", required_argument, NULL, OPT_LOG},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"prop", required_argument, NULL, OPT_PROP},
    {"content-type", required_argument, NULL, OPT_CONTENT_TYPE},
    {"content-encoding", required_argument, NULL, OPT_CONTENT_ENCODING},
    {"correlation-id", required_argument, NULL, OPT_CORRELATION_ID},
    {"message-id", required_argument, NULL, OPT_MESSAGE_ID},
    {"batch", no_argument, NULL, OPT_BATCH},
    {"lines", no_argument, NULL, OPT_LINES},
    {"no-flush", no_argument, NULL, OPT_NO_FLUSH},
    {"complete", no_argument, NULL, OPT_COMPLETE},
    {"reject", no_argument, NULL, OPT_REJECT},
    {"abandon", no_argument, NULL, OPT_ABANDON},
    {"lock-token", required_argument, NULL, OPT_LOCK_TOKEN},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"watch", required_argument, NULL, OPT_WATCH},
    {"stdin", no_argument, NULL, OPT_STDIN},
    {"no-stdin", no_argument, NULL, OPT_NO_STDIN},
    {"poll", required_argument, NULL, OPT_POLL},
    {"no-c2d", no_argument, NULL, OPT_NO_C2D},
    {"exit-on-eof", no_argument, NULL, OPT_EXIT_ON_EOF},
    {NULL, 0, NULL, 0},
};

/* Which commands take each command option (the global options go with every command). */
enum { C_SEND = 1, C_FLUSH = 2, C_RECEIVE = 4, C_RUN = 8, C_QUEUE = 16 };

static unsigned opt_commands(int opt)
{
    switch (opt) {
    case OPT_PROP:
    case OPT_CONTENT_TYPE:
    case OPT_CONTENT_ENCODING:
        return C_SEND | C_RUN;
    case OPT_CORRELATION_ID:
    case OPT_MESSAGE_ID:
    case OPT_LINES:
    case OPT_NO_FLUSH:
        return C_SEND;
    case OPT_BATCH:
        return C_SEND | C_FLUSH | C_RUN;
    case OPT_TIMEOUT:
        return C_SEND | C_FLUSH;
    case OPT_COMPLETE:
    case OPT_REJECT:
    case OPT_ABANDON:
    case OPT_LOCK_TOKEN:
    case OPT_WAIT:
        return C_RECEIVE;
    case OPT_WATCH:
    case OPT_STDIN:
    case OPT_NO_STDIN:
    case OPT_POLL:
    case OPT_NO_C2D:
    case OPT_EXIT_ON_EOF:
        return C_RUN;
    default:
        return C_SEND | C_FLUSH | C_RECEIVE | C_RUN | C_QUEUE;
    }
}

/* `s` made safe for one line of output: control characters become '?', long values are cut. */
static const char *visible(const char *s, char *buf, size_t size)
{
    size_t o = 0;

    for (; *s != '\0' && o + 4 < size; s++) {
        buf[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
    }
    if (*s != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static const char *opt_name(int val)
{
    for (const struct option *o = options; o->name != NULL; o++) {
        if (o->val == val) {
            return o->name;
        }
    }
    return "?";
}

static int bad(const char *opt, const char *value, const char *what)
{
    char v[128];

    fprintf(stderr, "sctpm-client: %s: \"%s\" is not %s\n", opt, visible(value, v, sizeof(v)),
            what);
    return -1;
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, int suffixes,
                     uint64_t *out)
{
    unsigned long long v;
    char *end;
    uint64_t mul = 1;

    errno = 0;
    if (s[0] < '0' || s[0] > '9') {
        return bad(opt, s, "a number");
    }
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        return bad(opt, s, "a number");
    }
    if (suffixes && *end != '\0' && end[1] == '\0') {
        switch (*end) {
        case 'k':
        case 'K':
            mul = 1024;
            break;
        case 'm':
        case 'M':
            mul = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mul = 1024ull * 1024 * 1024;
            break;
        default:
            return bad(opt, s, "a size (N, NK, NM or NG)");
        }
        end++;
    }
    if (*end != '\0' || v > max / mul || v * mul < min || v * mul > max) {
        char range[96];
        snprintf(range, sizeof(range), "a number from %llu to %llu", (unsigned long long)min,
                 (unsigned long long)max);
        return bad(opt, s, range);
    }
    *out = v * mul;
    return 0;
}

static int parse_seconds(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
        char range[96];
        snprintf(range, sizeof(range), "a number of seconds from %g to %g", min, max);
        return bad(opt, s, range);
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct client_config cfg;
    struct client_send_opts so;
    struct client_receive_opts ro;
    struct client_run_opts rn;
    struct sigaction sa;
    json_object *props = NULL;
    const char *cmd_name = NULL, *why = NULL;
    char **args = NULL;
    int nargs = 0, c, ret = CLIENT_USAGE, settles = 0, stdin_flag = -1;
    double timeout = -1;
    uint64_t v;
    unsigned cmd = 0;
    char vbuf[128];
    static int seen[OPT_VERSION + 1];

    memset(&cfg, 0, sizeof(cfg));
    memset(&so, 0, sizeof(so));
    memset(&ro, 0, sizeof(ro));
    memset(&rn, 0, sizeof(rn));
    cfg.limits.max_messages = QUEUE_DEFAULT_MAX_MESSAGES;
    cfg.limits.max_bytes = QUEUE_DEFAULT_MAX_BYTES;
    cfg.out = stdout;
    cfg.err = stderr;
    cfg.stop = &stop_requested;
    rn.c2d = 1;
    rn.poll_s = 10;
    log_set_ident("sctpm-client");
    log_set_default(LOG_LEVEL_WARNING);

    props = msg_props_new();
    args = calloc((size_t)argc + 1, sizeof(*args));
    if (props == NULL || args == NULL) {
        fprintf(stderr, "sctpm-client: out of memory\n");
        ret = CLIENT_FAILURE;
        goto out;
    }
    /* First pass: every option, wherever it is; the words that are left are the command and its
     * arguments ("--" ends the options, so a body may start with "-"). */
    while ((c = getopt_long(argc, argv, "vqh", options, NULL)) != -1) {
        const char *opt = opt_name(c);

        if (c == '?') {
            fprintf(stderr, "Try 'sctpm-client --help'.\n");
            goto out;
        }
        if (c >= 256 && c <= OPT_VERSION) {
            seen[c] |= 1;
        }
        switch (c) {
        case 'h':
            usage(stdout);
            ret = CLIENT_OK;
            goto out;
        case OPT_VERSION:
            printf("sctpm-client %s\n", PACKAGE_VERSION);
            ret = CLIENT_OK;
            goto out;
        case 'v':
            cfg.verbose = 1;
            break;
        case 'q':
            cfg.quiet = 1;
            break;
        case OPT_TCTI:
            cfg.tcti = optarg;
            break;
        case OPT_SLOT:
            if (parse_u64("--slot", optarg, 0, SCTPM_SLOTS - 1, 0, &v) != 0) {
                goto out;
            }
            cfg.slot = (unsigned)v;
            break;
        case OPT_REQUIRE_HARDWARE:
            cfg.require_hardware = 1;
            break;
        case OPT_ENDPOINT:
            cfg.endpoint = optarg;
            break;
        case OPT_CA_FILE:
            cfg.ca_file = optarg;
            break;
        case OPT_QUEUE:
            cfg.queue_dir = optarg;
            break;
        case OPT_QUEUE_MAX_MESSAGES:
            if (parse_u64("--queue-max-messages", optarg, 1, 100000000, 0,
                          &cfg.limits.max_messages) != 0) {
                goto out;
            }
            break;
        case OPT_QUEUE_MAX_BYTES:
            if (parse_u64("--queue-max-bytes", optarg, 1024, 1ull << 40, 1,
                          &cfg.limits.max_bytes) != 0) {
                goto out;
            }
            break;
        case OPT_TOKEN_TTL:
            if (parse_u64("--token-ttl", optarg, 1, 365 * 86400, 0, &v) != 0) {
                goto out;
            }
            cfg.token_ttl = (uint32_t)v;
            break;
        case OPT_TIMEOUT:
            if (parse_seconds("--timeout", optarg, 0, 86400, &timeout) != 0) {
                goto out;
            }
            break;
        case OPT_LOG:
            if (log_configure(optarg) != 0) {
                fprintf(stderr, "sctpm-client: --log: \"%s\" is not a log specification\n",
                        visible(optarg, vbuf, sizeof(vbuf)));
                goto out;
            }
            break;
        case OPT_PROP:
            if (msg_props_add_app(props, optarg, &why) != SCTPM_RC_SUCCESS) {
                fprintf(stderr, "sctpm-client: --prop \"%s\": %s\n",
                        visible(optarg, vbuf, sizeof(vbuf)), why);
                ret = CLIENT_BAD_INPUT;
                goto out;
            }
            break;
        case OPT_CONTENT_TYPE:
        case OPT_CONTENT_ENCODING:
        case OPT_CORRELATION_ID: {
            const char *name = c == OPT_CONTENT_TYPE       ? "iothub-contenttype"
                               : c == OPT_CONTENT_ENCODING ? "iothub-contentencoding"
                                                           : "iothub-correlationid";
            if (msg_props_set_system(props, name, optarg, &why) != SCTPM_RC_SUCCESS) {
                fprintf(stderr, "sctpm-client: --%s \"%s\": %s\n", opt,
                        visible(optarg, vbuf, sizeof(vbuf)), why);
                ret = CLIENT_BAD_INPUT;
                goto out;
            }
            break;
        }
        case OPT_MESSAGE_ID:
            if (!msg_id_valid(optarg)) {
                fprintf(stderr,
                        "sctpm-client: --message-id \"%s\": 1 to 128 letters, digits and "
                        "-:.+%%_#*?!(),=@;$'\n",
                        visible(optarg, vbuf, sizeof(vbuf)));
                ret = CLIENT_BAD_INPUT;
                goto out;
            }
            so.message_id = optarg;
            break;
        case OPT_BATCH:
            so.batch = rn.batch = 1;
            break;
        case OPT_LINES:
            so.lines = 1;
            break;
        case OPT_NO_FLUSH:
            so.no_flush = 1;
            break;
        case OPT_COMPLETE:
            ro.settle = CLIENT_COMPLETE;
            settles++;
            break;
        case OPT_REJECT:
            ro.settle = CLIENT_REJECT;
            settles++;
            break;
        case OPT_ABANDON:
            ro.settle = CLIENT_ABANDON;
            settles++;
            break;
        case OPT_LOCK_TOKEN:
            ro.lock = optarg;
            break;
        case OPT_WAIT:
            if (parse_seconds("--wait", optarg, 0, 86400, &ro.wait_s) != 0) {
                goto out;
            }
            break;
        case OPT_WATCH:
            rn.watch_dir = optarg;
            break;
        case OPT_STDIN:
            stdin_flag = 1;
            break;
        case OPT_NO_STDIN:
            stdin_flag = 0;
            break;
        case OPT_POLL:
            if (parse_seconds("--poll", optarg, 0.1, 86400, &rn.poll_s) != 0) {
                goto out;
            }
            break;
        case OPT_NO_C2D:
            rn.c2d = 0;
            break;
        case OPT_EXIT_ON_EOF:
            rn.exit_on_eof = 1;
            break;
        default:
            goto out;
        }
    }
    for (int i = optind; i < argc; i++) {
        args[nargs++] = argv[i];
    }
    if (nargs == 0) {
        usage(stderr);
        goto out;
    }
    cmd_name = args[0];
    if (strcmp(cmd_name, "send") == 0) {
        cmd = C_SEND;
    } else if (strcmp(cmd_name, "flush") == 0) {
        cmd = C_FLUSH;
    } else if (strcmp(cmd_name, "receive") == 0) {
        cmd = C_RECEIVE;
    } else if (strcmp(cmd_name, "run") == 0) {
        cmd = C_RUN;
    } else if (strcmp(cmd_name, "queue") == 0) {
        cmd = C_QUEUE;
    } else {
        fprintf(stderr, "sctpm-client: unknown command \"%s\" (send, flush, receive, run, queue)\n",
                visible(cmd_name, vbuf, sizeof(vbuf)));
        goto out;
    }
    for (int o = OPT_TCTI; o <= OPT_VERSION; o++) {
        if (seen[o] && !(opt_commands(o) & cmd)) {
            fprintf(stderr, "sctpm-client: --%s does not go with %s\n", opt_name(o), cmd_name);
            goto out;
        }
    }
    if (cmd != C_SEND && nargs > 1) {
        fprintf(stderr, "sctpm-client: %s takes no arguments (\"%s\")\n", cmd_name,
                visible(args[1], vbuf, sizeof(vbuf)));
        goto out;
    }

    /* A signal stops a command cleanly: what was accepted is on disk already. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    switch (cmd) {
    case C_SEND:
        if (nargs < 2) {
            fprintf(stderr, "sctpm-client: send needs a BODY (or \"-\" for standard input)\n");
            goto out;
        }
        so.bodies = &args[1];
        so.nbodies = (size_t)nargs - 1;
        so.props = props;
        so.timeout_s = timeout >= 0 ? timeout : 10;
        ret = client_send(&cfg, &so);
        break;
    case C_FLUSH:
        ret = client_flush(&cfg, so.batch, timeout >= 0 ? timeout : 60);
        break;
    case C_RECEIVE:
        if (settles > 1) {
            fprintf(stderr, "sctpm-client: choose one of --complete, --reject, --abandon\n");
            goto out;
        }
        if (ro.lock != NULL && settles == 0) {
            fprintf(stderr, "sctpm-client: --lock-token needs --complete, --reject or "
                            "--abandon\n");
            goto out;
        }
        ret = client_receive(&cfg, &ro);
        break;
    case C_RUN:
        rn.props = props;
        rn.read_stdin = stdin_flag >= 0 ? stdin_flag : rn.watch_dir == NULL;
        ret = client_run(&cfg, &rn);
        break;
    case C_QUEUE:
        ret = client_queue_status(&cfg);
        break;
    default:
        break;
    }
out:
    json_object_put(props);
    free(args);
    return ret;
}
