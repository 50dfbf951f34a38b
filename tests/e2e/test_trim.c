/*
 * Memory given back after a burst (docs/RUNTIME.md): a server with a short
 * trim interval and no keeps takes a burst of sessions that each send a
 * frame over several segments, sees them all close, and then, within a
 * bound, its shards' tables have shrunk (map_shrinks), its KCP pools hold
 * no more than their flush buffers (pool_bytes) and, with the pools in
 * use (not KITE_NOMEMPOOL), have counted what they freed
 * (pool_trimmed_bytes). A session after that is served as before. The
 * figures read are the server's counters, not RSS (RSS is for the
 * benchmark: docs/BENCHMARKS.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "e2e_poll.h"
#include "logic/logic_internal.h"
#include "server/server_internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { SESSIONS = 300, BODY = 3000, SHARDS = 2, MTU = 1400, MSG = 7 };

static void srv_message(kite_server *s, kite_session_id id, uint16_t m,
                        const uint8_t *b, size_t n, void *u) {
  (void)u;
  kite_session_send(s, id, m, b, n); /* an echo */
}

typedef struct peer {
  kite_conn *conn;
  int echoed, gone;
} peer;

static void cli_message(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                        void *u) {
  (void)u;
  peer *p = kite_conn_user(c);
  if (m == MSG && n == BODY && b[0] == 0xA5 && b[BODY - 1] == 0x5A)
    p->echoed++;
}

static uint8_t body[BODY];

/* Open: the frame goes. */
static void cli_connect(kite_conn *c, void *u) {
  (void)u;
  if (kite_conn_send(c, MSG, body, BODY) != 0)
    ((peer *)kite_conn_user(c))->echoed = -1000; /* counted, asserted later */
}

static void cli_disconnect(kite_conn *c, int reason, void *u) {
  (void)reason, (void)u;
  peer *p = kite_conn_user(c);
  p->gone = 1;
  p->conn = NULL;
}

static kite_server *server_start_mode(kite_worker_mode mode) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.worker_mode = mode;
  cfg.workers = 2;
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = SHARDS;
  cfg.mtu = MTU;
  cfg.max_sessions = 1000;
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.trim_interval_ms = 20;
  cfg.shard_segments_keep = 0;
  cfg.shard_rings_keep = 0;
  cfg.malloc_trim_min = 1;
  cfg.log_level = KITE_LOG_WARN;
  cfg.on_message = srv_message;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  return srv;
}

static kite_server *server_start(void) {
  return server_start_mode(KITE_WORKERS_INLINE);
}

static kite_client *client_make(void) {
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.bind_addr = "127.0.0.1:0";
  cc.on_connect = cli_connect;
  cc.on_message = cli_message;
  cc.on_disconnect = cli_disconnect;
  cc.log_level = KITE_LOG_WARN;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  return cli;
}

static kite_server_stats stats_of(kite_server *srv) {
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  return st;
}

/* Polls |cli| while it waits, up to |ms|, for |cond| on the server's
 * stats |st| (refreshed each round). */
#define WAIT_STATS(cli, srv, st, cond, ms)                                   \
  ({                                                                         \
    uint64_t end_ = kite__now_us() + (uint64_t)(ms) * 1000;                  \
    for (st = stats_of(srv); !(cond) && kite__now_us() < end_;               \
         st = stats_of(srv))                                                 \
      kite_client_poll((cli), 5);                                            \
    (cond);                                                                  \
  })

static void a_burst_is_given_back(void **state) {
  (void)state;
  kite_server *srv = server_start();
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  kite_client *cli = client_make();
  static peer peers[SESSIONS];
  memset(body, 0x11, sizeof(body));
  body[0] = 0xA5;
  body[BODY - 1] = 0x5A;

  /* The burst: every session sends a frame of three segments. */
  for (int i = 0; i < SESSIONS; i++) {
    peers[i] = (peer){0};
    assert_int_equal(kite_client_connect(cli, addr, &peers[i], &peers[i].conn), 0);
  }
  assert_true(POLL_UNTIL(cli, SUM_OF(peers, SESSIONS, echoed) == SESSIONS, 30000));
  kite_server_stats st = stats_of(srv);
  assert_int_equal(st.sessions, SESSIONS);

  /* All close. */
  for (int i = 0; i < SESSIONS; i++)
    assert_int_equal(kite_conn_close(peers[i].conn), 0);
  assert_true(POLL_UNTIL(cli, SUM_OF(peers, SESSIONS, gone) == SESSIONS, 30000));
  assert_true(WAIT_STATS(cli, srv, st, st.sessions == 0, 30000));

  /* Given back within a bound: each shard's handshake and conv maps held
   * about 150 entries (256 slots and more) and shrink to the minimum; the
   * pools keep nothing but their flush buffers. */
  bool back = WAIT_STATS(cli, srv, st,
                         st.map_shrinks >= 2 * SHARDS &&
                             st.pool_bytes == (uint64_t)SHARDS * MTU,
                         30000);
  printf("map_shrinks %llu, pool_bytes %llu, pool_trimmed_bytes %llu, "
         "malloc_trims %llu\n",
         (unsigned long long)st.map_shrinks, (unsigned long long)st.pool_bytes,
         (unsigned long long)st.pool_trimmed_bytes,
         (unsigned long long)st.malloc_trims);
  assert_true(back);
#ifndef KITE_NOMEMPOOL
  /* The slabs and rings of the burst were freed and counted. */
  assert_true(st.pool_trimmed_bytes > (uint64_t)SESSIONS * BODY / 2);
#endif

  /* A session afterwards: served by the pools and tables grown again. */
  peer late = {0};
  assert_int_equal(kite_client_connect(cli, addr, &late, &late.conn), 0);
  assert_true(POLL_UNTIL(cli, late.echoed == 1, 30000));
  assert_int_equal(kite_conn_close(late.conn), 0);
  assert_true(POLL_UNTIL(cli, late.gone == 1, 30000));

  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

/* In a worker mode each session that gets a frame has a mailbox ring
 * (mailbox_depth pointers); it goes with the session, so a burst leaves no
 * ring behind in any slot. */
static void mailbox_rings_go_with_their_sessions(void **state) {
  (void)state;
  enum { N = 100 };
  kite_server *srv = server_start_mode(KITE_WORKERS_HASH);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  kite_client *cli = client_make();
  static peer peers[N];
  for (int i = 0; i < N; i++) {
    peers[i] = (peer){0};
    assert_int_equal(kite_client_connect(cli, addr, &peers[i], &peers[i].conn), 0);
  }
  assert_true(POLL_UNTIL(cli, SUM_OF(peers, N, echoed) == N, 30000));
  for (int i = 0; i < N; i++)
    assert_int_equal(kite_conn_close(peers[i].conn), 0);
  assert_true(POLL_UNTIL(cli, SUM_OF(peers, N, gone) == N, 30000));
  kite_server_stats st;
  assert_true(WAIT_STATS(cli, srv, st, st.sessions == 0, 30000));
  kite_client_destroy(cli);
  /* Stopped: its threads are joined, so the test thread may look. */
  assert_int_equal(kite_server_stop(srv), 0);
  const kite__logic *lg = srv->logic;
  size_t rings = 0;
  for (size_t i = 0; i < (size_t)lg->nshards * lg->slots; i++)
    rings += lg->sessions[i].mb.ring != NULL;
  assert_int_equal(rings, 0);
  kite_server_destroy(srv);
}

/* trim_interval_ms: 0 (never) or 10 ms and more. */
static void the_trim_interval_is_checked(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.trim_interval_ms = 0;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  kite_server_destroy(srv);
  cfg.trim_interval_ms = 5; /* below the bound */
  assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_burst_is_given_back),
      cmocka_unit_test(mailbox_rings_go_with_their_sessions),
      cmocka_unit_test(the_trim_interval_is_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
