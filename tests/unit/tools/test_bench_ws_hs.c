/* kite-bench --ws's handshake (tools/bench/ws_hs.c): the accept value it
 * expects, and the answers it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "ws_hs.h"

/* RFC 6455 section 1.3's example. */
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char *check(const char *head, const char *accept) {
  size_t len = strlen(head);
  assert_int_equal(ws_hs_head_end((const uint8_t *)head, len), len);
  return ws_hs_check((const uint8_t *)head, len, accept);
}

static void accept_is_rfc_example(void **state) {
  (void)state;
  char accept[29];
  ws_hs_accept(RFC_KEY, accept);
  assert_string_equal(accept, RFC_ACCEPT);
}

static void keys_are_random_and_well_formed(void **state) {
  (void)state;
  ws_random rnd;
  ws_random_init(&rnd);
  char k1[25], a1[29], k2[25], a2[29], again[29];
  assert_int_equal(ws_hs_key(&rnd, k1, a1), 0);
  assert_int_equal(ws_hs_key(&rnd, k2, a2), 0);
  assert_int_equal(strlen(k1), 24);
  assert_string_equal(k1 + 22, "=="); /* 16 bytes: two pad characters */
  assert_int_equal(strlen(a1), 28);
  assert_string_not_equal(k1, k2);
  ws_hs_accept(k1, again);
  assert_string_equal(again, a1);
}

static void request_names_key_and_path(void **state) {
  (void)state;
  char req[512];
  int n = ws_hs_request(req, sizeof(req), "127.0.0.1:7001", "/kite", RFC_KEY);
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(req));
  assert_non_null(strstr(req, "GET /kite HTTP/1.1\r\n"));
  assert_non_null(strstr(req, "Host: 127.0.0.1:7001\r\n"));
  assert_non_null(strstr(req, "Sec-WebSocket-Key: " RFC_KEY "\r\n"));
  assert_non_null(strstr(req, "Sec-WebSocket-Version: 13\r\n"));
  assert_int_equal(ws_hs_request(req, 40, "h", "/kite", RFC_KEY), -1);
}

static void answers(void **state) {
  (void)state;
  assert_null(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
                    RFC_ACCEPT));
  /* Header names in any case, spaces around the value, bare LFs. */
  assert_null(check("HTTP/1.1 101 OK\nupgrade:WebSocket \nSEC-WEBSOCKET-ACCEPT:\t" RFC_ACCEPT
                    " \r\n\r\n", RFC_ACCEPT));
  /* Refused: another status, no Upgrade, a wrong or missing accept. */
  assert_non_null(check("HTTP/1.1 400 Bad Request\r\nUpgrade: websocket\r\n"
                        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n", RFC_ACCEPT));
  assert_non_null(check("HTTP/1.1 101 Switching Protocols\r\n"
                        "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n", RFC_ACCEPT));
  assert_non_null(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n", RFC_ACCEPT));
  assert_non_null(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Sec-WebSocket-Accept: " RFC_ACCEPT "x\r\n\r\n", RFC_ACCEPT));
  assert_non_null(check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                        RFC_ACCEPT));
}

static void head_end(void **state) {
  (void)state;
  const char *h = "HTTP/1.1 101 X\r\nUpgrade: websocket\r\n\r\n\x82\x02";
  assert_int_equal(ws_hs_head_end((const uint8_t *)h, strlen(h)), strlen(h) - 2);
  assert_int_equal(ws_hs_head_end((const uint8_t *)h, 20), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_is_rfc_example),
      cmocka_unit_test(keys_are_random_and_well_formed),
      cmocka_unit_test(request_names_key_and_path),
      cmocka_unit_test(answers),
      cmocka_unit_test(head_end),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
