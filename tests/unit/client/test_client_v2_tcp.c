/*
 * The client over protocol version 2, TCP (PROTOCOL-v2.md section 8),
 * against the scripted raw v2 server of e2e/v2_fake_server.h on loopback:
 * OPEN v2 and OPENED v2 (one that does not open: closed), records both
 * ways, the CLOSE frame both ways, an end of stream without one (reason
 * 5), a record that does not verify, REJECT moving to the next address.
 */
#include "unit/client/fake_udp.h"

#include "e2e/v2_fake_server.h"

#define PID 0x4b495445ull

static uint8_t KEY[32];

static void poll_client(void *arg) { kite_client_poll(arg, 0); }

/* Polls the client (the fake clock moving 10 ms a round) until |cond|;
 * bounded (about 5 s of real time). */
#define UNTIL(c, cond)                                                        \
  do {                                                                        \
    for (int r_ = 0; r_ < 500 && !(cond); r_++) {                             \
      fake_now += 10;                                                         \
      tick(c);                                                                \
      wait_readable(kite_client_fd(c), 10);                                   \
    }                                                                         \
    assert_true(cond);                                                        \
  } while (0)

static kite_client *v2_client(kite_client_config *cfg, events *e) {
  memset(e, 0, sizeof(*e));
  config(cfg, e);
  return client_new(cfg, e);
}

static kite_client_stats stats(kite_client *c) {
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  return st;
}

static kite_conn *connect_to(kite_client *c, v2ts *s) {
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s->addr};
  v2fs_mint(tok, KEY, PID, addrs, 1, 30);
  kite_conn *conn;
  assert_int_equal(kite_client_connect_token_tcp(c, tok, NULL, &conn), 0);
  return conn;
}

/* Connected, opened, and the opening ping read by the server. */
static kite_conn *open_one(kite_client *c, events *e, v2ts *s) {
  kite_conn *conn = connect_to(c, s);
  v2ts_accept(s, poll_client, c);
  UNTIL(c, e->connects == 1);
  v2ts_pump(s, 1, poll_client, c);
  assert_true(s->seen.nframes >= 1);
  assert_int_equal(s->seen.h[0].msg_id, 0); /* the first record: a ping */
  return conn;
}

static void test_tcp_connect_echo_close(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2ts *s = v2ts_new(KEY, PID);
  kite_conn *conn = open_one(c, &e, s);
  kite_conn_stats cs;
  kite_conn_get_stats(conn, &cs);
  assert_int_equal(cs.version, 2);
  assert_int_equal(cs.max_unreliable, 1400 - 36);

  assert_int_equal(kite_conn_send(conn, 7, "hello", 5), 0);
  v2ts_pump(s, 2, poll_client, c);
  UNTIL(c, e.messages == 1);
  assert_int_equal(e.msg_id, 7);
  assert_memory_equal(e.body, "hello", 5);

  /* A frame over one record's 16384 bytes goes as several. */
  static uint8_t big[40000];
  memset(big, 0x42, sizeof(big));
  assert_int_equal(kite_conn_send(conn, 8, big, sizeof(big)), 0);
  v2ts_pump(s, 3, poll_client, c);
  assert_int_equal(s->seen.h[2].msg_id, 8);
  assert_int_equal(s->seen.h[2].len, sizeof(big));

  assert_int_equal(kite_conn_close(conn), 0);
  v2ts_pump(s, 4, poll_client, c);
  assert_int_equal(s->seen.closes, 1);
  assert_int_equal(s->seen.close_reason, 0);
  v2ts_pump(s, 5, poll_client, c);
  assert_true(s->eof);
  UNTIL(c, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  kite_client_destroy(c);
  v2ts_free(s);
}

/* An OPENED whose body does not open under the token's key: closed. */
static void test_tcp_opened_bad(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2ts *s = v2ts_new(KEY, PID);
  s->bad_opened = true;
  connect_to(c, s);
  v2ts_accept(s, poll_client, c);
  UNTIL(c, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_PROTOCOL);
  assert_int_equal(e.connects, 0);
  assert_int_equal(stats(c).v2_accept_bad, 1);
  /* The client closed the connection. */
  uint8_t b;
  bool eof = false;
  for (int i = 0; i < 100 && !eof; i++) {
    ssize_t r = recv(s->fd, &b, 1, MSG_DONTWAIT);
    eof = r == 0;
    if (!eof)
      v2fs_readable(s->fd, 10);
  }
  assert_true(eof);
  kite_client_destroy(c);
  v2ts_free(s);
}

/* An end of stream without a CLOSE frame is reason 5. */
static void test_tcp_eof_without_close(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2ts *s = v2ts_new(KEY, PID);
  open_one(c, &e, s);
  shutdown(s->fd, SHUT_WR);
  UNTIL(c, e.disconnects == 1);
  assert_int_equal(e.reason, 5);
  kite_client_destroy(c);
  v2ts_free(s);
}

/* The server's CLOSE frame gives its reason to the end of stream. */
static void test_tcp_close_frame_reason(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2ts *s = v2ts_new(KEY, PID);
  open_one(c, &e, s);
  uint8_t reason = 3;
  v2ts_send_frame(s, KITE__MSG_CLOSE_NOTICE, 0, &reason, 1);
  shutdown(s->fd, SHUT_WR);
  UNTIL(c, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_SHUTDOWN);
  assert_int_equal(e.messages, 0);
  kite_client_destroy(c);
  v2ts_free(s);
}

/* A record that does not verify ends the session at once (reason 2),
 * nothing more sent. */
static void test_tcp_record_forged(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2ts *s = v2ts_new(KEY, PID);
  open_one(c, &e, s);
  uint8_t pt[KITE__FRAME_HDR + 2];
  kite__frame_header(pt, 9, 0, "hi", 2, false);
  memcpy(pt + KITE__FRAME_HDR, "hi", 2);
  uint8_t rec[64];
  int n = kite__v2rec_seal(rec, sizeof(rec), s->rn++, s->keys.s2c, pt,
                           sizeof(pt));
  rec[5] ^= 0x10;
  v2ts_write(s, rec, (size_t)n);
  UNTIL(c, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_PROTOCOL);
  assert_int_equal(e.messages, 0);
  assert_int_equal(stats(c).v2_drop_auth, 1);
  int closes = s->seen.closes;
  v2ts_pump(s, 100, poll_client, c);
  assert_int_equal(s->seen.closes, closes); /* no CLOSE frame sent */
  kite_client_destroy(c);
  v2ts_free(s);
}

/* REJECT at the first address; the second opens. */
static void test_tcp_reject_moves_on(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2ts *s1 = v2ts_new(KEY, PID);
  v2ts *s2 = v2ts_new(KEY, PID);
  s1->reject = 7;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s1->addr, s2->addr};
  v2fs_mint(tok, KEY, PID, addrs, 2, 30);
  assert_int_equal(kite_client_connect_token_tcp(c, tok, NULL, NULL), 0);
  v2ts_accept(s1, poll_client, c);
  v2ts_accept(s2, poll_client, c);
  UNTIL(c, e.connects == 1);
  kite_client_stats st = stats(c);
  assert_int_equal(st.rejected, 1);
  assert_int_equal(st.v2_attempts, 2);
  kite_client_destroy(c);
  v2ts_free(s1);
  v2ts_free(s2);
}

/* A connection refused at the first address; the second opens. */
static void test_tcp_first_refused(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2ts *dead = v2ts_new(KEY, PID);
  v2ts *s = v2ts_new(KEY, PID);
  char dead_addr[64];
  snprintf(dead_addr, sizeof(dead_addr), "%s", dead->addr);
  v2ts_free(dead); /* its port now refuses */
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {dead_addr, s->addr};
  v2fs_mint(tok, KEY, PID, addrs, 2, 30);
  assert_int_equal(kite_client_connect_token_tcp(c, tok, NULL, NULL), 0);
  v2ts_accept(s, poll_client, c);
  UNTIL(c, e.connects == 1);
  assert_int_equal(stats(c).tcp_connect_failed, 1);
  kite_client_destroy(c);
  v2ts_free(s);
}

int main(void) {
  assert_int_equal(kite_token_key_new(KEY), 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tcp_connect_echo_close),
      cmocka_unit_test(test_tcp_opened_bad),
      cmocka_unit_test(test_tcp_eof_without_close),
      cmocka_unit_test(test_tcp_close_frame_reason),
      cmocka_unit_test(test_tcp_record_forged),
      cmocka_unit_test(test_tcp_reject_moves_on),
      cmocka_unit_test(test_tcp_first_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
