/*
 * conf: the configuration table and its YAML reader (libyaml events).
 * Pass one walks the YAML, matching each key against the table and checking
 * its type and bounds; pass two checks the rules between keys and reads the
 * password file. Every error names FILE:LINE:COLUMN.
 */
#include "conf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "log.h"

enum ktype { K_STR, K_INT, K_ENUM };

typedef int str_check_fn(const char *value, char *why, size_t whylen);

struct key {
    const char         *name;       /* dotted path, "redis.port" */
    enum ktype          type;
    size_t              off;        /* offsetof(struct conf, field) */
    size_t              size;       /* sizeof the field (int or long) */
    const char         *def;        /* the default, as written in YAML */
    long                min, max;   /* K_INT bounds */
    const char *const  *choices;    /* K_ENUM names, NULL-terminated; index = value */
    str_check_fn       *check;      /* K_STR extra rule, or NULL */
    int                 reload;     /* takes effect on SIGHUP */
    const char         *doc;
};

static str_check_fn check_namespace;
static str_check_fn check_listen;

static const char *const on_missing_names[] = { "dead_letter", "payload", NULL };
static const char *const level_names[] = { "error", "warn", "info", "debug", NULL };

#define F(field) offsetof(struct conf, field), sizeof(((struct conf *)0)->field)
#define STR(n, fld, d, chk, rl, doc)       { n, K_STR, F(fld), d, 0, 0, NULL, chk, rl, doc }
#define INT(n, fld, d, lo, hi, rl, doc)    { n, K_INT, F(fld), d, lo, hi, NULL, NULL, rl, doc }
#define ENUM(n, fld, d, ch, rl, doc)       { n, K_ENUM, F(fld), d, 0, 0, ch, NULL, rl, doc }

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
        "cap of the exponential reconnect backoff"),
    STR("namespace", ns, "slotd", check_namespace, 0,
        "prefix of every Redis key: {<namespace>}:<name>"),
    STR("routing.key_field", routing.key_field, "key", NULL, 0,
        "top-level JSON field holding the routing key; empty to hash the whole task"),
    ENUM("routing.on_missing_key", routing.on_missing_key, "dead_letter", on_missing_names, 1,
         "a task without a usable key: dead_letter, or payload to hash the whole task"),
    INT("dispatch.batch", dispatch.batch, "1000", 1, 100000, 1,
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
    INT("worker.prefetch", worker.prefetch, "16", 1, 10000, 0,
        "slotd-worker: most tasks held (taken, not yet acknowledged) at once"),
    INT("worker.max_attempts", worker.max_attempts, "3", 1, 1000, 0,
        "slotd-worker: runs of a failing task before it goes to the dead letter"),
    INT("worker.weight", worker.weight, "1", 1, 1000, 0,
        "slotd-worker: share of the slots, relative to other workers"),
    INT("worker.retry_min_ms", worker.retry_min_ms, "100", 1, 600000, 0,
        "slotd-worker: delay before the first retry of a failed task"),
    INT("worker.retry_max_ms", worker.retry_max_ms, "10000", 1, 3600000, 0,
        "slotd-worker: cap of the doubling retry delay"),
};

#define NKEYS (sizeof keys / sizeof keys[0])

size_t conf_key_count(void) { return NKEYS; }
const char *conf_key_name(size_t i) { return i < NKEYS ? keys[i].name : NULL; }
const char *conf_key_default(size_t i) { return i < NKEYS ? keys[i].def : NULL; }
const char *conf_key_doc(size_t i) { return i < NKEYS ? keys[i].doc : NULL; }

static int check_namespace(const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);
    if (n < 1 || n > 64) {
        snprintf(why, whylen, "must be 1 to 64 characters");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            snprintf(why, whylen, "may hold only [A-Za-z0-9._:-]");
            return -1;
        }
    }
    return 0;
}

/* "host:port", "[v6]:port", or "" (off). */
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

static void put_int(struct conf *c, const struct key *k, long v)
{
    if (k->size == sizeof(long))
        *(long *)field(c, k) = v;
    else
        *(int *)field(c, k) = (int)v;
}

/* Sets key k from text. 0, or -1 with the reason in why. */
static int set_value(struct conf *c, const struct key *k, const char *text, int quoted,
                     char *why, size_t whylen)
{
    switch (k->type) {
    case K_STR: {
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
        char *end;
        long v;
        if (quoted) {
            snprintf(why, whylen, "'%s' must be an integer, not a quoted string", text);
            return -1;
        }
        errno = 0;
        v = strtol(text, &end, 10);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE || text[0] == '+' ||
            text[0] == ' ') {
            snprintf(why, whylen, "'%s' is not an integer", text);
            return -1;
        }
        if (v < k->min || v > k->max) {
            snprintf(why, whylen, "%ld is out of range %ld..%ld", v, k->min, k->max);
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
            size_t n = (size_t)snprintf(why, whylen, "'%s' must be one of ", text);
            for (int i = 0; k->choices[i] && n < whylen; i++)
                n += (size_t)snprintf(why + n, whylen - n, "%s%s", i ? ", " : "", k->choices[i]);
        }
        return -1;
    }
    return -1;
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
    free(c->path);
    free(c->redis.password);
    c->path = NULL;
    c->redis.password = NULL;
}

int conf_defaults(struct conf *c)
{
    char why[256];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        const char *d = keys[i].def;
        int quoted = d[0] == '"';
        char text[128];
        snprintf(text, sizeof text, "%s", quoted ? d + 1 : d);
        if (quoted)
            text[strlen(text) - 1] = '\0';
        if (set_value(c, &keys[i], text, 0, why, sizeof why) != 0) {
            conf_free(c);
            return -1;
        }
    }
    return 0;
}

/* ---- the YAML walk --------------------------------------------------- */

struct reader {
    yaml_parser_t  parser;
    const char    *path;
    struct conf   *c;
    char          *err;
    size_t         errlen;
    yaml_mark_t    mark[NKEYS];     /* where each key's value was */
    unsigned char  seen[NKEYS];
};

static int fail_at(struct reader *r, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

static int next_event(struct reader *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev)) {
        yaml_mark_t m = r->parser.problem_mark;
        if (r->parser.context)
            return fail_at(r, m, "YAML syntax error: %s %s", r->parser.problem ? r->parser.problem : "",
                           r->parser.context);
        return fail_at(r, m, "YAML syntax error: %s", r->parser.problem ? r->parser.problem : "unknown");
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        yaml_mark_t m = ev->start_mark;
        yaml_event_delete(ev);
        return fail_at(r, m, "aliases (*name) are not supported");
    }
    return 0;
}

static const char *kind_name(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a sequence";
    case YAML_SCALAR_EVENT: return "a scalar";
    default: return "something else";
    }
}

static int is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(keys[i].name, path, n) == 0 && keys[i].name[n] == '.')
            return 1;
    return 0;
}

static int find_key(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, path) == 0)
            return (int)i;
    return -1;
}

/* Skips the rest of a node whose start event was just read. */
static int walk_mapping(struct reader *r, const char *prefix);

static int walk_mapping(struct reader *r, const char *prefix)
{
    yaml_event_t ev, val;
    char path[256], seen_sections[8][256];
    int nsections = 0;

    for (;;) {
        if (next_event(r, &ev) != 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_mark_t m = ev.start_mark;
            yaml_event_type_t t = ev.type;
            yaml_event_delete(&ev);
            return fail_at(r, m, "a key must be a scalar, not %s", kind_name(t));
        }
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "",
                 (const char *)ev.data.scalar.value);
        yaml_mark_t key_mark = ev.start_mark;
        yaml_event_delete(&ev);

        int idx = find_key(path);
        int section = idx < 0 && is_section(path);
        if (idx < 0 && !section)
            return fail_at(r, key_mark, "unknown key '%s'", path);
        if (next_event(r, &val) != 0)
            return -1;
        if (section) {
            for (int i = 0; i < nsections; i++)
                if (strcmp(seen_sections[i], path) == 0) {
                    yaml_event_delete(&val);
                    return fail_at(r, key_mark, "duplicate key '%s'", path);
                }
            if (nsections < 8)
                snprintf(seen_sections[nsections++], sizeof seen_sections[0], "%s", path);
            if (val.type == YAML_SCALAR_EVENT && val.data.scalar.length == 0 &&
                val.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                yaml_event_delete(&val);    /* "redis:" with nothing under it */
                continue;
            }
            if (val.type != YAML_MAPPING_START_EVENT) {
                yaml_mark_t m = val.start_mark;
                yaml_event_type_t t = val.type;
                yaml_event_delete(&val);
                return fail_at(r, m, "%s must be a mapping, not %s", path, kind_name(t));
            }
            yaml_event_delete(&val);
            if (walk_mapping(r, path) != 0)
                return -1;
            continue;
        }
        if (r->seen[idx]) {
            yaml_event_delete(&val);
            return fail_at(r, key_mark, "duplicate key '%s'", path);
        }
        if (val.type != YAML_SCALAR_EVENT) {
            yaml_mark_t m = val.start_mark;
            yaml_event_type_t t = val.type;
            yaml_event_delete(&val);
            return fail_at(r, m, "%s must be a scalar, not %s", path, kind_name(t));
        }
        const char *text = (const char *)val.data.scalar.value;
        int plain = val.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        char why[512];
        /* A plain null (~, null, nothing) is an empty string. */
        if (plain && keys[idx].type == K_STR &&
            (strcmp(text, "~") == 0 || strcmp(text, "null") == 0))
            text = "";
        r->seen[idx] = 1;
        r->mark[idx] = val.start_mark;
        if (set_value(r->c, &keys[idx], text, !plain, why, sizeof why) != 0) {
            yaml_mark_t m = val.start_mark;
            yaml_event_delete(&val);
            return fail_at(r, m, "%s: %s", path, why);
        }
        yaml_event_delete(&val);
    }
}

static int walk(struct reader *r)
{
    yaml_event_t ev;
    for (;;) {
        if (next_event(r, &ev) != 0)
            return -1;
        yaml_event_type_t t = ev.type;
        yaml_mark_t m = ev.start_mark;
        int empty_scalar = t == YAML_SCALAR_EVENT && ev.data.scalar.length == 0;
        int null_scalar = t == YAML_SCALAR_EVENT &&
            (strcmp((const char *)ev.data.scalar.value, "~") == 0 ||
             strcmp((const char *)ev.data.scalar.value, "null") == 0);
        yaml_event_delete(&ev);
        switch (t) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            continue;
        case YAML_STREAM_END_EVENT:
            return 0;
        case YAML_MAPPING_START_EVENT:
            if (walk_mapping(r, "") != 0)
                return -1;
            continue;
        case YAML_SCALAR_EVENT:
            if (empty_scalar || null_scalar)
                continue;       /* an empty document: all defaults */
            /* fall through */
        default:
            return fail_at(r, m, "the configuration must be a mapping of keys, not %s",
                           kind_name(t));
        }
    }
}

/* Pass two: rules between keys, and the password file. */
static int post_validate(struct reader *r)
{
    struct conf *c = r->c;
    int imax = find_key("redis.reconnect_max_ms"), ittl = find_key("workers.heartbeat_ttl_ms");
    yaml_mark_t top = { 0, 0, 0 };

    if (c->redis.reconnect_max_ms < c->redis.reconnect_min_ms)
        return fail_at(r, r->seen[imax] ? r->mark[imax] : top,
                       "redis.reconnect_max_ms (%d) must be at least redis.reconnect_min_ms (%d)",
                       c->redis.reconnect_max_ms, c->redis.reconnect_min_ms);
    int iretry = find_key("worker.retry_max_ms");
    if (c->worker.retry_max_ms < c->worker.retry_min_ms)
        return fail_at(r, r->seen[iretry] ? r->mark[iretry] : top,
                       "worker.retry_max_ms (%d) must be at least worker.retry_min_ms (%d)",
                       c->worker.retry_max_ms, c->worker.retry_min_ms);
    if (c->workers.heartbeat_ttl_ms <= c->workers.check_interval_ms)
        return fail_at(r, r->seen[ittl] ? r->mark[ittl] : top,
                       "workers.heartbeat_ttl_ms (%d) must be larger than workers.check_interval_ms (%d)",
                       c->workers.heartbeat_ttl_ms, c->workers.check_interval_ms);
    if (c->redis.password_file[0] != '\0') {
        int ip = find_key("redis.password_file");
        char full[PATH_MAX];
        const char *pf = c->redis.password_file;
        const char *slash = strrchr(r->path, '/');
        if (pf[0] != '/' && slash != NULL)
            snprintf(full, sizeof full, "%.*s/%s", (int)(slash - r->path), r->path, pf);
        else
            snprintf(full, sizeof full, "%s", pf);
        FILE *f = fopen(full, "r");
        if (f == NULL)
            return fail_at(r, r->mark[ip], "redis.password_file: cannot read %s: %s", full,
                           strerror(errno));
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (n > 0 && buf[n - 1] == '\n')
            buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '\r')
            buf[--n] = '\0';
        if (n == 0)
            return fail_at(r, r->mark[ip], "redis.password_file: %s is empty", full);
        c->redis.password = strdup(buf);
        memset(buf, 0, sizeof buf);
        if (c->redis.password == NULL)
            return fail_at(r, r->mark[ip], "out of memory");
    }
    return 0;
}

int conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
    struct reader r;
    FILE *f = NULL;
    int rc = -1;

    if (conf_defaults(c) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memset(&r, 0, sizeof r);
    r.path = path;
    r.c = c;
    r.err = err;
    r.errlen = errlen;
    c->path = strdup(path);
    f = fopen(path, "rb");
    if (f == NULL || c->path == NULL) {
        snprintf(err, errlen, "%s: %s", path, f == NULL ? strerror(errno) : "out of memory");
        goto out;
    }
    if (!yaml_parser_initialize(&r.parser)) {
        snprintf(err, errlen, "%s: cannot start the YAML parser", path);
        goto out;
    }
    yaml_parser_set_input_file(&r.parser, f);
    rc = walk(&r);
    if (rc == 0)
        rc = post_validate(&r);
    yaml_parser_delete(&r.parser);
out:
    if (f)
        fclose(f);
    if (rc != 0)
        conf_free(c);
    return rc;
}

size_t conf_keep_unreloadable(struct conf *next, const struct conf *cur,
                              void (*each)(const char *key, void *arg), void *arg)
{
    size_t kept = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key *k = &keys[i];
        if (k->reload)
            continue;
        if (k->type == K_STR) {
            char **n = field(next, k);
            char *const *o = cfield(cur, k);
            if (strcmp(*n, *o) == 0)
                continue;
            char *dup = strdup(*o);
            if (dup == NULL)
                continue;
            free(*n);
            *n = dup;
        } else {
            if (get_int(next, k) == get_int(cur, k))
                continue;
            put_int(next, k, get_int(cur, k));
        }
        kept++;
        if (each)
            each(k->name, arg);
    }
    /* The password follows its file, which cannot change without a restart. */
    free(next->redis.password);
    next->redis.password = cur->redis.password ? strdup(cur->redis.password) : NULL;
    return kept;
}
