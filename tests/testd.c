/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * testd: a stand-in daemon for testing the test harness itself.
 *   testd PORT DELAY_MS [--detach PIDFILE]
 * Waits DELAY_MS, then listens on 127.0.0.1:PORT and accepts (and closes) connections until
 * killed. With --detach it forks into a new session, as real daemons do, writes its pid to
 * PIDFILE and the parent exits at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    int fd, one = 1;

    if (argc != 3 && !(argc == 5 && strcmp(argv[3], "--detach") == 0)) {
        fprintf(stderr, "usage: testd PORT DELAY_MS [--detach PIDFILE]\n");
        return 2;
    }
    if (argc == 5) {
        pid_t pid = fork();
        FILE *f;
        if (pid != 0) {
            return pid < 0;
        }
        setsid();
        f = fopen(argv[4], "w");
        if (f == NULL) {
            return 1;
        }
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    usleep((useconds_t)atoi(argv[2]) * 1000);
    a.sin_port = htons((uint16_t)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0) {
        perror("testd");
        return 1;
    }
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c >= 0) {
            close(c);
        }
    }
}
