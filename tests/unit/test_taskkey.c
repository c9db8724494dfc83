/* Unit tests for taskkey: known answers for every rule, and a differential
 * test against jansson (the reference) over generated and mutated inputs. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "oracle.h"
#include "taskkey.h"

static char scratch[1 << 16];

static enum taskkey_result find(const char *task, size_t len, const char *field,
                                const char **key, size_t *keylen)
{
    size_t at;
    return taskkey_find(task, len, field, strlen(field), scratch, key, keylen, &at);
}

#define OK(task, field, want)                                                       \
    do {                                                                            \
        const char *k_;                                                             \
        size_t kl_;                                                                 \
        enum taskkey_result r_ = find(task, sizeof(task) - 1, field, &k_, &kl_);    \
        ck_assert_msg(r_ == TASKKEY_OK, "%s: %s", task, taskkey_result_name(r_));   \
        ck_assert_uint_eq(kl_, sizeof(want) - 1);                                   \
        ck_assert_msg(memcmp(k_, want, kl_) == 0, "%s: key '%.*s'", task, (int)kl_, k_); \
    } while (0)

#define IS(task, field, want)                                                       \
    do {                                                                            \
        const char *k_;                                                             \
        size_t kl_;                                                                 \
        enum taskkey_result r_ = find(task, sizeof(task) - 1, field, &k_, &kl_);    \
        ck_assert_msg(r_ == (want), "'%s': %s, want %s", task, taskkey_result_name(r_), \
                      taskkey_result_name(want));                                  \
    } while (0)

#define BAD(task) IS(task, "key", TASKKEY_INVALID_JSON)

START_TEST(keys_of_every_kind)
{
    OK("{\"key\":\"user:42\"}", "key", "user:42");
    OK("  {\"a\":1 , \"key\" : \"x\" }\n", "key", "x");
    OK("{\"key\":42}", "key", "42");
    OK("{\"key\":-1.5e+3}", "key", "-1.5e+3");
    OK("{\"key\":0}", "key", "0");
    OK("{\"key\":\"\"}", "key", "");
    OK("{\"key\":\"caf\\u00e9\"}", "key", "caf\xc3\xa9");
    OK("{\"key\":\"caf\xc3\xa9\"}", "key", "caf\xc3\xa9");
    OK("{\"key\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"}", "key", "a\"b\\c/d\b\f\n\r\t");
    OK("{\"key\":\"\\ud83d\\ude00\"}", "key", "\xf0\x9f\x98\x80");
    OK("{\"key\":\"a\\u0000b\"}", "key", "a\0b");
    OK("{\"k\\u0065y\":\"escaped name\"}", "key", "escaped name");
    OK("{\"nested\":{\"key\":\"inner\"},\"key\":\"outer\"}", "key", "outer");
    OK("{\"\":\"empty name\"}", "", "empty name");
    OK("{\"user\":\"u1\",\"key\":[1]}", "user", "u1");
}
END_TEST

START_TEST(not_routable)
{
    IS("", "key", TASKKEY_EMPTY);
    IS("[\"key\"]", "key", TASKKEY_NOT_OBJECT);
    IS("\"key\"", "key", TASKKEY_NOT_OBJECT);
    IS("42", "key", TASKKEY_NOT_OBJECT);
    IS("null", "key", TASKKEY_NOT_OBJECT);
    IS("{}", "key", TASKKEY_NO_KEY);
    IS("{\"Key\":1}", "key", TASKKEY_NO_KEY);
    IS("{\"a\":{\"key\":1}}", "key", TASKKEY_NO_KEY);
    IS("{\"key\":1,\"key\":2}", "key", TASKKEY_DUPLICATE_KEY);
    IS("{\"key\":1,\"k\\u0065y\":2}", "key", TASKKEY_DUPLICATE_KEY);
    IS("{\"key\":null,\"key\":2}", "key", TASKKEY_DUPLICATE_KEY);
    IS("{\"key\":null}", "key", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":true}", "key", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":false}", "key", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":{}}", "key", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":[]}", "key", TASKKEY_BAD_KEY_TYPE);
    /* Invalid JSON wins over everything. */
    IS("{\"key\":1,\"key\":2", "key", TASKKEY_INVALID_JSON);
    IS("[1,", "key", TASKKEY_INVALID_JSON);
}
END_TEST

START_TEST(invalid_json)
{
    BAD(" ");
    BAD("{");
    BAD("{\"key\"}");
    BAD("{\"key\":}");
    BAD("{\"key\":\"a\",}");
    BAD("{,}");
    BAD("{\"key\":\"a\"} {}");
    BAD("{\"key\":\"a\"}x");
    BAD("{'key':'a'}");
    BAD("{key:1}");
    BAD("{\"key\":01}");
    BAD("{\"key\":+1}");
    BAD("{\"key\":.5}");
    BAD("{\"key\":1.}");
    BAD("{\"key\":1e}");
    BAD("{\"key\":-}");
    BAD("{\"key\":0x1}");
    BAD("{\"key\":NaN}");
    BAD("{\"key\":tru}");
    BAD("{\"key\":nul}");
    BAD("{\"key\":\"a\tb\"}");          /* raw control character */
    BAD("{\"key\":\"\\x\"}");
    BAD("{\"key\":\"\\u12\"}");
    BAD("{\"key\":\"\\u12G4\"}");
    BAD("{\"key\":\"\\ud800\"}");       /* lone high surrogate */
    BAD("{\"key\":\"\\udc00\"}");       /* lone low surrogate */
    BAD("{\"key\":\"\\ud800\\u0041\"}");
    BAD("{\"key\":\"\xff\"}");
    BAD("{\"key\":\"\xc0\xaf\"}");      /* overlong */
    BAD("{\"key\":\"\xe0\x80\xaf\"}");  /* overlong */
    BAD("{\"key\":\"\xed\xa0\x80\"}");  /* a surrogate in UTF-8 */
    BAD("{\"key\":\"\xf4\x90\x80\x80\"}"); /* above U+10FFFF */
    BAD("{\"key\":\"\xc3\"}");          /* truncated sequence */
    BAD("{\"a\":[1 2]}");
    BAD("{\"a\":[1,]}");
    BAD("\xef\xbb\xbf{\"key\":1}");     /* a byte order mark is not JSON */
    BAD("{\"key\":1}\0");
}
END_TEST

START_TEST(every_truncation_is_invalid)
{
    const char t[] = "{\"id\":123,\"key\":\"user:\\u00e9\",\"p\":[1.5e3,true,null,{\"x\":\"\xc3\xa9\"}]}";
    const char *k;
    size_t kl;
    ck_assert_int_eq(find(t, sizeof t - 1, "key", &k, &kl), TASKKEY_OK);
    for (size_t n = 1; n < sizeof t - 1; n++) {
        enum taskkey_result r = find(t, n, "key", &k, &kl);
        ck_assert_msg(r == TASKKEY_INVALID_JSON, "prefix of %zu bytes: %s", n, taskkey_result_name(r));
    }
}
END_TEST

START_TEST(nesting_limit)
{
    static char deep[2 * TASKKEY_MAX_DEPTH + 64];
    const char *k;
    size_t kl;
    /* {"key":1,"d": [[...[]...]]}: the object counts one level, "d"'s value
     * another, and so on; up to TASKKEY_MAX_DEPTH levels are accepted. */
    for (int levels = TASKKEY_MAX_DEPTH - 2; levels <= TASKKEY_MAX_DEPTH; levels++) {
        int n = sprintf(deep, "{\"key\":1,\"d\":");
        for (int i = 0; i < levels; i++)
            deep[n++] = '[';
        for (int i = 0; i < levels; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        enum taskkey_result r = find(deep, (size_t)n, "key", &k, &kl);
        if (levels + 1 <= TASKKEY_MAX_DEPTH)
            ck_assert_int_eq(r, TASKKEY_OK);
        else
            ck_assert_int_eq(r, TASKKEY_INVALID_JSON);
    }
}
END_TEST

START_TEST(error_offset_points_at_the_problem)
{
    const char *k;
    size_t kl, at = 0;
    const char t[] = "{\"key\":\"a\",\"x\":tx}";
    ck_assert_int_eq(taskkey_find(t, sizeof t - 1, "key", 3, scratch, &k, &kl, &at), TASKKEY_INVALID_JSON);
    ck_assert_uint_eq(at, 16);
}
END_TEST

/* ---- differential against jansson -------------------------------------- */

static uint32_t rng = 0x12345678u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

struct buf {
    char   b[8192];
    size_t n;
};

static void put(struct buf *o, const char *s)
{
    size_t l = strlen(s);
    if (o->n + l < sizeof o->b) {
        memcpy(o->b + o->n, s, l);
        o->n += l;
    }
}

static const char *const pieces[] = {
    "a", "key", "k\\u0065y", "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\\udc00", "\\n", "\\\"",
    "\\u0000", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc0\xaf", "\xed\xa0\x80",
    "\\x", " ", "{", "}", "\\/", "\t",
};

static void gen_string(struct buf *o)
{
    put(o, "\"");
    int n = (int)(rnd() % 4);
    for (int i = 0; i < n; i++)
        put(o, pieces[rnd() % (rnd() % 4 == 0 ? sizeof pieces / sizeof pieces[0] : 3)]);
    put(o, "\"");
}

static void gen_value(struct buf *o, int depth)
{
    static const char *const nums[] = { "0", "-1", "42", "1.5", "1e3", "-0.0e-2", "01", "1.",
                                        "123456789012345678901234567890", "1e999", "-", "2E+2" };
    switch (rnd() % (depth > 6 ? 4 : 7)) {
    case 0: put(o, nums[rnd() % (sizeof nums / sizeof nums[0])]); break;
    case 1: gen_string(o); break;
    case 2: put(o, (const char *const[]){ "true", "false", "null" }[rnd() % 3]); break;
    case 3: gen_string(o); break;
    case 4: case 5: {
        int n = (int)(rnd() % 4);
        put(o, "{");
        for (int i = 0; i < n; i++) {
            if (i) put(o, rnd() % 8 ? "," : " , ");
            if (rnd() % 3 == 0) put(o, "\"key\""); else gen_string(o);
            put(o, ":");
            gen_value(o, depth + 1);
        }
        put(o, "}");
        break;
    }
    default: {
        int n = (int)(rnd() % 4);
        put(o, "[");
        for (int i = 0; i < n; i++) {
            if (i) put(o, ",");
            gen_value(o, depth + 1);
        }
        put(o, "]");
    }
    }
}

static void mutate(struct buf *o)
{
    if (o->n == 0)
        return;
    switch (rnd() % 5) {
    case 0: o->b[rnd() % o->n] = (char)rnd(); break;                 /* flip a byte */
    case 1: o->n = rnd() % o->n; break;                              /* truncate */
    case 2: o->b[rnd() % o->n] = "{}[]\":,\\ "[rnd() % 10]; break;   /* a structural byte */
    case 3: {                                                        /* insert a piece */
        const char *p = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
        size_t at = rnd() % o->n, l = strlen(p);
        if (o->n + l < sizeof o->b) {
            memmove(o->b + at + l, o->b + at, o->n - at);
            memcpy(o->b + at, p, l);
            o->n += l;
        }
        break;
    }
    default: break;
    }
}

/* One input through the oracle (tests/oracle.c); 0 when skipped. */
static int compare(const char *t, size_t n)
{
    char why[256];
    int rc = oracle_check(t, n, why, sizeof why);
    ck_assert_msg(rc >= 0, "%s: '%.*s'", why, (int)n, t);
    return rc;
}

START_TEST(differential_against_jansson)
{
    struct buf o;
    long compared = 0, valid = 0;
    for (int i = 0; i < 60000; i++) {
        o.n = 0;
        if (rnd() % 2) {
            put(&o, "{");
            int n = (int)(rnd() % 4);
            for (int m = 0; m < n; m++) {
                if (m) put(&o, ",");
                if (rnd() % 2) put(&o, "\"key\""); else gen_string(&o);
                put(&o, ":");
                gen_value(&o, 1);
            }
            put(&o, "}");
        } else {
            gen_value(&o, 0);
        }
        if (rnd() % 3 == 0)
            mutate(&o);
        json_error_t err;
        json_t *j = json_loadb(o.b, o.n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        valid += j != NULL;
        json_decref(j);
        compared += compare(o.b, o.n);
    }
    ck_assert_int_gt(compared, 50000);
    ck_assert_int_gt(valid, 10000);     /* the generator exercises both sides */
}
END_TEST

START_TEST(duplicates_agree_with_jansson_reject_duplicates)
{
    /* Where only the top level has duplicates, jansson's flag and ours agree. */
    const char *cases[] = { "{\"key\":1,\"key\":2}", "{\"key\":1,\"k\\u0065y\":\"x\"}",
                            "{\"a\":1,\"key\":\"x\",\"b\":[],\"key\":null}" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t err;
        const char *k;
        size_t kl;
        ck_assert_ptr_null(json_loads(cases[i], JSON_REJECT_DUPLICATES, &err));
        ck_assert_int_eq(find(cases[i], strlen(cases[i]), "key", &k, &kl), TASKKEY_DUPLICATE_KEY);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("taskkey");
    TCase *tc = tcase_create("taskkey");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, keys_of_every_kind);
    tcase_add_test(tc, not_routable);
    tcase_add_test(tc, invalid_json);
    tcase_add_test(tc, every_truncation_is_invalid);
    tcase_add_test(tc, nesting_limit);
    tcase_add_test(tc, error_offset_points_at_the_problem);
    tcase_add_test(tc, differential_against_jansson);
    tcase_add_test(tc, duplicates_agree_with_jansson_reject_duplicates);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
