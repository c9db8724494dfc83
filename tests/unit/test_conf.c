/* Unit tests for conf: defaults, a full file, every error with its
 * FILE:LINE:COLUMN, the password file, reloads, and that every key is in
 * docs/configuration.md and conf/slotd.yaml. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *write_conf(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads text; expects failure with "PATH:where: ...what..." */
static void expect_error(const char *text, const char *where, const char *what)
{
    struct conf c;
    char err[512], want[256];
    const char *path = write_conf("bad.yaml", text);
    ck_assert_msg(conf_load(&c, path, err, sizeof err) != 0, "accepted: %s", text);
    snprintf(want, sizeof want, "%s:%s: ", path, where);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got '%s', want prefix '%s'", err, want);
    ck_assert_msg(strstr(err, what) != NULL, "got '%s', want '%s'", err, what);
}

START_TEST(defaults)
{
    struct conf c;
    ck_assert_int_eq(conf_defaults(&c), 0);
    ck_assert_str_eq(c.redis.host, "127.0.0.1");
    ck_assert_int_eq(c.redis.port, 6379);
    ck_assert_str_eq(c.redis.unix_path, "");
    ck_assert_int_eq(c.redis.db, 0);
    ck_assert_str_eq(c.ns, "slotd");
    ck_assert_str_eq(c.routing.key_field, "key");
    ck_assert_int_eq(c.routing.on_missing_key, CONF_MISSING_DEAD_LETTER);
    ck_assert_int_eq(c.dispatch.batch, 1000);
    ck_assert_int_eq(c.dispatch.max_task_bytes, 1048576);
    ck_assert_int_eq(c.workers.check_interval_ms, 200);
    ck_assert_int_eq(c.log.level, LL_INFO);
    ck_assert_ptr_null(c.redis.password);
    conf_free(&c);
    conf_free(&c);      /* twice is harmless */
    conf_free(NULL);
}
END_TEST

START_TEST(empty_and_comment_only_files_give_defaults)
{
    struct conf c;
    char err[256];
    const char *texts[] = { "", "# nothing\n", "---\n", "~\n" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        ck_assert_msg(conf_load(&c, write_conf("e.yaml", texts[i]), err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(c.redis.port, 6379);
        conf_free(&c);
    }
}
END_TEST

START_TEST(full_file)
{
    struct conf c;
    char err[256];
    char path[128];
    snprintf(path, sizeof path, "%s", write_conf("full.yaml",
        "redis:\n"
        "  host: redis.internal\n"
        "  port: 6380\n"
        "  unix: \"\"\n"
        "  db: 3\n"
        "  username: slotd\n"
        "  password_file: secret\n"
        "  reconnect_min_ms: 50\n"
        "  reconnect_max_ms: 1000\n"
        "namespace: jobs.eu-1\n"
        "routing:\n"
        "  key_field: \"\"\n"
        "  on_missing_key: payload\n"
        "dispatch:\n"
        "  batch: 2000\n"
        "  max_task_bytes: 65536\n"
        "workers:\n"
        "  check_interval_ms: 100\n"
        "  heartbeat_ttl_ms: 1000\n"
        "  max_recoveries: 5\n"
        "log:\n"
        "  level: debug\n"));
    write_conf("secret", "s3cret\n");
    ck_assert_msg(conf_load(&c, path, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(c.redis.host, "redis.internal");
    ck_assert_int_eq(c.redis.port, 6380);
    ck_assert_int_eq(c.redis.db, 3);
    ck_assert_str_eq(c.redis.username, "slotd");
    ck_assert_str_eq(c.redis.password, "s3cret");
    ck_assert_str_eq(c.ns, "jobs.eu-1");
    ck_assert_str_eq(c.routing.key_field, "");
    ck_assert_int_eq(c.routing.on_missing_key, CONF_MISSING_PAYLOAD);
    ck_assert_int_eq(c.dispatch.batch, 2000);
    ck_assert_int_eq(c.dispatch.max_task_bytes, 65536);
    ck_assert_int_eq(c.workers.check_interval_ms, 100);
    ck_assert_int_eq(c.workers.heartbeat_ttl_ms, 1000);
    ck_assert_int_eq(c.workers.max_recoveries, 5);
    ck_assert_int_eq(c.log.level, LL_DEBUG);
    conf_free(&c);
}
END_TEST

START_TEST(errors_name_line_and_column)
{
    expect_error("redis:\n  hots: x\n", "2:3", "unknown key 'redis.hots'");
    expect_error("nope: 1\n", "1:1", "unknown key 'nope'");
    expect_error("redis:\n  port: abc\n", "2:9", "redis.port: 'abc' is not an integer");
    expect_error("redis:\n  port: 70000\n", "2:9", "70000 is out of range 1..65535");
    expect_error("redis:\n  port: \"6379\"\n", "2:9", "not a quoted string");
    expect_error("redis:\n  port: 12x\n", "2:9", "is not an integer");
    expect_error("redis:\n  port: 99999999999999999999\n", "2:9", "is not an integer");
    expect_error("dispatch:\n  batch: 0\n", "2:10", "dispatch.batch: 0 is out of range 1..100000");
    expect_error("routing:\n  on_missing_key: drop\n", "2:19",
                 "'drop' must be one of dead_letter, payload");
    expect_error("log:\n  level: loud\n", "2:10", "must be one of error, warn, info, debug");
    expect_error("redis:\n  port: [1, 2]\n", "2:9", "redis.port must be a scalar, not a sequence");
    expect_error("redis: 5\n", "1:8", "redis must be a mapping, not a scalar");
    expect_error("redis:\n  port: 1\n  port: 2\n", "3:3", "duplicate key 'redis.port'");
    expect_error("redis:\n  port: 1\nredis:\n  db: 2\n", "3:1", "duplicate key 'redis'");
    expect_error("- a\n- b\n", "1:1", "must be a mapping of keys, not a sequence");
    expect_error("namespace: \"a b\"\n", "1:12", "namespace: may hold only");
    expect_error("namespace: \"\"\n", "1:12", "must be 1 to 64 characters");
    expect_error("redis:\n  port: 1\n  - x\n", "3:3", "YAML syntax error");
    expect_error("redis:\n  port: &p 1\n  db: *p\n", "3:7", "aliases");
    expect_error("redis:\n  reconnect_min_ms: 500\n  reconnect_max_ms: 100\n", "3:21",
                 "must be at least redis.reconnect_min_ms");
    expect_error("workers:\n  check_interval_ms: 5000\n", "1:1",
                 "must be larger than workers.check_interval_ms");
    expect_error("redis:\n  password_file: missing\n", "2:18", "cannot read");
}
END_TEST

START_TEST(unreadable_file)
{
    struct conf c;
    char err[256];
    ck_assert_int_ne(conf_load(&c, "/nonexistent/slotd.yaml", err, sizeof err), 0);
    ck_assert_str_eq(err, "/nonexistent/slotd.yaml: No such file or directory");
}
END_TEST

START_TEST(password_file_rules)
{
    struct conf c;
    char err[256], abs[256];
    write_conf("pw-crlf", "abc\r\n");
    ck_assert_int_eq(conf_load(&c, write_conf("a.yaml", "redis:\n  password_file: pw-crlf\n"),
                               err, sizeof err), 0);
    ck_assert_str_eq(c.redis.password, "abc");
    conf_free(&c);
    snprintf(abs, sizeof abs, "redis:\n  password_file: %s/pw-crlf\n", dir);
    ck_assert_int_eq(conf_load(&c, write_conf("b.yaml", abs), err, sizeof err), 0);
    ck_assert_str_eq(c.redis.password, "abc");
    conf_free(&c);
    write_conf("pw-empty", "\n");
    expect_error("redis:\n  password_file: pw-empty\n", "2:18", "is empty");
}
END_TEST

static char kept_names[512];
static void note_kept(const char *key, void *arg)
{
    (void)arg;
    strcat(kept_names, key);
    strcat(kept_names, " ");
}

START_TEST(reload_keeps_what_needs_a_restart)
{
    struct conf cur, next;
    char err[256];
    ck_assert_int_eq(conf_load(&cur, write_conf("1.yaml", "redis:\n  port: 7000\ndispatch:\n  batch: 10\n"),
                               err, sizeof err), 0);
    ck_assert_int_eq(conf_load(&next, write_conf("2.yaml",
                               "redis:\n  port: 7001\nnamespace: other\ndispatch:\n  batch: 20\n"),
                               err, sizeof err), 0);
    kept_names[0] = '\0';
    ck_assert_uint_eq(conf_keep_unreloadable(&next, &cur, note_kept, NULL), 2);
    ck_assert_str_eq(kept_names, "redis.port namespace ");
    ck_assert_int_eq(next.redis.port, 7000);
    ck_assert_str_eq(next.ns, "slotd");
    ck_assert_int_eq(next.dispatch.batch, 20);     /* reloadable: takes effect */
    conf_free(&cur);
    conf_free(&next);
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (tests run from the repository root)", path);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

START_TEST(every_key_is_documented_and_in_the_sample)
{
    char want[160];
    const char *docs = slurp("docs/configuration.md");
    for (size_t i = 0; i < conf_key_count(); i++) {
        snprintf(want, sizeof want, "`%s`", conf_key_name(i));
        ck_assert_msg(strstr(docs, want) != NULL, "docs/configuration.md does not document %s", want);
    }
    const char *man = slurp("docs/man/slotd.yaml.5");
    for (size_t i = 0; i < conf_key_count(); i++) {
        snprintf(want, sizeof want, "\n.B %s\n", conf_key_name(i));
        ck_assert_msg(strstr(man, want) != NULL, "docs/man/slotd.yaml.5 does not document %s",
                      conf_key_name(i));
    }
    /* The sample loads, and names every key: its leaf at the right indent
     * under its section. */
    struct conf c;
    char err[256];
    ck_assert_msg(conf_load(&c, "conf/slotd.yaml", err, sizeof err) == 0, "%s", err);
    conf_free(&c);
    const char *sample = slurp("conf/slotd.yaml");
    for (size_t i = 0; i < conf_key_count(); i++) {
        const char *name = conf_key_name(i), *dot = strchr(name, '.');
        if (dot == NULL)
            snprintf(want, sizeof want, "\n%s: ", name);
        else
            snprintf(want, sizeof want, "\n  %s: ", dot + 1);
        ck_assert_msg(strstr(sample, want) != NULL, "conf/slotd.yaml lacks %s", name);
    }
}
END_TEST

START_TEST(sample_holds_the_defaults)
{
    struct conf sample, def;
    char err[256];
    ck_assert_int_eq(conf_load(&sample, "conf/slotd.yaml", err, sizeof err), 0);
    ck_assert_int_eq(conf_defaults(&def), 0);
    ck_assert_uint_eq(conf_keep_unreloadable(&sample, &def, NULL, NULL), 0);
    ck_assert_int_eq(sample.dispatch.batch, def.dispatch.batch);
    ck_assert_int_eq(sample.workers.check_interval_ms, def.workers.check_interval_ms);
    ck_assert_int_eq(sample.log.level, def.log.level);
    conf_free(&sample);
    conf_free(&def);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc = tcase_create("conf");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, empty_and_comment_only_files_give_defaults);
    tcase_add_test(tc, full_file);
    tcase_add_test(tc, errors_name_line_and_column);
    tcase_add_test(tc, unreadable_file);
    tcase_add_test(tc, password_file_rules);
    tcase_add_test(tc, reload_keeps_what_needs_a_restart);
    tcase_add_test(tc, every_key_is_documented_and_in_the_sample);
    tcase_add_test(tc, sample_holds_the_defaults);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
