/*
 * Version-2 sessions over UDP, end to end against a real server on
 * loopback, with the raw peer of v2_raw.h: a minted token connects and
 * echoes; the session's info names the player; forged, replayed and
 * misplaced datagrams are dropped, counted, and disturb nothing; an
 * off-path spoofer from other 127.x addresses delivers and moves nothing;
 * CLOSE counts only when it verifies; a client whose address changes
 * keeps its session, and a copy raced from an attacker's address is sent
 * fewer bytes than it sent while the session comes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "v2_raw.h"

#include "server/server_internal.h"
#include "server/session_v2.h"

#include <stdatomic.h>

static atomic_int connects, disconnects, messages, last_reason;
static atomic_uint_fast64_t last_id;
/* What on_connect read of the session (its thread writes, then publishes
 * with info_ready; the test thread reads after seeing it). */
static kite_session_info info_seen;
static atomic_int info_ready;
/* The key-limit test: on_connect (inline: on the session's shard thread,
 * its owner) moves the session's packet numbers near 2^48. */
static atomic_int near_the_limit;

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)u;
  kite_session_info in;
  if (kite_session_get_info(s, id, &in) == 0) {
    info_seen = in;
    atomic_store_explicit(&info_ready, 1, memory_order_release);
  }
  atomic_store(&last_id, id);
  if (atomic_load(&near_the_limit)) {
    kite__session *ss = kite__session_by_id(s, id);
    kite__v2_of(ss)->pn.next = KITE__V2_PN_CLOSING - 1;
  }
  atomic_fetch_add(&connects, 1);
}
static void on_disconnect(kite_server *s, kite_session_id id, int r, void *u) {
  (void)s; (void)id; (void)u;
  atomic_store(&last_reason, r);
  atomic_fetch_add(&disconnects, 1);
}
static void on_message(kite_server *s, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  atomic_fetch_add(&messages, 1);
  kite_session_send(s, id, m, b, n);
  if (m == 0x20) /* and on the lane: the two leave in one datagram */
    kite_session_send_unreliable(s, id, m, b, n, KITE_UNRELIABLE_SEQUENCED);
}

typedef struct fixture {
  kite_server *srv;
  kite__addr addr;
  uint8_t token[KITE_TOKEN_BYTES];
  v2peer p;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  v2_test_config(&cfg, 0);
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.on_message = on_message;
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  f->addr = v2_server_addr(f->srv);
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  atomic_store(&messages, 0);
  atomic_store(&info_ready, 0);
  atomic_store(&near_the_limit, 0);
  atomic_store(&last_reason, -1);
  v2_mint(f->token, v2_test_key, V2_TEST_PROTOCOL, NULL,
          kite_server_udp_port(f->srv), 42, "player=alice", 0, 60);
  v2_init(&f->p, v2_socket_on("127.0.0.1"), &f->addr, f->token);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  close(f->p.fd);
  v2_close(&f->p);
  free(f);
  return 0;
}

/* Handshake, then one echo: the session is open and working. */
static void open_session(fixture *f) {
  v2_handshake(&f->p);
  v2_send_frame(&f->p, 7, "hello", 5);
  assert_int_equal(v2_expect_frames(&f->p, 7, "hello", 5, 1, 5000), 1);
}

static void echo_works(fixture *f, const char *what) {
  int before = atomic_load(&messages);
  v2_send_frame(&f->p, 9, what, strlen(what));
  assert_int_equal(v2_expect_frames(&f->p, 9, what, strlen(what), 1, 5000), 1);
  assert_int_equal(atomic_load(&messages), before + 1);
}

static void connects_echoes_and_names_the_player(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  open_session(f);
  for (int i = 0; i < 20; i++)
    v2_send_frame(&f->p, 8, "frame", 5);
  assert_int_equal(v2_expect_frames(&f->p, 8, "frame", 5, 20, 5000), 20);
  /* A ping over KCP (msg_id 0) gets its pong, as in v1. */
  v2_send_frame(&f->p, 0, "ping", 4);
  assert_int_equal(v2_expect_frames(&f->p, 0, "ping", 4, 1, 5000), 1);
  V2_EVENTUALLY(f->srv, st.v2_accept == 1 && st.sessions_opened == 1 && st.pings == 1);
  assert_true(atomic_load_explicit(&info_ready, memory_order_acquire));
  assert_int_equal(info_seen.version, 2);
  assert_int_equal(info_seen.transport, KITE_TRANSPORT_KCP);
  assert_int_equal(info_seen.client_id, 42);
  assert_string_equal((const char *)info_seen.user_data, "player=alice");
  /* Any thread, later: the same. */
  kite_session_info in;
  assert_int_equal(kite_session_get_info(f->srv, atomic_load(&last_id), &in), 0);
  assert_int_equal(in.version, 2);
  assert_int_equal(in.client_id, 42);
  /* An unreliable ping gets an unreliable pong; another unreliable
   * message goes to the handlers (the lane: test_v2_lane.c). */
  uint8_t items[64];
  int n = kite__v2item_put_unreliable(items, sizeof(items), 0, 0, 0, "pp", 2,
                                      f->p.max_unreliable);
  int m = kite__v2item_put_unreliable(items + n, sizeof(items) - (size_t)n,
                                      0x10, 1, 0, "snap", 4, f->p.max_unreliable);
  v2_send_items(&f->p, items, (size_t)(n + m));
  uint64_t end = kite__now_us() + 5000000;
  while (f->p.pongs == 0 && kite__now_us() < end)
    v2_read_one(&f->p, 20);
  assert_int_equal(f->p.pongs, 1);
  V2_EVENTUALLY(f->srv, st.v2_unreliable_pings == 1 && st.unreliable_in == 1 &&
                            st.v2_drop_unreliable == 0);
  /* Sequenced, reordered on the way: 5 and 7 delivered, 6 after 7 and a
   * copy of 5 dropped as stale, counted. */
  static const uint16_t order[] = {5, 7, 6, 5};
  for (int i = 0; i < 4; i++) {
    n = kite__v2item_put_unreliable(items, sizeof(items), 0x11,
                                    KITE__V2U_F_SEQ, order[i], "s", 1,
                                    f->p.max_unreliable);
    v2_send_items(&f->p, items, (size_t)n);
  }
  V2_EVENTUALLY(f->srv, st.unreliable_in == 3 && st.unreliable_drop_stale == 2);
  /* A handler's reply and its lane message, sent in one batch, share a
   * datagram: the item rides KCP's output (section 5). */
  v2_send_frame(&f->p, 0x20, "both", 4);
  assert_int_equal(v2_expect_frames(&f->p, 0x20, "both", 4, 1, 5000), 1);
  assert_int_equal(f->p.unreliable, 1);
  assert_int_equal(f->p.shared, 1);
}

/* Section 4's drops: each counted, never answered, the session intact. */
static void forged_replayed_and_misplaced_datagrams_are_dropped(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  /* Half-open: a datagram that verifies, from another address, is
   * dropped before any cryptography. */
  v2_handshake(&f->p);
  int other = v2_socket_on("127.0.0.3");
  uint8_t ping[16], dgram[128];
  int n = kite__v2item_put_padding(ping, sizeof(ping), 8);
  size_t len = v2_seal(&f->p, dgram, ping, (size_t)n);
  v2_sendto(other, &f->addr, dgram, len);
  V2_EVENTUALLY(f->srv, st.v2_drop_addr == 1);
  assert_int_equal(atomic_load(&connects), 0);
  /* The session opens from its own address. */
  v2_send_frame(&f->p, 7, "hello", 5);
  assert_int_equal(v2_expect_frames(&f->p, 7, "hello", 5, 1, 5000), 1);
  /* A bit flipped anywhere: the tag fails. */
  v2_send_frame(&f->p, 9, "x", 1);
  uint8_t copy[2048];
  memcpy(copy, f->p.last, f->p.last_len);
  size_t copy_len = f->p.last_len;
  assert_int_equal(v2_expect_frames(&f->p, 9, "x", 1, 1, 5000), 1);
  for (size_t at = 12; at < copy_len; at += 7) {
    uint8_t bad[2048];
    memcpy(bad, copy, copy_len);
    bad[at] ^= 0x01;
    bad[4] ^= 0x80; /* a fresh pn too, so the window lets it reach the tag */
    v2_sendto(f->p.fd, &f->addr, bad, copy_len);
  }
  size_t flips = (copy_len - 12 + 6) / 7;
  V2_EVENTUALLY(f->srv, st.v2_drop_auth == flips);
  /* The same datagram again: a duplicate. */
  v2_sendto(f->p.fd, &f->addr, copy, copy_len);
  V2_EVENTUALLY(f->srv, st.v2_drop_replay == 1);
  /* Too short, and over the mtu. */
  v2_sendto(f->p.fd, &f->addr, copy, 30);
  uint8_t big[1500] = {0};
  memcpy(big, copy, 12);
  v2_sendto(f->p.fd, &f->addr, big, sizeof(big));
  V2_EVENTUALLY(f->srv, st.v2_drop_size == 2);
  assert_int_equal(atomic_load(&messages), 2);
  assert_int_equal(atomic_load(&disconnects), 0);
  echo_works(f, "still here");
  close(other);
}

/* The v1 attack, against v2: thousands of datagrams with the
 * session's conv, from other loopback addresses. */
static void an_off_path_spoofer_delivers_and_moves_nothing(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  open_session(f);
  kite_session_info before;
  assert_int_equal(kite_session_get_info(f->srv, atomic_load(&last_id), &before), 0);
  const char *ips[] = {"127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"};
  int fds[4];
  for (int i = 0; i < 4; i++)
    fds[i] = v2_socket_on(ips[i]);
  const int total = 4000;
  for (int i = 0; i < total; i++) {
    uint8_t d[200];
    randombytes_buf(d, sizeof(d));
    kite__put_le32(d, f->p.conv);
    kite__put_le64(d + 4, (uint64_t)i + 1000); /* new numbers: reach the tag */
    v2_sendto(fds[i % 4], &f->addr, d, 31 + (size_t)(i % 160));
    if (i % 500 == 499)
      usleep(2000); /* leave the receive buffers room */
  }
  V2_EVENTUALLY(f->srv, st.v2_drop_auth + st.rx_overflows >= (uint64_t)total ||
                            st.v2_drop_auth >= (uint64_t)total);
  assert_int_equal(st.v2_migrations, 0);
  assert_int_equal(st.v2_path_challenges, 0);
  assert_int_equal(atomic_load(&messages), 1);
  kite_session_info after;
  assert_int_equal(kite_session_get_info(f->srv, atomic_load(&last_id), &after), 0);
  assert_string_equal(before.peer, after.peer);
  echo_works(f, "untouched");
  for (int i = 0; i < 4; i++)
    close(fds[i]);
}

/* CLOSE counts only inside a datagram that verifies. */
static void close_is_authenticated(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  open_session(f);
  uint8_t items[8], d[128];
  int n = kite__v2item_put_close(items, sizeof(items), KITE_CLOSE_NORMAL);
  /* Under another key: it does not verify. */
  uint8_t wrong[32];
  memcpy(wrong, f->p.keys.c2s, 32);
  wrong[0] ^= 1;
  int m = kite__v2pkt_seal(d, sizeof(d), f->p.conv, f->p.pn++, wrong, items,
                           (size_t)n);
  v2_sendto(f->p.fd, &f->addr, d, (size_t)m);
  V2_EVENTUALLY(f->srv, st.v2_drop_auth == 1);
  assert_int_equal(atomic_load(&disconnects), 0);
  echo_works(f, "alive");
  /* Sealed right: the session ends with its reason. */
  n = kite__v2item_put_close(items, sizeof(items), KITE_CLOSE_NORMAL);
  v2_send_items(&f->p, items, (size_t)n);
  V2_EVENTUALLY(f->srv, st.closed_normal == 1 && st.sessions == 0);
  assert_int_equal(atomic_load(&disconnects), 1);
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_NORMAL);
}

/* The server's close reaches the client as CLOSE, three times. */
static void server_close_is_sent_three_times(void **state) {
  fixture *f = *state;
  open_session(f);
  assert_int_equal(kite_session_close(f->srv, atomic_load(&last_id)), 0);
  uint64_t end = kite__now_us() + 5000000;
  while (f->p.closes < 3 && kite__now_us() < end) {
    v2_read_one(&f->p, 20);
    kite__kcp_flush(f->p.kcp, kite__now_ms());
  }
  assert_int_equal(f->p.closes, 3);
  assert_int_equal(f->p.close_reason, KITE_CLOSE_KICKED);
}

/* The client's socket moves to another address mid-session (a NAT
 * rebinding): the session follows, the challenge is answered, the new
 * address validated. */
static void a_client_that_moves_keeps_its_session(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  open_session(f);
  int old = f->p.fd;
  f->p.fd = v2_socket_on("127.0.0.2");
  echo_works(f, "from the new address");
  V2_EVENTUALLY(f->srv, st.v2_migrations == 1 && st.v2_path_validated == 1);
  assert_true(f->p.challenges >= 1);
  kite_session_info in;
  assert_int_equal(kite_session_get_info(f->srv, atomic_load(&last_id), &in), 0);
  assert_true(strncmp(in.peer, "127.0.0.2:", 10) == 0);
  for (int i = 0; i < 10; i++)
    v2_send_frame(&f->p, 8, "more", 4);
  assert_int_equal(v2_expect_frames(&f->p, 8, "more", 4, 10, 5000), 10);
  /* Past the 2 s fallback: still here, since the address was validated. */
  v2_pump(&f->p, 2300);
  echo_works(f, "validated");
  assert_int_equal(v2_stats(f->srv).v2_path_fallbacks, 0);
  close(old);
}

/* An attacker on the path copies the client's datagram and races it from
 * its own address: the session moves there for about a round trip, the
 * attacker is sent fewer bytes than it sent, and the challenge to the
 * validated address brings the session back. */
static void a_raced_copy_gets_less_than_it_sent_and_the_session_returns(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  open_session(f);
  int atk = v2_socket_on("127.0.0.9");
  /* The client's next datagram, sealed but held back: the attacker's copy
   * arrives first. */
  uint8_t items[16];
  int n = kite__v2item_put_padding(items, sizeof(items), 10);
  uint8_t d[128];
  size_t len = v2_seal(&f->p, d, items, (size_t)n);
  v2_sendto(atk, &f->addr, d, len);
  V2_EVENTUALLY(f->srv, st.v2_migrations == 1);
  v2_sendto(f->p.fd, &f->addr, d, len); /* the original: now a duplicate */
  /* The client reads its one challenge at its real address and answers
   * at once: its answer raises top and brings the session home. */
  uint64_t end = kite__now_us() + 5000000;
  while (f->p.challenges == 0 && kite__now_us() < end)
    v2_read_one(&f->p, 20);
  assert_true(f->p.challenges >= 1);
  V2_EVENTUALLY(f->srv, st.v2_migrations == 2);
  echo_works(f, "home again");
  /* What reached the attacker: fewer bytes than it sent. */
  size_t got = 0;
  uint8_t buf[2048];
  int r;
  while ((r = v2_recv_raw(atk, buf, sizeof(buf), 300)) > 0)
    got += (size_t)r;
  assert_true(got < len);
  kite_session_info in;
  assert_int_equal(kite_session_get_info(f->srv, atomic_load(&last_id), &in), 0);
  assert_true(strncmp(in.peer, "127.0.0.1:", 10) == 0);
  assert_int_equal(atomic_load(&disconnects), 0);
  close(atk);
}

/* A copy that is never answered for: after 2 s the peer returns to the
 * validated address on its own. */
static void an_unanswered_move_falls_back(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  open_session(f);
  f->p.answer_challenges = false;
  int atk = v2_socket_on("127.0.0.10");
  uint8_t items[16], d[128];
  int n = kite__v2item_put_padding(items, sizeof(items), 10);
  size_t len = v2_seal(&f->p, d, items, (size_t)n);
  v2_sendto(atk, &f->addr, d, len);
  V2_EVENTUALLY(f->srv, st.v2_migrations == 1);
  /* Until validated, nothing unreliable goes to the new address. */
  assert_int_equal(kite_session_send_unreliable(f->srv, atomic_load(&last_id),
                                                0x30, "x", 1, 0),
                   0);
  V2_EVENTUALLY(f->srv, st.unreliable_drop_path == 1 && st.unreliable_out == 0);
  V2_EVENTUALLY(f->srv, st.v2_path_fallbacks == 1);
  f->p.answer_challenges = true;
  echo_works(f, "fell back");
  assert_int_equal(v2_stats(f->srv).v2_migrations, 1); /* no move: home */
  close(atk);
}

/* Section 9: the numbers 2^48 - 3 on carry CLOSE 7 and the session ends
 * with reason 7; nothing is ever sealed at 2^48. */
static void the_key_limit_closes_with_reason_7(void **state) {
  fixture *f = *state;
  kite_server_stats st;
  atomic_store(&near_the_limit, 1);
  v2_handshake(&f->p);
  /* One echo under the last ordinary number, then the next one. */
  v2_send_frame(&f->p, 7, "hello", 5);
  assert_int_equal(v2_expect_frames(&f->p, 7, "hello", 5, 1, 5000), 1);
  v2_send_frame(&f->p, 7, "again", 5);
  uint64_t end = kite__now_us() + 5000000;
  while (f->p.closes == 0 && kite__now_us() < end) {
    v2_read_one(&f->p, 20);
    kite__kcp_flush(f->p.kcp, kite__now_ms());
  }
  assert_true(f->p.closes >= 1);
  assert_int_equal(f->p.close_reason, KITE__CLOSE_KEY_EXHAUSTED);
  V2_EVENTUALLY(f->srv, st.v2_closed_key_exhausted == 1 && st.sessions == 0);
  assert_int_equal(atomic_load(&last_reason), KITE__CLOSE_KEY_EXHAUSTED);
  /* The highest number the client saw is below 2^48. */
  assert_true(f->p.win.have_top && f->p.win.top < KITE__V2_PN_LIMIT);
  assert_true(f->p.win.top >= KITE__V2_PN_CLOSING);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(connects_echoes_and_names_the_player, setup, teardown),
      cmocka_unit_test_setup_teardown(forged_replayed_and_misplaced_datagrams_are_dropped, setup, teardown),
      cmocka_unit_test_setup_teardown(an_off_path_spoofer_delivers_and_moves_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(close_is_authenticated, setup, teardown),
      cmocka_unit_test_setup_teardown(server_close_is_sent_three_times, setup, teardown),
      cmocka_unit_test_setup_teardown(a_client_that_moves_keeps_its_session, setup, teardown),
      cmocka_unit_test_setup_teardown(a_raced_copy_gets_less_than_it_sent_and_the_session_returns, setup, teardown),
      cmocka_unit_test_setup_teardown(an_unanswered_move_falls_back, setup, teardown),
      cmocka_unit_test_setup_teardown(the_key_limit_closes_with_reason_7, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
