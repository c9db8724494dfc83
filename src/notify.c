/*
 * notify: sd_notify by hand. The protocol is one datagram per message on a
 * unix socket whose path systemd passes in $NOTIFY_SOCKET.
 */
#include "notify.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_init(struct notify *n)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    const char *wd = getenv("WATCHDOG_USEC"), *wpid = getenv("WATCHDOG_PID");

    n->fd = -1;
    n->path[0] = '\0';
    n->watchdog_usec = 0;
    /* The watchdog is ours unless WATCHDOG_PID names another process. */
    if (wd != NULL && (wpid == NULL || strtol(wpid, NULL, 10) == (long)getpid()))
        n->watchdog_usec = strtoull(wd, NULL, 10);
    if (sock == NULL || sock[0] == '\0')
        return 0;
    if (strlen(sock) >= sizeof n->path || (sock[0] != '/' && sock[0] != '@'))
        return -1;
    strcpy(n->path, sock);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    return n->fd < 0 ? -1 : 0;
}

int notify_send(struct notify *n, const char *fmt, ...)
{
    struct sockaddr_un a;
    char msg[1024];
    va_list ap;
    socklen_t len;

    if (n->fd < 0)
        return 0;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        return -1;
    if ((size_t)m >= sizeof msg)
        m = sizeof msg - 1;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t plen = strlen(n->path);
    memcpy(a.sun_path, n->path, plen);
    if (a.sun_path[0] == '@')
        a.sun_path[0] = '\0';       /* abstract: no terminating NUL counted */
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (n->path[0] == '/'));
    return sendto(n->fd, msg, (size_t)m, MSG_NOSIGNAL, (struct sockaddr *)&a, len) == m ? 0 : -1;
}

void notify_close(struct notify *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}
