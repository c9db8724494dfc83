/* Unit tests for taskkey: known answers for every rule of RFC 8259 it
 * enforces, the key rules and their precedence. The differential test
 * against jansson is test_taskkey_diff.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "taskkey.h"

/* The last call, on exact-size copies: AddressSanitizer sees a read past
 * the task or a write past scratch even when the test text is a literal. */
static struct {
    char       *task;       /* owned: a copy of the input, exactly len bytes */
    char       *scratch;    /* owned: exactly len bytes */
    const char *key;        /* (ref) into task or scratch */
    size_t      keylen;
    size_t      err_at;
} last;

static enum taskkey_result find(const char *task, size_t len, const char *field, size_t flen)
{
    free(last.task);
    free(last.scratch);
    last.task = malloc(len ? len : 1);
    last.scratch = malloc(len ? len : 1);
    ck_assert(last.task != NULL && last.scratch != NULL);
    memcpy(last.task, task, len);
    return taskkey_find(last.task, len, field, flen, last.scratch, &last.key, &last.keylen,
                        &last.err_at);
}

static void check_key(const char *task, size_t len, const char *field, size_t flen,
                      const char *want, size_t wantlen, int line)
{
    enum taskkey_result r = find(task, len, field, flen);
    ck_assert_msg(r == TASKKEY_OK, "line %d: '%.*s': %s", line, (int)len, task,
                  taskkey_result_name(r));
    ck_assert_msg(last.keylen == wantlen && memcmp(last.key, want, wantlen) == 0,
                  "line %d: '%.*s': key '%.*s', want '%.*s'", line, (int)len, task,
                  (int)last.keylen, last.key, (int)wantlen, want);
}

static void check_is(const char *task, size_t len, const char *field, size_t flen,
                     enum taskkey_result want, int line)
{
    enum taskkey_result r = find(task, len, field, flen);
    ck_assert_msg(r == want, "line %d: '%.*s': %s, want %s", line, (int)len, task,
                  taskkey_result_name(r), taskkey_result_name(want));
    if (r != TASKKEY_OK)
        ck_assert_msg(last.key == NULL && last.keylen == 0, "line %d: a key with %s", line,
                      taskkey_result_name(r));
}

/* Literals only: their sizes count embedded NULs. */
#define LEN(s)               (sizeof(s) - 1)
#define KEY_OF(task, field, want) check_key(task, LEN(task), field, LEN(field), want, LEN(want), __LINE__)
#define KEY(task, want)      KEY_OF(task, "key", want)
#define IS_OF(task, field, want) check_is(task, LEN(task), field, LEN(field), want, __LINE__)
#define IS(task, want)       IS_OF(task, "key", want)
#define BAD(task)            IS(task, TASKKEY_INVALID_JSON)

START_TEST(string_keys)
{
    KEY("{\"key\":\"user:42\"}", "user:42");
    KEY("{\"key\":\"\"}", "");
    KEY("{\"key\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    KEY("{\"key\":\"\x7f\"}", "\x7f");                      /* DEL is not a control character */
    KEY("{\"key\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"}", "a\"b\\c/d\b\f\n\r\t");
    KEY("{\"key\":\"caf\\u00e9\"}", "caf\xc3\xa9");
    KEY("{\"key\":\"caf\\u00E9\"}", "caf\xc3\xa9");
    KEY("{\"key\":\"\\u0041\\u07ff\\u0800\\uffff\"}", "A\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
    KEY("{\"key\":\"a\\u0000b\"}", "a\0b");
    KEY("{\"key\":\"\\ud83d\\ude00\"}", "\xf0\x9f\x98\x80");
    KEY("{\"key\":\"\\uD83D\\uDE00\"}", "\xf0\x9f\x98\x80");
    KEY("{\"key\":\"\\ud800\\udc00\\udbff\\udfff\"}", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
}
END_TEST

START_TEST(a_key_without_escapes_is_a_slice_of_the_task)
{
    KEY("{\"id\":1,\"key\":\"plain\"}", "plain");
    ck_assert_ptr_eq(last.key, last.task + 15);
    KEY("{\"key\":\"esc\\n\"}", "esc\n");
    ck_assert_ptr_eq(last.key, last.scratch);
    KEY("{\"key\":-7}", "-7");
    ck_assert_ptr_eq(last.key, last.task + 7);
}
END_TEST

START_TEST(number_keys_are_their_bytes_as_written)
{
    KEY("{\"key\":0}", "0");
    KEY("{\"key\":-0}", "-0");
    KEY("{\"key\":42}", "42");
    KEY("{\"key\":1.50}", "1.50");
    KEY("{\"key\":-1.5e+3}", "-1.5e+3");
    KEY("{\"key\":1E5}", "1E5");
    KEY("{\"key\":1e-05}", "1e-05");                      /* leading zeros are fine in exponents */
    KEY("{\"key\":0.0}", "0.0");
    KEY("{\"key\":123456789012345678901234567890}", "123456789012345678901234567890");
    KEY("{\"key\":1e999}", "1e999");                      /* valid JSON, too big for a double */
    KEY("{\"key\" : 7 }", "7");
}
END_TEST

START_TEST(invalid_numbers)
{
    BAD("{\"key\":01}");
    BAD("{\"key\":-01}");
    BAD("{\"key\":00}");
    BAD("{\"key\":+1}");
    BAD("{\"key\":.5}");
    BAD("{\"key\":-.5}");
    BAD("{\"key\":1.}");
    BAD("{\"key\":1.e5}");
    BAD("{\"key\":1e}");
    BAD("{\"key\":1e+}");
    BAD("{\"key\":1E-}");
    BAD("{\"key\":1ee5}");
    BAD("{\"key\":1.5.5}");
    BAD("{\"key\":-}");
    BAD("{\"key\":--1}");
    BAD("{\"key\":0x10}");
    BAD("{\"key\":1_000}");
    BAD("{\"key\":NaN}");
    BAD("{\"key\":Infinity}");
    BAD("{\"key\":-Infinity}");
    BAD("{\"key\":1 2}");
    BAD("{\"a\":[01]}");                                  /* also away from the key */
    BAD("-");
    BAD("01");
}
END_TEST

START_TEST(field_names_are_compared_decoded)
{
    KEY("{\"k\\u0065y\":\"escaped name\"}", "escaped name");
    KEY("{\"\\u006b\\u0065\\u0079\":1}", "1");
    IS("{\"ke\":1}", TASKKEY_NO_KEY);
    IS("{\"keyy\":1}", TASKKEY_NO_KEY);
    IS("{\"Key\":1}", TASKKEY_NO_KEY);
    IS("{\"key\\u0000\":1}", TASKKEY_NO_KEY);
    KEY_OF("{\"\":\"empty name\"}", "", "empty name");
    IS_OF("{\"a\":1}", "", TASKKEY_NO_KEY);
    KEY_OF("{\"k\\u0000y\":\"nul\"}", "k\0y", "nul");      /* a field may hold any byte */
    IS_OF("{\"k\":\"nul\"}", "k\0y", TASKKEY_NO_KEY);
    KEY_OF("{\"\\u00e9\":1}", "\xc3\xa9", "1");
    KEY_OF("{\"\xc3\xa9\":1}", "\xc3\xa9", "1");
    KEY_OF("{\"a\\\"b\":1}", "a\"b", "1");
    KEY_OF("{\"\\ud83d\\ude00\":1}", "\xf0\x9f\x98\x80", "1");
    KEY_OF("{\"user\":\"u1\",\"key\":[1]}", "user", "u1");
}
END_TEST

START_TEST(outcomes_and_their_precedence)
{
    IS("", TASKKEY_EMPTY);
    IS("[\"key\"]", TASKKEY_NOT_OBJECT);
    IS("\"key\"", TASKKEY_NOT_OBJECT);
    IS("42", TASKKEY_NOT_OBJECT);
    IS("null", TASKKEY_NOT_OBJECT);
    IS(" [ ] ", TASKKEY_NOT_OBJECT);
    IS("{}", TASKKEY_NO_KEY);
    IS("{\"a\":{\"key\":1}}", TASKKEY_NO_KEY);           /* only the top level counts */
    IS("{\"a\":[{\"key\":1}]}", TASKKEY_NO_KEY);
    IS("{\"key\":null}", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":true}", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":false}", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":{}}", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":[]}", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":{\"key\":\"x\"}}", TASKKEY_BAD_KEY_TYPE);
    IS("{\"key\":1,\"key\":2}", TASKKEY_DUPLICATE_KEY);
    IS("{\"key\":\"a\",\"key\":\"a\"}", TASKKEY_DUPLICATE_KEY);
    IS("{\"key\":1,\"k\\u0065y\":2}", TASKKEY_DUPLICATE_KEY);
    IS("{\"key\":1,\"a\":2,\"key\":3,\"key\":4}", TASKKEY_DUPLICATE_KEY);
    /* Other duplicates, and duplicates below the top level, are allowed. */
    KEY("{\"a\":1,\"a\":2,\"key\":\"x\"}", "x");
    KEY("{\"key\":\"x\",\"o\":{\"key\":1,\"key\":2}}", "x");
    KEY("{\"nested\":{\"key\":\"inner\"},\"key\":\"outer\"}", "outer");
    /* DUPLICATE_KEY before BAD_KEY_TYPE, whichever comes first. */
    IS("{\"key\":null,\"key\":\"x\"}", TASKKEY_DUPLICATE_KEY);
    IS("{\"key\":\"x\",\"key\":[]}", TASKKEY_DUPLICATE_KEY);
    /* Invalid JSON anywhere wins over everything. */
    IS("{\"key\":1,\"key\":2", TASKKEY_INVALID_JSON);
    IS("{\"key\":1,\"key\":2,\"x\":tru}", TASKKEY_INVALID_JSON);
    IS("{\"key\":null,\"x\":01}", TASKKEY_INVALID_JSON);
    IS("{\"a\":1,\"b\":\"\xff\"}", TASKKEY_INVALID_JSON);
    IS("{\"key\":\"ok\"} x", TASKKEY_INVALID_JSON);
    IS("[1,]", TASKKEY_INVALID_JSON);
    IS("[", TASKKEY_INVALID_JSON);
}
END_TEST

START_TEST(literals)
{
    IS("true", TASKKEY_NOT_OBJECT);
    IS("{\"a\":[true,false,null],\"key\":1}", TASKKEY_OK);
    BAD("{\"key\":tru}");
    BAD("{\"key\":nul}");
    BAD("{\"key\":fals}");
    BAD("{\"key\":True}");
    BAD("{\"key\":NULL}");
    BAD("{\"key\":nulll}");
    BAD("{\"key\":falsey}");
    BAD("{\"key\":truefalse}");
    BAD("{\"key\":t}");
    BAD("{\"key\":undefined}");
    BAD("tru");
}
END_TEST

START_TEST(escapes)
{
    BAD("{\"key\":\"\\x\"}");
    BAD("{\"key\":\"\\a\"}");
    BAD("{\"key\":\"\\'\"}");
    BAD("{\"key\":\"\\U00e9\"}");
    BAD("{\"key\":\"\\0\"}");
    BAD("{\"key\":\"\\u12\"}");
    BAD("{\"key\":\"\\u12G4\"}");
    BAD("{\"key\":\"\\u-123\"}");
    BAD("{\"key\":\"\\u\"}");
    BAD("{\"key\":\"\\\"}");
    BAD("{\"key\":\"\\");
    BAD("{\"k\\x\":1}");                                  /* in names too */
    BAD("{\"a\":[\"\\q\"],\"key\":1}");                   /* and away from the key */
}
END_TEST

START_TEST(surrogate_escapes)
{
    BAD("{\"key\":\"\\ud800\"}");                         /* a lone high surrogate */
    BAD("{\"key\":\"\\udbff\"}");
    BAD("{\"key\":\"\\udc00\"}");                         /* a lone low surrogate */
    BAD("{\"key\":\"\\udfff\"}");
    BAD("{\"key\":\"\\ude00\\ud83d\"}");                  /* the halves reversed */
    BAD("{\"key\":\"\\ud800\\u0041\"}");                  /* high, then not low */
    BAD("{\"key\":\"\\ud800\\ud800\"}");                  /* high, then high */
    BAD("{\"key\":\"\\ud800\\ue000\"}");                  /* high, then past the low range */
    BAD("{\"key\":\"\\udbff\\udbff\"}");
    BAD("{\"key\":\"\\ud800\\n\"}");                      /* high, then another escape */
    BAD("{\"key\":\"\\ud800x\\udc00\"}");                 /* high, a character, low */
    BAD("{\"key\":\"\\ud800\\udc0\"}");                   /* a short low half */
    BAD("{\"key\":\"\\ud83d\xed\xb8\x80\"}");             /* high escaped, low in (invalid) UTF-8 */
    BAD("{\"\\udc00\":1}");                               /* in names too */
    BAD("[\"\\ud800\"]");
    KEY("{\"key\":\"\\ud7ff\\ue000\"}", "\xed\x9f\xbf\xee\x80\x80"); /* just outside the range */
}
END_TEST

START_TEST(control_characters_must_be_escaped)
{
    char t[] = "{\"key\":\"a?b\"}";
    for (int c = 0; c < 0x20; c++) {
        t[9] = (char)c;
        enum taskkey_result r = find(t, sizeof t - 1, "key", 3);
        ck_assert_msg(r == TASKKEY_INVALID_JSON, "raw 0x%02x: %s", c, taskkey_result_name(r));
    }
    BAD("{\"k\ney\":1}");
    KEY("{\"key\":\"a\\u001fb\"}", "a\x1f" "b");
    /* Long strings are scanned eight bytes at a time: each place in a block. */
    char l[] = "{\"key\":\"abcdefghijklmnopqrstuvwxyz\"}";
    for (size_t at = 8; at < 8 + 26; at++) {
        static const char bad[] = { 0x00, 0x01, 0x1f, '\xff', '\x80', '\xc0' };
        for (size_t b = 0; b < sizeof bad; b++) {
            char was = l[at];
            l[at] = bad[b];
            enum taskkey_result r = find(l, sizeof l - 1, "key", 3);
            ck_assert_msg(r == TASKKEY_INVALID_JSON, "0x%02x at %zu: %s", (unsigned char)bad[b], at,
                          taskkey_result_name(r));
            l[at] = was;
        }
    }
}
END_TEST

START_TEST(utf8)
{
    /* Every boundary that is valid. */
    KEY("{\"key\":\"\xc2\x80\xdf\xbf\"}", "\xc2\x80\xdf\xbf");
    KEY("{\"key\":\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\"}",
        "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf");
    KEY("{\"key\":\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    /* Stray continuation bytes and bytes that never occur. */
    BAD("{\"key\":\"\x80\"}");
    BAD("{\"key\":\"\xbf\"}");
    BAD("{\"key\":\"\xf5\x80\x80\x80\"}");
    BAD("{\"key\":\"\xfe\"}");
    BAD("{\"key\":\"\xff\"}");
    /* Overlong forms. */
    BAD("{\"key\":\"\xc0\xaf\"}");
    BAD("{\"key\":\"\xc1\xbf\"}");
    BAD("{\"key\":\"\xe0\x80\xaf\"}");
    BAD("{\"key\":\"\xe0\x9f\xbf\"}");
    BAD("{\"key\":\"\xf0\x80\x80\xaf\"}");
    BAD("{\"key\":\"\xf0\x8f\xbf\xbf\"}");
    /* UTF-16 surrogates encoded in UTF-8. */
    BAD("{\"key\":\"\xed\xa0\x80\"}");
    BAD("{\"key\":\"\xed\xbf\xbf\"}");
    BAD("{\"key\":\"\xed\xa0\xbd\xed\xb8\x80\"}");        /* a "CESU-8" pair */
    /* Above U+10FFFF. */
    BAD("{\"key\":\"\xf4\x90\x80\x80\"}");
    BAD("{\"key\":\"\xf7\xbf\xbf\xbf\"}");
    /* Truncated sequences: before the quote, before ASCII, at the end. */
    BAD("{\"key\":\"\xc3\"}");
    BAD("{\"key\":\"\xe2\x82\"}");
    BAD("{\"key\":\"\xf0\x9f\x98\"}");
    BAD("{\"key\":\"\xe2\x82x\"}");
    BAD("{\"key\":\"\xc3\xa9\xc3");
    BAD("{\"key\":\"\xf0\x9f\x98");
    /* A continuation byte where the next character should start. */
    BAD("{\"key\":\"\xc3\xa9\xa9\"}");
    /* Anywhere in the text: names, other values, outside strings. */
    BAD("{\"k\xff\":1,\"key\":1}");
    BAD("{\"key\":1,\"a\":[\"\xed\xa0\x80\"]}");
    BAD("{\"key\":1}\xc3\xa9");
    BAD("\xef\xbb\xbf{\"key\":1}");                       /* a byte order mark is not JSON */
}
END_TEST

START_TEST(white_space)
{
    KEY(" \t\r\n{ \t\r\n\"key\" \t\r\n: \t\r\n\"x\" \t\r\n, \t\r\n\"a\" \t\r\n: \t\r\n"
        "[ \t\r\n1 \t\r\n, \t\r\n2 \t\r\n] \t\r\n} \t\r\n", "x");
    IS("{\"key\":1}\n", TASKKEY_OK);
    IS(" ", TASKKEY_INVALID_JSON);                       /* not empty: invalid */
    IS("\n\t", TASKKEY_INVALID_JSON);
    BAD("{\"key\":1}\f");
    BAD("{\"key\":\v1}");
    BAD("{\xc2\xa0\"key\":1}");                           /* no-break space */
    BAD("{\"key\":1}\0");
    BAD("\0{\"key\":1}");
    BAD("{\"key\":1\0}");
}
END_TEST

START_TEST(exactly_one_value)
{
    BAD("{}{}");
    BAD("{\"key\":\"a\"} {}");
    BAD("{\"key\":\"a\"}x");
    BAD("{\"key\":\"a\"},");
    BAD("{\"key\":\"a\"}}");
    BAD("1 2");
    BAD("\"a\" \"b\"");
}
END_TEST

START_TEST(structure)
{
    BAD("{");
    BAD("}");
    BAD("{\"key\"}");
    BAD("{\"key\":}");
    BAD("{\"key\" 1}");
    BAD("{\"key\"::1}");
    BAD("{\"key\":\"a\",}");
    BAD("{,\"key\":1}");
    BAD("{,}");
    BAD("{\"key\":1,,\"a\":2}");
    BAD("{\"key\":1 \"a\":2}");
    BAD("{'key':'a'}");
    BAD("{key:1}");
    BAD("{1:1}");
    BAD("{null:1}");
    BAD("{\"key\":1]");
    BAD("{]");
    BAD("[}");
    BAD("{\"key\":1,\"a\":[}}");
    BAD("{\"key\":1,\"a\":{]}");
    BAD("{\"key\":1,\"a\":[{]]}");
    BAD("{\"a\":[1}");
    BAD("{\"a\":[1 2]}");
    BAD("{\"a\":[1,]}");
    BAD("{\"a\":[,1]}");
    BAD("{\"a\":[\"key\":1]}");
    BAD("{\"key\":\"unterminated}");
    KEY("{\"a\":[[],{},[{}],{\"b\":[]}],\"key\":\"x\"}", "x");
}
END_TEST

/* The typical task, and one with a bit of everything. */
static const char typical[] = "{\"id\":123,\"key\":\"user:42\",\"payload\":\"xxxxxxxxxxxxxxxxxxxxxxxxx"
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
static const char rich[] = "{\"id\":-12.5e+3,\"k\\u0065y\":\"us\\u00e9r:\\ud83d\\ude00\","
                           "\"tags\":[\"a\",\"\\u00e9\",true,false,null,0,1E2],\"o\":{\"x\":{}},"
                           "\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\\"q\\\"\"}";

START_TEST(every_truncation_is_invalid)
{
    const char *texts[] = { typical, rich };
    for (size_t t = 0; t < 2; t++) {
        size_t n = strlen(texts[t]);
        ck_assert_int_eq(find(texts[t], n, "key", 3), TASKKEY_OK);
        for (size_t m = 1; m < n; m++) {
            enum taskkey_result r = find(texts[t], m, "key", 3);
            ck_assert_msg(r == TASKKEY_INVALID_JSON, "text %zu, first %zu bytes: %s", t, m,
                          taskkey_result_name(r));
            ck_assert_uint_le(last.err_at, m);
        }
    }
    KEY(rich, "us\xc3\xa9r:\xf0\x9f\x98\x80");
}
END_TEST

START_TEST(a_bad_byte_anywhere_is_invalid)
{
    /* 0xff never occurs in UTF-8, a raw 0x01 never in JSON: wherever one is
     * put, inside a string or between tokens, the text is invalid. */
    static const char bytes[] = { '\xff', '\x01', '\xc0', '\x80' };
    const char *texts[] = { typical, rich };
    for (size_t x = 0; x < 2; x++) {
        size_t n = strlen(texts[x]);
        char *t = malloc(n + 1);
        ck_assert_ptr_nonnull(t);
        for (size_t b = 0; b < sizeof bytes; b++) {
            for (size_t at = 0; at <= n; at++) {
                memcpy(t, texts[x], at);
                t[at] = bytes[b];
                memcpy(t + at + 1, texts[x] + at, n - at);
                enum taskkey_result r = find(t, n + 1, "key", 3);
                ck_assert_msg(r == TASKKEY_INVALID_JSON, "text %zu, 0x%02x at %zu: %s", x,
                              (unsigned char)bytes[b], at, taskkey_result_name(r));
            }
        }
        free(t);
    }
}
END_TEST

/* levels of arrays in {"key":1,"d":...} (the object is one level more),
 * the innermost holding 1 (one level more again) or nothing. */
static enum taskkey_result nested(int levels, int scalar, char open, char close)
{
    char *t = malloc(6 * (size_t)levels + 64);
    ck_assert_ptr_nonnull(t);
    size_t n = (size_t)sprintf(t, "{\"key\":1,\"d\":");
    for (int i = 0; i < levels; i++) {
        t[n++] = open;
        if (open == '{') {
            memcpy(t + n, "\"a\":", 4);
            n += 4;
        }
    }
    if (scalar || open == '{')
        t[n++] = '1';
    for (int i = 0; i < levels; i++)
        t[n++] = close;
    t[n++] = '}';
    enum taskkey_result r = find(t, n, "key", 3);
    free(t);
    return r;
}

START_TEST(nesting_limit)
{
    /* Every value counts one level, as in jansson: the object, each array,
     * and a scalar inside the innermost one. */
    const int max = TASKKEY_MAX_DEPTH;
    ck_assert_int_eq(nested(max - 1, 0, '[', ']'), TASKKEY_OK);
    ck_assert_int_eq(nested(max, 0, '[', ']'), TASKKEY_INVALID_JSON);
    ck_assert_int_eq(nested(max - 2, 1, '[', ']'), TASKKEY_OK);
    ck_assert_int_eq(nested(max - 1, 1, '[', ']'), TASKKEY_INVALID_JSON);
    ck_assert_int_eq(nested(max - 2, 1, '{', '}'), TASKKEY_OK);
    ck_assert_int_eq(nested(max - 1, 1, '{', '}'), TASKKEY_INVALID_JSON);
    ck_assert_int_eq(nested(100000, 0, '[', ']'), TASKKEY_INVALID_JSON);
}
END_TEST

START_TEST(nesting_limit_at_the_top_level)
{
    const int max = TASKKEY_MAX_DEPTH;
    char *t = malloc(2 * (size_t)max + 8);
    ck_assert_ptr_nonnull(t);
    for (int levels = max - 1; levels <= max + 1; levels++) {
        size_t n = 0;
        for (int i = 0; i < levels; i++)
            t[n++] = '[';
        for (int i = 0; i < levels; i++)
            t[n++] = ']';
        ck_assert_int_eq(find(t, n, "key", 3),
                         levels <= max ? TASKKEY_NOT_OBJECT : TASKKEY_INVALID_JSON);
    }
    free(t);
}
END_TEST

START_TEST(error_offset_points_at_the_problem)
{
    BAD("{\"key\":\"a\",\"x\":tx}");
    ck_assert_uint_eq(last.err_at, 16);
    BAD("{\"key\":\"a\xff\"}");
    ck_assert_uint_eq(last.err_at, 9);
    BAD("{\"key\":01}");
    ck_assert_uint_eq(last.err_at, 8);
    BAD("{\"key\":1} x");
    ck_assert_uint_eq(last.err_at, 10);
    BAD("{\"key\":1");
    ck_assert_uint_eq(last.err_at, 8);
}
END_TEST

START_TEST(result_names)
{
    ck_assert_str_eq(taskkey_result_name(TASKKEY_OK), "ok");
    ck_assert_str_eq(taskkey_result_name(TASKKEY_DUPLICATE_KEY), "duplicate_key");
    ck_assert_str_eq(taskkey_result_text(TASKKEY_NO_KEY), "the task has no key field");
    ck_assert_str_eq(taskkey_result_name(TASKKEY_RESULT_COUNT), "unknown");
    ck_assert_str_eq(taskkey_result_text((enum taskkey_result)-1), "unknown");
}
END_TEST

static void teardown(void)
{
    free(last.task);
    free(last.scratch);
    memset(&last, 0, sizeof last);
}

static Suite *suite(void)
{
    Suite *s = suite_create("taskkey");
    TCase *tc = tcase_create("taskkey");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, string_keys);
    tcase_add_test(tc, a_key_without_escapes_is_a_slice_of_the_task);
    tcase_add_test(tc, number_keys_are_their_bytes_as_written);
    tcase_add_test(tc, invalid_numbers);
    tcase_add_test(tc, field_names_are_compared_decoded);
    tcase_add_test(tc, outcomes_and_their_precedence);
    tcase_add_test(tc, literals);
    tcase_add_test(tc, escapes);
    tcase_add_test(tc, surrogate_escapes);
    tcase_add_test(tc, control_characters_must_be_escaped);
    tcase_add_test(tc, utf8);
    tcase_add_test(tc, white_space);
    tcase_add_test(tc, exactly_one_value);
    tcase_add_test(tc, structure);
    tcase_add_test(tc, every_truncation_is_invalid);
    tcase_add_test(tc, a_bad_byte_anywhere_is_invalid);
    tcase_add_test(tc, nesting_limit);
    tcase_add_test(tc, nesting_limit_at_the_top_level);
    tcase_add_test(tc, error_offset_points_at_the_problem);
    tcase_add_test(tc, result_names);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
