/* Unit tests for conf: defaults, a full file, every error with its exact
 * FILE:LINE:COLUMN, the password file, reloads, and that every key is in
 * docs/configuration.md, docs/man/slotd.yaml.5 and conf/slotd.yaml (at its
 * default). Run from the repository root. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "check_main.h"
#include "conf.h"
#include "log.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/slotd-conf-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes dir/name; the path lives until the next call. */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* Loads text; expects exactly "PATH:" + want. */
#define expect_error(text, want) expect_error_at(__LINE__, text, want)
static void expect_error_at(int line, const char *text, const char *want)
{
    struct conf c;
    char err[512], full[512];
    const char *path = write_file("bad.yaml", text);
    ck_assert_msg(conf_load(&c, path, err, sizeof err) != 0, "line %d: accepted: %s", line, text);
    snprintf(full, sizeof full, "%s:%s", path, want);
    ck_assert_msg(strcmp(err, full) == 0, "line %d:\n got '%s'\nwant '%s'", line, err, full);
}

static void load_ok(struct conf *c, const char *text)
{
    char err[512];
    ck_assert_msg(conf_load(c, write_file("ok.yaml", text), err, sizeof err) == 0, "%s", err);
}

START_TEST(defaults)
{
    struct conf c;
    ck_assert_int_eq(conf_defaults(&c), 0);
    ck_assert_ptr_null(c.path);
    ck_assert_str_eq(c.redis.host, "127.0.0.1");
    ck_assert_int_eq(c.redis.port, 6379);
    ck_assert_str_eq(c.redis.unix_path, "");
    ck_assert_int_eq(c.redis.db, 0);
    ck_assert_str_eq(c.redis.username, "");
    ck_assert_str_eq(c.redis.password_file, "");
    ck_assert_ptr_null(c.redis.password);
    ck_assert_int_eq(c.redis.reconnect_min_ms, 100);
    ck_assert_int_eq(c.redis.reconnect_max_ms, 5000);
    ck_assert_str_eq(c.ns, "slotd");
    ck_assert_str_eq(c.routing.key_field, "key");
    ck_assert_int_eq(c.routing.on_missing_key, CONF_MISSING_DEAD_LETTER);
    ck_assert_int_eq(c.dispatch.batch, 2000);
    ck_assert_int_eq(c.dispatch.inflight, 1);
    ck_assert_int_eq(c.dispatch.max_task_bytes, 1048576);
    ck_assert_int_eq(c.workers.check_interval_ms, 200);
    ck_assert_int_eq(c.workers.heartbeat_ttl_ms, 3000);
    ck_assert_int_eq(c.workers.max_recoveries, 3);
    ck_assert_int_eq(c.log.level, LL_INFO);
    ck_assert_str_eq(c.http.listen, "127.0.0.1:9464");
    ck_assert_int_eq(c.worker.prefetch, 16);
    ck_assert_int_eq(c.worker.max_attempts, 3);
    ck_assert_int_eq(c.worker.weight, 1);
    ck_assert_int_eq(c.worker.retry_min_ms, 100);
    ck_assert_int_eq(c.worker.retry_max_ms, 10000);
    conf_free(&c);
    conf_free(&c);      /* twice is harmless */
    conf_free(NULL);
}
END_TEST

START_TEST(key_accessors)
{
    size_t n = conf_key_count();
    ck_assert_uint_gt(n, 0);
    ck_assert_str_eq(conf_key_name(0), "redis.host");
    ck_assert_str_eq(conf_key_default(0), "127.0.0.1");
    ck_assert_int_eq(conf_key_reloadable(0), 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(conf_key_name(i));
        ck_assert_ptr_nonnull(conf_key_default(i));
        ck_assert_msg(conf_key_doc(i) && conf_key_doc(i)[0], "%s has no doc line", conf_key_name(i));
        ck_assert(conf_key_reloadable(i) == 0 || conf_key_reloadable(i) == 1);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(conf_key_name(i), conf_key_name(j));
    }
    ck_assert_ptr_null(conf_key_name(n));
    ck_assert_ptr_null(conf_key_default(n));
    ck_assert_ptr_null(conf_key_doc(n));
    ck_assert_int_eq(conf_key_reloadable(n), -1);
}
END_TEST

START_TEST(empty_documents_give_defaults)
{
    const char *texts[] = { "", "\n", "# nothing\n# at all\n", "---\n", "--- # hi\n...\n",
                            "~\n", "null\n", "{}\n" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct conf c;
        load_ok(&c, texts[i]);
        ck_assert_int_eq(c.redis.port, 6379);
        ck_assert_str_eq(c.ns, "slotd");
        ck_assert_ptr_nonnull(c.path);
        conf_free(&c);
    }
}
END_TEST

START_TEST(full_file)
{
    struct conf c;
    write_file("secret", "s3cret\n");
    load_ok(&c,
        "# every key, none at its default\n"
        "redis:\n"
        "  host: redis.internal\n"
        "  port: 6380\n"
        "  unix: /run/redis/redis.sock\n"
        "  db: 3\n"
        "  username: slotd\n"
        "  password_file: secret\n"
        "  reconnect_min_ms: 50\n"
        "  reconnect_max_ms: 1000\n"
        "namespace: jobs.eu-1:a_b\n"
        "routing:\n"
        "  key_field: \"\"\n"
        "  on_missing_key: payload\n"
        "dispatch: {batch: 2000, inflight: 2, max_task_bytes: 65536}\n"
        "workers:\n"
        "  check_interval_ms: 100\n"
        "  heartbeat_ttl_ms: 1000\n"
        "  max_recoveries: 5\n"
        "log:\n"
        "  level: \"debug\"\n"
        "http:\n"
        "  listen: '[::1]:9000'\n"
        "worker:\n"
        "  prefetch: 4\n"
        "  max_attempts: 7\n"
        "  weight: 2\n"
        "  retry_min_ms: 10\n"
        "  retry_max_ms: 20\n");
    ck_assert_str_eq(c.redis.host, "redis.internal");
    ck_assert_int_eq(c.redis.port, 6380);
    ck_assert_str_eq(c.redis.unix_path, "/run/redis/redis.sock");
    ck_assert_int_eq(c.redis.db, 3);
    ck_assert_str_eq(c.redis.username, "slotd");
    ck_assert_str_eq(c.redis.password_file, "secret");
    ck_assert_str_eq(c.redis.password, "s3cret");
    ck_assert_int_eq(c.redis.reconnect_min_ms, 50);
    ck_assert_int_eq(c.redis.reconnect_max_ms, 1000);
    ck_assert_str_eq(c.ns, "jobs.eu-1:a_b");
    ck_assert_str_eq(c.routing.key_field, "");
    ck_assert_int_eq(c.routing.on_missing_key, CONF_MISSING_PAYLOAD);
    ck_assert_int_eq(c.dispatch.batch, 2000);
    ck_assert_int_eq(c.dispatch.inflight, 2);
    ck_assert_int_eq(c.dispatch.max_task_bytes, 65536);
    ck_assert_int_eq(c.workers.check_interval_ms, 100);
    ck_assert_int_eq(c.workers.heartbeat_ttl_ms, 1000);
    ck_assert_int_eq(c.workers.max_recoveries, 5);
    ck_assert_int_eq(c.log.level, LL_DEBUG);
    ck_assert_str_eq(c.http.listen, "[::1]:9000");
    ck_assert_int_eq(c.worker.prefetch, 4);
    ck_assert_int_eq(c.worker.max_attempts, 7);
    ck_assert_int_eq(c.worker.weight, 2);
    ck_assert_int_eq(c.worker.retry_min_ms, 10);
    ck_assert_int_eq(c.worker.retry_max_ms, 20);
    conf_free(&c);
}
END_TEST

START_TEST(scalars)
{
    struct conf c;
    /* Plain nulls are the empty string; quoted, they are text. */
    load_ok(&c, "redis:\n  username: ~\n  unix:\n  password_file: null\nrouting:\n  key_field: '~'\n"
                "http:\n  listen: NULL\n");
    ck_assert_str_eq(c.redis.username, "");
    ck_assert_str_eq(c.redis.unix_path, "");
    ck_assert_str_eq(c.redis.password_file, "");
    ck_assert_str_eq(c.routing.key_field, "~");
    ck_assert_str_eq(c.http.listen, "");
    conf_free(&c);
    /* Plain text that YAML 1.1 would call a boolean or number stays text. */
    load_ok(&c, "redis:\n  host: yes\nrouting:\n  key_field: 12\n");
    ck_assert_str_eq(c.redis.host, "yes");
    ck_assert_str_eq(c.routing.key_field, "12");
    conf_free(&c);
    /* Bounds are inclusive; leading zeros are still decimal. */
    load_ok(&c, "redis:\n  port: 65535\n  db: 0\ndispatch:\n  batch: 010\n  max_task_bytes: 536870912\n");
    ck_assert_int_eq(c.redis.port, 65535);
    ck_assert_int_eq(c.dispatch.batch, 10);
    ck_assert_int_eq(c.dispatch.max_task_bytes, 536870912);
    conf_free(&c);
    /* Empty sections, and tags that are ignored. */
    load_ok(&c, "redis:\nlog: ~\nworkers: !!map\n  max_recoveries: !!int 9\n");
    ck_assert_int_eq(c.workers.max_recoveries, 9);
    conf_free(&c);
    /* No host is fine when a socket replaces it. */
    load_ok(&c, "redis:\n  host: ~\n  unix: /run/redis.sock\n");
    ck_assert_str_eq(c.redis.host, "");
    conf_free(&c);
}
END_TEST

START_TEST(errors_name_line_and_column)
{
    /* unknown keys, at the key */
    expect_error("redis:\n  hots: x\n", "2:3: unknown key 'redis.hots'");
    expect_error("# comment\nnope: 1\n", "2:1: unknown key 'nope'");
    expect_error("redis:\n  \"port\\0x\": 2\n", "2:3: a key must not contain a NUL character");
    expect_error("namespace.x: 1\n", "1:1: unknown key 'namespace.x'");
    /* duplicates, at the second key */
    expect_error("redis:\n  port: 1\n  port: 2\n",
                 "3:3: duplicate key 'redis.port' (first at 2:3)");
    expect_error("redis:\n  port: 1\nredis:\n  db: 2\n", "3:1: duplicate key 'redis' (first at 1:1)");
    expect_error("namespace: a\nnamespace: b\n", "2:1: duplicate key 'namespace' (first at 1:1)");
    /* wrong types, at the value */
    expect_error("redis:\n  port: [1, 2]\n", "2:9: redis.port must be a scalar, not a sequence");
    expect_error("redis:\n  host:\n    a: 1\n", "3:5: redis.host must be a scalar, not a mapping");
    expect_error("redis: 5\n", "1:8: redis must be a mapping, not a scalar");
    expect_error("log:\n  - level\n", "2:3: log must be a mapping, not a sequence");
    expect_error("- a\n- b\n", "1:1: the configuration must be a mapping of keys, not a sequence");
    expect_error("slotd\n", "1:1: the configuration must be a mapping of keys, not a scalar");
    expect_error("? [a]\n: 1\n", "1:3: a key must be a scalar, not a sequence");
    /* integers */
    expect_error("redis:\n  port: abc\n", "2:9: redis.port: 'abc' is not an integer");
    expect_error("redis:\n  port: 12x\n", "2:9: redis.port: '12x' is not an integer");
    expect_error("redis:\n  port: +5\n", "2:9: redis.port: '+5' is not an integer");
    expect_error("redis:\n  port: 0x10\n", "2:9: redis.port: '0x10' is not an integer");
    expect_error("redis:\n  port: 1.0\n", "2:9: redis.port: '1.0' is not an integer");
    expect_error("redis:\n  port: --1\n", "2:9: redis.port: '--1' is not an integer");
    expect_error("redis:\n  port:\n", "2:8: redis.port: '' is not an integer");
    expect_error("redis:\n  port: \"6379\"\n",
                 "2:9: redis.port: '6379' must be an integer, not a quoted string");
    expect_error("redis:\n  port: 70000\n", "2:9: redis.port: 70000 is out of range 1..65535");
    expect_error("redis:\n  db: -1\n", "2:7: redis.db: -1 is out of range 0..100000");
    expect_error("redis:\n  port: 99999999999999999999\n",
                 "2:9: redis.port: 99999999999999999999 is out of range 1..65535");
    expect_error("dispatch:\n  batch: 0\n", "2:10: dispatch.batch: 0 is out of range 1..100000");
    /* enums */
    expect_error("routing:\n  on_missing_key: drop\n",
                 "2:19: routing.on_missing_key: 'drop' must be one of dead_letter, payload");
    expect_error("log:\n  level: loud\n",
                 "2:10: log.level: 'loud' must be one of error, warn, info, debug");
    /* string rules */
    expect_error("namespace: \"a b\"\n", "1:12: namespace: 'a b' may hold only [A-Za-z0-9._:-]");
    expect_error("namespace: \"\"\n", "1:12: namespace: '' must be 1 to 64 characters");
    expect_error("namespace: ~\n", "1:12: namespace: '' must be 1 to 64 characters");
    expect_error("namespace: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                 "1:12: namespace: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' "
                 "must be 1 to 64 characters");

    expect_error("redis:\n  username: \"a\\0b\"\n", "2:13: redis.username: 'a...' contains a NUL character");
    expect_error("http:\n  listen: 9464\n",
                 "2:11: http.listen: '9464' must be host:port (or [v6]:port), or empty to turn it off");
    /* YAML itself */
    expect_error("redis:\n  port: 1\n  - x\n",
                 "3:3: YAML syntax error: did not find expected key, "
                 "while parsing a block mapping that starts at 2:3");
    expect_error("redis: {port: 1\n", "2:1: YAML syntax error: did not find expected ',' or '}', "
                 "while parsing a flow mapping that starts at 1:8");
    expect_error("redis:\n  host: \"x\n", "3:1: YAML syntax error: found unexpected end of stream, "
                 "while scanning a quoted scalar that starts at 2:9");
    expect_error("redis:\n  host: h\xc3\x28\n", "2:11: YAML error: invalid trailing UTF-8 octet");
    expect_error("redis:\n  port: &p 1\n  db: *p\n", "2:9: anchors (&p) are not supported");
    expect_error("redis:\n  port: 1\n  db: *p\n", "3:7: aliases (*p) are not supported; write the value out");
    expect_error("redis: &r\n  port: 1\n", "1:8: anchors (&r) are not supported");
    expect_error("redis:\n  port: 1\n---\nlog:\n  level: info\n",
                 "3:1: a second YAML document; the file must hold one");
    /* pass two, at the value of the larger key, or of the smaller if only it was written */
    expect_error("redis:\n  reconnect_min_ms: 500\n  reconnect_max_ms: 100\n",
                 "3:21: redis.reconnect_max_ms (100) must be at least redis.reconnect_min_ms (500)");
    expect_error("redis:\n  reconnect_min_ms: 6000\n",
                 "2:21: redis.reconnect_max_ms (5000) must be at least redis.reconnect_min_ms (6000)");
    expect_error("workers:\n  check_interval_ms: 3000\n",
                 "2:22: workers.heartbeat_ttl_ms (3000) must be larger than "
                 "workers.check_interval_ms (3000)");
    expect_error("workers:\n  heartbeat_ttl_ms: 200\n",
                 "2:21: workers.heartbeat_ttl_ms (200) must be larger than "
                 "workers.check_interval_ms (200)");
    expect_error("redis:\n  host: \"\"\n", "2:9: redis.host must not be empty unless redis.unix is set");
    expect_error("redis:\n  host: ~\n  unix: \"\"\n",
                 "2:9: redis.host must not be empty unless redis.unix is set");
    expect_error("worker:\n  retry_min_ms: 20000\n",
                 "2:17: worker.retry_max_ms (10000) must be at least worker.retry_min_ms (20000)");
}
END_TEST

START_TEST(unopenable_file)
{
    struct conf c;
    char err[256];
    ck_assert_int_ne(conf_load(&c, "/nonexistent/slotd.yaml", err, sizeof err), 0);
    ck_assert_str_eq(err, "/nonexistent/slotd.yaml: No such file or directory");
    ck_assert_ptr_null(c.path);
    ck_assert_ptr_null(c.ns);
}
END_TEST

START_TEST(password_file)
{
    struct conf c;
    char text[256], want[256];

    /* Relative to the configuration file's directory, not the cwd. */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/secrets", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_file("secrets/pw", "abc\r\n");
    load_ok(&c, "redis:\n  password_file: secrets/pw\n");
    ck_assert_str_eq(c.redis.password, "abc");
    conf_free(&c);

    snprintf(text, sizeof text, "redis:\n  password_file: %s/secrets/pw\n", dir);
    load_ok(&c, text);
    ck_assert_str_eq(c.redis.password, "abc");
    conf_free(&c);

    /* Only one trailing newline goes; a lone \r and inner spaces stay. */
    write_file("pw2", "a b\n\n");
    load_ok(&c, "redis:\n  password_file: pw2\n");
    ck_assert_str_eq(c.redis.password, "a b\n");
    conf_free(&c);
    write_file("pw3", "x\r");
    load_ok(&c, "redis:\n  password_file: pw3\n");
    ck_assert_str_eq(c.redis.password, "x\r");
    conf_free(&c);
    write_file("pw4", "no-newline");
    load_ok(&c, "redis:\n  password_file: pw4\n");
    ck_assert_str_eq(c.redis.password, "no-newline");
    conf_free(&c);

    snprintf(want, sizeof want, "2:18: redis.password_file: cannot read '%s/missing': "
             "No such file or directory", dir);
    expect_error("redis:\n  password_file: missing\n", want);
    snprintf(want, sizeof want, "2:18: redis.password_file: cannot read '%s/secrets': "
             "Is a directory", dir);
    expect_error("redis:\n  password_file: secrets\n", want);
    write_file("pw-empty", "\r\n");
    snprintf(want, sizeof want, "2:18: redis.password_file: '%s/pw-empty' holds an empty password",
             dir);
    expect_error("redis:\n  password_file: pw-empty\n", want);
    write_file("pw-zero", "");
    snprintf(want, sizeof want, "2:18: redis.password_file: '%s/pw-zero' holds an empty password",
             dir);
    expect_error("redis:\n  password_file: pw-zero\n", want);
}
END_TEST

START_TEST(password_file_beside_a_bare_config_name)
{
    struct conf c;
    char err[256], cwd[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    write_file("pw", "bare\n");
    write_file("c.yaml", "redis:\n  password_file: pw\n");
    ck_assert_int_eq(chdir(dir), 0);
    int rc = conf_load(&c, "c.yaml", err, sizeof err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(c.path, "c.yaml");
    ck_assert_str_eq(c.redis.password, "bare");
    conf_free(&c);
}
END_TEST

static char kept_names[512];
static void note_kept(const char *key, void *arg)
{
    ck_assert_ptr_eq(arg, kept_names);
    strcat(kept_names, key);
    strcat(kept_names, " ");
}

START_TEST(reload_keeps_what_needs_a_restart)
{
    struct conf cur, next;
    char err[256];
    write_file("pw", "old\n");
    ck_assert_int_eq(conf_load(&cur, write_file("1.yaml",
        "redis:\n  port: 7000\n  password_file: pw\ndispatch:\n  batch: 10\n"), err, sizeof err), 0);
    write_file("pw", "new\n");
    ck_assert_int_eq(conf_load(&next, write_file("2.yaml",
        "redis:\n  port: 7001\n  password_file: pw\nnamespace: other\ndispatch:\n  batch: 20\n"
        "log:\n  level: debug\nworker:\n  weight: 5\n"), err, sizeof err), 0);
    kept_names[0] = '\0';
    ck_assert_uint_eq(conf_keep_unreloadable(&next, &cur, note_kept, kept_names), 3);
    ck_assert_str_eq(kept_names, "redis.port namespace worker.weight ");
    ck_assert_int_eq(next.redis.port, 7000);
    ck_assert_str_eq(next.ns, "slotd");
    ck_assert_int_eq(next.worker.weight, 1);
    ck_assert_str_eq(next.redis.password, "old");      /* follows the file, read at start */
    ck_assert_int_eq(next.dispatch.batch, 20);         /* reloadable: takes effect */
    ck_assert_int_eq(next.log.level, LL_DEBUG);
    ck_assert_ptr_nonnull(strstr(next.path, "/2.yaml"));   /* the file it was read from */
    /* Nothing left to keep the second time; no callback needed. */
    ck_assert_uint_eq(conf_keep_unreloadable(&next, &cur, NULL, NULL), 0);
    conf_free(&cur);
    conf_free(&next);

    /* A password that was not there stays away. */
    ck_assert_int_eq(conf_defaults(&cur), 0);
    load_ok(&next, "redis:\n  password_file: pw\n");
    ck_assert_uint_eq(conf_keep_unreloadable(&next, &cur, NULL, NULL), 1);
    ck_assert_str_eq(next.redis.password_file, "");
    ck_assert_ptr_null(next.redis.password);
    conf_free(&cur);
    conf_free(&next);
}
END_TEST

/* ---- the docs check ------------------------------------------------------ */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (tests run from the repository root)", path);
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The value of one YAML scalar written as text (a table default). */
static void scalar_text(const char *yaml, char *out, size_t outlen)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int done = 0;
    out[0] = '\0';
    ck_assert(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, strlen(yaml));
    while (!done) {
        ck_assert_msg(yaml_parser_parse(&p, &ev), "default '%s' is not YAML", yaml);
        if (ev.type == YAML_SCALAR_EVENT)
            snprintf(out, outlen, "%s", (const char *)ev.data.scalar.value);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
}

/* Every "dotted.path=value" of a YAML file's scalars, one a line, in out. */
static void walk_sample(const char *path, char *out, size_t outlen)
{
    FILE *f = fopen(path, "rb");
    yaml_parser_t p;
    yaml_event_t ev;
    char stack[8][64], *o = out;
    int depth = 0, want_key[8] = { 0 }, done = 0;

    ck_assert_ptr_nonnull(f);
    ck_assert(yaml_parser_initialize(&p));
    yaml_parser_set_input_file(&p, f);
    out[0] = '\0';
    while (!done) {
        ck_assert_msg(yaml_parser_parse(&p, &ev), "%s: YAML error", path);
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
            ck_assert_int_lt(depth, 7);
            want_key[++depth] = 1;
            break;
        case YAML_MAPPING_END_EVENT:
            depth--;
            want_key[depth] = 1;
            break;
        case YAML_SCALAR_EVENT:
            if (want_key[depth]) {
                snprintf(stack[depth], sizeof stack[depth], "%s", (const char *)ev.data.scalar.value);
                want_key[depth] = 0;
            } else {
                for (int i = 1; i <= depth; i++)
                    o += snprintf(o, outlen - (size_t)(o - out), "%s%s", i > 1 ? "." : "", stack[i]);
                o += snprintf(o, outlen - (size_t)(o - out), "=%s\n", (const char *)ev.data.scalar.value);
                want_key[depth] = 1;
            }
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    fclose(f);
}

START_TEST(every_key_is_documented)
{
    char want[160];
    const char *docs = slurp("docs/configuration.md");
    for (size_t i = 0; i < conf_key_count(); i++) {
        const char *name = conf_key_name(i);
        /* Its table row: "| `name` | type | `default` | range | yes/no | …" */
        snprintf(want, sizeof want, "| `%s` |", name);
        const char *row = strstr(docs, want);
        ck_assert_msg(row != NULL, "docs/configuration.md has no row for `%s`", name);
        const char *eol = strchr(row, '\n');
        size_t len = eol ? (size_t)(eol - row) : strlen(row);
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)len, row);
        snprintf(want, sizeof want, "| `%s` |", conf_key_default(i));
        ck_assert_msg(strstr(line, want) != NULL,
                      "docs/configuration.md: the row of `%s` does not give its default `%s`",
                      name, conf_key_default(i));
        snprintf(want, sizeof want, "| %s |", conf_key_reloadable(i) ? "yes" : "no");
        ck_assert_msg(strstr(line, want) != NULL,
                      "docs/configuration.md: the row of `%s` should say reload %s",
                      name, conf_key_reloadable(i) ? "yes" : "no");
    }
    /* The man page: ".B name", then its type, default, range and
     * "Reloadable: yes|no." before the next entry (".TP" or ".S?"). */
    const char *man = slurp("docs/man/slotd.yaml.5");
    for (size_t i = 0; i < conf_key_count(); i++) {
        const char *name = conf_key_name(i);
        snprintf(want, sizeof want, "\n.TP\n.B %s\n", name);
        const char *entry = strstr(man, want);
        ck_assert_msg(entry != NULL, "docs/man/slotd.yaml.5 does not document %s", name);
        entry += strlen(want);
        const char *end = entry;
        while ((end = strchr(end, '\n')) != NULL && strncmp(end, "\n.TP", 4) != 0 &&
               strncmp(end, "\n.S", 3) != 0)
            end++;
        char body[4096];
        size_t len = end ? (size_t)(end - entry) : strlen(entry);
        snprintf(body, sizeof body, "%.*s", (int)len, entry);
        snprintf(want, sizeof want, "Reloadable: %s.", conf_key_reloadable(i) ? "yes" : "no");
        ck_assert_msg(strstr(body, want) != NULL, "docs/man/slotd.yaml.5: %s should say '%s'",
                      name, want);
        const char *def = conf_key_default(i);
        if (strcmp(def, "\"\"") == 0)
            snprintf(want, sizeof want, "Default:\n.B \\(dq\\(dq\n");
        else
            snprintf(want, sizeof want, "Default:\n.BR %s .\n", def);
        ck_assert_msg(strstr(body, want) != NULL,
                      "docs/man/slotd.yaml.5: %s does not give its default %s", name, def);
    }
}
END_TEST

START_TEST(the_sample_holds_every_key_at_its_default)
{
    static char found[1 << 14];
    char want[256], def[128];
    struct conf c;
    char err[256];

    ck_assert_msg(conf_load(&c, "conf/slotd.yaml", err, sizeof err) == 0, "%s", err);
    conf_free(&c);
    walk_sample("conf/slotd.yaml", found, sizeof found);
    for (size_t i = 0; i < conf_key_count(); i++) {
        snprintf(want, sizeof want, "%s=", conf_key_name(i));
        const char *at = strstr(found, want);
        /* At a line start, so that "x.port=" does not match "x.xport=". */
        while (at != NULL && at != found && at[-1] != '\n')
            at = strstr(at + 1, want);
        ck_assert_msg(at != NULL, "conf/slotd.yaml lacks %s", conf_key_name(i));
        scalar_text(conf_key_default(i), def, sizeof def);
        snprintf(want, sizeof want, "%s=%s\n", conf_key_name(i), def);
        ck_assert_msg(strncmp(at, want, strlen(want)) == 0,
                      "conf/slotd.yaml: %s is not at its default %s", conf_key_name(i),
                      conf_key_default(i));
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("conf");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, key_accessors);
    tcase_add_test(tc, empty_documents_give_defaults);
    tcase_add_test(tc, full_file);
    tcase_add_test(tc, scalars);
    tcase_add_test(tc, errors_name_line_and_column);
    tcase_add_test(tc, unopenable_file);
    tcase_add_test(tc, password_file);
    tcase_add_test(tc, password_file_beside_a_bare_config_name);
    tcase_add_test(tc, reload_keeps_what_needs_a_restart);
    tcase_add_test(tc, every_key_is_documented);
    tcase_add_test(tc, the_sample_holds_every_key_at_its_default);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
