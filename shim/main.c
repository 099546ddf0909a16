/* SPDX-License-Identifier: BSD-2-Clause */
/* sctpm: the device identity held in a TPM. Everything is in cli.c and libsctpm. */
#include "config.h"

#include <signal.h>

#include "cli.h"

int main(int argc, char **argv)
{
    /*
     * tpm2-tss's socket TCTIs write with plain send(): an emulator that dies between two
     * commands would otherwise kill us with SIGPIPE (exit 141) instead of the command failing
     * with its TPM error and exit status. The library leaves the disposition to the program.
     */
    signal(SIGPIPE, SIG_IGN);
    return cli_main(argc, argv);
}
