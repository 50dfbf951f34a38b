/*
 * The client tests' fake UDP server, fake clock and callbacks
 * (static inline: each test program includes it once).
 */
#ifndef KITE_TEST_FAKE_UDP_H
#define KITE_TEST_FAKE_UDP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "kcp/kcp.h"
#include "kite/client.h"
#include "kite/error.h"
#include "net/addr.h"
#include "proto/control.h"
#include "proto/frame.h"

/* ---- the fake clock ---- */

static uint32_t fake_now;
static inline uint32_t fake_clock(void *user) {
  (void)user;
  return fake_now;
}

/* ---- what the client's callbacks saw ---- */

#define BODY_MAX 512

typedef struct events {
  int connects, disconnects, messages;
  int reason;           /* of the last on_disconnect */
  kite_conn *last_conn; /* of the last callback */
  void *last_conn_user; /* kite_conn_user() of the last callback */
  uint16_t msg_id;
  uint8_t body[BODY_MAX];
  size_t len;
  /* things to do from inside callbacks */
  bool close_in_message;
  int send_in_disconnect_rc;
  const char *reconnect_to; /* kite_client_connect() from on_disconnect */
  kite_client *cli;
  int poll_in_callback_rc;
} events;

static inline void on_connect(kite_conn *c, void *user) {
  events *e = user;
  e->connects++;
  e->last_conn = c;
  e->last_conn_user = kite_conn_user(c);
  e->poll_in_callback_rc = kite_client_poll(e->cli, 0);
}

static inline void on_message(kite_conn *c, uint16_t msg_id,
                              const uint8_t *body, size_t len, void *user) {
  events *e = user;
  e->messages++;
  e->last_conn = c;
  e->last_conn_user = kite_conn_user(c);
  e->msg_id = msg_id;
  e->len = len < BODY_MAX ? len : BODY_MAX;
  memcpy(e->body, body, e->len);
  if (e->close_in_message)
    assert_int_equal(kite_conn_close(c), 0);
}

static inline void on_disconnect(kite_conn *c, int reason, void *user) {
  events *e = user;
  e->disconnects++;
  e->reason = reason;
  e->last_conn = c;
  e->last_conn_user = kite_conn_user(c);
  e->send_in_disconnect_rc = kite_conn_send(c, 1, "x", 1);
  if (e->reconnect_to) {
    const char *to = e->reconnect_to;
    e->reconnect_to = NULL;
    assert_int_equal(kite_client_connect(e->cli, to, NULL, NULL), 0);
  }
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
}

static inline kite_client *client_new(kite_client_config *cfg, events *e) {
  kite_client *c;
  assert_int_equal(kite_client_create(&c, cfg), 0);
  kite__cli_set_clock(c, fake_clock, NULL);
  e->cli = c;
  return c;
}

static inline bool wait_readable(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, ms) == 1;
}

/* Polls once, after waiting (real time) for the fake server's datagram to
 * be readable: loopback delivers at once in practice, this makes sure. */
static inline void deliver(kite_client *c) {
  assert_true(wait_readable(kite_client_fd(c), 1000));
  assert_int_equal(kite_client_poll(c, 0), 0);
}

static inline void tick(kite_client *c) {
  assert_int_equal(kite_client_poll(c, 0), 0);
}

/* ---- the fake server ---- */

#define SESS_MAX 4
#define FRAMES_MAX 64
#define CTRL_MAX 64

struct fsrv;

typedef struct fsess {
  struct fsrv *srv;
  uint32_t conv;
  uint8_t token[8];
  kite__kcp *kcp;
  kite__frame_reader reader;
  bool silent; /* input only: no acks, no pongs */
  int nframes;
  kite__frame_hdr h[FRAMES_MAX];
  uint8_t body[FRAMES_MAX][64];
} fsess;

typedef struct fsrv {
  int fd;
  char addr[64];
  kite__addr client;
  kite__kcp_pool *pool;
  fsess sess[SESS_MAX];
  int nsess;
  int nctrl;
  kite__ctrl ctrl[CTRL_MAX];
  size_t ctrl_len[CTRL_MAX];
  uint8_t ctrl_raw[CTRL_MAX][64];
  int nkcp; /* KCP datagrams received */
} fsrv;

static inline fsrv *srv_new(void) {
  fsrv *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(s->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(s->fd, (struct sockaddr *)&a, &len);
  snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%u", ntohs(a.sin_port));
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  s->pool = kite__kcp_pool_create(&pc);
  assert_non_null(s->pool);
  return s;
}

static inline void srv_free(fsrv *s) {
  for (int i = 0; i < s->nsess; i++) {
    kite__kcp_destroy(s->sess[i].kcp);
    kite__frame_reader_free(&s->sess[i].reader);
  }
  kite__kcp_pool_destroy(s->pool);
  close(s->fd);
  free(s);
}

static inline void srv_send(fsrv *s, const void *buf, size_t len) {
  assert_int_equal(
      sendto(s->fd, buf, len, 0, &s->client.sa, kite__addr_len(&s->client)),
      (ssize_t)len);
}

static inline void srv_send_ctrl(fsrv *s, const kite__ctrl *k) {
  uint8_t buf[64];
  int n = kite__ctrl_encode(buf, sizeof(buf), k);
  assert_true(n > 0);
  srv_send(s, buf, (size_t)n);
}

static inline void fs_output(kite__kcp *kcp, const uint8_t *buf, size_t len,
                             void *user) {
  (void)kcp;
  fsess *f = user;
  srv_send(f->srv, buf, len);
}
static const kite__kcp_ops fs_ops = {fs_output, NULL};

static inline fsess *srv_session(fsrv *s, uint32_t conv,
                                 const uint8_t token[8]) {
  assert_true(s->nsess < SESS_MAX);
  fsess *f = &s->sess[s->nsess++];
  f->srv = s;
  f->conv = conv;
  memcpy(f->token, token, 8);
  kite__kcp_config kc;
  kite__kcp_config_default(&kc);
  assert_int_equal(kite__kcp_create(&f->kcp, conv, &kc, s->pool, &fs_ops, f),
                   0);
  kite__frame_reader_init(&f->reader, 65536);
  return f;
}

static inline int fs_frame(void *user, const kite__frame_hdr *h,
                           const uint8_t *body) {
  fsess *f = user;
  assert_true(f->nframes < FRAMES_MAX);
  f->h[f->nframes] = *h;
  memcpy(f->body[f->nframes], body, h->len < 64 ? h->len : 64);
  f->nframes++;
  if (h->msg_id == 0 && !(h->flags & KITE__FRAME_F_PONG) && !f->silent) {
    uint8_t hdr[KITE__FRAME_HDR];
    kite__frame_header(hdr, 0, KITE__FRAME_F_PONG, body, h->len, false);
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)body, h->len}};
    assert_int_equal(kite__kcp_sendv(f->kcp, iov, h->len ? 2 : 1), 0);
  }
  return 0;
}

/* Reads every datagram waiting (waiting up to 1 s for at least |want|):
 * control packets are kept, segments go to their session's KCP, whose
 * frames are then read and (unless silent) acked and answered. */
static inline int srv_pump(fsrv *s, int want) {
  int got = 0;
  uint8_t buf[2048];
  for (;;) {
    if (got < want && !wait_readable(s->fd, 1000))
      break;
    kite__addr from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(s->fd, buf, sizeof(buf), 0, &from.sa, &fl);
    if (n < 0)
      break;
    got++;
    s->client = from;
    if (kite__ctrl_is_control(buf, (size_t)n)) {
      assert_true(s->nctrl < CTRL_MAX);
      kite__ctrl_decode(buf, (size_t)n, &s->ctrl[s->nctrl]);
      s->ctrl_len[s->nctrl] = (size_t)n;
      memcpy(s->ctrl_raw[s->nctrl], buf, n < 64 ? (size_t)n : 64);
      s->nctrl++;
      continue;
    }
    s->nkcp++;
    uint32_t conv = kite__kcp_peek_conv(buf);
    for (int i = 0; i < s->nsess; i++)
      if (s->sess[i].conv == conv)
        kite__kcp_input(s->sess[i].kcp, buf, (size_t)n, fake_now);
  }
  for (int i = 0; i < s->nsess; i++) {
    fsess *f = &s->sess[i];
    uint8_t tmp[4096];
    size_t avail;
    while ((avail = kite__kcp_readable(f->kcp)) > 0) {
      size_t k = kite__kcp_peek(f->kcp, tmp,
                                avail < sizeof(tmp) ? avail : sizeof(tmp));
      ptrdiff_t used =
          kite__frame_reader_feed(&f->reader, tmp, k, fs_frame, f, NULL);
      assert_true(used >= 0);
      kite__kcp_consume(f->kcp, (size_t)used);
    }
    if (!f->silent)
      kite__kcp_flush(f->kcp, fake_now);
  }
  return got;
}

/* The index of the next control packet of |type| at or after *from, or -1. */
static inline int srv_find_ctrl(fsrv *s, int *from, uint8_t type) {
  for (int i = *from; i < s->nctrl; i++) {
    if (s->ctrl[i].type == type) {
      *from = i + 1;
      return i;
    }
  }
  return -1;
}

static inline int srv_count_ctrl(fsrv *s, uint8_t type) {
  int n = 0;
  for (int i = 0; i < s->nctrl; i++)
    n += s->ctrl[i].type == type;
  return n;
}

static inline void fs_send_frame(fsess *f, uint16_t msg_id, uint16_t flags,
                                 const void *body, uint32_t len, bool crc) {
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, msg_id, flags, body, len, crc);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)body, len}};
  assert_int_equal(kite__kcp_sendv(f->kcp, iov, len ? 2 : 1), 0);
  kite__kcp_flush(f->kcp, fake_now);
}

static const uint8_t COOKIE[16] = {0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5,
                                   0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB,
                                   0xCC, 0xCD, 0xCE, 0xCF};
static const uint8_t TOKEN[8] = {0x71, 0x72, 0x73, 0x74,
                                 0x75, 0x76, 0x77, 0x78};

static inline kite__ctrl mk(uint8_t type, const uint8_t nonce[8]) {
  kite__ctrl k;
  memset(&k, 0, sizeof(k));
  k.type = type;
  if (nonce)
    memcpy(k.nonce, nonce, 8);
  return k;
}

static inline kite__ctrl mk_accept(const uint8_t nonce[8], uint32_t conv,
                                   uint32_t idle_ms, uint32_t max_frame) {
  kite__ctrl k = mk(KITE__CTRL_ACCEPT, nonce);
  k.conv = conv;
  memcpy(k.token, TOKEN, 8);
  k.mtu = 1400;
  k.rcv_wnd = 128;
  k.idle_timeout_ms = idle_ms;
  k.max_frame = max_frame;
  return k;
}

/* Runs the handshake for a session just connected (its HELLO queued):
 * checks HELLO and CONNECT, answers CHALLENGE and ACCEPT, and returns the
 * server's session once the opening ping has arrived. */
static inline fsess *handshake(kite_client *c, fsrv *s, events *e,
                               uint32_t conv, uint32_t idle_ms,
                               uint32_t max_frame) {
  int before = e->connects;
  tick(c); /* the queued HELLO leaves */
  int at = s->nctrl;
  srv_pump(s, 1);
  int i = srv_find_ctrl(s, &at, KITE__CTRL_HELLO);
  assert_true(i >= 0);
  assert_int_equal(s->ctrl_len[i], 64);
  uint8_t nonce[8];
  memcpy(nonce, s->ctrl[i].nonce, 8);

  kite__ctrl k = mk(KITE__CTRL_CHALLENGE, nonce);
  memcpy(k.cookie, COOKIE, 16);
  srv_send_ctrl(s, &k);
  deliver(c);
  srv_pump(s, 1);
  i = srv_find_ctrl(s, &at, KITE__CTRL_CONNECT);
  assert_true(i >= 0);
  assert_int_equal(s->ctrl_len[i], 64);
  assert_memory_equal(s->ctrl[i].nonce, nonce, 8);
  assert_memory_equal(s->ctrl[i].cookie, COOKIE, 16);
  assert_int_equal(s->ctrl[i].mtu, 1400);
  assert_int_equal(s->ctrl[i].rcv_wnd, 128);

  k = mk_accept(nonce, conv, idle_ms, max_frame);
  srv_send_ctrl(s, &k);
  fsess *f = srv_session(s, conv, TOKEN);
  deliver(c);
  assert_int_equal(e->connects, before + 1);
  /* The session opens with a ping (PROTOCOL.md section 2, step 5). */
  srv_pump(s, 1);
  assert_true(f->nframes >= 1);
  assert_int_equal(f->h[0].msg_id, 0);
  assert_int_equal(f->h[0].flags & KITE__FRAME_F_PONG, 0);
  assert_int_equal(f->h[0].len, 4);
  return f;
}

#endif
