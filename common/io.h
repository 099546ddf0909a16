/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Blocking I/O that finishes the job: retries on EINTR and short counts.
 */
#ifndef SCTPM_IO_H
#define SCTPM_IO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads exactly `len` bytes unless end-of-file comes first. Returns the number of bytes read
 * (less than `len` only at end-of-file) or a negative errno. EAGAIN on a non-blocking descriptor
 * is returned as -EAGAIN after whatever was read is lost to the caller, so use it on blocking
 * descriptors only.
 */
ssize_t read_full(int fd, void *buf, size_t len);

/* Writes all `len` bytes. Returns 0 or a negative errno (-EPIPE when the peer went away). */
int write_full(int fd, const void *buf, size_t len);

/*
 * Closes every descriptor from `lowfd` up, as a child process does before it execs or exits:
 * what it inherited is not its own to keep, and a checker (valgrind --track-fds) would report it.
 * Async-signal-safe: fit for a child forked by a process that may have threads.
 */
void close_from(int lowfd);

#endif /* SCTPM_IO_H */
