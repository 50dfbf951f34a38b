/*
 * The metrics endpoint over real loopback sockets: each answer of the
 * table in ops/metrics_http.h, its counters, the deadline on a silent
 * client, and a stop that does not wait for one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/clock.h"
#include "kite/error.h"
#include "ops/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_int calls;
static size_t text_bytes; /* set before a scrape: how much fn writes */

static void write_text(void *user, kite__prom *p) {
  (void)user;
  atomic_fetch_add(&calls, 1);
  kite__prom_family(p, "kite_test", "counter", "a test counter");
  kite__prom_sample(p, "kite_test", NULL, NULL, 7);
  static char big[4096];
  memset(big, 'v', sizeof(big) - 1);
  for (size_t n = 0; n < text_bytes && !p->oom; n += sizeof(big))
    kite__prom_sample(p, "kite_big", "l", big, 1);
}

static void quiet(void *user, kite_log_level level, const char *msg) {
  (void)user; (void)level; (void)msg;
}

static kite__metrics_http *start(void) {
  kite__log log;
  kite__log_init(&log, quiet, NULL, KITE_LOG_DEBUG);
  kite__metrics_http *m;
  assert_int_equal(kite__metrics_http_start(&m, "127.0.0.1:0", write_text, NULL, &log), 0);
  assert_true(kite__metrics_http_port(m) > 0);
  return m;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

/* Sends |req| and reads the whole response (the server closes) into a
 * malloc'd string; waits at most 10 s. */
static char *exchange(int port, const char *req, size_t req_len) {
  int fd = dial(port);
  size_t off = 0;
  while (off < req_len) {
    ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
    if (n <= 0)
      break; /* the server may answer and close before reading it all */
    off += (size_t)n;
  }
  size_t cap = 1 << 16, len = 0;
  char *out = malloc(cap + 1);
  uint64_t end = kite__now_us() + 10000000;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_true(kite__now_us() < end);
    if (poll(&p, 1, 100) <= 0)
      continue;
    if (len == cap) {
      cap *= 2;
      out = realloc(out, cap + 1);
    }
    ssize_t n = recv(fd, out + len, cap - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  out[len] = 0;
  close(fd);
  return out;
}

static char *get(int port, const char *req) { return exchange(port, req, strlen(req)); }

static void scrape_ok(void **state) {
  (void)state;
  text_bytes = 0;
  kite__metrics_http *m = start();
  int port = kite__metrics_http_port(m);
  char *r = get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  assert_non_null(strstr(r, "Connection: close\r\n"));
  const char *body = strstr(r, "\r\n\r\n") + 4;
  assert_string_equal(body, "# HELP kite_test a test counter\n"
                            "# TYPE kite_test counter\n"
                            "kite_test 7\n");
  char cl[64];
  snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
  assert_non_null(strstr(r, cl));
  free(r);
  r = get(port, "GET /metrics?name[]=x HTTP/1.0\n\n"); /* bare LF, a query */
  assert_non_null(strstr(r, " 200 "));
  free(r);
  kite__metrics_http_stats st;
  kite__metrics_http_stats_get(m, &st);
  assert_int_equal(st.scrapes, 2);
  assert_int_equal(atomic_load(&calls) >= 2, 1);
  kite__metrics_http_stop(m);
}

static void refusals(void **state) {
  (void)state;
  text_bytes = 0;
  kite__metrics_http *m = start();
  int port = kite__metrics_http_port(m);
  char *r = get(port, "GET /metricsx HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 404 "));
  free(r);
  r = get(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 405 "));
  assert_non_null(strstr(r, "Allow: GET\r\n"));
  free(r);
  r = get(port, "hello\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 400 "));
  free(r);
  r = get(port, "GET /metrics SPDY/3\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 400 "));
  free(r);
  /* A head that never ends within 8 KiB. */
  size_t n = KITE__METRICS_HTTP_REQUEST_MAX + 100;
  char *big = malloc(n);
  memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
  memset(big + 26, 'a', n - 26);
  r = exchange(port, big, n);
  assert_non_null(strstr(r, "HTTP/1.1 400 "));
  free(r);
  free(big);
  /* A text past 1 MiB: refused whole, never cut. */
  text_bytes = KITE__PROM_MAX + 4096;
  r = get(port, "GET /metrics HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 500 "));
  assert_true(strlen(r) < 512);
  free(r);
  text_bytes = 0;
  r = get(port, "GET /metrics HTTP/1.1\r\n\r\n"); /* fine again after */
  assert_non_null(strstr(r, " 200 "));
  free(r);
  kite__metrics_http_stats st;
  kite__metrics_http_stats_get(m, &st);
  assert_int_equal(st.not_found, 1);
  assert_int_equal(st.bad_method, 1);
  assert_int_equal(st.bad_requests, 3);
  assert_int_equal(st.too_large, 1);
  assert_int_equal(st.scrapes, 1);
  kite__metrics_http_stop(m);
}

/* A client that sends nothing holds the endpoint until its deadline, then
 * the next one is served; a stop does not wait for a silent client. */
static void silent_client(void **state) {
  (void)state;
  text_bytes = 0;
  kite__metrics_http *m = start();
  int port = kite__metrics_http_port(m);
  int silent = dial(port);
  uint64_t t0 = kite__now_us();
  char *r = get(port, "GET /metrics HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(r, " 200 "));
  free(r);
  assert_true(kite__now_us() - t0 >= (KITE__METRICS_HTTP_DEADLINE_MS - 100) * 1000ull);
  char c;
  assert_int_equal(recv(silent, &c, 1, 0), 0); /* closed by the server */
  close(silent);
  kite__metrics_http_stats st;
  kite__metrics_http_stats_get(m, &st);
  assert_int_equal(st.timeouts, 1);

  silent = dial(port);
  usleep(50000); /* accepted and waited on */
  t0 = kite__now_us();
  kite__metrics_http_stop(m);
  assert_true(kite__now_us() - t0 < (KITE__METRICS_HTTP_DEADLINE_MS / 2) * 1000ull);
  close(silent);
}

static void start_errors(void **state) {
  (void)state;
  kite__log log;
  kite__log_init(&log, quiet, NULL, KITE_LOG_DEBUG);
  kite__metrics_http *m = (kite__metrics_http *)1, *m2;
  assert_int_equal(kite__metrics_http_start(&m, "nonsense", write_text, NULL, &log), KITE_EINVAL);
  assert_null(m);
  assert_int_equal(kite__metrics_http_start(&m, "127.0.0.1:0", NULL, NULL, &log), KITE_EINVAL);
  m = start();
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite__metrics_http_port(m));
  assert_int_equal(kite__metrics_http_start(&m2, addr, write_text, NULL, &log), KITE_ESYS);
  assert_null(m2);
  kite__metrics_http_stop(m);
  kite__metrics_http_stop(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scrape_ok),
      cmocka_unit_test(refusals),
      cmocka_unit_test(silent_client),
      cmocka_unit_test(start_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
