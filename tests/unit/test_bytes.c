/* Unit tests for bytes: the JSON form (known answers, a strict parser reads
 * every output, the exact bytes come back) and the text form (known
 * answers, nothing a terminal acts on, the bytes can be read back). */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "check_main.h"
#include "testrng.h"
#include "utf8.h"

/* {"k": bytes} dumped compactly. */
static char *as_json(const char *p, size_t len)
{
    json_t *o = json_object();
    ck_assert_int_eq(bytes_json_set(o, "k", p, len), 0);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ck_assert_ptr_nonnull(s);
    json_decref(o);
    return s;
}

/* Dumped, read back by jansson's strict parser, the exact bytes again. */
static void round_trip(const char *p, size_t len)
{
    char *s = as_json(p, len);
    json_error_t err;
    json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, &err);
    ck_assert_msg(o != NULL, "%s does not parse: %s", s, err.text);
    size_t n = 0;
    char *back = bytes_json_get(o, "k", &n);
    ck_assert_ptr_nonnull(back);
    ck_assert_uint_eq(n, len);
    ck_assert_int_eq(memcmp(back, p, len), 0);
    ck_assert_int_eq(back[n], '\0');
    free(back);
    json_decref(o);
    free(s);
}

static void json_known(const char *p, size_t len, const char *want)
{
    char *s = as_json(p, len);
    ck_assert_str_eq(s, want);
    free(s);
    round_trip(p, len);
}

START_TEST(json_utf8_stands_alone)
{
    json_known("w1", 2, "{\"k\":\"w1\"}");
    json_known("", 0, "{\"k\":\"\"}");
    json_known("caf\xc3\xa9", 5, "{\"k\":\"caf\xc3\xa9\"}");
    json_known("\x1b[31m\n", 6, "{\"k\":\"\\u001B[31m\\n\"}");    /* exact: JSON escapes them */
    json_known("-foo", 4, "{\"k\":\"-foo\"}");
}
END_TEST

START_TEST(json_nul_and_invalid_bytes_get_base64)
{
    json_known("a\0b", 3, "{\"k\":\"a\xef\xbf\xbd" "b\",\"k_base64\":\"YQBi\"}");
    json_known("\xff\xfe", 2, "{\"k\":\"\xef\xbf\xbd\xef\xbf\xbd\",\"k_base64\":\"//4=\"}");
    /* A sequence cut short, a surrogate, an overlong form: each byte. */
    json_known("x\xc3", 2, "{\"k\":\"x\xef\xbf\xbd\",\"k_base64\":\"eMM=\"}");
    json_known("\xed\xa0\x80", 3,
               "{\"k\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"k_base64\":\"7aCA\"}");
    json_known("\xc0\xaf", 2, "{\"k\":\"\xef\xbf\xbd\xef\xbf\xbd\",\"k_base64\":\"wK8=\"}");
    /* A valid character after an invalid byte is kept. */
    json_known("\xff\xc3\xa9", 3, "{\"k\":\"\xef\xbf\xbd\xc3\xa9\",\"k_base64\":\"/8Op\"}");
}
END_TEST

START_TEST(json_set_again_drops_a_stale_base64)
{
    json_t *o = json_object();
    ck_assert_int_eq(bytes_json_set(o, "k", "\xff", 1), 0);
    ck_assert_int_eq(bytes_json_set(o, "k", "ok", 2), 0);
    ck_assert_ptr_null(json_object_get(o, "k_base64"));
    ck_assert_str_eq(json_string_value(json_object_get(o, "k")), "ok");
    json_decref(o);
}
END_TEST

START_TEST(json_refuses_what_it_cannot_do)
{
    char name[BYTES_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    json_t *o = json_object(), *a = json_array();
    ck_assert_int_eq(bytes_json_set(o, name, "x", 1), -1);
    ck_assert_int_eq(bytes_json_set(a, "k", "x", 1), -1);
    name[BYTES_NAME_MAX] = '\0';
    ck_assert_int_eq(bytes_json_set(o, name, "x", 1), 0);
    json_decref(o);
    json_decref(a);
}
END_TEST

START_TEST(json_get_follows_the_reading_rule)
{
    size_t n = 0;
    json_error_t err;
    json_t *o = json_loads("{\"k\":\"shown\",\"k_base64\":\"/w==\",\"s\":\"a\\u0000b\",\"i\":3,"
                           "\"bad\":\"x\",\"bad_base64\":\"@@@@\",\"num\":\"x\",\"num_base64\":7}",
                           JSON_ALLOW_NUL, &err);
    ck_assert_ptr_nonnull(o);
    char *b = bytes_json_get(o, "k", &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq((unsigned char)b[0], 0xff);
    free(b);
    b = bytes_json_get(o, "s", &n);     /* a stored "\u0000" is a NUL byte */
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(b, "a\0b", 3), 0);
    free(b);
    ck_assert_ptr_null(bytes_json_get(o, "i", &n));
    ck_assert_ptr_null(bytes_json_get(o, "absent", &n));
    ck_assert_ptr_null(bytes_json_get(o, "bad", &n));
    ck_assert_ptr_null(bytes_json_get(o, "num", &n));
    json_decref(o);
}
END_TEST

/* Random bytes, mostly from the ranges where UTF-8 goes wrong. */
static size_t random_bytes(uint64_t *rng, unsigned char *buf, size_t cap)
{
    static const unsigned char pick[] = { 0x00, 0x1b, 0x5c, 0x7f, 0x80, 0x9b, 0xbf, 0xc0, 0xc2,
                                          0xc3, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff };
    size_t n = testrng_below(rng, (uint32_t)cap);
    for (size_t i = 0; i < n; i++)
        buf[i] = testrng_below(rng, 3) ? (unsigned char)testrng_below(rng, 256)
                                       : pick[testrng_below(rng, sizeof pick)];
    return n;
}

START_TEST(json_random_bytes_round_trip)
{
    uint64_t rng = 0x5107c71;
    unsigned char buf[64];
    for (int i = 0; i < 5000; i++) {
        size_t n = random_bytes(&rng, buf, sizeof buf);
        round_trip((const char *)buf, n);
    }
}
END_TEST

static void text_known(const char *p, size_t len, size_t max, const char *want)
{
    char *t = bytes_text(p, len, max);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, want);
    free(t);
}

START_TEST(text_known_answers)
{
    text_known("plain key", 9, 0, "plain key");
    text_known("caf\xc3\xa9", 5, 0, "caf\xc3\xa9");
    text_known("a\\b", 3, 0, "a\\\\b");
    text_known("\x1b[2J", 4, 0, "\\x1b[2J");
    text_known("a\nb\t\r", 5, 0, "a\\x0ab\\x09\\x0d");
    text_known("\0", 1, 0, "\\x00");
    text_known("\x7f", 1, 0, "\\x7f");
    text_known("\xff\xfe", 2, 0, "\\xff\\xfe");
    text_known("x\xc3", 2, 0, "x\\xc3");
    text_known("\xc2\x9b" "31m", 5, 0, "\\xc2\\x9b31m");             /* C1 CSI */
    text_known("\xe2\x80\xae" "abc", 6, 0, "\\xe2\\x80\\xae" "abc");  /* RIGHT-TO-LEFT OVERRIDE */
    text_known("\xe2\x80\xa8", 3, 0, "\\xe2\\x80\\xa8");             /* LINE SEPARATOR */
    text_known("\xe2\x81\xa6", 3, 0, "\\xe2\\x81\\xa6");             /* LEFT-TO-RIGHT ISOLATE */
    text_known("\xe2\x80\x8b", 3, 0, "\xe2\x80\x8b");                /* ZERO WIDTH SPACE: shown */
    text_known("", 0, 0, "");
}
END_TEST

START_TEST(text_cut_whole)
{
    text_known("abcdef", 6, 4, "abcd…");
    text_known("abcd", 4, 4, "abcd");
    text_known("\xff\xff", 2, 6, "\\xff…");
    text_known("a\xc3\xa9", 3, 2, "a…");
    text_known("a\\", 2, 2, "a…");
    text_known("abc", 3, 100, "abc");
}
END_TEST

/* Reads the text form back: "\\" and \xHH, everything else as it is. */
static size_t unescape(const char *t, unsigned char *out)
{
    size_t n = 0;
    while (*t) {
        if (t[0] == '\\' && t[1] == '\\') {
            out[n++] = '\\';
            t += 2;
        } else if (t[0] == '\\') {
            ck_assert_int_eq(t[1], 'x');
            out[n++] = (unsigned char)strtoul((char[]){ t[2], t[3], 0 }, NULL, 16);
            t += 4;
        } else {
            out[n++] = (unsigned char)*t++;
        }
    }
    return n;
}

START_TEST(text_random_bytes_are_harmless_and_read_back)
{
    uint64_t rng = 0x7e47;
    unsigned char buf[64], back[64];
    for (int i = 0; i < 5000; i++) {
        size_t n = random_bytes(&rng, buf, sizeof buf);
        char *t = bytes_text(buf, n, 0);
        const unsigned char *p = (const unsigned char *)t, *end = p + strlen(t);
        while (p < end) {
            ck_assert_msg(*p >= 0x20 && *p != 0x7f, "control byte 0x%02x in the text", *p);
            size_t k = *p >= 0x80 ? utf8_seq(p, end) : 1;
            ck_assert_msg(k > 0, "invalid UTF-8 in the text");
            ck_assert_msg(!(k == 2 && p[0] == 0xc2 && p[1] < 0xa0), "a C1 control in the text");
            p += k;
        }
        ck_assert_uint_eq(unescape(t, back), n);
        ck_assert_int_eq(memcmp(back, buf, n), 0);
        free(t);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("bytes");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, json_utf8_stands_alone);
    tcase_add_test(tc, json_nul_and_invalid_bytes_get_base64);
    tcase_add_test(tc, json_set_again_drops_a_stale_base64);
    tcase_add_test(tc, json_refuses_what_it_cannot_do);
    tcase_add_test(tc, json_get_follows_the_reading_rule);
    tcase_add_test(tc, json_random_bytes_round_trip);
    tcase_add_test(tc, text_known_answers);
    tcase_add_test(tc, text_cut_whole);
    tcase_add_test(tc, text_random_bytes_are_harmless_and_read_back);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
