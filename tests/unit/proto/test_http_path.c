#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "proto/http_path.h"

static void expect_ok(const char *target, const char *want) {
  char out[128];
  int rc = kite__http_path_normalize(target, out, sizeof(out));
  if (rc != 0)
    fail_msg("%s: refused (%s)", target, kite__http_path_strerror(rc));
  assert_string_equal(out, want);
  assert_true(out[0] != '/');
}

static void expect_refused(const char *target, int why, int status) {
  char out[128];
  int rc = kite__http_path_normalize(target, out, sizeof(out));
  if (rc != why)
    fail_msg("%s: %d (%s), not %d", target, rc, kite__http_path_strerror(rc), why);
  assert_int_equal(kite__http_path_status(rc), status);
}

static void plain_paths(void **state) {
  expect_ok("/", "index.html");
  expect_ok("/arena/", "arena/index.html");
  expect_ok("/kite.js", "kite.js");
  expect_ok("/arena/index.html?v=2#top", "arena/index.html");
  expect_ok("/a%20b.txt", "a b.txt");
  expect_ok("/%6b%69%74%65.js", "kite.js");
  expect_ok("/a..b/c.d..e", "a..b/c.d..e"); /* dots inside a name are fine */
  expect_ok("/?../../etc/passwd", "index.html"); /* the query is not a path */
}

static void traversal_is_refused(void **state) {
  expect_refused("/..", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/../etc/passwd", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/a/../../etc/passwd", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/a/..", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/%2e%2e/etc/passwd", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/%2E%2E%2Fetc%2Fpasswd", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/a%2f..%2fb", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/.%2e/x", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/./x", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/.git/config", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/..\\..\\windows", KITE__PATH_EDOT_SEG, 403);
  expect_refused("/a\\..\\b", KITE__PATH_EBACKSLASH, 403);
  expect_refused("/a%5c..%5cb", KITE__PATH_EBACKSLASH, 403);
  expect_refused("/a%00.html", KITE__PATH_ECONTROL, 403);
  expect_refused("/a%0a", KITE__PATH_ECONTROL, 403);
  expect_refused("/a%7f", KITE__PATH_ECONTROL, 403);
  expect_refused("//etc/passwd", KITE__PATH_EEMPTY_SEG, 403);
  expect_refused("/%2fetc/passwd", KITE__PATH_EEMPTY_SEG, 403);
  expect_refused("/a//b", KITE__PATH_EEMPTY_SEG, 403);
  expect_refused("etc/passwd", KITE__PATH_ENOT_ORIGIN, 400);
  expect_refused("http://host/x", KITE__PATH_ENOT_ORIGIN, 400);
  expect_refused("C:/x", KITE__PATH_ENOT_ORIGIN, 400);
  expect_refused("", KITE__PATH_ENOT_ORIGIN, 400);
  expect_refused("/a%2", KITE__PATH_EBAD_ESCAPE, 400);
  expect_refused("/a%", KITE__PATH_EBAD_ESCAPE, 400);
  expect_refused("/a%g0", KITE__PATH_EBAD_ESCAPE, 400);
  expect_refused("/a%%32%65", KITE__PATH_EBAD_ESCAPE, 400); /* no double decode */
}

static void the_result_fits_or_is_refused(void **state) {
  char out[8];
  assert_int_equal(kite__http_path_normalize("/abcdefg", out, sizeof(out)),
                   KITE__PATH_OK);
  assert_string_equal(out, "abcdefg");
  assert_int_equal(kite__http_path_normalize("/abcdefgh", out, sizeof(out)),
                   KITE__PATH_ETOO_LONG);
  assert_int_equal(kite__http_path_status(KITE__PATH_ETOO_LONG), 414);
  /* index.html needs 11 bytes. */
  assert_int_equal(kite__http_path_normalize("/", out, sizeof(out)),
                   KITE__PATH_ETOO_LONG);
  char out11[11];
  assert_int_equal(kite__http_path_normalize("/", out11, sizeof(out11)),
                   KITE__PATH_OK);
  assert_int_equal(kite__http_path_normalize("/", out, 0), KITE__PATH_ETOO_LONG);
  for (int e = 1; e <= KITE__PATH_ETOO_LONG; e++)
    assert_string_not_equal(kite__http_path_strerror(e), "unknown path error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_paths),
      cmocka_unit_test(traversal_is_refused),
      cmocka_unit_test(the_result_fits_or_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
