/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The sctpm-hub commands. main.c parses the command line into struct hub_cli and calls one of
 * these; they use libhub and print results. Each returns the process exit status: 0 success,
 * 1 failure (reported on stderr), 2 usage error.
 */
#ifndef SCTPM_HUB_CLI_PRIV_H
#define SCTPM_HUB_CLI_PRIV_H

#include <stdint.h>

#include "server-priv.h"

#define HUB_DEFAULT_HOSTNAME "sctpm-hub.local"
#define HUB_DB_NAME          "hub.db"
#define HUB_DEFAULT_C2D_TTL  3600

/* A --property NAME=VALUE list for c2d send. */
#define HUB_CLI_MAX_PROPS 64

struct hub_cli {
    const char *data_dir;
    const char *hostname; /* NULL: the stored one, or the default */
    struct hub_server_config server;

    /* Command arguments. */
    const char *device_id;
    const char *body;
    const char *primary_key; /* base64, for device add */
    const char *secondary_key;
    int disabled;
    int follow;
    int json;
    int64_t after_seq;
    unsigned ttl_s;
    const char *message_id;
    const char *correlation_id;
    const char *content_type;
    const char *content_encoding;
    const char *user_id;
    const char *ack;
    const char *props[HUB_CLI_MAX_PROPS];
    unsigned nprops;
};

int hub_cli_serve(const struct hub_cli *o);
int hub_cli_device_add(const struct hub_cli *o);
int hub_cli_device_list(const struct hub_cli *o);
int hub_cli_device_show(const struct hub_cli *o);
int hub_cli_device_remove(const struct hub_cli *o);
int hub_cli_device_enable(const struct hub_cli *o, int enabled);
int hub_cli_messages(const struct hub_cli *o);
int hub_cli_c2d_send(const struct hub_cli *o);
int hub_cli_c2d_list(const struct hub_cli *o);
int hub_cli_token(const struct hub_cli *o);

#endif /* SCTPM_HUB_CLI_PRIV_H */
