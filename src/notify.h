/*
 * notify: the systemd notification protocol (sd_notify) without libsystemd:
 * datagrams "READY=1", "STATUS=…", "WATCHDOG=1" to $NOTIFY_SOCKET. Without
 * that variable (not under systemd) every call is a no-op.
 */
#ifndef SLOTD_NOTIFY_H
#define SLOTD_NOTIFY_H

#include <stdint.h>

struct notify {
    int      fd;                /* owned datagram socket, -1 when disabled */
    char     path[108];         /* the socket; '@' first for the abstract namespace */
    uint64_t watchdog_usec;     /* $WATCHDOG_USEC for this process, 0 if none */
};

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. 0, or -1 if the
 * socket cannot be created (then disabled). */
int notify_init(struct notify *n);

/* Sends one message ("READY=1\nSTATUS=routing"); 0, or -1. No-op (0)
 * when disabled. */
int notify_send(struct notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void notify_close(struct notify *n);

#endif
