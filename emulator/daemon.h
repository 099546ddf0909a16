/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * daemon: sctpmd's start-up and shut-down around the server loop, so that main.c only parses
 * options and the tests can drive the whole service in process.
 */
#ifndef SCTPM_EMULATOR_DAEMON_H
#define SCTPM_EMULATOR_DAEMON_H

#include "nvstore.h"
#include "server.h"

struct daemon_config {
    const char *state_dir;
    const char *key_file; /* NULL: state not encrypted */
    enum nvstore_fsync fsync_mode;
    const char *pidfile; /* NULL: none */
    int detach;          /* --daemon: fork, new session, parent exits once ready */
    struct server_config server;
};

/*
 * Runs sctpmd: opens and locks the state, starts (on first start: manufactures) the TPM, binds
 * the listeners, reports readiness (pidfile, sd_notify, and with `detach` the waiting parent),
 * serves until asked to stop, then shuts the TPM down orderly and saves its state.
 * Returns the process exit status: 0, or 1 with the reason already logged and printed.
 */
int daemon_run(const struct daemon_config *cfg);

#endif /* SCTPM_EMULATOR_DAEMON_H */
