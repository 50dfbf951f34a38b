/*
 * The client against a scripted fake server: a second UDP socket on
 * 127.0.0.1 port 0 that the test drives packet by packet, with a KCP block
 * of its own once a session is accepted. The client's clock is a fake one
 * the test moves, so retransmission, ping, idle and dead-link timings are
 * exact; only datagram delivery is real (loopback).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_udp.h"

/* ---- tests ---- */

static void config_and_create(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  assert_int_equal(cfg.max_sessions, 65536);
  assert_int_equal(cfg.mtu, 1400);
  assert_int_equal(cfg.snd_wnd, 128);
  assert_int_equal(cfg.rcv_wnd, 128);
  assert_int_equal(cfg.interval_ms, 10);
  assert_int_equal(cfg.retry_ms, 250);
  assert_int_equal(cfg.retries, 8);
  assert_int_equal(cfg.ping_ms, 0);
  assert_int_equal(cfg.send_queue_max, 1024);
  assert_int_equal(cfg.dead_link_ms, 15000);

  kite_client *c;
  cfg.mtu = 10;
  assert_int_equal(kite_client_create(&c, &cfg), KITE_EINVAL);
  assert_null(c);
  cfg.mtu = 1400;
  cfg.max_sessions = 0;
  assert_int_equal(kite_client_create(&c, &cfg), KITE_EINVAL);
  cfg.max_sessions = 4;
  cfg.bind_addr = "not an address";
  assert_int_equal(kite_client_create(&c, &cfg), KITE_EINVAL);
  cfg.bind_addr = NULL;

  c = client_new(&cfg, &e);
  assert_true(kite_client_fd(c) >= 0);
  assert_int_equal(kite_client_timeout_ms(c), -1);
  kite_conn *conn = (kite_conn *)1;
  assert_int_equal(kite_client_connect(c, "nonsense", NULL, &conn),
                   KITE_EINVAL);
  assert_null(conn);
  assert_int_equal(kite_client_connect(c, "127.0.0.1:0", NULL, NULL),
                   KITE_EINVAL);
  assert_int_equal(kite_client_poll(c, 0), 0);
  assert_int_equal(e.disconnects, 0);
  kite_client_destroy(c);
  kite_client_destroy(NULL);

  assert_string_equal(kite_client_reason_name(KITE_CONNECT_TIMEOUT),
                       "connect timeout");
  assert_string_equal(kite_client_reason_name(KITE_CLOSE_IDLE), "idle timeout");
  assert_int_equal(KITE_CONNECT_REJECTED(4), KITE_CONNECT_REJECTED_COOKIE);
}

static void hello_is_64_padded_bytes_with_a_random_nonce(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  kite_conn *a, *b;
  int ua, ub;
  assert_int_equal(kite_client_connect(c, s->addr, &ua, &a), 0);
  assert_int_equal(kite_client_connect(c, s->addr, &ub, &b), 0);
  assert_ptr_equal(kite_conn_user(a), &ua);
  /* Queued outside poll: the next poll sends them before it waits. */
  assert_int_equal(kite_client_timeout_ms(c), 0);
  tick(c);
  /* The retransmission is due in 250 ms; the wheel may wake earlier to
   * cascade it down a level, never later. */
  int t = kite_client_timeout_ms(c);
  assert_true(t > 0 && t <= 250);
  assert_int_equal(srv_pump(s, 2), 2);
  assert_int_equal(s->nctrl, 2);
  for (int i = 0; i < 2; i++) {
    static const uint8_t hdr[8] = {0x4B, 0x49, 0x54, 0x45, 1, 1, 0, 0};
    assert_int_equal(s->ctrl_len[i], 64);
    assert_memory_equal(s->ctrl_raw[i], hdr, 8);
    for (int j = 16; j < 64; j++)
      assert_int_equal(s->ctrl_raw[i][j], 0);
  }
  assert_memory_not_equal(s->ctrl[0].nonce, s->ctrl[1].nonce, 8);
  /* Sending on a session that is not open yet is refused. */
  assert_int_equal(kite_conn_send(a, 1, "x", 1), KITE_ESTATE);
  assert_int_equal(kite_conn_ping(a), KITE_ESTATE);
  kite_conn_stats st;
  kite_conn_get_stats(a, &st);
  assert_int_equal(st.conv, 0);
  kite_client_destroy(c); /* nothing open: nothing sent, no callback */
  assert_int_equal(srv_pump(s, 0), 0);
  assert_int_equal(e.disconnects, 0);
  srv_free(s);
}

static void hello_retransmits_then_times_out(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.retries = 3;
  fake_now = 1000;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  kite_conn *conn;
  assert_int_equal(kite_client_connect(c, s->addr, NULL, &conn), 0);
  tick(c);
  assert_int_equal(srv_pump(s, 1), 1);
  uint8_t nonce[8];
  memcpy(nonce, s->ctrl[0].nonce, 8);
  /* One send, then 3 retransmissions 250 ms apart, same nonce each time. */
  for (int k = 1; k <= 3; k++) {
    fake_now = 1000 + 250 * (uint32_t)k - 1;
    tick(c);
    assert_int_equal(srv_pump(s, 0), 0);
    assert_int_equal(kite_client_timeout_ms(c), 1);
    fake_now++;
    tick(c);
    assert_int_equal(srv_pump(s, 1), 1);
    assert_int_equal(s->ctrl[k].type, KITE__CTRL_HELLO);
    assert_memory_equal(s->ctrl[k].nonce, nonce, 8);
  }
  /* retry_ms after the last copy: given up, reported once. */
  fake_now = 1000 + 1000 - 1;
  tick(c);
  assert_int_equal(e.disconnects, 0);
  fake_now++;
  tick(c);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CONNECT_TIMEOUT);
  assert_ptr_equal(e.last_conn, conn);
  assert_int_equal(e.send_in_disconnect_rc, KITE_ESTATE);
  fake_now += 10000;
  tick(c);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(srv_pump(s, 0), 0); /* no HELLO after giving up */
  assert_int_equal(kite_client_timeout_ms(c), -1);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.hello_sent, 4);
  assert_int_equal(st.connect_timeouts, 1);
  assert_int_equal(st.sessions, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void connect_retransmits_and_ignores_a_second_challenge(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.retries = 2;
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  tick(c);
  srv_pump(s, 1);
  uint8_t nonce[8];
  memcpy(nonce, s->ctrl[0].nonce, 8);

  fake_now = 100;
  kite__ctrl k = mk(KITE__CTRL_CHALLENGE, nonce);
  memcpy(k.cookie, COOKIE, 16);
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(srv_pump(s, 1), 1);
  assert_int_equal(s->ctrl[1].type, KITE__CTRL_CONNECT);
  assert_memory_equal(s->ctrl[1].cookie, COOKIE, 16);

  /* A second CHALLENGE (for a retransmitted HELLO) changes nothing. */
  k.cookie[0] ^= 0xFF;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(srv_pump(s, 0), 0);

  /* CONNECT, not HELLO, is retransmitted, with the first cookie. */
  fake_now = 350;
  tick(c);
  assert_int_equal(srv_pump(s, 1), 1);
  assert_int_equal(s->ctrl[2].type, KITE__CTRL_CONNECT);
  assert_memory_equal(s->ctrl[2].cookie, COOKIE, 16);
  fake_now = 600;
  tick(c);
  assert_int_equal(srv_pump(s, 1), 1);
  assert_int_equal(s->ctrl[3].type, KITE__CTRL_CONNECT);
  fake_now = 849;
  tick(c);
  assert_int_equal(e.disconnects, 0);
  fake_now = 850;
  tick(c);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CONNECT_TIMEOUT);
  assert_int_equal(srv_pump(s, 0), 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void session_opens_pings_and_carries_frames(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 5000;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  int user;
  kite_conn *conn;
  assert_int_equal(kite_client_connect(c, s->addr, &user, &conn), 0);
  fsess *f = handshake(c, s, &e, 0x11223344, 30000, 65536);
  assert_ptr_equal(e.last_conn, conn);
  assert_ptr_equal(e.last_conn_user, &user);
  assert_int_equal(e.poll_in_callback_rc, KITE_ESTATE);

  /* The server's pong (sent by srv_pump) arrives 7 ms later: the RTT. */
  fake_now += 7;
  deliver(c);
  kite_conn_stats st;
  kite_conn_get_stats(conn, &st);
  assert_int_equal(st.last_rtt_ms, 7);
  assert_int_equal(st.conv, 0x11223344);

  /* Client to server. */
  assert_int_equal(kite_conn_send(conn, 7, "hello", 5), 0);
  assert_int_equal(kite_client_timeout_ms(c), 0); /* queued outside poll */
  tick(c);
  srv_pump(s, 1);
  int n = f->nframes;
  assert_int_equal(f->h[n - 1].msg_id, 7);
  assert_int_equal(f->h[n - 1].len, 5);
  assert_memory_equal(f->body[n - 1], "hello", 5);
  assert_int_equal(f->h[n - 1].flags, 0);

  /* Server to client, with and without a CRC, and an empty body. */
  fs_send_frame(f, 9, 0, "world", 5, true);
  deliver(c);
  assert_int_equal(e.messages, 1);
  assert_int_equal(e.msg_id, 9);
  assert_int_equal(e.len, 5);
  assert_memory_equal(e.body, "world", 5);
  fs_send_frame(f, 10, 0, NULL, 0, false);
  deliver(c);
  assert_int_equal(e.messages, 2);
  assert_int_equal(e.msg_id, 10);
  assert_int_equal(e.len, 0);

  /* A frame larger than a segment, split across KCP messages. */
  static uint8_t big[5000];
  for (size_t i = 0; i < sizeof(big); i++)
    big[i] = (uint8_t)(i * 7);
  fs_send_frame(f, 11, 0, big, sizeof(big), true);
  for (int i = 0; i < 10 && e.messages < 3; i++)
    deliver(c); /* four segments: should they come in two batches */
  assert_int_equal(e.messages, 3);
  assert_int_equal(e.msg_id, 11);

  /* The server pings: the client answers with a pong of the same body,
   * and the application hears nothing of it. */
  int before = f->nframes;
  fs_send_frame(f, 0, 0, "abc", 3, false);
  deliver(c);
  assert_int_equal(e.messages, 3);
  srv_pump(s, 1);
  assert_true(f->nframes > before);
  bool pong = false;
  for (int i = before; i < f->nframes; i++)
    if (f->h[i].msg_id == 0 && (f->h[i].flags & KITE__FRAME_F_PONG) &&
        f->h[i].len == 3 && memcmp(f->body[i], "abc", 3) == 0)
      pong = true;
  assert_true(pong);

  /* A duplicate ACCEPT (the first was "lost") is ignored. */
  kite__ctrl k = mk_accept(s->ctrl[0].nonce, 0x11223344, 30000, 65536);
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.connects, 1);

  kite_conn_get_stats(conn, &st);
  assert_int_equal(st.frames_in, 3);
  assert_int_equal(st.frames_out, 1);
  assert_int_equal(e.disconnects, 0);
  kite_client_destroy(c);
  assert_int_equal(e.disconnects, 0);
  srv_free(s);
}

static void send_checks_its_arguments_and_the_queue(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.send_queue_max = 8;
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  kite_conn *conn;
  assert_int_equal(kite_client_connect(c, s->addr, NULL, &conn), 0);
  fsess *f = handshake(c, s, &e, 0x0A0B0C0D, 30000, 100);
  f->silent = true;
  assert_int_equal(kite_conn_send(conn, 0, "x", 1), KITE_EINVAL);
  assert_int_equal(kite_conn_send(conn, 0xFF00, "x", 1), KITE_EINVAL);
  assert_int_equal(kite_conn_send(conn, 0xFFFF, "x", 1), KITE_EINVAL);
  assert_int_equal(kite_conn_send(conn, 1, NULL, 5), KITE_EINVAL);
  static uint8_t body[4096];
  assert_int_equal(kite_conn_send(conn, 1, body, 101), KITE_EMSGSIZE);
  assert_int_equal(kite_conn_send(conn, 0xFEFF, body, 100), 0);
  /* Nothing acked: the window holds 128 segments, then the queue 8. */
  int rc = 0, sent = 0;
  for (int i = 0; i < 1000 && rc == 0; i++) {
    rc = kite_conn_send(conn, 1, body, 100);
    if (rc == 0)
      sent++;
    if (i % 16 == 0)
      tick(c); /* move queued segments into the window */
  }
  assert_int_equal(rc, KITE_EFULL);
  assert_true(sent >= 8);
  kite_client_destroy(c);
  srv_free(s);
}

static void reject_ends_the_handshake_with_its_reason(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  for (int i = 0; i < 3; i++)
    assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  tick(c);
  assert_int_equal(srv_pump(s, 3), 3);
  uint8_t n0[8], n1[8], n2[8];
  memcpy(n0, s->ctrl[0].nonce, 8);
  memcpy(n1, s->ctrl[1].nonce, 8);
  memcpy(n2, s->ctrl[2].nonce, 8);

  /* A REJECT for a nonce nobody holds is dropped. */
  uint8_t other[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  kite__ctrl k = mk(KITE__CTRL_REJECT, other);
  k.reason = 1;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.drop_unknown, 1);

  /* Full, on HELLO. */
  k = mk(KITE__CTRL_REJECT, n0);
  k.reason = 1;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CONNECT_REJECTED_FULL);

  /* Cookie, on CONNECT. */
  k = mk(KITE__CTRL_CHALLENGE, n1);
  srv_send_ctrl(s, &k);
  deliver(c);
  k = mk(KITE__CTRL_REJECT, n1);
  k.reason = 4;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 2);
  assert_int_equal(e.reason, KITE_CONNECT_REJECTED_COOKIE);

  /* A server of version 2 rejects in its own header. */
  k = mk(KITE__CTRL_REJECT, n2);
  k.version = 2;
  k.reason = 2;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 3);
  assert_int_equal(e.reason, KITE_CONNECT_REJECTED_VERSION);

  /* A late REJECT for a finished handshake finds nobody. */
  k = mk(KITE__CTRL_REJECT, n0);
  k.reason = 3;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 3);
  srv_pump(s, 1);
  assert_int_equal(srv_count_ctrl(s, KITE__CTRL_CLOSE), 0);
  kite_client_stats_get(c, &st);
  assert_int_equal(st.rejected, 3);
  assert_int_equal(st.sessions, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void only_the_server_address_is_heard(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  fsrv *evil = srv_new();
  kite_conn *conn;
  assert_int_equal(kite_client_connect(c, s->addr, NULL, &conn), 0);
  tick(c);
  srv_pump(s, 1);
  uint8_t nonce[8];
  memcpy(nonce, s->ctrl[0].nonce, 8);
  evil->client = s->client;

  /* The right nonce from another port: dropped, still in HELLO. */
  kite__ctrl k = mk(KITE__CTRL_CHALLENGE, nonce);
  srv_send_ctrl(evil, &k);
  deliver(c);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.drop_wrong_addr, 1);
  assert_int_equal(srv_pump(s, 0), 0);
  fake_now = 250;
  tick(c);
  srv_pump(s, 1);
  assert_int_equal(s->ctrl[1].type, KITE__CTRL_HELLO);

  /* Open the session for real, then try segments and CLOSE from evil. */
  k = mk(KITE__CTRL_CHALLENGE, nonce);
  srv_send_ctrl(s, &k);
  deliver(c);
  k = mk_accept(nonce, 0x55667788, 30000, 65536);
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.connects, 1);
  fsess *f = srv_session(s, 0x55667788, TOKEN);
  srv_pump(s, 1);

  fsess *ef = srv_session(evil, 0x55667788, TOKEN);
  fs_send_frame(ef, 5, 0, "evil", 4, false);
  deliver(c);
  assert_int_equal(e.messages, 0);
  k = mk(KITE__CTRL_CLOSE, NULL);
  k.conv = 0x55667788;
  memcpy(k.token, TOKEN, 8);
  srv_send_ctrl(evil, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 0);
  kite_client_stats_get(c, &st);
  assert_int_equal(st.drop_unknown, 2);

  fs_send_frame(f, 5, 0, "good", 4, false);
  deliver(c);
  assert_int_equal(e.messages, 1);
  assert_memory_equal(e.body, "good", 4);
  kite_client_destroy(c);
  srv_free(s);
  srv_free(evil);
}

static void sessions_are_demuxed_by_conv_on_one_socket(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  int ua, ub;
  kite_conn *a, *b;
  assert_int_equal(kite_client_connect(c, s->addr, &ua, &a), 0);
  /* Convs that share their low byte, as a sharded server's may. */
  fsess *fa = handshake(c, s, &e, 0x01000003, 30000, 65536);
  assert_int_equal(kite_client_connect(c, s->addr, &ub, &b), 0);
  fsess *fb = handshake(c, s, &e, 0x02000003, 30000, 65536);
  fs_send_frame(fb, 21, 0, "to b", 4, false);
  deliver(c);
  assert_ptr_equal(e.last_conn, b);
  assert_ptr_equal(e.last_conn_user, &ub);
  assert_int_equal(e.msg_id, 21);
  fs_send_frame(fa, 22, 0, "to a", 4, false);
  deliver(c);
  assert_ptr_equal(e.last_conn, a);
  assert_ptr_equal(e.last_conn_user, &ua);
  assert_int_equal(e.msg_id, 22);
  assert_int_equal(kite_conn_send(a, 3, "A", 1), 0);
  assert_int_equal(kite_conn_send(b, 4, "B", 1), 0);
  tick(c);
  int na = fa->nframes, nb = fb->nframes;
  srv_pump(s, 2);
  assert_int_equal(fa->nframes, na + 1);
  assert_int_equal(fb->nframes, nb + 1);
  assert_int_equal(fa->h[na].msg_id, 3);
  assert_int_equal(fb->h[nb].msg_id, 4);

  /* A CLOSE for a ends a only. */
  kite__ctrl k = mk(KITE__CTRL_CLOSE, NULL);
  k.conv = 0x01000003;
  memcpy(k.token, TOKEN, 8);
  k.reason = KITE_CLOSE_KICKED;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 1);
  assert_ptr_equal(e.last_conn_user, &ua);
  assert_int_equal(e.reason, KITE_CLOSE_KICKED);
  assert_int_equal(kite_conn_send(b, 4, "B", 1), 0);
  kite_client_destroy(c);
  srv_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(config_and_create),
      cmocka_unit_test(hello_is_64_padded_bytes_with_a_random_nonce),
      cmocka_unit_test(hello_retransmits_then_times_out),
      cmocka_unit_test(connect_retransmits_and_ignores_a_second_challenge),
      cmocka_unit_test(session_opens_pings_and_carries_frames),
      cmocka_unit_test(send_checks_its_arguments_and_the_queue),
      cmocka_unit_test(reject_ends_the_handshake_with_its_reason),
      cmocka_unit_test(only_the_server_address_is_heard),
      cmocka_unit_test(sessions_are_demuxed_by_conv_on_one_socket),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
