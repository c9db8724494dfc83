/*
 * ctx: the one context of a slotd process. Everything that lives as long as
 * the process hangs off it; modules receive it explicitly. No globals.
 */
#ifndef SLOTD_CTX_H
#define SLOTD_CTX_H

#include <stdint.h>

#include "conf.h"
#include "conn.h"
#include "keys.h"
#include "lease.h"
#include "master.h"
#include "taskkey.h"

struct event;
struct event_base;
struct dispatch;
struct members;
struct gauges;
struct forward;
struct http;
struct notify;

/* Upper bounds of the batch size histogram; the last bucket is +Inf. */
#define STATS_BATCH_BOUNDS { 1, 10, 100, 500, 1000, 2000, 5000 }
#define STATS_BATCH_BUCKETS 8

/* Counters since start; read by logs and by /metrics. */
struct stats {
    uint64_t routed;                        /* tasks pushed onto a worker queue */
    uint64_t to_forward;                    /* tasks of another shard, moved to be forwarded */
    uint64_t dead[TASKKEY_RESULT_COUNT];    /* tasks dead-lettered, by reason */
    uint64_t txns;                          /* dispatch transactions committed */
    uint64_t txn_failures;                  /* dispatch transactions refused */
    uint64_t batch_tasks;                   /* sum of batch sizes (for the mean) */
    uint64_t requeued;                      /* tasks handed back from departed workers */
    uint64_t joins, leaves, deaths;         /* membership events */
    uint64_t stalls;                        /* checks that declared no death after a stall */
    uint64_t poison;                        /* tasks dead-lettered after max_recoveries deaths */
    uint64_t zombies;                       /* workers heard from again after declared dead */
    uint64_t handoffs;                      /* queued tasks re-routed because their slot moved */
    uint64_t fences_set;                    /* handoffs fenced: the old owner held tasks */
    uint64_t fences_released;               /* fences released: the old owner finished them */
    uint64_t fenced;                        /* writes of ours the lease's fence refused */
    uint64_t leader_changes;                /* times this slotd took the lease */
    uint64_t batch_hist[STATS_BATCH_BUCKETS];  /* transactions by batch size (le bounds) */
    uint64_t loop_lag_ms;                   /* how late the last membership tick ran */
};

/* What the modules tell slotd.c, which set these at start: calls go down
 * (slotd.c calls into dispatch, members, lease), events go up. */
struct slotd_events {
    void (*idle)(struct slotd *sd);     /* dispatch or members has nothing in flight */
    void (*routing)(struct slotd *sd);  /* a table is loaded and dispatch routes by it */
    void (*role)(struct slotd *sd, enum lease_role role);  /* the lease role changed */
    void (*held)(struct slotd *sd);     /* standing by: another slotd holds the lease */
};

struct slotd {
    struct event_base *base;        /* owned */
    struct conf        conf;        /* owned: the config in force */
    const char        *conf_path;   /* (ref) argv */
    struct keys        keys;        /* Redis key names for conf.ns */
    struct conn        main;        /* dispatch and membership commands, in order */
    struct conn        wait;        /* only the blocking wait on an empty intake */
    struct master      master;      /* where main and wait connect: config or Sentinel */
    struct dispatch   *dispatch;    /* owned */
    struct members    *members;     /* owned */
    struct gauges     *gauges;      /* owned */
    struct lease      *lease;       /* owned: active or standby */
    struct forward    *forward;     /* owned: the wrong shard's tasks to the right one */
    struct slotd_events events;     /* set by slotd.c */
    struct http       *http;        /* owned; NULL when http.listen is "" */
    struct notify     *notify;      /* (ref) sd_notify, in main()'s frame */
    int                ready;       /* READY=1 was sent */
    struct event      *sig_term;    /* owned: SIGTERM, SIGINT, SIGHUP through libevent */
    struct event      *sig_int;
    struct event      *sig_hup;
    struct event      *stop_timer;  /* owned: bounds the wait for the last transaction */
    struct event      *sig_usr1;    /* owned: SIGUSR1 more verbose, SIGUSR2 less */
    struct event      *sig_usr2;
    struct event      *status_timer; /* owned: STATUS= and WATCHDOG=1 to systemd */
    uint64_t           started_ms;  /* monotonic, for uptime */
    struct stats       stats;
    int                stopping;    /* SIGTERM seen: finish the transaction in flight, exit */
    int                releasing;   /* stopping, and the lease is being released */
};

#endif
