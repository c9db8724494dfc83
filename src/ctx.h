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
#include "taskkey.h"

struct event;
struct event_base;
struct dispatch;
struct members;

/* Counters since start; read by logs now and by /metrics. */
struct stats {
    uint64_t routed;                        /* tasks pushed onto a worker queue */
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
};

struct slotd {
    struct event_base *base;        /* owned */
    struct conf        conf;        /* owned: the config in force */
    const char        *conf_path;   /* (ref) argv */
    struct keys        keys;        /* Redis key names for conf.ns */
    struct conn        main;        /* dispatch and membership commands, in order */
    struct conn        wait;        /* only the blocking wait on an empty intake */
    struct dispatch   *dispatch;    /* owned */
    struct members    *members;     /* owned */
    struct event      *sig_term;    /* owned: SIGTERM, SIGINT, SIGHUP through libevent */
    struct event      *sig_int;
    struct event      *sig_hup;
    struct event      *stop_timer;  /* owned: bounds the wait for the last transaction */
    struct stats       stats;
    int                stopping;    /* SIGTERM seen: finish the transaction in flight, exit */
};

/* Called by dispatch and members when they become idle, so a stopping
 * slotd can exit as soon as nothing is in flight. */
void slotd_maybe_exit(struct slotd *sd);

#endif
