/*
 * httpgate: the door of slotd's HTTP server. evhttp parses requests; the
 * gate decides which connections it gets and for how long: it binds the
 * listening socket (so a failure names the address and the reason), admits
 * at most a fixed number of connections at once and closes the rest as they
 * arrive, closes every connection a fixed time after it was accepted, and
 * pauses accepting, saying so once per episode, while accept() fails.
 */
#ifndef SLOTD_HTTPGATE_H
#define SLOTD_HTTPGATE_H

struct event_base;
struct evhttp;
struct httpgate;

struct httpgate_limits {
    int max_connections;    /* admitted at once; fewer if open files are too few */
    int deadline_ms;        /* a connection is closed this long after it was accepted */
};

/*
 * Listens on "host:port" (IPv6 as "[::1]:9464") and hands evh the
 * connections it admits. evh must have no listener of its own, and must be
 * freed (evhttp_free) before httpgate_close. NULL with a log line naming
 * the address and the reason if it cannot listen, or on ENOMEM.
 */
struct httpgate *httpgate_open(struct event_base *base, struct evhttp *evh, const char *listen,
                               const struct httpgate_limits *lim)
    __attribute__((warn_unused_result));

/* Closes the listening socket and frees the gate; accepts NULL. */
void httpgate_close(struct httpgate *g);

#endif
