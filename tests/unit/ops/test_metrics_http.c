/*
 * The metrics endpoint over real loopback sockets: each answer of the
 * table in ops/metrics_http.h, its counters, the deadline on a silent
 * client, a stop that does not wait for one, idle connections that cannot
 * starve a scrape, and a slow reader within its bound.
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
#include <errno.h>
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

static kite__metrics_http *start_with(const kite__metrics_http_limits *lim) {
  kite__log log;
  kite__log_init(&log, quiet, NULL, KITE_LOG_DEBUG);
  kite__metrics_http *m;
  assert_int_equal(kite__metrics_http_start(&m, "127.0.0.1:0", write_text, NULL, &log, lim), 0);
  assert_true(kite__metrics_http_port(m) > 0);
  return m;
}

static kite__metrics_http *start(void) { return start_with(NULL); }

/* A connection whose receive buffer is |rcvbuf| bytes (0: the default). */
static int dial_buf(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  if (rcvbuf)
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

static int dial(int port) { return dial_buf(port, 0); }

/* true once |fd| reads as closed by the server (EOF or reset) within
 * |ms|; false if it stays open that long. */
static bool closed_within(int fd, int ms) {
  uint64_t end = kite__now_us() + (uint64_t)ms * 1000;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint64_t now = kite__now_us();
    if (now >= end)
      return false;
    if (poll(&p, 1, (int)((end - now) / 1000) + 1) <= 0)
      continue;
    char c[256];
    ssize_t n = recv(fd, c, sizeof(c), MSG_DONTWAIT);
    if (n <= 0)
      return n == 0 || errno != EAGAIN;
  }
}

/* Waits (bounded) until the counters satisfy |cond| on |st|. */
#define STATS_UNTIL(m, st, cond)                                             \
  do {                                                                       \
    uint64_t end_ = kite__now_us() + 10000000;                               \
    do                                                                       \
      kite__metrics_http_stats_get((m), &(st));                              \
    while (!(cond) && kite__now_us() < end_ && usleep(1000) == 0);           \
  } while (0)

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

/* A client that sends nothing does not hold up a scrape; it is closed at
 * its deadline and counted; a stop does not wait for a silent client. */
static void silent_client(void **state) {
  (void)state;
  text_bytes = 0;
  kite__metrics_http_limits lim;
  kite__metrics_http_limits_init(&lim);
  lim.deadline_ms = 300;
  kite__metrics_http *m = start_with(&lim);
  int port = kite__metrics_http_port(m);
  int silent = dial(port);
  char *r = get(port, "GET /metrics HTTP/1.1\r\n\r\n");
  assert_non_null(strstr(r, " 200 "));
  free(r);
  kite__metrics_http_stats st;
  kite__metrics_http_stats_get(m, &st);
  assert_int_equal(st.scrapes, 1);
  assert_true(closed_within(silent, 10000)); /* at its deadline */
  close(silent);
  STATS_UNTIL(m, st, st.timeouts == 1);
  assert_int_equal(st.timeouts, 1);

  silent = dial(port);
  int half = dial(port);
  assert_int_equal(send(half, "GET /met", 8, 0), 8);
  STATS_UNTIL(m, st, st.timeouts == 3);
  assert_int_equal(st.timeouts, 3); /* half a request times out too */
  assert_true(closed_within(half, 1000));
  close(silent);
  close(half);

  silent = dial(port);
  usleep(50000); /* accepted and waited on */
  uint64_t t0 = kite__now_us();
  kite__metrics_http_stop(m);
  assert_true(kite__now_us() - t0 < (KITE__METRICS_HTTP_DEADLINE_MS / 2) * 1000ull);
  close(silent);
}

/* The issue: 40 idle connections made one scrape take 9 s and another time
 * out (one connection at a time, 2 s each). Now they are held open side by
 * side, the oldest closed to make room past conns_max, and a scrape gets
 * its answer while they are all still within their deadline. */
#define IDLE 40
static void idle_connections_do_not_starve_a_scrape(void **state) {
  (void)state;
  text_bytes = 0;
  kite__metrics_http *m = start();
  int port = kite__metrics_http_port(m);
  int idle[IDLE];
  uint64_t t0 = kite__now_us();
  for (int i = 0; i < IDLE; i++) {
    idle[i] = dial(port);
    if (i >= IDLE / 2) /* half send part of a request and stall */
      assert_int_equal(send(idle[i], "GET /metr", 9, 0), 9);
  }
  char *r = get(port, "GET /metrics HTTP/1.1\r\n\r\n");
  uint64_t took_us = kite__now_us() - t0;
  assert_non_null(strstr(r, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(r, "kite_test 7\n"));
  free(r);
  /* Served before any idle connection's deadline came: none delayed it. */
  assert_true(took_us < KITE__METRICS_HTTP_DEADLINE_MS * 1000ull);
  kite__metrics_http_stats st;
  kite__metrics_http_stats_get(m, &st);
  assert_int_equal(st.scrapes, 1);
  assert_int_equal(st.timeouts, 0);
  /* 41 connections through 32 slots: the 9 oldest made room. */
  assert_int_equal(st.evictions, IDLE + 1 - KITE__METRICS_HTTP_CONNS_MAX);
  for (int i = 0; i < IDLE + 1 - KITE__METRICS_HTTP_CONNS_MAX; i++)
    assert_true(closed_within(idle[i], 1000));
  for (int i = IDLE + 1 - KITE__METRICS_HTTP_CONNS_MAX; i < IDLE; i++) {
    struct pollfd p = {.fd = idle[i], .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0); /* still held open */
  }
  for (int i = 0; i < IDLE; i++)
    close(idle[i]);
  kite__metrics_http_stop(m);
}

/* Reads one response from |fd| (already sent its request), |delay_us|
 * before each read, until the server closes; returns its length. */
static size_t read_slowly(int fd, char *out, size_t cap, useconds_t delay_us) {
  size_t len = 0;
  uint64_t end = kite__now_us() + 20000000;
  for (;;) {
    assert_true(kite__now_us() < end);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0)
      continue;
    if (delay_us)
      usleep(delay_us);
    ssize_t n = recv(fd, out + len, cap - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  return len;
}

/* A text far larger than a small receive window: the kernel takes part of
 * it, the rest is copied and sent as the reader reads, the scrape is
 * whole; with unsent_max too small for that copy, the response is cut and
 * counted instead. */
static void slow_reader(void **state) {
  (void)state;
  text_bytes = 900 * 1024;
  size_t cap = 2u << 20;
  char *out = malloc(cap + 1);
  for (int cut = 0; cut < 2; cut++) {
    kite__metrics_http_limits lim;
    kite__metrics_http_limits_init(&lim);
    lim.sndbuf = 16384; /* the kernel's own on loopback takes it all */
    if (cut)
      lim.unsent_max = 4096;
    kite__metrics_http *m = start_with(&lim);
    int fd = dial_buf(kite__metrics_http_port(m), 4096);
    const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    size_t len = read_slowly(fd, out, cap, cut ? 0 : 200);
    out[len] = 0;
    close(fd);
    kite__metrics_http_stats st;
    kite__metrics_http_stats_get(m, &st);
    assert_int_equal(st.scrapes, 1);
    const char *cl = strstr(out, "Content-Length: ");
    assert_non_null(cl);
    size_t body = strtoul(cl + 16, NULL, 10);
    assert_true(body > 900 * 1024);
    size_t got = len - (size_t)(strstr(out, "\r\n\r\n") + 4 - out);
    if (cut) {
      assert_true(got < body);
      assert_int_equal(st.unsent_cut, 1);
    } else {
      assert_int_equal(got, body);
      assert_int_equal(st.unsent_cut, 0);
      assert_int_equal(st.send_errors, 0);
    }
    kite__metrics_http_stop(m);
  }
  free(out);
  text_bytes = 0;
}

static void start_errors(void **state) {
  (void)state;
  kite__log log;
  kite__log_init(&log, quiet, NULL, KITE_LOG_DEBUG);
  kite__metrics_http *m = (kite__metrics_http *)1, *m2;
  assert_int_equal(kite__metrics_http_start(&m, "nonsense", write_text, NULL, &log, NULL), KITE_EINVAL);
  assert_null(m);
  assert_int_equal(kite__metrics_http_start(&m, "127.0.0.1:0", NULL, NULL, &log, NULL), KITE_EINVAL);
  kite__metrics_http_limits lim;
  kite__metrics_http_limits_init(&lim);
  lim.conns_max = 0;
  assert_int_equal(kite__metrics_http_start(&m, "127.0.0.1:0", write_text, NULL, &log, &lim), KITE_EINVAL);
  kite__metrics_http_limits_init(&lim);
  lim.deadline_ms = 0;
  assert_int_equal(kite__metrics_http_start(&m, "127.0.0.1:0", write_text, NULL, &log, &lim), KITE_EINVAL);
  assert_null(m);
  m = start();
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite__metrics_http_port(m));
  assert_int_equal(kite__metrics_http_start(&m2, addr, write_text, NULL, &log, NULL), KITE_ESYS);
  assert_null(m2);
  kite__metrics_http_stop(m);
  kite__metrics_http_stop(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scrape_ok),
      cmocka_unit_test(refusals),
      cmocka_unit_test(silent_client),
      cmocka_unit_test(idle_connections_do_not_starve_a_scrape),
      cmocka_unit_test(slow_reader),
      cmocka_unit_test(start_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
