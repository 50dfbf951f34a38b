/*
 * Workers past the pool, the clock, and kite_timer_start()'s errors, on a
 * real server over loopback:
 *  - dynamic mode with 4 workers takes 200 sessions, all of which echo:
 *    the pool first, then a temporary worker per session, counted, whose
 *    threads end with their sessions and whose records are reused, also
 *    for sessions that never opened (a TCP connection with no OPEN);
 *  - bind mode with 4 workers refuses the 5th and 6th session, counted as
 *    reject_no_worker (not reject_full) and logged as "no free worker";
 *  - a clock key (KITE_TIMER_CLOCK_KEY) runs a game clock in every mode,
 *    on one thread, which in bind and dynamic modes is no session's;
 *  - each of kite_timer_start()'s errors, where the caller can act on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "e2e_poll.h"
#include "logic/logic_internal.h"
#include "server/port.h"
#include "tcp_raw.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MSG_ECHO = 5, MSG_TIMERS = 6 };

/* ---- the log, captured from any thread ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void capture(void *u, kite_log_level level, const char *msg) {
  (void)u; (void)level;
  pthread_mutex_lock(&log_lock);
  size_t n = strlen(log_text);
  snprintf(log_text + n, sizeof(log_text) - n, "%s\n", msg);
  pthread_mutex_unlock(&log_lock);
}

static bool logged(const char *what) {
  pthread_mutex_lock(&log_lock);
  bool yes = strstr(log_text, what) != NULL;
  pthread_mutex_unlock(&log_lock);
  return yes;
}

static kite_server *make_server(kite_worker_mode mode, int workers,
                                kite_server_config *cfg) {
  log_text[0] = 0;
  cfg->udp_addr = "127.0.0.1:0";
  cfg->threads = 2;
  cfg->worker_mode = mode;
  cfg->workers = workers;
  /* Many sessions from 127.0.0.1 at once: no per-source limits. */
  cfg->max_sessions_per_addr = cfg->max_sessions_per_prefix = 0;
  cfg->max_halfopen_per_addr = cfg->max_halfopen_per_prefix = 0;
  cfg->log = capture;
  cfg->log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, cfg), 0);
  return srv;
}

/* Waits for |cond| (no client to poll), within |ms|. */
/* ---- the client side ---- */

typedef struct cli {
  kite_conn *conn;
  int up, down, echoed;
} cli;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((cli *)kite_conn_user(c))->up = 1;
}
static void c_msg(kite_conn *c, uint16_t id, const uint8_t *b, size_t n, void *u) {
  (void)u; (void)b; (void)n;
  if (id == MSG_ECHO)
    ((cli *)kite_conn_user(c))->echoed++;
}
static void c_down(kite_conn *c, int reason, void *u) {
  (void)reason; (void)u;
  ((cli *)kite_conn_user(c))->down = 1;
}

static kite_client *make_client(void) {
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.on_message = c_msg;
  cc.on_disconnect = c_down;
  cc.max_sessions = 1024;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *c;
  assert_int_equal(kite_client_create(&c, &cc), 0);
  return c;
}

static void server_addr(kite_server *srv, char *addr, size_t n) {
  snprintf(addr, n, "127.0.0.1:%d", kite_server_udp_port(srv));
}

static void on_echo(const kite_request *r) {
  kite_reply(r, r->msg_id, r->body, r->len);
}

static atomic_int connects, disconnects;

static void on_connect(kite_server *srv, kite_session_id id, void *u) {
  (void)srv; (void)id; (void)u;
  atomic_fetch_add(&connects, 1);
}
static void on_disconnect(kite_server *srv, kite_session_id id, int r, void *u) {
  (void)srv; (void)id; (void)r; (void)u;
  atomic_fetch_add(&disconnects, 1);
}

/* ---- dynamic: the pool, then temporary workers ---- */

#define DYN_SESSIONS 200
#define DYN_WORKERS 4
#define ECHOES 5

/* Connects |n| sessions from cs[0..n), each echoing ECHOES frames. */
static void connect_and_echo(kite_client *cli_, const char *addr, cli *cs, int n) {
  for (int i = 0; i < n; i++)
    assert_int_equal(kite_client_connect(cli_, addr, &cs[i], &cs[i].conn), 0);
  POLL_UNTIL(cli_, SUM_OF(cs, n, up) + SUM_OF(cs, n, down) == n, 30000);
  assert_int_equal(SUM_OF(cs, n, up), n); /* none refused */
  uint8_t body[16] = {0};
  for (int k = 0; k < ECHOES; k++)
    for (int i = 0; i < n; i++)
      assert_int_equal(kite_conn_send(cs[i].conn, MSG_ECHO, body, sizeof(body)), 0);
  POLL_UNTIL(cli_, SUM_OF(cs, n, echoed) == n * ECHOES, 30000);
  assert_int_equal(SUM_OF(cs, n, echoed), n * ECHOES);
}

static void dynamic_takes_sessions_past_the_pool(void **state) {
  (void)state;
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  kite_server *srv = make_server(KITE_WORKERS_DYNAMIC, DYN_WORKERS, &cfg);
  assert_int_equal(kite_server_route(srv, MSG_ECHO, on_echo, NULL), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  server_addr(srv, addr, sizeof(addr));
  kite_client *c = make_client();
  static cli cs[DYN_SESSIONS];
  memset(cs, 0, sizeof(cs));

  connect_and_echo(c, addr, cs, DYN_SESSIONS);
  kite_server_stats st = e2e_stats(srv);
  assert_int_equal(st.reject_full + st.reject_no_worker, 0);
  assert_int_equal(st.sessions_opened, DYN_SESSIONS);
  /* The pool took 4; every other session got a thread of its own. */
  assert_int_equal(st.temp_workers_started, DYN_SESSIONS - DYN_WORKERS);
  assert_int_equal(st.temp_workers, DYN_SESSIONS - DYN_WORKERS);

  /* Their threads end with their sessions. */
  for (int i = 0; i < DYN_SESSIONS; i++)
    kite_conn_close(cs[i].conn);
  POLL_UNTIL(c, atomic_load(&disconnects) == DYN_SESSIONS, 20000);
  assert_int_equal(atomic_load(&disconnects), DYN_SESSIONS);
  assert_true(WAIT_FOR(e2e_stats(srv).temp_workers == 0, 10000));

  /* A second wave reuses the records: no more are made than the peak. */
  memset(cs, 0, sizeof(cs));
  connect_and_echo(c, addr, cs, 60);
  st = e2e_stats(srv);
  assert_int_equal(st.temp_workers, 60 - DYN_WORKERS);
  kite__logic *lg = kite__port_logic(srv);
  pthread_mutex_lock(&lg->bind_lock);
  uint32_t made = lg->ntemps;
  pthread_mutex_unlock(&lg->bind_lock);
  assert_true(made <= DYN_SESSIONS - DYN_WORKERS);
  kite_client_destroy(c);
  kite_server_stop(srv);
  assert_int_equal(e2e_stats(srv).temp_workers, 0);
  assert_int_equal(atomic_load(&connects), atomic_load(&disconnects));
  kite_server_destroy(srv);
}

/* TCP connections that never send OPEN claim no session slot (issue 15),
 * so they start no temporary worker either; the server stops with them
 * still connected. */
static void bare_tcp_connects_start_no_worker(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.tcp_addr = "127.0.0.1:0";
  kite_server *srv = make_server(KITE_WORKERS_DYNAMIC, 1, &cfg);
  assert_int_equal(kite_server_start(srv), 0);
  int fds[3];
  for (int i = 0; i < 3; i++)
    assert_true((fds[i] = tcp_raw_connect(kite_server_tcp_port(srv), 1000, 0)) >= 0);
  assert_true(WAIT_FOR(e2e_stats(srv).tcp_accepted == 3, 10000));
  assert_int_equal(e2e_stats(srv).temp_workers_started, 0);
  assert_int_equal(e2e_stats(srv).sessions, 0);
  kite_server_stop(srv); /* they are dropped: no slot, no worker to wait for */
  for (int i = 0; i < 3; i++)
    close(fds[i]);
  assert_int_equal(e2e_stats(srv).temp_workers, 0);
  assert_int_equal(e2e_stats(srv).sessions_opened, 0);
  kite_server_destroy(srv);
}

/* ---- bind: a refusal for want of a worker says so ---- */

static void bind_refusal_is_counted_and_logged(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  kite_server *srv = make_server(KITE_WORKERS_BIND, 4, &cfg);
  assert_int_equal(kite_server_route(srv, MSG_ECHO, on_echo, NULL), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  server_addr(srv, addr, sizeof(addr));
  kite_client *c = make_client();
  cli cs[6];
  memset(cs, 0, sizeof(cs));
  for (int i = 0; i < 6; i++)
    assert_int_equal(kite_client_connect(c, addr, &cs[i], &cs[i].conn), 0);
  POLL_UNTIL(c, SUM_OF(cs, 6, up) == 4 && SUM_OF(cs, 6, down) == 2, 20000);
  assert_int_equal(SUM_OF(cs, 6, up), 4);
  assert_int_equal(SUM_OF(cs, 6, down), 2);
  kite_server_stats st = e2e_stats(srv);
  assert_int_equal(st.reject_no_worker, 2);
  assert_int_equal(st.reject_full, 0); /* the server is not full */
  assert_true(logged("refused: no free worker (bind mode, 4 workers)"));
  assert_false(logged("refused: full"));
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

/* ---- the clock, in every mode ---- */

static atomic_int ticks, clock_thread_errors, routed_errors, routed_runs;
static pthread_t clock_thread;
static atomic_bool clock_thread_set;

static void clock_tick(kite_server *srv, kite_timer_id id, void *u) {
  (void)srv; (void)id; (void)u;
  if (!atomic_load(&clock_thread_set)) {
    clock_thread = pthread_self();
    atomic_store(&clock_thread_set, true);
  } else if (!pthread_equal(clock_thread, pthread_self())) {
    atomic_fetch_add(&clock_thread_errors, 1);
  }
  atomic_fetch_add(&ticks, 1);
}

typedef struct routed {
  pthread_t handler; /* the session's executor */
  bool on_clock;     /* it must run on the clock's thread, else on handler */
} routed;

static void routed_task(kite_server *srv, kite_timer_id id, void *u) {
  (void)srv; (void)id;
  routed *r = u;
  bool ok = r->on_clock ? atomic_load(&clock_thread_set) &&
                              pthread_equal(pthread_self(), clock_thread)
                        : pthread_equal(pthread_self(), r->handler);
  if (!ok)
    atomic_fetch_add(&routed_errors, 1);
  atomic_fetch_add(&routed_runs, 1);
  free(r);
}

/* From a session's handler: one task for the clock, one for the session's
 * own key; each checks where it runs. */
static void on_timers(const kite_request *req) {
  for (int k = 0; k < 2; k++) {
    routed *r = malloc(sizeof(*r));
    r->handler = pthread_self();
    r->on_clock = k == 0;
    uint64_t key = k == 0 ? KITE_TIMER_CLOCK_KEY(7) : req->session;
    if (kite_timer_start(req->srv, key, 0, 0, routed_task, r, NULL) != 0) {
      atomic_fetch_add(&routed_errors, 1);
      free(r);
    }
  }
}

static void run_clock(kite_worker_mode mode) {
  atomic_store(&ticks, 0);
  atomic_store(&clock_thread_errors, 0);
  atomic_store(&routed_errors, 0);
  atomic_store(&routed_runs, 0);
  atomic_store(&clock_thread_set, false);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  kite_server *srv = make_server(mode, 2, &cfg);
  assert_int_equal(kite_server_route(srv, MSG_TIMERS, on_timers, NULL), 0);
  assert_int_equal(kite_server_start(srv), 0);
  kite_timer_id id = 0;
  assert_int_equal(kite_timer_start(srv, KITE_TIMER_CLOCK_KEY(7), 5, 10, clock_tick,
                                    NULL, &id), 0);
  assert_true(id != 0);
  assert_true(WAIT_FOR(atomic_load(&ticks) >= 5, 10000));
  bool session_modes = mode == KITE_WORKERS_BIND || mode == KITE_WORKERS_DYNAMIC;
  if (session_modes) {
    /* A session's tasks: the clock key's on the clock, its own on its
     * worker. (In inline and hash modes a key's executor may be shared
     * with sessions: nothing to tell apart.) */
    char addr[64];
    server_addr(srv, addr, sizeof(addr));
    kite_client *c = make_client();
    cli one = {0};
    assert_int_equal(kite_client_connect(c, addr, &one, &one.conn), 0);
    assert_true(POLL_UNTIL(c, one.up, 10000));
    assert_int_equal(kite_conn_send(one.conn, MSG_TIMERS, "t", 1), 0);
    assert_true(POLL_UNTIL(c, atomic_load(&routed_runs) == 2, 10000));
    assert_int_equal(atomic_load(&routed_errors), 0);
    kite_client_destroy(c);
  }
  assert_int_equal(kite_timer_stop(srv, id), 0);
  kite_server_stop(srv);
  assert_int_equal(atomic_load(&clock_thread_errors), 0);
  kite_server_destroy(srv);
}

static void clock_inline(void **state) { (void)state; run_clock(KITE_WORKERS_INLINE); }
static void clock_hash(void **state) { (void)state; run_clock(KITE_WORKERS_HASH); }
static void clock_bind(void **state) { (void)state; run_clock(KITE_WORKERS_BIND); }
static void clock_dynamic(void **state) { (void)state; run_clock(KITE_WORKERS_DYNAMIC); }

/* ---- kite_timer_start()'s errors ---- */

#define TIMERS_MAX 4
static atomic_int full_results[TIMERS_MAX + 1], full_done;

static void idle_tick(kite_server *srv, kite_timer_id id, void *u) {
  (void)srv; (void)id; (void)u;
}

/* On the clock itself: starts are immediate, so the table's bound shows. */
static void fill_the_table(kite_server *srv, kite_timer_id id, void *u) {
  (void)id; (void)u;
  for (int i = 0; i <= TIMERS_MAX; i++)
    atomic_store(&full_results[i],
                 kite_timer_start(srv, KITE_TIMER_CLOCK_KEY(1), 60000, 60000,
                                  idle_tick, NULL, NULL));
  atomic_store(&full_done, 1);
}

static void timer_start_errors(void **state) {
  (void)state;
  atomic_store(&full_done, 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.timers_max = TIMERS_MAX;
  kite_server *srv = make_server(KITE_WORKERS_BIND, 2, &cfg);
  kite_timer_id id = 99;
  assert_int_equal(kite_timer_start(srv, KITE_TIMER_CLOCK_KEY(1), 0, 0, idle_tick,
                                    NULL, &id), KITE_ESTATE); /* not started */
  assert_int_equal(id, 0);
  assert_int_equal(kite_server_start(srv), 0);
  assert_int_equal(kite_timer_start(srv, KITE_TIMER_CLOCK_KEY(1), 0, 0, NULL, NULL,
                                    &id), KITE_EINVAL);
  /* Bind mode: a key that is neither a clock key nor a live session. */
  assert_int_equal(kite_timer_start(srv, 12345, 0, 0, idle_tick, NULL, &id),
                   KITE_ENOTFOUND);
  assert_int_equal(id, 0);
  /* timers_max on one executor: the fifth start there is refused. */
  assert_int_equal(kite_timer_start(srv, KITE_TIMER_CLOCK_KEY(1), 0, 0,
                                    fill_the_table, NULL, NULL), 0);
  assert_true(WAIT_FOR(atomic_load(&full_done), 10000));
  for (int i = 0; i < TIMERS_MAX; i++)
    assert_int_equal(atomic_load(&full_results[i]), 0);
  assert_int_equal(atomic_load(&full_results[TIMERS_MAX]), KITE_EFULL);
  kite_server_stop(srv);
  assert_int_equal(kite_timer_start(srv, KITE_TIMER_CLOCK_KEY(1), 0, 0, idle_tick,
                                    NULL, &id), KITE_ESTATE); /* stopped */
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(dynamic_takes_sessions_past_the_pool),
      cmocka_unit_test(bare_tcp_connects_start_no_worker),
      cmocka_unit_test(bind_refusal_is_counted_and_logged),
      cmocka_unit_test(clock_inline),
      cmocka_unit_test(clock_hash),
      cmocka_unit_test(clock_bind),
      cmocka_unit_test(clock_dynamic),
      cmocka_unit_test(timer_start_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
