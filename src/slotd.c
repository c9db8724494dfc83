/*
 * slotd: the dispatcher daemon's entry point. Parses the command line,
 * loads the configuration, wires the modules to one event loop, and tears
 * them down in reverse order. Signals arrive through libevent, never in a
 * raw handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "conn.h"
#include "clock.h"
#include "ctx.h"
#include "dispatch.h"
#include "forward.h"
#include "keys.h"
#include "lease.h"
#include "log.h"
#include "gauges.h"
#include "http.h"
#include "members.h"
#include "notify.h"
#include "slotmap.h"
#include "view.h"

#ifndef SLOTD_VERSION
#define SLOTD_VERSION "dev"
#endif

#define EXIT_CONFIG 78          /* EX_CONFIG */
#define STOP_GRACE_MS 900       /* SIGTERM: exit within a second */

static void on_main_up(struct conn *c, void *arg);
static void on_main_down(struct conn *c, void *arg);
static void on_wait_up(struct conn *c, void *arg);
static void on_wrong(struct conn *c, void *arg);
static void on_main_fail(struct conn *c, void *arg);
static void on_wait_down(struct conn *c, void *arg);
static void on_sigterm(evutil_socket_t sig, short what, void *arg);
static void on_libevent_log(int severity, const char *msg);
static void on_sighup(evutil_socket_t sig, short what, void *arg);
static void on_stop_timer(evutil_socket_t fd, short what, void *arg);
static void on_sigusr(evutil_socket_t sig, short what, void *arg);
static void on_status_timer(evutil_socket_t fd, short what, void *arg);
static void fill_view(struct view *v, void *arg);

static void usage(FILE *out)
{
    fprintf(out,
            "usage: slotd -c FILE [-s SHARD]  run in the foreground with config FILE (and, for\n"
            "                            a namespace of several shards, serve shard SHARD)\n"
            "       slotd -u NAME[:SHARD]  the same with $SLOTD_CONFIG_DIR/NAME.yaml (default\n"
            "                            /etc/slotd/NAME.yaml): what slotd@NAME[:SHARD] runs\n"
            "       slotd -t -c FILE     check FILE and exit (0 valid, 78 invalid)\n"
            "       slotd -V             print the version\n"
            "       slotd -h             this help\n"
            "Signals: SIGTERM/SIGINT stop after the transaction in flight; SIGHUP reloads FILE.\n"
            "Docs: docs/configuration.md, docs/protocol.md, docs/operations.md\n");
}

static void exit_loop(struct slotd *sd)
{
    event_base_loopexit(sd->base, NULL);
}

/* events.idle: a stopping slotd exits once nothing is in flight, having
 * released its lease so that a standby takes over at once. */
static void on_idle(struct slotd *sd)
{
    if (!sd->stopping || sd->releasing || dispatch_busy(sd->dispatch) ||
        members_busy(sd->members))
        return;
    sd->releasing = 1;
    lease_release(sd->lease, exit_loop);
}

/* Why slotd is not routing, or NULL when it is. */
static const char *not_routing(const struct slotd *sd)
{
    if (sd->main.state != CONN_UP)
        return "Redis unreachable";
    if (lease_role(sd->lease) != LEASE_ACTIVE)
        return "standing by: another slotd holds the lease";
    return dispatch_hold_reason(sd->dispatch);
}

static void fill_view(struct view *v, void *arg)
{
    struct slotd *sd = arg;
    const struct table *t = members_table(sd->members);
    memset(v, 0, sizeof *v);
    v->version = SLOTD_VERSION;
    v->ns = sd->conf.ns;
    v->tag = sd->keys.tag;
    v->shard = sd->keys.shard;
    v->nshards = sd->keys.nshards;
    v->intake_key = sd->keys.intake;
    v->stats = &sd->stats;
    v->map = &t->map;
    v->fences = &t->fences;
    v->gauges = sd->gauges;
    v->epoch = t->epoch;
    v->redis_up = sd->main.state == CONN_UP;
    v->reconnects = sd->main.reconnects + sd->wait.reconnects;
    v->timeouts = sd->main.timeouts + sd->wait.timeouts + sd->master.ask.timeouts +
                  sd->master.sub.timeouts;
    v->master = &sd->master;
    v->forwarded = forward_count(sd->forward);
    v->slot = sd->master.slot;
    for (int k = 0; k < CLUSTER_REPLY_COUNT; k++)
        v->cluster[k] = sd->main.cluster[k] + sd->wait.cluster[k];
    forward_add_cluster_replies(sd->forward, v->cluster);
    master_addr(&sd->master, v->master_addr, sizeof v->master_addr);
    v->health = not_routing(sd);
    v->uptime_s = (double)(clock_mono_ms() - sd->started_ms) / 1000.0;
    v->heartbeat_ttl_ms = sd->conf.workers.heartbeat_ttl_ms;
    lease_fill_view(sd->lease, &v->lease);
}

static void send_status(struct slotd *sd)
{
    const struct table *t = members_table(sd->members);
    const char *why = not_routing(sd);
    notify_send(sd->notify, "STATUS=%s%s: %u workers, epoch %llu, %llu routed, %.0f/s",
                why ? "not routing: " : "routing", why ? why : "", t->map.nworkers,
                (unsigned long long)t->epoch, (unsigned long long)sd->stats.routed,
                gauges_rate(sd->gauges, 10));
}

/* Started: systemd is told once, whether this slotd routes or stands by. */
static void ready(struct slotd *sd, const char *how)
{
    if (!sd->ready) {
        sd->ready = 1;
        notify_send(sd->notify, "READY=1");
        log_info("ready: %s", how);
    }
    send_status(sd);
}

/* events.routing: the table is loaded, dispatch routes. */
static void on_routing(struct slotd *sd)
{
    ready(sd, "routing");
    forward_kick(sd->forward);      /* what waited to be forwarded while standing by */
}

/* events.role: the lease was taken (route and change ownership) or lost
 * (stand by: neither). Down is the main connection's, handled there. */
static void on_role(struct slotd *sd, enum lease_role role)
{
    if (role == LEASE_ACTIVE) {
        sd->stats.leader_changes++;
        dispatch_on_main_up(sd->dispatch);
        dispatch_release(sd->dispatch, HOLD_STANDBY);
        members_on_main_up(sd->members);
    } else if (role == LEASE_STANDBY) {
        dispatch_hold(sd->dispatch, HOLD_STANDBY);
        members_stop(sd->members);
        forward_stop(sd->forward);
    }
}

/* events.held: another slotd holds the lease: started, as a standby. */
static void on_held(struct slotd *sd)
{
    ready(sd, "standing by");
}

static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
    struct slotd *sd = arg;
    (void)fd;
    (void)what;
    /* From the event loop itself: a hung loop stops the watchdog pings. */
    if (sd->notify->watchdog_usec)
        notify_send(sd->notify, "WATCHDOG=1");
    send_status(sd);
}

static void on_sigusr(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    int level = (int)log_get_level() + (sig == SIGUSR1 ? 1 : -1);
    if (level < LL_ERROR)
        level = LL_ERROR;
    if (level > LL_DEBUG)
        level = LL_DEBUG;
    log_set_level((enum log_level)level);
    log_msg(LL_ERROR < level ? LL_INFO : LL_ERROR, "log level now %s (%s)", log_level_name(level),
            sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
}

/* libevent's own warnings go through slotd's logger (one format, one level
 * filter) rather than to stderr as "[warn] ..." lines. */
static void on_libevent_log(int severity, const char *msg)
{
    enum log_level level = severity >= EVENT_LOG_ERR ? LL_ERROR
                         : severity == EVENT_LOG_WARN ? LL_WARN
                         : severity == EVENT_LOG_MSG ? LL_INFO : LL_DEBUG;
    log_msg(level, "libevent: %s", msg);
}

static void on_main_up(struct conn *c, void *arg)
{
    struct slotd *sd = arg;
    (void)c;
    master_main_up(&sd->master);
    /* Routing starts when the lease is ours (on_role). */
    dispatch_on_main_up(sd->dispatch);
    dispatch_hold(sd->dispatch, HOLD_STANDBY);
    lease_on_main_up(sd->lease);
}

static void on_main_down(struct conn *c, void *arg)
{
    struct slotd *sd = arg;
    if (!c->moving)
        master_unreachable(&sd->master);
    lease_on_main_down(sd->lease);
    members_on_main_down(sd->members);
    dispatch_on_main_down(sd->dispatch);
    gauges_on_main_down(sd->gauges);
    forward_stop(sd->forward);
}

/* main or wait found a server that is not the master. */
static void on_wrong(struct conn *c, void *arg)
{
    struct slotd *sd = arg;
    master_wrong(&sd->master, c);
}

/* main could not connect: on a Redis Cluster its master may have failed. */
static void on_main_fail(struct conn *c, void *arg)
{
    struct slotd *sd = arg;
    (void)c;
    master_unreachable(&sd->master);
}

static void on_wait_up(struct conn *c, void *arg)
{
    struct slotd *sd = arg;
    (void)c;
    dispatch_on_wait_down(sd->dispatch);    /* re-peek: the wait may be due */
}

static void on_wait_down(struct conn *c, void *arg)
{
    struct slotd *sd = arg;
    (void)c;
    dispatch_on_wait_down(sd->dispatch);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    struct slotd *sd = arg;
    (void)what;
    if (sd->stopping)
        return;
    log_info("%s: stopping after the transaction in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    notify_send(sd->notify, "STOPPING=1");
    sd->stopping = 1;
    dispatch_hold(sd->dispatch, HOLD_STOPPING);
    struct timeval tv = { 0, STOP_GRACE_MS * 1000 };
    evtimer_add(sd->stop_timer, &tv);
    on_idle(sd);
}

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
    struct slotd *sd = arg;
    (void)fd;
    (void)what;
    /* Safe: a transaction runs whole or not at all. */
    log_warn("stopping without the reply of the transaction in flight");
    event_base_loopexit(sd->base, NULL);
}

static void log_kept(const char *key, void *arg)
{
    (void)arg;
    log_warn("reload: %s changed but takes effect only after a restart; keeping the old value", key);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    struct slotd *sd = arg;
    struct conf next;
    char err[1024];

    (void)sig;
    (void)what;
    notify_send(sd->notify, "RELOADING=1");
    if (conf_load(&next, sd->conf_path, err, sizeof err) != 0) {
        log_error("reload: %s; keeping the running configuration", err);
        notify_send(sd->notify, "READY=1");
        return;
    }
    if (conf_keep_unreloadable(&next, &sd->conf, log_kept, NULL) == SIZE_MAX) {
        log_error("reload: out of memory; keeping the running configuration");
        conf_free(&next);
        notify_send(sd->notify, "READY=1");
        return;
    }
    /* Modules hold (ref) pointers into sd->conf, not to its strings' old
     * copies, except the conns' addresses, which cannot change on reload. */
    conf_free(&sd->conf);
    sd->conf = next;
    log_set_level((enum log_level)sd->conf.log.level);
    dispatch_reconfigure(sd->dispatch);
    members_reconfigure(sd->members);
    lease_reconfigure(sd->lease);
    log_info("reload: %s applied", sd->conf_path);
    notify_send(sd->notify, "READY=1");
}

/* -u NAME[:SHARD]: the config file and the shard of a systemd instance. */
static int parse_unit(const char *unit, char *path, size_t cap, int *shard)
{
    const char *dir = getenv("SLOTD_CONFIG_DIR");
    const char *colon = strrchr(unit, ':');
    size_t n = colon ? (size_t)(colon - unit) : strlen(unit);
    if (n == 0 || memchr(unit, '/', n) != NULL)
        return -1;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || v < 0 || v >= KEYS_SHARDS_MAX)
            return -1;
        *shard = (int)v;
    }
    int w = snprintf(path, cap, "%s/%.*s.yaml", dir && dir[0] ? dir : "/etc/slotd", (int)n, unit);
    return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* http.listen for shard `shard`: its port plus the shard, so that the shards
 * of a namespace on one host each have their own. */
static int shard_listen(const char *listen, int shard, char *buf, size_t cap)
{
    const char *colon = strrchr(listen, ':');
    if (shard == 0 || listen[0] == '\0' || colon == NULL) {
        snprintf(buf, cap, "%s", listen);
        return 0;
    }
    long port = strtol(colon + 1, NULL, 10) + shard;
    if (port > 65535)
        return -1;
    snprintf(buf, cap, "%.*s:%ld", (int)(colon - listen), listen, port);
    return 0;
}

static int check_only(const char *path)
{
    struct conf c;
    char err[1024];
    if (conf_load(&c, path, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return EXIT_CONFIG;
    }
    printf("%s: ok\n", path);
    conf_free(&c);
    return 0;
}

int main(int argc, char **argv)
{
    struct slotd sd;
    struct notify notify;
    const char *path = NULL;
    int test = 0, opt, rc = 1, shard = -1;
    char err[1024], unit_path[4096], listen[300];
    /* Why slotd cannot start, unless the module that failed said so itself. */
    const char *why = "out of memory or event loop failure";

    while ((opt = getopt(argc, argv, "c:s:u:tVh")) != -1) {
        char *end;
        switch (opt) {
        case 'c': path = optarg; break;
        case 's':
            shard = (int)strtol(optarg, &end, 10);
            if (optarg[0] == '\0' || *end != '\0' || shard < 0 || shard >= KEYS_SHARDS_MAX) {
                fprintf(stderr, "slotd: -s %s: a shard is a number from 0\n", optarg);
                return 64;
            }
            break;
        case 'u':
            if (parse_unit(optarg, unit_path, sizeof unit_path, &shard) != 0) {
                fprintf(stderr, "slotd: -u %s: expected NAME or NAME:SHARD\n", optarg);
                return 64;
            }
            path = unit_path;
            break;
        case 't': test = 1; break;
        case 'V': printf("slotd %s\n", SLOTD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 64;
    }
    if (test)
        return check_only(path);

    memset(&sd, 0, sizeof sd);
    sd.conf_path = path;
    sd.notify = &notify;
    sd.started_ms = clock_mono_ms();
    if (notify_init(&notify) != 0)
        fprintf(stderr, "slotd: NOTIFY_SOCKET unusable; not notifying systemd\n");
    if (conf_load(&sd.conf, path, err, sizeof err) != 0) {
        fprintf(stderr, "slotd: %s\n", err);
        return EXIT_CONFIG;
    }
    log_init("slotd", (enum log_level)sd.conf.log.level);
    if (sd.conf.shards > 1 && shard < 0) {
        log_error("namespace %s has %d shards: run one slotd per shard, with -s 0 to -s %d "
                  "(under systemd, slotd@NAME:0 to slotd@NAME:%d)", sd.conf.ns, sd.conf.shards,
                  sd.conf.shards - 1, sd.conf.shards - 1);
        conf_free(&sd.conf);
        return 64;
    }
    if (shard >= sd.conf.shards) {
        log_error("-s %d: namespace %s has %d shard%s (0 to %d)", shard, sd.conf.ns,
                  sd.conf.shards, sd.conf.shards == 1 ? "" : "s", sd.conf.shards - 1);
        conf_free(&sd.conf);
        return 64;
    }
    if (keys_init_shard(&sd.keys, sd.conf.ns, shard < 0 ? 0 : shard, sd.conf.shards) != 0 ||
        shard_listen(sd.conf.http.listen, shard < 0 ? 0 : shard, listen, sizeof listen) != 0) {
        log_error("namespace '%s' is too long, or http.listen's port plus the shard is over "
                  "65535", sd.conf.ns);
        conf_free(&sd.conf);
        return EXIT_CONFIG;
    }
    signal(SIGPIPE, SIG_IGN);
    /* libevent puts back, when a signal event is freed, the disposition it
     * found when the event was added. Ignoring the stop and control signals
     * first means that one arriving during teardown, after the events are
     * gone, cannot turn a clean exit into death by signal. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);

    event_set_log_callback(on_libevent_log);
    sd.base = event_base_new();
    if (sd.base == NULL)
        goto out;
    sd.sig_term = evsignal_new(sd.base, SIGTERM, on_sigterm, &sd);
    sd.sig_int = evsignal_new(sd.base, SIGINT, on_sigterm, &sd);
    sd.sig_hup = evsignal_new(sd.base, SIGHUP, on_sighup, &sd);
    sd.sig_usr1 = evsignal_new(sd.base, SIGUSR1, on_sigusr, &sd);
    sd.sig_usr2 = evsignal_new(sd.base, SIGUSR2, on_sigusr, &sd);
    sd.stop_timer = evtimer_new(sd.base, on_stop_timer, &sd);
    sd.status_timer = event_new(sd.base, -1, EV_PERSIST, on_status_timer, &sd);
    if (sd.sig_term == NULL || sd.sig_int == NULL || sd.sig_hup == NULL || sd.stop_timer == NULL ||
        sd.sig_usr1 == NULL || sd.sig_usr2 == NULL || sd.status_timer == NULL ||
        evsignal_add(sd.sig_term, NULL) != 0 || evsignal_add(sd.sig_int, NULL) != 0 ||
        evsignal_add(sd.sig_hup, NULL) != 0 || evsignal_add(sd.sig_usr1, NULL) != 0 ||
        evsignal_add(sd.sig_usr2, NULL) != 0)
        goto out;
    {
        /* Watchdog pings at half the period systemd asked for; STATUS at most
         * every 2 s. */
        uint64_t us = notify.watchdog_usec ? notify.watchdog_usec / 2 : 2000000;
        if (us > 2000000)
            us = 2000000;
        struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
        if (event_add(sd.status_timer, &tv) != 0)
            goto out;
    }
    sd.events.idle = on_idle;
    sd.events.routing = on_routing;
    sd.events.role = on_role;
    sd.events.held = on_held;
    sd.dispatch = dispatch_create(&sd);
    sd.members = members_create(&sd);
    sd.gauges = gauges_create(&sd);
    sd.lease = lease_create(&sd);
    sd.forward = forward_create(&sd);
    if (sd.dispatch == NULL || sd.members == NULL || sd.gauges == NULL || sd.lease == NULL ||
        sd.forward == NULL)
        goto out;
    if (sd.conf.http.listen[0] != '\0') {
        struct http_limits lim = {
            sd.conf.http.max_connections, sd.conf.http.timeout_ms,
            sd.conf.http.request_deadline_ms, sd.conf.http.max_header_bytes,
        };
        sd.http = http_create(sd.base, listen, &lim, fill_view, &sd);
        if (sd.http == NULL) {
            why = NULL;         /* http_create said why, naming the address */
            goto out;
        }
    }
    if (conn_init(&sd.main, "main", sd.base, &sd.conf, on_main_up, on_main_down, &sd) != 0 ||
        conn_init(&sd.wait, "wait", sd.base, &sd.conf, on_wait_up, on_wait_down, &sd) != 0 ||
        master_init(&sd.master, &sd) != 0)
        goto out;
    sd.main.on_wrong = on_wrong;
    sd.main.on_fail = on_main_fail;
    sd.wait.on_wrong = on_wrong;

    if (sd.keys.nshards > 1)
        log_info("slotd %s starting: namespace %s, shard %d of %d ({%s}), config %s",
                 SLOTD_VERSION, sd.conf.ns, sd.keys.shard, sd.keys.nshards, sd.keys.tag, path);
    else
        log_info("slotd %s starting: namespace %s, config %s", SLOTD_VERSION, sd.conf.ns, path);
    master_start(&sd.master);
    conn_start(&sd.main);
    conn_start(&sd.wait);
    event_base_dispatch(sd.base);
    log_info("slotd stopped: %llu tasks routed, %llu transactions",
             (unsigned long long)sd.stats.routed, (unsigned long long)sd.stats.txns);
    rc = 0;

out:
    if (rc != 0 && why != NULL)
        log_error("slotd: cannot start: %s", why);
    /* Reverse order of creation. */
    master_free(&sd.master);
    conn_free(&sd.wait);
    conn_free(&sd.main);
    http_destroy(sd.http);
    forward_destroy(sd.forward);
    lease_destroy(sd.lease);
    gauges_destroy(sd.gauges);
    members_destroy(sd.members);
    dispatch_destroy(sd.dispatch);
    if (sd.stop_timer) event_free(sd.stop_timer);
    if (sd.status_timer) event_free(sd.status_timer);
    if (sd.sig_usr1) event_free(sd.sig_usr1);
    if (sd.sig_usr2) event_free(sd.sig_usr2);
    if (sd.sig_hup) event_free(sd.sig_hup);
    if (sd.sig_int) event_free(sd.sig_int);
    if (sd.sig_term) event_free(sd.sig_term);
    if (sd.base) event_base_free(sd.base);
    conf_free(&sd.conf);
    notify_close(&notify);
    return rc;
}
