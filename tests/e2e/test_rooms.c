/*
 * Groups and game timers on a real server, in inline and hash modes:
 * a broadcast reaches every member exactly once and no one else; members
 * leave by themselves when they disconnect; timers of one key fire in
 * expiry order on the key's executor (with its sessions, in hash mode),
 * repeat at their period, and stop when told.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "e2e_poll.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MSG_JOIN = 1, MSG_SHOUT = 2, MSG_ROOM = 3, MSG_TIMERS = 4, MSG_TICKS = 5 };
#define ROOM_KEY 42

static kite_group *room;
static atomic_int joined;
static kite_worker_mode mode_now;

/* Timer state, touched only on the room key's executor. */
static pthread_t room_thread;
static bool room_thread_set;
static int fired_order[8];
static atomic_int nfired, ticks, thread_errors; /* polled by the test */
static uint32_t tick_ms[64];
static kite_timer_id tick_id;

static void on_join(const kite_request *r) {
  kite_session_set_affinity(r->srv, r->session, ROOM_KEY); /* hash: the room's worker */
  kite_group_join(room, r->session);
  kite_reply(r, MSG_JOIN, NULL, 0); /* an empty body may be NULL */
  atomic_fetch_add(&joined, 1);
}

static void check_thread(void);

static void on_shout(const kite_request *r) {
  /* Hash mode: the room's players run where the room's timers run. */
  if (mode_now == KITE_WORKERS_HASH)
    check_thread();
  kite_group_broadcast(room, MSG_ROOM, r->body, r->len);
}

static void check_thread(void) {
  if (!room_thread_set) {
    room_thread = pthread_self();
    room_thread_set = true;
  } else if (!pthread_equal(room_thread, pthread_self())) {
    thread_errors++;
  }
}

static void one_shot(kite_server *srv, kite_timer_id id, void *user) {
  (void)srv; (void)id;
  check_thread();
  fired_order[nfired++] = (int)(intptr_t)user;
}

static void tick(kite_server *srv, kite_timer_id id, void *user) {
  (void)user;
  check_thread();
  if (ticks < 64)
    tick_ms[ticks] = kite__now_ms();
  if (++ticks == 10)
    kite_timer_stop(srv, id); /* from its own executor: no more ticks */
}

/* On the room's executor: failures are counted, asserted by the test. */
static void on_timers(const kite_request *r) {
  /* Five one-shots, started in the reverse of their expiry order. */
  for (int i = 0; i < 5; i++)
    if (kite_timer_start(r->srv, ROOM_KEY, (uint32_t)(50 - 10 * i), 0, one_shot,
                         (void *)(intptr_t)(4 - i), NULL) != 0)
      thread_errors++;
  if (kite_timer_start(r->srv, ROOM_KEY, 10, 50, tick, NULL, &tick_id) != 0 ||
      tick_id == 0) /* 20 Hz */
    thread_errors++;
}

typedef struct cli_state {
  kite_conn *conn;
  int up, room_frames;
} cli_state;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((cli_state *)kite_conn_user(c))->up = 1;
}
static void c_msg(kite_conn *c, uint16_t id, const uint8_t *b, size_t n, void *u) {
  (void)u;
  cli_state *st = kite_conn_user(c);
  if (id == MSG_ROOM && n == 5 && !memcmp(b, "hello", 5))
    st->room_frames++;
}

#define N 40

static void run(kite_worker_mode mode) {
  mode_now = mode;
  atomic_store(&joined, 0);
  room_thread_set = false;
  atomic_store(&nfired, 0);
  atomic_store(&ticks, 0);
  atomic_store(&thread_errors, 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = mode;
  /* Many sessions from 127.0.0.1 at once: no per-source limits. */
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.workers = 3;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  room = kite_group_create(srv);
  kite_server_route(srv, MSG_JOIN, on_join, NULL);
  kite_server_route(srv, MSG_SHOUT, on_shout, NULL);
  kite_server_route(srv, MSG_TIMERS, on_timers, NULL);
  kite_timer_id never = 1;
  assert_int_equal(kite_timer_start(srv, ROOM_KEY, 10, 0, one_shot, NULL, &never),
                   KITE_ESTATE); /* not started */
  assert_int_equal(never, 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));

  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.on_message = c_msg;
  cc.log_level = KITE_LOG_WARN;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  static cli_state st[N + 5];
  memset(st, 0, sizeof(st));
  for (int i = 0; i < N + 5; i++) /* the last 5 never join the room */
    assert_int_equal(kite_client_connect(cli, addr, &st[i], &st[i].conn), 0);
  POLL_UNTIL(cli, SUM_OF(st, N + 5, up) == N + 5, 10000);
  assert_int_equal(SUM_OF(st, N + 5, up), N + 5);
  for (int i = 0; i < N; i++)
    assert_int_equal(kite_conn_send(st[i].conn, MSG_JOIN, "j", 1), 0);
  POLL_UNTIL(cli, atomic_load(&joined) >= N, 10000);
  assert_int_equal(kite_group_size(room), N);

  /* One shout: every member gets it exactly once, the others never. */
  assert_int_equal(kite_conn_send(st[3].conn, MSG_SHOUT, "hello", 5), 0);
  POLL_UNTIL(cli, SUM_OF(st, N, room_frames) >= N, 5000);
  for (int k = 0; k < 50; k++) /* let any duplicate arrive */
    kite_client_poll(cli, 2);
  for (int i = 0; i < N + 5; i++)
    assert_int_equal(st[i].room_frames, i < N ? 1 : 0);

  /* Members that leave by disconnecting are gone from the group. */
  for (int i = 0; i < 10; i++)
    kite_conn_close(st[i].conn);
  POLL_UNTIL(cli, kite_group_size(room) == N - 10, 5000);
  assert_int_equal(kite_group_size(room), N - 10);

  /* Timers on the room's key. */
  assert_int_equal(kite_conn_send(st[20].conn, MSG_TIMERS, "t", 1), 0);
  POLL_UNTIL(cli, nfired >= 5 && ticks >= 10, 5000);
  usleep(200000); /* a stopped timer must stay stopped */
  assert_int_equal(nfired, 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(fired_order[i], i); /* expiry order, not start order */
  assert_int_equal(ticks, 10);
  /* On the 50 ms schedule: a late tick does not push the others back, so
   * ten ticks span nine periods (bounds allow for a loaded machine). */
  int32_t span = (int32_t)(tick_ms[9] - tick_ms[0]);
  assert_true(span >= 9 * 50 - 10 && span <= 9 * 50 + 200);
  assert_int_equal(thread_errors, 0);
  /* From another thread a stop is posted (0); the executor finds the
   * timer gone already, and nothing fires. */
  assert_int_equal(kite_timer_stop(srv, tick_id), 0);
  assert_int_equal(kite_timer_stop(srv, 0xFFFF000000000001ULL), KITE_ENOTFOUND);
  kite_client_destroy(cli);
  kite_server_stop(srv);
  kite_group_destroy(room);
  kite_server_destroy(srv);
}

static void inline_rooms_and_timers(void **state) { (void)state; run(KITE_WORKERS_INLINE); }
static void hash_rooms_and_timers(void **state) { (void)state; run(KITE_WORKERS_HASH); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(inline_rooms_and_timers),
      cmocka_unit_test(hash_rooms_and_timers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
