/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The emulator as the fuzz targets drive it: the process's one libtpms TPM on a throwaway state
 * directory, put back to the state it was manufactured in before every input, and sctpmd's
 * server, created for every input and fed through socketpairs (server_adopt, server_poll) as a
 * client would feed it, so that what one input leaves behind cannot change what the next does.
 */
#ifndef SCTPM_FUZZ_EMU_H
#define SCTPM_FUZZ_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "rm.h"

/*
 * Manufactures the TPM in a new directory under $TMPDIR (removed at exit) on the first call;
 * exits the process with a message when that fails. Later calls do nothing.
 */
void emu_init(void);

/*
 * Powers the TPM off and on again with its manufactured state, no volatile state, the default
 * buffer size and physical presence off. A target calls it at the end of every input, so that
 * an input after which the TPM cannot be started again fails itself (the process exits).
 */
void emu_reset_tpm(void);

/* The resource manager quotas sctpmd uses by default. */
extern const struct rm_config emu_rm_config;

/* How emu_session() sets the server up and connects to it. */
#define EMU_UNTRUSTED 0x01u /* connect as a TCP peer: platform operations are refused */
#define EMU_NO_RM     0x02u /* --no-rm: one TPM shared by all clients, unvirtualised */
#define EMU_PASS_FD   0x04u /* hand a data socket over the control channel (SET_DATAFD) */
#define EMU_SWTPM     0x08u /* the control channel speaks swtpm (else: decided per connection) */

/*
 * Creates a server, and sends `ctrl` on a control connection and then `data` on a data
 * connection (either may be empty), reading every reply, until the server has served all it can;
 * then closes the connections, destroys the server and resets the TPM.
 */
void emu_session(unsigned flags, const uint8_t *ctrl, size_t ctrl_len, const uint8_t *data,
                 size_t data_len);

#endif /* SCTPM_FUZZ_EMU_H */
