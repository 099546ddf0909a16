/* SPDX-License-Identifier: BSD-2-Clause */
/* The sctpm command line; main.c only calls cli_main(). */
#ifndef SCTPM_SHIM_CLI_H
#define SCTPM_SHIM_CLI_H

/* Exit codes, documented in docs/sctpm.1. */
enum cli_exit {
    CLI_OK = 0,
    CLI_FAILURE = 1,      /* anything not listed below */
    CLI_USAGE = 2,        /* bad command line */
    CLI_BAD_INPUT = 3,    /* a malformed connection string or argument value */
    CLI_NO_TPM = 4,       /* no TPM could be reached */
    CLI_TPM_ERROR = 5,    /* the TPM refused or failed a command */
    CLI_NOT_HARDWARE = 6, /* an emulated TPM was refused by --require-hardware */
    CLI_NOT_PROVISIONED = 7,
};

int cli_main(int argc, char **argv);

#endif /* SCTPM_SHIM_CLI_H */
