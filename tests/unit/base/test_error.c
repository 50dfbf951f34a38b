#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kite/error.h"

static void every_code_has_a_distinct_name_and_message(void **state) {
  (void)state;
  static const int codes[] = {
#define CODE(name, value, msg) KITE_##name,
      KITE_ERRNO_MAP(CODE)
#undef CODE
  };
  size_t n = sizeof(codes) / sizeof(codes[0]);
  for (size_t i = 0; i < n; i++) {
    assert_true(codes[i] < 0);
    assert_string_not_equal(kite_strerror(codes[i]), "unknown error");
    assert_string_not_equal(kite_err_name(codes[i]), "UNKNOWN");
    for (size_t j = 0; j < i; j++) {
      assert_int_not_equal(codes[i], codes[j]);
      assert_string_not_equal(kite_err_name(codes[i]), kite_err_name(codes[j]));
    }
  }
  assert_string_equal(kite_err_name(KITE_EFULL), "EFULL");
  assert_string_equal(kite_strerror(0), "success");
  assert_string_equal(kite_strerror(-9999), "unknown error");
  assert_string_equal(kite_err_name(12345), "UNKNOWN");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_code_has_a_distinct_name_and_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
