/*
 * conf: slotd's configuration, read from YAML with libyaml. Every key is one
 * row of a declarative table in conf.c (name, type, default, bounds,
 * reloadable, doc line); unknown keys, wrong types and out-of-range values are
 * errors that name FILE:LINE:COLUMN. Validation runs in two passes: syntax and
 * types while parsing, then the rules between keys.
 */
#ifndef SLOTD_CONF_H
#define SLOTD_CONF_H

#include <stddef.h>

enum conf_on_missing {
    CONF_MISSING_DEAD_LETTER,   /* a task without a usable key is dead-lettered */
    CONF_MISSING_PAYLOAD,       /* … or routed by hashing the whole task */
};

struct conf {
    char *path;                     /* owned: the file it was read from */

    struct {
        char *host;                 /* owned: TCP host */
        int   port;
        char *unix_path;            /* owned: "" = use host:port ("redis.unix") */
        int   db;
        char *username;             /* owned: "" = default user */
        char *password_file;        /* owned: "" = no password */
        char *password;             /* owned: read from password_file, NULL if none */
        int   reconnect_min_ms;
        int   reconnect_max_ms;
        int   connect_timeout_ms;   /* a connection not up by then is dropped */
        int   reply_timeout_ms;     /* a reply this late (beyond a blocking command's own
                                       wait) drops the connection; a quiet one is pinged */
        char *sentinels;            /* owned: "host:port,..."; "" = no Sentinel */
        char *sentinel_master;      /* owned: the master's name the sentinels know */
        char *sentinel_username;    /* owned: "" = the sentinels' default user */
        char *sentinel_password_file;   /* owned: "" = none */
        char *sentinel_password;    /* owned: read from sentinel_password_file, NULL if none */
        char *cluster_seeds;        /* owned: "host:port,..."; "" = no Cluster */
    } redis;

    char *ns;                       /* owned: "namespace" */
    int   shards;                   /* the namespace in this many shards; 1 = none */

    struct {
        char *key_field;            /* owned: "" = hash the whole task */
        int   on_missing_key;       /* enum conf_on_missing */
    } routing;

    struct {
        int  batch;
        long max_task_bytes;
        int  inflight;
    } dispatch;

    struct {
        int check_interval_ms;
        int heartbeat_ttl_ms;
        int max_recoveries;
    } workers;

    struct {
        int level;                  /* enum log_level */
    } log;

    struct {
        char *listen;               /* owned: "host:port" of /metrics etc., "" = off */
        int   max_connections;
        int   timeout_ms;
        int   request_deadline_ms;
        int   max_header_bytes;
    } http;

    struct {
        int   lease_ms;             /* the lease's length: a standby takes over within
                                       lease_ms + renew_ms of the last renewal */
        int   renew_ms;             /* the active renews, a standby tries, this often */
        char *node;                 /* owned: the name the lease shows; "" = host name */
    } leader;

    struct {                        /* slotd-worker only */
        int prefetch;
        int max_attempts;
        int weight;
        int retry_min_ms;
        int retry_max_ms;
    } worker;
};

/*
 * Fills c with the defaults, then reads path over them. Returns 0, or -1 with
 * "PATH:LINE:COLUMN: what is wrong" in err (LINE and COLUMN 1-based; for a
 * file that cannot be opened, "PATH: reason"). On error c is left freed.
 */
int conf_load(struct conf *c, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Only the defaults (what an empty file gives). 0, or -1 on ENOMEM. */
int conf_defaults(struct conf *c) __attribute__((warn_unused_result));

/* Frees every owned string; accepts a zeroed struct and NULL. */
void conf_free(struct conf *c);

/*
 * For a reload: copies into next, from cur, the value of every key that
 * cannot change without a restart and differs, calling each(key) for it, and
 * cur's password. Returns how many were kept, or SIZE_MAX on ENOMEM, with
 * next unchanged (all or nothing).
 */
size_t conf_keep_unreloadable(struct conf *next, const struct conf *cur,
                              void (*each)(const char *key, void *arg), void *arg);

/* The table, for docs checks and -h: count, and each key's dotted name,
 * default as written in YAML, doc line, and whether SIGHUP applies it
 * (1, 0; -1 out of range). NULL for i out of range. */
size_t conf_key_count(void);
const char *conf_key_name(size_t i);
const char *conf_key_default(size_t i);
const char *conf_key_doc(size_t i);
int conf_key_reloadable(size_t i);

#endif
