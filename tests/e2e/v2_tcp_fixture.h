/*
 * What test_v2_tcp.c and test_v2_tcp_open.c share: a server serving
 * version 2 on TCP (token key seq(00, 32), max_frame 40000), callbacks
 * that count and echo, and raw v2 peers from any loopback address
 * (tcp_v2_raw.h).
 */
#ifndef KITE_TESTS_E2E_V2_TCP_FIXTURE_H
#define KITE_TESTS_E2E_V2_TCP_FIXTURE_H

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
static uint32_t fixture_max_sessions; /* 0: the default; the test thread's */

static inline void on_connect(kite_server *s, kite_session_id id, void *u) {
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

static inline void on_disconnect(kite_server *s, kite_session_id id, int r,
                                 void *u) {
  (void)s; (void)id; (void)u;
  atomic_store(&last_reason, r);
  atomic_fetch_add(&disconnects, 1);
}

static inline void on_message(kite_server *s, kite_session_id id, uint16_t m,
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

static inline kite_server *server_mode(unsigned versions, uint32_t send_max,
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
  if (fixture_max_sessions)
    cfg.max_sessions = fixture_max_sessions;
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

static inline kite_server *server(unsigned versions, uint32_t send_max,
                                  int *port) {
  return server_mode(versions, send_max, false, port);
}

static inline int setup_with(void **state, unsigned versions, uint32_t send_max,
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

static inline int setup(void **state) {
  return setup_with(state, KITE_VERSION_1 | KITE_VERSION_2, 0, false);
}
static inline int setup_hash(void **state) {
  return setup_with(state, KITE_VERSION_1 | KITE_VERSION_2, 0, true);
}
static inline int setup_small_out(void **state) {
  return setup_with(state, KITE_VERSION_1 | KITE_VERSION_2, 65536, false);
}

static inline int teardown(void **state) {
  fixture *f = *state;
  kite_server_destroy(f->srv);
  free(f);
  return 0;
}

static inline kite_server_stats stats(const fixture *f) {
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
static inline int connect_from(const fixture *f, const char *src, int src_port,
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
static inline void open_peer(const fixture *f, v2peer *p) {
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(v2_mint(tok, f->key, NULL, f->port, 77, "player=alice",
                           0, 60), 0);
  v2peer_init(p, connect_from(f, NULL, 0, 0), tok);
  assert_true(v2peer_open(p));
}

/* A ping in the first record: the session opens, the pong comes back. */
static inline void ping(v2peer *p) {
  assert_true(v2peer_frame(p, KITE__MSG_PING, 0, "ping", 4, 0));
  kite__frame_hdr h;
  uint8_t b[32];
  assert_true(v2peer_read_frame(p, &h, b, sizeof(b)));
  assert_int_equal(h.msg_id, KITE__MSG_PING);
  assert_true(h.flags & KITE__FRAME_F_PONG);
  assert_memory_equal(b, "ping", 4);
}

static inline void echo(v2peer *p, uint16_t flags, const uint8_t *body,
                        uint32_t len, size_t per) {
  static uint8_t got[65536];
  assert_true(v2peer_frame(p, MSG_ECHO, flags, body, len, per));
  kite__frame_hdr h;
  assert_true(v2peer_read_frame(p, &h, got, sizeof(got)));
  assert_int_equal(h.msg_id, MSG_ECHO);
  assert_int_equal(h.len, len);
  assert_memory_equal(got, body, len);
}


#endif
