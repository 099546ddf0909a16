/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * freeport [COUNT]: prints a TCP port P such that P .. P+COUNT-1 (default 2) can all be bound on
 * 127.0.0.1 right now. Ports are picked at random below the kernel's ephemeral range, so outgoing
 * connections do not take them between this check and the daemon's bind.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int bindable(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        return 0;
    }
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

int main(int argc, char **argv)
{
    int count = argc > 1 ? atoi(argv[1]) : 2;
    struct timespec ts;

    if (count < 1 || count > 16) {
        fprintf(stderr, "freeport: COUNT must be 1..16\n");
        return 2;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    srandom((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid() << 16));
    for (int tries = 0; tries < 1000; tries++) {
        int p = 20000 + (int)(random() % 12000);
        int ok = 1;
        for (int i = 0; i < count && ok; i++) {
            ok = bindable(p + i);
        }
        if (ok) {
            printf("%d\n", p);
            return 0;
        }
    }
    fprintf(stderr, "freeport: no free port range found\n");
    return 1;
}
