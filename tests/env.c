/*
 * env: slotd under test against a private redis-server. See env.h.
 */
#include "env.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slotmap.h"

const char *env_key(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "{" ENV_NS "}:%s", name);
    return buf;
}

/* An extra YAML that starts with "redis:" has its indented lines put in the
 * redis section (a second "redis:" would be a duplicate key). */
static void write_conf(struct env *e)
{
    char text[4096];
    const char *redis = "", *rest = e->extra;
    int redis_len = 0;
    if (strncmp(e->extra, "redis:\n", 7) == 0) {
        redis = e->extra + 7;
        rest = redis;
        while (*rest == ' ') {
            const char *nl = strchr(rest, '\n');
            rest = nl ? nl + 1 : rest + strlen(rest);
        }
        redis_len = (int)(rest - redis);
    }
    char where[512], list[256];
    if (e->ha != NULL)
        snprintf(where, sizeof where, "  sentinels: \"%s\"\n  sentinel_master: %s\n",
                 harness_ha_sentinel_list(e->ha, list, sizeof list), e->ha->name);
    else
        snprintf(where, sizeof where, "  host: 127.0.0.1\n  port: %d\n", e->redis.port);
    snprintf(text, sizeof text,
             "redis:\n"
             "%s"
             "  reconnect_min_ms: 20\n"
             "  reconnect_max_ms: 200\n"
             "%.*s"
             "namespace: " ENV_NS "\n"
             "%s%s",
             where, redis_len, redis, strstr(e->extra, "http:") ? "" : "http:\n  listen: \"\"\n",
             rest);
    ck_assert_int_eq(harness_write_file(e->conf, text), 0);
}

void env_start(struct env *e, const char *redis_conf, const char *extra_yaml)
{
    memset(e, 0, sizeof *e);
    ck_assert_msg(harness_redis_start(&e->redis, redis_conf) == 0, "redis-server did not start");
    snprintf(e->conf, sizeof e->conf, "%s/slotd.yaml", e->redis.dir);
    snprintf(e->log, sizeof e->log, "%s/slotd.log", e->redis.dir);
    snprintf(e->extra, sizeof e->extra, "%s", extra_yaml ? extra_yaml : "");
    write_conf(e);
    e->c = harness_redis_connect(&e->redis);
    ck_assert_ptr_nonnull(e->c);
}

int env_follow(struct env *e)
{
    uint64_t end = harness_now_ms() + 20000;
    if (e->c)
        redisFree(e->c);
    e->c = NULL;
    for (;;) {
        int port = harness_ha_master_port(e->ha);
        struct harness_redis *m = port > 0 ? harness_ha_node(e->ha, port) : NULL;
        redisContext *c = m != NULL && harness_redis_up(m) ? harness_redis_connect(m) : NULL;
        redisReply *r = c ? redisCommand(c, "ROLE") : NULL;
        int master = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                     strcmp(r->element[0]->str, "master") == 0;
        if (r)
            freeReplyObject(r);
        if (master) {
            e->c = c;
            return port;
        }
        if (c)
            redisFree(c);
        ck_assert_msg(harness_now_ms() < end, "the sentinels name no master that says so");
        usleep(20000);
    }
}

void env_start_ha(struct env *e, struct harness_ha *ha, const char *extra_yaml)
{
    memset(e, 0, sizeof *e);
    e->ha = ha;
    ck_assert_int_eq(harness_tmpdir(e->redis.dir, sizeof e->redis.dir), 0);
    snprintf(e->conf, sizeof e->conf, "%s/slotd.yaml", e->redis.dir);
    snprintf(e->log, sizeof e->log, "%s/slotd.log", e->redis.dir);
    snprintf(e->extra, sizeof e->extra, "%s", extra_yaml ? extra_yaml : "");
    write_conf(e);
    env_follow(e);
}

void env_slotd_start(struct env *e)
{
    char bin[512];
    snprintf(bin, sizeof bin, "%s/slotd", harness_build_dir());
    char *argv[] = { bin, "-c", e->conf, NULL };
    /* Each run appends; "loaded" must be seen after this start. */
    FILE *f = fopen(e->log, "a");
    if (f) {
        fputs("---- start ----\n", f);
        fclose(f);
    }
    e->slotd = harness_spawn(argv, e->log);
    ck_assert_msg(e->slotd > 0, "cannot start %s", bin);
}

int env_slotd_stop(struct env *e, int sig)
{
    int status = -1;
    if (e->slotd <= 0)
        return -1;
    harness_kill(e->slotd, sig);
    if (harness_wait_exit(e->slotd, 5000, &status) != 0) {
        harness_kill(e->slotd, SIGKILL);
        harness_wait_exit(e->slotd, 5000, &status);
    }
    e->slotd = 0;
    return status;
}

/* Fails the test if slotd's log holds a sanitizer report. */
static void check_log_clean(struct env *e)
{
    FILE *f = fopen(e->log, "r");
    char line[4096];
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "runtime error") || strstr(line, "Sanitizer")) {
            fclose(f);
            ck_abort_msg("slotd's log (%s) has a sanitizer report: %s", e->log, line);
        }
    fclose(f);
}

void env_stop(struct env *e)
{
    if (e->slotd > 0) {
        /* A clean stop, so LeakSanitizer gets to look at the exit. */
        int status = env_slotd_stop(e, SIGTERM);
        check_log_clean(e);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "slotd exited with status 0x%x on SIGTERM", status);
    }
    check_log_clean(e);
    if (e->c)
        redisFree(e->c);
    e->c = NULL;
    harness_redis_stop(&e->redis);
}

void env_worker_beat(struct env *e, const char *id, int ttl_ms, int weight)
{
    char hb[256], workers[256], value[128], ttl[32];
    env_key(hb, sizeof hb, "hb:");
    strncat(hb, id, sizeof hb - strlen(hb) - 1);
    env_key(workers, sizeof workers, "workers");
    if (weight > 0)
        snprintf(value, sizeof value, "{\"host\":\"test\",\"pid\":%d,\"weight\":%d}", (int)getpid(), weight);
    else
        snprintf(value, sizeof value, "{\"host\":\"test\",\"pid\":%d}", (int)getpid());
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    freeReplyObject(harness_cmd(e->c, "SET %s %s PX %s", hb, value, ttl));
    freeReplyObject(harness_cmd(e->c, "SADD %s %s", workers, id));
}

void env_worker_leave(struct env *e, const char *id)
{
    char hb[256], workers[256];
    env_key(hb, sizeof hb, "hb:");
    strncat(hb, id, sizeof hb - strlen(hb) - 1);
    env_key(workers, sizeof workers, "workers");
    freeReplyObject(harness_cmd(e->c, "SREM %s %s", workers, id));
    freeReplyObject(harness_cmd(e->c, "DEL %s", hb));
}

long long env_llen(struct env *e, const char *name)
{
    char key[256];
    redisReply *r = harness_cmd(e->c, "LLEN %s", env_key(key, sizeof key, name));
    long long n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

int env_wait_llen(struct env *e, const char *name, long long n, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (env_llen(e, name) == n)
            return 0;
        usleep(2000);
    } while (harness_now_ms() < end);
    return -1;
}

/* Lines of this run of slotd (after the last start marker) holding a and
 * b (NULL: any). */
static int log_lines(struct env *e, const char *a, const char *b)
{
    FILE *f = fopen(e->log, "r");
    char line[4096];
    int found = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "---- start ----", 15) == 0)
            found = 0;
        else if (strstr(line, a) && (b == NULL || strstr(line, b)))
            found++;
    }
    fclose(f);
    return found;
}

int env_log_count(struct env *e, const char *text) { return log_lines(e, text, NULL); }

int env_wait_log2(struct env *e, const char *a, const char *b, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (log_lines(e, a, b) > 0)
            return 0;
        usleep(5000);
    } while (harness_now_ms() < end);
    return -1;
}

int env_wait_log(struct env *e, const char *text, int timeout_ms)
{
    return env_wait_log2(e, text, NULL, timeout_ms);
}

static int owners_are(struct env *e, const char *const *ids, size_t n)
{
    char key[256];
    redisReply *r = harness_cmd(e->c, "HGETALL %s", env_key(key, sizeof key, "slots"));
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 * n;
    for (size_t i = 0; ok && i < r->elements; i += 2) {
        int known = 0;
        for (size_t j = 0; j < n; j++)
            if (strcmp(r->element[i]->str, ids[j]) == 0)
                known = 1;
        ok = known && r->element[i + 1]->len > 0;
    }
    freeReplyObject(r);
    return ok;
}

int env_wait_owners(struct env *e, const char *const *ids, size_t n, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (owners_are(e, ids, n))
            return 0;
        usleep(5000);
    } while (harness_now_ms() < end);
    return -1;
}

void env_load_table(struct env *e, struct slotmap *m)
{
    char key[64], err[256];
    slotmap_init(m);
    redisReply *r = harness_cmd(e->c, "HGETALL %s", env_key(key, sizeof key, "slots"));
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        ck_assert_msg(slotmap_claim(m, r->element[i]->str, r->element[i + 1]->str,
                                    r->element[i + 1]->len, err, sizeof err) == 0, "%s", err);
    freeReplyObject(r);
}

pid_t env_worker_start(struct env *e, const char *id, int jobs, const char *script)
{
    char bin[512], log[600], j[16], idbuf[80];
    snprintf(bin, sizeof bin, "%s/slotd-worker", harness_build_dir());
    snprintf(log, sizeof log, "%s/worker-%s.log", e->redis.dir, id);
    snprintf(j, sizeof j, "%d", jobs);
    snprintf(idbuf, sizeof idbuf, "%s", id);
    char *argv[] = { bin, "-c", e->conf, "--id", idbuf, "-j", j, "--", "sh", "-c",
                     (char *)(uintptr_t)script, NULL };
    pid_t pid = harness_spawn(argv, log);
    ck_assert_int_gt(pid, 0);
    return pid;
}

/* Runs slotctl with its stderr sent to stderr_to (a shell redirection
 * target); stdout into out, its length in *outlen. Output beyond cap is
 * read and dropped (so slotctl is not killed by SIGPIPE); *lost counts it. */
static int run_slotctl(struct env *e, const char *input, const char *args, const char *stderr_to,
                       char *out, size_t cap, size_t *outlen, size_t *lost)
{
    char cmd[4096], spill[4096];
    int len;
    if (input)
        len = snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | %s/slotctl -c %s %s 2>%s", input,
                       harness_build_dir(), e->conf, args, stderr_to);
    else
        len = snprintf(cmd, sizeof cmd, "%s/slotctl -c %s %s 2>%s", harness_build_dir(), e->conf,
                       args, stderr_to);
    ck_assert_msg(len > 0 && (size_t)len < sizeof cmd, "slotctl command line too long");
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = 0, got;
    *lost = 0;
    while (n < cap - 1 && (got = fread(out + n, 1, cap - 1 - n, f)) > 0)
        n += got;
    while ((got = fread(spill, 1, sizeof spill, f)) > 0)
        *lost += got;
    out[n] = '\0';
    *outlen = n;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int env_slotctl(struct env *e, const char *input, const char *args, char *out, size_t cap)
{
    size_t n, lost;
    return run_slotctl(e, input, args, "&1", out, cap, &n, &lost);
}

int env_slotctl_apart(struct env *e, const char *args, char *out, size_t cap, size_t *outlen,
                      char *err, size_t errcap)
{
    char path[600];
    size_t lost;
    snprintf(path, sizeof path, "%s/slotctl.stderr", e->redis.dir);
    int rc = run_slotctl(e, NULL, args, path, out, cap, outlen, &lost);
    ck_assert_msg(lost == 0, "slotctl %s wrote more than %zu bytes", args, cap - 1);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(err, 1, errcap - 1, f);
    err[n] = '\0';
    fclose(f);
    return rc;
}
