/* SPDX-License-Identifier: BSD-2-Clause */
/* sctpm: the device identity held in a TPM. Everything is in cli.c and libsctpm. */
#include "config.h"

#include "cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
