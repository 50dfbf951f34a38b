/*
 * The client's TCP transport (PROTOCOL.md section 5) against a fake server
 * that the test drives step by step on one thread: a listener on
 * 127.0.0.1 port 0, and raw bytes in and out of the accepted connection.
 * The client's clock is a fake one the test moves, so the OPENED deadline,
 * pings and the idle timeout are exact; only delivery is real (loopback).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_tcp.h"

/* ---- tests ---- */

static void frames_flow_both_ways_in_order(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  kite_conn *conn = open_session(c, s, &e, 30000, 4096);
  kite_conn_stats cs;
  kite_conn_get_stats(conn, &cs);
  assert_int_equal(cs.conv, 0);
  /* Past OPENED's max_frame, though under the client's own. */
  uint8_t big[4097] = {0};
  assert_int_equal(kite_conn_send(conn, 1, big, sizeof(big)), KITE_EMSGSIZE);

  /* Client to server: 100 frames, in order. */
  int base = s->nframes;
  for (int i = 0; i < 100; i++) {
    char body[32];
    int n = snprintf(body, sizeof(body), "up %d", i);
    assert_int_equal(kite_conn_send(conn, (uint16_t)(100 + i), body, (size_t)n), 0);
  }
  PUMP(c, s, s->nframes == base + 100);
  for (int i = 0; i < 100; i++) {
    char body[32];
    int n = snprintf(body, sizeof(body), "up %d", i);
    assert_int_equal(s->h[base + i].msg_id, 100 + i);
    assert_int_equal(s->h[base + i].len, n);
    assert_memory_equal(s->body[base + i], body, (size_t)n);
  }

  /* Server to client: 100 frames in one write. */
  static uint8_t burst[100 * (KITE__FRAME_HDR + 32)];
  size_t len = 0;
  for (int i = 0; i < 100; i++) {
    char body[32];
    int n = snprintf(body, sizeof(body), "down %d", i);
    len += put_frame(burst + len, (uint16_t)(200 + i), 0, body, (uint32_t)n);
  }
  srv_write(s, burst, len);
  PUMP(c, s, e.messages == 100);
  for (int i = 0; i < 100; i++)
    assert_int_equal(e.msg_ids[i], 200 + i);
  assert_memory_equal(e.body, "down 99", 7);

  /* One frame a byte at a time: delivered whole, once, after its last
   * byte; its body is over the reader's inline size, so it is gathered. */
  uint8_t body[300], frame[KITE__FRAME_HDR + sizeof(body)];
  big_body(body, sizeof(body), 5);
  size_t flen = put_frame(frame, 42, 0, body, sizeof(body));
  for (size_t i = 0; i < flen; i++) {
    srv_write(s, frame + i, 1);
    uint64_t before = c->stats.tcp_bytes_in;
    PUMP(c, s, c->stats.tcp_bytes_in == before + 1);
    assert_int_equal(e.messages, i + 1 < flen ? 100 : 101);
  }
  assert_int_equal(e.msg_ids[100], 42);
  assert_int_equal(e.len, sizeof(body));
  assert_memory_equal(e.body, body, sizeof(body));
  assert_int_equal(kite__frame_reader_heap(&conn->reader), 0);

  kite_conn_get_stats(conn, &cs);
  assert_int_equal(cs.frames_in, 101);
  assert_int_equal(cs.frames_out, 100);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.tcp_bytes_in, s->bytes_out);
  assert_int_equal(st.tcp_bytes_out, s->bytes_in);
  assert_int_equal(st.connected, 1);
  assert_int_equal(st.sessions, 1);

  /* Closing: the server reads the end of the stream; on_disconnect runs
   * once, at the next poll. */
  assert_int_equal(kite_conn_send(conn, 7, "last", 4), 0);
  assert_int_equal(kite_conn_close(conn), 0);
  assert_int_equal(kite_conn_close(conn), KITE_ECLOSED);
  assert_int_equal(e.disconnects, 0);
  assert_int_equal(kite_client_timeout_ms(c), 0);
  PUMP(c, s, s->eof && e.disconnects == 1);
  /* The close notice (PROTOCOL.md section 5), reason 0, ahead of the FIN. */
  assert_int_equal(s->h[s->nframes - 2].msg_id, 7);
  assert_int_equal(s->h[s->nframes - 1].msg_id, KITE__MSG_CLOSE_NOTICE);
  assert_int_equal(s->h[s->nframes - 1].len, 1);
  assert_int_equal(s->body[s->nframes - 1][0], KITE_CLOSE_NORMAL);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  for (int i = 0; i < 5; i++)
    step(c);
  assert_int_equal(e.disconnects, 1);
  kite_client_stats_get(c, &st);
  assert_int_equal(st.closed_by_client, 1);
  assert_int_equal(st.sessions, 0);
  /* The descriptor lingers (client_linger.c) until the server's end. */
  assert_int_equal(c->ntcp, 1);
  shutdown(s->fd, SHUT_WR);
  PUMP(c, s, c->ntcp == 0);
  kite_client_stats_get(c, &st);
  assert_int_equal(st.tcp_lingers, 1);
  assert_int_equal(st.tcp_linger_cut, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void reject_is_reported_with_its_reason(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  kite_conn *conn;
  assert_int_equal(kite_client_connect_tcp(c, s->addr, NULL, &conn), 0);
  srv_accept(s);
  PUMP(c, s, s->open_have == KITE__CTRL_HDR);
  uint8_t rej[KITE__CTRL_MAX];
  kite__ctrl k = {.type = KITE__CTRL_REJECT, .reason = KITE__REJECT_FULL};
  assert_int_equal(kite__ctrl_encode(rej, sizeof(rej), &k), 17);
  /* In two pieces: the header alone says nothing yet. */
  srv_write(s, rej, 8);
  for (int i = 0; i < 5; i++)
    step(c);
  assert_int_equal(e.disconnects, 0);
  srv_write(s, rej + 8, 9);
  close(s->fd);
  s->fd = -1;
  PUMP(c, NULL, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CONNECT_REJECTED_FULL);
  assert_ptr_equal(e.last_conn, conn);
  assert_int_equal(e.connects, 0);
  for (int i = 0; i < 5; i++)
    step(c);
  assert_int_equal(e.disconnects, 1);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.rejected, 1);
  assert_int_equal(st.tcp_connect_failed, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void refused_connect_fails(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  /* A bound port that does not listen: nobody else can listen there
   * while we hold it, so the refusal is certain. */
  char addr[64];
  int fd = bound_loopback(SOCK_STREAM, 0, addr);
  assert_int_equal(kite_client_connect_tcp(c, addr, NULL, NULL), 0);
  PUMP(c, NULL, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CONNECT_FAILED);
  assert_int_equal(e.connects, 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.tcp_connect_failed, 1);
  assert_int_equal(c->ntcp, 0);
  close(fd);
  kite_client_destroy(c);
}

static void server_eof_after_open_is_a_normal_close(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  kite_conn *conn = open_session(c, s, &e, 0, 1024);
  close(s->fd);
  s->fd = -1;
  PUMP(c, NULL, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  assert_ptr_equal(e.last_conn, conn);
  for (int i = 0; i < 5; i++)
    step(c);
  assert_int_equal(e.disconnects, 1);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.closed_by_server, 1);
  assert_int_equal(st.closed_by_client, 0);
  assert_int_equal(st.tcp_resets, 0);
  kite_client_destroy(c);
  srv_free(s);
}

/* The server writes |bytes| after OPENED; the client must close with
 * KITE_CLOSE_PROTOCOL, which the server sees as the end of the stream. */
static void expect_protocol_close(const void *bytes, size_t n) {
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  open_session(c, s, &e, 0, 1024);
  srv_write(s, bytes, n);
  PUMP(c, s, e.disconnects == 1 && s->eof);
  assert_int_equal(e.reason, KITE_CLOSE_PROTOCOL);
  assert_int_equal(e.messages, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void bad_frames_close_with_protocol(void **state) {
  (void)state;
  uint8_t hdr[KITE__FRAME_HDR];
  /* Longer than OPENED's max_frame (the client's own is 1 MiB): refused
   * on its header, before any body. */
  kite__frame_header(hdr, 5, 0, NULL, 1025, false);
  expect_protocol_close(hdr, sizeof(hdr));
  /* A CRC that does not match its body. */
  uint8_t frame[KITE__FRAME_HDR + 4];
  kite__frame_header(frame, 5, 0, "abcd", 4, true);
  memcpy(frame + KITE__FRAME_HDR, "abce", 4);
  expect_protocol_close(frame, sizeof(frame));
}

static void garbage_instead_of_opened_is_a_protocol_error(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  assert_int_equal(kite_client_connect_tcp(c, s->addr, NULL, NULL), 0);
  srv_accept(s);
  PUMP(c, s, s->open_have == KITE__CTRL_HDR);
  srv_write(s, "HTTP/1.1 400 Bad Request\r\n", 26);
  PUMP(c, s, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_PROTOCOL);
  assert_int_equal(e.connects, 0);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.drop_control, 1);
  kite_client_destroy(c);
  srv_free(s);
}

static uint32_t get_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void pings_pongs_and_idle(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  s->answer_pings = false;
  /* idle 3000 ms: a ping every 1000 ms. */
  kite_conn *conn = open_session(c, s, &e, 3000, 1024);
  uint32_t t0 = fake_now;
  assert_int_equal(s->h[s->nframes - 1].len, 4); /* the first ping: now */
  assert_int_equal(get_u32le(s->body[s->nframes - 1]), t0);

  fake_now = t0 + 999;
  for (int i = 0; i < 3; i++)
    step(c);
  srv_read(s);
  assert_int_equal(s->pings, 1);
  fake_now = t0 + 1000;
  PUMP(c, s, s->pings == 2);
  const kite__frame_hdr *h = &s->h[s->nframes - 1];
  assert_int_equal(h->msg_id, 0);
  assert_int_equal(h->flags & KITE__FRAME_F_PONG, 0);
  assert_int_equal(get_u32le(s->body[s->nframes - 1]), t0 + 1000);

  /* Its pong, 7 ms later, gives the RTT. */
  fake_now = t0 + 1007;
  srv_frame(s, 0, KITE__FRAME_F_PONG, s->body[s->nframes - 1], 4);
  kite_conn_stats cs;
  PUMP(c, s, (kite_conn_get_stats(conn, &cs), cs.last_rtt_ms == 7));
  assert_true(cs.rto_ms > 0); /* the kernel's, from TCP_INFO */

  /* The server's ping is answered with the same body. */
  srv_frame(s, 0, 0, "hello", 5);
  PUMP(c, s, s->pongs == 1);
  h = &s->h[s->nframes - 1];
  assert_int_equal(h->flags & KITE__FRAME_F_PONG, KITE__FRAME_F_PONG);
  assert_int_equal(h->len, 5);
  assert_memory_equal(s->body[s->nframes - 1], "hello", 5);
  assert_int_equal(e.messages, 0); /* pings reach no handler */
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.pongs_sent, 1);
  assert_int_equal(st.pings_sent, 2);

  /* Nothing from the server for 3000 ms after its last bytes: idle. */
  uint32_t last = fake_now;
  fake_now = last + 2999;
  for (int i = 0; i < 3; i++)
    step(c);
  assert_int_equal(e.disconnects, 0);
  fake_now = last + 3000;
  PUMP(c, s, e.disconnects == 1 && s->eof);
  assert_int_equal(e.reason, KITE_CLOSE_IDLE);
  kite_client_destroy(c);
  srv_free(s);
}

static void send_past_tcp_send_max_is_refused_whole(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.tcp_send_max = 64 << 10;
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(4096); /* a server that reads nothing, with a small buffer */
  kite_conn *conn = open_session(c, s, &e, 0, 1u << 20);
  static uint8_t body[1 << 14];
  assert_int_equal(kite_conn_send(conn, 1, body, (64 << 10) - 11),
                   KITE_EMSGSIZE); /* with its header, over tcp_send_max */

  int base = s->nframes, sent = 0, rc = 0;
  for (int i = 0; i < 10000; i++) {
    big_body(body, sizeof(body), (uint32_t)(base + sent));
    uint32_t pending = kite__tcp_out_pending(&conn->out);
    rc = kite_conn_send(conn, BIG_ID, body, sizeof(body));
    if (rc != 0) {
      /* All or nothing: the refused frame left no byte behind. */
      assert_int_equal(kite__tcp_out_pending(&conn->out), pending);
      assert_true(pending + KITE__FRAME_HDR + sizeof(body) > cfg.tcp_send_max);
      break;
    }
    sent++;
  }
  assert_int_equal(rc, KITE_EFULL);
  assert_true(kite__tcp_out_pending(&conn->out) <= cfg.tcp_send_max);
  assert_true(conn->watching & EPOLLOUT);

  /* The server reads: every frame arrives whole, in order, and the
   * client's buffer is freed once drained. */
  PUMP(c, s, s->nframes == base + sent);
  assert_int_equal(s->bad_bodies, 0);
  PUMP(c, s, !(conn->watching & EPOLLOUT));
  assert_null(conn->out.buf);
  assert_int_equal(kite_conn_send(conn, BIG_ID, body, 16), 0);
  assert_int_equal(e.disconnects, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void kcp_and_tcp_sessions_share_a_client(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  /* A UDP port that never answers. */
  char uaddr[64];
  int ufd = bound_loopback(SOCK_DGRAM, 0, uaddr);
  kite_conn *kcp;
  assert_int_equal(kite_client_connect(c, uaddr, NULL, &kcp), 0);

  tsrv *s = srv_new(0);
  kite_conn *tcp = open_session(c, s, &e, 0, 1024);
  uint8_t hello[64];
  assert_int_equal(recv(ufd, hello, sizeof(hello), MSG_DONTWAIT), 64);
  assert_true(kite__ctrl_is_control(hello, 64));

  /* The KCP handshake gives up after 9 HELLOs; the TCP session echoes on. */
  for (uint32_t t = 0; t <= cfg.retry_ms * (cfg.retries + 1); t += cfg.retry_ms) {
    fake_now = 1000 + t;
    step(c);
  }
  PUMP(c, s, e.disconnects == 1);
  assert_ptr_equal(e.last_conn, kcp);
  assert_int_equal(e.reason, KITE_CONNECT_TIMEOUT);
  assert_int_equal(kite_conn_send(tcp, 3, "abc", 3), 0);
  PUMP(c, s, s->h[s->nframes - 1].msg_id == 3);
  srv_frame(s, 4, 0, "def", 3);
  PUMP(c, s, e.messages == 1);
  assert_ptr_equal(e.last_conn, tcp);
  assert_int_equal(e.msg_ids[0], 4);
  assert_int_equal(e.disconnects, 1);
  close(ufd);
  kite_client_destroy(c);
  srv_free(s);
}

static void no_opened_in_time_is_a_connect_timeout(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0); /* listens, never accepts: the kernel completes */
  assert_int_equal(kite_client_connect_tcp(c, s->addr, NULL, NULL), 0);
  uint32_t deadline = fake_now + cfg.retry_ms * (cfg.retries + 1);
  PUMP(c, NULL, c->conns[0]->state == KITE__CONN_TCP_OPENING);
  fake_now = deadline - 1;
  for (int i = 0; i < 3; i++)
    step(c);
  assert_int_equal(e.disconnects, 0);
  fake_now = deadline;
  step(c);
  assert_int_equal(e.disconnects, 1);
  assert_int_equal(e.reason, KITE_CONNECT_TIMEOUT);
  kite_client_stats st;
  kite_client_stats_get(c, &st);
  assert_int_equal(st.connect_timeouts, 1);
  kite_client_destroy(c);
  srv_free(s);
}

static void close_from_a_callback_stops_the_stream(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  open_session(c, s, &e, 0, 1024);
  e.close_in_message = true;
  uint8_t two[2 * (KITE__FRAME_HDR + 5)];
  size_t n = put_frame(two, 10, 0, "first", 5);
  n += put_frame(two + n, 11, 0, "again", 5);
  srv_write(s, two, n);
  PUMP(c, s, e.disconnects == 1 && s->eof);
  assert_int_equal(e.messages, 1);
  assert_int_equal(e.msg_ids[0], 10);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  kite_client_destroy(c);
  srv_free(s);
}

static void close_with_unread_input_still_ends_with_fin(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(4096); /* a small window: the client's kernel holds data */
  kite_conn *conn = open_session(c, s, &e, 0, 1u << 20);
  /* Bytes the client never reads: closing over them makes the kernel
   * reset the connection, which throws away what it still holds for the
   * server, unless the close drains them first. */
  srv_frame(s, 12, 0, "unread", 6);
  int base = s->nframes, whole = 0;
  static uint8_t body[1 << 14];
  for (int i = 0; i < 8 && kite__tcp_out_pending(&conn->out) == 0; i++) {
    big_body(body, sizeof(body), (uint32_t)(base + i));
    assert_int_equal(kite_conn_send(conn, BIG_ID, body, sizeof(body)), 0);
    if (kite__tcp_out_pending(&conn->out) == 0)
      whole++; /* all of it is the kernel's */
  }
  assert_true(whole > 0);
  assert_int_equal(kite_conn_close(conn), 0);
  uint64_t end = kite__now_us() + 3000000;
  while (!s->eof && kite__now_us() < end) {
    wait_fd(s->fd, POLLIN, 10);
    srv_read(s); /* a reset fails here (ECONNRESET) */
  }
  assert_true(s->eof);
  assert_true(s->nframes >= base + whole);
  assert_int_equal(s->bad_bodies, 0);
  PUMP(c, NULL, e.disconnects == 1);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  assert_int_equal(e.messages, 0);
  kite_client_destroy(c);
  srv_free(s);
}

static void destroy_ends_tcp_sessions_without_callbacks(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  kite_client *c = client_new(&cfg);
  tsrv *s = srv_new(0);
  kite_conn *conn = open_session(c, s, &e, 0, 1024);
  assert_int_equal(kite_conn_send(conn, 21, "bye", 3), 0);
  kite_client_destroy(c);
  uint64_t end = kite__now_us() + 3000000;
  while (!s->eof && kite__now_us() < end) {
    wait_fd(s->fd, POLLIN, 10);
    srv_read(s);
  }
  assert_true(s->eof);
  assert_int_equal(s->h[s->nframes - 2].msg_id, 21);
  assert_int_equal(s->h[s->nframes - 1].msg_id, KITE__MSG_CLOSE_NOTICE);
  assert_int_equal(s->body[s->nframes - 1][0], KITE_CLOSE_NORMAL);
  assert_int_equal(e.disconnects, 0);
  srv_free(s);
}

static void arguments_and_limits(void **state) {
  (void)state;
  events e = {0};
  kite_client_config cfg;
  config(&cfg, &e);
  cfg.tcp_send_max = 63;
  kite_client *bad;
  assert_int_equal(kite_client_create(&bad, &cfg), KITE_EINVAL);
  cfg.tcp_send_max = 1u << 20;
  cfg.max_sessions = 1;
  kite_client *c = client_new(&cfg);
  kite_conn *conn = (kite_conn *)1;
  assert_int_equal(kite_client_connect_tcp(c, "127.0.0.1:0", NULL, &conn),
                   KITE_EINVAL);
  assert_null(conn);
  assert_int_equal(kite_client_connect_tcp(c, "nonsense", NULL, NULL),
                   KITE_EINVAL);
  assert_int_equal(kite_client_connect_tcp(c, "127.0.0.1:9", NULL, NULL), 0);
  /* KCP and TCP sessions share max_sessions. */
  assert_int_equal(kite_client_connect_tcp(c, "127.0.0.1:9", NULL, NULL),
                   KITE_EFULL);
  assert_int_equal(kite_client_connect(c, "127.0.0.1:9", NULL, NULL),
                   KITE_EFULL);
  assert_string_equal(kite_client_reason_name(KITE_CONNECT_FAILED),
                      "connect failed");
  assert_string_equal(kite_client_reason_name(KITE_CONN_RESET),
                      "connection reset");
  kite_client_destroy(c);
  assert_int_equal(e.disconnects, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(frames_flow_both_ways_in_order),
      cmocka_unit_test(reject_is_reported_with_its_reason),
      cmocka_unit_test(refused_connect_fails),
      cmocka_unit_test(server_eof_after_open_is_a_normal_close),
      cmocka_unit_test(bad_frames_close_with_protocol),
      cmocka_unit_test(garbage_instead_of_opened_is_a_protocol_error),
      cmocka_unit_test(pings_pongs_and_idle),
      cmocka_unit_test(send_past_tcp_send_max_is_refused_whole),
      cmocka_unit_test(kcp_and_tcp_sessions_share_a_client),
      cmocka_unit_test(no_opened_in_time_is_a_connect_timeout),
      cmocka_unit_test(close_from_a_callback_stops_the_stream),
      cmocka_unit_test(close_with_unread_input_still_ends_with_fin),
      cmocka_unit_test(destroy_ends_tcp_sessions_without_callbacks),
      cmocka_unit_test(arguments_and_limits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
