/*
 * The client over protocol version 2, UDP (PROTOCOL-v2.md sections 2 to 5
 * and 9), against the scripted raw v2 server of e2e/v2_fake_server.h on
 * loopback, with the client's clock faked (fake_udp.h): the token's
 * addresses in order, ACCEPT that does not open, REJECT, expiry, protected
 * datagrams forged, replayed or from elsewhere, PATH_CHALLENGE, CLOSE
 * items both ways, the key limit.
 */
#include "unit/client/fake_udp.h"

#include "e2e/v2_fake_server.h"

#define PID 0x4b495445ull

static uint8_t KEY[32];

/* Polls the client and pumps the servers (up to 4) until |cond|, with the
 * fake clock moving 10 ms a round; bounded (about 5 s of real time). */
#define UNTIL(c, cond, ...)                                                   \
  do {                                                                        \
    v2us *srv_[] = {__VA_ARGS__};                                             \
    for (int r_ = 0; r_ < 500 && !(cond); r_++) {                             \
      fake_now += 10;                                                         \
      tick(c);                                                                \
      for (size_t k_ = 0; k_ < sizeof(srv_) / sizeof(srv_[0]); k_++) {        \
        srv_[k_]->now = fake_now;                                             \
        v2us_pump(srv_[k_], 0);                                               \
      }                                                                       \
      wait_readable(kite_client_fd(c), 10);                                   \
    }                                                                         \
    assert_true(cond);                                                        \
  } while (0)

static kite_client *v2_client(kite_client_config *cfg, events *e) {
  memset(e, 0, sizeof(*e));
  config(cfg, e);
  cfg->retries = 2;
  return client_new(cfg, e);
}

static kite_client_stats stats(kite_client *c) {
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  return st;
}

/* Connects |c| by a token for |s| alone and waits for on_connect. */
static kite_conn *open_one(kite_client *c, events *e, v2us *s) {
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s->addr};
  v2fs_mint(tok, KEY, PID, addrs, 1, 30);
  kite_conn *conn;
  assert_int_equal(kite_client_connect_token(c, tok, NULL, &conn), 0);
  UNTIL(c, e->connects == 1 && s->seen.nframes >= 1, s);
  /* The session opened with a ping, the first KCP item. */
  assert_int_equal(s->seen.h[0].msg_id, 0);
  assert_int_equal(s->seen.last_pn, 0);
  return conn;
}

static void test_connect_echo_close(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  kite_conn *conn = open_one(c, &e, s);
  kite_conn_stats cs;
  kite_conn_get_stats(conn, &cs);
  assert_int_equal(cs.version, 2);
  assert_int_equal(cs.conv, 0x12345601);
  assert_int_equal(cs.max_unreliable, 1400 - 36);
  assert_int_equal(s->hellos, 1);
  assert_int_equal(s->connects, 1);

  assert_int_equal(kite_conn_send(conn, 7, "hello", 5), 0);
  UNTIL(c, e.messages == 1, s);
  assert_int_equal(e.msg_id, 7);
  assert_int_equal(e.len, 5);
  assert_memory_equal(e.body, "hello", 5);

  assert_int_equal(kite_conn_close(conn), 0);
  UNTIL(c, e.disconnects == 1 && s->seen.closes == 3, s);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  assert_int_equal(s->seen.close_reason, 0);
  kite_client_stats st = stats(c);
  assert_int_equal(st.v2_drop_auth, 0);
  assert_int_equal(st.v2_drop_replay, 0);
  assert_int_equal(st.v2_attempts, 1);
  kite_client_destroy(c);
  v2us_free(s);
}

static void test_malformed_token_einval(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {"127.0.0.1:9"};
  v2fs_mint(tok, KEY, PID, addrs, 1, 30);
  tok[0] ^= 1; /* magic */
  kite_conn *conn = (kite_conn *)1;
  assert_int_equal(kite_client_connect_token(c, tok, NULL, &conn),
                   KITE_EINVAL);
  assert_null(conn);
  assert_int_equal(kite_client_connect_token_tcp(c, tok, NULL, NULL),
                   KITE_EINVAL);
  assert_int_equal(kite_client_connect_token(c, NULL, NULL, NULL),
                   KITE_EINVAL);
  assert_int_equal(stats(c).sessions, 0);
  tick(c);
  assert_int_equal(e.disconnects, 0);
  kite_client_destroy(c);
}

/* An ACCEPT that does not open under the token's key is ignored and
 * counted; CONNECT is resent and the real ACCEPT opens. */
static void test_accept_wrong_tag_ignored(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  s->bad_accept = true;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s->addr};
  v2fs_mint(tok, KEY, PID, addrs, 1, 30);
  assert_int_equal(kite_client_connect_token(c, tok, NULL, NULL), 0);
  UNTIL(c, stats(c).v2_accept_bad == 1, s);
  assert_int_equal(e.connects, 0);
  UNTIL(c, e.connects == 1, s);
  assert_int_equal(s->connects, 2);
  assert_int_equal(stats(c).v2_accept_bad, 1);
  kite_client_destroy(c);
  v2us_free(s);
}

/* REJECT ends the attempt at that address; the next one is tried with a
 * fresh nonce and opens. */
static void test_reject_moves_on(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s1 = v2us_new("127.0.0.1", KEY, PID);
  v2us *s2 = v2us_new("127.0.0.2", KEY, PID);
  s1->reject = 7;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s1->addr, s2->addr};
  v2fs_mint(tok, KEY, PID, addrs, 2, 30);
  assert_int_equal(kite_client_connect_token(c, tok, NULL, NULL), 0);
  UNTIL(c, e.connects == 1, s1, s2);
  assert_int_equal(s1->rejects_sent, 1);
  assert_int_equal(s2->accepts_sent, 1);
  kite_client_stats st = stats(c);
  assert_int_equal(st.v2_attempts, 2);
  assert_int_equal(st.rejected, 1);
  kite_client_destroy(c);
  v2us_free(s1);
  v2us_free(s2);
}

/* Every address refuses: the last one's REJECT is the outcome. */
static void test_all_reject(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s1 = v2us_new("127.0.0.1", KEY, PID);
  v2us *s2 = v2us_new("127.0.0.3", KEY, PID);
  s1->reject = 1;
  s2->reject = 8;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s1->addr, s2->addr};
  v2fs_mint(tok, KEY, PID, addrs, 2, 30);
  assert_int_equal(kite_client_connect_token(c, tok, NULL, NULL), 0);
  UNTIL(c, e.disconnects == 1, s1, s2);
  assert_int_equal(e.reason, KITE_CONNECT_REJECTED_USED);
  assert_int_equal(e.connects, 0);
  kite_client_destroy(c);
  v2us_free(s1);
  v2us_free(s2);
}

/* The first address never answers: after its retransmissions the second
 * is tried, and answers. */
static void test_first_dead_second_answers(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s1 = v2us_new("127.0.0.1", KEY, PID);
  v2us *s2 = v2us_new("127.0.0.4", KEY, PID);
  s1->silent = true;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s1->addr, s2->addr};
  v2fs_mint(tok, KEY, PID, addrs, 2, 30);
  assert_int_equal(kite_client_connect_token(c, tok, NULL, NULL), 0);
  UNTIL(c, e.connects == 1, s1, s2);
  kite_client_stats st = stats(c);
  assert_int_equal(st.v2_attempts, 2);
  assert_int_equal(st.connect_timeouts, 1);
  assert_int_equal(st.hello_sent, 3 + 1); /* 1 + retries, then 1 */
  kite_client_destroy(c);
  v2us_free(s1);
  v2us_free(s2);
}

/* The first address's ACCEPT comes late, while the second is tried: it
 * opens under the token's key, so it still wins. */
static void test_late_accept_from_earlier_address_wins(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s1 = v2us_new("127.0.0.1", KEY, PID);
  v2us *s2 = v2us_new("127.0.0.5", KEY, PID);
  s1->hold_accept = true;
  s2->silent = true;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s1->addr, s2->addr};
  v2fs_mint(tok, KEY, PID, addrs, 2, 30);
  kite_conn *conn;
  assert_int_equal(kite_client_connect_token(c, tok, NULL, &conn), 0);
  UNTIL(c, stats(c).v2_attempts == 2, s1, s2);
  v2us_send_raw(s1, s1->held, sizeof(s1->held));
  UNTIL(c, e.connects == 1 && s1->seen.nframes >= 1, s1, s2);
  assert_int_equal(s1->seen.h[0].msg_id, 0); /* the opening ping, to s1 */
  assert_int_equal(kite_conn_send(conn, 5, "late", 4), 0);
  UNTIL(c, e.messages == 1, s1, s2);
  kite_client_destroy(c);
  v2us_free(s1);
  v2us_free(s2);
}

/* One session allowed: its nonces for the addresses tried still fit the
 * client's nonce table (the older ones are bounded), up to the third. */
static void test_addresses_at_max_sessions(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  memset(&e, 0, sizeof(e));
  config(&cfg, &e);
  cfg.retries = 1;
  cfg.max_sessions = 1;
  kite_client *c = client_new(&cfg, &e);
  v2us *s1 = v2us_new("127.0.0.1", KEY, PID);
  v2us *s2 = v2us_new("127.0.0.6", KEY, PID);
  v2us *s3 = v2us_new("127.0.0.7", KEY, PID);
  s1->silent = s2->silent = true;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s1->addr, s2->addr, s3->addr};
  v2fs_mint(tok, KEY, PID, addrs, 3, 30);
  assert_int_equal(kite_client_connect_token(c, tok, NULL, NULL), 0);
  UNTIL(c, e.connects == 1 || e.disconnects == 1, s1, s2, s3);
  assert_int_equal(e.connects, 1);
  assert_int_equal(stats(c).v2_attempts, 3);
  assert_int_equal(c->v2_old_nonces, 0); /* the winner dropped the others */
  kite_client_destroy(c);
  v2us_free(s1);
  v2us_free(s2);
  v2us_free(s3);
}

/* No server answers and retransmissions would go on: the token's lifetime
 * (2 s, by the client's clock) ends the attempt. */
static void test_expiry_gives_up(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  memset(&e, 0, sizeof(e));
  config(&cfg, &e);
  cfg.retries = 1000;
  kite_client *c = client_new(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  s->silent = true;
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *addrs[] = {s->addr};
  v2fs_mint(tok, KEY, PID, addrs, 1, 2);
  uint32_t start = fake_now;
  assert_int_equal(kite_client_connect_token(c, tok, NULL, NULL), 0);
  UNTIL(c, e.disconnects == 1, s);
  assert_int_equal(e.reason, KITE_CONNECT_EXPIRED);
  assert_true(fake_now - start >= 2000);
  assert_true(fake_now - start < 2100);
  kite_client_destroy(c);
  v2us_free(s);
}

/* Datagrams replayed, altered, or sent from another address are dropped,
 * counted, never acted on; the session goes on. */
static void test_forged_replayed_dropped(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  kite_conn *conn = open_one(c, &e, s);
  assert_int_equal(kite_conn_send(conn, 9, "abc", 3), 0);
  UNTIL(c, e.messages == 1, s);

  /* A datagram of the server's, sent again as it was. */
  uint8_t copy[2048];
  size_t len = s->last_out_len;
  memcpy(copy, s->last_out, len);
  v2us_send_raw(s, copy, len);
  UNTIL(c, stats(c).v2_drop_replay == 1, s);

  /* The next number, altered in one bit of its ciphertext. */
  uint8_t items[64];
  int n = kite__v2item_put_padding(items, sizeof(items), 8);
  uint64_t pn;
  assert_true(kite__v2pn_take(&s->pn, &pn) >= 0);
  len = (size_t)kite__v2pkt_seal(copy, sizeof(copy), s->conv, pn, s->keys.s2c,
                                 items, (size_t)n);
  copy[14] ^= 0x01;
  v2us_send_raw(s, copy, len);
  UNTIL(c, stats(c).v2_drop_auth == 1, s);

  /* A valid one, from another address than the server's. */
  copy[14] ^= 0x01;
  uint64_t unknown = stats(c).drop_unknown;
  int other = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(other, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(sendto(other, copy, len, 0, &s->client.sa,
                          kite__addr_len(&s->client)),
                   (ssize_t)len);
  UNTIL(c, stats(c).drop_unknown == unknown + 1, s);
  close(other);

  /* Under 31 bytes. */
  v2us_send_raw(s, copy, 30);
  UNTIL(c, stats(c).v2_drop_size == 1, s);

  /* Still open and working. */
  assert_int_equal(kite_conn_send(conn, 9, "def", 3), 0);
  UNTIL(c, e.messages == 2, s);
  assert_int_equal(e.disconnects, 0);
  kite_client_destroy(c);
  v2us_free(s);
}

static void test_path_challenge_answered(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  open_one(c, &e, s);
  const uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  v2us_send_item(s, KITE__V2ITEM_PATH_CHALLENGE, data, 8);
  UNTIL(c, s->seen.path_responses == 1, s);
  assert_memory_equal(s->seen.path_data, data, 8);
  assert_int_equal(stats(c).v2_path_responses, 1);
  kite_client_destroy(c);
  v2us_free(s);
}

static void test_close_item_reason(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  open_one(c, &e, s);
  uint8_t reason = 4;
  v2us_send_item(s, KITE__V2ITEM_CLOSE, &reason, 1);
  UNTIL(c, e.disconnects == 1, s);
  assert_int_equal(e.reason, KITE_CLOSE_KICKED);
  assert_int_equal(stats(c).closed_by_server, 1);
  assert_int_equal(s->seen.closes, 0); /* nothing said back */
  kite_client_destroy(c);
  v2us_free(s);
}

/* A datagram that verifies but holds a malformed item closes with 2. */
static void test_bad_item_protocol_error(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  open_one(c, &e, s);
  uint8_t two[2] = {4, 4};
  v2us_send_item(s, KITE__V2ITEM_CLOSE, two, 2); /* CLOSE's len is 1 */
  UNTIL(c, e.disconnects == 1 && s->seen.closes >= 1, s);
  assert_int_equal(e.reason, KITE_CLOSE_PROTOCOL);
  assert_int_equal(s->seen.close_reason, KITE_CLOSE_PROTOCOL);
  kite_client_destroy(c);
  v2us_free(s);
}

/* Unreliable messages: pings answered with a pong on the same lane, other
 * messages delivered (on_message, as no on_unreliable is set), a
 * sequenced one older than the newest dropped, counted. */
static void test_unreliable(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  open_one(c, &e, s);
  uint8_t items[64];
  int n = kite__v2item_put_unreliable(items, sizeof(items), 10, 0, 0, "snap",
                                      4, s->max_unreliable);
  v2us_send_items(s, items, (size_t)n);
  UNTIL(c, e.messages == 1, s);
  /* Sequenced: 5, then 4 (older: dropped), then 6. */
  n = kite__v2item_put_unreliable(items, sizeof(items), 11, KITE__V2U_F_SEQ, 5,
                                  "a", 1, s->max_unreliable);
  v2us_send_items(s, items, (size_t)n);
  UNTIL(c, e.messages == 2, s);
  n = kite__v2item_put_unreliable(items, sizeof(items), 11, KITE__V2U_F_SEQ, 4,
                                  "b", 1, s->max_unreliable);
  v2us_send_items(s, items, (size_t)n);
  UNTIL(c, stats(c).unreliable_drop_stale == 1, s);
  n = kite__v2item_put_unreliable(items, sizeof(items), 11, KITE__V2U_F_SEQ, 6,
                                  "c", 1, s->max_unreliable);
  v2us_send_items(s, items, (size_t)n);
  UNTIL(c, e.messages == 3, s);
  assert_int_equal(stats(c).unreliable_in, 3);
  n = kite__v2item_put_unreliable(items, sizeof(items), 0, 0, 0, "ping", 4,
                                  s->max_unreliable);
  v2us_send_items(s, items, (size_t)n);
  UNTIL(c, s->seen.unreliable == 1, s);
  assert_int_equal(s->seen.unreliable_flags, KITE__V2U_F_PONG);
  assert_int_equal(e.messages, 3);
  kite_client_destroy(c);
  v2us_free(s);
}

/* Section 4: the client keeps no idle timer of its own over datagrams;
 * a silent server is found by KCP's dead link (its pings go unacked). */
static void test_no_client_idle_timer(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  memset(&e, 0, sizeof(e));
  config(&cfg, &e);
  cfg.dead_link_ms = 5000;
  kite_client *c = client_new(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  s->idle_ms = 1000;
  open_one(c, &e, s);
  s->silent = true;
  uint32_t start = fake_now;
  UNTIL(c, fake_now - start >= 3000, s); /* three idle timeouts */
  assert_int_equal(e.disconnects, 0);
  UNTIL(c, e.disconnects == 1, s);
  assert_int_equal(e.reason, KITE_CLOSE_DEAD_LINK);
  kite_client_destroy(c);
  v2us_free(s);
}

/* Section 9: the number 2^48 - 3 carries CLOSE 7 and the session ends. */
static void test_key_exhausted(void **state) {
  (void)state;
  events e;
  kite_client_config cfg;
  kite_client *c = v2_client(&cfg, &e);
  v2us *s = v2us_new("127.0.0.1", KEY, PID);
  kite_conn *conn = open_one(c, &e, s);
  conn->v2->pn.next = KITE__V2_PN_CLOSING - 1;
  assert_int_equal(kite_conn_send(conn, 9, "x", 1), 0);
  UNTIL(c, e.disconnects == 1 && s->seen.closes >= 1, s);
  assert_int_equal(e.reason, 7);
  assert_int_equal(s->seen.close_reason, 7);
  assert_true(s->seen.last_pn >= KITE__V2_PN_CLOSING);
  assert_true(s->seen.last_pn < KITE__V2_PN_LIMIT);
  kite_client_destroy(c);
  v2us_free(s);
}

int main(void) {
  assert_int_equal(kite_token_key_new(KEY), 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_echo_close),
      cmocka_unit_test(test_malformed_token_einval),
      cmocka_unit_test(test_accept_wrong_tag_ignored),
      cmocka_unit_test(test_reject_moves_on),
      cmocka_unit_test(test_all_reject),
      cmocka_unit_test(test_first_dead_second_answers),
      cmocka_unit_test(test_late_accept_from_earlier_address_wins),
      cmocka_unit_test(test_addresses_at_max_sessions),
      cmocka_unit_test(test_expiry_gives_up),
      cmocka_unit_test(test_forged_replayed_dropped),
      cmocka_unit_test(test_path_challenge_answered),
      cmocka_unit_test(test_close_item_reason),
      cmocka_unit_test(test_bad_item_protocol_error),
      cmocka_unit_test(test_unreliable),
      cmocka_unit_test(test_no_client_idle_timer),
      cmocka_unit_test(test_key_exhausted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
