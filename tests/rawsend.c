/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rawsend [--hangup] ADDR HEX [COUNT [TIMEOUT_MS]]: a test tool that speaks raw bytes to a socket.
 * With --hangup it shuts its sending side down after the bytes, as a client that vanishes would.
 * ADDR is tcp:PORT (on 127.0.0.1) or unix:PATH. Sends the bytes HEX, then reads until COUNT bytes
 * arrived (default 0: read nothing), the peer closed, or TIMEOUT_MS (default 5000) passed, and
 * prints what it read as lowercase hex. Exit status: 0 got COUNT bytes; 3 the peer closed first;
 * 4 timed out; 1 could not connect or send.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int main(int argc, char **argv)
{
    size_t hexlen, len = 0, want = 0, got = 0;
    unsigned char *buf, *in;
    int timeout = 5000, fd, status = 0, hangup = 0;

    if (argc > 1 && strcmp(argv[1], "--hangup") == 0) {
        hangup = 1;
        argv++;
        argc--;
    }
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: rawsend tcp:PORT|unix:PATH HEX [COUNT [TIMEOUT_MS]]\n");
        return 2;
    }
    if (argc > 3) {
        want = strtoul(argv[3], NULL, 10);
    }
    if (argc > 4) {
        timeout = atoi(argv[4]);
    }
    hexlen = strlen(argv[2]);
    buf = malloc(hexlen / 2 + 1);
    in = malloc(want + 1);
    for (size_t i = 0; i + 1 < hexlen; i += 2) {
        int hi = hexval(argv[2][i]), lo = hexval(argv[2][i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "rawsend: bad hex\n");
            return 2;
        }
        buf[len++] = (unsigned char)(hi << 4 | lo);
    }
    if (strncmp(argv[1], "tcp:", 4) == 0) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        a.sin_port = htons((uint16_t)atoi(argv[1] + 4));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            perror("rawsend: connect");
            return 1;
        }
    } else if (strncmp(argv[1], "unix:", 5) == 0) {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1] + 5);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            perror("rawsend: connect");
            return 1;
        }
    } else {
        fprintf(stderr, "rawsend: ADDR must be tcp:PORT or unix:PATH\n");
        return 2;
    }
    if (len > 0 && send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
        perror("rawsend: send");
        return 1;
    }
    if (hangup) {
        shutdown(fd, SHUT_WR);
    }
    while (got < want) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, timeout) <= 0) {
            status = 4;
            break;
        }
        n = recv(fd, in + got, want - got, 0);
        if (n <= 0) {
            status = 3;
            break;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < got; i++) {
        printf("%02x", in[i]);
    }
    printf("\n");
    close(fd);
    free(buf);
    free(in);
    return status;
}
