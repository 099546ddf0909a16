/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io.h"

/* Writes its buffer to a socket in 1-byte pieces, so the reader sees many short reads. */
struct dribble {
    int fd;
    const char *data;
    size_t len;
};

static void *dribbler(void *arg)
{
    struct dribble *d = arg;

    for (size_t i = 0; i < d->len; i++) {
        ck_assert_int_eq(write(d->fd, d->data + i, 1), 1);
        if (i % 64 == 0) {
            usleep(100);
        }
    }
    close(d->fd);
    return NULL;
}

START_TEST(test_read_full_short_reads)
{
    int sv[2];
    char buf[1000];
    char want[1000];
    pthread_t t;
    struct dribble d;

    for (size_t i = 0; i < sizeof(want); i++) {
        want[i] = (char)(i * 7);
    }
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    d = (struct dribble){sv[1], want, sizeof(want)};
    pthread_create(&t, NULL, dribbler, &d);
    ck_assert_int_eq(read_full(sv[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
    ck_assert_mem_eq(buf, want, sizeof(buf));
    pthread_join(t, NULL);
    close(sv[0]);
}
END_TEST

START_TEST(test_read_full_eof)
{
    int p[2];
    char buf[16];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "abc", 3), 3);
    close(p[1]);
    ck_assert_int_eq(read_full(p[0], buf, sizeof(buf)), 3);
    ck_assert_int_eq(read_full(p[0], buf, sizeof(buf)), 0);
    close(p[0]);
}
END_TEST

START_TEST(test_read_full_bad_fd)
{
    char buf[4];

    ck_assert_int_eq(read_full(-1, buf, sizeof(buf)), -EBADF);
}
END_TEST

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* A signal arriving while read() blocks must not end the read early. */
START_TEST(test_read_full_eintr)
{
    struct sigaction sa = {.sa_handler = on_alarm};
    int sv[2];
    char buf[8];
    pid_t child, parent = getpid();

    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read() really returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    child = fork();
    if (child == 0) {
        /* Signal the parent while it is blocked in read_full, then send the data. */
        close(sv[0]);
        usleep(30000);
        kill(parent, SIGUSR1);
        usleep(30000);
        _exit(write(sv[1], "12345678", 8) == 8 ? 0 : 1);
    }
    close(sv[1]);
    ck_assert_int_eq(read_full(sv[0], buf, sizeof(buf)), 8);
    ck_assert_mem_eq(buf, "12345678", 8);
    ck_assert_int_eq(alarms, 1);
    close(sv[0]);
}
END_TEST

START_TEST(test_write_full_large)
{
    int sv[2];
    size_t len = 1 << 20;
    char *data = malloc(len), *back = malloc(len);
    pid_t child;

    for (size_t i = 0; i < len; i++) {
        data[i] = (char)(i * 13);
    }
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    child = fork();
    if (child == 0) {
        int r;
        close(sv[0]);
        r = write_full(sv[1], data, len);
        free(data);
        free(back);
        _exit(r == 0 ? 0 : 1);
    }
    close(sv[1]);
    /* 1 MiB is far more than a socket buffer, so the writer must have looped on short writes. */
    ck_assert_int_eq(read_full(sv[0], back, len), (ssize_t)len);
    ck_assert_mem_eq(back, data, len);
    close(sv[0]);
    free(data);
    free(back);
}
END_TEST

START_TEST(test_write_full_peer_gone)
{
    int sv[2];
    char buf[4096] = {0};
    int r = 0;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    /* No SIGPIPE: the test process would die of it. */
    for (int i = 0; i < 64 && r == 0; i++) {
        r = write_full(sv[0], buf, sizeof(buf));
    }
    ck_assert_int_eq(r, -EPIPE);
    close(sv[0]);
}
END_TEST

/* The child closes what it was given from 3 up and keeps 0-2; the parent's copies stay open. */
START_TEST(test_close_from)
{
    int sv[2], hi, st = 0;
    pid_t pid;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    hi = fcntl(sv[0], F_DUPFD, 1000);
    ck_assert_int_ge(hi, 1000);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int bad = 0;
        close_from(3);
        bad |= fcntl(sv[0], F_GETFD) != -1 || errno != EBADF;
        bad |= fcntl(sv[1], F_GETFD) != -1 || errno != EBADF;
        bad |= fcntl(hi, F_GETFD) != -1 || errno != EBADF;
        bad |= fcntl(STDERR_FILENO, F_GETFD) == -1;
        _exit(bad);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert_int_ne(fcntl(hi, F_GETFD), -1);
    close(hi);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("full");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_read_full_short_reads);
    tcase_add_test(tc, test_read_full_eof);
    tcase_add_test(tc, test_read_full_bad_fd);
    tcase_add_test(tc, test_read_full_eintr);
    tcase_add_test(tc, test_write_full_large);
    tcase_add_test(tc, test_write_full_peer_gone);
    tcase_add_test(tc, test_close_from);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
