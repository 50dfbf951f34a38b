/*
 * Issue 15 over TCP: a connection claims no session slot before its OPEN,
 * and per-source limits bound what one address or one prefix holds.
 *  - bare connects that never send OPEN fill neither the server (a client
 *    sending OPEN still gets in when max_sessions is 2) nor the shard (at
 *    most tcp_preopen_max wait, the oldest dropped first);
 *  - one address flooding bare connects and holding them open from 127/8
 *    sources (127.0.0.2, 127.0.0.3, ...) is refused past tcp_max_per_addr,
 *    its /24 past tcp_max_per_prefix, and a client from another /24 still
 *    gets in; what was refused is counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"
#include "e2e_poll.h"

#include "base/clock.h"
#include "tcp_raw.h"

#include <poll.h>
#include <stdlib.h>

enum { MSG_ECHO = 1 };

typedef struct fixture {
  kite_server *srv;
  int port;
} fixture;

static void on_message(kite_server *s, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  kite_session_send(s, id, m, b, n);
}

typedef void (*tweak_fn)(kite_server_config *c);

static int setup_with(void **state, tweak_fn tweak) {
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "0.0.0.0:0"; /* every 127/8 source reaches it */
  cfg.threads = 2;
  cfg.handshake_timeout_ms = 30000; /* bare connects stay: bounded by test */
  cfg.max_frame = 4096;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.on_message = on_message;
  tweak(&cfg);
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  f->port = kite_server_tcp_port(f->srv);
  *state = f;
  return 0;
}

static void tweak_preopen(kite_server_config *c) {
  c->threads = 1; /* one shard: its pre-session bound is exact */
  c->max_sessions = 2;
  c->tcp_preopen_max = 4;
}
static int setup_preopen(void **state) { return setup_with(state, tweak_preopen); }

static void tweak_source(kite_server_config *c) {
  c->tcp_max_per_addr = 4;
  c->tcp_max_per_prefix = 6;
}
static int setup_source(void **state) { return setup_with(state, tweak_source); }

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  free(f);
  return 0;
}

/* A connection from |src| (a 127/8 address) to the server; -1 on failure. */
static int connect_from(const fixture *f, const char *src) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in from = {.sin_family = AF_INET};
  inet_pton(AF_INET, src, &from.sin_addr);
  struct sockaddr_in to = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)f->port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0 ||
      connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The server closed |fd| (EOF or a reset waits to be read): no wait. */
static bool closed_by_server(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, 0) != 1)
    return false;
  uint8_t b;
  return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

static int count_closed(const int *fds, int n) {
  int k = 0;
  for (int i = 0; i < n; i++)
    k += closed_by_server(fds[i]);
  return k;
}

static void echo_once(int fd, uint32_t seq) {
  uint8_t buf[64];
  size_t n = tcp_raw_frame(buf, MSG_ECHO, 0, &seq, 4, true);
  assert_true(tcp_raw_write(fd, buf, n));
  kite__frame_hdr h;
  uint32_t got = 0;
  assert_true(tcp_raw_read_frame(fd, &h, &got, sizeof(got)));
  assert_int_equal(h.msg_id, MSG_ECHO);
  assert_int_equal(got, seq);
}

/* OPEN, OPENED, one echo: a session the application serves. */
static int open_from(const fixture *f, const char *src, uint32_t seq) {
  int fd = connect_from(f, src);
  assert_true(fd >= 0);
  kite__ctrl opened;
  assert_true(tcp_raw_open(fd, &opened));
  echo_once(fd, seq);
  return fd;
}

#define BARE 20

static void bare_connects_hold_no_slot(void **state) {
  fixture *f = *state;
  int bare[BARE];
  for (int i = 0; i < BARE; i++)
    assert_true((bare[i] = connect_from(f, "127.0.0.2")) >= 0);
  /* Twice max_sessions clients: each still gets its session. */
  int a = open_from(f, "127.0.0.3", 1);
  int b = open_from(f, "127.0.0.4", 2);
  /* The pre-session list kept the newest 4: 21 were accepted before a's
   * OPEN was read (the accept queue is in order; a waited for OPENED
   * before b connected), and b found room. */
  assert_true(WAIT_FOR(e2e_stats(f->srv).tcp_preopen_evicted == BARE + 1 - 4, 5000));
  uint64_t evicted = e2e_stats(f->srv).tcp_preopen_evicted;
  /* The oldest went: the first bare connects see their EOF. */
  assert_true(WAIT_FOR(count_closed(bare, BARE) == (int)evicted, 5000));
  for (int i = 0; i < (int)evicted; i++)
    assert_true(closed_by_server(bare[i]));
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.sessions, 2);
  assert_int_equal(st.sessions_opened, 2);
  assert_int_equal(st.reject_full, 0);
  assert_int_equal(st.tcp_accepted, BARE + 2);
  /* The server is full now: a third OPEN is refused with REJECT 1. */
  int c = connect_from(f, "127.0.0.5");
  uint8_t buf[KITE__CTRL_MAX];
  int n = tcp_raw_ctrl(buf, KITE__CTRL_OPEN, 0);
  assert_true(tcp_raw_write(c, buf, (size_t)n));
  assert_true(tcp_raw_read(c, buf, 17));
  kite__ctrl rej;
  assert_int_equal(kite__ctrl_decode(buf, 17, &rej), 0);
  assert_int_equal(rej.reason, KITE__REJECT_FULL);
  assert_int_equal(e2e_stats(f->srv).reject_full, 1);
  close(c);
  for (int i = 0; i < BARE; i++)
    close(bare[i]);
  close(a);
  close(b);
}

#define FLOOD 10

static void per_source_limits(void **state) {
  fixture *f = *state;
  int flood[FLOOD];
  for (int i = 0; i < FLOOD; i++)
    assert_true((flood[i] = connect_from(f, "127.0.0.2")) >= 0);
  /* 4 held (tcp_max_per_addr), 6 closed at once. */
  assert_true(WAIT_FOR(e2e_stats(f->srv).tcp_refused_addr == FLOOD - 4, 5000));
  assert_true(WAIT_FOR(count_closed(flood, FLOOD) == FLOOD - 4, 5000));
  /* Its /24 holds 6 (tcp_max_per_prefix): 2 more from 127.0.0.3, then
   * a third is refused, as is 127.0.0.4 from the same /24. */
  int n3[3];
  for (int i = 0; i < 3; i++)
    assert_true((n3[i] = connect_from(f, "127.0.0.3")) >= 0);
  assert_true(WAIT_FOR(e2e_stats(f->srv).tcp_refused_prefix == 1, 5000));
  assert_true(WAIT_FOR(count_closed(n3, 3) == 1, 5000));
  int n4 = connect_from(f, "127.0.0.4");
  assert_true(n4 >= 0);
  assert_true(WAIT_FOR(e2e_stats(f->srv).tcp_refused_prefix == 2, 5000));
  assert_true(WAIT_FOR(closed_by_server(n4), 5000));
  close(n4);
  /* A client from another /24 gets in and is served. */
  int legit = open_from(f, "127.1.0.2", 7);
  kite_server_stats st = e2e_stats(f->srv);
  assert_int_equal(st.tcp_refused_addr, FLOOD - 4);
  assert_int_equal(st.tcp_refused_prefix, 2);
  assert_int_equal(st.sessions_opened, 1);
  /* The flood ends: its counts are given back, 127.0.0.2 gets in. */
  for (int i = 0; i < FLOOD; i++)
    close(flood[i]);
  for (int i = 0; i < 3; i++)
    close(n3[i]);
  int again = -1;
  uint64_t end = kite__now_us() + 5000000;
  while (again < 0 && kite__now_us() < end) {
    int fd = connect_from(f, "127.0.0.2");
    kite__ctrl opened;
    if (fd >= 0 && tcp_raw_open(fd, &opened)) {
      again = fd;
      break;
    }
    if (fd >= 0)
      close(fd);
    usleep(10000);
  }
  assert_true(again >= 0);
  echo_once(again, 8);
  echo_once(legit, 9);
  close(again);
  close(legit);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(bare_connects_hold_no_slot, setup_preopen,
                                      teardown),
      cmocka_unit_test_setup_teardown(per_source_limits, setup_source, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
