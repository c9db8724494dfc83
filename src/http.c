/*
 * http: thin adapter from evhttp requests to the pure renderers; httpgate
 * stands in front of it.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "dashboard.h"
#include "httpgate.h"
#include "log.h"
#include "slotmap.h"
#include "view.h"

struct http {
    struct evhttp   *evh;       /* owned */
    struct httpgate *gate;      /* owned: which connections evh gets, and for how long */
    http_view_fn    *fill;
    void            *arg;       /* (ref) */
};

static void on_metrics(struct evhttp_request *req, void *arg);
static void on_status(struct evhttp_request *req, void *arg);
static void on_healthz(struct evhttp_request *req, void *arg);
static void on_other(struct evhttp_request *req, void *arg);

static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *type, const char *body, size_t len)
{
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    /* One request per connection: an idle kept-alive connection would hold
     * one of the http.max_connections places, and http.request_deadline_ms
     * counts from the connection's start. */
    evhttp_add_header(h, "Connection", "close");
    if (buf == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(buf, body, len);
    evhttp_send_reply(req, code, reason, buf);
    evbuffer_free(buf);
}

static int get_only(struct evhttp_request *req)
{
    enum evhttp_cmd_type c = evhttp_request_get_command(req);
    if (c == EVHTTP_REQ_GET || c == EVHTTP_REQ_HEAD)
        return 1;
    evhttp_send_error(req, 405, "only GET");
    return 0;
}

typedef char *render_fn(const struct view *v, size_t *len);

/* A document rendered from the current view. */
static void serve(struct evhttp_request *req, struct http *h, render_fn *render, const char *type)
{
    struct view v;
    size_t len;
    if (!get_only(req))
        return;
    h->fill(&v, h->arg);
    char *text = render(&v, &len);
    if (text == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    reply(req, 200, "OK", type, text, len);
    free(text);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    serve(req, arg, metrics_render, "text/plain; version=0.0.4; charset=utf-8");
}

static void on_status(struct evhttp_request *req, void *arg)
{
    serve(req, arg, status_render, "application/json");
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    struct http *h = arg;
    struct view v;
    char body[512];
    if (!get_only(req))
        return;
    h->fill(&v, h->arg);
    if (v.health == NULL) {
        int n = snprintf(body, sizeof body, "ok: active, routing, %u workers, epoch %llu,"
                         " leader epoch %llu\n", v.map->nworkers, (unsigned long long)v.epoch,
                         (unsigned long long)v.lease.epoch);
        reply(req, 200, "OK", "text/plain", body, (size_t)n);
    } else if (v.redis_up && v.lease.role == LEASE_STANDBY) {
        /* A standby is healthy: it takes over when the lease lapses. */
        int n = snprintf(body, sizeof body, "ok: standby, the lease is held by %.200s (leader"
                         " epoch %llu, %lld ms left)\n", v.lease.holder[0] ? v.lease.holder : "nobody",
                         (unsigned long long)v.lease.epoch, (long long)v.lease.ttl_ms);
        reply(req, 200, "OK", "text/plain", body, (size_t)n);
    } else {
        int n = snprintf(body, sizeof body, "not routing: %s\n", v.health);
        reply(req, 503, "Service Unavailable", "text/plain", body, (size_t)n);
    }
}

static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/") == 0 || strncmp(uri, "/?", 2) == 0 || strcmp(uri, "/index.html") == 0) {
        if (get_only(req))
            reply(req, 200, "OK", "text/html; charset=utf-8", dashboard_html, strlen(dashboard_html));
        return;
    }
    evhttp_send_error(req, 404, "not found: try /, /metrics, /status or /healthz");
}

struct http *http_create(struct event_base *base, const char *listen,
                         const struct http_limits *lim, http_view_fn *fill, void *arg)
{
    struct http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        log_error("http: out of memory");
        return NULL;
    }
    h->fill = fill;
    h->arg = arg;
    h->evh = evhttp_new(base);
    if (h->evh == NULL) {
        log_error("http: out of memory");
        http_destroy(h);
        return NULL;
    }
    /* evhttp's own limits: silence per read or write; the request line and
     * the headers are counted together (2.1 checks the line against the same
     * size while it is still unterminated, so a 20 MB line is refused after
     * the first few kilobytes); a body, which no route reads, gets as much. */
    struct timeval tv = { lim->timeout_ms / 1000, (lim->timeout_ms % 1000) * 1000 };
    evhttp_set_timeout_tv(h->evh, &tv);
    evhttp_set_max_headers_size(h->evh, lim->max_header_bytes);
    evhttp_set_max_body_size(h->evh, lim->max_header_bytes);
    evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(h->evh, "/metrics", on_metrics, h);
    evhttp_set_cb(h->evh, "/status", on_status, h);
    evhttp_set_cb(h->evh, "/healthz", on_healthz, h);
    evhttp_set_gencb(h->evh, on_other, h);
    struct httpgate_limits gl = { lim->max_connections, lim->request_deadline_ms };
    h->gate = httpgate_open(base, h->evh, listen, &gl);
    if (h->gate == NULL) {
        http_destroy(h);
        return NULL;
    }
    log_info("http: serving /metrics, /status, /healthz and the dashboard on %s", listen);
    return h;
}

void http_destroy(struct http *h)
{
    if (h == NULL)
        return;
    /* evhttp first: closing its connections calls into the gate. */
    if (h->evh)
        evhttp_free(h->evh);
    httpgate_close(h->gate);
    free(h);
}
