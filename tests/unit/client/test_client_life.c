/*
 * The client against the scripted fake server of fake_udp.h, continued:
 * how sessions end (CLOSE both ways, destroy, idle, frame errors, dead
 * link), callbacks that close and connect, limits, and the real clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_udp.h"

static void server_close_needs_the_token(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  kite_conn *conn;
  assert_int_equal(kite_client_connect(c, s->addr, NULL, &conn), 0);
  handshake(c, s, &e, 0x12345678, 30000, 65536);
  kite__ctrl k = mk(KITE__CTRL_CLOSE, NULL);
  k.conv = 0x12345678;
  memcpy(k.token, TOKEN, 8);
  k.token[7] ^= 1;
  k.reason = KITE_CLOSE_SHUTDOWN;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.drop_close, 1);

  k.token[7] ^= 1;
  int before = s->nctrl;
  srv_send_ctrl(s, &k);
  deliver(c);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CLOSE_SHUTDOWN);
  assert_ptr_equal(e.last_conn, conn);
  assert_int_equal(e.send_in_disconnect_rc, KITE_ESTATE);
  srv_pump(s, 0);
  assert_int_equal(s->nctrl, before); /* no CLOSE back */
  kite_client_stats_get(c, &st);
  assert_int_equal(st.closed_by_server, 1);
  assert_int_equal(st.sessions, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void client_close_sends_close_three_times(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  kite_conn *conn;
  assert_int_equal(kite_client_connect(c, s->addr, NULL, &conn), 0);
  fsess *f = handshake(c, s, &e, 0x0BADF00D, 30000, 65536);
  f->silent = true;
  int nf = f->nframes;
  assert_int_equal(kite_conn_send(conn, 42, "last", 4), 0);
  assert_int_equal(kite_conn_close(conn), 0);
  assert_int_equal(kite_conn_close(conn), KITE_ECLOSED);
  assert_int_equal(kite_conn_send(conn, 42, "more", 4), KITE_ESTATE);
  assert_int_equal(e.disconnects, 0); /* not before the next poll */
  assert_int_equal(kite_client_timeout_ms(c), 0);
  /* Outside poll, the tail and the CLOSEs leave at once. */
  int before = s->nctrl;
  srv_pump(s, 4);
  tick(c);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  srv_pump(s, 0);
  /* The frame queued before the close went out once, ahead of CLOSE. */
  assert_int_equal(f->nframes, nf + 1);
  assert_int_equal(f->h[nf].msg_id, 42);
  assert_int_equal(s->nctrl - before, 3);
  for (int i = before; i < s->nctrl; i++) {
    assert_int_equal(s->ctrl[i].type, KITE__CTRL_CLOSE);
    assert_int_equal(s->ctrl_len[i], 21);
    assert_int_equal(s->ctrl[i].conv, 0x0BADF00D);
    assert_memory_equal(s->ctrl[i].token, TOKEN, 8);
    assert_int_equal(s->ctrl[i].reason, 0);
  }
  kite_client_destroy(c);
  srv_free(s);
}

static void destroy_closes_open_sessions_without_callbacks(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  handshake(c, s, &e, 0x00C0FFEE, 30000, 65536);
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0); /* half */
  tick(c);
  int before = s->nctrl;
  srv_pump(s, 1);
  before = s->nctrl;
  kite_client_destroy(c);
  srv_pump(s, 3);
  assert_int_equal(s->nctrl - before, 3);
  assert_int_equal(srv_count_ctrl(s, KITE__CTRL_CLOSE), 3);
  assert_int_equal(s->ctrl[s->nctrl - 1].conv, 0x00C0FFEE);
  assert_int_equal(e.disconnects, 0);
  srv_free(s);
}

static void idle_server_times_out_and_pings_keep_alive(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  /* idle 3000: pings every 1000. The server answers: nothing expires. */
  fsess *f = handshake(c, s, &e, 0x7777, 3000, 65536);
  while (fake_now < 10000) {
    fake_now += 10;
    tick(c);
    srv_pump(s, 0);
  }
  deliver(c); /* the last pong or ack, if one is in flight */
  assert_int_equal(e.disconnects, 0);
  int pings = 0;
  for (int i = 0; i < f->nframes; i++)
    pings += f->h[i].msg_id == 0 && !(f->h[i].flags & KITE__FRAME_F_PONG);
  assert_int_equal(pings, 11); /* at 0, 1000, ..., 10000 */

  /* The server falls silent: idle_timeout_ms after the last datagram the
   * client gives up, with CLOSE reason 1. */
  f->silent = true;
  uint32_t quiet_from = fake_now;
  int before = s->nctrl;
  while (e.disconnects == 0 && fake_now < quiet_from + 5000) {
    fake_now += 10;
    tick(c);
    srv_pump(s, 0);
  }
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CLOSE_IDLE);
  assert_true(fake_now - quiet_from <= 3000);
  assert_true(fake_now - quiet_from >= 2900);
  srv_pump(s, 3);
  assert_int_equal(s->nctrl - before, 3);
  assert_int_equal(s->ctrl[before].type, KITE__CTRL_CLOSE);
  assert_int_equal(s->ctrl[before].reason, KITE_CLOSE_IDLE);
  kite_client_destroy(c);
  srv_free(s);
}

static void idle_session_wakes_only_for_its_ping(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  fsess *f = handshake(c, s, &e, 0x8888, 60000, 65536); /* ping every 15000 */
  fake_now = 20;
  deliver(c); /* the pong and ack: KCP is idle after this */
  srv_pump(s, 0);
  /* Jump from wake-up to wake-up: a few (the wheel cascades a far timer
   * down its levels), nothing sent, until the ping at 15000. */
  int wakes = 0;
  while (fake_now < 15000) {
    int t = kite_client_timeout_ms(c);
    assert_true(t > 0);
    fake_now += (uint32_t)t;
    tick(c);
    wakes++;
    if (fake_now < 15000)
      assert_int_equal(srv_pump(s, 0), 0);
  }
  assert_int_equal(fake_now, 15000);
  assert_true(wakes <= 4);
  srv_pump(s, 1);
  assert_int_equal(f->h[f->nframes - 1].msg_id, 0);
  assert_int_equal(f->nframes, 2);
  kite_client_destroy(c);
  srv_free(s);
}

static void frame_errors_close_with_reason_2(void **state) {
  (void)state;
  for (int variant = 0; variant < 3; variant++) {
    events e = {0};
    kite_client_config cfg;
    config(&cfg, &e);
    fake_now = 0;
    kite_client *c = client_new(&cfg, &e);
    fsrv *s = srv_new();
    assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
    fsess *f = handshake(c, s, &e, 0x2222, 30000, 1000);
    int before = s->nctrl;
    if (variant == 0) { /* CRC mismatch */
      uint8_t frame[KITE__FRAME_HDR + 4];
      kite__frame_header(frame, 5, 0, "body", 4, true);
      memcpy(frame + KITE__FRAME_HDR, "bodY", 4);
      assert_int_equal(kite__kcp_send(f->kcp, frame, sizeof(frame)), 0);
      kite__kcp_flush(f->kcp, fake_now);
    } else if (variant == 1) { /* pong flag on an application msg_id */
      fs_send_frame(f, 5, KITE__FRAME_F_PONG, "x", 1, false);
    } else { /* over max_frame (the smaller of ours and the server's) */
      static uint8_t big[1001];
      fs_send_frame(f, 5, 0, big, sizeof(big), false);
    }
    deliver(c);
    assert_int_equal(e.messages, 0);
    assert_int_equal(e.disconnects, 1);
    assert_int_equal(e.reason, KITE_CLOSE_PROTOCOL);
    srv_pump(s, 3);
    assert_int_equal(srv_count_ctrl(s, KITE__CTRL_CLOSE), 3);
    assert_int_equal(s->ctrl[s->nctrl - 1].reason, KITE_CLOSE_PROTOCOL);
    assert_int_equal(s->ctrl[s->nctrl - 1].conv, 0x2222);
    (void)before;
    kite_client_destroy(c);
    srv_free(s);
  }
}

static void dead_link_closes_with_reason_5(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.dead_link_ms = 2000;
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  /* No idle timeout from this server: only KCP can tell. */
  fsess *f = handshake(c, s, &e, 0x3333, 0, 65536);
  f->silent = true;
  /* The opening ping was acked by handshake()'s pump; a new one is not. */
  fake_now = 10;
  deliver(c);
  kite_conn_ping(e.last_conn);
  while (e.disconnects == 0 && fake_now < 10000) {
    fake_now += 10;
    tick(c);
    srv_pump(s, 0);
  }
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CLOSE_DEAD_LINK);
  assert_true(fake_now >= 2000 && fake_now <= 2200);
  srv_pump(s, 3);
  assert_int_equal(srv_count_ctrl(s, KITE__CTRL_CLOSE), 3);
  assert_int_equal(s->ctrl[s->nctrl - 1].reason, KITE_CLOSE_DEAD_LINK);
  kite_client_destroy(c);
  srv_free(s);
}

static void callbacks_may_close_and_connect(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  fsess *f = handshake(c, s, &e, 0x4444, 30000, 65536);
  /* Two frames in one datagram: the first one's callback closes, so the
   * second is never delivered, and on_disconnect follows in this poll. */
  e.close_in_message = true;
  e.reconnect_to = s->addr;
  uint8_t two[2 * KITE__FRAME_HDR + 2];
  kite__frame_header(two, 7, 0, "1", 1, false);
  two[KITE__FRAME_HDR] = '1';
  kite__frame_header(two + KITE__FRAME_HDR + 1, 8, 0, "2", 1, false);
  two[2 * KITE__FRAME_HDR + 1] = '2';
  assert_int_equal(kite__kcp_send(f->kcp, two, sizeof(two)), 0);
  kite__kcp_flush(f->kcp, fake_now);
  int before = s->nctrl;
  deliver(c);
  assert_int_equal(e.messages, 1);
  assert_int_equal(e.msg_id, 7);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  /* The CLOSE, and the HELLO of the session on_disconnect started. */
  srv_pump(s, 4);
  int at = before;
  assert_true(srv_find_ctrl(s, &at, KITE__CTRL_CLOSE) >= 0);
  at = before;
  assert_true(srv_find_ctrl(s, &at, KITE__CTRL_HELLO) >= 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.sessions, 1);
  kite_client_destroy(c);
  srv_free(s);
}

static void max_sessions_is_a_hard_limit(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.max_sessions = 2;
  cfg.retries = 0;
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), KITE_EFULL);
  /* Both time out; their slots come back before on_disconnect runs, so
   * the first callback may reconnect at the limit. */
  e.reconnect_to = s->addr;
  fake_now = 250;
  tick(c);
  assert_int_equal(e.disconnects, 2);
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), KITE_EFULL);
  kite_client_destroy(c);
  srv_free(s);
}

static void ipv4_socket_works_too(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.bind_addr = "127.0.0.1:0";
  fake_now = 0;
  kite_client *c = client_new(&cfg, &e);
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, "[::1]:7001", NULL, NULL),
                   KITE_EINVAL);
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  fsess *f = handshake(c, s, &e, 0x9999, 30000, 65536);
  fs_send_frame(f, 77, 0, "v4", 2, false);
  deliver(c);
  assert_int_equal(e.msg_id, 77);
  kite_client_destroy(c);
  srv_free(s);
}

static void real_clock_poll_waits_for_the_timer(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.retry_ms = 20;
  cfg.retries = 1;
  kite_client *c;
  assert_int_equal(kite_client_create(&c, &cfg), 0);
  e.cli = c;
  fsrv *s = srv_new();
  assert_int_equal(kite_client_connect(c, s->addr, NULL, NULL), 0);
  int polls = 0;
  while (e.disconnects == 0 && polls < 100) {
    assert_int_equal(kite_client_poll(c, 1000), 0);
    polls++;
  }
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CONNECT_TIMEOUT);
  /* A few wake-ups (sends, the retransmission, the timeout), not a spin
   * and not a 1000 ms sleep. */
  assert_true(polls <= 10);
  assert_int_equal(srv_pump(s, 2), 2);
  assert_int_equal(kite_client_poll(c, 0), 0);
  kite_client_destroy(c);
  srv_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_close_needs_the_token),
      cmocka_unit_test(client_close_sends_close_three_times),
      cmocka_unit_test(destroy_closes_open_sessions_without_callbacks),
      cmocka_unit_test(idle_server_times_out_and_pings_keep_alive),
      cmocka_unit_test(idle_session_wakes_only_for_its_ping),
      cmocka_unit_test(frame_errors_close_with_reason_2),
      cmocka_unit_test(dead_link_closes_with_reason_5),
      cmocka_unit_test(callbacks_may_close_and_connect),
      cmocka_unit_test(max_sessions_is_a_hard_limit),
      cmocka_unit_test(ipv4_socket_works_too),
      cmocka_unit_test(real_clock_poll_waits_for_the_timer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
