/*
 * The client's lingering close of TCP (client_linger.c, tcp_linger_ms):
 * after a close on purpose, what the server still sends is read and
 * discarded until its end of stream, so the server never meets a reset;
 * bounded by tcp_linger_ms and by max_sessions lingering at once.
 * Against the raw TCP fake server of fake_tcp.h, on the fake clock.
 */
#include "fake_tcp.h"

/* The server writes what the kernel takes without waiting: the client's
 * receive buffer and the server's send buffer full, nothing read. */
static size_t srv_flood(tsrv *s) {
  static uint8_t buf[65536], body[1000];
  uint8_t *p = buf;
  while (p + KITE__FRAME_HDR + sizeof(body) <= buf + sizeof(buf))
    p += put_frame(p, 5, 0, body, sizeof(body));
  size_t n = (size_t)(p - buf), total = 0;
  for (;;) {
    ssize_t w = send(s->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
      return total;
    }
    total += (size_t)w;
    if ((size_t)w < n)
      return total; /* the stream may end mid-frame: never parsed */
  }
}

/* Opens a session on |s|, floods it, closes it with the flood unread. */
static void open_flood_close(kite_client *c, tsrv *s, events *e) {
  kite_conn *conn = open_session(c, s, e, 0, 1u << 20);
  assert_true(srv_flood(s) > 256 * 1024); /* past what a close drains */
  assert_int_equal(kite_conn_close(conn), 0);
}

/* The server reads the client's notice and FIN, then writes (a late reply
 * of a handler that ran through the quit): no reset, and the client's
 * linger ends at the server's end of stream. Without the linger the
 * server's read meets ECONNRESET. */
static void quit_with_unread_bytes_meets_no_reset(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  open_flood_close(c, s, &e);
  PUMP(c, s, s->eof && e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  const kite__frame_hdr *h = &s->h[s->nframes - 1];
  assert_int_equal(h->msg_id, KITE__MSG_CLOSE_NOTICE);
  uint8_t late = 1;
  uint8_t buf[KITE__FRAME_HDR + 1];
  ssize_t w = send(s->fd, buf, put_frame(buf, 6, 0, &late, 1),
                   MSG_NOSIGNAL | MSG_DONTWAIT);
  assert_true(w > 0 || errno == EAGAIN); /* a full buffer, not a reset */
  shutdown(s->fd, SHUT_WR);
  PUMP(c, NULL, c->ntcp == 0);
  assert_int_equal(c->linger_n, 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.closed_by_client, 1);
  assert_int_equal(st.tcp_lingers, 1);
  assert_int_equal(st.tcp_linger_cut, 0);
  assert_int_equal(st.tcp_linger_full, 0);
  assert_true(st.tcp_linger_bytes > 0);
  /* The client left after the server's FIN: its end is a FIN too. */
  char b;
  assert_true(wait_fd(s->fd, POLLIN, 2000));
  assert_int_equal(recv(s->fd, &b, 1, MSG_DONTWAIT), 0);
  kite_client_destroy(c);
  srv_free(s);
}

/* A server that never ends its stream: the linger ends at tcp_linger_ms
 * (fake clock), counted; not a millisecond before. */
static void linger_ends_at_its_deadline(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.tcp_linger_ms = 500;
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  open_flood_close(c, s, &e);
  PUMP(c, s, s->eof && e.disconnects == 1);
  assert_int_equal(kite_client_timeout_ms(c), 500);
  fake_now += 499;
  step(c);
  assert_int_equal(c->ntcp, 1);
  fake_now += 1;
  PUMP(c, NULL, c->ntcp == 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.tcp_lingers, 1);
  assert_int_equal(st.tcp_linger_cut, 1);
  assert_int_equal(kite_client_timeout_ms(c), -1);
  kite_client_destroy(c);
  srv_free(s);
}

/* At most max_sessions linger: a newer one closes the oldest at once
 * (counted). What still lingers at kite_client_destroy() is closed there
 * (ASan: nothing leaks). tcp_linger_ms 0 closes at once. */
static void lingering_is_bounded(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.max_sessions = 1;
  kite_client *c = client_new(&cfg);
  tsrv *s1 = srv_new(0), *s2 = srv_new(0);
  open_flood_close(c, s1, &e);
  PUMP(c, s1, s1->eof && e.disconnects == 1);
  open_flood_close(c, s2, &e);
  PUMP(c, s2, s2->eof && e.disconnects == 2);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.tcp_lingers, 2);
  assert_int_equal(st.tcp_linger_full, 1);
  assert_int_equal(c->ntcp, 1);
  assert_int_equal(c->linger_n, 1);
  kite_client_destroy(c); /* s2's still lingers */
  srv_free(s1);
  srv_free(s2);

  config(&cfg, &e);
  cfg.tcp_linger_ms = 0;
  c = client_new(&cfg);
  s1 = srv_new(0);
  e.disconnects = 0;
  open_flood_close(c, s1, &e);
  assert_int_equal(c->ntcp, 0);
  kite_client_stats_get(c, &st);
  assert_int_equal(st.tcp_lingers, 0);
  kite_client_destroy(c);
  srv_free(s1);

  config(&cfg, &e);
  cfg.tcp_linger_ms = 60001;
  kite_client *bad;
  assert_int_equal(kite_client_create(&bad, &cfg), KITE_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(quit_with_unread_bytes_meets_no_reset),
      cmocka_unit_test(linger_ends_at_its_deadline),
      cmocka_unit_test(lingering_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
