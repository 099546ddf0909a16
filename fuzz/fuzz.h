/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What every fuzz target implements, and a small reader that splits one input into the pieces a
 * target needs.
 *
 * Each fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput() (and, when it needs set-up,
 * LLVMFuzzerInitialize()). With --enable-fuzzing it is linked with libFuzzer's main; otherwise
 * with fuzz/replay.c, which runs every file (or every file in every directory) named on its
 * command line through it once. A target must not keep state between inputs that changes what
 * the next input does, or a crash found by a long run could not be reproduced from its input.
 */
#ifndef SCTPM_FUZZ_H
#define SCTPM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A cursor over the input. Reads past the end yield zeros and empty pieces, never an error. */
struct fuzz_in {
    const uint8_t *p;
    size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    uint8_t v = 0;

    if (in->left > 0) {
        v = *in->p++;
        in->left--;
    }
    return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
    uint16_t hi = fuzz_u8(in);

    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
    uint32_t hi = fuzz_u16(in);

    return hi << 16 | fuzz_u16(in);
}

/* The next `want` bytes (fewer at the end of the input); `*len` receives how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t want, size_t *len)
{
    const uint8_t *p = in->p;

    *len = want < in->left ? want : in->left;
    in->p += *len;
    in->left -= *len;
    return p;
}

/*
 * The bytes up to the next NUL (consumed) or the end of the input, as a NUL-terminated copy.
 * Callee-allocated: free with free(). NULL only when memory runs out.
 */
char *fuzz_str(struct fuzz_in *in);

/*
 * Sends the log lines of the code under test to /dev/null, at level debug so that their
 * formatting runs too. SCTPM_LOG and SCTPM_LOGFILE still apply, to watch a crash happen.
 */
void fuzz_quiet_logs(void);

/* Aborts with a message: for invariants a target checks (a wrong answer is a finding too). */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* SCTPM_FUZZ_H */
