/*
 * The client tests' fake TCP server, fake clock and callbacks
 * (static inline: each test program includes it once).
 */
#ifndef KITE_TEST_FAKE_TCP_H
#define KITE_TEST_FAKE_TCP_H

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
static inline uint32_t fake_clock(void *user) {
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

static inline void on_connect(kite_conn *c, void *user) {
  events *e = user;
  e->connects++;
  e->last_conn = c;
}

static inline void on_message(kite_conn *c, uint16_t msg_id,
                              const uint8_t *body, size_t len, void *user) {
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

static inline void on_disconnect(kite_conn *c, int reason, void *user) {
  events *e = user;
  e->disconnects++;
  e->reason = reason;
  e->last_conn = c;
}

static inline void quiet_log(void *user, kite_log_level level,
                             const char *msg) {
  (void)user;
  (void)level;
  (void)msg;
}

static inline void config(kite_client_config *cfg, events *e) {
  kite_client_config_init(cfg);
  cfg->on_connect = on_connect;
  cfg->on_message = on_message;
  cfg->on_disconnect = on_disconnect;
  cfg->user = e;
  cfg->log = quiet_log;
  cfg->bind_addr = "127.0.0.1:0";
}

static inline kite_client *client_new(kite_client_config *cfg) {
  kite_client *c;
  assert_int_equal(kite_client_create(&c, cfg), 0);
  fake_now = 1000;
  kite__cli_set_clock(c, fake_clock, NULL);
  return c;
}

static inline bool wait_fd(int fd, short what, int ms) {
  struct pollfd p = {.fd = fd, .events = what};
  return poll(&p, 1, ms) == 1;
}

/* One poll of the client, after waiting (briefly, real time) for its
 * epoll descriptor: the one an outer loop would watch. */
static inline void step(kite_client *c) {
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
static inline int bound_loopback(int type, int rcvbuf, char addr[64]) {
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

static inline tsrv *srv_new(int rcvbuf) {
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

static inline void srv_free(tsrv *s) {
  if (s->fd >= 0)
    close(s->fd);
  close(s->lfd);
  kite__frame_reader_free(&s->reader);
  free(s);
}

static inline void srv_accept(tsrv *s) {
  assert_true(wait_fd(s->lfd, POLLIN, 2000));
  s->fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  assert_true(s->fd >= 0);
}

static inline void srv_write(tsrv *s, const void *p, size_t n) {
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

static inline size_t put_frame(uint8_t *out, uint16_t msg_id, uint16_t flags,
                               const void *body, uint32_t len) {
  kite__frame_header(out, msg_id, flags, body, len, false);
  if (len)
    memcpy(out + KITE__FRAME_HDR, body, len);
  return KITE__FRAME_HDR + len;
}

static inline void srv_frame(tsrv *s, uint16_t msg_id, uint16_t flags,
                             const void *body, uint32_t len) {
  uint8_t buf[KITE__FRAME_HDR + 4096];
  assert_true(len <= 4096);
  srv_write(s, buf, put_frame(buf, msg_id, flags, body, len));
}

static inline void big_body(uint8_t *b, uint32_t len, uint32_t idx) {
  for (uint32_t i = 0; i < len; i++)
    b[i] = (uint8_t)(idx * 31u + i * 7u);
}

static inline int srv_on_frame(void *user, const kite__frame_hdr *h,
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
static inline void srv_read(tsrv *s) {
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
    ptrdiff_t used = kite__frame_reader_feed(
        &s->reader, buf + off, (size_t)r - off, srv_on_frame, s, NULL);
    assert_int_equal(used, (ptrdiff_t)((size_t)r - off));
  }
}

/* Steps the client and reads the server until |cond| holds; a test that
 * waits for more than 3 s has failed. */
#define PUMP(c, s, cond)                                                       \
  do {                                                                         \
    uint64_t end_ = kite__now_us() + 3000000;                                  \
    while (!(cond)) {                                                          \
      assert_true(kite__now_us() < end_);                                      \
      step(c);                                                                 \
      if (s)                                                                   \
        srv_read(s);                                                           \
    }                                                                          \
  } while (0)

static inline void srv_opened(tsrv *s, uint32_t idle_ms, uint32_t max_frame) {
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
static inline kite_conn *open_session(kite_client *c, tsrv *s, events *e,
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

#endif
