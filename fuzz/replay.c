/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The main() of a fuzz target built without libFuzzer: runs every file named on the command line,
 * and every regular file in every directory named there (not recursively, in name order), through
 * LLVMFuzzerTestOneInput() once. `make check` uses it to replay the seed corpora and the inputs
 * that once crashed, with any compiler, under valgrind too. A crash is the test's failure; the
 * exit status is 1 when a file cannot be read.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* libFuzzer limits inputs by flag; a replayed file gets the same generous bound. */
#define REPLAY_MAX (4u << 20)

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int replay_file(const char *path, unsigned long *count)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n;
    int rc = 1;

    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    buf = malloc(REPLAY_MAX + 1);
    if (buf == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        goto out;
    }
    n = fread(buf, 1, REPLAY_MAX + 1, f);
    if (ferror(f) || n > REPLAY_MAX) {
        fprintf(stderr, "replay: cannot read %s (or it is over %u bytes)\n", path, REPLAY_MAX);
        goto out;
    }
    fclose(f);
    f = NULL;
    /* An exact-size copy, so that ASan or valgrind see a read past the input's end. */
    {
        uint8_t *exact = malloc(n > 0 ? n : 1);
        if (exact == NULL) {
            fprintf(stderr, "replay: out of memory\n");
            goto out;
        }
        memcpy(exact, buf, n);
        free(buf);
        buf = exact;
    }
    LLVMFuzzerTestOneInput(buf, n);
    (*count)++;
    rc = 0;
out:
    if (f != NULL) {
        fclose(f);
    }
    free(buf);
    return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, unsigned long *count)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name), rc = 0;

    if (n < 0) {
        fprintf(stderr, "replay: cannot read directory %s: %s\n", dir, strerror(errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;

        if (names[i]->d_name[0] != '.' &&
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
            stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            rc |= replay_file(path, count);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned long count = 0;
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            fprintf(stderr,
                    "%s: this build replays files and takes no options (%s); configure with "
                    "--enable-fuzzing CC=clang for libFuzzer\n",
                    argv[0], argv[i]);
            return 2;
        }
    }
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat sb;

        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            rc = 1;
        } else if (S_ISDIR(sb.st_mode)) {
            rc |= replay_dir(argv[i], &count);
        } else {
            rc |= replay_file(argv[i], &count);
        }
    }
    printf("%s: replayed %lu input(s)\n", argv[0], count);
    return rc;
}
