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

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "client/client_internal.h"
#include "kite/client.h"
#include "kite/error.h"
#include "proto/control.h"
#include "proto/frame.h"

/* ---- the fake clock ---- */

static uint32_t fake_now;
static uint32_t fake_clock(void *user) {
  (void)user;
  return fake_now;
}

/* ---- what the client's callbacks saw ---- */

#define MSGS_MAX 256

typedef struct events {
  int connects, disconnects, messages;
  int reason;           /* of the last on_disconnect */
  kite_conn *last_conn; /* of the last callback */
  uint16_t msg_ids[MSGS_MAX];
  uint8_t body[4096]; /* of the last message */
  size_t len;
  bool close_in_message;
} events;

static void on_connect(kite_conn *c, void *user) {
  events *e = user;
  e->connects++;
  e->last_conn = c;
}

static void on_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                       size_t len, void *user) {
  events *e = user;
  if (e->messages < MSGS_MAX)
    e->msg_ids[e->messages] = msg_id;
  e->messages++;
  e->last_conn = c;
  e->len = len < sizeof(e->body) ? len : sizeof(e->body);
  memcpy(e->body, body, e->len);
  if (e->close_in_message) {
    assert_int_equal(kite_conn_close(c), 0);
    /* The body stays readable for the rest of the call. */
    assert_memory_equal(e->body, body, e->len);
  }
}

static void on_disconnect(kite_conn *c, int reason, void *user) {
  events *e = user;
  e->disconnects++;
  e->reason = reason;
  e->last_conn = c;
}

static void quiet_log(void *user, kite_log_level level, const char *msg) {
  (void)user;
  (void)level;
  (void)msg;
}

static void config(kite_client_config *cfg, events *e) {
  kite_client_config_init(cfg);
  cfg->on_connect = on_connect;
  cfg->on_message = on_message;
  cfg->on_disconnect = on_disconnect;
  cfg->user = e;
  cfg->log = quiet_log;
  cfg->bind_addr = "127.0.0.1:0";
}

static kite_client *client_new(kite_client_config *cfg) {
  kite_client *c;
  assert_int_equal(kite_client_create(&c, cfg), 0);
  fake_now = 1000;
  kite__client_set_clock(c, fake_clock, NULL);
  return c;
}

static bool wait_fd(int fd, short what, int ms) {
  struct pollfd p = {.fd = fd, .events = what};
  return poll(&p, 1, ms) == 1;
}

/* One poll of the client, after waiting (briefly, real time) for its
 * epoll descriptor: the one an outer loop would watch. */
static void step(kite_client *c) {
  wait_fd(kite_client_fd(c), POLLIN, 5);
  assert_int_equal(kite_client_poll(c, 0), 0);
}

/* ---- the fake server ---- */

#define FRAMES_MAX 512
#define BIG_ID 9 /* frames whose body carries a pattern to check */

typedef struct tsrv {
  int lfd, fd;
  char addr[64];
  bool eof;
  bool answer_pings;
  uint8_t open[KITE__CTRL_HDR];
  size_t open_have;
  kite__frame_reader reader;
  size_t bytes_in, bytes_out;
  int nframes, pings, pongs, bad_bodies;
  kite__frame_hdr h[FRAMES_MAX];
  uint8_t body[FRAMES_MAX][64];
} tsrv;

/* A socket of |type| bound to 127.0.0.1 on a free port, named in |addr|.
 * |rcvbuf| > 0 sets SO_RCVBUF before the bind. */
static int bound_loopback(int type, int rcvbuf, char addr[64]) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (rcvbuf)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  snprintf(addr, 64, "127.0.0.1:%u", ntohs(a.sin_port));
  return fd;
}

static tsrv *srv_new(int rcvbuf) {
  tsrv *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->fd = -1;
  /* A receive buffer is inherited by the accepted socket: a server that
   * fills up. */
  s->lfd = bound_loopback(SOCK_STREAM, rcvbuf, s->addr);
  assert_int_equal(listen(s->lfd, 8), 0);
  kite__frame_reader_init(&s->reader, 1u << 20);
  s->answer_pings = true;
  return s;
}

static void srv_free(tsrv *s) {
  if (s->fd >= 0)
    close(s->fd);
  close(s->lfd);
  kite__frame_reader_free(&s->reader);
  free(s);
}

static void srv_accept(tsrv *s) {
  assert_true(wait_fd(s->lfd, POLLIN, 2000));
  s->fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  assert_true(s->fd >= 0);
}

static void srv_write(tsrv *s, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    assert_true(wait_fd(s->fd, POLLOUT, 2000));
    ssize_t w = send(s->fd, b, n, MSG_NOSIGNAL);
    assert_true(w > 0);
    b += w;
    n -= (size_t)w;
    s->bytes_out += (size_t)w;
  }
}

static size_t put_frame(uint8_t *out, uint16_t msg_id, uint16_t flags,
                        const void *body, uint32_t len) {
  kite__frame_header(out, msg_id, flags, body, len, false);
  if (len)
    memcpy(out + KITE__FRAME_HDR, body, len);
  return KITE__FRAME_HDR + len;
}

static void srv_frame(tsrv *s, uint16_t msg_id, uint16_t flags,
                      const void *body, uint32_t len) {
  uint8_t buf[KITE__FRAME_HDR + 4096];
  assert_true(len <= 4096);
  srv_write(s, buf, put_frame(buf, msg_id, flags, body, len));
}

static void big_body(uint8_t *b, uint32_t len, uint32_t idx) {
  for (uint32_t i = 0; i < len; i++)
    b[i] = (uint8_t)(idx * 31u + i * 7u);
}

static int srv_on_frame(void *user, const kite__frame_hdr *h,
                        const uint8_t *body) {
  tsrv *s = user;
  if (h->msg_id == 0) {
    if (h->flags & KITE__FRAME_F_PONG) {
      s->pongs++;
    } else {
      s->pings++;
      if (s->answer_pings)
        srv_frame(s, 0, KITE__FRAME_F_PONG, body, h->len);
    }
  }
  if (h->msg_id == BIG_ID) {
    uint8_t want[1 << 14];
    assert_true(h->len <= sizeof(want));
    big_body(want, h->len, (uint32_t)s->nframes);
    if (memcmp(want, body, h->len) != 0)
      s->bad_bodies++;
  }
  assert_true(s->nframes < FRAMES_MAX);
  s->h[s->nframes] = *h;
  memcpy(s->body[s->nframes], body, h->len < 64 ? h->len : 64);
  s->nframes++;
  return 0;
}

/* Reads what has arrived: OPEN first, then frames (pings answered). */
static void srv_read(tsrv *s) {
  uint8_t buf[65536];
  while (s->fd >= 0 && !s->eof) {
    ssize_t r = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0) {
      assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
      return;
    }
    if (r == 0) {
      s->eof = true;
      return;
    }
    s->bytes_in += (size_t)r;
    size_t off = 0;
    while (s->open_have < KITE__CTRL_HDR && off < (size_t)r)
      s->open[s->open_have++] = buf[off++];
    ptrdiff_t used = kite__frame_reader_feed(&s->reader, buf + off,
                                             (size_t)r - off, srv_on_frame, s,
                                             NULL);
    assert_int_equal(used, (ptrdiff_t)((size_t)r - off));
  }
}

/* Steps the client and reads the server until |cond| holds; a test that
 * waits for more than 3 s has failed. */
#define PUMP(c, s, cond)                                                     \
  do {                                                                       \
    uint64_t end_ = kite__now_us() + 3000000;                                \
    while (!(cond)) {                                                        \
      assert_true(kite__now_us() < end_);                                    \
      step(c);                                                               \
      if (s)                                                                 \
        srv_read(s);                                                         \
    }                                                                        \
  } while (0)

static void srv_opened(tsrv *s, uint32_t idle_ms, uint32_t max_frame) {
  kite__ctrl k = {.type = KITE__CTRL_OPENED,
                  .idle_timeout_ms = idle_ms,
                  .max_frame = max_frame};
  uint8_t buf[KITE__CTRL_MAX];
  int n = kite__ctrl_encode(buf, sizeof(buf), &k);
  assert_int_equal(n, 16);
  srv_write(s, buf, (size_t)n);
}

/* Connects, checks OPEN, answers OPENED and waits for on_connect and the
 * first ping. */
static kite_conn *open_session(kite_client *c, tsrv *s, events *e,
                               uint32_t idle_ms, uint32_t max_frame) {
  kite_conn *conn;
  int connects = e->connects;
  assert_int_equal(kite_client_connect_tcp(c, s->addr, s, &conn), 0);
  assert_non_null(conn);
  assert_int_equal(kite_conn_send(conn, 1, "x", 1), KITE_ESTATE);
  srv_accept(s);
  PUMP(c, s, s->open_have == KITE__CTRL_HDR);
  static const uint8_t open[KITE__CTRL_HDR] = {'K', 'I', 'T', 'E', 7, 1, 0, 0};
  assert_memory_equal(s->open, open, sizeof(open));
  int pings = s->pings;
  srv_opened(s, idle_ms, max_frame);
  PUMP(c, s, e->connects == connects + 1 && s->pings == pings + 1);
  assert_ptr_equal(e->last_conn, conn);
  assert_ptr_equal(kite_conn_user(conn), s);
  return conn;
}

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
  assert_int_equal(s->h[s->nframes - 1].msg_id, 7);
  assert_int_equal(e.reason, KITE_CLOSE_NORMAL);
  for (int i = 0; i < 5; i++)
    step(c);
  assert_int_equal(e.disconnects, 1);
  kite_client_stats_get(c, &st);
  assert_int_equal(st.closed_by_client, 1);
  assert_int_equal(st.sessions, 0);
  assert_int_equal(c->ntcp, 0);
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
  assert_int_equal(s->h[s->nframes - 1].msg_id, 21);
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
