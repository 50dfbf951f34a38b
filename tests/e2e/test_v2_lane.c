/*
 * The snapshot lane end to end (issue 18): kite's client and server over
 * loopback. Version 2 over UDP both ways in every worker mode (sequenced
 * order never goes backwards, the lane told to handlers and to
 * on_unreliable), oversize refused on both sides, the per-session budget
 * enforced and counted, a version 1 session served reliably, a version 2
 * TCP session with the frame's unreliable flag.
 *
 * Handlers run on shards or workers: they count what they see in atomics
 * and the test thread asserts. Every wait is bounded by a condition.
 */
#include "kite/kite.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define PID 0x6c616e65u
#define MSG 10      /* echoed on the lane by the server */
#define MSG_REL 11  /* reliable: its flags must be 0 */
#define MSG_SINK 12 /* counted, not echoed */
#define MSG_BLOCK 13 /* holds its executor until the test releases it */

static uint8_t key[KITE_TOKEN_KEY_BYTES];

/* The server's side: written by handlers, read by the test thread. */
static _Atomic uint32_t srv_seq_in, srv_unseq_in, srv_rel_in, srv_back;
static _Atomic uint32_t srv_bad_flags; /* a lane told wrong */
static _Atomic int64_t srv_last;       /* newest sequenced counter seen */
static _Atomic uint64_t srv_id;

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
  p[3] = (uint8_t)(v >> 24);
}

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)s, (void)u;
  atomic_store(&srv_id, id);
}

/* MSG: a sequenced counter must never go backwards; echoed on the lane as
 * it came (sequenced or not). */
static void on_lane(const kite_request *req) {
  if (!(req->flags & KITE_REQ_UNRELIABLE) || req->len < 4) {
    atomic_fetch_add(&srv_bad_flags, 1);
    return;
  }
  uint32_t n = get32(req->body);
  if (req->flags & KITE_REQ_SEQUENCED) {
    if ((int64_t)n <= atomic_load(&srv_last))
      atomic_fetch_add(&srv_bad_flags, 1); /* backwards */
    atomic_store(&srv_last, (int64_t)n);
    atomic_fetch_add(&srv_seq_in, 1);
  } else {
    atomic_fetch_add(&srv_unseq_in, 1);
  }
  unsigned f = req->flags & KITE_REQ_SEQUENCED ? KITE_UNRELIABLE_SEQUENCED : 0;
  if (kite_session_send_unreliable(req->srv, req->session, MSG, req->body,
                                   req->len, f) == 0)
    atomic_fetch_add(&srv_back, 1);
}

static void on_rel(const kite_request *req) {
  if (req->flags != 0)
    atomic_fetch_add(&srv_bad_flags, 1);
  atomic_fetch_add(&srv_rel_in, 1);
}

/* MSG_SINK: the lane from a v1 or TCP client: flags as expected there. */
static _Atomic unsigned sink_flags;
static _Atomic uint32_t sink_in;
static void on_sink(const kite_request *req) {
  atomic_store(&sink_flags, req->flags);
  atomic_fetch_add(&sink_in, 1);
}

/* MSG_BLOCK: its executor (a shard inline, a worker otherwise) waits for
 * |release|, 20 s at most, so the test can fill what lies before it. */
static _Atomic int blocked, release;
static void on_block(const kite_request *req) {
  (void)req;
  atomic_store(&blocked, 1);
  for (int i = 0; i < 20000 && !atomic_load(&release); i++) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  atomic_store(&blocked, 0);
}

static uint32_t opt_queue_max, opt_mailbox_depth;

static kite_server *server(kite_worker_mode mode, uint32_t budget, bool tcp) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  if (tcp)
    cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = mode;
  cfg.workers = 2;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.versions = KITE_VERSION_1 | KITE_VERSION_2;
  cfg.token_key_set = true;
  memcpy(cfg.token_key, key, sizeof(key));
  cfg.protocol_id = PID;
  cfg.on_connect = on_connect;
  if (budget)
    cfg.unreliable_bytes_per_s = budget;
  if (opt_queue_max)
    cfg.unreliable_queue_max = opt_queue_max;
  if (opt_mailbox_depth)
    cfg.mailbox_depth = opt_mailbox_depth;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_route(srv, MSG, on_lane, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_REL, on_rel, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_SINK, on_sink, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_BLOCK, on_block, NULL), 0);
  atomic_store(&blocked, 0);
  atomic_store(&release, 0);
  assert_int_equal(kite_server_start(srv), 0);
  atomic_store(&srv_seq_in, 0);
  atomic_store(&srv_unseq_in, 0);
  atomic_store(&srv_rel_in, 0);
  atomic_store(&srv_back, 0);
  atomic_store(&srv_bad_flags, 0);
  atomic_store(&srv_last, -1);
  atomic_store(&srv_id, 0);
  atomic_store(&sink_in, 0);
  atomic_store(&sink_flags, 0xff);
  return srv;
}

static kite_server_stats stats(kite_server *srv) {
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  return st;
}

/* The client's side: the test thread's alone. */
typedef struct seen {
  int open, closed;
  uint32_t lane_seq, lane_unseq, frames, backwards, body_bytes;
  unsigned last_lane_flags;
  int64_t last;
} seen;

static void c_connect(kite_conn *c, void *u) {
  (void)c;
  ((seen *)u)->open = 1;
}
static void c_disconnect(kite_conn *c, int r, void *u) {
  (void)c, (void)r;
  ((seen *)u)->closed = 1;
}
static void c_message(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                      void *u) {
  (void)c, (void)m, (void)b, (void)n;
  ((seen *)u)->frames++;
}
static void c_unreliable(kite_conn *c, uint16_t m, unsigned flags,
                         const uint8_t *b, size_t n, void *u) {
  (void)c, (void)m;
  seen *e = u;
  e->last_lane_flags = flags;
  e->body_bytes += (uint32_t)n;
  if (!(flags & KITE_UNRELIABLE_SEQUENCED) || n < 4) {
    e->lane_unseq++;
    return;
  }
  uint32_t v = get32(b);
  if ((int64_t)v <= e->last)
    e->backwards++;
  e->last = v;
  e->lane_seq++;
}

static kite_client *client(seen *e) {
  memset(e, 0, sizeof(*e));
  e->last = -1;
  kite_client_config cfg;
  kite_client_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1:0";
  cfg.on_connect = c_connect;
  cfg.on_disconnect = c_disconnect;
  cfg.on_message = c_message;
  cfg.on_unreliable = c_unreliable;
  cfg.user = e;
  cfg.log_level = KITE_LOG_ERROR;
  kite_client *c;
  assert_int_equal(kite_client_create(&c, &cfg), 0);
  return c;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls |c| until |cond| holds, 15 s at most (sanitizers, shared cores). */
#define UNTIL(c, cond)                                                       \
  do {                                                                       \
    uint64_t end_ = now_ms() + 15000;                                        \
    while (!(cond) && now_ms() < end_)                                       \
      kite_client_poll((c), 10);                                             \
    assert_true(cond);                                                       \
  } while (0)

static kite_conn *open_v2(kite_client *c, seen *e, kite_server *srv, bool tcp) {
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d",
           tcp ? kite_server_tcp_port(srv) : kite_server_udp_port(srv));
  const char *addrs[] = {addr};
  kite_token_params p = {.protocol_id = PID, .client_id = 7, .ttl_s = 60,
                         .addrs = addrs, .naddrs = 1};
  uint8_t token[KITE_TOKEN_BYTES];
  assert_int_equal(kite_token_mint(token, key, &p), 0);
  kite_conn *conn;
  assert_int_equal(tcp ? kite_client_connect_token_tcp(c, token, NULL, &conn)
                       : kite_client_connect_token(c, token, NULL, &conn),
                   0);
  UNTIL(c, e->open && atomic_load(&srv_id) != 0);
  return conn;
}

/* Both ways over v2 UDP in one worker mode: sequenced and not, beside a
 * reliable message, echoed on the lane; order never backwards. */
static void both_ways(kite_worker_mode mode) {
  kite_server *srv = server(mode, 0, false);
  seen e;
  kite_client *c = client(&e);
  kite_conn *conn = open_v2(c, &e, srv, false);
  enum { N = 300 };
  uint8_t body[16] = {0};
  for (uint32_t i = 0; i < N; i++) {
    put32(body, i);
    assert_int_equal(kite_conn_send_unreliable(conn, MSG, body, sizeof(body),
                                               KITE_UNRELIABLE_SEQUENCED),
                     0);
    if (i % 10 == 0) {
      assert_int_equal(kite_conn_send_unreliable(conn, MSG, body, 4, 0), 0);
      assert_int_equal(kite_conn_send(conn, MSG_REL, body, 4), 0);
    }
    if (i % 50 == 49) /* paced in bursts, as a game's ticks */
      UNTIL(c, atomic_load(&srv_seq_in) + stats(srv).unreliable_drop_mailbox >=
                   i + 1 - (uint32_t)stats(srv).unreliable_drop_stale);
  }
  /* Loopback loses nothing: each message is handled, or dropped over a
   * full mailbox (worker modes: a burst may outrun mailbox_depth) and
   * counted; the reliable ones all arrive. What the server handled comes
   * back on the lane. */
  UNTIL(c, atomic_load(&srv_seq_in) + atomic_load(&srv_unseq_in) +
                   stats(srv).unreliable_drop_mailbox ==
               N + N / 10 &&
               atomic_load(&srv_rel_in) == N / 10);
  UNTIL(c, e.lane_seq + e.lane_unseq == atomic_load(&srv_back));
  assert_int_equal(atomic_load(&srv_bad_flags), 0);
  assert_int_equal(e.backwards, 0);
  assert_true(atomic_load(&srv_seq_in) > 0);
  assert_int_equal(e.lane_seq, atomic_load(&srv_seq_in));
  assert_int_equal(e.frames, 0); /* nothing came as a frame */
  kite_server_stats st = stats(srv);
  assert_int_equal(st.unreliable_in,
                   atomic_load(&srv_seq_in) + atomic_load(&srv_unseq_in));
  assert_int_equal(st.unreliable_out, atomic_load(&srv_back));
  assert_int_equal(st.unreliable_drop_budget, 0);
  kite_client_stats cs;
  kite_client_stats_get(c, &cs);
  assert_int_equal(cs.unreliable_out, N + N / 10);
  assert_int_equal(cs.unreliable_in, atomic_load(&srv_back));
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

static void both_ways_inline(void **s) { (void)s; both_ways(KITE_WORKERS_INLINE); }
static void both_ways_hash(void **s) { (void)s; both_ways(KITE_WORKERS_HASH); }
static void both_ways_bind(void **s) { (void)s; both_ways(KITE_WORKERS_BIND); }
static void both_ways_dynamic(void **s) { (void)s; both_ways(KITE_WORKERS_DYNAMIC); }

/* A body over max_unreliable: KITE_EMSGSIZE on both sides, nothing sent;
 * exactly max_unreliable goes. */
static void oversize_refused(void **state) {
  (void)state;
  kite_server *srv = server(KITE_WORKERS_INLINE, 0, false);
  seen e;
  kite_client *c = client(&e);
  kite_conn *conn = open_v2(c, &e, srv, false);
  kite_conn_stats cst;
  kite_conn_get_stats(conn, &cst);
  size_t max = cst.max_unreliable;
  assert_true(max > 4 && max < 1400);
  static uint8_t big[2048];
  assert_int_equal(kite_conn_send_unreliable(conn, MSG_SINK, big, max + 1, 0),
                   KITE_EMSGSIZE);
  kite_session_id id = atomic_load(&srv_id);
  assert_int_equal(
      kite_session_send_unreliable(srv, id, MSG, big, max + 1, 0),
      KITE_EMSGSIZE);
  assert_int_equal(kite_session_send_unreliable(srv, id, 0, big, 4, 0),
                   KITE_EINVAL);
  assert_int_equal(kite_session_send_unreliable(srv, id, MSG, big, 4, 0x80),
                   KITE_EINVAL);
  assert_int_equal(kite_conn_send_unreliable(conn, MSG_SINK, big, max, 0), 0);
  assert_int_equal(kite_session_send_unreliable(srv, id, MSG, big, max, 0), 0);
  UNTIL(c, atomic_load(&sink_in) == 1 && e.lane_unseq == 1);
  assert_int_equal(e.body_bytes, max);
  assert_int_equal(atomic_load(&sink_flags), KITE_REQ_UNRELIABLE);
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

/* unreliable_bytes_per_s: past a second's worth, dropped and counted;
 * every message is either delivered or counted. */
static void budget_enforced(void **state) {
  (void)state;
  kite_server *srv = server(KITE_WORKERS_INLINE, 1024, false);
  seen e;
  kite_client *c = client(&e);
  open_v2(c, &e, srv, false);
  kite_session_id id = atomic_load(&srv_id);
  enum { N = 100 };
  uint8_t body[100] = {0}; /* 108 bytes of item: 9 fit 1024 */
  for (uint32_t i = 0; i < N; i++) {
    put32(body, i);
    assert_int_equal(kite_session_send_unreliable(srv, id, MSG, body,
                                                  sizeof(body), 0),
                     0); /* another thread: accepted, dropped on the shard */
  }
  UNTIL(c, stats(srv).unreliable_drop_budget + stats(srv).unreliable_out == N &&
               e.lane_unseq == stats(srv).unreliable_out);
  kite_server_stats st = stats(srv);
  assert_true(st.unreliable_out >= 9);
  assert_true(st.unreliable_out < N / 2); /* a second's worth, not all */
  assert_true(st.unreliable_drop_budget > N / 2);
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

/* Version 1 has no lane: the server's unreliable message is an ordinary
 * frame (on_message), the client's too (flags 0 in the handler). */
static void v1_gets_it_reliably(void **state) {
  (void)state;
  kite_server *srv = server(KITE_WORKERS_HASH, 0, false);
  seen e;
  kite_client *c = client(&e);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  kite_conn *conn;
  assert_int_equal(kite_client_connect(c, addr, NULL, &conn), 0);
  UNTIL(c, e.open && atomic_load(&srv_id) != 0);
  uint8_t body[8] = {1};
  assert_int_equal(kite_conn_send_unreliable(conn, MSG_SINK, body, 8,
                                             KITE_UNRELIABLE_SEQUENCED),
                   0);
  assert_int_equal(kite_session_send_unreliable(srv, atomic_load(&srv_id), MSG,
                                                body, 8,
                                                KITE_UNRELIABLE_SEQUENCED),
                   0);
  UNTIL(c, atomic_load(&sink_in) == 1 && e.frames == 1);
  assert_int_equal(atomic_load(&sink_flags), 0);
  assert_int_equal(e.lane_seq + e.lane_unseq, 0);
  assert_int_equal(stats(srv).unreliable_out, 0);
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

/* Version 2 over TCP: a frame with the unreliable flag, both ways: the
 * handler is told (not sequenced: nothing is stale on a stream), the
 * client's on_unreliable too. */
static void v2_tcp_flag(void **state) {
  (void)state;
  kite_server *srv = server(KITE_WORKERS_BIND, 0, true);
  seen e;
  kite_client *c = client(&e);
  kite_conn *conn = open_v2(c, &e, srv, true);
  uint8_t body[8] = {2};
  assert_int_equal(kite_conn_send_unreliable(conn, MSG_SINK, body, 8,
                                             KITE_UNRELIABLE_SEQUENCED),
                   0);
  assert_int_equal(kite_session_send_unreliable(srv, atomic_load(&srv_id), MSG,
                                                body, 8,
                                                KITE_UNRELIABLE_SEQUENCED),
                   0);
  UNTIL(c, atomic_load(&sink_in) == 1 && e.lane_unseq == 1);
  assert_int_equal(atomic_load(&sink_flags), KITE_REQ_UNRELIABLE);
  assert_int_equal(e.last_lane_flags, 0);
  assert_int_equal(e.frames, 0);
  kite_conn_stats cst;
  kite_conn_get_stats(conn, &cst);
  static uint8_t big[2048];
  assert_int_equal(kite_session_send_unreliable(srv, atomic_load(&srv_id), MSG,
                                                big, cst.max_unreliable + 1u, 0),
                   KITE_EMSGSIZE);
  assert_int_equal(stats(srv).unreliable_out, 0); /* no datagram item */
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

/* unreliable_queue_max: with the session's shard held (inline, in a
 * handler), another thread's sends take the shard's slots; the 17th of 16
 * is KITE_EFULL, counted, and the 16 go once the shard runs again. */
static void slots_bound_sends_from_other_threads(void **state) {
  (void)state;
  opt_queue_max = 16;
  kite_server *srv = server(KITE_WORKERS_INLINE, 0, false);
  opt_queue_max = 0;
  seen e;
  kite_client *c = client(&e);
  kite_conn *conn = open_v2(c, &e, srv, false);
  assert_int_equal(kite_conn_send(conn, MSG_BLOCK, NULL, 0), 0);
  UNTIL(c, atomic_load(&blocked));
  kite_session_id id = atomic_load(&srv_id);
  uint8_t body[8] = {3};
  for (int i = 0; i < 16; i++)
    assert_int_equal(kite_session_send_unreliable(srv, id, MSG, body, 8, 0), 0);
  assert_int_equal(kite_session_send_unreliable(srv, id, MSG, body, 8, 0),
                   KITE_EFULL);
  assert_int_equal(stats(srv).unreliable_queue_full, 1);
  atomic_store(&release, 1);
  UNTIL(c, e.lane_unseq == 16);
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

/* A full mailbox drops unreliable messages, counted, and never pauses the
 * session (no backpressure): with the worker held and a mailbox of 2 (the
 * held message in it until it returns), of 10 unreliable messages at most
 * 2 wait and the rest are dropped; a reliable one after them arrives. */
static void full_mailbox_drops_without_backpressure(void **state) {
  (void)state;
  opt_mailbox_depth = 2;
  kite_server *srv = server(KITE_WORKERS_HASH, 0, false);
  opt_mailbox_depth = 0;
  seen e;
  kite_client *c = client(&e);
  kite_conn *conn = open_v2(c, &e, srv, false);
  assert_int_equal(kite_conn_send(conn, MSG_BLOCK, NULL, 0), 0);
  UNTIL(c, atomic_load(&blocked));
  uint8_t body[8] = {4};
  for (int i = 0; i < 10; i++)
    assert_int_equal(kite_conn_send_unreliable(conn, MSG_SINK, body, 8, 0), 0);
  UNTIL(c, stats(srv).unreliable_drop_mailbox +
                   atomic_load(&sink_in) + 2 >= 10 &&
               stats(srv).unreliable_drop_mailbox >= 8);
  assert_int_equal(stats(srv).backpressure, 0);
  atomic_store(&release, 1);
  UNTIL(c, atomic_load(&sink_in) + stats(srv).unreliable_drop_mailbox == 10);
  assert_int_equal(kite_conn_send(conn, MSG_REL, body, 4), 0);
  UNTIL(c, atomic_load(&srv_rel_in) == 1);
  assert_true(atomic_load(&sink_in) >= 1 && atomic_load(&sink_in) <= 2);
  assert_int_equal(stats(srv).backpressure, 0);
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

int main(void) {
  assert_int_equal(kite_token_key_new(key), 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(both_ways_inline),  cmocka_unit_test(both_ways_hash),
      cmocka_unit_test(both_ways_bind),    cmocka_unit_test(both_ways_dynamic),
      cmocka_unit_test(oversize_refused),  cmocka_unit_test(budget_enforced),
      cmocka_unit_test(v1_gets_it_reliably), cmocka_unit_test(v2_tcp_flag),
      cmocka_unit_test(slots_bound_sends_from_other_threads),
      cmocka_unit_test(full_mailbox_drops_without_backpressure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
