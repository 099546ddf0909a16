/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * select's pure parts (options, paths, lists), separate from the parts that open devices,
 * connect and start daemons, so that tests/unit/check_select.c can test them without any of that.
 */
#ifndef SCTPM_SHIM_SELECT_PRIV_H
#define SCTPM_SHIM_SELECT_PRIV_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#define SELECT_DEFAULT_DEVICES    "/dev/tpmrm0:/dev/tpm0"
#define SELECT_SYSTEM_SOCKET      "/run/sctpm/sctpmd.sock"
#define SELECT_SYSTEM_RUNTIME_DIR "/run/sctpm"
#define SELECT_SYSTEM_STATE_DIR   "/var/lib/sctpm"
#define SELECT_DEFAULT_PORT       2321
#define SELECT_DEFAULT_IDLE_EXIT  600
/* sun_path is 108 bytes; sctpmd also binds PATH.ctrl, so PATH may have at most 102. */
#define SELECT_SOCKET_MAX 102

struct select_opts {
    char devices[1024];                        /* colon-separated device nodes; "" tries none */
    char system_socket[SELECT_SOCKET_MAX + 1]; /* "" looks for no system sctpmd */
    unsigned port;                             /* localhost simulator port; 0 tries none */
    int autostart;         /* start a per-user sctpmd when nothing else answers */
    unsigned idle_exit;    /* --idle-exit of that sctpmd, seconds; 0 = never */
    char sctpmd[PATH_MAX]; /* the sctpmd binary to start */
};

/* Where the per-user sctpmd lives; see select_paths_compute(). */
struct select_paths {
    char runtime_dir[PATH_MAX];
    char state_dir[PATH_MAX];
    char socket[SELECT_SOCKET_MAX + 1];
    char lock[PATH_MAX]; /* flock'd while a client checks for and starts the daemon */
    char pidfile[PATH_MAX];
    char log[PATH_MAX];
    int system; /* root's system layout (/run/sctpm, /var/lib/sctpm) */
};

/*
 * Fills `o` with the defaults (`sctpmd` is the binary to start unless SCTPM_SCTPMD names
 * another), then applies the environment: SCTPM_TPM_DEVICES, SCTPM_SYSTEM_SOCKET,
 * SCTPM_MSSIM_PORT, SCTPM_AUTOSTART, SCTPM_IDLE_EXIT, SCTPM_SCTPMD.
 * Returns 0, or -1 with a sentence in `err` naming the bad variable.
 */
int select_opts_init(struct select_opts *o, const char *sctpmd, char *err, size_t errlen);

/*
 * Applies the options of an "sctpm:OPTIONS" configuration on top: comma-separated key=value
 * items, keys devices, port, autostart, idle-exit. NULL or "" changes nothing.
 * Returns 0, or -1 with a sentence in `err` (nothing reliable is left in `o` then).
 */
int select_opts_parse(struct select_opts *o, const char *options, char *err, size_t errlen);

/*
 * Returns 1 when `conf` asks for the sctpm order: NULL, "", "sctpm" or "sctpm:OPTIONS"; then
 * *options points at OPTIONS ("" when there are none). Returns 0 for any other configuration.
 */
int select_conf_is_sctpm(const char *conf, const char **options);

/*
 * Computes the per-user layout from the effective uid and the environment values (NULL when
 * unset; relative XDG paths are ignored, as the XDG base directory specification says):
 *   state:   $XDG_STATE_HOME/sctpm; else /var/lib/sctpm for root; else $HOME/.local/state/sctpm
 *   runtime: root without XDG_STATE_HOME: /run/sctpm (every root process, with or without a
 *            login session, shares the system's TPM); else $XDG_RUNTIME_DIR/sctpm; else the
 *            state directory (as gpg-agent falls back to ~/.gnupg)
 * and in the runtime directory sctpmd.sock, sctpmd.lock, sctpmd.pid and sctpmd.log.
 * Returns 0, or -1 with a sentence in `err` (no usable home, a socket path that is too long).
 */
int select_paths_compute(struct select_paths *p, uid_t uid, const char *xdg_runtime_dir,
                         const char *xdg_state_home, const char *home, char *err, size_t errlen);

/*
 * Iterates a colon-separated list: copies the next non-empty item after *pos into `item` and
 * advances *pos. Returns 1 for an item, 0 at the end, -1 for an item longer than itemlen - 1
 * (skipped; *pos is advanced past it).
 */
int select_list_next(const char **pos, char *item, size_t itemlen);

/*
 * Makes sure `dir` exists (creating it and missing parents with mode 0700), is a directory (not
 * a symlink), belongs to `uid` and is writable by nobody else. Returns 0, or -1 with a sentence.
 */
int select_private_dir(const char *dir, uid_t uid, char *err, size_t errlen);

#endif /* SCTPM_SHIM_SELECT_PRIV_H */
