/*
 * Protocol version 2 inside WebSocket messages (issue 17): the TCP v2
 * stream of tcp_v2_raw.h, cut into binary messages anywhere. OPEN and
 * OPENED, records both ways, session info, the CLOSE frame's reason, a
 * WebSocket close or EOF without one (reason 5), a flipped bit (closed,
 * nothing more sent), and the server's own CLOSE frame.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "tcp_v2_raw.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum { MSG_ECHO = 1, MSG_KICK = 5 };

static atomic_int connects, disconnects, last_reason, info_version,
    info_transport;
static atomic_ullong info_client_id;

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)u;
  kite_session_info in;
  if (kite_session_get_info(s, id, &in) == 0) {
    atomic_store(&info_version, in.version);
    atomic_store(&info_transport, (int)in.transport);
    atomic_store(&info_client_id, in.client_id);
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
  kite_session_send(s, id, m, b, n);
  if (m == MSG_KICK)
    kite_session_close(s, id);
}

typedef struct fixture {
  kite_server *srv;
  int port;
  uint8_t key[KITE_TOKEN_KEY_BYTES];
} fixture;

static int setup(void **state) {
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  atomic_store(&last_reason, -1);
  fixture *f = calloc(1, sizeof(*f));
  v2_test_key(f->key);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.handshake_timeout_ms = 1000;
  cfg.idle_timeout_ms = 5000;
  cfg.max_frame = 40000;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.on_message = on_message;
  cfg.versions = KITE_VERSION_2;
  cfg.token_key_set = true;
  v2_test_key(cfg.token_key);
  cfg.protocol_id = V2_PROTOCOL_ID;
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  f->port = kite_server_tcp_port(f->srv);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  free(f);
  return 0;
}

#define WAIT_FOR(cond, ms)                                                   \
  ({                                                                         \
    uint64_t end_ = kite__now_us() + (uint64_t)(ms) * 1000;                  \
    while (!(cond) && kite__now_us() < end_)                                 \
      usleep(2000);                                                          \
    (cond);                                                                  \
  })

/* ---- a WebSocket under the v2 peer ---- */

typedef struct wsio {
  uint8_t buf[70000]; /* message payloads read, not yet taken */
  size_t have, at;
  bool closed; /* a close frame came */
  uint16_t close_code;
} wsio;

/* One masked client frame. */
static bool ws_frame(int fd, uint8_t op, const void *p, size_t n) {
  uint8_t *b = malloc(16 + n);
  size_t h = 0;
  b[h++] = (uint8_t)(0x80 | op);
  if (n < 126) {
    b[h++] = 0x80 | (uint8_t)n;
  } else {
    b[h++] = 0x80 | 126;
    b[h++] = (uint8_t)(n >> 8);
    b[h++] = (uint8_t)n;
  }
  const uint8_t key[4] = {0x5a, 0x21, 0x93, 0x0c};
  memcpy(b + h, key, 4);
  h += 4;
  for (size_t i = 0; i < n; i++)
    b[h + i] = ((const uint8_t *)p)[i] ^ key[i % 4];
  bool ok = tcp_raw_write(fd, b, h + n);
  free(b);
  return ok;
}

/* Stream bytes in binary messages of 1000 bytes at most: cut anywhere. */
static bool ws_wr(v2peer *p, const void *b, size_t n) {
  for (size_t at = 0; at < n; at += 1000)
    if (!ws_frame(p->fd, 0x2, (const uint8_t *)b + at,
                  n - at < 1000 ? n - at : 1000))
      return false;
  return true;
}

/* The next server frame into the buffer. false: EOF, a close, or else. */
static bool ws_more(v2peer *p) {
  wsio *w = p->io;
  uint8_t h[2];
  if (w->closed || !tcp_raw_read(p->fd, h, 2) || (h[1] & 0x80))
    return false;
  size_t n = h[1] & 0x7F;
  if (n == 126) {
    uint8_t e[2];
    if (!tcp_raw_read(p->fd, e, 2))
      return false;
    n = (size_t)e[0] << 8 | e[1];
  } else if (n == 127) {
    return false;
  }
  if (w->at) {
    memmove(w->buf, w->buf + w->at, w->have - w->at);
    w->have -= w->at;
    w->at = 0;
  }
  if (n > sizeof(w->buf) - w->have || !tcp_raw_read(p->fd, w->buf + w->have, n))
    return false;
  if ((h[0] & 0x0F) == 0x8) {
    w->closed = true;
    w->close_code = n >= 2 ? (uint16_t)(w->buf[w->have] << 8 | w->buf[w->have + 1]) : 0;
    return false;
  }
  if ((h[0] & 0x0F) != 0x2)
    return false;
  w->have += n;
  return true;
}

static bool ws_rd(v2peer *p, void *b, size_t n) {
  wsio *w = p->io;
  while (w->have - w->at < n)
    if (!ws_more(p))
      return false;
  memcpy(b, w->buf + w->at, n);
  w->at += n;
  return true;
}

static int ws_connect(const fixture *f) {
  int fd = tcp_raw_connect(f->port, 5000, 0);
  assert_true(fd >= 0);
  const char *req =
      "GET /kite HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n";
  assert_true(tcp_raw_write(fd, req, strlen(req)));
  char head[512];
  size_t n = 0;
  while (n + 1 < sizeof(head)) {
    assert_int_equal(recv(fd, head + n, 1, 0), 1);
    n++;
    if (n >= 4 && !memcmp(head + n - 4, "\r\n\r\n", 4))
      break;
  }
  head[n] = 0;
  assert_non_null(strstr(head, " 101 "));
  return fd;
}

static void ws_peer(const fixture *f, v2peer *p, wsio *w) {
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 99, "bob", 0, 60), 0);
  v2peer_init(p, ws_connect(f), tok);
  memset(w, 0, sizeof(*w));
  p->io = w;
  p->wr = ws_wr;
  p->rd = ws_rd;
  assert_true(v2peer_open(p));
  assert_true(v2peer_frame(p, KITE__MSG_PING, 0, "ping", 4, 0));
  kite__frame_hdr h;
  uint8_t b[8];
  assert_true(v2peer_read_frame(p, &h, b, sizeof(b)));
  assert_true(h.flags & KITE__FRAME_F_PONG);
}

static void ws_open_echo_close(void **state) {
  fixture *f = *state;
  v2peer p;
  wsio w;
  ws_peer(f, &p, &w);
  assert_true(WAIT_FOR(atomic_load(&connects) == 1, 2000));
  assert_int_equal(atomic_load(&info_version), 2);
  assert_int_equal(atomic_load(&info_transport), KITE_TRANSPORT_WS);
  assert_int_equal(atomic_load(&info_client_id), 99);
  static uint8_t body[30000], got[30000];
  for (size_t i = 0; i < sizeof(body); i++)
    body[i] = (uint8_t)(i * 13);
  assert_true(v2peer_frame(&p, MSG_ECHO, 0, body, sizeof(body), 3000));
  kite__frame_hdr h;
  assert_true(v2peer_read_frame(&p, &h, got, sizeof(got)));
  assert_int_equal(h.len, sizeof(body));
  assert_memory_equal(got, body, sizeof(body));
  /* The CLOSE frame's reason, then a WebSocket close: that reason. */
  uint8_t reason = KITE_CLOSE_IDLE;
  assert_true(v2peer_frame(&p, KITE__MSG_CLOSE_NOTICE, 0, &reason, 1, 0));
  assert_true(ws_frame(p.fd, 0x8, "\x03\xe8", 2));
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_IDLE);
  v2peer_free(&p);

  /* A WebSocket close with no CLOSE frame: reason 5. */
  ws_peer(f, &p, &w);
  assert_true(ws_frame(p.fd, 0x8, "\x03\xe8", 2));
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 2, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_DEAD_LINK);
  v2peer_free(&p);

  /* The server's close: the CLOSE frame, sealed, then its close. */
  ws_peer(f, &p, &w);
  uint8_t k = 1, b[8];
  assert_true(v2peer_frame(&p, MSG_KICK, 0, &k, 1, 0));
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_int_equal(h.msg_id, MSG_KICK);
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_int_equal(h.msg_id, KITE__MSG_CLOSE_NOTICE);
  assert_int_equal(b[0], KITE_CLOSE_KICKED);
  assert_false(ws_more(&p));
  assert_true(w.closed);
  assert_int_equal(w.close_code, 1000);
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 3, 3000));
}

/* A flipped bit: closed with reason 2, and nothing more comes. */
static void ws_bad_record(void **state) {
  fixture *f = *state;
  v2peer p;
  wsio w;
  ws_peer(f, &p, &w);
  uint8_t fr[32];
  size_t n = tcp_raw_frame(fr, MSG_ECHO, 0, "flip", 4, false);
  assert_true(v2peer_record(&p, fr, n, true));
  assert_int_equal(tcp_raw_expect_eof(p.fd), 0);
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_PROTOCOL);
  kite_server_stats st;
  kite_server_stats_get(f->srv, &st);
  assert_int_equal(st.v2_tcp_drop_record_auth, 1);
  assert_int_equal(st.v2_tcp_opened, 1);
}

/* A WebSocket close inside a read that fills the shard's buffer (64 KiB),
 * with bytes after it: the session ends mid-loop and the loop must not
 * look at its link again. */
static void ws_close_inside_a_full_read(void **state) {
  fixture *f = *state;
  v2peer p;
  wsio w;
  ws_peer(f, &p, &w);
  /* Records of echo frames, sealed, then a close: about 60 KiB of it. */
  static uint8_t all[80000], fr[2000];
  size_t at = 0;
  while (at < 60000) {
    size_t n = tcp_raw_frame(fr, 0x7F00, 0, fr + 1000, 900, false);
    uint8_t rec[2000];
    int k = kite__v2rec_seal(rec, sizeof(rec), p.rn++, p.keys.c2s, fr, n);
    assert_true(k > 0);
    /* one masked binary message per record */
    all[at++] = 0x82;
    all[at++] = 0x80 | 126;
    all[at++] = (uint8_t)(k >> 8);
    all[at++] = (uint8_t)k;
    memset(all + at, 0, 4); /* a zero mask */
    at += 4;
    memcpy(all + at, rec, (size_t)k);
    at += (size_t)k;
  }
  const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
  memcpy(all + at, close_frame, sizeof(close_frame));
  at += sizeof(close_frame);
  memset(all + at, 0x82, 8000); /* more after it, in the same read */
  at += 8000;
  assert_true(tcp_raw_write(p.fd, all, at));
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 5000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_DEAD_LINK);
  v2peer_free(&p);
}

/* Refusals in messages: REJECT 7 for a token listing another server,
 * REJECT 2 (version 2's header) for v1's OPEN at a v2-only server; each
 * then the close 1002 and the lingering close. */
static void ws_refusals(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES], r = 0, ver = 0;
  assert_int_equal(v2_mint(tok, f->key, "127.0.0.1:1", 0, 1, NULL, 0, 60), 0);
  v2peer p;
  wsio w;
  v2peer_init(&p, ws_connect(f), tok);
  memset(&w, 0, sizeof(w));
  p.io = &w;
  p.wr = ws_wr;
  p.rd = ws_rd;
  uint8_t b[KITE__V2CTL_MAX];
  int n = v2_open_bytes(&p, b);
  assert_true(p.wr(&p, b, (size_t)n));
  assert_int_equal(v2peer_answer(&p, &r, &ver), 0);
  assert_int_equal(r, KITE__REJECT_NOT_HERE);
  assert_int_equal(ver, 2);
  assert_false(ws_more(&p));
  assert_true(w.closed);
  assert_int_equal(w.close_code, 1002);
  v2peer_free(&p);

  v2peer_init(&p, ws_connect(f), tok);
  memset(&w, 0, sizeof(w));
  p.io = &w;
  p.wr = ws_wr;
  p.rd = ws_rd;
  n = tcp_raw_ctrl(b, KITE__CTRL_OPEN, 0);
  assert_true(p.wr(&p, b, (size_t)n));
  assert_int_equal(v2peer_answer(&p, &r, &ver), 0);
  assert_int_equal(r, KITE__REJECT_VERSION);
  assert_int_equal(ver, 2);
  v2peer_free(&p);
  kite_server_stats st;
  kite_server_stats_get(f->srv, &st);
  assert_int_equal(st.v2_tcp_reject_not_here, 1);
  assert_int_equal(st.reject_version, 1);
  assert_int_equal(atomic_load(&connects), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ws_open_echo_close, setup, teardown),
      cmocka_unit_test_setup_teardown(ws_bad_record, setup, teardown),
      cmocka_unit_test_setup_teardown(ws_refusals, setup, teardown),
      cmocka_unit_test_setup_teardown(ws_close_inside_a_full_read, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
