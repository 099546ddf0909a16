/* SPDX-License-Identifier: BSD-2-Clause */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "io.h"

ssize_t read_full(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t done = 0;

    while (done < len) {
        ssize_t n = read(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

int write_full(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    struct stat st;
    int is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);

    while (len > 0) {
        /* On sockets use send(MSG_NOSIGNAL): a vanished peer is an error, not a SIGPIPE. */
        ssize_t n = is_socket ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void close_from(int lowfd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0u) == 0) {
        return;
    }
#endif
    /* Kernels before 5.9 have no close_range: close one by one, up to the usual hard limit. */
    for (int fd = lowfd; fd < 65536; fd++) {
        (void)close(fd);
    }
}
