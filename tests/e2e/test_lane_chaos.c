/*
 * The snapshot lane through kite-chaos's relay (issue 18): many v2 UDP
 * sessions receive 20 Hz sequenced snapshots (200 bytes, a room's group,
 * kite_group_broadcast_unreliable() from another thread) across a link
 * with 5% loss each way, copies, reordering and 30 ms +- 10 ms of delay,
 * as tests/sim/test_snapshot_sim.c models it. None may be delivered out of
 * order, and the snapshot age (now minus the newest snapshot's send time,
 * sampled every 5 ms) stays as the simulation says: p99 under two periods
 * plus the link's delay, with room for a shared machine's scheduling.
 *
 * Sized for 2 shared cores: LANE_CHAOS_SESSIONS sessions (200 unless set;
 * the 1,000 runs with LANE_CHAOS_SESSIONS=1000) for
 * LANE_CHAOS_SECONDS seconds (5) of snapshots. Under a sanitizer the ages
 * are printed, not asserted (their clocks are not the link's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "relay.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PERIOD_MS 50
#define SNAP 200
#define DELAY_MS 30
#define JITTER_MS 10
#define SLACK_MS 60 /* a shared machine's scheduling, on top of the sim's */
#define MSG_SNAP 0x10
#define PID 0x63686173u

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static atomic_bool stop_relay;
static void *relay_main(void *r) {
  chaos_relay_run(r, &stop_relay);
  return NULL;
}

/* The server's side: on_connect joins the room (any thread: groups lock). */
static kite_group *room;
static _Atomic uint32_t joined;
static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)s, (void)u;
  if (kite_group_join(room, id) == 0)
    atomic_fetch_add(&joined, 1);
}

/* The client's side: the test thread's alone. */
typedef struct sess {
  kite_conn *conn;
  bool up;
  bool have;
  uint32_t tick;      /* the newest snapshot's */
  uint64_t sent_us;   /* its send time */
  uint32_t got, backwards, unsequenced;
} sess;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((sess *)kite_conn_user(c))->up = true;
}
static void c_lane(kite_conn *c, uint16_t m, unsigned flags, const uint8_t *b,
                   size_t n, void *u) {
  (void)u, (void)m;
  sess *s = kite_conn_user(c);
  if (!(flags & KITE_UNRELIABLE_SEQUENCED) || n != SNAP) {
    s->unsequenced++;
    return;
  }
  uint32_t tick;
  uint64_t ts;
  memcpy(&tick, b, 4);
  memcpy(&ts, b + 4, 8);
  if (s->have && tick <= s->tick)
    s->backwards++;
  s->have = true;
  s->tick = tick;
  s->sent_us = ts;
  s->got++;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t env_or(const char *name, uint32_t dflt) {
  const char *v = getenv(name);
  return v && *v ? (uint32_t)strtoul(v, NULL, 10) : dflt;
}

static void snapshots_in_order_and_fresh_through_loss(void **state) {
  (void)state;
  uint32_t sessions = env_or("LANE_CHAOS_SESSIONS", 200);
  uint32_t seconds = env_or("LANE_CHAOS_SECONDS", 5);
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  assert_int_equal(kite_token_key_new(key), 0);

  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.versions = KITE_VERSION_2;
  cfg.token_key_set = true;
  memcpy(cfg.token_key, key, sizeof(key));
  cfg.protocol_id = PID;
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.on_connect = on_connect;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  room = kite_group_create(srv);
  assert_non_null(room);
  atomic_store(&joined, 0);
  assert_int_equal(kite_server_start(srv), 0);

  char server[64], relay_addr[64];
  snprintf(server, sizeof(server), "127.0.0.1:%d", kite_server_udp_port(srv));
  chaos_config cc;
  chaos_config_init(&cc);
  cc.listen_addr = "127.0.0.1:0";
  cc.server_addr = server;
  cc.seed = 18;
  chaos_profile p = {.loss = 0.05, .dup = 0.02, .reorder = 0.05,
                     .reorder_ms = 30, .delay_ms = DELAY_MS,
                     .jitter_ms = JITTER_MS};
  cc.up = cc.down = p;
  char err[256];
  chaos_relay *relay = chaos_relay_create(&cc, err, sizeof(err));
  assert_non_null(relay);
  snprintf(relay_addr, sizeof(relay_addr), "127.0.0.1:%d",
           chaos_relay_port(relay));
  atomic_store(&stop_relay, false);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, relay_main, relay), 0);

  kite_client_config ccfg;
  kite_client_config_init(&ccfg);
  ccfg.on_connect = c_up;
  ccfg.on_unreliable = c_lane;
  ccfg.log_level = KITE_LOG_ERROR;
  ccfg.retries = 30; /* a handshake meets the loss too */
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &ccfg), 0);
  sess *ss = calloc(sessions, sizeof(*ss));
  assert_non_null(ss);
  /* The token names the relay (where the client goes) and the server (which
   * must find itself there); one per session (a token is used once per
   * address). */
  const char *addrs[] = {relay_addr, server};
  for (uint32_t i = 0; i < sessions; i++) {
    kite_token_params tp = {.protocol_id = PID, .client_id = i, .ttl_s = 120,
                            .addrs = addrs, .naddrs = 2};
    uint8_t token[KITE_TOKEN_BYTES];
    assert_int_equal(kite_token_mint(token, key, &tp), 0);
    assert_int_equal(kite_client_connect_token(cli, token, &ss[i], &ss[i].conn), 0);
  }
  uint64_t end = kite__now_us() + 60000000;
  while (atomic_load(&joined) < sessions && kite__now_us() < end)
    kite_client_poll(cli, 5);
  assert_int_equal(atomic_load(&joined), sessions);

  /* Snapshots for |seconds|, ages sampled every 5 ms after the first
   * second. The server's side is this thread too: a broadcast from
   * another thread than any shard, as a game's tick on a worker. */
  size_t cap = (size_t)sessions * seconds * 200, nages = 0;
  uint32_t *ages = malloc(cap * sizeof(*ages));
  assert_non_null(ages);
  uint8_t body[SNAP];
  memset(body, 0x5A, sizeof(body));
  uint64_t start = kite__now_us(), next_snap = start, next_sample = start;
  uint32_t tick = 0;
  uint64_t stop_at = start + (uint64_t)seconds * 1000000;
  while (kite__now_us() < stop_at) {
    uint64_t now = kite__now_us();
    if (now >= next_snap) {
      tick++;
      memcpy(body, &tick, 4);
      memcpy(body + 4, &now, 8);
      assert_int_equal(kite_group_broadcast_unreliable(room, MSG_SNAP, body,
                                                       SNAP,
                                                       KITE_UNRELIABLE_SEQUENCED),
                       (int)sessions);
      next_snap += PERIOD_MS * 1000;
    }
    if (now >= next_sample && now - start > 1000000) {
      for (uint32_t i = 0; i < sessions && nages < cap; i++)
        if (ss[i].have)
          ages[nages++] = (uint32_t)((now - ss[i].sent_us) / 1000);
      next_sample = now + 5000;
    }
    kite_client_poll(cli, 1);
  }
  uint64_t got = 0;
  for (uint32_t i = 0; i < sessions; i++) {
    assert_true(ss[i].up);
    assert_int_equal(ss[i].backwards, 0); /* never out of order */
    assert_int_equal(ss[i].unsequenced, 0);
    got += ss[i].got;
  }
  qsort(ages, nages, sizeof(*ages), cmp_u32);
  assert_true(nages > 0);
  uint32_t p50 = ages[nages / 2], p99 = ages[nages * 99 / 100],
           max = ages[nages - 1];
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  kite_client_stats cst;
  kite_client_stats_get(cli, &cst);
  printf("lane through chaos: %u sessions, %u snapshots each, %.1f%% "
         "delivered; age p50 %u ms, p99 %u ms, max %u ms; %llu stale "
         "dropped by the window\n",
         sessions, tick, 100.0 * (double)got / ((double)tick * sessions), p50,
         p99, max, (unsigned long long)cst.unreliable_drop_stale);
  /* 5% loss (and the relay's own): most arrive, none twice. */
  assert_true(got > (uint64_t)tick * sessions * 80 / 100);
  assert_int_equal(st.unreliable_drop_budget, 0);
  if (!SANITIZED)
    assert_true(p99 < 2 * PERIOD_MS + DELAY_MS + JITTER_MS + SLACK_MS);
  free(ages);
  kite_client_destroy(cli);
  free(ss);
  atomic_store(&stop_relay, true);
  pthread_join(t, NULL);
  chaos_stats cs;
  chaos_relay_stats(relay, &cs);
  assert_true(cs.dropped > 0 && cs.reordered > 0); /* the chaos was real */
  chaos_relay_destroy(relay);
  kite_group_destroy(room);
  kite_server_stop(srv);
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(snapshots_in_order_and_fresh_through_loss),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
