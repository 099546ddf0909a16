/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nvstore: the state directory of one sctpmd instance.
 *
 * Each named blob (libtpms names them "permall", "volatilestate", "savestate") lives in its own
 * file DIR/tpm2-<name>. A file is never modified in place: a new version is written to a temporary
 * file, flushed to disk, renamed over the old one, and the directory is flushed, so that after a
 * crash or power loss the file holds either the old or the new version, never a mix. With fsync
 * off (throwaway CI states) the rename still makes a kill -9 safe; only power loss can then lose
 * the newest write.
 *
 * Every file carries an integrity check (SHA-256, or the AES-256-GCM tag when a key is given), so
 * a truncated or corrupt file is detected and refused; nvstore never deletes or rewrites a file it
 * could not read. An exclusive lock on DIR/.lock, held while the store is open, keeps two daemons
 * from sharing one directory.
 *
 * File layout (all integers big-endian):
 *   0  magic "SCTPMST1"              8 bytes
 *   8  flags (bit 0: encrypted)      u32
 *  12  payload length                u32
 *  16  plain:     payload, then SHA-256 over bytes 0..end of payload
 *      encrypted: key check (16), nonce (12), ciphertext, GCM tag (16); bytes 0..15 are the
 *                 additional authenticated data
 */
#ifndef SCTPM_NVSTORE_H
#define SCTPM_NVSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "sctpm/rc.h"

#define NVSTORE_KEY_SIZE 32
/* The largest blob accepted, far above libtpms' permanent state (tens of KiB). */
#define NVSTORE_MAX_BLOB (4u << 20)

struct nvstore;

/* Durability of each save: NVSTORE_FSYNC_ALWAYS flushes file and directory before returning. */
enum nvstore_fsync { NVSTORE_FSYNC_ALWAYS, NVSTORE_FSYNC_NEVER };

/*
 * Opens (creating it with mode 0700 if needed) the state directory `dir` and takes its lock.
 * `key` is NULL or NVSTORE_KEY_SIZE bytes (copied; the caller may wipe its copy). On failure
 * returns SCTPM_RC_BUSY (another process holds the lock), SCTPM_RC_IO or SCTPM_RC_PERMISSION
 * with a sentence in `err`.
 */
enum sctpm_rc nvstore_open(const char *dir, const uint8_t *key, enum nvstore_fsync fsync_mode,
                           struct nvstore **out, char *err, size_t errlen);

/* Releases the lock and wipes the key. NULL is a no-op. */
void nvstore_close(struct nvstore *st);

/*
 * Loads blob `name`. On success `*data` (callee-allocated, free with free()) holds `*len` bytes.
 * Returns SCTPM_RC_NOT_FOUND when there is no such file, SCTPM_RC_CORRUPT when the file is
 * truncated or fails its check, SCTPM_RC_BAD_KEY when the key is wrong or missing (or given for a
 * plain file), SCTPM_RC_UNSUPPORTED for a future format, SCTPM_RC_IO otherwise. The reason is
 * available from nvstore_error().
 */
enum sctpm_rc nvstore_load(struct nvstore *st, const char *name, uint8_t **data, size_t *len);

/* Saves blob `name` crash-safely (see above). */
enum sctpm_rc nvstore_save(struct nvstore *st, const char *name, const uint8_t *data, size_t len);

/* Deletes blob `name`; a missing file is not an error. */
enum sctpm_rc nvstore_delete(struct nvstore *st, const char *name);

/* The directory path, and the last error as a sentence (empty when none). */
const char *nvstore_dir(const struct nvstore *st);
const char *nvstore_error(const struct nvstore *st);

/* Writes the path of blob `name` to `buf`; returns 0, or -1 when it does not fit. */
int nvstore_path(const struct nvstore *st, const char *name, char *buf, size_t size);

/*
 * Reads a state key file: 32 raw bytes, or 64 hexadecimal digits optionally followed by a newline.
 * Returns SCTPM_RC_BAD_FORMAT (wrong size or content) or SCTPM_RC_IO with a sentence in `err`.
 */
enum sctpm_rc nvstore_read_key_file(const char *path, uint8_t key[NVSTORE_KEY_SIZE], char *err,
                                    size_t errlen);

#endif /* SCTPM_NVSTORE_H */
