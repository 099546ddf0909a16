/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tpm: the one libtpms TPM 2.0 of this process.
 *
 * libtpms keeps its state in globals, so there is exactly one TPM per process and these functions
 * are not thread-safe: sctpmd calls them from its single event-loop thread only.
 *
 * Life cycle:
 *   tpm_start()   loads the permanent state from the store (or manufactures a fresh TPM when the
 *                 store has none), powers the TPM on and sends TPM2_Startup(CLEAR);
 *   tpm_execute() runs commands;
 *   tpm_stop()    sends TPM2_Shutdown(STATE), so the next start is orderly and the dictionary
 *                 attack counter does not climb, saves the state and powers off.
 * tpm_power_off()/tpm_power_on() are the raw steps, for platform signals and the swtpm control
 * channel's STOP/INIT.
 */
#ifndef SCTPM_EMULATOR_TPM_H
#define SCTPM_EMULATOR_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tcti.h>

#include "sctpm/rc.h"
#include "nvstore.h"

/* The largest command or response libtpms handles at its default buffer size. */
#define TPM_MAX_COMMAND 4096

enum tpm_startup { TPM_STARTUP_CLEAR, TPM_STARTUP_STATE, TPM_STARTUP_NONE };

/*
 * Starts the TPM on `store` (which must outlive the TPM). `*fresh` is set when no permanent state
 * existed, i.e. the TPM was just manufactured. A corrupt or undecryptable state is refused: the
 * error is returned with a sentence in `err`, and nothing is written to the store.
 */
enum sctpm_rc tpm_start(struct nvstore *store, int *fresh, char *err, size_t errlen);

/* Shuts down orderly (TPM2_Shutdown(STATE)) and powers off. Safe to call when not running. */
void tpm_stop(void);

/* Whether the TPM is powered on. */
int tpm_running(void);

/*
 * Executes one TPM command at `locality`. `cmd` may be modified. On return `*rsp` points to the
 * response (valid until the next call) of `*rsp_len` bytes. A TPM that is off answers
 * TPM_RC_FAILURE. Never fails otherwise: TPM errors are responses.
 */
void tpm_execute(uint8_t locality, uint8_t *cmd, size_t len, const uint8_t **rsp, size_t *rsp_len);

/*
 * The raw power steps. tpm_power_on() runs _TPM_Init on the stored state (deleting the volatile
 * state first if `delete_volatile`) and, unless `startup` is TPM_STARTUP_NONE, sends
 * TPM2_Startup. tpm_power_off() terminates libtpms without a TPM2_Shutdown (a power cut) unless
 * `orderly`.
 */
enum sctpm_rc tpm_power_on(int delete_volatile, enum tpm_startup startup, char *err, size_t errlen);
void tpm_power_off(int orderly);

/* Stores the volatile state (swtpm STORE_VOLATILE). */
enum sctpm_rc tpm_store_volatile(void);

/*
 * Copies of libtpms state blobs for GET/SET_STATEBLOB (type: 1 permanent, 2 volatile, 3 save).
 * `*data` (callee-allocated, free with free()) is NULL when the blob is empty, as the save state
 * is until TPM2_Shutdown(STATE).
 */
enum sctpm_rc tpm_get_state_blob(uint32_t type, uint8_t **data, size_t *len);
enum sctpm_rc tpm_set_state_blob(uint32_t type, const uint8_t *data, size_t len);

/* The tpm2-tss TCTI that executes in process, at locality 0 (for the daemon's own commands). */
TSS2_TCTI_CONTEXT *tpm_inproc_tcti(void);

/*
 * Sets libtpms' I/O buffer size (0 queries it) and returns the size in use; `min`/`max` receive
 * the supported range (swtpm SET_BUFFERSIZE). Only effective while the TPM is off.
 */
uint32_t tpm_buffer_size(uint32_t wanted, uint32_t *min, uint32_t *max);

/*
 * The TIS-level operations of the platform channel: the H-CRTM hash sequence (locality 4) and
 * the TPM established bit. Each returns a libtpms TPM_RESULT (0 on success). `locality` is the
 * locality the operation claims.
 */
uint32_t tpm_hash_start(void);
uint32_t tpm_hash_data(const uint8_t *data, size_t len);
uint32_t tpm_hash_end(void);
uint32_t tpm_established_get(int *established);
uint32_t tpm_established_reset(uint8_t locality);

/* Sets the physical-presence signal reported to libtpms. */
void tpm_set_physical_presence(int on);

/* libtpms' JSON description (swtpm GET_INFO); callee-allocated, free with free(). */
char *tpm_get_info(uint64_t flags);

#endif /* SCTPM_EMULATOR_TPM_H */
