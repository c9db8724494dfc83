/* Unit tests for keyslot: Redis Cluster's answers and the {hash tag} rule
 * (the integration suite also asks a real cluster-enabled redis-server). */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "crc16.h"
#include "keyslot.h"

#define SLOT(s) keyslot(s, sizeof(s) - 1)
#define CRC(s) (crc16_xmodem(s, sizeof(s) - 1) & 16383u)

START_TEST(redis_known_answers)
{
    ck_assert_uint_eq(SLOT("foo"), 12182);
    ck_assert_uint_eq(SLOT("bar"), 5061);
    ck_assert_uint_eq(SLOT("hello"), 866);
    ck_assert_uint_eq(SLOT("{user1000}.following"), 3443);
    ck_assert_uint_eq(SLOT("{user1000}.followers"), 3443);
    ck_assert_uint_eq(SLOT("123456789"), 0x31C3 & 16383);
}
END_TEST

START_TEST(hash_tag_rule)
{
    ck_assert_uint_eq(SLOT(""), 0);
    ck_assert_uint_eq(SLOT("{}"), CRC("{}"));               /* empty tag: whole key */
    ck_assert_uint_eq(SLOT("{{a}}"), CRC("{a"));            /* first { to first } */
    ck_assert_uint_eq(SLOT("a{}{b}"), CRC("a{}{b}"));       /* first tag empty: whole key */
    ck_assert_uint_eq(SLOT("{a}{b}"), CRC("a"));
    ck_assert_uint_eq(SLOT("x{a}y"), CRC("a"));
    ck_assert_uint_eq(SLOT("{"), CRC("{"));
    ck_assert_uint_eq(SLOT("}"), CRC("}"));
    ck_assert_uint_eq(SLOT("}{"), CRC("}{"));
    ck_assert_uint_eq(SLOT("{a"), CRC("{a"));
    ck_assert_uint_eq(SLOT("a}b{c}"), CRC("c"));
    ck_assert_uint_eq(SLOT("{a}}"), CRC("a"));              /* the first } after { */
    ck_assert_uint_eq(SLOT("{}a}"), CRC("{}a}"));           /* not the next non-empty one */
    ck_assert_uint_eq(SLOT("foo{user1000}bar"), 3443);
    ck_assert_uint_eq(SLOT("{user1000}"), 3443);
    ck_assert_uint_eq(SLOT("user1000"), 3443);
}
END_TEST

START_TEST(binary_keys)
{
    ck_assert_uint_eq(SLOT("a\0b"), CRC("a\0b"));
    ck_assert_uint_eq(SLOT("{\0}x"), CRC("\0"));
    ck_assert_uint_eq(SLOT("\xff{\xfe\xfd}"), CRC("\xfe\xfd"));
    ck_assert_uint_eq(SLOT("\0{a}"), CRC("a"));             /* a NUL does not end the key */
    ck_assert_uint_eq(SLOT("{a\0}"), CRC("a\0"));
    ck_assert_uint_eq(keyslot(NULL, 0), 0);
    for (unsigned i = 0; i < 1000; i++) {
        char k[8];
        memcpy(k, &i, sizeof i);
        ck_assert_uint_lt(keyslot(k, sizeof i), 16384);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("keyslot");
    TCase *tc = tcase_create("keyslot");
    tcase_add_test(tc, redis_known_answers);
    tcase_add_test(tc, hash_tag_rule);
    tcase_add_test(tc, binary_keys);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
