/* The library's growable string. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

Test(strbuf, empty_finish_is_an_empty_string)
{
    spk_strbuf b = SPK_STRBUF_INIT;
    char *s = spk_strbuf_finish(&b);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "");
    cr_expect_null(b.s, "the builder still holds the text");
    free(s);
}

Test(strbuf, grows_past_its_first_block)
{
    spk_strbuf b = SPK_STRBUF_INIT;
    char want[5000];
    size_t n = 0;
    for (int i = 0; i < 700; i++) {
        spk_strbuf_appendf(&b, "%d,", i);
        n += (size_t)snprintf(want + n, sizeof want - n, "%d,", i);
        cr_assert_eq(b.len, n);
    }
    spk_strbuf_append(&b, "ab\0cd", 2); /* exactly n bytes, not up to a NUL */
    memcpy(want + n, "ab", 3);
    char *s = spk_strbuf_finish(&b);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, want);
    free(s);
}

Test(strbuf, clear_drops_the_text)
{
    spk_strbuf b = SPK_STRBUF_INIT;
    spk_strbuf_appendf(&b, "%s|%5.2f|%zu", "x", 3.14159, (size_t)42);
    cr_expect_str_eq(b.s, "x| 3.14|42");
    spk_strbuf_clear(&b);
    cr_expect_null(b.s);
    cr_expect_eq(b.len, 0u);
    spk_strbuf_append(&b, "again", 5);
    cr_expect_str_eq(b.s, "again");
    spk_strbuf_clear(&b);
    spk_strbuf_clear(NULL);
}

/* Once an append fails, the builder stays failed and finish reports it with NULL. */
Test(strbuf, failure_is_sticky)
{
    spk_strbuf b = SPK_STRBUF_INIT;
    spk_strbuf_append(&b, "ok", 2);
    spk_strbuf_append(&b, "x", (size_t)-1 / 2); /* more than can ever be allocated */
    cr_expect(b.oom);
    spk_strbuf_append(&b, "more", 4);
    cr_expect_eq(b.len, 2u);
    cr_expect_null(spk_strbuf_finish(&b));
    cr_expect_null(b.s);
    cr_expect_eq(b.oom, 0, "finish leaves an empty, usable builder");
}
