/* Differential test of taskkey against jansson: generated JSON-ish texts,
 * valid and not, and mutations of them, each judged by tests/oracle.c (which
 * also says where jansson is excused and why). The seeds are fixed, so every
 * run checks the same cases. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "oracle.h"
#include "taskkey.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the generator ------------------------------------------------------ */

struct gen {
    uint64_t s;         /* xorshift64* state, never 0 */
    uint32_t faults;    /* an invalid construct one time in this many */
};

static uint32_t below(struct gen *g, uint32_t n)
{
    g->s ^= g->s >> 12;
    g->s ^= g->s << 25;
    g->s ^= g->s >> 27;
    return (uint32_t)((g->s * 0x2545F4914F6CDD1Dull) >> 32) % n;
}

static int one_in(struct gen *g, uint32_t n) { return below(g, n) == 0; }
static int fault(struct gen *g) { return one_in(g, g->faults); }

static void gen_init(struct gen *g, uint64_t seed, uint32_t faults)
{
    g->s = seed * 0x9E3779B97F4A7C15ull + 1;
    g->faults = faults;
}

struct text {
    char   b[1 << 15];
    size_t n;
};

static void put_bytes(struct text *o, const char *s, size_t l)
{
    if (l <= sizeof o->b - o->n) {      /* a full buffer drops the rest: still a test */
        memcpy(o->b + o->n, s, l);
        o->n += l;
    }
}

static void put(struct text *o, const char *s) { put_bytes(o, s, strlen(s)); }
static void put_char(struct text *o, char c) { put_bytes(o, &c, 1); }
static const char *pick(struct gen *g, const char *const *a, size_t n) { return a[below(g, (uint32_t)n)]; }
#define PICK(g, a) pick(g, a, COUNT(a))

static void gen_ws(struct gen *g, struct text *o)
{
    static const char *const bad[] = { "\f", "\v", "\xc2\xa0", "\xef\xbb\xbf" };
    if (fault(g))
        put(o, PICK(g, bad));
    else if (one_in(g, 4))
        for (uint32_t i = 1 + below(g, 3); i > 0; i--)
            put_char(o, " \t\n\r"[below(g, 4)]);
}

static void put_digits(struct gen *g, struct text *o, uint32_t n)
{
    while (n-- > 0)
        put_char(o, (char)('0' + below(g, 10)));
}

/* Numbers from the grammar, now and then 20 digits (beyond int64) or an
 * exponent of 3 digits (beyond a double), or a near miss. */
static void gen_number(struct gen *g, struct text *o)
{
    static const char *const bad[] = { "01", "-01", "00", "+1", ".5", "1.", "1.e5", "1e", "1e+",
                                       "-", "--1", "0x1F", "1_0", "NaN", "Infinity", "1.5.5", "1ee5" };
    if (fault(g)) {
        put(o, PICK(g, bad));
        return;
    }
    if (one_in(g, 3))
        put_char(o, '-');
    if (one_in(g, 4)) {
        put_char(o, '0');
    } else {
        put_char(o, (char)('1' + below(g, 9)));
        put_digits(g, o, one_in(g, 10) ? 15 + below(g, 10) : below(g, 4));
    }
    if (one_in(g, 3)) {
        put_char(o, '.');
        put_digits(g, o, 1 + below(g, 5));
    }
    if (one_in(g, 4)) {
        put_char(o, "eE"[below(g, 2)]);
        if (one_in(g, 2))
            put_char(o, "+-"[below(g, 2)]);
        put_digits(g, o, one_in(g, 10) ? 3 : 1 + below(g, 2));
    }
}

static void put_hex4(struct gen *g, struct text *o, unsigned v)
{
    const char *digits = one_in(g, 2) ? "0123456789abcdef" : "0123456789ABCDEF";
    char s[7] = { '\\', 'u', digits[v >> 12 & 15], digits[v >> 8 & 15], digits[v >> 4 & 15],
                  digits[v & 15], 0 };
    put(o, s);
}

static void put_utf8(struct text *o, unsigned cp)
{
    char s[4];
    size_t n;
    if (cp < 0x80) {
        s[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (char)(0xC0 | cp >> 6);
        s[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (char)(0xE0 | cp >> 12);
        s[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        s[0] = (char)(0xF0 | cp >> 18);
        s[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        s[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        s[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    put_bytes(o, s, n);
}

/* A code point that is not a surrogate, often one at a boundary. */
static unsigned gen_code_point(struct gen *g)
{
    static const unsigned edges[] = { 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF };
    unsigned cp;
    switch (below(g, 4)) {
    case 0: return edges[below(g, COUNT(edges))];
    case 1: return 0x80 + below(g, 0x780);
    case 2:
        do
            cp = 0x800 + below(g, 0xF800);
        while (cp >= 0xD800 && cp <= 0xDFFF);
        return cp;
    default: return 0x10000 + below(g, 0x100000);
    }
}

static void gen_escape(struct gen *g, struct text *o)
{
    static const char *const bad[] = {
        "\\ud800", "\\uDBFF", "\\udc00", "\\ude00\\ud83d", "\\ud800\\u0041", "\\ud800\\ud800",
        "\\ud800\\n", "\\ud800x", "\\x", "\\u12", "\\u12G4", "\\U0041", "\\'", "\\0", "\\",
    };
    if (fault(g)) {
        switch (below(g, 3)) {
        case 0:                                                     /* any character escaped */
            put_char(o, '\\');
            put_char(o, (char)(0x21 + below(g, 0x5E)));
            break;
        case 1:                                                     /* high, then any \uXXXX */
            put_hex4(g, o, 0xD800 + below(g, 0x400));
            put_hex4(g, o, below(g, 0x10000));
            break;
        default: put(o, PICK(g, bad));
        }
        return;
    }
    switch (below(g, 5)) {
    case 0:
        put_char(o, '\\');
        put_char(o, "\"\\/bfnrt"[below(g, 8)]);
        break;
    case 1: put_hex4(g, o, below(g, 0x80)); break;                  /* \u0000 too */
    case 2: put_hex4(g, o, gen_code_point(g) & 0xFFFF); break;      /* sometimes a surrogate */
    case 3: {
        unsigned cp = 0x10000 + below(g, 0x100000);
        put_hex4(g, o, 0xD800 + ((cp - 0x10000) >> 10));
        put_hex4(g, o, 0xDC00 + (cp & 0x3FF));
        break;
    }
    default: put(o, "\\u0065"); break;                              /* an 'e', as in k\u0065y */
    }
}

static void gen_bad_utf8(struct gen *g, struct text *o)
{
    static const char *const bad[] = {
        "\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xe0\x9f\xbf", "\xf0\x80\x80\xaf",
        "\xf0\x8f\xbf\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\xfe", "\xff", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xc3\xc3\xa9",
    };
    put(o, PICK(g, bad));
}

static void gen_string(struct gen *g, struct text *o)
{
    put_char(o, '"');
    for (uint32_t i = below(g, 6); i > 0; i--) {
        switch (below(g, 8)) {
        case 0: case 1: case 2:                                     /* printable ASCII */
            for (uint32_t k = 1 + below(g, 12); k > 0; k--) {
                char c = (char)(0x20 + below(g, 0x5F));
                put_char(o, c == '"' || c == '\\' ? 'q' : c);
            }
            break;
        case 3: case 4: gen_escape(g, o); break;
        case 5: put_utf8(o, gen_code_point(g)); break;
        case 6: put(o, "key"); break;
        default:
            if (fault(g))
                gen_bad_utf8(g, o);
            else if (fault(g))
                put_char(o, (char)below(g, 0x20));                  /* a raw control character */
            else
                put_char(o, 0x7F);
        }
    }
    put_char(o, '"');
}

/* The key field, spelled several ways. */
static const char *const key_names[] = { "\"key\"", "\"k\\u0065y\"", "\"\\u006B\\u0065\\u0079\"" };

/* Other member names: near misses, the key field now and then (a duplicate
 * when it is planted too, see gen_object), any string. */
static void gen_name(struct gen *g, struct text *o, int top)
{
    static const char *const others[] = { "\"ke\"", "\"keyy\"", "\"Key\"", "\"\"", "\"id\"", "\"k\\\\y\"" };
    if (one_in(g, top ? 8 : 6))
        put(o, PICK(g, key_names));
    else if (one_in(g, 2))
        put(o, PICK(g, others));
    else if (one_in(g, 400))
        put(o, "\"k\\u0000y\"");      /* valid, but jansson refuses it: skipped */
    else
        gen_string(g, o);
}

static void gen_value(struct gen *g, struct text *o, int depth);

static void gen_member(struct gen *g, struct text *o, int depth, int key)
{
    if (key)
        put(o, PICK(g, key_names));
    else
        gen_name(g, o, depth == 1);
    gen_ws(g, o);
    put_char(o, ':');
    gen_ws(g, o);
    if (key && one_in(g, 2))
        gen_string(g, o);
    else if (key && !one_in(g, 3))
        gen_number(g, o);
    else
        gen_value(g, o, depth + 1);
}

/* At the top level the key field is planted among the members, mostly. */
static void gen_object(struct gen *g, struct text *o, int depth)
{
    uint32_t n = below(g, depth == 1 ? 6 : 4);
    uint32_t key_at = depth == 1 && n > 0 && !one_in(g, 6) ? below(g, n) : n;
    put_char(o, '{');
    gen_ws(g, o);
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0) {
            put_char(o, ',');
            gen_ws(g, o);
        }
        gen_member(g, o, depth, i == key_at);
        gen_ws(g, o);
    }
    put_char(o, '}');
}

static void gen_array(struct gen *g, struct text *o, int depth)
{
    put_char(o, '[');
    gen_ws(g, o);
    for (uint32_t i = 0, n = below(g, 4); i < n; i++) {
        if (i > 0) {
            put_char(o, ',');
            gen_ws(g, o);
        }
        gen_value(g, o, depth + 1);
        gen_ws(g, o);
    }
    put_char(o, ']');
}

static void gen_value(struct gen *g, struct text *o, int depth)
{
    static const char *const literals[] = { "true", "false", "null" };
    static const char *const bad[] = { "tru", "nul", "True", "nulll", "falsey", "undefined" };
    switch (below(g, depth > 4 ? 4 : 7)) {
    case 0: gen_number(g, o); break;
    case 1: case 2: gen_string(g, o); break;
    case 3: put(o, fault(g) ? PICK(g, bad) : PICK(g, literals)); break;
    case 4: case 5: gen_object(g, o, depth); break;
    default: gen_array(g, o, depth); break;
    }
}

/* A whole text: mostly an object, as tasks are. */
static void gen_text(struct gen *g, struct text *o)
{
    o->n = 0;
    gen_ws(g, o);
    if (one_in(g, 5))
        gen_value(g, o, 1);
    else
        gen_object(g, o, 1);
    gen_ws(g, o);
}

static void insert(struct text *o, size_t at, const char *s, size_t l)
{
    if (l <= sizeof o->b - o->n) {
        memmove(o->b + at + l, o->b + at, o->n - at);
        memcpy(o->b + at, s, l);
        o->n += l;
    }
}

/* One to three edits: bit flips, bytes replaced, deleted or swapped,
 * truncation, an escape or a bad UTF-8 sequence or a structural piece
 * inserted, a span of the text repeated elsewhere. */
static void mutate(struct gen *g, struct text *o)
{
    static const char *const pieces[] = {
        "\\u0065", "\\ud83d\\ude00", "\\ud800", "\\udc00", "\\u0000", "\\", "\"", "\"key\":",
        ",\"key\":1", ",\"k\\u0065y\":\"x\"", "{", "}", "[", "]", ":", ",", " ", "\n", "0", "-",
        ".", "e", "true", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xed\xa0\x80", "\xc0\xaf",
        "\xf4\x90\x80\x80", "\xff", "\xe2\x82",
    };
    for (uint32_t edits = 1 + below(g, 3); edits > 0; edits--) {
        if (o->n == 0) {
            put(o, PICK(g, pieces));
            continue;
        }
        size_t at = below(g, (uint32_t)o->n);
        switch (below(g, 8)) {
        case 0: o->b[at] = (char)(o->b[at] ^ (1 << below(g, 8))); break;
        case 1: o->b[at] = (char)below(g, 256); break;
        case 2: o->n = at; break;
        case 3:
            memmove(o->b + at, o->b + at + 1, o->n - at - 1);
            o->n--;
            break;
        case 4: {
            size_t other = below(g, (uint32_t)o->n);
            char c = o->b[at];
            o->b[at] = o->b[other];
            o->b[other] = c;
            break;
        }
        case 5: {
            char span[16];
            size_t from = below(g, (uint32_t)o->n);
            size_t l = 1 + below(g, (uint32_t)(o->n - from < sizeof span ? o->n - from : sizeof span));
            memcpy(span, o->b + from, l);
            insert(o, at, span, l);
            break;
        }
        case 6: insert(o, at, "\0", 1); break;
        default: {
            const char *p = PICK(g, pieces);
            insert(o, at, p, strlen(p));
        }
        }
    }
}

/* Nesting around TASKKEY_MAX_DEPTH, of arrays and objects mixed, in a task
 * or at the top level. */
static void gen_deep(struct gen *g, struct text *o)
{
    static char opened[TASKKEY_MAX_DEPTH + 8];
    uint32_t levels = TASKKEY_MAX_DEPTH - 4 + below(g, 8);
    int task = !one_in(g, 4);
    o->n = 0;
    if (task) {
        put(o, "{\"key\":\"k\",\"d\":");
        levels--;                       /* the task object is a level too */
    }
    for (uint32_t i = 0; i < levels; i++) {
        opened[i] = one_in(g, 3) ? '{' : '[';
        put(o, opened[i] == '{' ? "{\"a\":" : "[");
    }
    if (levels > 0 && (opened[levels - 1] == '{' || one_in(g, 2)))
        gen_value(g, o, 5);             /* one more level */
    for (uint32_t i = levels; i > 0; i--)
        put_char(o, opened[i - 1] == '{' ? '}' : ']');
    if (task)
        put(o, one_in(g, 3) ? ",\"key\":1}" : "}");
}

/* ---- the checks --------------------------------------------------------- */

struct tally {
    long seen[TASKKEY_RESULT_COUNT];    /* agreed cases, by taskkey's result */
    long skipped;
};

/* The text with unprintable bytes as \xNN, for a failure message (Check
 * keeps 4 KB of a message: long texts are cut). */
static const char *show(const struct text *o)
{
    static char s[2560];
    size_t n = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (n > sizeof s - 64) {
            n += (size_t)sprintf(s + n, "... (%zu bytes in all)", o->n);
            break;
        }
        unsigned char c = (unsigned char)o->b[i];
        if (c >= 0x20 && c < 0x7F)
            s[n++] = (char)c;
        else
            n += (size_t)sprintf(s + n, "\\x%02x", c);
    }
    s[n] = '\0';
    return s;
}

static void check(const struct text *o, struct tally *t, const char *what, long run, long i)
{
    char why[512];
    enum taskkey_result r;
    enum oracle_verdict v = oracle_check(o->b, o->n, &r, why, sizeof why);
    ck_assert_msg(v != ORACLE_DISAGREE, "%s, run %ld, case %ld: %s\n  text: %s", what, run, i, why,
                  show(o));
    if (v == ORACLE_SKIPPED)
        t->skipped++;
    else
        t->seen[r]++;
}

/* Every outcome shows up: the generator reaches each rule. */
static void assert_coverage(const struct tally *t, long cases, long at_least)
{
    long agreed = 0;
    for (int r = 0; r < TASKKEY_RESULT_COUNT; r++) {
        agreed += t->seen[r];
        if (r != TASKKEY_EMPTY && r != TASKKEY_TOO_LARGE)
            ck_assert_msg(t->seen[r] >= at_least, "%s: only %ld of %ld cases",
                          taskkey_result_name((enum taskkey_result)r), t->seen[r], cases);
    }
    ck_assert_msg(t->skipped < cases / 50, "%ld of %ld cases skipped", t->skipped, cases);
    ck_assert_int_eq(agreed + t->skipped, cases);
}

enum { SEEDS = 8, CASES = 5000 };

START_TEST(generated_texts)
{
    struct gen g;
    struct tally t = { { 0 }, 0 };
    static struct text o;
    gen_init(&g, (uint64_t)_i + 1, 60);
    for (long i = 0; i < CASES; i++) {
        gen_text(&g, &o);
        check(&o, &t, "generated", _i, i);
    }
    assert_coverage(&t, CASES, 50);
    ck_assert_int_gt(t.seen[TASKKEY_OK], CASES / 5);
}
END_TEST

START_TEST(mutated_texts)
{
    struct gen g;
    struct tally t = { { 0 }, 0 };
    static struct text o;
    gen_init(&g, 1000 + (uint64_t)_i, 200);
    for (long i = 0; i < CASES; i++) {
        gen_text(&g, &o);
        mutate(&g, &o);
        check(&o, &t, "mutated", _i, i);
    }
    assert_coverage(&t, CASES, 10);
    ck_assert_int_gt(t.seen[TASKKEY_INVALID_JSON], CASES / 3);
}
END_TEST

START_TEST(deep_nesting)
{
    struct gen g;
    struct tally t = { { 0 }, 0 };
    static struct text o;
    gen_init(&g, 7, 1000);
    for (long i = 0; i < 300; i++) {
        gen_deep(&g, &o);
        if (one_in(&g, 4))
            mutate(&g, &o);
        check(&o, &t, "deep", 7, i);
    }
    ck_assert_int_gt(t.seen[TASKKEY_OK], 30);
    ck_assert_int_gt(t.seen[TASKKEY_NOT_OBJECT], 10);
    ck_assert_int_gt(t.seen[TASKKEY_INVALID_JSON], 60);
}
END_TEST

/* Tasks holding the key field 0 to 3 times at the top level and a few
 * more times below it, with other members repeated as well. */
START_TEST(duplicates)
{
    static const char *const others[] = { "\"a\"", "\"a\"", "\"keys\"", "\"\"" };
    struct gen g;
    struct tally t = { { 0 }, 0 };
    static struct text o;
    gen_init(&g, 99, 1000);
    for (long i = 0; i < 3000; i++) {
        uint32_t members = 1 + below(&g, 6);
        o.n = 0;
        put_char(&o, '{');
        for (uint32_t m = 0; m < members; m++) {
            if (m > 0)
                put_char(&o, ',');
            put(&o, one_in(&g, 3) ? PICK(&g, key_names) : PICK(&g, others));
            put_char(&o, ':');
            if (one_in(&g, 3)) {
                put(&o, "{");
                put(&o, PICK(&g, key_names));
                put(&o, ":1,");
                put(&o, PICK(&g, key_names));
                put(&o, ":2}");
            } else {
                gen_value(&g, &o, 2);
            }
        }
        put_char(&o, '}');
        if (one_in(&g, 8))
            mutate(&g, &o);
        check(&o, &t, "duplicates", 99, i);
    }
    ck_assert_int_gt(t.seen[TASKKEY_DUPLICATE_KEY], 300);
    ck_assert_int_gt(t.seen[TASKKEY_OK], 200);
}
END_TEST

/* Where jansson parts from RFC 8259, the oracle's handling (tests/oracle.c). */
START_TEST(known_divergences)
{
    static const struct {
        const char         *text;
        size_t              len;
        enum oracle_verdict verdict;
        enum taskkey_result result;
    } cases[] = {
#define CASE(s, v, r) { s, sizeof(s) - 1, v, r }
        /* Too big for json_int_t, compared through JSON_DECODE_INT_AS_REAL. */
        CASE("{\"key\":99999999999999999999}", ORACLE_AGREE, TASKKEY_OK),
        CASE("{\"key\":-99999999999999999999,\"a\":1}", ORACLE_AGREE, TASKKEY_OK),
        CASE("{\"a\":99999999999999999999,\"key\":1,}", ORACLE_AGREE, TASKKEY_INVALID_JSON),
        /* Too big for a double, or a NUL in a member name: jansson has no answer. */
        CASE("{\"key\":1e999}", ORACLE_SKIPPED, TASKKEY_OK),
        CASE("[-1e999]", ORACLE_SKIPPED, TASKKEY_NOT_OBJECT),
        CASE("{\"k\\u0000\":1,\"key\":\"x\"}", ORACLE_SKIPPED, TASKKEY_OK),
        /* A raw NUL after a number or literal, which jansson drops. */
        CASE("[1\0]", ORACLE_AGREE, TASKKEY_INVALID_JSON),
        CASE("{\"key\":true\0}", ORACLE_AGREE, TASKKEY_INVALID_JSON),
        CASE("{\"key\":1\0,\"key\":2}", ORACLE_AGREE, TASKKEY_INVALID_JSON),
        /* jansson keeps the last duplicate; the oracle counts them. */
        CASE("{\"key\":1,\"k\\u0065y\":2}", ORACLE_AGREE, TASKKEY_DUPLICATE_KEY),
#undef CASE
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        char why[512] = "";
        enum taskkey_result r;
        enum oracle_verdict v = oracle_check(cases[i].text, cases[i].len, &r, why, sizeof why);
        ck_assert_msg(v == cases[i].verdict && r == cases[i].result, "case %zu: verdict %d, %s %s", i,
                      v, taskkey_result_name(r), why);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("taskkey_diff");
    TCase *tc = tcase_create("taskkey_diff");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, generated_texts, 0, SEEDS);
    tcase_add_loop_test(tc, mutated_texts, 0, SEEDS);
    tcase_add_test(tc, deep_nesting);
    tcase_add_test(tc, duplicates);
    tcase_add_test(tc, known_divergences);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
