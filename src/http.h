/*
 * http: slotd's HTTP endpoints on libevent's evhttp, one route per callback:
 *   /metrics   Prometheus text            /status   JSON of the whole picture
 *   /healthz   200 routing, 503 + reason  /         the dashboard page
 */
#ifndef SLOTD_HTTP_H
#define SLOTD_HTTP_H

struct event_base;
struct view;
struct http;

/* Fills *v with the current picture (the pointers stay valid until the
 * callback returns). */
typedef void http_view_fn(struct view *v, void *arg);

/* Listens on "host:port" (IPv6 as "[::1]:9464"). NULL with a log line if
 * the address cannot be bound. */
struct http *http_create(struct event_base *base, const char *listen,
                         http_view_fn *fill, void *arg);
void http_destroy(struct http *h);

#endif
