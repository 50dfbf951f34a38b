/*
 * kited's demo login route (examples/kited/login.h) over real sockets on
 * loopback: a good POST /login answers a token that opens under the key,
 * names the given addresses and carries the name; malformed, oversized
 * and slow requests are refused with their status and counted; the
 * connection bound evicts the oldest. The parser is also fed every
 * prefix of a request, as a slow client would send it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"
#include "demo_proto.h"
#include "login.h"

#include "base/clock.h"
#include "proto/v2tok.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PID 0x4741ULL
#define WAIT_US 10000000 /* every wait's bound */

static const char *const addrs[] = {"127.0.0.1:7001", "127.0.0.1:7002"};

static login *start(const uint8_t *key, uint32_t conns, uint32_t deadline) {
  login_config c = {.addr = "127.0.0.1:0", .key = key, .protocol_id = PID,
                    .token_addrs = addrs, .ntoken_addrs = 2,
                    .conns_max = conns, .deadline_ms = deadline};
  login *l;
  assert_int_equal(login_start(&l, &c), 0);
  return l;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct timeval tv = {.tv_sec = WAIT_US / 1000000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

/* Reads to the server's end of stream (bounded by SO_RCVTIMEO). */
static size_t read_all(int fd, char *out, size_t cap) {
  size_t len = 0;
  for (;;) {
    ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  out[len] = 0;
  return len;
}

/* true when the server closes |fd| with nothing sent, within the bound. */
static bool closed_unanswered(int fd) {
  char b[64];
  ssize_t n = recv(fd, b, sizeof(b), 0);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Sends |req| and returns the answer's status; the body at *body. */
static int exchange(int port, const char *req, size_t len, char *ans,
                    size_t cap, const char **body, size_t *blen) {
  int fd = dial(port);
  assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
  size_t n = read_all(fd, ans, cap);
  close(fd);
  int status = 0;
  assert_int_equal(sscanf(ans, "HTTP/1.1 %d", &status), 1);
  char *end = strstr(ans, "\r\n\r\n");
  assert_non_null(end);
  if (body) {
    *body = end + 4;
    *blen = n - (size_t)(end + 4 - ans);
  }
  return status;
}

static void login_as(int port, const char *form, uint8_t tok[800]) {
  char req[512], ans[2048];
  int n = snprintf(req, sizeof(req),
                   "POST /login HTTP/1.1\r\nHost: kited\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n"
                   "Content-Length: %zu\r\n\r\n%s", strlen(form), form);
  const char *body;
  size_t blen;
  assert_int_equal(exchange(port, req, (size_t)n, ans, sizeof(ans), &body,
                            &blen), 200);
  assert_non_null(strstr(ans, "Content-Type: application/octet-stream\r\n"));
  assert_int_equal(blen, KITE_TOKEN_BYTES);
  memcpy(tok, body, KITE_TOKEN_BYTES);
}

static void local_addr(const char *ip, uint16_t port, kite__v2addr *out) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, ip, &a.sin_addr);
  assert_int_equal(kite__v2addr_from_sockaddr((struct sockaddr *)&a, out), 0);
}

/* Opens |tok| as a server at |ip|:|port| under |key| would: 0 or why not. */
static int open_at(const uint8_t *tok, const uint8_t *key, const char *ip,
                   uint16_t port, kite__v2tok *priv) {
  kite__v2tok pub;
  assert_int_equal(kite__v2tok_read(tok, KITE_TOKEN_BYTES, &pub), 0);
  kite__v2tok_server s = {.protocol_id = PID, .key = key};
  kite__v2addr local;
  local_addr(ip, port, &local);
  return kite__v2tok_verify(&s, (uint64_t)time(NULL), &local, pub.expire_ts,
                            pub.nonce, pub.sealed, priv);
}

static void test_good_login(void **state) {
  (void)state;
  uint8_t key[32], other[32], tok[800], tok2[800];
  assert_int_equal(kite_token_key_new(key), 0);
  assert_int_equal(kite_token_key_new(other), 0);
  login *l = start(key, 0, 0);
  int port = login_port(l);

  login_as(port, "name=alice", tok);
  kite__v2tok pub, priv;
  assert_int_equal(kite__v2tok_read(tok, sizeof(tok), &pub), 0);
  assert_int_equal(pub.protocol_id, PID);
  assert_int_equal(pub.addr_count, 2);
  assert_true(pub.expire_ts > pub.create_ts);
  assert_true(pub.expire_ts - pub.create_ts <= LOGIN_TTL_S);
  /* It opens at each address it names, under kited's key only. */
  assert_int_equal(open_at(tok, key, "127.0.0.1", 7001, &priv), 0);
  assert_string_equal((const char *)priv.user_data, "alice");
  for (size_t i = 5; i < sizeof(priv.user_data); i++)
    assert_int_equal(priv.user_data[i], 0);
  uint64_t alice_id = priv.client_id;
  assert_true(alice_id != 0);
  assert_int_equal(open_at(tok, key, "127.0.0.1", 7002, &priv), 0);
  assert_int_equal(open_at(tok, key, "127.0.0.1", 7003, &priv),
                   KITE__V2_ENOTHERE);
  assert_int_equal(open_at(tok, other, "127.0.0.1", 7001, &priv),
                   KITE__V2_EAUTH);

  /* A form-encoded name, another field beside it: another player. */
  login_as(port, "team=red&name=b%6Fb", tok2);
  assert_int_equal(open_at(tok2, key, "127.0.0.1", 7001, &priv), 0);
  assert_string_equal((const char *)priv.user_data, "bob");
  assert_true(priv.client_id != alice_id);
  kite__v2tok_wipe(&priv);

  login_stats st;
  login_stats_get(l, &st);
  assert_int_equal(st.outcome[LOGIN_tokens], 2);
  login_stop(l);
}

typedef struct bad {
  const char *req;
  int status, outcome;
} bad;

static void test_refusals(void **state) {
  (void)state;
  static const bad cases[] = {
      {"GARBAGE\r\n\r\n", 400, LOGIN_bad_requests},
      {"POST /login HTTP/2.0\r\nContent-Length: 10\r\n\r\nname=alice", 400,
       LOGIN_bad_requests},
      {"POST /login HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 10\r\n"
       "\r\nname=alice", 400, LOGIN_bad_requests},
      {"POST /login HTTP/1.1\r\nno colon\r\n\r\n", 400, LOGIN_bad_requests},
      {"POST /login HTTP/1.1\r\nContent-Length: 8\r\n\r\nname=%zz", 400,
       LOGIN_bad_requests},
      {"POST /login HTTP/1.1\r\nContent-Length: 11\r\n\r\nname=al+ice", 400,
       LOGIN_bad_names},
      {"POST /login HTTP/1.1\r\nContent-Length: 22\r\n\r\n"
       "name=seventeen_chars_x", 400, LOGIN_bad_names},
      {"POST /login HTTP/1.1\r\nContent-Length: 9\r\n\r\nnom=alice", 400,
       LOGIN_bad_names},
      {"POST /login HTTP/1.1\r\nContent-Length: 5\r\n\r\nname=", 400,
       LOGIN_bad_names},
      {"POST /other HTTP/1.1\r\nContent-Length: 10\r\n\r\nname=alice", 404,
       LOGIN_not_found},
      {"GET /login HTTP/1.1\r\nHost: kited\r\n\r\n", 405, LOGIN_bad_method},
      {"POST /login HTTP/1.1\r\nHost: kited\r\n\r\n", 411, LOGIN_no_length},
      {"POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
       "a\r\nname=alice\r\n0\r\n\r\n", 411, LOGIN_no_length},
      {"POST /login HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413,
       LOGIN_too_large},
      {"POST /login HTTP/1.1\r\nContent-Type: application/json\r\n"
       "Content-Length: 16\r\n\r\n{\"name\":\"alice\"}", 415, LOGIN_bad_type},
  };
  uint8_t key[32];
  assert_int_equal(kite_token_key_new(key), 0);
  login *l = start(key, 0, 0);
  int port = login_port(l);
  uint64_t want[LOGIN_OUTCOME_COUNT] = {0};
  char ans[4096];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int got = exchange(port, cases[i].req, strlen(cases[i].req), ans,
                       sizeof(ans), NULL, NULL);
    if (got != cases[i].status)
      fail_msg("case %zu (%s): status %d, not %d", i, cases[i].req, got,
               cases[i].status);
    want[cases[i].outcome]++;
  }
  /* A head past LOGIN_HEAD_MAX: 413 before it ends. */
  static char big[LOGIN_HEAD_MAX + 64];
  int n = snprintf(big, sizeof(big), "POST /login HTTP/1.1\r\nX-Pad: ");
  memset(big + n, 'a', sizeof(big) - (size_t)n);
  assert_int_equal(exchange(port, big, sizeof(big), ans, sizeof(ans), NULL,
                            NULL), 413);
  want[LOGIN_too_large]++;
  /* 405 says what is allowed. */
  exchange(port, cases[10].req, strlen(cases[10].req), ans, sizeof(ans),
           NULL, NULL);
  assert_non_null(strstr(ans, "\r\nAllow: POST\r\n"));
  want[LOGIN_bad_method]++;

  login_stats st;
  login_stats_get(l, &st);
  for (int o = 0; o < LOGIN_OUTCOME_COUNT; o++)
    if (st.outcome[o] != want[o])
      fail_msg("%s: %llu, not %llu", login_outcome_name(o),
               (unsigned long long)st.outcome[o],
               (unsigned long long)want[o]);
  assert_int_equal(st.timeouts, 0);
  login_stop(l);
}

/* A client that sends half a request, and one that sends nothing, are
 * closed at the deadline, unanswered, and counted. */
static void test_slow_requests(void **state) {
  (void)state;
  uint8_t key[32];
  assert_int_equal(kite_token_key_new(key), 0);
  login *l = start(key, 0, 200);
  int port = login_port(l);
  int half = dial(port), silent = dial(port);
  const char part[] = "POST /login HTTP/1.1\r\nContent-Le";
  assert_int_equal(send(half, part, sizeof(part) - 1, 0),
                   (ssize_t)sizeof(part) - 1);
  assert_true(closed_unanswered(half));
  assert_true(closed_unanswered(silent));
  close(half);
  close(silent);
  login_stats st;
  uint64_t end = kite__now_us() + WAIT_US;
  do
    login_stats_get(l, &st);
  while (st.timeouts < 2 && kite__now_us() < end);
  assert_int_equal(st.timeouts, 2);
  for (int o = 0; o < LOGIN_OUTCOME_COUNT; o++)
    assert_int_equal(st.outcome[o], 0);
  login_stop(l);
}

/* conns_max open: a new connection closes the oldest, counted; the new
 * one is served. */
static void test_connection_bound(void **state) {
  (void)state;
  uint8_t key[32], tok[800];
  assert_int_equal(kite_token_key_new(key), 0);
  login *l = start(key, 2, 60000);
  int port = login_port(l);
  int a = dial(port), b = dial(port), c = dial(port);
  assert_true(closed_unanswered(a)); /* evicted */
  login_stats st;
  login_stats_get(l, &st);
  assert_int_equal(st.evictions, 1);
  const char req[] = "POST /login HTTP/1.1\r\nContent-Length: 10\r\n\r\nname=carol";
  assert_int_equal(send(c, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
  char full[2048];
  read_all(c, full, sizeof(full));
  assert_int_equal(strncmp(full, "HTTP/1.1 200 ", 13), 0);
  close(a);
  close(b);
  close(c);
  login_as(port, "name=dave", tok); /* served as ever */
  login_stats_get(l, &st);
  assert_int_equal(st.outcome[LOGIN_tokens], 2);
  login_stop(l);
}

/* Out of descriptors, accept() fails: the route pauses (counted) instead
 * of spinning on the queued connection, and serves it once one is free. */
static void test_accept_backoff(void **state) {
  (void)state;
  uint8_t key[32], tok[800];
  assert_int_equal(kite_token_key_new(key), 0);
  login *l = start(key, 0, 0);
  int port = login_port(l);
  struct rlimit old, low;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(probe >= 0);
  close(probe);
  low = old;
  low.rlim_cur = (rlim_t)probe + 16;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  int fill[32], nfill = 0, fd;
  while (nfill < 32 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
    fill[nfill++] = fd;
  assert_true(nfill > 0 && nfill < 32); /* the table is full */
  close(fill[--nfill]);                 /* one left: the client's socket */
  uint64_t t0 = kite__now_us();
  int c = dial(port);                   /* queued; accept() has none */
  login_stats st;
  uint64_t end = t0 + WAIT_US;
  do
    login_stats_get(l, &st);
  while (st.accept_backoffs < 2 && kite__now_us() < end);
  uint64_t elapsed_ms = (kite__now_us() - t0) / 1000;
  assert_true(st.accept_backoffs >= 2);
  /* At most one pause per LOGIN_BACKOFF_MS (100 ms) since the connect,
   * however slow the machine: no spinning. */
  if (st.accept_backoffs > elapsed_ms / 100 + 2)
    fail_msg("%llu backoffs in %llu ms: accept() spins",
             (unsigned long long)st.accept_backoffs,
             (unsigned long long)elapsed_ms);
  while (nfill)
    close(fill[--nfill]);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  const char req[] = "POST /login HTTP/1.1\r\nContent-Length: 8\r\n\r\nname=eve";
  assert_int_equal(send(c, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
  char full[2048];
  read_all(c, full, sizeof(full));
  assert_int_equal(strncmp(full, "HTTP/1.1 200 ", 13), 0);
  close(c);
  login_as(port, "name=frank", tok);
  login_stop(l);
}

/* Every prefix of a good request is "more", the whole is a name. */
static void test_parse_prefixes(void **state) {
  (void)state;
  const char req[] = "POST /login?v=1 HTTP/1.0\r\ncontent-length: 12\r\n"
                     "content-type: application/x-www-form-urlencoded; "
                     "charset=utf-8\r\n\r\nname=%21x%7e";
  char name[DEMO_NAME_MAX + 1];
  for (size_t n = 0; n < sizeof(req) - 1; n++)
    assert_int_equal(login_parse(req, n, name), LOGIN_MORE);
  assert_int_equal(login_parse(req, sizeof(req) - 1, name), LOGIN_tokens);
  assert_string_equal(name, "!x~");
}

/* A token address no token can name stops the route at start. */
static void test_bad_addresses(void **state) {
  (void)state;
  uint8_t key[32];
  assert_int_equal(kite_token_key_new(key), 0);
  const char *const wild[] = {"0.0.0.0:7001"};
  login_config c = {.addr = "127.0.0.1:0", .key = key, .token_addrs = wild,
                    .ntoken_addrs = 1};
  login *l;
  assert_int_equal(login_start(&l, &c), -1);
  assert_null(l);
  c.ntoken_addrs = 0;
  assert_int_equal(login_start(&l, &c), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_login),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_slow_requests),
      cmocka_unit_test(test_connection_bound),
      cmocka_unit_test(test_accept_backoff),
      cmocka_unit_test(test_parse_prefixes),
      cmocka_unit_test(test_bad_addresses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
