/*
 * conf: the configuration table and its YAML reader (libyaml events).
 * Pass one walks the YAML, matching each key against the table and checking
 * its type and bounds; pass two checks the rules between keys and reads the
 * password file. Every error names FILE:LINE:COLUMN.
 *
 * Choices made here, and documented in docs/configuration.md:
 *   - integers are plain decimal scalars ("6379", "-1"); a quoted "6379" is
 *     an error, so that a value meant as text is never taken for a number;
 *   - strings may be plain or quoted; a plain null (nothing, ~, null, Null,
 *     NULL) is the empty string, which is what "unset" means for every
 *     string key;
 *   - anchors, aliases and more than one document are errors: slotd's file is
 *     small and flat, and an alias would hide where a value came from.
 */
#include "conf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "log.h"
#include "sentinel.h"

enum ktype { K_STR, K_INT, K_ENUM };

/* An extra rule for a string key: 0, or -1 with the reason in why. */
typedef int str_check_fn(const char *value, char *why, size_t whylen);

struct key {
    const char         *name;       /* (ref) dotted path, "redis.port" */
    enum ktype          type;
    size_t              off;        /* offsetof(struct conf, field) */
    size_t              size;       /* sizeof the field: char *, int or long */
    const char         *def;        /* (ref) the default, as written in YAML */
    long                min, max;   /* K_INT bounds, inclusive; must fit the field */
    const char *const  *choices;    /* (ref) K_ENUM names, NULL-terminated; index = value */
    str_check_fn       *check;      /* K_STR extra rule, or NULL */
    int                 reload;     /* takes effect on SIGHUP */
    const char         *doc;        /* (ref) one line, for -h and the docs check */
};

static str_check_fn check_namespace;
static str_check_fn check_listen;
static str_check_fn check_sentinels;

static const char *const on_missing_names[] = {
    [CONF_MISSING_DEAD_LETTER] = "dead_letter",
    [CONF_MISSING_PAYLOAD]     = "payload",
    NULL,
};

/* From log.h's list, so a new level is a config value at once. */
static const char *const level_names[] = {
#define CONF_LEVEL_NAME(e, name, prio) [e] = name,
    LOG_LEVELS(CONF_LEVEL_NAME)
#undef CONF_LEVEL_NAME
    NULL,
};

#define F(field) offsetof(struct conf, field), sizeof(((struct conf *)0)->field)
#define STR(n, fld, d, chk, rl, doc)       { n, K_STR, F(fld), d, 0, 0, NULL, chk, rl, doc }
#define INT(n, fld, d, lo, hi, rl, doc)    { n, K_INT, F(fld), d, lo, hi, NULL, NULL, rl, doc }
#define ENUM(n, fld, d, ch, rl, doc)       { n, K_ENUM, F(fld), d, 0, 0, ch, NULL, rl, doc }

/*
 * One row per key. Keys of a section are written under it in YAML
 * ("redis:" then "  port: 6379"); a section exists because some key's name
 * starts with it, so a new section needs nothing but its rows. A new key
 * also needs a line in docs/configuration.md, docs/man/slotd.yaml.5 and
 * conf/slotd.yaml: tests/unit/test_conf.c fails until it has them.
 */
static const struct key keys[] = {
    STR("redis.host", redis.host, "127.0.0.1", NULL, 0,
        "Redis host name or address"),
    INT("redis.port", redis.port, "6379", 1, 65535, 0,
        "Redis TCP port"),
    STR("redis.unix", redis.unix_path, "\"\"", NULL, 0,
        "Redis unix socket path; when set it is used instead of host and port"),
    INT("redis.db", redis.db, "0", 0, 100000, 0,
        "Redis database number (SELECT)"),
    STR("redis.username", redis.username, "\"\"", NULL, 0,
        "Redis ACL user name; empty for the default user"),
    STR("redis.password_file", redis.password_file, "\"\"", NULL, 0,
        "file holding the Redis password (relative to this file's directory); empty for none"),
    INT("redis.reconnect_min_ms", redis.reconnect_min_ms, "100", 1, 60000, 1,
        "first delay before reconnecting to Redis"),
    INT("redis.reconnect_max_ms", redis.reconnect_max_ms, "5000", 1, 600000, 1,
        "cap of the exponential reconnect backoff; at least redis.reconnect_min_ms"),
    INT("redis.connect_timeout_ms", redis.connect_timeout_ms, "1000", 10, 600000, 1,
        "a connection to Redis (or a sentinel) not made within this is dropped and tried again"),
    INT("redis.reply_timeout_ms", redis.reply_timeout_ms, "3000", 100, 600000, 1,
        "a reply this late (beyond a blocking command's own wait) drops the connection; a"
        " quiet connection is pinged a third of it apart"),
    STR("redis.sentinels", redis.sentinels, "\"\"", check_sentinels, 0,
        "Redis Sentinel: host:port of each sentinel, comma-separated; the master is found"
        " through them instead of redis.host and redis.port; empty to connect directly"),
    STR("redis.sentinel_master", redis.sentinel_master, "\"\"", NULL, 0,
        "the name of the master the sentinels watch; needed with redis.sentinels"),
    STR("redis.sentinel_username", redis.sentinel_username, "\"\"", NULL, 0,
        "the sentinels' ACL user name; empty for their default user"),
    STR("redis.sentinel_password_file", redis.sentinel_password_file, "\"\"", NULL, 0,
        "file holding the sentinels' password (relative to this file's directory); empty for"
        " none"),
    STR("redis.cluster_seeds", redis.cluster_seeds, "\"\"", check_sentinels, 0,
        "Redis Cluster: host:port of some of its nodes, comma-separated; the node that serves"
        " the namespace's slot is found through them; empty for no Cluster"),
    STR("namespace", ns, "slotd", check_namespace, 0,
        "prefix of every Redis key: {<namespace>}:<name>"),
    INT("shards", shards, "1", 1, 256, 0,
        "the namespace split into this many shards, {<namespace>#<i>}, each served by a slotd"
        " of its own (slotd --shard I); 1 for none"),
    STR("routing.key_field", routing.key_field, "key", NULL, 0,
        "top-level JSON field holding the routing key; empty to hash the whole task"),
    ENUM("routing.on_missing_key", routing.on_missing_key, "dead_letter", on_missing_names, 1,
         "a task without a usable key: dead_letter, or payload to hash the whole task"),
    INT("dispatch.batch", dispatch.batch, "2000", 1, 100000, 1,
        "most tasks moved in one transaction"),
    INT("dispatch.inflight", dispatch.inflight, "1", 1, 2, 1,
        "dispatch transactions in flight at once; 2 is faster but see docs/performance.md"),
    INT("dispatch.max_task_bytes", dispatch.max_task_bytes, "1048576", 1, 536870912, 1,
        "larger tasks go to the dead letter"),
    INT("workers.check_interval_ms", workers.check_interval_ms, "200", 10, 60000, 1,
        "how often live workers are read"),
    INT("workers.heartbeat_ttl_ms", workers.heartbeat_ttl_ms, "3000", 100, 600000, 1,
        "the TTL workers put on their heartbeat; also slotd's stall threshold"),
    INT("workers.max_recoveries", workers.max_recoveries, "3", 1, 1000, 1,
        "a task in flight on this many dying workers goes to the dead letter"),
    ENUM("log.level", log.level, "info", level_names, 1,
         "error, warn, info or debug"),
    STR("http.listen", http.listen, "127.0.0.1:9464", check_listen, 0,
        "address of /metrics, /healthz, /status and the dashboard; empty to turn it off"),
    INT("http.max_connections", http.max_connections, "64", 1, 10000, 0,
        "most HTTP connections open at once; more are closed as they arrive"),
    INT("http.timeout_ms", http.timeout_ms, "5000", 100, 600000, 0,
        "an HTTP connection silent this long (reading a request, writing a reply) is closed"),
    INT("http.request_deadline_ms", http.request_deadline_ms, "10000", 100, 600000, 0,
        "an HTTP connection is closed this long after it was accepted; at least http.timeout_ms"),
    INT("http.max_header_bytes", http.max_header_bytes, "8192", 1024, 1048576, 0,
        "longest HTTP request line and headers, together; a longer request is refused"),
    INT("leader.lease_ms", leader.lease_ms, "2000", 100, 600000, 1,
        "how long the active slotd's lease lasts without renewal; a standby takes over within"
        " lease_ms + renew_ms of the active's last renewal"),
    INT("leader.renew_ms", leader.renew_ms, "500", 20, 60000, 1,
        "how often the active slotd renews its lease and a standby tries to take it"),
    STR("leader.node", leader.node, "\"\"", NULL, 0,
        "this slotd's name in the lease, /status and slotctl leader; empty for the host name"),
    INT("worker.prefetch", worker.prefetch, "16", 1, 10000, 0,
        "slotd-worker: most tasks held (taken, not yet acknowledged) at once"),
    INT("worker.max_attempts", worker.max_attempts, "3", 1, 1000, 0,
        "slotd-worker: runs of a failing task before it goes to the dead letter"),
    INT("worker.weight", worker.weight, "1", 1, 1000, 0,
        "slotd-worker: share of the slots, relative to other workers"),
    INT("worker.retry_min_ms", worker.retry_min_ms, "100", 1, 600000, 0,
        "slotd-worker: delay before the first retry of a failed task"),
    INT("worker.retry_max_ms", worker.retry_max_ms, "10000", 1, 3600000, 0,
        "slotd-worker: cap of the doubling retry delay; at least worker.retry_min_ms"),
};

#define NKEYS (sizeof keys / sizeof keys[0])

/*
 * Pass two: "hi must be at least (or, strict, larger than) lo". Each rule
 * says why it exists.
 */
struct rule {
    const char *lo, *hi;    /* (ref) key names */
    int         strict;
};

static const struct rule rules[] = {
    /* The backoff starts at min and doubles up to max. */
    { "redis.reconnect_min_ms", "redis.reconnect_max_ms", 0 },
    /* The TTL is also the stall threshold, measured beyond one interval: with
     * a TTL no longer than the interval, a single late tick would count as a
     * stall, and a dead worker would be noticed a whole TTL late. */
    { "workers.check_interval_ms", "workers.heartbeat_ttl_ms", 1 },
    /* The retry delay starts at min and doubles up to max. */
    { "worker.retry_min_ms", "worker.retry_max_ms", 0 },
    /* The deadline bounds a connection's whole life; a silence allowed for
     * longer than that could never end one. */
    { "http.timeout_ms", "http.request_deadline_ms", 0 },
    /* A lease no longer than its renewal interval lapses between renewals. */
    { "leader.renew_ms", "leader.lease_ms", 1 },
};

/* Larger than any sane password; a bigger file is surely the wrong one. */
#define PASSWORD_MAX 65536

size_t conf_key_count(void) { return NKEYS; }
const char *conf_key_name(size_t i) { return i < NKEYS ? keys[i].name : NULL; }
const char *conf_key_default(size_t i) { return i < NKEYS ? keys[i].def : NULL; }
const char *conf_key_doc(size_t i) { return i < NKEYS ? keys[i].doc : NULL; }
int conf_key_reloadable(size_t i) { return i < NKEYS ? keys[i].reload : -1; }

/* ---- values ------------------------------------------------------------ */

static int check_namespace(const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);
    if (n < 1 || n > 64) {
        snprintf(why, whylen, "'%s' must be 1 to 64 characters", v);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            snprintf(why, whylen, "'%s' may hold only [A-Za-z0-9._:-]", v);
            return -1;
        }
    }
    return 0;
}

/* "host:port", "[v6]:port", or "" (off). */
static int check_sentinels(const char *v, char *why, size_t whylen)
{
    struct sentinels s;
    return sentinel_parse_list(&s, v, why, whylen);
}

static int check_listen(const char *v, char *why, size_t whylen)
{
    if (v[0] == '\0')
        return 0;
    const char *colon = strrchr(v, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || colon == v || colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535 ||
        (v[0] == '[' && colon[-1] != ']')) {
        snprintf(why, whylen, "'%s' must be host:port (or [v6]:port), or empty to turn it off", v);
        return -1;
    }
    return 0;
}

static void *field(struct conf *c, const struct key *k) { return (char *)c + k->off; }
static const void *cfield(const struct conf *c, const struct key *k) { return (const char *)c + k->off; }

static long get_int(const struct conf *c, const struct key *k)
{
    if (k->size == sizeof(long))
        return *(const long *)cfield(c, k);
    return *(const int *)cfield(c, k);
}

/* v is within the key's bounds, which the table keeps within the field. */
static void put_int(struct conf *c, const struct key *k, long v)
{
    if (k->size == sizeof(long))
        *(long *)field(c, k) = v;
    else
        *(int *)field(c, k) = (int)v;
}

/* YAML's null, as the core schema spells it, in a plain scalar. */
static int is_null_text(const char *s)
{
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int is_null_event(const yaml_event_t *ev)
{
    return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           is_null_text((const char *)ev->data.scalar.value);
}

/*
 * Sets key k from a YAML scalar: the one path for file values and defaults
 * alike. 0, or -1 with the reason in why.
 */
static int set_scalar(struct conf *c, const struct key *k, const char *text, size_t len,
                      int plain, char *why, size_t whylen)
{
    if (strlen(text) != len) {
        /* "a\0b" would silently become "a". */
        snprintf(why, whylen, "'%s...' contains a NUL character", text);
        return -1;
    }
    switch (k->type) {
    case K_STR: {
        if (plain && is_null_text(text))
            text = "";
        if (k->check && k->check(text, why, whylen) != 0)
            return -1;
        char *dup = strdup(text);
        if (dup == NULL) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        char **slot = field(c, k);
        free(*slot);
        *slot = dup;
        return 0;
    }
    case K_INT: {
        if (!plain) {
            snprintf(why, whylen, "'%s' must be an integer, not a quoted string", text);
            return -1;
        }
        /* Decimal digits only: strtol alone would take " 1", "+1" and stop at "1x". */
        const char *d = text[0] == '-' ? text + 1 : text;
        if (d[0] == '\0' || strspn(d, "0123456789") != strlen(d)) {
            snprintf(why, whylen, "'%s' is not an integer", text);
            return -1;
        }
        errno = 0;
        long v = strtol(text, NULL, 10);
        if (errno == ERANGE || v < k->min || v > k->max) {
            snprintf(why, whylen, "%s is out of range %ld..%ld", text, k->min, k->max);
            return -1;
        }
        put_int(c, k, v);
        return 0;
    }
    case K_ENUM:
        for (int i = 0; k->choices[i]; i++)
            if (strcmp(text, k->choices[i]) == 0) {
                put_int(c, k, i);
                return 0;
            }
        {
            int n = snprintf(why, whylen, "'%s' must be one of ", text);
            for (int i = 0; k->choices[i] && n >= 0 && (size_t)n < whylen; i++)
                n += snprintf(why + n, whylen - (size_t)n, "%s%s", i ? ", " : "", k->choices[i]);
        }
        return -1;
    }
    snprintf(why, whylen, "unknown key type");
    return -1;
}

/* Sets key k from its default text, read as YAML like a value in a file. */
static int set_default(struct conf *c, const struct key *k)
{
    yaml_parser_t p;
    yaml_event_t ev;
    char why[256];
    int rc = -1, done = 0;

    if (!yaml_parser_initialize(&p))
        return -1;
    yaml_parser_set_input_string(&p, (const unsigned char *)k->def, strlen(k->def));
    while (!done) {
        if (!yaml_parser_parse(&p, &ev))
            goto out;
        if (ev.type == YAML_SCALAR_EVENT) {
            rc = set_scalar(c, k, (const char *)ev.data.scalar.value, ev.data.scalar.length,
                            ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE, why, sizeof why);
            done = 1;
        }
        done |= ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
out:
    yaml_parser_delete(&p);
    return rc;
}

static void free_secret(char **p)
{
    if (*p != NULL) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static void free_password(struct conf *c)
{
    free_secret(&c->redis.password);
    free_secret(&c->redis.sentinel_password);
}

void conf_free(struct conf *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].type == K_STR) {
            char **s = field(c, &keys[i]);
            free(*s);
            *s = NULL;
        }
    free_password(c);
    free(c->path);
    c->path = NULL;
}

int conf_defaults(struct conf *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++)
        if (set_default(c, &keys[i]) != 0) {
            conf_free(c);
            return -1;
        }
    return 0;
}

static int find_key(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, path) == 0)
            return (int)i;
    return -1;
}

/* A section is named by the first key under it: its index, or -1. */
static int find_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(keys[i].name, path, n) == 0 && keys[i].name[n] == '.')
            return (int)i;
    return -1;
}

/* ---- pass one: the YAML walk --------------------------------------------- */

struct reader {
    yaml_parser_t  parser;
    FILE          *f;               /* (ref) the open file */
    const char    *path;            /* (ref) as the caller named it */
    struct conf   *c;               /* (ref) being filled */
    char          *err;             /* (ref) the caller's buffer */
    size_t         errlen;
    unsigned char  seen[NKEYS];     /* key i was written */
    yaml_mark_t    key_mark[NKEYS]; /* … here */
    yaml_mark_t    val_mark[NKEYS]; /* … with its value here */
    unsigned char  sec_seen[NKEYS]; /* the section named by key i was written */
    yaml_mark_t    sec_mark[NKEYS]; /* … here */
};

static int fail_at(struct reader *r, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Always -1, so that callers can return it. */
static int fail_at(struct reader *r, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(r->err, r->errlen, "%s:%zu:%zu: ", r->path, m.line + 1, m.column + 1);
    if (n < 0 || (size_t)n >= r->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * The reader stage (bad UTF-8, say) reports a byte offset, not a mark, and
 * runs ahead of the scanner, so parser.mark would point elsewhere: count
 * lines and characters up to the offset instead.
 */
static yaml_mark_t mark_at_offset(FILE *f, size_t offset)
{
    yaml_mark_t m = { 0, 0, 0 };
    int ch;
    if (fseek(f, 0, SEEK_SET) != 0)
        return m;
    for (size_t i = 0; i < offset && (ch = getc(f)) != EOF; i++) {
        if (ch == '\n') {
            m.line++;
            m.column = 0;
        } else if ((ch & 0xC0) != 0x80) {
            m.column++;     /* continuation bytes are part of the same character */
        }
    }
    m.index = offset;
    return m;
}

static int syntax_error(struct reader *r)
{
    yaml_parser_t *p = &r->parser;
    const char *problem = p->problem ? p->problem : "unknown problem";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return fail_at(r, p->mark, "out of memory");
    case YAML_READER_ERROR:
        return fail_at(r, mark_at_offset(r->f, p->problem_offset), "YAML error: %s", problem);
    default:
        if (p->context)
            return fail_at(r, p->problem_mark, "YAML syntax error: %s, %s that starts at %zu:%zu",
                           problem, p->context, p->context_mark.line + 1,
                           p->context_mark.column + 1);
        return fail_at(r, p->problem_mark, "YAML syntax error: %s", problem);
    }
}

/* The next event, or -1 (with nothing to delete) for a syntax error, an alias or an anchor. */
static int next_event(struct reader *r, yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL;

    if (!yaml_parser_parse(&r->parser, ev))
        return syntax_error(r);
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        fail_at(r, ev->start_mark, "aliases (*%s) are not supported; write the value out",
                (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return -1;
    case YAML_SCALAR_EVENT:         anchor = ev->data.scalar.anchor; break;
    case YAML_SEQUENCE_START_EVENT: anchor = ev->data.sequence_start.anchor; break;
    case YAML_MAPPING_START_EVENT:  anchor = ev->data.mapping_start.anchor; break;
    default: break;
    }
    if (anchor != NULL) {
        fail_at(r, ev->start_mark, "anchors (&%s) are not supported", (const char *)anchor);
        yaml_event_delete(ev);
        return -1;
    }
    return 0;
}

static const char *kind_name(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a sequence";
    case YAML_SCALAR_EVENT: return "a scalar";
    default: return "something else";
    }
}

static int walk_mapping(struct reader *r, const char *prefix);

/*
 * One "key: value" of the mapping under prefix ("" at the top): 0, 1 at the
 * end of the mapping, or -1 on error.
 */
static int walk_entry(struct reader *r, const char *prefix)
{
    yaml_event_t key, val;
    char path[256];
    int rc = -1, idx, sec;

    /* Zeroed events are safe to delete, so the exit label deletes both. */
    memset(&key, 0, sizeof key);
    memset(&val, 0, sizeof val);
    if (next_event(r, &key) != 0)
        goto out;
    if (key.type == YAML_MAPPING_END_EVENT) {
        rc = 1;
        goto out;
    }
    if (key.type != YAML_SCALAR_EVENT) {
        fail_at(r, key.start_mark, "a key must be a scalar, not %s", kind_name(&key));
        goto out;
    }
    if (strlen((const char *)key.data.scalar.value) != key.data.scalar.length) {
        fail_at(r, key.start_mark, "a key must not contain a NUL character");
        goto out;
    }
    snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "",
             (const char *)key.data.scalar.value);
    idx = find_key(path);
    sec = idx < 0 ? find_section(path) : -1;
    if (idx < 0 && sec < 0) {
        fail_at(r, key.start_mark, "unknown key '%s'", path);
        goto out;
    }
    if ((idx >= 0 && r->seen[idx]) || (sec >= 0 && r->sec_seen[sec])) {
        yaml_mark_t first = idx >= 0 ? r->key_mark[idx] : r->sec_mark[sec];
        fail_at(r, key.start_mark, "duplicate key '%s' (first at %zu:%zu)", path,
                first.line + 1, first.column + 1);
        goto out;
    }
    if (next_event(r, &val) != 0)
        goto out;

    if (sec >= 0) {
        r->sec_seen[sec] = 1;
        r->sec_mark[sec] = key.start_mark;
        if (is_null_event(&val))
            rc = 0;                 /* "redis:" with nothing under it */
        else if (val.type != YAML_MAPPING_START_EVENT)
            fail_at(r, val.start_mark, "%s must be a mapping, not %s", path, kind_name(&val));
        else
            rc = walk_mapping(r, path);
        goto out;
    }

    r->seen[idx] = 1;
    r->key_mark[idx] = key.start_mark;
    r->val_mark[idx] = val.start_mark;
    if (val.type != YAML_SCALAR_EVENT) {
        fail_at(r, val.start_mark, "%s must be a scalar, not %s", path, kind_name(&val));
        goto out;
    }
    char why[512];
    if (set_scalar(r->c, &keys[idx], (const char *)val.data.scalar.value, val.data.scalar.length,
                   val.data.scalar.style == YAML_PLAIN_SCALAR_STYLE, why, sizeof why) != 0) {
        fail_at(r, val.start_mark, "%s: %s", path, why);
        goto out;
    }
    rc = 0;
out:
    yaml_event_delete(&key);
    yaml_event_delete(&val);
    return rc;
}

/* The entries of a mapping whose start event was just read, up to its end. */
static int walk_mapping(struct reader *r, const char *prefix)
{
    int rc;
    while ((rc = walk_entry(r, prefix)) == 0)
        ;
    return rc < 0 ? -1 : 0;
}

/* The stream: at most one document, which is a mapping or empty. */
static int walk(struct reader *r)
{
    yaml_event_t ev;
    int docs = 0, rc = -1;

    memset(&ev, 0, sizeof ev);
    for (;;) {
        if (next_event(r, &ev) != 0)
            goto out;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (docs++ > 0) {
                fail_at(r, ev.start_mark, "a second YAML document; the file must hold one");
                goto out;
            }
            break;
        case YAML_STREAM_END_EVENT:
            rc = 0;
            goto out;
        case YAML_MAPPING_START_EVENT:
            if (walk_mapping(r, "") != 0)
                goto out;
            break;
        default:
            if (is_null_event(&ev))
                break;              /* an empty document: all defaults */
            fail_at(r, ev.start_mark, "the configuration must be a mapping of keys, not %s",
                    kind_name(&ev));
            goto out;
        }
        yaml_event_delete(&ev);
    }
out:
    yaml_event_delete(&ev);
    return rc;
}

/* ---- pass two: rules between keys, and the password file ----------------- */

/*
 * Where to point for a broken rule: the value of hi if it was written, else
 * that of lo (the one the user wrote), else the top of the file.
 */
static yaml_mark_t rule_mark(const struct reader *r, int lo, int hi)
{
    yaml_mark_t top = { 0, 0, 0 };
    if (r->seen[hi])
        return r->val_mark[hi];
    if (r->seen[lo])
        return r->val_mark[lo];
    return top;
}

static int check_rules(struct reader *r)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        int lo = find_key(rules[i].lo), hi = find_key(rules[i].hi);
        yaml_mark_t top = { 0, 0, 0 };
        if (lo < 0 || hi < 0)
            return fail_at(r, top, "internal error: rule %zu names an unknown key", i);
        long vlo = get_int(r->c, &keys[lo]), vhi = get_int(r->c, &keys[hi]);
        if (rules[i].strict ? vhi > vlo : vhi >= vlo)
            continue;
        return fail_at(r, rule_mark(r, lo, hi), "%s (%ld) must be %s %s (%ld)", keys[hi].name, vhi,
                       rules[i].strict ? "larger than" : "at least", keys[lo].name, vlo);
    }
    /* Sentinels need the name of the master to ask them for. */
    if (r->c->redis.sentinels[0] != '\0' && r->c->redis.sentinel_master[0] == '\0') {
        int k = find_key("redis.sentinels");
        return fail_at(r, r->val_mark[k], "redis.sentinels needs redis.sentinel_master: the"
                       " name the sentinels know the master by");
    }
    /* A Cluster is found through its seeds; Sentinel and a socket are
     * other ways to find Redis, and a Cluster has only database 0. */
    if (r->c->redis.cluster_seeds[0] != '\0') {
        int k = find_key("redis.cluster_seeds");
        if (r->c->redis.sentinels[0] != '\0')
            return fail_at(r, r->val_mark[k], "redis.cluster_seeds and redis.sentinels exclude"
                           " each other: a Cluster fails over by itself");
        if (r->c->redis.unix_path[0] != '\0')
            return fail_at(r, r->val_mark[k], "redis.cluster_seeds and redis.unix exclude each"
                           " other: a Cluster's nodes are found by address");
        if (r->c->redis.db != 0)
            return fail_at(r, r->val_mark[k], "redis.cluster_seeds needs redis.db 0: a Cluster"
                           " has only database 0");
    }
    /* Somewhere to connect: an empty host (say "host: ~") is a mistake, but
     * only when no socket replaces it. */
    if (r->c->redis.host[0] == '\0' && r->c->redis.unix_path[0] == '\0') {
        int host = find_key("redis.host");
        return fail_at(r, r->val_mark[host], "redis.host must not be empty unless redis.unix is set");
    }
    return 0;
}

/* dir[0..dirlen) "/" name, in a new string; NULL on ENOMEM. */
static char *join_path(const char *dir, size_t dirlen, const char *name)
{
    size_t n = strlen(name);
    char *p = malloc(dirlen + 1 + n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, dirlen);
    p[dirlen] = '/';
    memcpy(p + dirlen + 1, name, n + 1);
    return p;
}

/*
 * Reads the password: the file's content less one trailing "\n" or "\r\n".
 * Relative to the configuration file's directory, so that the pair can move
 * together.
 */
static int read_secret(struct reader *r, const char *key, const char *pf, char **out)
{
    const char *slash = strrchr(r->path, '/');
    yaml_mark_t m = r->val_mark[find_key(key)];
    char *full = NULL, *buf = NULL;
    FILE *f = NULL;
    size_t n = 0;
    int rc = -1;

    if (pf[0] == '\0')
        return 0;
    if (pf[0] != '/' && slash != NULL)
        full = join_path(r->path, (size_t)(slash - r->path), pf);
    else
        full = strdup(pf);
    buf = malloc(PASSWORD_MAX + 1);
    if (full == NULL || buf == NULL) {
        fail_at(r, m, "out of memory");
        goto out;
    }
    f = fopen(full, "r");
    if (f == NULL) {
        fail_at(r, m, "%s: cannot read '%s': %s", key, full, strerror(errno));
        goto out;
    }
    n = fread(buf, 1, PASSWORD_MAX + 1, f);
    if (ferror(f)) {
        fail_at(r, m, "%s: cannot read '%s': %s", key, full, strerror(errno));
        goto out;
    }
    if (n > PASSWORD_MAX) {
        fail_at(r, m, "%s: '%s' is larger than %d bytes", key, full, PASSWORD_MAX);
        goto out;
    }
    if (n > 0 && buf[n - 1] == '\n') {
        n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
    }
    if (n == 0) {
        fail_at(r, m, "%s: '%s' holds an empty password", key, full);
        goto out;
    }
    if (memchr(buf, '\0', n) != NULL) {
        fail_at(r, m, "%s: '%s' holds a NUL byte", key, full);
        goto out;
    }
    buf[n] = '\0';
    *out = strdup(buf);
    if (*out == NULL) {
        fail_at(r, m, "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    if (buf != NULL) {
        explicit_bzero(buf, PASSWORD_MAX + 1);
        free(buf);
    }
    free(full);
    return rc;
}

static int read_password(struct reader *r)
{
    struct conf *c = r->c;
    if (read_secret(r, "redis.password_file", c->redis.password_file, &c->redis.password) != 0)
        return -1;
    return read_secret(r, "redis.sentinel_password_file", c->redis.sentinel_password_file,
                       &c->redis.sentinel_password);
}

int conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
    struct reader r;
    int parser_ready = 0, rc = -1;

    memset(&r, 0, sizeof r);
    if (conf_defaults(c) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    r.path = path;
    r.c = c;
    r.err = err;
    r.errlen = errlen;
    c->path = strdup(path);
    if (c->path == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    r.f = fopen(path, "rb");
    if (r.f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!yaml_parser_initialize(&r.parser)) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    parser_ready = 1;
    yaml_parser_set_input_file(&r.parser, r.f);
    if (walk(&r) != 0 || check_rules(&r) != 0 || read_password(&r) != 0)
        goto out;
    rc = 0;
out:
    if (parser_ready)
        yaml_parser_delete(&r.parser);
    if (r.f != NULL)
        fclose(r.f);
    if (rc != 0)
        conf_free(c);
    return rc;
}

/* ---- reload -------------------------------------------------------------- */

static int differs(const struct conf *a, const struct conf *b, const struct key *k)
{
    if (k->type == K_STR)
        return strcmp(*(char *const *)cfield(a, k), *(char *const *)cfield(b, k)) != 0;
    return get_int(a, k) != get_int(b, k);
}

size_t conf_keep_unreloadable(struct conf *next, const struct conf *cur,
                              void (*each)(const char *key, void *arg), void *arg)
{
    char *dup[NKEYS] = { NULL };
    char *password = NULL, *sentinel_password = NULL;
    size_t kept = 0;

    /* Copy first, change after: a half-kept configuration would apply some
     * keys that need a restart. */
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (k->reload || k->type != K_STR || !differs(next, cur, k))
            continue;
        dup[i] = strdup(*(char *const *)cfield(cur, k));
        if (dup[i] == NULL)
            goto nomem;
    }
    /* The passwords follow their files, which cannot change without a restart. */
    if (cur->redis.password != NULL && (password = strdup(cur->redis.password)) == NULL)
        goto nomem;
    if (cur->redis.sentinel_password != NULL &&
        (sentinel_password = strdup(cur->redis.sentinel_password)) == NULL)
        goto nomem;

    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (k->reload || !differs(next, cur, k))
            continue;
        if (k->type == K_STR) {
            char **slot = field(next, k);
            free(*slot);
            *slot = dup[i];
        } else {
            put_int(next, k, get_int(cur, k));
        }
        kept++;
        if (each)
            each(k->name, arg);
    }
    free_password(next);
    next->redis.password = password;
    next->redis.sentinel_password = sentinel_password;
    return kept;

nomem:
    for (size_t i = 0; i < NKEYS; i++)
        free(dup[i]);
    free_secret(&password);
    return SIZE_MAX;
}
