/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ptybridge: a simulated TPM character device, without kernel modules.
 *   ptybridge SOCKET READYFILE
 * Opens a pseudo-terminal pair in raw mode: its slave /dev/pts/N is a real character device node
 * that tcti-device can open, write commands to and read responses from, as it would /dev/tpmrm0.
 * Commands written to the slave are relayed to sctpmd on the Unix socket SOCKET (mssim protocol,
 * command channel), and each response is written back in one write, as the kernel's TPM driver
 * returns it (tcti-device 3.2.1 reads the 10-byte header, then the rest in one read). Once ready,
 * the slave's path is written to READYFILE (atomically). One line per command goes to stderr, so a
 * test can see that the device path was taken. Runs until killed or sctpmd goes away.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define MAX_COMMAND 4096

static int read_exact(int fd, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_exact(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    static uint8_t cmd[9 + MAX_COMMAND], rsp[MAX_COMMAND];
    char slave[128], tmp[4200];
    struct termios tio;
    int master, keep, sock;
    FILE *f;

    if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: ptybridge SOCKET READYFILE\n");
        return 2;
    }
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
        ptsname_r(master, slave, sizeof(slave)) != 0) {
        perror("ptybridge: pty");
        return 1;
    }
    /*
     * Keep a slave descriptor of our own: without one, every client's close would hang up the
     * master. Raw mode makes the line discipline pass bytes through untouched (no echo, no
     * CR/NL translation, no signal or flow-control characters).
     */
    keep = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (keep < 0 || tcgetattr(keep, &tio) != 0) {
        perror("ptybridge: slave");
        return 1;
    }
    cfmakeraw(&tio);
    if (tcsetattr(keep, TCSANOW, &tio) != 0) {
        perror("ptybridge: tcsetattr");
        return 1;
    }
    strcpy(sa.sun_path, argv[1]);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("ptybridge: connect");
        return 1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", slave) < 0 || fclose(f) != 0 || rename(tmp, argv[2]) != 0) {
        perror("ptybridge: ready file");
        return 1;
    }
    fprintf(stderr, "ptybridge: %s relays to %s\n", slave, argv[1]);
    for (;;) {
        uint8_t *c = cmd + 9, trailer[4];
        uint32_t size, rsize;
        if (read_exact(master, c, 10) != 0) {
            perror("ptybridge: read from the pty");
            return 1;
        }
        size = be32(c + 2);
        if (size < 10 || size > MAX_COMMAND || read_exact(master, c + 10, size - 10) != 0) {
            fprintf(stderr, "ptybridge: bad command size %u\n", size);
            return 1;
        }
        /* mssim TPM_SEND_COMMAND: u32 8, u8 locality, u32 size, command. */
        put_be32(cmd, 8);
        cmd[4] = 0;
        put_be32(cmd + 5, size);
        if (write_exact(sock, cmd, 9 + size) != 0 || read_exact(sock, rsp, 4) != 0) {
            fprintf(stderr, "ptybridge: sctpmd went away\n");
            return 1;
        }
        rsize = be32(rsp);
        if (rsize < 10 || rsize > sizeof(rsp) || read_exact(sock, rsp, rsize) != 0 ||
            read_exact(sock, trailer, 4) != 0) {
            fprintf(stderr, "ptybridge: bad response from sctpmd\n");
            return 1;
        }
        fprintf(stderr, "ptybridge: command 0x%08x (%u bytes) -> 0x%08x (%u bytes)\n", be32(c + 6),
                size, be32(rsp + 6), rsize);
        if (write_exact(master, rsp, rsize) != 0) {
            perror("ptybridge: write to the pty");
            return 1;
        }
    }
}
