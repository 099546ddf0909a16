/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The sctpm command: status, provision, deprovision, list, token, connection-string.
 *
 * Standard output carries only the result (a token, a connection string, a listing), so that
 * scripts can capture it; everything else goes to standard error, one line each: errors, and
 * the single warning that the TPM is emulated.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LOGMODULE sctpm
#include "log.h"
#include "cli.h"
#include "sctpm/sctpm.h"

/* A connection string is a few hundred bytes; anything much longer is not one. */
#define CS_MAX 4096

struct cli {
    const char *tcti;
    int require_hardware;
    struct sctpm_ctx *ctx;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: sctpm [--tcti CONF] [--require-hardware] [--log LEVEL] COMMAND [OPTIONS]\n"
            "\n"
            "Commands:\n"
            "  status                         which TPM this is (HARDWARE or EMULATED) and why\n"
            "  provision [--slot N] [--from-file FILE]\n"
            "                                 imprint a device connection string read from\n"
            "                                 standard input (or FILE) into the TPM\n"
            "  deprovision [--slot N]         remove a slot's key and identity\n"
            "  list                           the provisioned slots\n"
            "  token [--slot N] [--ttl SECONDS] [--scope SR [--expiry T] [--skn NAME]]\n"
            "                                 print a SAS token signed by the TPM\n"
            "  connection-string [--slot N] [--ttl SECONDS]\n"
            "                                 print "
            "HostName=...;DeviceId=...;SharedAccessSignature=...\n"
            "\n"
            "The TCTI is --tcti, else $SCTPM_TCTI, else the sctpm order (/dev/tpmrm0, /dev/tpm0,\n"
            "a running sctpmd, a per-user sctpmd started on demand). --require-hardware or\n"
            "SCTPM_REQUIRE_HARDWARE=1 refuses an emulated TPM. See sctpm(1).\n");
}

static int exit_code(enum sctpm_rc rc)
{
    switch (rc) {
    case SCTPM_RC_SUCCESS:
        return CLI_OK;
    case SCTPM_RC_BAD_ARGUMENT:
    case SCTPM_RC_BAD_FORMAT:
    case SCTPM_RC_TOO_LARGE:
        return CLI_BAD_INPUT;
    case SCTPM_RC_NO_TPM:
        return CLI_NO_TPM;
    case SCTPM_RC_TPM:
    case SCTPM_RC_CORRUPT:
    case SCTPM_RC_UNTRUSTED:
        return CLI_TPM_ERROR;
    case SCTPM_RC_NOT_HARDWARE:
        return CLI_NOT_HARDWARE;
    case SCTPM_RC_NOT_PROVISIONED:
        return CLI_NOT_PROVISIONED;
    default:
        return CLI_FAILURE;
    }
}

/* One line: what failed, the library's sentence, and the raw TSS2 code when there is one. */
static int fail(struct cli *c, const char *what, enum sctpm_rc rc)
{
    const char *detail = c->ctx != NULL ? sctpm_last_error(c->ctx) : "";

    if (detail[0] == '\0') {
        detail = sctpm_strerror(rc);
    }
    fprintf(stderr, "sctpm: %s: %s\n", what, detail);
    return exit_code(rc);
}

static int parse_uint(const char *opt, const char *s, unsigned long max, unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *out > max || s[0] == '-') {
        fprintf(stderr, "sctpm: %s: \"%s\" is not a number from 0 to %lu\n", opt, s, max);
        return -1;
    }
    return 0;
}

/*
 * Opens the TPM and, unless the command itself reports the verdict, warns once when it is
 * emulated.
 */
static int open_tpm(struct cli *c, int warn)
{
    struct sctpm_status st;
    enum sctpm_rc rc;

    rc = sctpm_open(&c->ctx, c->tcti, c->require_hardware ? SCTPM_OPEN_REQUIRE_HARDWARE : 0);
    if (rc != SCTPM_RC_SUCCESS) {
        return fail(c, rc == SCTPM_RC_NOT_HARDWARE ? "refused" : "cannot open the TPM", rc);
    }
    if (!warn) {
        return CLI_OK;
    }
    rc = sctpm_status(c->ctx, &st);
    if (rc != SCTPM_RC_SUCCESS) {
        return fail(c, "cannot identify the TPM", rc);
    }
    if (st.kind != SCTPM_KIND_HARDWARE) {
        fprintf(stderr,
                "sctpm: warning: the TPM is EMULATED (%s); keys are protected by software only\n",
                st.verdict_reason);
    }
    return CLI_OK;
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
    struct sctpm_status st;
    enum sctpm_rc rc;
    int ret;

    if (argc > 1) {
        fprintf(stderr, "sctpm: status takes no arguments\n");
        return CLI_USAGE;
    }
    (void)argv;
    ret = open_tpm(c, 0);
    if (ret != CLI_OK) {
        return ret;
    }
    rc = sctpm_status(c->ctx, &st);
    if (rc != SCTPM_RC_SUCCESS && rc != SCTPM_RC_NOT_HARDWARE) {
        return fail(c, "cannot identify the TPM", rc);
    }
    printf("TPM:            %s\n", sctpm_kind_name(st.kind));
    printf("Why:            %s\n", st.verdict_reason);
    printf("Manufacturer:   %s\n", st.manufacturer);
    printf("Vendor:         %s\n", st.vendor);
    printf("Firmware:       %s\n", st.firmware);
    printf("Specification:  %s\n", st.spec);
    printf("TCTI:           %s\n", st.tcti);
    printf("TCTI chosen:    %s\n", st.tcti_reason);
    if (st.ek_cert_index != 0) {
        printf("EK certificate: NV 0x%08x\n", st.ek_cert_index);
        printf("EK issuer:      %s\n", st.ek_issuer);
    } else {
        printf("EK certificate: none\n");
    }
    if (rc == SCTPM_RC_NOT_HARDWARE) {
        return fail(c, "refused", rc);
    }
    return CLI_OK;
}

/* Options shared by the slot commands. */
struct slot_opts {
    unsigned long slot;
    unsigned long ttl;
    const char *from_file;
    const char *scope;
    const char *skn;
    long long expiry;
    int have_expiry;
};

enum { OPT_SLOT = 256, OPT_TTL, OPT_FROM_FILE, OPT_SCOPE, OPT_SKN, OPT_EXPIRY };

/* Parses the options `allowed` (a set of OPT_* bits) of a slot command. */
static int slot_options(const char *cmd, int argc, char **argv, unsigned allowed,
                        struct slot_opts *o)
{
    static const struct option opts[] = {
        {"slot", required_argument, NULL, OPT_SLOT},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"from-file", required_argument, NULL, OPT_FROM_FILE},
        {"scope", required_argument, NULL, OPT_SCOPE},
        {"skn", required_argument, NULL, OPT_SKN},
        {"expiry", required_argument, NULL, OPT_EXPIRY},
        {NULL, 0, NULL, 0},
    };
    unsigned long v;
    int ch;

    memset(o, 0, sizeof(*o));
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (ch == '?' || !(allowed & (1u << (ch - OPT_SLOT)))) {
            fprintf(stderr, "sctpm: %s: unknown or misplaced option %s\n", cmd, argv[optind - 1]);
            return CLI_USAGE;
        }
        switch (ch) {
        case OPT_SLOT:
            if (parse_uint("--slot", optarg, SCTPM_SLOTS - 1, &o->slot) != 0) {
                return CLI_BAD_INPUT;
            }
            break;
        case OPT_TTL:
            if (parse_uint("--ttl", optarg, UINT32_MAX, &o->ttl) != 0 || o->ttl == 0) {
                if (o->ttl == 0) {
                    fprintf(stderr, "sctpm: --ttl: a token must live at least one second\n");
                }
                return CLI_BAD_INPUT;
            }
            break;
        case OPT_FROM_FILE:
            o->from_file = optarg;
            break;
        case OPT_SCOPE:
            o->scope = optarg;
            break;
        case OPT_SKN:
            o->skn = optarg;
            break;
        case OPT_EXPIRY:
            if (parse_uint("--expiry", optarg, (unsigned long)INT64_MAX, &v) != 0) {
                return CLI_BAD_INPUT;
            }
            o->expiry = (long long)v;
            o->have_expiry = 1;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sctpm: %s: unexpected argument \"%s\"%s\n", cmd, argv[optind],
                strcmp(cmd, "provision") == 0
                    ? " (the connection string is read from standard input, never from the "
                      "command line)"
                    : "");
        return CLI_USAGE;
    }
    if ((o->skn != NULL || o->have_expiry) && o->scope == NULL) {
        fprintf(stderr, "sctpm: %s: --skn and --expiry go with --scope\n", cmd);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/*
 * Reads the connection string from `fd` into `buf` (locked in memory so it never reaches
 * swap). From a terminal it prompts and turns echo off, so the key is not left on the screen.
 */
static int read_secret(int fd, const char *name, char *buf, size_t size)
{
    struct termios old, quiet;
    int tty = isatty(fd), restore = 0;
    size_t len = 0;
    ssize_t n;

    if (tty && tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        restore = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
        fprintf(stderr, "Device connection string: ");
        fflush(stderr);
    }
    for (;;) {
        n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        /* A terminal gives one line; a pipe or file is read to the end. */
        if ((tty && memchr(buf, '\n', len) != NULL) || len == size - 1) {
            break;
        }
    }
    if (restore) {
        tcsetattr(fd, TCSAFLUSH, &old);
    }
    if (n < 0) {
        fprintf(stderr, "sctpm: provision: cannot read %s: %s\n", name, strerror(errno));
        return -1;
    }
    if (len == size - 1) {
        char extra;
        if (!tty && read(fd, &extra, 1) == 1) {
            fprintf(stderr,
                    "sctpm: provision: %s is longer than %d bytes; that is not a "
                    "connection string\n",
                    name, CS_MAX);
            return -1;
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        fprintf(stderr, "sctpm: provision: %s contains a NUL byte\n", name);
        return -1;
    }
    return 0;
}

static int cmd_provision(struct cli *c, int argc, char **argv)
{
    struct slot_opts o;
    char *cs = NULL;
    const char *name = "standard input";
    int ret, fd = STDIN_FILENO, locked;
    enum sctpm_rc rc;

    ret = slot_options("provision", argc, argv,
                       1u << (OPT_SLOT - OPT_SLOT) | 1u << (OPT_FROM_FILE - OPT_SLOT), &o);
    if (ret != CLI_OK) {
        return ret;
    }
    cs = malloc(CS_MAX + 1);
    if (cs == NULL) {
        fprintf(stderr, "sctpm: out of memory\n");
        return CLI_FAILURE;
    }
    locked = mlock(cs, CS_MAX + 1) == 0;
    if (o.from_file != NULL) {
        name = o.from_file;
        fd = open(o.from_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            fprintf(stderr, "sctpm: provision: cannot open %s: %s\n", o.from_file, strerror(errno));
            ret = CLI_BAD_INPUT;
            goto out;
        }
    }
    if (read_secret(fd, name, cs, CS_MAX + 1) != 0) {
        ret = CLI_BAD_INPUT;
        goto out;
    }
    ret = open_tpm(c, 1);
    if (ret != CLI_OK) {
        goto out;
    }
    rc = sctpm_provision(c->ctx, (unsigned)o.slot, cs);
    explicit_bzero(cs, CS_MAX + 1);
    if (rc != SCTPM_RC_SUCCESS) {
        ret = fail(c, "provision", rc);
        goto out;
    }
    {
        struct sctpm_identity id;
        rc = sctpm_identity(c->ctx, (unsigned)o.slot, &id);
        if (rc != SCTPM_RC_SUCCESS) {
            ret = fail(c, "provisioned, but reading the slot back failed", rc);
            goto out;
        }
        printf("slot %lu: %s/%s%s%s (key 0x%08x, identity in NV 0x%08x)\n", o.slot, id.host,
               id.device_id, id.module_id[0] != '\0' ? "/" : "", id.module_id,
               SCTPM_KEY_HANDLE(o.slot), SCTPM_NV_INDEX(o.slot));
    }
    ret = CLI_OK;
out:
    if (fd != STDIN_FILENO && fd >= 0) {
        close(fd);
    }
    explicit_bzero(cs, CS_MAX + 1);
    if (locked) {
        munlock(cs, CS_MAX + 1);
    }
    free(cs);
    return ret;
}

static int cmd_deprovision(struct cli *c, int argc, char **argv)
{
    struct slot_opts o;
    enum sctpm_rc rc;
    int ret;

    ret = slot_options("deprovision", argc, argv, 1u << (OPT_SLOT - OPT_SLOT), &o);
    if (ret == CLI_OK) {
        ret = open_tpm(c, 1);
    }
    if (ret != CLI_OK) {
        return ret;
    }
    rc = sctpm_deprovision(c->ctx, (unsigned)o.slot);
    if (rc != SCTPM_RC_SUCCESS) {
        return fail(c, "deprovision", rc);
    }
    printf("slot %lu: deprovisioned (key 0x%08x and NV 0x%08x removed)\n", o.slot,
           SCTPM_KEY_HANDLE(o.slot), SCTPM_NV_INDEX(o.slot));
    return CLI_OK;
}

static int cmd_list(struct cli *c, int argc, char **argv)
{
    struct sctpm_identity ids[SCTPM_SLOTS];
    enum sctpm_rc rc;
    size_t n = 0;
    int ret;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "sctpm: list takes no arguments\n");
        return CLI_USAGE;
    }
    ret = open_tpm(c, 1);
    if (ret != CLI_OK) {
        return ret;
    }
    rc = sctpm_list(c->ctx, ids, SCTPM_SLOTS, &n);
    if (rc != SCTPM_RC_SUCCESS) {
        return fail(c, "list", rc);
    }
    if (n == 0) {
        fprintf(stderr, "sctpm: no slot is provisioned\n");
    }
    for (size_t i = 0; i < n && i < SCTPM_SLOTS; i++) {
        printf("%u  %s/%s%s%s  %s\n", ids[i].slot, ids[i].host, ids[i].device_id,
               ids[i].module_id[0] != '\0' ? "/" : "", ids[i].module_id,
               ids[i].has_key ? "key present" : "NO KEY");
    }
    return CLI_OK;
}

static int cmd_token(struct cli *c, int argc, char **argv, int connection_string)
{
    const char *cmd = connection_string ? "connection-string" : "token";
    char buf[SCTPM_TOKEN_MAX];
    struct slot_opts o;
    enum sctpm_rc rc;
    unsigned allowed = 1u << (OPT_SLOT - OPT_SLOT) | 1u << (OPT_TTL - OPT_SLOT);
    int ret;

    if (!connection_string) {
        allowed |= 1u << (OPT_SCOPE - OPT_SLOT) | 1u << (OPT_SKN - OPT_SLOT) |
                   1u << (OPT_EXPIRY - OPT_SLOT);
    }
    ret = slot_options(cmd, argc, argv, allowed, &o);
    if (ret == CLI_OK) {
        ret = open_tpm(c, 1);
    }
    if (ret != CLI_OK) {
        return ret;
    }
    if (connection_string) {
        rc = sctpm_connection_string(c->ctx, (unsigned)o.slot, (uint32_t)o.ttl, buf, sizeof(buf));
    } else if (o.scope != NULL) {
        long long expiry = o.have_expiry ? o.expiry
                                         : (long long)time(NULL) +
                                               (long long)(o.ttl != 0 ? o.ttl : SCTPM_DEFAULT_TTL);
        rc =
            sctpm_sas_token_for(c->ctx, (unsigned)o.slot, o.scope, expiry, o.skn, buf, sizeof(buf));
    } else {
        rc = sctpm_sas_token(c->ctx, (unsigned)o.slot, (uint32_t)o.ttl, buf, sizeof(buf), NULL);
    }
    if (rc != SCTPM_RC_SUCCESS) {
        return fail(c, cmd, rc);
    }
    printf("%s\n", buf);
    return CLI_OK;
}

int cli_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tcti", required_argument, NULL, 'T'}, {"require-hardware", no_argument, NULL, 'H'},
        {"log", required_argument, NULL, 'l'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},    {NULL, 0, NULL, 0},
    };
    struct cli c = {0};
    const char *cmd, *env;
    int ch, ret;

    log_set_ident("sctpm");
    /*
     * tpm2-tss logs every TPM error it sees to stderr; we report failures ourselves, in one
     * line. A user who wants the TSS's own log sets TSS2_LOG.
     */
    setenv("TSS2_LOG", "all+NONE", 0);
    env = getenv("SCTPM_REQUIRE_HARDWARE");
    c.require_hardware = env != NULL && strcmp(env, "1") == 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+T:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'T':
            c.tcti = optarg;
            break;
        case 'H':
            c.require_hardware = 1;
            break;
        case 'l':
            if (log_configure(optarg) != 0) {
                fprintf(stderr, "sctpm: --log: bad level \"%s\"\n", optarg);
                return CLI_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        case 'V':
            printf("sctpm %s\n", sctpm_version());
            return CLI_OK;
        default:
            fprintf(stderr, "sctpm: unknown option %s (see sctpm --help)\n", argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    if (strcmp(cmd, "status") == 0) {
        ret = cmd_status(&c, argc, argv);
    } else if (strcmp(cmd, "provision") == 0) {
        ret = cmd_provision(&c, argc, argv);
    } else if (strcmp(cmd, "deprovision") == 0) {
        ret = cmd_deprovision(&c, argc, argv);
    } else if (strcmp(cmd, "list") == 0) {
        ret = cmd_list(&c, argc, argv);
    } else if (strcmp(cmd, "token") == 0) {
        ret = cmd_token(&c, argc, argv, 0);
    } else if (strcmp(cmd, "connection-string") == 0) {
        ret = cmd_token(&c, argc, argv, 1);
    } else if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        ret = CLI_OK;
    } else {
        fprintf(stderr, "sctpm: unknown command \"%s\" (see sctpm --help)\n", cmd);
        ret = CLI_USAGE;
    }
    sctpm_close(c.ctx);
    return ret;
}
