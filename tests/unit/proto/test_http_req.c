#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "proto/http_req.h"

/* RFC 6455 section 1.3's own example. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char upgrade[] = "GET /kite HTTP/1.1\r\n"
                              "Host: game.example:7001\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: keep-alive, Upgrade\r\n"
                              "Sec-WebSocket-Key: " KEY "\r\n"
                              "Origin: https://game.example\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "User-Agent: test\r\n"
                              "\r\n";

/* Feeds |s| whole to a fresh |r|; returns feed's result. */
static int parse(kite__http_req *r, const char *s, size_t *used) {
  kite__http_req_init(r, NULL);
  return kite__http_req_feed(r, (const uint8_t *)s, strlen(s), used);
}

/* The verdict of |s|, which must parse; *status set. */
static int verdict_of(const char *s, int *status) {
  kite__http_req r;
  size_t used;
  assert_int_equal(parse(&r, s, &used), 0);
  return kite__http_req_verdict(&r, status);
}

/* The why of a head that must be refused. */
static int why_of(const char *s) {
  kite__http_req r;
  size_t used;
  assert_int_equal(parse(&r, s, &used), KITE_EPROTO);
  return r.why;
}

static void upgrade_parses_whole(void **state) {
  kite__http_req r;
  size_t used;
  assert_int_equal(parse(&r, upgrade, &used), 0);
  assert_int_equal(used, strlen(upgrade));
  assert_int_equal(r.method, KITE__HTTP_M_GET);
  assert_int_equal(r.minor, 1);
  assert_string_equal(r.target, "/kite");
  assert_string_equal(r.host, "game.example:7001");
  assert_string_equal(r.origin, "https://game.example");
  assert_string_equal(r.key, KEY);
  assert_string_equal(r.version, "13");
  assert_true(r.upgrade_websocket);
  assert_true(r.connection_upgrade);
  int status;
  assert_int_equal(kite__http_req_verdict(&r, &status), KITE__HTTP_UPGRADE);
  assert_int_equal(status, 101);
}

/* Any cut gives the same result, and the bytes after the head are not
 * taken: they are the first WebSocket frames. */
static void any_cut_same_result_and_rest_untouched(void **state) {
  char buf[sizeof(upgrade) + 4];
  memcpy(buf, upgrade, sizeof(upgrade) - 1);
  memcpy(buf + sizeof(upgrade) - 1, "\x82\x80xy", 4);
  size_t total = sizeof(upgrade) - 1 + 4;
  for (size_t cut = 1; cut < total; cut++) {
    kite__http_req r;
    kite__http_req_init(&r, NULL);
    size_t used;
    int rc = kite__http_req_feed(&r, (const uint8_t *)buf, cut, &used);
    size_t off = used;
    if (rc == KITE_EAGAIN) {
      assert_int_equal(used, cut);
      rc = kite__http_req_feed(&r, (const uint8_t *)buf + cut, total - cut,
                               &used);
      off += used;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(off, sizeof(upgrade) - 1);
    assert_string_equal(r.key, KEY);
    /* Done is sticky and takes nothing more. */
    assert_int_equal(kite__http_req_feed(&r, (const uint8_t *)"x", 1, &used), 0);
    assert_int_equal(used, 0);
  }
  /* Byte by byte. */
  kite__http_req r;
  kite__http_req_init(&r, NULL);
  size_t i = 0, used;
  int rc = KITE_EAGAIN;
  for (; rc == KITE_EAGAIN; i++)
    rc = kite__http_req_feed(&r, (const uint8_t *)buf + i, 1, &used);
  assert_int_equal(rc, 0);
  assert_int_equal(i, sizeof(upgrade) - 1);
}

static void bare_lf_and_leading_blank_lines(void **state) {
  int status;
  assert_int_equal(verdict_of("\r\n\nGET / HTTP/1.1\nHost: a\n\n", &status),
                   KITE__HTTP_GET);
  assert_int_equal(status, 200);
}

static void limits_hold_at_their_value_and_refuse_past_it(void **state) {
  kite__http_limits lim = {.head_max = 64, .line_max = 30, .headers_max = 2};
  /* 16 + 2 + 9 + 2 + 9 + 2 + 2 = 42 bytes, lines of 16 and 9, 2 headers. */
  const char *ok = "GET / HTTP/1.1\r\nHost: aaa\r\nX-Y: bbb\r\n\r\n";
  kite__http_req r;
  size_t used;
  kite__http_req_init(&r, &lim);
  assert_int_equal(kite__http_req_feed(&r, (const uint8_t *)ok, strlen(ok), &used), 0);

  /* headers_max: a third header. */
  const char *three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  kite__http_req_init(&r, &lim);
  assert_int_equal(kite__http_req_feed(&r, (const uint8_t *)three, strlen(three), &used),
                   KITE_EPROTO);
  assert_int_equal(r.why, KITE__HTTP_ETOO_MANY_HEADERS);
  assert_int_equal(kite__http_why_status(r.why), 431);

  /* line_max: a line of exactly 30 passes, 31 does not. */
  char line[128];
  snprintf(line, sizeof(line), "GET / HTTP/1.1\r\nX: %027d\r\n\r\n", 0);
  kite__http_req_init(&r, &lim);
  assert_int_equal(kite__http_req_feed(&r, (const uint8_t *)line, strlen(line), &used), 0);
  snprintf(line, sizeof(line), "GET / HTTP/1.1\r\nX: %028d\r\n\r\n", 0);
  kite__http_req_init(&r, &lim);
  assert_int_equal(kite__http_req_feed(&r, (const uint8_t *)line, strlen(line), &used),
                   KITE_EPROTO);
  assert_int_equal(r.why, KITE__HTTP_ELINE_TOO_LONG);

  /* head_max: 64 bytes exactly pass, 65 do not, even fed in pieces. */
  char head[128];
  snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nA: %021d\r\nB: %015d\r\n\r\n", 0, 0);
  assert_int_equal(strlen(head), 64);
  kite__http_req_init(&r, &lim);
  assert_int_equal(kite__http_req_feed(&r, (const uint8_t *)head, 64, &used), 0);
  snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nA: %021d\r\nB: %016d\r\n\r\n", 0, 0);
  kite__http_req_init(&r, &lim);
  int rc = KITE_EAGAIN;
  for (size_t i = 0; rc == KITE_EAGAIN; i++)
    rc = kite__http_req_feed(&r, (const uint8_t *)head + i, 1, &used);
  assert_int_equal(rc, KITE_EPROTO);
  assert_int_equal(r.why, KITE__HTTP_EHEAD_TOO_LONG);
  assert_int_equal(r.head_len, 65); /* refused at the first byte over */
  /* Sticky. */
  assert_int_equal(kite__http_req_feed(&r, (const uint8_t *)"\r\n", 2, &used),
                   KITE_EPROTO);
}

static void a_silent_flood_is_cut_at_the_limit(void **state) {
  /* A peer that never ends a line, or never ends the head. */
  kite__http_req r;
  kite__http_req_init(&r, NULL);
  uint8_t junk[1024];
  memset(junk, 'A', sizeof(junk));
  size_t used;
  int rc = KITE_EAGAIN, feeds = 0;
  while (rc == KITE_EAGAIN && feeds++ < 100)
    rc = kite__http_req_feed(&r, junk, sizeof(junk), &used);
  assert_int_equal(rc, KITE_EPROTO);
  assert_int_equal(r.why, KITE__HTTP_EBAD_METHOD); /* 15 chars of method */

  kite__http_req_init(&r, NULL);
  const char *start = "GET / HTTP/1.1\r\n";
  kite__http_req_feed(&r, (const uint8_t *)start, strlen(start), &used);
  memcpy(junk, "X-A: ", 5);
  junk[sizeof(junk) - 2] = '\r';
  junk[sizeof(junk) - 1] = '\n';
  rc = KITE_EAGAIN;
  feeds = 0;
  while (rc == KITE_EAGAIN && feeds++ < 100)
    rc = kite__http_req_feed(&r, junk, sizeof(junk), &used);
  assert_int_equal(rc, KITE_EPROTO);
  assert_int_equal(r.why, KITE__HTTP_EHEAD_TOO_LONG);
  assert_true(r.head_len <= KITE__HTTP_HEAD_MAX_DEFAULT + 1);
}

static void malformed_heads_have_their_own_reasons(void **state) {
  char longtarget[KITE__HTTP_TARGET_CAP + 64];
  snprintf(longtarget, sizeof(longtarget), "GET /%0*d HTTP/1.1\r\n\r\n",
           KITE__HTTP_TARGET_CAP, 0);
  assert_int_equal(why_of(longtarget), KITE__HTTP_ETARGET_TOO_LONG);
  assert_int_equal(kite__http_why_status(KITE__HTTP_ETARGET_TOO_LONG), 414);
  assert_int_equal(why_of(" / HTTP/1.1\r\n\r\n"), KITE__HTTP_EBAD_METHOD);
  assert_int_equal(why_of("G(T / HTTP/1.1\r\n\r\n"), KITE__HTTP_EBAD_METHOD);
  assert_int_equal(why_of("GET  HTTP/1.1\r\n\r\n"), KITE__HTTP_EBAD_TARGET);
  assert_int_equal(why_of("GET /a\x01 HTTP/1.1\r\n\r\n"), KITE__HTTP_EBAD_TARGET);
  assert_int_equal(why_of("GET /\r\n\r\n"), KITE__HTTP_EBAD_VERSION);
  assert_int_equal(why_of("GET / HTTP/2.0\r\n\r\n"), KITE__HTTP_EBAD_VERSION);
  assert_int_equal(why_of("GET / HTTP/1.11\r\n\r\n"), KITE__HTTP_EBAD_VERSION);
  assert_int_equal(kite__http_why_status(KITE__HTTP_EBAD_VERSION), 505);
  assert_int_equal(why_of("GET / HTTP/1.1\rX\n\r\n"), KITE__HTTP_EBAD_LINE);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), KITE__HTTP_EBAD_LINE);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nHost\r\n\r\n"), KITE__HTTP_EBAD_LINE);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nHost: a\r\n\rX"), KITE__HTTP_EBAD_LINE);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"),
                   KITE__HTTP_EBAD_HEADER_NAME);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"),
                   KITE__HTTP_EBAD_HEADER_VALUE);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nX-Other: a\x7f\r\n\r\n"),
                   KITE__HTTP_EBAD_HEADER_VALUE);
  /* A NUL is a control byte like any other. */
  kite__http_req r;
  size_t used;
  kite__http_req_init(&r, NULL);
  const uint8_t nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
  assert_int_equal(kite__http_req_feed(&r, nul, sizeof(nul) - 1, &used), KITE_EPROTO);
  assert_int_equal(r.why, KITE__HTTP_EBAD_HEADER_VALUE);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n"),
                   KITE__HTTP_EOBS_FOLD);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
                   KITE__HTTP_EDUPLICATE);
  assert_int_equal(why_of("GET / HTTP/1.1\r\nSec-WebSocket-Key: " KEY "\r\n"
                          "Sec-WebSocket-Key: " KEY "\r\n\r\n"),
                   KITE__HTTP_EDUPLICATE);
  char longhost[512];
  snprintf(longhost, sizeof(longhost), "GET / HTTP/1.1\r\nHost: %0*d\r\n\r\n",
           KITE__HTTP_VALUE_CAP + 1, 0);
  assert_int_equal(why_of(longhost), KITE__HTTP_EVALUE_TOO_LONG);
  /* A header we do not keep may be longer: only the line limit binds it. */
  snprintf(longhost, sizeof(longhost), "GET / HTTP/1.1\r\nX-Long: %0*d\r\n\r\n",
           KITE__HTTP_VALUE_CAP + 100, 0);
  int status;
  assert_int_equal(verdict_of(longhost, &status), KITE__HTTP_REFUSE); /* no Host */
  /* Every why has a status and a description. */
  for (int w = 1; w < KITE__HTTP_WHY_COUNT; w++) {
    assert_true(kite__http_why_status(w) >= 400);
    assert_string_not_equal(kite__http_why_str(w), "unknown request head error");
  }
}

static void values_are_trimmed_and_lists_matched_as_tokens(void **state) {
  kite__http_req r;
  size_t used;
  assert_int_equal(parse(&r, "GET / HTTP/1.1\r\nHost: \t a b \t\r\n"
                             "Upgrade: h2c\r\nupgrade: WebSocket \r\n"
                             "CONNECTION: close,,UPGRADE\r\n\r\n", &used), 0);
  assert_string_equal(r.host, "a b");
  assert_true(r.upgrade_websocket);
  assert_true(r.connection_upgrade);
  /* Not tokens: substrings do not count. */
  assert_int_equal(parse(&r, "GET / HTTP/1.1\r\nHost: a\r\n"
                             "Upgrade: websocketx\r\nConnection: upgraded\r\n\r\n",
                         &used), 0);
  assert_false(r.upgrade_websocket);
  assert_false(r.connection_upgrade);
}

static void verdicts(void **state) {
  int status;
  assert_int_equal(verdict_of("POST / HTTP/1.1\r\nHost: a\r\n\r\n", &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 405);
  assert_int_equal(verdict_of("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 405);
  assert_int_equal(verdict_of("GET /x HTTP/1.1\r\nHost: a\r\n\r\n", &status),
                   KITE__HTTP_GET);
  assert_int_equal(verdict_of("GET /x HTTP/1.1\r\n\r\n", &status), KITE__HTTP_REFUSE);
  assert_int_equal(status, 400); /* HTTP/1.1 needs Host */
  assert_int_equal(verdict_of("GET /x HTTP/1.0\r\n\r\n", &status), KITE__HTTP_GET);

#define WS(extra_before, conn, version, key)                                  \
  "GET / HTTP/1.1\r\n" extra_before "Upgrade: websocket\r\nConnection: " conn \
  "\r\n" version "Sec-WebSocket-Key: " key "\r\n\r\n"
  assert_int_equal(verdict_of(WS("Host: a\r\n", "Upgrade",
                                 "Sec-WebSocket-Version: 13\r\n", KEY), &status),
                   KITE__HTTP_UPGRADE);
  assert_int_equal(verdict_of(WS("", "Upgrade", "Sec-WebSocket-Version: 13\r\n", KEY),
                              &status), KITE__HTTP_REFUSE);
  assert_int_equal(status, 400); /* no Host */
  assert_int_equal(verdict_of(WS("Host: a\r\n", "keep-alive",
                                 "Sec-WebSocket-Version: 13\r\n", KEY), &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 400); /* no Connection: upgrade */
  assert_int_equal(verdict_of(WS("Host: a\r\n", "Upgrade",
                                 "Sec-WebSocket-Version: 8\r\n", KEY), &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 426);
  assert_int_equal(verdict_of(WS("Host: a\r\n", "Upgrade", "", KEY), &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 426); /* no version at all */
  assert_int_equal(verdict_of(WS("Host: a\r\n", "Upgrade",
                                 "Sec-WebSocket-Version: 13\r\n",
                                 "dGhlIHNhbXBsZSBub25jZQ"), &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 400); /* key not 16 bytes */
  assert_int_equal(verdict_of(WS("Host: a\r\n", "Upgrade",
                                 "Sec-WebSocket-Version: 13\r\n",
                                 "dGhlIHNhbXBsZSBub25jZQ==AAAA"), &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 400); /* too long to be kept, so invalid */
  /* A key without Upgrade: a WebSocket request all the same, refused. */
  assert_int_equal(verdict_of("GET / HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: " KEY
                              "\r\n\r\n", &status), KITE__HTTP_REFUSE);
  assert_int_equal(status, 400);
  assert_int_equal(verdict_of("GET / HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\n"
                              "Connection: upgrade\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: " KEY "\r\n\r\n", &status),
                   KITE__HTTP_REFUSE);
  assert_int_equal(status, 400); /* HTTP/1.1 or later only */
#undef WS
}

static void ws_keys(void **state) {
  assert_true(kite__http_ws_key_valid(KEY));
  assert_true(kite__http_ws_key_valid("AAAAAAAAAAAAAAAAAAAAAA=="));
  assert_false(kite__http_ws_key_valid(""));
  assert_false(kite__http_ws_key_valid("AAAAAAAAAAAAAAAAAAAAAAA=")); /* 17 bytes */
  assert_false(kite__http_ws_key_valid("AAAAAAAAAAAAAAAAAAAAA ==")); /* blank */
  assert_false(kite__http_ws_key_valid("AAAAAAAAAAAAAAAAAAAAA*=="));
  assert_false(kite__http_ws_key_valid("AAAAAAAAAAAAAAAAAAAAAAAA"));
}

static void answer_101_is_rfc6455s_example(void **state) {
  char acc[29];
  kite__http_ws_accept(KEY, acc);
  assert_string_equal(acc, ACCEPT);
  char out[256];
  int n = kite__http_resp_101(out, sizeof(out), KEY);
  const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n";
  assert_int_equal(n, (int)strlen(want));
  assert_string_equal(out, want);
  assert_true(n < 160);
  assert_int_equal(kite__http_resp_101(out, (size_t)n, KEY), KITE_EMSGSIZE);
}

static void refusals(void **state) {
  char out[256];
  static const struct {
    int status;
    const char *line, *extra;
  } cases[] = {
      {400, "HTTP/1.1 400 Bad Request\r\n", NULL},
      {403, "HTTP/1.1 403 Forbidden\r\n", NULL},
      {404, "HTTP/1.1 404 Not Found\r\n", NULL},
      {405, "HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET\r\n"},
      {414, "HTTP/1.1 414 URI Too Long\r\n", NULL},
      {426, "HTTP/1.1 426 Upgrade Required\r\n", "Sec-WebSocket-Version: 13\r\n"},
      {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n", NULL},
      {505, "HTTP/1.1 505 HTTP Version Not Supported\r\n", NULL},
      {999, "HTTP/1.1 400 Bad Request\r\n", NULL},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int n = kite__http_resp_error(out, sizeof(out), cases[i].status);
    assert_true(n > 0 && n < 256);
    assert_int_equal(strncmp(out, cases[i].line, strlen(cases[i].line)), 0);
    if (cases[i].extra)
      assert_non_null(strstr(out, cases[i].extra));
    assert_non_null(strstr(out, "Content-Length: 0\r\nConnection: close\r\n\r\n"));
    assert_int_equal(out[n - 1], '\n');
  }
  assert_int_equal(kite__http_resp_error(out, 10, 404), KITE_EMSGSIZE);
}

static void static_200_and_types(void **state) {
  char out[512];
  int n = kite__http_resp_200(out, sizeof(out), kite__http_content_type("a/kite.js"),
                              12345);
  assert_true(n > 0);
  assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(out, "Content-Type: text/javascript; charset=utf-8\r\n"));
  assert_non_null(strstr(out, "Content-Length: 12345\r\n"));
  assert_string_equal(out + n - 4, "\r\n\r\n");
  assert_string_equal(kite__http_content_type("index.html"), "text/html; charset=utf-8");
  assert_string_equal(kite__http_content_type("x.mjs"), "text/javascript; charset=utf-8");
  assert_string_equal(kite__http_content_type("a.b/noext"), "application/octet-stream");
  assert_string_equal(kite__http_content_type("x.wasm"), "application/wasm");
  assert_string_equal(kite__http_content_type("x."), "application/octet-stream");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(upgrade_parses_whole),
      cmocka_unit_test(any_cut_same_result_and_rest_untouched),
      cmocka_unit_test(bare_lf_and_leading_blank_lines),
      cmocka_unit_test(limits_hold_at_their_value_and_refuse_past_it),
      cmocka_unit_test(a_silent_flood_is_cut_at_the_limit),
      cmocka_unit_test(malformed_heads_have_their_own_reasons),
      cmocka_unit_test(values_are_trimmed_and_lists_matched_as_tokens),
      cmocka_unit_test(verdicts),
      cmocka_unit_test(ws_keys),
      cmocka_unit_test(answer_101_is_rfc6455s_example),
      cmocka_unit_test(refusals),
      cmocka_unit_test(static_200_and_types),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
