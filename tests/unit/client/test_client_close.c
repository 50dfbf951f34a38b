/*
 * A server's CLOSE (PROTOCOL.md section 2) after data: what arrived before
 * the CLOSE is delivered, in order, and then the session ends with the
 * CLOSE's reason, even when all of it comes in one receive batch.
 * Against the fake server of fake_udp.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_udp.h"

/* on_message that keeps every msg_id, in order, and what happened first. */
typedef struct seen {
  events e; /* first: the callbacks of fake_udp.h take it as theirs */
  int n;
  uint16_t ids[16];
  int messages_at_disconnect;
} seen;

static void record_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                           size_t len, void *user) {
  seen *s = user;
  if (s->n < 16)
    s->ids[s->n] = msg_id;
  s->n++;
  if (s->e.disconnects)
    s->messages_at_disconnect = -1; /* a message after on_disconnect */
  on_message(c, msg_id, body, len, user);
}

static void record_disconnect(kite_conn *c, int reason, void *user) {
  seen *s = user;
  s->messages_at_disconnect = s->n;
  on_disconnect(c, reason, user);
}

static kite_client *client_for(seen *s, kite_client_config *cfg) {
  config(cfg, &s->e);
  cfg->on_message = record_message;
  cfg->on_disconnect = record_disconnect;
  fake_now = 0;
  return client_new(cfg, &s->e);
}

static void send_close(fsrv *srv, uint32_t conv, uint8_t reason) {
  kite__ctrl k = mk(KITE__CTRL_CLOSE, NULL);
  k.conv = conv;
  memcpy(k.token, TOKEN, 8);
  k.reason = reason;
  srv_send_ctrl(srv, &k);
}

/* Three frames in three datagrams, then CLOSE(kicked), all read by one
 * poll: the three frames, in order, then on_disconnect(kicked). */
static void frames_before_close_in_one_batch_are_delivered(void **state) {
  (void)state;
  seen s = {0};
  kite_client_config cfg;
  kite_client *c = client_for(&s, &cfg);
  fsrv *srv = srv_new();
  assert_int_equal(kite_client_connect(c, srv->addr, NULL, NULL), 0);
  fsess *f = handshake(c, srv, &s.e, 0x0C105E01, 30000, 65536);
  fs_send_frame(f, 21, 0, "a", 1, false);
  fs_send_frame(f, 22, 0, "bb", 2, true);
  fs_send_frame(f, 23, 0, "reply", 5, false);
  send_close(srv, 0x0C105E01, KITE_CLOSE_KICKED);
  deliver(c);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.ids[0], 21);
  assert_int_equal(s.ids[1], 22);
  assert_int_equal(s.ids[2], 23);
  assert_memory_equal(s.e.body, "reply", 5);
  assert_int_equal(s.e.disconnects, 1);
  assert_int_equal(s.e.reason, KITE_CLOSE_KICKED);
  assert_int_equal(s.messages_at_disconnect, 3);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.frames_in, 3);
  assert_int_equal(st.closed_by_server, 1);
  assert_int_equal(st.sessions, 0);
  kite_client_destroy(c);
  srv_free(srv);
}

/* Two frames in one datagram, CLOSE, then a late datagram of the same
 * session in the same batch: the two frames only (nothing after the CLOSE
 * is heard), then the CLOSE's reason. */
static void nothing_after_the_close_is_delivered(void **state) {
  (void)state;
  seen s = {0};
  kite_client_config cfg;
  kite_client *c = client_for(&s, &cfg);
  fsrv *srv = srv_new();
  assert_int_equal(kite_client_connect(c, srv->addr, NULL, NULL), 0);
  fsess *f = handshake(c, srv, &s.e, 0x0C105E02, 30000, 65536);
  uint8_t hdr[2][KITE__FRAME_HDR];
  kite__frame_header(hdr[0], 31, 0, "x", 1, false);
  kite__frame_header(hdr[1], 32, 0, "y", 1, false);
  struct iovec iov[4] = {
      {hdr[0], sizeof(hdr[0])}, {"x", 1}, {hdr[1], sizeof(hdr[1])}, {"y", 1}};
  assert_int_equal(kite__kcp_sendv(f->kcp, iov, 4), 0);
  kite__kcp_flush(f->kcp, fake_now); /* one datagram, both frames */
  send_close(srv, 0x0C105E02, KITE_CLOSE_SHUTDOWN);
  fs_send_frame(f, 33, 0, "z", 1, false);
  deliver(c);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.ids[0], 31);
  assert_int_equal(s.ids[1], 32);
  assert_int_equal(s.e.disconnects, 1);
  assert_int_equal(s.e.reason, KITE_CLOSE_SHUTDOWN);
  assert_int_equal(s.messages_at_disconnect, 2);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.drop_unknown, 1); /* the datagram after the CLOSE */
  kite_client_destroy(c);
  srv_free(srv);
}

/* An application that closes the session from a frame delivered ahead of
 * the server's CLOSE closed it first: its own close is what it hears
 * (normal), once, and the frames after that one are not delivered. */
static void a_close_from_a_frame_before_the_close_wins(void **state) {
  (void)state;
  seen s = {0};
  kite_client_config cfg;
  kite_client *c = client_for(&s, &cfg);
  fsrv *srv = srv_new();
  assert_int_equal(kite_client_connect(c, srv->addr, NULL, NULL), 0);
  fsess *f = handshake(c, srv, &s.e, 0x0C105E03, 30000, 65536);
  fs_send_frame(f, 41, 0, "a", 1, false);
  fs_send_frame(f, 42, 0, "b", 1, false);
  send_close(srv, 0x0C105E03, KITE_CLOSE_KICKED);
  s.e.close_in_message = true;
  deliver(c);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.ids[0], 41);
  assert_int_equal(s.e.disconnects, 1);
  assert_int_equal(s.e.reason, KITE_CLOSE_NORMAL);
  tick(c);
  assert_int_equal(s.e.disconnects, 1);
  kite_client_destroy(c);
  srv_free(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(frames_before_close_in_one_batch_are_delivered),
      cmocka_unit_test(nothing_after_the_close_is_delivered),
      cmocka_unit_test(a_close_from_a_frame_before_the_close_wins),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
