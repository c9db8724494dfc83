/*
 * http: slotd's HTTP endpoints on libevent's evhttp, one route per callback:
 *   /metrics   Prometheus text            /status   JSON of the whole picture
 *   /healthz   200 routing, 503 + reason  /         the dashboard page
 * Which connections reach evhttp, and for how long, is httpgate's part.
 */
#ifndef SLOTD_HTTP_H
#define SLOTD_HTTP_H

struct event_base;
struct view;
struct http;

/* Fills *v with the current picture (the pointers stay valid until the
 * callback returns). */
typedef void http_view_fn(struct view *v, void *arg);

/* What a client may ask of the server (see docs/configuration.md, http.*). */
struct http_limits {
    int max_connections;        /* open at once; more are closed as they arrive */
    int timeout_ms;             /* silence while reading a request or writing a reply */
    int request_deadline_ms;    /* a connection's whole life: request and reply */
    int max_header_bytes;       /* request line and headers together; also the body */
};

/* Listens on "host:port" (IPv6 as "[::1]:9464"), one request per
 * connection. NULL with a log line naming the address and the reason if it
 * cannot listen, or on ENOMEM. */
struct http *http_create(struct event_base *base, const char *listen,
                         const struct http_limits *lim, http_view_fn *fill, void *arg);
void http_destroy(struct http *h);

#endif
