/*
 * Protocol version 2 over TCP (PROTOCOL-v2.md section 8) against a raw v2
 * peer on loopback (tcp_v2_raw.h): OPEN with a minted token, frames both
 * ways over records (split across records, unreliable flag), session info,
 * every REJECT reason, a token reused from another address or the same
 * one, a flipped bit, bad record lengths, EOF without a CLOSE frame, a
 * CLOSE frame's reason, the server's own CLOSE frame, slowloris OPENs and
 * silent OPENED sessions, and a peer that stops reading.
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

enum { MSG_ECHO = 1, MSG_FLOOD = 4, MSG_KICK = 5 };

static atomic_int connects, disconnects, last_reason, flood_full;
static atomic_int handler_delay_us;
static atomic_int info_version;
static atomic_ullong info_client_id, last_id;
static char info_user[32];
static atomic_int info_ready;

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)u;
  kite_session_info in;
  if (kite_session_get_info(s, id, &in) == 0) {
    memcpy(info_user, in.user_data, sizeof(info_user));
    atomic_store(&info_version, in.version);
    atomic_store(&info_client_id, in.client_id);
    atomic_store(&info_ready, 1);
  }
  atomic_store(&last_id, id);
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
  static uint8_t big[4096];
  int delay = atomic_load(&handler_delay_us);
  if (delay)
    usleep((useconds_t)delay);
  if (m == MSG_FLOOD) {
    for (int i = 0; i < 100000; i++)
      if (kite_session_send(s, id, MSG_ECHO, big, sizeof(big)) == KITE_EFULL) {
        atomic_store(&flood_full, 1);
        break;
      }
    return;
  }
  kite_session_send(s, id, m, b, n);
  if (m == MSG_KICK)
    kite_session_close(s, id);
}

typedef struct fixture {
  kite_server *srv;
  int port;
  uint8_t key[KITE_TOKEN_KEY_BYTES];
} fixture;

static kite_server *server_mode(unsigned versions, uint32_t send_max,
                               bool hash, int *port) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  if (hash) { /* a 1 KiB mailbox: slow handlers push back */
    cfg.worker_mode = KITE_WORKERS_HASH;
    cfg.workers = 2;
    cfg.mailbox_bytes = 1024;
  }
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
  cfg.versions = versions;
  if (versions & KITE_VERSION_2) {
    cfg.token_key_set = true;
    v2_test_key(cfg.token_key);
    cfg.protocol_id = V2_PROTOCOL_ID;
  }
  if (send_max) {
    cfg.tcp_send_max = send_max;
    cfg.tcp_stall_ms = 60000;
  }
  kite_server *srv = NULL;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  *port = kite_server_tcp_port(srv);
  return srv;
}

static kite_server *server(unsigned versions, uint32_t send_max, int *port) {
  return server_mode(versions, send_max, false, port);
}

static int setup_with(void **state, unsigned versions, uint32_t send_max,
                      bool hash) {
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  atomic_store(&last_reason, -1);
  atomic_store(&flood_full, 0);
  atomic_store(&info_ready, 0);
  atomic_store(&handler_delay_us, 0);
  fixture *f = calloc(1, sizeof(*f));
  v2_test_key(f->key);
  f->srv = server_mode(versions, send_max, hash, &f->port);
  *state = f;
  return 0;
}

static int setup(void **state) {
  return setup_with(state, KITE_VERSION_1 | KITE_VERSION_2, 0, false);
}
static int setup_hash(void **state) {
  return setup_with(state, KITE_VERSION_1 | KITE_VERSION_2, 0, true);
}
static int setup_small_out(void **state) {
  return setup_with(state, KITE_VERSION_1 | KITE_VERSION_2, 65536, false);
}

static int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  free(f);
  return 0;
}

static kite_server_stats stats(const fixture *f) {
  kite_server_stats st;
  kite_server_stats_get(f->srv, &st);
  return st;
}

#define WAIT_FOR(cond, ms)                                                   \
  ({                                                                         \
    uint64_t end_ = kite__now_us() + (uint64_t)(ms) * 1000;                  \
    while (!(cond) && kite__now_us() < end_)                                 \
      usleep(2000);                                                          \
    (cond);                                                                  \
  })

/* A connection from |src| (NULL: any; "127.0.0.2" binds it there, with
 * |src_port| when not 0). */
static int connect_from(const fixture *f, const char *src, int src_port,
                        int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (src) {
    struct sockaddr_in b = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)src_port)};
    inet_pton(AF_INET, src, &b.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof(b)), 0);
  }
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)f->port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

/* A peer with a fresh token (client_id 77, "player=alice"), OPENED. */
static void open_peer(const fixture *f, v2peer *p) {
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 77, "player=alice",
                           0, 60), 0);
  v2peer_init(p, connect_from(f, NULL, 0, 0), tok);
  assert_true(v2peer_open(p));
}

/* A ping in the first record: the session opens, the pong comes back. */
static void ping(v2peer *p) {
  assert_true(v2peer_frame(p, KITE__MSG_PING, 0, "ping", 4, 0));
  kite__frame_hdr h;
  uint8_t b[32];
  assert_true(v2peer_read_frame(p, &h, b, sizeof(b)));
  assert_int_equal(h.msg_id, KITE__MSG_PING);
  assert_true(h.flags & KITE__FRAME_F_PONG);
  assert_memory_equal(b, "ping", 4);
}

static void echo(v2peer *p, uint16_t flags, const uint8_t *body, uint32_t len,
                 size_t per) {
  static uint8_t got[65536];
  assert_true(v2peer_frame(p, MSG_ECHO, flags, body, len, per));
  kite__frame_hdr h;
  assert_true(v2peer_read_frame(p, &h, got, sizeof(got)));
  assert_int_equal(h.msg_id, MSG_ECHO);
  assert_int_equal(h.len, len);
  assert_memory_equal(got, body, len);
}

static void open_echo_info_close(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  assert_int_equal(p.acc.max_frame, 40000);
  assert_int_equal(p.acc.idle_timeout_ms, 5000);
  assert_int_equal(p.acc.max_unreliable, 1400 - 36);
  assert_int_equal(p.acc.reserved, 0);
  assert_int_equal(atomic_load(&connects), 0); /* half-open until a record */
  ping(&p);
  assert_true(WAIT_FOR(atomic_load(&info_ready) == 1, 2000));
  assert_int_equal(atomic_load(&info_version), 2);
  assert_int_equal(atomic_load(&info_client_id), 77);
  assert_string_equal(info_user, "player=alice");
  kite_session_info in;
  assert_int_equal(kite_session_get_info(f->srv, atomic_load(&last_id), &in), 0);
  assert_int_equal(in.version, 2);
  assert_int_equal(in.transport, KITE_TRANSPORT_TCP);
  assert_int_equal(in.client_id, 77);

  static uint8_t body[30000];
  for (size_t i = 0; i < sizeof(body); i++)
    body[i] = (uint8_t)(i * 7);
  echo(&p, 0, body, 10, 0);
  echo(&p, 0, body, sizeof(body), 0);    /* 2 records each way */
  echo(&p, 0, body, sizeof(body), 1000); /* 31 records in */
  echo(&p, 0, body, 100, 5);             /* header split across records */
  echo(&p, KITE__FRAME_F_UNRELIABLE, body, 1364, 0); /* max_unreliable */
  /* Several frames in one record. */
  uint8_t two[64];
  size_t n = tcp_raw_frame(two, MSG_ECHO, 0, "ab", 2, true);
  n += tcp_raw_frame(two + n, MSG_ECHO, 0, "cd", 2, false);
  assert_true(v2peer_record(&p, two, n, false));
  kite__frame_hdr h;
  uint8_t b[8];
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_memory_equal(b, "ab", 2);
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_memory_equal(b, "cd", 2);

  /* The CLOSE frame's reason, then the FIN: that reason. */
  uint8_t reason = KITE_CLOSE_SHUTDOWN;
  assert_true(v2peer_frame(&p, KITE__MSG_CLOSE_NOTICE, 0, &reason, 1, 0));
  shutdown(p.fd, SHUT_WR);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_SHUTDOWN);
  v2peer_free(&p);

  /* The server's close: its CLOSE frame, sealed, then an orderly EOF. */
  open_peer(f, &p);
  ping(&p);
  echo(&p, 0, body, 0, 0);
  uint8_t k = 1;
  assert_true(v2peer_frame(&p, MSG_KICK, 0, &k, 1, 0));
  assert_true(v2peer_read_frame(&p, &h, b, sizeof(b)));
  assert_int_equal(h.msg_id, MSG_KICK);
  assert_int_equal(v2peer_expect_close(&p, KITE_CLOSE_KICKED), 0);
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 2, 3000));
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_opens, 2);
  assert_int_equal(st.v2_tcp_opened, 2);
  assert_int_equal(st.sessions_opened, 2);
  assert_int_equal(st.closed_protocol, 0);
}

/* An unreliable frame over max_unreliable is a protocol error. */
static void unreliable_over_limit(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  ping(&p);
  static uint8_t body[1365];
  assert_true(v2peer_frame(&p, MSG_ECHO, KITE__FRAME_F_UNRELIABLE, body,
                           sizeof(body), 0));
  assert_int_equal(v2peer_expect_close(&p, KITE_CLOSE_PROTOCOL), 0);
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_PROTOCOL);
}

/* One OPEN with |tok| from a fresh connection: the REJECT's reason (and
 * header version), or -1 when closed without a word. */
static int reject_of(const fixture *f, const uint8_t *tok, uint8_t *version) {
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX], reason = 0;
  int n = v2_open_bytes(&p, b);
  assert_true(p.wr(&p, b, (size_t)n));
  int rc = v2peer_answer(&p, &reason, version);
  assert_true(rc != 1);
  if (rc == 0)
    assert_int_equal(tcp_raw_expect_eof(p.fd), 0); /* lingering close */
  v2peer_free(&p);
  return rc == 0 ? reason : -1;
}

static void rejects(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES], other[KITE_TOKEN_KEY_BYTES], ver = 0;
  /* 5: expired (created 100 s ago, lived 30). */
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 1, NULL, 100, 30), 0);
  assert_int_equal(reject_of(f, tok, &ver), 5);
  assert_int_equal(ver, 2);
  /* 6: sealed under another key. */
  memset(other, 0xAB, sizeof(other));
  assert_int_equal(v2_mint(tok, other, NULL, f->port, 1, NULL, 0, 60), 0);
  assert_int_equal(reject_of(f, tok, &ver), 6);
  /* 6: altered (a bit of sealed_private flipped). */
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 1, NULL, 0, 60), 0);
  tok[288 + 100] ^= 1;
  assert_int_equal(reject_of(f, tok, &ver), 6);
  /* 7: not among its addresses. */
  assert_int_equal(v2_mint(tok, f->key, "127.0.0.1:1", 0, 1, NULL, 0, 60), 0);
  assert_int_equal(reject_of(f, tok, &ver), 7);
  /* 2: a version no one serves, in the header of the highest served. */
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX], r = 0;
  int n = v2_open_bytes(&p, b);
  b[5] = 3;
  assert_true(p.wr(&p, b, (size_t)n));
  assert_int_equal(v2peer_answer(&p, &r, &ver), 0);
  assert_int_equal(r, KITE__REJECT_VERSION);
  assert_int_equal(ver, 2);
  v2peer_free(&p);
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_reject_expired, 1);
  assert_int_equal(st.v2_tcp_reject_token, 2);
  assert_int_equal(st.v2_tcp_reject_not_here, 1);
  assert_int_equal(st.reject_version, 1);
  assert_int_equal(st.v2_tcp_opens, 4);
  assert_int_equal(st.v2_tcp_opened, 0);
  assert_int_equal(atomic_load(&connects), 0);
  assert_true(WAIT_FOR(stats(f).sessions == 0, 2000));
}

/* REJECT 2 when a version is not served: v2 at a v1-only server (v1's
 * header), v1 at a v2-only one (v2's header). */
static void versions_not_served(void **state) {
  (void)state;
  uint8_t key[KITE_TOKEN_KEY_BYTES], tok[KITE_TOKEN_BYTES], ver = 0, r = 0;
  v2_test_key(key);
  fixture g;
  g.srv = server(KITE_VERSION_1, 0, &g.port);
  assert_int_equal(v2_mint(tok, key, NULL, g.port, 1, NULL, 0, 60), 0);
  assert_int_equal(reject_of(&g, tok, &ver), KITE__REJECT_VERSION);
  assert_int_equal(ver, 1);
  kite_server_stats st;
  kite_server_stats_get(g.srv, &st);
  assert_int_equal(st.reject_version, 1);
  kite_server_destroy(g.srv);

  g.srv = server(KITE_VERSION_2, 0, &g.port);
  int fd = connect_from(&g, NULL, 0, 0);
  uint8_t b[KITE__CTRL_MAX];
  int n = tcp_raw_ctrl(b, KITE__CTRL_OPEN, 0);
  assert_true(tcp_raw_write(fd, b, (size_t)n));
  assert_true(tcp_raw_read(fd, b, 17));
  assert_int_equal(b[4], KITE__CTRL_REJECT);
  assert_int_equal(b[5], 2);
  assert_int_equal(b[16], KITE__REJECT_VERSION);
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);
  /* A v2 control packet of another type than OPEN: closed unanswered. */
  fd = connect_from(&g, NULL, 0, 0);
  uint8_t hello[64] = {'K', 'I', 'T', 'E', KITE__CTRL_HELLO, 2};
  assert_true(tcp_raw_write(fd, hello, sizeof(hello)));
  assert_int_equal(tcp_raw_expect_eof(fd), 0);
  close(fd);
  kite_server_stats_get(g.srv, &st);
  assert_int_equal(st.reject_version, 1);
  assert_int_equal(st.tcp_bad_open, 1);
  (void)r;
  kite_server_destroy(g.srv);
}

/* A token opens one session per server: from another address it is
 * ignored (closed without a word); from the same address and port, once
 * its session ended, REJECT 8. */
static void token_reuse(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES], ver = 0;
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 5, NULL, 0, 60), 0);
  v2peer p;
  int fd = connect_from(f, "127.0.0.3", 0, 0);
  struct sockaddr_in me;
  socklen_t ml = sizeof(me);
  getsockname(fd, (struct sockaddr *)&me, &ml);
  v2peer_init(&p, fd, tok);
  assert_true(v2peer_open(&p));
  ping(&p);
  assert_true(WAIT_FOR(atomic_load(&connects) == 1, 2000));

  /* Another address, while the session lives. */
  v2peer q;
  v2peer_init(&q, connect_from(f, "127.0.0.2", 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX], r = 0;
  int n = v2_open_bytes(&q, b);
  assert_true(q.wr(&q, b, (size_t)n));
  assert_int_equal(v2peer_answer(&q, &r, &ver), -1);
  v2peer_free(&q);

  /* The same address and port once it ended (a reset: no TIME_WAIT). */
  struct linger lg = {1, 0};
  setsockopt(p.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  v2peer_free(&p);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_DEAD_LINK);
  v2peer_init(&p, connect_from(f, "127.0.0.3", ntohs(me.sin_port), 0), tok);
  n = v2_open_bytes(&p, b);
  assert_true(p.wr(&p, b, (size_t)n));
  assert_int_equal(v2peer_answer(&p, &r, &ver), 0);
  assert_int_equal(r, KITE__REJECT_USED);
  v2peer_free(&p);
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_ignored_bound, 1);
  assert_int_equal(st.v2_tcp_reject_used, 1);
  assert_int_equal(st.v2_tcp_opened, 1);
  assert_int_equal(atomic_load(&connects), 1);
}

/* A record that does not verify, or a len of 0 or over 16384: closed at
 * once, nothing more sent (no CLOSE frame), on_disconnect once, reason 2. */
static void bad_records(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 3; i++) {
    v2peer p;
    open_peer(f, &p);
    ping(&p);
    assert_true(WAIT_FOR(atomic_load(&connects) == i + 1, 2000));
    if (i == 0) {
      uint8_t fr[32];
      size_t n = tcp_raw_frame(fr, MSG_ECHO, 0, "flip", 4, false);
      assert_true(v2peer_record(&p, fr, n, true));
    } else { /* the len alone: refused before anything more is read */
      uint8_t len[2] = {0, 0};
      if (i == 2) {
        len[0] = 0x01; /* 16385 */
        len[1] = 0x40;
      }
      assert_true(p.wr(&p, len, 2));
    }
    assert_int_equal(tcp_raw_expect_eof(p.fd), 0);
    v2peer_free(&p);
    assert_true(WAIT_FOR(atomic_load(&disconnects) == i + 1, 3000));
    assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_PROTOCOL);
  }
  assert_int_equal(atomic_load(&disconnects), 3); /* once each */
  kite_server_stats st = stats(f);
  assert_int_equal(st.v2_tcp_drop_record_auth, 1);
  assert_int_equal(st.v2_tcp_drop_record_len, 2);
  assert_int_equal(st.closed_protocol, 3);
}

/* An EOF with no CLOSE frame: reason 5, not 0 (a FIN proves nothing). */
static void eof_without_close(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  ping(&p);
  shutdown(p.fd, SHUT_WR);
  assert_true(WAIT_FOR(atomic_load(&disconnects) == 1, 3000));
  assert_int_equal(atomic_load(&last_reason), KITE_CLOSE_DEAD_LINK);
  v2peer_free(&p);
}

/* Slowloris: OPEN's header, then nothing: closed at the handshake
 * timeout, counted. OPENED, then no record: the same, unheard of. */
static void slow_open_and_silent_session(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 9, NULL, 0, 60), 0);
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  uint8_t b[KITE__V2CTL_MAX];
  int n = v2_open_bytes(&p, b);
  assert_true(p.wr(&p, b, 300)); /* the header and then some */
  assert_int_equal(tcp_raw_expect_eof(p.fd), 0);
  v2peer_free(&p);
  assert_int_equal(stats(f).halfopen_expired, 1);
  assert_int_equal(stats(f).v2_tcp_opens, 0);

  v2peer_init(&p, connect_from(f, NULL, 0, 0), tok);
  assert_true(p.wr(&p, b, (size_t)n));
  uint8_t r, v;
  assert_int_equal(v2peer_answer(&p, &r, &v), 1);
  assert_int_equal(tcp_raw_expect_eof(p.fd), 0); /* without a word */
  v2peer_free(&p);
  assert_true(WAIT_FOR(stats(f).halfopen_expired == 2, 2000));
  assert_int_equal(atomic_load(&connects), 0);
  assert_int_equal(atomic_load(&disconnects), 0);
  assert_true(WAIT_FOR(stats(f).sessions == 0, 2000));
}

/* A v2 peer that stops reading: its queue of records reaches tcp_send_max
 * and sends fail with KITE_EFULL, as on v1; what was queued is whole
 * records, read fine once the peer reads again. */
static void backpressure(void **state) {
  fixture *f = *state;
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 3, NULL, 0, 60), 0);
  v2peer p;
  v2peer_init(&p, connect_from(f, NULL, 0, 4096), tok);
  assert_true(v2peer_open(&p));
  ping(&p);
  assert_true(v2peer_frame(&p, MSG_FLOOD, 0, NULL, 0, 0));
  assert_true(WAIT_FOR(atomic_load(&flood_full) == 1, 5000));
  assert_true(stats(f).tcp_send_full >= 1);
  static uint8_t body[8192];
  for (int i = 0; i < 40; i++) {
    kite__frame_hdr h;
    assert_true(v2peer_read_frame(&p, &h, body, sizeof(body)));
    assert_int_equal(h.msg_id, MSG_ECHO);
    assert_int_equal(h.len, 4096);
  }
  v2peer_free(&p);
}

/* Slow handlers fill a 1 KiB mailbox: the plaintext it refused and the
 * records not yet read wait, then go on in order. Frames cut across
 * records of 100 bytes, all in one write. */
static void input_backpressure(void **state) {
  fixture *f = *state;
  v2peer p;
  open_peer(f, &p);
  ping(&p);
  atomic_store(&handler_delay_us, 200);
  enum { COUNT = 400 };
  uint8_t *all = malloc(COUNT * 64), *wire = malloc(COUNT * 64 * 2);
  size_t at = 0, w = 0;
  for (uint32_t seq = 0; seq < COUNT; seq++) {
    uint8_t body[40] = {0};
    memcpy(body, &seq, 4);
    at += tcp_raw_frame(all + at, MSG_ECHO, 0, body, 4 + seq % 29, seq & 1);
  }
  for (size_t i = 0; i < at; i += 100) {
    size_t len = at - i < 100 ? at - i : 100;
    w += (size_t)kite__v2rec_seal(wire + w, 200, p.rn++, p.keys.c2s, all + i,
                                  len);
  }
  assert_true(tcp_raw_write(p.fd, wire, w));
  free(all);
  free(wire);
  for (uint32_t i = 0; i < COUNT; i++) {
    kite__frame_hdr h;
    uint8_t body[64];
    assert_true(v2peer_read_frame(&p, &h, body, sizeof(body)));
    assert_int_equal(h.msg_id, MSG_ECHO);
    uint32_t seq;
    memcpy(&seq, body, 4);
    assert_int_equal(seq, i);
    assert_int_equal(h.len, 4 + seq % 29);
  }
  assert_true(stats(f).backpressure > 0);
  assert_int_equal(stats(f).closed_protocol, 0);
  v2peer_free(&p);
}

static void quiet(void *user, kite_log_level level, const char *msg) {
  (void)user; (void)level; (void)msg;
}

/* tcp_send_max must hold a max_frame sealed as records, or a v2 session
 * could never send one: refused at create. */
static void send_max_holds_a_sealed_frame(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.log = quiet;
  cfg.max_frame = 40000;
  cfg.token_key_set = true;
  v2_test_key(cfg.token_key);
  cfg.tcp_send_max = 40000 + KITE__FRAME_HDR; /* enough for v1 only */
  kite_server *srv = NULL;
  assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
  cfg.versions = KITE_VERSION_1; /* v1 alone: fine */
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  kite_server_destroy(srv);
  cfg.versions = KITE_VERSION_2;
  cfg.tcp_send_max = 40000 + KITE__FRAME_HDR + 3 * 18 + 14;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(open_echo_info_close, setup, teardown),
      cmocka_unit_test_setup_teardown(unreliable_over_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(rejects, setup, teardown),
      cmocka_unit_test(versions_not_served),
      cmocka_unit_test(send_max_holds_a_sealed_frame),
      cmocka_unit_test_setup_teardown(token_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_records, setup, teardown),
      cmocka_unit_test_setup_teardown(eof_without_close, setup, teardown),
      cmocka_unit_test_setup_teardown(slow_open_and_silent_session, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(backpressure, setup_small_out, teardown),
      cmocka_unit_test_setup_teardown(input_backpressure, setup_hash, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
