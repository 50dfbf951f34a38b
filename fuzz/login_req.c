/*
 * libFuzzer target: kited's login route parser (examples/kited/login.h,
 * login_parse), on any bytes, whole and as each shorter prefix (a slow
 * client's reads).
 *
 * Checked besides ASan/UBSan:
 * - the outcome is LOGIN_MORE or one of the outcomes, never another value;
 * - a token outcome names a valid demo name (1 to 16 printable
 *   characters, no space), NUL-terminated;
 * - no outcome but LOGIN_too_large before LOGIN_HEAD_MAX bytes of a head
 *   with no blank line, and LOGIN_MORE is never the answer at or past it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "demo_proto.h"
#include "login.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *buf, size_t len) {
  char name[DEMO_NAME_MAX + 1];
  memset(name, 'x', sizeof(name));
  int o = login_parse(buf, len, name);
  if (o < LOGIN_MORE || o >= LOGIN_OUTCOME_COUNT)
    abort();
  if (o == LOGIN_tokens) {
    size_t n = strnlen(name, sizeof(name));
    if (n == sizeof(name) || !demo_name_ok((const uint8_t *)name, n))
      abort();
  }
  if (o == LOGIN_MORE && len >= LOGIN_HEAD_MAX + LOGIN_BODY_MAX + 4)
    abort(); /* the route's buffer would be full with no answer */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 2 * (LOGIN_HEAD_MAX + LOGIN_BODY_MAX))
    return 0;
  /* A copy of exactly |size| bytes: ASan sees any read past the end. */
  char *buf = malloc(size ? size : 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  check(buf, size);
  if (size)
    check(buf, size - 1);
  free(buf);
  return 0;
}
