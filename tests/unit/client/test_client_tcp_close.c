/*
 * The TCP close notice (PROTOCOL.md section 5, msg_id 0xFF01, body: the
 * reason) both ways, against the raw TCP fake server of fake_tcp.h: the
 * server's is not delivered but reported at its end of stream; a client
 * that closes on purpose sends its own ahead of the FIN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_tcp.h"

#include <sys/ioctl.h>

static void srv_notice(tsrv *s, uint16_t flags, const void *body,
                       uint32_t len) {
  uint8_t buf[KITE__FRAME_HDR + 8];
  kite__frame_header(buf, KITE__MSG_CLOSE_NOTICE, 0, body, len,
                     (flags & KITE__FRAME_F_CRC) != 0);
  if (len)
    memcpy(buf + KITE__FRAME_HDR, body, len);
  srv_write(s, buf, KITE__FRAME_HDR + len);
}

/* The server's end: shutdown, then close once the client's FIN is read. */
static void srv_fin(tsrv *s) { shutdown(s->fd, SHUT_WR); }

/* A reply, the notice (kicked) and the FIN, in one write burst: the reply
 * is delivered, the notice is not, and on_disconnect says kicked. */
static void server_notice_then_fin_reports_its_reason(void **state) {
  (void)state;
  for (int crc = 0; crc <= 1; crc++) {
    events e = {0};
    kite_client_config cfg;
    config(&cfg, &e);
    kite_client *c = client_new(&cfg);
    tsrv *s = srv_new(0);
    open_session(c, s, &e, 0, 1024);
    srv_frame(s, 5, 0, "reply", 5);
    uint8_t reason = KITE_CLOSE_KICKED;
    srv_notice(s, crc ? KITE__FRAME_F_CRC : 0, &reason, 1);
    srv_fin(s);
    PUMP(c, s, e.disconnects == 1);
    assert_int_equal(e.messages, 1);
    assert_int_equal(e.msg_ids[0], 5);
    assert_memory_equal(e.body, "reply", 5);
    assert_int_equal(e.reason, KITE_CLOSE_KICKED);
    kite_client_stats st;
    kite_client_stats_get(c, &st);
    assert_int_equal(st.closed_by_server, 1);
    assert_int_equal(st.closed_by_client, 0);
    assert_int_equal(st.drop_reserved, 0);
    assert_int_equal(st.frames_in, 1);
    kite_client_destroy(c);
    srv_free(s);
  }
}

/* Frames after the notice are still the server's (delivered); a notice
 * without the FIN ends nothing by itself; the last notice's reason wins. */
static void notice_waits_for_the_fin(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  kite_conn *conn = open_session(c, s, &e, 0, 1024);
  uint8_t reason = KITE_CLOSE_SHUTDOWN;
  srv_notice(s, 0, &reason, 1);
  srv_frame(s, 6, 0, "late", 4);
  PUMP(c, s, e.messages == 1);
  for (int i = 0; i < 3; i++)
    step(c);
  assert_int_equal(e.disconnects, 0);
  assert_int_equal(kite_conn_send(conn, 7, "ok", 2), 0);
  reason = KITE_CLOSE_SLOW_PEER;
  srv_notice(s, 0, &reason, 1);
  srv_fin(s);
  PUMP(c, s, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_SLOW_PEER);
  kite_client_destroy(c);
  srv_free(s);
}

/* A notice whose body is not one byte is counted and ignored: the FIN
 * after it is a normal close, as one without a notice. */
static void malformed_notice_is_counted_and_ignored(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  open_session(c, s, &e, 0, 1024);
  srv_notice(s, 0, "\x04\x04", 2);
  srv_notice(s, 0, NULL, 0);
  srv_fin(s);
  PUMP(c, s, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  assert_int_equal(e.messages, 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.drop_reserved, 2);
  kite_client_destroy(c);
  srv_free(s);
}

/* The server's notice then a reset (it closed with our bytes unread):
 * still the server's close, with the notice's reason. */
static void reset_after_the_notice_keeps_its_reason(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  kite_conn *conn = open_session(c, s, &e, 0, 1024);
  uint8_t reason = KITE_CLOSE_KICKED;
  srv_notice(s, 0, &reason, 1);
  srv_frame(s, 9, 0, NULL, 0);
  PUMP(c, s, e.messages == 1); /* the notice before it was read */
  /* Unread bytes at close(): Linux sends RST. */
  assert_int_equal(kite_conn_send(conn, 8, "unread", 6), 0);
  uint64_t end = kite__now_us() + 3000000;
  int avail = 0;
  while (avail < (int)(KITE__FRAME_HDR + 6) && kite__now_us() < end) {
    wait_fd(s->fd, POLLIN, 10);
    ioctl(s->fd, FIONREAD, &avail);
  }
  close(s->fd);
  s->fd = -1;
  PUMP(c, NULL, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_KICKED);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.closed_by_server, 1);
  assert_int_equal(st.tcp_resets, 0);
  kite_client_destroy(c);
  srv_free(s);
}

/* Closes made here on purpose send the notice ahead of the FIN, with the
 * reason this client reports: normal (kite_conn_close), idle, protocol. */
static void client_close_sends_its_notice(void **state) {
  (void)state;
  for (int how = 0; how < 3; how++) {
    events e = {0};
    kite_client_config cfg;
    config(&cfg, &e);
    kite_client *c = client_new(&cfg);
    tsrv *s = srv_new(0);
    s->answer_pings = false;
    kite_conn *conn = open_session(c, s, &e, 3000, 1024);
    int want = KITE_CLOSE_NORMAL;
    if (how == 0) {
      assert_int_equal(kite_conn_close(conn), 0);
    } else if (how == 1) {
      fake_now += 3000; /* nothing from the server for its idle timeout */
      want = KITE_CLOSE_IDLE;
    } else {
      uint8_t bad[KITE__FRAME_HDR]; /* pong set on msg_id 3: section 4 */
      kite__frame_header(bad, 3, KITE__FRAME_F_PONG, NULL, 0, false);
      srv_write(s, bad, sizeof(bad));
      want = KITE_CLOSE_PROTOCOL;
    }
    PUMP(c, s, s->eof && e.disconnects == 1);
    assert_int_equal(e.reason, want);
    assert_true(s->nframes >= 1);
    const kite__frame_hdr *h = &s->h[s->nframes - 1];
    assert_int_equal(h->msg_id, KITE__MSG_CLOSE_NOTICE);
    assert_int_equal(h->len, 1);
    assert_int_equal(s->body[s->nframes - 1][0], want);
    kite_client_stats st;
    kite_client_stats_get(c, &st);
    assert_int_equal(st.closed_by_client, 1);
    kite_client_destroy(c);
    srv_free(s);
  }
}

/* A close the client did not decide (the server's end of stream) sends
 * no notice back. */
static void no_notice_in_answer_to_the_server_close(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  open_session(c, s, &e, 0, 1024);
  int frames = s->nframes;
  srv_fin(s);
  PUMP(c, s, e.disconnects == 1 && s->eof);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  assert_int_equal(s->nframes, frames);
  kite_client_destroy(c);
  srv_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_notice_then_fin_reports_its_reason),
      cmocka_unit_test(notice_waits_for_the_fin),
      cmocka_unit_test(malformed_notice_is_counted_and_ignored),
      cmocka_unit_test(reset_after_the_notice_keeps_its_reason),
      cmocka_unit_test(client_close_sends_its_notice),
      cmocka_unit_test(no_notice_in_answer_to_the_server_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
