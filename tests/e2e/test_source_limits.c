/*
 * Sessions per source over UDP (srclimit.h, docs/SECURITY.md), with raw
 * sockets bound to several loopback addresses: 127.0.0.2 and 127.0.0.3
 * share a /24, 127.1.0.1 is another. One shard, so the per-shard limits
 * are the server's. A flood from one address holds only its share; a
 * client from elsewhere still gets in; every refusal is a REJECT full and
 * counted; a closed or expired session gives its place back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"
#include "e2e_poll.h"

#include "kcp_raw.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int messages;

static void on_message(kite_server *s, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  atomic_fetch_add(&messages, 1);
  kite_session_send(s, id, m, b, n);
}

typedef struct fixture {
  kite_server *srv;
  kite__addr addr;
} fixture;

/* max_sessions 12: without the limits the flood below takes them all. */
static int setup_with(void **state, bool limits) {
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.max_sessions = 12;
  cfg.handshake_timeout_ms = 400;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.on_message = on_message;
  cfg.max_sessions_per_addr = limits ? 4 : 0;
  cfg.max_halfopen_per_addr = limits ? 2 : 0;
  cfg.max_sessions_per_prefix = limits ? 6 : 0;
  cfg.max_halfopen_per_prefix = limits ? 3 : 0;
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  char text[64];
  snprintf(text, sizeof(text), "127.0.0.1:%d", kite_server_udp_port(f->srv));
  assert_int_equal(kite__addr_parse(&f->addr, text), 0);
  atomic_store(&messages, 0);
  *state = f;
  return 0;
}
static int setup(void **state) { return setup_with(state, true); }

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  free(f);
  return 0;
}

static int socket_at(const char *ip) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

/* HELLO, CHALLENGE, CONNECT: true and *acc on ACCEPT, false on REJECT
 * (which must say full). */
static bool try_connect(const fixture *f, int fd, uint32_t n, kite__ctrl *acc) {
  uint8_t nonce[8] = {0};
  memcpy(nonce, &n, sizeof(n));
  kite__ctrl h = hello(nonce), ch;
  send_ctrl(fd, &f->addr, &h);
  assert_true(recv_ctrl(fd, KITE__CTRL_CHALLENGE, &ch, 1000));
  kite__ctrl c = {.type = KITE__CTRL_CONNECT, .mtu = 1400, .rcv_wnd = 128};
  memcpy(c.nonce, nonce, 8);
  memcpy(c.cookie, ch.cookie, 16);
  send_ctrl(fd, &f->addr, &c);
  uint64_t end = kite__now_us() + 1000000;
  uint8_t buf[2048];
  while (kite__now_us() < end) {
    int len = recv_raw(fd, buf, sizeof(buf), 100);
    kite__ctrl r;
    if (len <= 0 || kite__ctrl_decode(buf, (size_t)len, &r) < 0 ||
        memcmp(r.nonce, nonce, 8) != 0)
      continue;
    if (r.type == KITE__CTRL_ACCEPT) {
      *acc = r;
      return true;
    }
    if (r.type == KITE__CTRL_REJECT) {
      assert_int_equal(r.reason, KITE__REJECT_FULL);
      return false;
    }
  }
  fail_msg("no answer to CONNECT");
  return false;
}

/* Opens an accepted session: its first segment (a ping). */
static void open_session(mini *m, int fd, const fixture *f, const kite__ctrl *acc) {
  mini_open(m, fd, &f->addr, acc->conv);
  mini_send_frame(m, KITE__MSG_PING, 0, "p", 1, false);
}

static void a_flooding_address_holds_only_its_share(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  int flood = socket_at("127.0.0.2");
  kite__ctrl acc[64];
  int got = 0, refused = 0;
  /* 20 CONNECTs, none opened: 2 half-open, the rest refused. */
  for (uint32_t n = 0; n < 20; n++) {
    if (try_connect(f, flood, n, &acc[got]))
      got++;
    else
      refused++;
  }
  assert_int_equal(got, 2);
  EVENTUALLY_STATS(f->srv, st, st.reject_per_source_halfopen == 18, 3000);
  assert_int_equal(st.reject_per_source, 0);
  assert_int_equal(st.sessions, 2);
  /* Opened, they make room for more half-open, up to 4 in all. */
  static mini m[64];
  for (int i = 0; i < got; i++)
    open_session(&m[i], flood, f, &acc[i]);
  EVENTUALLY_STATS(f->srv, st, st.sessions_opened == 2, 3000);
  for (uint32_t n = 100; n < 110; n++)
    if (try_connect(f, flood, n, &acc[got]))
      open_session(&m[got], flood, f, &acc[got]), got++;
  assert_int_equal(got, 4);
  EVENTUALLY_STATS(f->srv, st, st.sessions_opened == 4 && st.reject_per_source >= 1, 3000);

  /* Its /24 neighbour: the prefix's 6 minus the 4 taken. */
  int near = socket_at("127.0.0.3");
  kite__ctrl a;
  assert_true(try_connect(f, near, 200, &a));
  open_session(&m[got++], near, f, &a);
  assert_true(try_connect(f, near, 201, &a));
  open_session(&m[got++], near, f, &a);
  EVENTUALLY_STATS(f->srv, st, st.sessions_opened == 6, 3000);
  uint64_t before = st.reject_per_source;
  assert_false(try_connect(f, near, 202, &a));
  EVENTUALLY_STATS(f->srv, st, st.reject_per_source == before + 1, 3000);

  /* Another /24 still gets in, and its session works. */
  int other = socket_at("127.1.0.1");
  assert_true(try_connect(f, other, 300, &a));
  mini legit;
  mini_open(&legit, other, &f->addr, a.conv);
  mini_send_frame(&legit, 7, 0, "hello", 5, false);
  EVENTUALLY_STATS(f->srv, st, atomic_load(&messages) == 1, 3000);
  assert_int_equal(st.sessions, 7);

  /* The flooder closes one: its place comes back. */
  kite__ctrl c = {.type = KITE__CTRL_CLOSE, .conv = acc[0].conv};
  memcpy(c.token, acc[0].token, 8);
  send_ctrl(flood, &f->addr, &c);
  EVENTUALLY_STATS(f->srv, st, st.sessions == 6, 3000);
  assert_true(try_connect(f, flood, 400, &a));
  /* ...and a half-open one that expires gives its place back too. */
  EVENTUALLY_STATS(f->srv, st, st.halfopen_expired == 1 && st.sessions == 6, 3000);
  assert_true(try_connect(f, flood, 401, &a));

  for (int i = 0; i < got; i++)
    mini_close(&m[i]);
  mini_close(&legit);
  close(flood);
  close(near);
  close(other);
}

/* Without limits (all 0) the same flood takes every slot and the client
 * from elsewhere is refused: what the limits are for. */
static void without_limits_one_address_takes_every_slot(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  int flood = socket_at("127.0.0.2");
  kite__ctrl acc;
  int got = 0;
  for (uint32_t n = 0; n < 20; n++)
    got += try_connect(f, flood, n, &acc);
  assert_int_equal(got, 12);
  int other = socket_at("127.1.0.1");
  assert_false(try_connect(f, other, 300, &acc));
  EVENTUALLY_STATS(f->srv, st, st.reject_full == 9, 3000);
  assert_int_equal(st.reject_per_source + st.reject_per_source_halfopen, 0);
  close(flood);
  close(other);
}

static int setup_unlimited(void **state) { return setup_with(state, false); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_flooding_address_holds_only_its_share,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(without_limits_one_address_takes_every_slot,
                                      setup_unlimited, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
