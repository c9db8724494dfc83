/*
 * lease: one active slotd per namespace. A slotd routes and changes
 * ownership only while it holds the lease {ns}:leader (a string with a
 * TTL, renewed every leader.renew_ms); any other slotd on the namespace
 * stands by and takes the lease when it lapses.
 *
 * The lease gives liveness, not safety: a process paused after its lease
 * ended may still send writes. Safety is the leader epoch, the fencing
 * token {ns}:leader:epoch ("<n> <nonce>"), changed only when a slotd takes
 * the lease: every write of slotd's (each dispatch batch's commit script,
 * each membership change) checks, inside the write itself, that the epoch
 * is still the one its writer took. So a write sent by a slotd whose lease
 * was taken over commits nothing, however late Redis runs it. Renewing the
 * lease (or its expiry) touches only {ns}:leader, never the epoch.
 *
 *   DOWN --main up--> STANDBY --acquire won--> ACTIVE --renew refused,------+
 *                     ^   |  (poll every          |  (renew every          |
 *                     |   |   renew_ms)           |   renew_ms)            |
 *                     |   +--<-- lease held by another                     |
 *                     +--------- fenced write, no renewal for lease_ms, ---+
 *                                step-down, SIGTERM (releases)
 */
#ifndef SLOTD_LEASE_H
#define SLOTD_LEASE_H

#include <stdint.h>

struct slotd;

#define LEASE_ROLES(X)                  \
    X(LEASE_DOWN,    "down")            \
    X(LEASE_STANDBY, "standby")         \
    X(LEASE_ACTIVE,  "active")

enum lease_role {
#define LEASE_ENUM(e, name) e,
    LEASE_ROLES(LEASE_ENUM)
#undef LEASE_ENUM
};

/* What /status, /healthz and the metrics show of the lease. */
struct lease_view {
    enum lease_role role;
    uint64_t        epoch;          /* ours when active, else the last one seen */
    const char     *holder;         /* (ref) the holder as last read: "<node> <pid>", or "" */
    int64_t         ttl_ms;         /* the lease's time left as last read, -1 unknown */
    uint64_t        changes;        /* times this slotd became active or stood by */
    uint64_t        fenced;         /* writes of ours the fence refused */
};

struct lease;

struct lease *lease_create(struct slotd *sd);
void lease_destroy(struct lease *l);

/* The main connection came up (renew our epoch if we had one, else try to
 * take the lease) or went down (stand by until it is back). */
void lease_on_main_up(struct lease *l);
void lease_on_main_down(struct lease *l);

enum lease_role lease_role(const struct lease *l);
const char *lease_role_name(enum lease_role r);

/* The fencing token every write checks, as Redis holds it: "<n> <nonce>".
 * Only meaningful while active. */
const char *lease_token(const struct lease *l);

/* A write was refused by the fence: the epoch is now `now` (Redis's
 * value). Logs "fenced: epoch a -> b, <what>; standing by" and stands by. */
void lease_fenced(struct lease *l, const char *now, const char *what);

/* SIGTERM: release the lease if held (so that a standby takes it within a
 * renew interval); done() is called once that is answered or hopeless. */
void lease_release(struct lease *l, void (*done)(struct slotd *sd));

/* Reload: the intervals may have changed. */
void lease_reconfigure(struct lease *l);

void lease_fill_view(const struct lease *l, struct lease_view *v);

#endif
