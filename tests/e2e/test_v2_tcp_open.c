/*
 * Protocol version 2 over TCP, the handshake (PROTOCOL-v2.md sections 1,
 * 3 and 8) against a raw v2 peer (tcp_v2_raw.h): every REJECT reason, a
 * version not served either way, a token reused from another address or
 * the same one, a slowloris OPEN and a silent OPENED session, and the
 * tcp_send_max a sealed frame needs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "v2_tcp_fixture.h"

/* One OPEN with |tok| from a fresh connection: the REJECT's reason (and
 * header version), or -1 when closed without a word. */
static int reject_of(const fixture *f, const uint8_t *tok, uint8_t *version) {
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX], reason = 0;
  int n = v2_open_bytes(&p, b);
  assert_true(p.wr(&p, b, (size_t)n));
  int rc = v2peer_answer(&p, &reason, version);
  assert_true(rc != 1);
  if (rc == 0)
    assert_int_equal(tcp_raw_expect_eof(p.fd), 0); /* lingering close */
  v2peer_free(&p);
  return rc == 0 ? reason : -1;
}

static void rejects(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES], other[KITE_TOKEN_KEY_BYTES], ver = 0;
  /* 5: expired (created 100 s ago, lived 30). */
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 1, NULL, 100, 30), 0);
  assert_int_equal(reject_of(f, tok, &ver), 5);
  assert_int_equal(ver, 2);
  /* 6: sealed under another key. */
  memset(other, 0xAB, sizeof(other));
  assert_int_equal(v2_mint(tok, other, NULL, f->port, 1, NULL, 0, 60), 0);
  assert_int_equal(reject_of(f, tok, &ver), 6);
  /* 6: altered (a bit of sealed_private flipped). */
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 1, NULL, 0, 60), 0);
  tok[288 + 100] ^= 1;
  assert_int_equal(reject_of(f, tok, &ver), 6);
  /* 7: not among its addresses. */
  assert_int_equal(v2_mint(tok, f->key, "127.0.0.1:1", 0, 1, NULL, 0, 60), 0);
  assert_int_equal(reject_of(f, tok, &ver), 7);
  /* 2: a version no one serves, in the header of the highest served. */
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX], r = 0;
  int n = v2_open_bytes(&p, b);
  b[5] = 3;
  assert_true(p.wr(&p, b, (size_t)n));
  assert_int_equal(v2peer_answer(&p, &r, &ver), 0);
  assert_int_equal(r, KITE__REJECT_VERSION);
  assert_int_equal(ver, 2);
  v2peer_free(&p);
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_reject_expired, 1);
  assert_int_equal(st.v2_tcp_reject_token, 2);
  assert_int_equal(st.v2_tcp_reject_not_here, 1);
  assert_int_equal(st.reject_version, 1);
  assert_int_equal(st.v2_tcp_opens, 4);
  assert_int_equal(st.v2_tcp_opened, 0);
  assert_int_equal(atomic_load(&connects), 0);
  assert_true(WAIT_FOR(stats(f).sessions == 0, 2000));
}

/* REJECT 2 when a version is not served: v2 at a v1-only server (v1's
 * header), v1 at a v2-only one (v2's header). */
static void versions_not_served(void **state) {
  (void)state;
  uint8_t key[KITE_TOKEN_KEY_BYTES], tok[KITE_TOKEN_BYTES], ver = 0, r = 0;
  v2_test_key(key);
  fixture g;
  g.srv = server(KITE_VERSION_1, 0, &g.port);
  assert_int_equal(v2_mint(tok, key, NULL, g.port, 1, NULL, 0, 60), 0);
  assert_int_equal(reject_of(&g, tok, &ver), KITE__REJECT_VERSION);
  assert_int_equal(ver, 1);
  kite_server_stats st;
  kite_server_stats_get(g.srv, &st);
  assert_int_equal(st.reject_version, 1);
  kite_server_destroy(g.srv);

  g.srv = server(KITE_VERSION_2, 0, &g.port);
  int fd = connect_from(&g, NULL, 0, 0);
  uint8_t b[KITE__CTRL_MAX];
  int n = tcp_raw_ctrl(b, KITE__CTRL_OPEN, 0);
  assert_true(tcp_raw_write(fd, b, (size_t)n));
  assert_true(tcp_raw_read(fd, b, 17));
  assert_int_equal(b[4], KITE__CTRL_REJECT);
  assert_int_equal(b[5], 2);
  assert_int_equal(b[16], KITE__REJECT_VERSION);
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);
  /* A v2 control packet of another type than OPEN: closed unanswered. */
  fd = connect_from(&g, NULL, 0, 0);
  uint8_t hello[64] = {'K', 'I', 'T', 'E', KITE__CTRL_HELLO, 2};
  assert_true(tcp_raw_write(fd, hello, sizeof(hello)));
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);
  kite_server_stats_get(g.srv, &st);
  assert_int_equal(st.reject_version, 1);
  assert_int_equal(st.tcp_bad_open, 1);
  (void)r;
  kite_server_destroy(g.srv);
}

/* A token opens one session per server: from another address it is
 * ignored (closed without a word); from the same address and port, once
 * its session ended, REJECT 8. */
static void token_reuse(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES], ver = 0;
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 5, NULL, 0, 60), 0);
  v2peer p;
  int fd = connect_from(f, "127.0.0.3", 0, 0);
  struct sockaddr_in me;
  socklen_t ml = sizeof(me);
  getsockname(fd, (struct sockaddr *)&me, &ml);
  v2peer_init(&p, fd, tok);
  assert_true(v2peer_open(&p));
  ping(&p);
  assert_true(WAIT_FOR(atomic_load(&connects) == 1, 2000));

  /* Another address, while the session lives. */
  v2peer q;
  v2peer_init(&q, connect_from(f, "127.0.0.2", 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX], r = 0;
  int n = v2_open_bytes(&q, b);
  assert_true(q.wr(&q, b, (size_t)n));
  assert_int_equal(v2peer_answer(&q, &r, &ver), -1);
  v2peer_free(&q);

  /* The same address and port once it ended (a reset: no TIME_WAIT). */
  struct linger lg = {1, 0};
  setsockopt(p.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_DEAD_LINK);
  v2peer_init(&p, connect_from(f, "127.0.0.3", ntohs(me.sin_port), 0), tok);
  n = v2_open_bytes(&p, b);
  assert_true(p.wr(&p, b, (size_t)n));
  assert_int_equal(v2peer_answer(&p, &r, &ver), 0);
  assert_int_equal(r, KITE__REJECT_USED);
  v2peer_free(&p);
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_ignored_bound, 1);
  assert_int_equal(st.v2_tcp_reject_used, 1);
  assert_int_equal(st.v2_tcp_opened, 1);
  assert_int_equal(atomic_load(&connects), 1);
}

/* Slowloris: OPEN's header, then nothing: closed at the handshake
 * timeout, counted. OPENED, then no record: the same, unheard of. */
static void slow_open_and_silent_session(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 9, NULL, 0, 60), 0);
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX];
  int n = v2_open_bytes(&p, b);
  assert_true(p.wr(&p, b, 300)); /* the header and then some */
  assert_int_equal(tcp_raw_expect_eof(p.fd), 0);
  v2peer_free(&p);
  assert_int_equal(stats(f).halfopen_expired, 1);
  assert_int_equal(stats(f).v2_tcp_opens, 0);

  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  assert_true(p.wr(&p, b, (size_t)n));
  uint8_t r, v;
  assert_int_equal(v2peer_answer(&p, &r, &v), 1);
  assert_int_equal(tcp_raw_expect_eof(p.fd), 0); /* without a word */
  v2peer_free(&p);
  assert_true(WAIT_FOR(stats(f).halfopen_expired == 2, 2000));
  assert_int_equal(atomic_load(&connects), 0);
  assert_int_equal(atomic_load(&disconnects), 0);
  assert_true(WAIT_FOR(stats(f).sessions == 0, 2000));
}

static void quiet(void *user, kite_log_level level, const char *msg) {
  (void)user; (void)level; (void)msg;
}

/* tcp_send_max must hold a max_frame sealed as records, or a v2 session
 * could never send one: refused at create. */
static void send_max_holds_a_sealed_frame(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.log = quiet;
  cfg.max_frame = 40000;
  cfg.token_key_set = true;
  v2_test_key(cfg.token_key);
  cfg.tcp_send_max = 40000 + KITE__FRAME_HDR; /* enough for v1 only */
  kite_server *srv = NULL;
  assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
  cfg.versions = KITE_VERSION_1; /* v1 alone: fine */
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  kite_server_destroy(srv);
  cfg.versions = KITE_VERSION_2;
  cfg.tcp_send_max = 40000 + KITE__FRAME_HDR + 3 * 18 + 14;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  kite_server_destroy(srv);
}

/* A full server: REJECT 1, checked before the token is bound (step 8
 * before 9), so the same token opens once a slot is free. */
static void full_server_burns_no_token(void **state) {
  (void)state;
  uint8_t key[KITE_TOKEN_KEY_BYTES], a[KITE_TOKEN_BYTES], b[KITE_TOKEN_BYTES];
  v2_test_key(key);
  fixture g;
  memcpy(g.key, key, sizeof(key));
  fixture_max_sessions = 1;
  g.srv = server(KITE_VERSION_2, 0, &g.port);
  fixture_max_sessions = 0;
  assert_int_equal(v2_mint(a, key, NULL, g.port, 1, NULL, 0, 60), 0);
  assert_int_equal(v2_mint(b, key, NULL, g.port, 2, NULL, 0, 60), 0);
  v2peer p;
  v2peer_init(&p, connect_from(&g, NULL, 0, 0), a);
  assert_true(v2peer_open(&p)); /* half-open: it holds the slot */
  uint8_t ver = 0;
  assert_int_equal(reject_of(&g, b, &ver), KITE__REJECT_FULL);
  assert_int_equal(ver, 2);
  v2peer_free(&p);
  kite_server_stats st;
  assert_true(WAIT_FOR((kite_server_stats_get(g.srv, &st), st.sessions == 0),
                       3000));
  v2peer q;
  v2peer_init(&q, connect_from(&g, NULL, 0, 0), b);
  assert_true(v2peer_open(&q));
  v2peer_free(&q);
  kite_server_stats_get(g.srv, &st);
  assert_int_equal(st.reject_full, 1);
  assert_int_equal(st.v2_tcp_opened, 2);
  kite_server_destroy(g.srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(rejects, setup, teardown),
      cmocka_unit_test(versions_not_served),
      cmocka_unit_test(send_max_holds_a_sealed_frame),
      cmocka_unit_test(full_server_burns_no_token),
      cmocka_unit_test_setup_teardown(token_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(slow_open_and_silent_session, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
