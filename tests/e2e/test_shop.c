/*
 * A shop under load, in every worker mode, written from the public headers
 * and README alone. The server: BUY gets BOUGHT with the session's count,
 * KICK gets a reply and then kite_session_close(), and a repeating timer
 * (1 ms) broadcasts a tick to a group of every player, a bounded number
 * per round (shop_server.c). The players:
 * hundreds over KCP and tens over TCP, each sending bursts of BUYs at once;
 * some ask to be kicked right after a burst; and raw TCP peers that open a
 * session, join, send a burst and go away abruptly (a reset, or a close
 * with unread bytes) while the ticks are being written to them. At the end
 * the server is stopped with the survivors still connected.
 *
 * Expected, counted on the test thread (every failed expectation is listed
 * with its counts, then the test fails):
 *   - every BUY gets exactly one BOUGHT, in order, kicked players included;
 *   - a kicked player gets the reply sent just before the kick, and the
 *     reason "kicked", over KCP and over TCP;
 *   - the survivors see the reason "shutdown" when the server stops;
 *   - ticks arrive in order without gaps;
 *   - on_connect and on_disconnect exactly once per session, on both sides;
 *   - the server survives the peers that vanish, and stops in bounded time.
 *
 * Sizes come from the environment (SHOP_KCP, SHOP_TCP, SHOP_KILLERS per
 * round, SHOP_BURST, SHOP_KILLER_BURST (BUYs a raw peer sends as it
 * dies), SHOP_ROUNDS, SHOP_TICK_MS, SHOP_KICK_EVERY,
 * SHOP_ROUND_TICKS and SHOP_STOP_TICKS broadcast per round and during the
 * stop, SHOP_ROUND_MS as the bound on a round,
 * SHOP_MODES="inline,hash,bind,dynamic"); the defaults are smaller under
 * sanitizers. A mode takes about a second in release, a few under
 * ASan or TSan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "shop.h"
#include "shop_peer.h"

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define SHOP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHOP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SHOP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHOP_TSAN 1
#endif
#endif
#ifndef SHOP_ASAN
#define SHOP_ASAN 0
#endif
#ifndef SHOP_TSAN
#define SHOP_TSAN 0
#endif

/* SHOP_<name> from the environment, else the default for this build: TSan
 * is the slowest (from about 100 KCP players on two busy cores the players
 * fall behind the ticks and are closed as slow peers). */
static int param(const char *name, int release, int asan, int tsan) {
  const char *v = getenv(name);
  if (v && *v)
    return atoi(v);
  return SHOP_TSAN ? tsan : SHOP_ASAN ? asan : release;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- a crash says where the run was (ASan reports crashes itself) */

static const char *_Atomic phase = "starting"; /* the test thread writes */

static void on_crash(int sig) {
  char line[256];
  int n = snprintf(line, sizeof(line),
                   "shop[%s] CRASHED: signal %d (%s) while %s; the crashing "
                   "thread's stack:\n",
                   shop_mode, sig, strsignal(sig), atomic_load(&phase));
  if (write(2, line, (size_t)n) < 0)
    n = 0;
  void *frames[32];
  backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void catch_crashes(void) {
  if (SHOP_ASAN)
    return;
  void *warm[1]; /* loads what backtrace() needs now, not in the handler */
  backtrace(warm, 1);
  int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    signal(sigs[i], on_crash);
}

/* ---- the players (kite_client, polled by the test thread only) */

player players[MAX_PEERS];

static void c_on_connect(kite_conn *c, void *u) {
  (void)u;
  player *p = kite_conn_user(c);
  p->connects++;
  uint8_t b[4];
  shop_put32(b, (uint32_t)p->idx);
  if (kite_conn_send(c, MSG_JOIN, b, sizeof(b)) != 0)
    p->send_fails++;
}

static void c_on_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                         size_t len, void *u) {
  (void)u;
  player *p = kite_conn_user(c);
  if (msg_id == MSG_BOUGHT && len == 8) {
    if (shop_get32(body) != p->bought || shop_get32(body + 4) != p->bought + 1)
      p->bought_errors++;
    p->bought++;
  } else if (msg_id == MSG_KICK_OK) {
    p->kick_oks++;
  } else if (msg_id == MSG_TICK && len == 8) {
    uint64_t n = shop_get32(body) | (uint64_t)shop_get32(body + 4) << 32;
    if (p->last_tick && n != p->last_tick + 1)
      p->tick_errors++;
    p->last_tick = n;
    p->ticks++;
  } else {
    p->unknown++;
  }
}

static void c_on_disconnect(kite_conn *c, int reason, void *u) {
  (void)u;
  player *p = kite_conn_user(c);
  p->disconnects++;
  p->reason = reason;
}

static void burst(player *p, int n) {
  uint8_t b[4];
  for (int i = 0; i < n; i++) {
    shop_put32(b, p->buys_sent);
    if (kite_conn_send(p->conn, MSG_BUY, b, sizeof(b)) != 0)
      p->send_fails++;
    else
      p->buys_sent++;
  }
}

/* ---- stopping in a thread of its own, so that the wait is bounded */

static atomic_int stop_done;
static void *stopper(void *srv) {
  kite_server_stop(srv);
  atomic_store(&stop_done, 1);
  return NULL;
}

/* ---- one run, phase by phase (the test thread's) */

typedef struct killer { /* a raw TCP peer that vanishes */
  int fd, idx;
  bool killed;
} killer;

typedef struct shop_run {
  sizes z;
  int nplayers;
  kite_server *srv;
  kite_client *cli;
  kite_timer_id tick;
  int tcp_port;
  char addr[64], tcp_addr[64];
  killer ks[MAX_PEERS];
  int nkillers, killer_open_fails, killers_unjoined, rounds_unfinished;
} shop_run;

static void set_phase(const char *fmt, int round) {
  static char buf[2][128]; /* the crash handler may be reading the other */
  static int which;
  which ^= 1;
  snprintf(buf[which], sizeof(buf[which]), fmt, round);
  atomic_store(&phase, buf[which]);
}

static void reset_state(void) {
  shop_server_reset();
  memset(players, 0, sizeof(players));
  atomic_store(&stop_done, 0);
}

static void start_server(shop_run *r, kite_worker_mode mode) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  /* Many sessions from 127.0.0.1 at once: no per-source limits. */
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.worker_mode = mode;
  /* bind, dynamic: one worker per session at once, every peer counted. */
  cfg.workers = mode == KITE_WORKERS_HASH     ? 4
                : mode == KITE_WORKERS_INLINE ? 0
                : r->nplayers + r->z.killers * r->z.rounds + 8;
  cfg.on_connect = shop_on_connect;
  cfg.on_disconnect = shop_on_disconnect;
  cfg.log_level = KITE_LOG_WARN;
  assert_int_equal(kite_server_create(&r->srv, &cfg), 0);
  shop_group = kite_group_create(r->srv);
  assert_non_null(shop_group);
  assert_int_equal(kite_server_route(r->srv, MSG_JOIN, shop_on_join, NULL), 0);
  assert_int_equal(kite_server_route(r->srv, MSG_BUY, shop_on_buy, NULL), 0);
  assert_int_equal(kite_server_route(r->srv, MSG_KICK, shop_on_kick, NULL), 0);
  assert_int_equal(kite_server_start(r->srv), 0);
  r->tcp_port = kite_server_tcp_port(r->srv);
  snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%d",
           kite_server_udp_port(r->srv));
  snprintf(r->tcp_addr, sizeof(r->tcp_addr), "127.0.0.1:%d", r->tcp_port);
}

/* Every player connects and joins; then the shop's clock starts its ticks
 * (a clock key: an executor of its own in bind and dynamic modes). */
static void connect_players(shop_run *r) {
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_on_connect;
  cc.on_message = c_on_message;
  cc.on_disconnect = c_on_disconnect;
  cc.socket_buffer = 4 << 20;
  cc.log_level = KITE_LOG_WARN;
  assert_int_equal(kite_client_create(&r->cli, &cc), 0);
  const sizes *z = &r->z;
  for (int i = 0; i < r->nplayers; i++) {
    player *p = &players[i];
    p->idx = i;
    p->tcp = i >= z->kcp;
    int j = p->tcp ? i - z->kcp : i; /* index within its transport */
    p->kick_round = -1;
    if (j > 0 && j % z->kick_every >= z->kick_every - z->rounds)
      p->kick_round = z->kick_every - 1 - j % z->kick_every;
    int rc = p->tcp ? kite_client_connect_tcp(r->cli, r->tcp_addr, p, &p->conn)
                    : kite_client_connect(r->cli, r->addr, p, &p->conn);
    assert_int_equal(rc, 0);
  }
  uint64_t end = now_ms() + 30000;
  while (now_ms() < end && atomic_load(&s_joined) < r->nplayers)
    kite_client_poll(r->cli, 2);
  int up = 0;
  for (int i = 0; i < r->nplayers; i++)
    up += players[i].connects == 1;
  EXPECT(up == r->nplayers, "players connected: %d of %d", up, r->nplayers);
  EXPECT(atomic_load(&s_joined) == r->nplayers,
         "players joined on the server: %d of %d", atomic_load(&s_joined),
         r->nplayers);
  /* The shop's clock: a clock key runs on an executor of its own in bind
   * and dynamic modes, on the key's shard or worker in the others. */
  int rc = kite_timer_start(r->srv, KITE_TIMER_CLOCK_KEY(1), (uint32_t)z->tick_ms,
                            (uint32_t)z->tick_ms, shop_on_tick, NULL, &r->tick);
  EXPECT(rc == 0 && r->tick != 0, "kite_timer_start on the clock key: %s",
         kite_strerror(rc));
}

static void kill_peer(killer *k, int burst_n, bool linger0) {
  shop_peer_burst(k->fd, MSG_BUY, burst_n); /* replies on their way */
  shop_peer_kill(k->fd, linger0);
  k->fd = -1;
  k->killed = true;
}

/* Raw peers open and JOIN, and are waited for, so that they are in the
 * group when the ticks start. */
static void open_killers(shop_run *r) {
  int first = r->nkillers;
  for (int k = 0; k < r->z.killers; k++) {
    killer *kp = &r->ks[r->nkillers];
    kp->idx = r->nplayers + r->nkillers++;
    kp->fd = shop_peer_open(r->tcp_port, 5000);
    kp->killed = kp->fd < 0;
    if (kp->fd < 0) {
      r->killer_open_fails++;
      continue;
    }
    uint8_t f[SHOP_FRAME_HDR + 4], b[4];
    shop_put32(b, (uint32_t)kp->idx);
    shop_write_all(kp->fd, f, shop_frame(f, MSG_JOIN, b, 4));
  }
  uint64_t end = now_ms() + 10000;
  for (int k = first; k < r->nkillers; k++)
    while (!r->ks[k].killed && !atomic_load(&sid_of[r->ks[k].idx]) &&
           now_ms() < end)
      kite_client_poll(r->cli, 1);
}

/* One round: round_ticks broadcast, a BUY burst from every player still
 * there (a KICK after it from those whose round it is), the raw peers
 * dying spread over the ticks: the k-th once (k + 1) / (killers + 1) of
 * them have gone out. Over when the ticks are out, every BOUGHT is in and
 * every kicked player is gone, or at SHOP_ROUND_MS. */
static void run_round(shop_run *r, int round) {
  const sizes *z = &r->z;
  set_phase("round %d: raw TCP peers opening", round + 1);
  int first = r->nkillers;
  open_killers(r);
  set_phase("round %d: BUY bursts, kicks, raw TCP peers dying mid-broadcast",
            round + 1);
  int ticks0 = atomic_load(&s_ticks);
  atomic_store(&tick_budget, z->round_ticks);
  for (int i = 0; i < r->nplayers; i++) {
    player *p = &players[i];
    if (p->connects != 1 || p->disconnects || p->kick_sent)
      continue;
    burst(p, z->burst);
    if (p->kick_round == round) {
      if (kite_conn_send(p->conn, MSG_KICK, NULL, 0) == 0)
        p->kick_sent = true;
      else
        p->send_fails++;
    }
  }
  uint64_t end = now_ms() + (uint64_t)param("SHOP_ROUND_MS", 20000, 60000, 60000);
  bool done = false;
  while (!done && now_ms() < end) {
    kite_client_poll(r->cli, 1);
    int sent = atomic_load(&s_ticks) - ticks0;
    done = atomic_load(&tick_budget) == 0;
    for (int k = first; k < r->nkillers; k++) {
      killer *kp = &r->ks[k];
      if (kp->killed)
        continue;
      done = false;
      if (!atomic_load(&sid_of[kp->idx]))
        continue; /* never joined: counted below */
      if (!r->tick || sent >= (k - first + 1) * z->round_ticks / (z->killers + 1))
        kill_peer(kp, z->killer_burst, k % 2 == 0);
    }
    for (int i = 0; i < r->nplayers && done; i++) {
      player *p = &players[i];
      if (p->connects != 1 || (p->disconnects && !p->kick_sent))
        continue; /* never up, or gone for a reason checked later */
      if (p->kick_sent ? !p->disconnects : p->bought < p->buys_sent)
        done = false;
    }
  }
  for (int k = first; k < r->nkillers; k++) {
    if (!r->ks[k].killed) { /* never joined: counted, closed all the same */
      r->killers_unjoined++;
      kill_peer(&r->ks[k], 0, true);
    }
  }
  r->rounds_unfinished += !done;
}

/* Stops with the survivors connected and ticks in flight, polling the
 * players meanwhile so that their acks let the stop finish early. Returns
 * how long kite_server_stop() took. */
static uint64_t stop_server(shop_run *r) {
  set_phase("stopping the server", 0);
  atomic_store(&tick_budget, r->z.stop_ticks);
  uint64_t t0 = now_ms();
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, stopper, r->srv), 0);
  uint64_t bound = 3000 + 15000; /* stop_timeout_ms, and then some */
  while (!atomic_load(&stop_done) && now_ms() - t0 < bound)
    kite_client_poll(r->cli, 2);
  if (!atomic_load(&stop_done)) {
    shop_expect_fail("kite_server_stop() did not return within %llu ms",
                     (unsigned long long)bound);
    fail_msg("%d expectation(s) failed in %s mode, the server is stuck:\n%s",
             shop_nfails, shop_mode, shop_fails);
  }
  pthread_join(th, NULL);
  uint64_t took = now_ms() - t0;
  uint64_t end = now_ms() + 5000;
  for (bool all_down = false; !all_down && now_ms() < end;) {
    kite_client_poll(r->cli, 2);
    all_down = true;
    for (int i = 0; i < r->nplayers; i++)
      all_down &= players[i].connects == 0 || players[i].disconnects > 0;
  }
  return took;
}

static void run_shop(kite_worker_mode mode) {
  static shop_run run;
  shop_run *r = &run;
  memset(r, 0, sizeof(*r));
  r->z = (sizes){
      .kcp = param("SHOP_KCP", 200, 100, 50),
      .tcp = param("SHOP_TCP", 50, 25, 20),
      .killers = param("SHOP_KILLERS", 25, 10, 10),
      .burst = param("SHOP_BURST", 50, 50, 50),
      .killer_burst = param("SHOP_KILLER_BURST", 50, 50, 50),
      .rounds = param("SHOP_ROUNDS", 2, 2, 2),
      .tick_ms = param("SHOP_TICK_MS", 1, 1, 1),
      .kick_every = param("SHOP_KICK_EVERY", 10, 10, 10),
      .round_ticks = param("SHOP_ROUND_TICKS", 200, 200, 200),
      .stop_ticks = param("SHOP_STOP_TICKS", 100, 100, 100),
  };
  const sizes *z = &r->z;
  r->nplayers = z->kcp + z->tcp;
  assert_true(r->nplayers >= 1 &&
              r->nplayers + z->killers * z->rounds <= MAX_PEERS);
  assert_true(z->burst <= 256 && z->killer_burst <= 256 && z->kick_every >= 2);
  reset_state();
  shop_fails_reset(kite_worker_mode_name(mode));
  catch_crashes();
  set_phase("connecting the players", 0);

  start_server(r, mode);
  connect_players(r);
  for (int round = 0; round < z->rounds; round++)
    run_round(r, round);
  EXPECT(r->killer_open_fails == 0,
         "raw TCP peers whose OPEN got no OPENED: %d of %d",
         r->killer_open_fails, r->nkillers);
  EXPECT(r->killers_unjoined == 0, "raw TCP peers whose JOIN never ran: %d of %d",
         r->killers_unjoined, r->nkillers);
  EXPECT(r->rounds_unfinished == 0,
         "rounds that did not finish (every tick out, every BOUGHT in, every "
         "kick done) in time: %d of %d",
         r->rounds_unfinished, z->rounds);
  uint64_t stop_ms = stop_server(r);

  set_phase("checking", 0);
  kite_client_stats cst;
  kite_client_stats_get(r->cli, &cst);
  kite_client_destroy(r->cli);
  kite_server_stats st;
  kite_server_stats_get(r->srv, &st);
  shop_verdict(z, r->nplayers, r->nkillers - r->killer_open_fails, &st, &cst,
               stop_ms);
  kite_group_destroy(shop_group);
  shop_group = NULL;
  kite_server_destroy(r->srv);
  if (shop_nfails)
    fail_msg("%d expectation(s) failed in %s mode:\n%s", shop_nfails,
             shop_mode, shop_fails);
}

#define SHOP_MODE_TEST(m, M)                                                  \
  static void shop_##m(void **state) {                                        \
    (void)state;                                                              \
    run_shop(M);                                                              \
  }
SHOP_MODE_TEST(inline, KITE_WORKERS_INLINE)
SHOP_MODE_TEST(hash, KITE_WORKERS_HASH)
SHOP_MODE_TEST(bind, KITE_WORKERS_BIND)
SHOP_MODE_TEST(dynamic, KITE_WORKERS_DYNAMIC)

/* SHOP_MODES (e.g. "hash,bind") runs only those modes: ctest runs each
 * mode as a test of its own, so that a crash in one hides no other. */
int main(void) {
  const struct CMUnitTest all[] = {
      cmocka_unit_test(shop_inline),
      cmocka_unit_test(shop_hash),
      cmocka_unit_test(shop_bind),
      cmocka_unit_test(shop_dynamic),
  };
  struct CMUnitTest tests[4];
  size_t n = 0;
  const char *want = getenv("SHOP_MODES");
  for (size_t i = 0; i < 4; i++)
    if (!want || !*want || strstr(want, all[i].name + strlen("shop_")))
      tests[n++] = all[i];
  return _cmocka_run_group_tests("shop", tests, n, NULL, NULL);
}
