/*
 * Integration: slotctl against slotd and a real Redis: every command, its
 * --json output, its exit codes, and its errors when Redis is unreachable;
 * and every command's JSON and text for bytes that are not plain text
 * (invalid UTF-8, NUL, controls, huge values, leading dashes).
 */
#include <check.h>
#include <signal.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bytes.h"
#include "check_main.h"
#include "deadletter.h"
#include "env.h"
#include "harness.h"
#include "keyslot.h"
#include "testrng.h"
#include "utf8.h"

#define LONG_TTL 600000

static char out[1 << 23];

/* Runs slotctl with args (and input on stdin if not NULL); its exit code. */
static int ctl(struct env *e, const char *input, const char *args)
{
    return env_slotctl(e, input, args, out, sizeof out);
}

static json_t *ctl_json(struct env *e, const char *args)
{
    char a[512];
    json_error_t err;
    snprintf(a, sizeof a, "--json %s", args);
    ck_assert_int_eq(ctl(e, NULL, a), 0);
    json_t *j = json_loads(out, 0, &err);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    return j;
}

START_TEST(read_commands_and_json)
{
    struct env e;
    const char *ids[] = { "a", "b" };
    env_start(&e, NULL, NULL);
    env_worker_beat(&e, "a", LONG_TTL, 0);
    env_worker_beat(&e, "b", LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 2, 5000), 0);

    ck_assert_int_eq(ctl(&e, NULL, "status"), 0);
    ck_assert_msg(strstr(out, "workers   2 own slots") != NULL, "%s", out);
    json_t *st = ctl_json(&e, "status");
    ck_assert_int_eq(json_integer_value(json_object_get(st, "live_workers_with_slots")), 2);
    json_decref(st);

    ck_assert_int_eq(ctl(&e, NULL, "workers"), 0);
    ck_assert_msg(strstr(out, "0-8191") && strstr(out, "8192-16383"), "%s", out);
    json_t *w = ctl_json(&e, "workers");
    ck_assert_uint_eq(json_array_size(w), 2);
    json_decref(w);

    ck_assert_int_eq(ctl(&e, NULL, "slots --map"), 0);
    ck_assert_msg(strstr(out, "AAAAAAAA") && strstr(out, "BBBBBBBB"), "%s", out);
    json_t *s = ctl_json(&e, "slots");
    ck_assert_str_eq(json_string_value(json_object_get(s, "a")), "0-8191");
    json_decref(s);

    /* keyslot equals Redis Cluster's (keyslot() is checked against
     * CLUSTER KEYSLOT elsewhere) and names the owner. */
    json_t *k = ctl_json(&e, "keyslot '{user1000}.following'");
    ck_assert_int_eq(json_integer_value(json_object_get(k, "slot")), 3443);
    ck_assert_str_eq(json_string_value(json_object_get(k, "worker")), "a");
    json_decref(k);
    ck_assert_int_eq(ctl(&e, NULL, "keyslot foo"), 0);
    ck_assert_msg(strstr(out, "foo: slot 12182, worker b") != NULL, "%s", out);
    env_stop(&e);
}
END_TEST

START_TEST(push_dead_letters_requeue_purge)
{
    struct env e;
    const char *ids[] = { "a" };
    env_start(&e, NULL, NULL);
    env_worker_beat(&e, "a", LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, ids, 1, 5000), 0);

    ck_assert_int_eq(ctl(&e, NULL, "push --key user:7 '{\"op\":\"charge\"}'"), 0);
    ck_assert_int_eq(env_wait_llen(&e, "queue:a", 1, 3000), 0);
    char qa[64];
    redisReply *r = harness_cmd(e.c, "LINDEX %s 0", env_key(qa, sizeof qa, "queue:a"));
    ck_assert_str_eq(r->str, "{\"op\":\"charge\",\"key\":\"user:7\"}");
    freeReplyObject(r);

    /* Two bad tasks, from stdin and argv. */
    ck_assert_int_eq(ctl(&e, "not json", "push -"), 0);
    ck_assert_int_eq(ctl(&e, NULL, "push '{\"id\":1}'"), 0);
    ck_assert_int_eq(env_wait_llen(&e, "dead", 2, 3000), 0);
    ck_assert_int_eq(ctl(&e, NULL, "dead list"), 0);
    ck_assert_msg(strstr(out, "invalid_json") && strstr(out, "no_key"), "%s", out);
    json_t *d = ctl_json(&e, "dead list 1");
    ck_assert_uint_eq(json_array_size(d), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "reason")), "no_key");
    json_decref(d);

    /* Requeue restores the original bytes to the intake (where slotd
     * dead-letters them again, as they are still bad). */
    char dk[64];
    ck_assert_int_eq(ctl(&e, NULL, "dead requeue 1"), 0);
    ck_assert_msg(strstr(out, "requeued 1") != NULL, "%s", out);
    ck_assert_int_eq(env_wait_llen(&e, "dead", 2, 3000), 0);
    r = harness_cmd(e.c, "LINDEX %s 0", env_key(dk, sizeof dk, "dead"));
    ck_assert_msg(strstr(r->str, "\"task\":\"not json\"") != NULL, "%s", r->str);
    freeReplyObject(r);

    /* The intake of another type: the dead letter stays where it is. */
    char ik[64];
    env_key(ik, sizeof ik, "intake");
    env_slotd_stop(&e, SIGTERM);
    freeReplyObject(harness_cmd(e.c, "SET %s oops", ik));
    ck_assert_int_eq(ctl(&e, NULL, "dead requeue 1"), 1);
    ck_assert_msg(strstr(out, "{t}:intake holds a string") != NULL, "%s", out);
    ck_assert_int_eq(env_llen(&e, "dead"), 2);
    freeReplyObject(harness_cmd(e.c, "DEL %s", ik));

    ck_assert_int_eq(ctl(&e, NULL, "dead purge"), 0);
    ck_assert_int_eq(env_llen(&e, "dead"), 0);
    ck_assert_int_eq(ctl(&e, NULL, "dead requeue"), 2);       /* nothing to requeue */
    env_stop(&e);
}
END_TEST

START_TEST(drain_moves_slots_away_and_undo_gives_them_back)
{
    struct env e;
    const char *abc[] = { "a", "b", "c" }, *ac[] = { "a", "c" };
    env_start(&e, NULL, "workers:\n  check_interval_ms: 50\n");
    for (int i = 0; i < 3; i++)
        env_worker_beat(&e, abc[i], LONG_TTL, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_owners(&e, abc, 3, 5000), 0);
    /* b has queued tasks: they go to the new owners, in order. */
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = 0; i < 300; i++)
        freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", intake, i % 30, i));
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    long long b_had = env_llen(&e, "queue:b");
    ck_assert_int_gt(b_had, 0);
    ck_assert_int_eq(ctl(&e, NULL, "drain b"), 0);
    ck_assert_int_eq(env_wait_owners(&e, ac, 2, 3000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "queue:b", 0, 3000), 0);
    ck_assert_int_eq(env_wait_log(&e, "worker b drained", 1000), 0);
    /* b held nothing in flight: its fence goes at the next check. */
    ck_assert_int_eq(env_wait_log(&e, "worker b has finished the tasks it held", 2000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    ck_assert_int_eq(env_llen(&e, "fenced:b"), 0);
    ck_assert_int_eq(env_llen(&e, "queue:a") + env_llen(&e, "queue:c"), 300);
    ck_assert_int_eq(ctl(&e, NULL, "drain --undo b"), 0);
    ck_assert_int_eq(env_wait_owners(&e, abc, 3, 3000), 0);
    ck_assert_int_eq(ctl(&e, NULL, "drain nobody"), 2);
    ck_assert_int_eq(ctl(&e, NULL, "drain 'bad id'"), 64);
    env_stop(&e);
}
END_TEST

START_TEST(usage_config_and_unreachable_exit_codes)
{
    struct env e;
    env_start(&e, NULL, NULL);
    ck_assert_int_eq(ctl(&e, NULL, "frobnicate"), 64);
    ck_assert_int_eq(ctl(&e, NULL, ""), 64);
    harness_redis_kill(&e.redis, SIGTERM);
    ck_assert_int_eq(ctl(&e, NULL, "status"), 69);
    ck_assert_msg(strstr(out, "cannot reach Redis at 127.0.0.1:") != NULL, "%s", out);
    harness_write_file(e.conf, "redis:\n  port: nope\n");
    ck_assert_int_eq(ctl(&e, NULL, "status"), 78);
    ck_assert_msg(strstr(out, "slotd.yaml:2:9:") != NULL, "%s", out);
    redisFree(e.c);
    e.c = NULL;
    env_stop(&e);
}
END_TEST

/* ---- any bytes ---------------------------------------------------------- */

static char err[1 << 16];       /* slotctl's stderr, when apart */
static size_t outlen;           /* bytes in out, when apart */

struct odd {
    const char *p;
    size_t      n;
};
#define ODD(s) { s, sizeof s - 1 }

/* Worker ids, keys, values that are not plain text. */
static const struct odd odd[] = {
    ODD("\xff\xfe"), ODD("nul\0id"), ODD("esc\x1b[31mred\x1b[0m"), ODD("new\nline\r"),
    ODD("-dash"), ODD("\xe2\x80\xae" "rlo"), ODD("caf\xc3\xa9"), ODD("back\\slash"),
    ODD("\xc2\x9b" "c1"), ODD("x\xc3"), ODD("\xed\xa0\x80"), ODD("tab\there"),
};
#define NODD (sizeof odd / sizeof *odd)

/* 200 KB of random bytes, mostly where UTF-8 goes wrong; no NUL and no
 * newline, so that it can also be a command-line argument (cut to 100 KB:
 * Linux takes at most 128 KiB per argument). */
static unsigned char huge[200000];

static void fill_huge(void)
{
    static const unsigned char pick[] = { 0x1b, 0x5c, 0x7f, 0x80, 0x9b, 0xc2, 0xc3, 0xe2,
                                          0xed, 0xef, 0xf0, 0xf4, 0xff, '"', '-' };
    uint64_t rng = 0x5107c7;
    for (size_t i = 0; i < sizeof huge; i++) {
        unsigned b = testrng_below(&rng, 2) ? 1 + testrng_below(&rng, 255)
                                            : pick[testrng_below(&rng, sizeof pick)];
        huge[i] = (unsigned char)(b == '\n' ? 'n' : b);
    }
}

/* A shell word that expands to the n bytes at p (no NUL; a trailing
 * newline would be lost): they go through a file in the test's dir. */
static const char *arg(struct env *e, const void *p, size_t n)
{
    static char words[4][700];
    static int next;
    char path[600];
    char *w = words[next++ % 4];
    snprintf(path, sizeof path, "%s/arg%d", e->redis.dir, next);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
    snprintf(w, sizeof words[0], "\"$(cat '%s')\"", path);
    return w;
}

/* Runs slotctl (stdout and stderr apart); its exit code. */
static int ctl_apart(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl_apart(struct env *e, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return env_slotctl_apart(e, args, out, sizeof out, &outlen, err, sizeof err);
}

/* Every "<name>_base64" has its "<name>" string beside it and decodes. */
static void check_form(const json_t *v)
{
    const char *k;
    json_t *m;
    size_t i;
    if (json_is_array(v))
        json_array_foreach(v, i, m) check_form(m);
    if (!json_is_object(v))
        return;
    json_object_foreach((json_t *)(uintptr_t)v, k, m) {
        size_t kl = strlen(k), n;
        if (kl > 7 && strcmp(k + kl - 7, "_base64") == 0) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(kl - 7), k);
            ck_assert_msg(json_is_string(json_object_get(v, name)), "%s without %s", k, name);
            char *b = bytes_json_get(v, name, &n);
            ck_assert_msg(b != NULL, "%s is not base64", k);
            free(b);
        }
        check_form(m);
    }
}

/* stdout is exactly one JSON document, read by jansson's strict parser (no
 * NUL in strings, no duplicate keys, nothing after it), in our form. */
static json_t *strict_json(void)
{
    json_error_t e;
    ck_assert_msg(strlen(out) == outlen, "a raw NUL in the output");
    json_t *j = json_loadb(out, outlen, JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(j != NULL, "not JSON (%s at %d): %.300s (stderr: %.300s)", e.text, e.position, out, err);
    check_form(j);
    return j;
}

/* Nothing a terminal acts on: valid UTF-8, no control character but the
 * newline, no C1 control, nothing that reorders text. */
static void check_harmless(const char *t, size_t n, const char *what)
{
    const unsigned char *p = (const unsigned char *)t, *end = p + n;
    while (p < end) {
        ck_assert_msg(*p >= 0x20 ? *p != 0x7f : *p == '\n', "%s: control byte 0x%02x at %zu", what,
                      *p, (size_t)(p - (const unsigned char *)t));
        size_t k = *p >= 0x80 ? utf8_seq(p, end) : 1;
        ck_assert_msg(k > 0, "%s: invalid UTF-8 at %zu", what, (size_t)(p - (const unsigned char *)t));
        ck_assert_msg(!(p[0] == 0xc2 && p[1] < 0xa0), "%s: a C1 control", what);
        ck_assert_msg(!(p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae), "%s: bidi", what);
        p += k;
    }
}

/* The element of arr whose field's exact bytes are p[0..n), or NULL. */
static json_t *find(json_t *arr, const char *field, const void *p, size_t n)
{
    size_t i, len;
    json_t *el;
    json_array_foreach(arr, i, el) {
        char *b = bytes_json_get(el, field, &len);
        int same = b != NULL && len == n && memcmp(b, p, n) == 0;
        free(b);
        if (same)
            return el;
    }
    return NULL;
}

static void expect_bytes(const json_t *o, const char *field, const void *p, size_t n)
{
    size_t len = 0;
    char *b = bytes_json_get(o, field, &len);
    ck_assert_msg(b != NULL, "no %s", field);
    ck_assert_uint_eq(len, n);
    ck_assert_msg(memcmp(b, p, n) == 0, "%s differs", field);
    free(b);
}

/* The text form of the n bytes at p, in a static buffer. */
static const char *shown(const void *p, size_t n)
{
    static char buf[1 << 20];
    char *t = bytes_text(p, n, 0);
    ck_assert_ptr_nonnull(t);
    snprintf(buf, sizeof buf, "%s", t);
    free(t);
    return buf;
}

static void push_dead(struct env *e, const void *task, size_t n)
{
    char key[64];
    size_t len;
    char *entry = deadletter_format("invalid_json", "detail\x1b[2J", task, n, 1, &len);
    ck_assert_ptr_nonnull(entry);
    freeReplyObject(harness_cmd(e->c, "LPUSH %s %b", env_key(key, sizeof key, "dead"), entry, len));
    free(entry);
}

static const struct odd not_dead[] = {
    ODD("\xff\x00not a dead letter\x1b[2J"), ODD("[1,2]"), ODD("{\"task_base64\":\"@@@@\"}"),
};
static const struct odd dead_tasks[] = { ODD("\xff\x00\x1b[31m"), ODD("a\0b\x1b") };

/* A namespace full of odd bytes, written straight into Redis (no slotd, so
 * nothing changes while slotctl reads it). */
static void odd_state(struct env *e)
{
    char k[64], k2[64];
    fill_huge();
    /* Slots 16000-16383 are nobody's: "z\0x" is not worker z. */
    env_key(k, sizeof k, "slots");
    freeReplyObject(harness_cmd(e->c, "HSET %s a 0-8191 b 8192-15999", k));
    freeReplyObject(harness_cmd(e->c, "HSET %s %b 1-2", k, "\xff\x1b[2Jbad", (size_t)8));
    freeReplyObject(harness_cmd(e->c, "HSET %s c %b", k, "\xff\x1b[2J", (size_t)5));
    freeReplyObject(harness_cmd(e->c, "HSET %s %b 16000-16383", k, "z\0x", (size_t)3));
    env_key(k, sizeof k, "workers");
    freeReplyObject(harness_cmd(e->c, "SADD %s a b", k));
    for (size_t i = 0; i < NODD; i++)
        freeReplyObject(harness_cmd(e->c, "SADD %s %b", k, odd[i].p, odd[i].n));
    freeReplyObject(harness_cmd(e->c, "SADD %s %b", k, huge, sizeof huge));
    env_key(k, sizeof k, "hb:a");
    freeReplyObject(harness_cmd(e->c, "SET %s {\"host\":\"h\",\"pid\":1} PX %d", k, LONG_TTL));
    env_key(k, sizeof k, "hb:b");
    freeReplyObject(harness_cmd(e->c, "SET %s %b PX %d", k, "\xff\x1b[2J not json", (size_t)15, LONG_TTL));
    /* "nul" draining must not make "nul\0id" draining. */
    env_key(k, sizeof k, "draining");
    freeReplyObject(harness_cmd(e->c, "SADD %s b nul", k));
    env_key(k, sizeof k, "fences");
    freeReplyObject(harness_cmd(e->c, "HSET %s a %b", k, "\xff\x00slots", (size_t)7));
    freeReplyObject(harness_cmd(e->c, "HSET %s %b 1-2", k, "\xfe\x1b]0;title\x07", (size_t)11));
    env_key(k, sizeof k, "fenced:a");
    freeReplyObject(harness_cmd(e->c, "LPUSH %s x y", k));
    env_key(k2, sizeof k2, "epoch");
    freeReplyObject(harness_cmd(e->c, "SET %s %b", k2, "7\xff\x1b[2J", (size_t)6));
    /* Oldest first: the two odd tasks, the huge one, then what is not a
     * dead letter. */
    for (size_t i = 0; i < sizeof dead_tasks / sizeof *dead_tasks; i++)
        push_dead(e, dead_tasks[i].p, dead_tasks[i].n);
    push_dead(e, huge, sizeof huge);
    env_key(k, sizeof k, "dead");
    for (size_t i = 0; i < sizeof not_dead / sizeof *not_dead; i++)
        freeReplyObject(harness_cmd(e->c, "LPUSH %s %b", k, not_dead[i].p, not_dead[i].n));
}

START_TEST(json_is_strict_json_for_any_bytes)
{
    struct env e;
    env_start(&e, NULL, NULL);
    odd_state(&e);

    /* workers: every id, exactly; ids slotd ignores are said to be so. */
    ck_assert_int_eq(ctl_apart(&e, "--json workers"), 0);
    json_t *w = strict_json();
    ck_assert_uint_eq(json_array_size(w), 2 + NODD + 1);
    for (size_t i = 0; i < NODD; i++) {
        json_t *row = find(w, "id", odd[i].p, odd[i].n);
        ck_assert_msg(row != NULL, "worker %zu missing", i);
        ck_assert(json_is_boolean(json_object_get(row, "valid_id")));
        ck_assert(json_is_false(json_object_get(row, "draining")));
    }
    json_t *a = find(w, "id", "a", 1), *b = find(w, "id", "b", 1);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert(json_is_true(json_object_get(a, "live")));
    ck_assert_str_eq(json_string_value(json_object_get(a, "slots")), "0-8191");
    ck_assert(json_is_true(json_object_get(b, "draining")));
    expect_bytes(b, "heartbeat_raw", "\xff\x1b[2J not json", 15);
    ck_assert_ptr_nonnull(find(w, "id", huge, sizeof huge));
    json_t *nul = find(w, "id", "nul\0id", 6);
    ck_assert(json_is_false(json_object_get(nul, "valid_id")));
    ck_assert_ptr_null(json_object_get(nul, "queue"));     /* its bytes name no key */
    ck_assert_str_eq(json_string_value(json_object_get(nul, "id")), "nul\xef\xbf\xbdid");
    ck_assert(json_is_true(json_object_get(find(w, "id", "-dash", 5), "valid_id")));
    json_decref(w);
    /* The invalid slot table entries are reported, escaped, on stderr. */
    check_harmless(err, strlen(err), "stderr");
    ck_assert_msg(strstr(err, "\\xff\\x1b[2Jbad") != NULL, "%.500s", err);

    ck_assert_int_eq(ctl_apart(&e, "--json status"), 0);
    json_t *st = strict_json();
    expect_bytes(st, "epoch", "7\xff\x1b[2J", 6);
    json_t *fences = json_object_get(st, "fences");
    json_t *fa = find(fences, "worker", "a", 1);
    ck_assert_ptr_nonnull(fa);
    expect_bytes(fa, "slots", "\xff\x00slots", 7);
    ck_assert_int_eq(json_integer_value(json_object_get(fa, "waiting")), 2);
    json_t *fbad = find(fences, "worker", "\xfe\x1b]0;title\x07", 11);
    ck_assert_ptr_nonnull(fbad);
    ck_assert_ptr_null(json_object_get(fbad, "waiting"));
    ck_assert_uint_eq(json_array_size(json_object_get(st, "workers")), 2 + NODD + 1);
    json_decref(st);

    ck_assert_int_eq(ctl_apart(&e, "--json slots"), 0);
    json_t *sl = strict_json();
    ck_assert_uint_eq(json_object_size(sl), 2);
    ck_assert_str_eq(json_string_value(json_object_get(sl, "b")), "8192-15999");
    json_decref(sl);

    /* dead list: each task exactly; what is not a dead letter, exactly too. */
    ck_assert_int_eq(ctl_apart(&e, "--json dead list 100"), 0);
    json_t *d = strict_json();
    ck_assert_uint_eq(json_array_size(d), 6);
    for (size_t i = 0; i < 3; i++) {
        json_t *el = json_array_get(d, 2 - i);
        ck_assert_ptr_null(json_object_get(el, "reason"));
        expect_bytes(el, "entry", not_dead[i].p, not_dead[i].n);
    }
    for (size_t i = 3; i < 6; i++)      /* "task" always, for reading */
        ck_assert(json_is_string(json_object_get(json_array_get(d, i), "task")));
    expect_bytes(json_array_get(d, 3), "task", huge, sizeof huge);
    expect_bytes(json_array_get(d, 4), "task", dead_tasks[1].p, dead_tasks[1].n);
    expect_bytes(json_array_get(d, 5), "task", dead_tasks[0].p, dead_tasks[0].n);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(d, 5), "reason")), "invalid_json");
    expect_bytes(json_array_get(d, 5), "detail", "detail\x1b[2J", 10);
    json_decref(d);
    env_stop(&e);
}
END_TEST

START_TEST(text_is_escaped_for_any_bytes)
{
    struct env e;
    env_start(&e, NULL, NULL);
    odd_state(&e);

    ck_assert_int_eq(ctl_apart(&e, "workers"), 0);
    check_harmless(out, outlen, "workers");
    check_harmless(err, strlen(err), "stderr");
    for (size_t i = 0; i < NODD; i++)
        ck_assert_msg(strstr(out, shown(odd[i].p, odd[i].n)) != NULL, "%.300s... lacks %.300s", out,
                      shown(odd[i].p, odd[i].n));
    ck_assert_msg(strstr(out, "nul\\x00id") && strstr(out, "back\\\\slash") &&
                  strstr(out, "esc\\x1b[31mred\\x1b[0m"), "%.500s", out);
    ck_assert_msg(strstr(out, shown(huge, sizeof huge)) != NULL, "the huge id");

    ck_assert_int_eq(ctl_apart(&e, "status"), 0);
    check_harmless(out, outlen, "status");
    ck_assert_msg(strstr(out, "epoch 7\\xff\\x1b[2J\n") != NULL, "%.500s", out);
    ck_assert_msg(strstr(out, "fenced    a handed off \\xff\\x00slots; 2 tasks") != NULL, "%.500s", out);
    ck_assert_msg(strstr(out, "\\xfe\\x1b]0;title\\x07 handed off 1-2") != NULL, "%.500s", out);

    ck_assert_int_eq(ctl_apart(&e, "slots --map"), 0);
    check_harmless(out, outlen, "slots");

    ck_assert_int_eq(ctl_apart(&e, "dead list 100"), 0);
    check_harmless(out, outlen, "dead list");
    ck_assert_msg(strstr(out, "\\xff\\x00\\x1b[31m") && strstr(out, "a\\x00b\\x1b") &&
                  strstr(out, "detail\\x1b[2J") &&
                  strstr(out, "\\xff\\x00not a dead letter\\x1b[2J"), "%.500s", out);
    env_stop(&e);
}
END_TEST

/* keyslot KEY, --json or not, for keys of any bytes (argv cannot hold a
 * NUL), after "--" when they start with a dash. */
START_TEST(keyslot_any_key)
{
    struct env e;
    env_start(&e, NULL, NULL);
    odd_state(&e);
    struct odd keys[NODD + 6];
    size_t nk = 0;
    for (size_t i = 0; i < NODD; i++)
        if (memchr(odd[i].p, '\0', odd[i].n) == NULL)
            keys[nk++] = odd[i];
    keys[nk++] = (struct odd)ODD("--json");
    keys[nk++] = (struct odd)ODD("-");
    keys[nk++] = (struct odd)ODD("--");
    keys[nk++] = (struct odd)ODD("");
    keys[nk++] = (struct odd)ODD("-k73");        /* slot 16224: no owner */
    keys[nk++] = (struct odd){ (const char *)huge, 100000 };
    for (size_t i = 0; i < nk; i++) {
        unsigned slot = keyslot(keys[i].p, keys[i].n);
        const char *owner = slot < 8192 ? "a" : slot < 16000 ? "b" : NULL;
        ck_assert_int_eq(ctl_apart(&e, "--json keyslot -- %s", arg(&e, keys[i].p, keys[i].n)), 0);
        json_t *j = strict_json();
        expect_bytes(j, "key", keys[i].p, keys[i].n);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "slot")), slot);
        if (owner)
            ck_assert_str_eq(json_string_value(json_object_get(j, "worker")), owner);
        else
            ck_assert(json_is_null(json_object_get(j, "worker")));
        json_decref(j);
        ck_assert_int_eq(ctl_apart(&e, "keyslot -- %s", arg(&e, keys[i].p, keys[i].n)), 0);
        check_harmless(out, outlen, "keyslot");
        char want[64];
        snprintf(want, sizeof want, ": slot %u, %s%s\n", slot, owner ? "worker " : "no owner",
                 owner ? owner : "");
        ck_assert_msg(strncmp(out, shown(keys[i].p, keys[i].n), strlen(shown(keys[i].p, keys[i].n))) == 0 &&
                      strcmp(out + strlen(shown(keys[i].p, keys[i].n)), want) == 0, "key %zu: %.200s", i, out);
    }
    /* Without "--" a leading dash is an option. */
    ck_assert_int_eq(ctl_apart(&e, "keyslot -foo"), 64);
    ck_assert_int_eq(ctl_apart(&e, "keyslot -- -foo"), 0);
    ck_assert_msg(strncmp(out, "-foo: slot ", 11) == 0, "%.500s", out);
    /* The same under POSIXLY_CORRECT, and options after the command. */
    setenv("POSIXLY_CORRECT", "1", 1);
    int rc = ctl_apart(&e, "keyslot -- -foo");
    int rc2 = ctl_apart(&e, "keyslot foo --json");
    unsetenv("POSIXLY_CORRECT");
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(rc2, 0);
    json_decref(strict_json());
    env_stop(&e);
}
END_TEST

/* push, dead requeue and purge, drain: --json answers in JSON, and the
 * bytes that go into Redis are exactly those given. */
START_TEST(write_commands_json_and_exact_bytes)
{
    struct env e;
    char intake[64], path[600];
    env_start(&e, NULL, NULL);
    odd_state(&e);
    env_key(intake, sizeof intake, "intake");

    ck_assert_int_eq(ctl_apart(&e, "--json push -- -task"), 0);
    json_t *j = strict_json();
    ck_assert_int_eq(json_integer_value(json_object_get(j, "pushed_bytes")), 5);
    json_decref(j);
    redisReply *r = harness_cmd(e.c, "LINDEX %s 0", intake);
    ck_assert_str_eq(r->str, "-task");
    freeReplyObject(r);

    /* Standard input: any bytes, NULs included. */
    static const char bin[] = "\xff\x00\x1b[2Jtask\x00";
    snprintf(path, sizeof path, "%s/bin", e.redis.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(bin, 1, sizeof bin - 1, f);
    fclose(f);
    ck_assert_int_eq(ctl_apart(&e, "--json push - < '%s'", path), 0);
    json_decref(strict_json());
    r = harness_cmd(e.c, "LINDEX %s 0", intake);
    ck_assert_uint_eq(r->len, sizeof bin - 1);
    ck_assert_int_eq(memcmp(r->str, bin, r->len), 0);
    freeReplyObject(r);
    ck_assert_int_eq(ctl_apart(&e, "push - < '%s'", path), 0);
    check_harmless(out, outlen, "push");

    /* --key: any text, into a task that holds a NUL; not UTF-8: refused. */
    ck_assert_int_eq(ctl_apart(&e, "--json push --key %s '{\"x\":\"\\u0000\"}'",
                               arg(&e, "-k\x1b\xc3\xa9", 5)), 0);
    json_decref(strict_json());
    r = harness_cmd(e.c, "LINDEX %s 0", intake);
    ck_assert_str_eq(r->str, "{\"x\":\"\\u0000\",\"key\":\"-k\\u001B\xc3\xa9\"}");
    freeReplyObject(r);
    ck_assert_int_eq(ctl_apart(&e, "--json push --key %s '{}'", arg(&e, "\xff", 1)), 64);
    ck_assert_uint_eq(outlen, 0);
    check_harmless(err, strlen(err), "stderr");

    /* dead requeue: the oldest entries' exact bytes, oldest first. */
    ck_assert_int_eq(ctl_apart(&e, "--json dead requeue 2"), 0);
    j = strict_json();
    ck_assert_int_eq(json_integer_value(json_object_get(j, "requeued")), 2);
    json_decref(j);
    r = harness_cmd(e.c, "LRANGE %s 0 1", intake);
    ck_assert_uint_eq(r->element[0]->len, dead_tasks[1].n);
    ck_assert_int_eq(memcmp(r->element[0]->str, dead_tasks[1].p, dead_tasks[1].n), 0);
    ck_assert_uint_eq(r->element[1]->len, dead_tasks[0].n);
    ck_assert_int_eq(memcmp(r->element[1]->str, dead_tasks[0].p, dead_tasks[0].n), 0);
    freeReplyObject(r);
    /* Then the huge one, then an entry that is not a dead letter: a failure. */
    ck_assert_int_eq(ctl_apart(&e, "--json dead requeue"), 1);
    ck_assert_uint_eq(outlen, 0);
    ck_assert_msg(strstr(err, "not a dead letter") && strstr(err, "requeued 1"), "%.500s", err);
    r = harness_cmd(e.c, "LINDEX %s 0", intake);
    ck_assert_uint_eq(r->len, sizeof huge);
    ck_assert_int_eq(memcmp(r->str, huge, sizeof huge), 0);
    freeReplyObject(r);
    ck_assert_int_eq(ctl_apart(&e, "--json dead purge"), 0);
    j = strict_json();
    ck_assert_int_eq(json_integer_value(json_object_get(j, "purged")), 3);
    json_decref(j);
    ck_assert_int_eq(ctl_apart(&e, "--json dead requeue"), 2);
    json_decref(strict_json());

    /* drain: a dashed id after "--"; an invalid one is refused, escaped. */
    ck_assert_int_eq(ctl_apart(&e, "--json drain -- -dash"), 0);
    j = strict_json();
    expect_bytes(j, "worker", "-dash", 5);
    ck_assert(json_is_true(json_object_get(j, "draining")));
    json_decref(j);
    ck_assert_int_eq(ctl_apart(&e, "--json drain --undo -- -dash"), 0);
    j = strict_json();
    ck_assert(json_is_false(json_object_get(j, "draining")));
    json_decref(j);
    ck_assert_int_eq(ctl_apart(&e, "--json drain %s", arg(&e, "\xff\x1b[2J", 5)), 64);
    ck_assert_uint_eq(outlen, 0);
    check_harmless(err, strlen(err), "stderr");
    ck_assert_msg(strstr(err, "'\\xff\\x1b[2J' is not a valid worker id") != NULL, "%.500s", err);
    env_stop(&e);
}
END_TEST

/* Output that cannot be written is a failure, not silence. */
START_TEST(unwritable_output_fails)
{
    struct env e;
    env_start(&e, NULL, NULL);
    odd_state(&e);
    const char *cmds[] = { "--json status", "status", "--json workers", "--json slots",
                           "--json keyslot foo", "keyslot foo", "--json dead list", "dead list" };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        ck_assert_msg(ctl_apart(&e, "%s >/dev/full", cmds[i]) == 1, "%s", cmds[i]);
        ck_assert_msg(strstr(err, "cannot write") != NULL, "%s: %.500s", cmds[i], err);
    }
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slotctl");
    TCase *tc = tcase_create("slotctl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, read_commands_and_json);
    tcase_add_test(tc, push_dead_letters_requeue_purge);
    tcase_add_test(tc, drain_moves_slots_away_and_undo_gives_them_back);
    tcase_add_test(tc, usage_config_and_unreachable_exit_codes);
    tcase_add_test(tc, json_is_strict_json_for_any_bytes);
    tcase_add_test(tc, text_is_escaped_for_any_bytes);
    tcase_add_test(tc, keyslot_any_key);
    tcase_add_test(tc, write_commands_json_and_exact_bytes);
    tcase_add_test(tc, unwritable_output_fails);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
