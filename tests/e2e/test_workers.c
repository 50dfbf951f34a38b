/*
 * The ordered worker pool, in every mode (inline, hash, bind, dynamic, and
 * dynamic past its pool, on temporary workers):
 * many sessions across both shards send numbered messages as fast as they
 * can; per session the handler must see them in order and never two at
 * once (a handler that detects overlap fails the test), on_connect first
 * and on_disconnect last on the same executor, each exactly once. A slow
 * session's mailbox fills and its reading pauses (backpressure) while the
 * others keep going.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SESSIONS 256
#define MSGS 200

typedef struct srv_session {
  atomic_int busy;     /* a callback of this session is running */
  int connects, disconnects, messages, errors;
  uint32_t next_seq;
  pthread_t executor;  /* where on_connect ran */
  bool slow;
} srv_session;

static srv_session table[MAX_SESSIONS];
static atomic_int nslots, total_errors, disconnected;

static void enter(srv_session *t) {
  if (atomic_exchange(&t->busy, 1) != 0)
    atomic_fetch_add(&total_errors, 1); /* two at once: never allowed */
}
static void leave(srv_session *t) { atomic_store(&t->busy, 0); }

static void on_connect(kite_server *srv, kite_session_id id, void *u) {
  (void)u;
  int i = atomic_fetch_add(&nslots, 1);
  if (i >= MAX_SESSIONS) { /* counted here, asserted on the test thread */
    atomic_fetch_add(&total_errors, 1);
    return;
  }
  srv_session *t = &table[i];
  enter(t);
  t->connects++;
  t->executor = pthread_self();
  kite_session_set_user(srv, id, t);
  leave(t);
}

static void on_msg(const kite_request *req) {
  srv_session *t = req->session_user;
  if (!t) {
    atomic_fetch_add(&total_errors, 1); /* a message before on_connect */
    return;
  }
  enter(t);
  uint32_t seq;
  memcpy(&seq, req->body, 4);
  if (seq != t->next_seq || t->connects != 1 || t->disconnects != 0)
    t->errors++;
  t->next_seq = seq + 1;
  t->messages++;
  if (req->user) { /* move to another worker for the next message */
    kite_session_set_affinity(req->srv, req->session, (uint64_t)seq * 2654435761u);
    usleep(20); /* and give the next one time to race this one */
  }
  if (req->msg_id == 9) { /* the slow session: 2 ms per message */
    t->slow = true;
    usleep(2000);
  } else if (seq % 7 == 0) {
    usleep(50); /* widen any window for overlap */
  }
  kite_session_send(req->srv, req->session, req->msg_id, req->body, req->len);
  leave(t);
}

static void on_disconnect(kite_server *srv, kite_session_id id, int reason, void *u) {
  (void)reason; (void)u;
  srv_session *t = kite_session_user(srv, id);
  if (!t) {
    atomic_fetch_add(&total_errors, 1);
    return;
  }
  enter(t);
  t->disconnects++;
  kite_worker_mode mode = (kite_worker_mode)(uintptr_t)u;
  (void)mode;
  leave(t);
  atomic_fetch_add(&disconnected, 1);
}

/* The client side: each session sends MSGS numbered frames, checks echoes. */
typedef struct cli_session {
  kite_conn *conn;
  uint32_t sent, echoed;
  int errors;
  bool up, down;
  uint16_t msg_id;
} cli_session;

static void c_connect(kite_conn *c, void *u) {
  (void)u;
  ((cli_session *)kite_conn_user(c))->up = true;
}
static void c_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                      size_t len, void *u) {
  (void)u; (void)msg_id;
  cli_session *s = kite_conn_user(c);
  uint32_t seq;
  memcpy(&seq, body, 4);
  if (len != 64 || seq != s->echoed)
    s->errors++;
  s->echoed = seq + 1;
}
static void c_disconnect(kite_conn *c, int r, void *u) {
  (void)r; (void)u;
  ((cli_session *)kite_conn_user(c))->down = true;
}

static void run_mode(kite_worker_mode mode, int sessions, int workers, bool one_slow,
                     bool moving) {
  memset(table, 0, sizeof(table));
  atomic_store(&nslots, 0);
  atomic_store(&total_errors, 0);
  atomic_store(&disconnected, 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = mode;
  cfg.workers = workers;
  /* Many sessions from 127.0.0.1 at once: no per-source limits. */
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.mailbox_bytes = 4096; /* small: the slow session fills it */
  cfg.mailbox_depth = 16;   /* (64 in flight, 64 bytes each: under 4096) */
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_route(srv, 5, on_msg, moving ? (void *)1 : NULL), 0);
  assert_int_equal(kite_server_route(srv, 9, on_msg, NULL), 0);
  assert_int_equal(kite_server_start(srv), 0);
  assert_int_equal(kite_server_route(srv, 6, on_msg, NULL), KITE_ESTATE);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));

  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_connect;
  cc.on_message = c_message;
  cc.on_disconnect = c_disconnect;
  cc.log_level = KITE_LOG_WARN;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  static cli_session cs[MAX_SESSIONS];
  memset(cs, 0, sizeof(cs));
  for (int i = 0; i < sessions; i++) {
    cs[i].msg_id = one_slow && i == 0 ? 9 : 5;
    assert_int_equal(kite_client_connect(cli, addr, &cs[i], &cs[i].conn), 0);
  }
  uint8_t body[64] = {0};
  uint64_t end = kite__now_us() + 60000000;
  int fast_done = 0, slow_done = 0;
  while (kite__now_us() < end) {
    kite_client_poll(cli, 1);
    fast_done = slow_done = 0;
    for (int i = 0; i < sessions; i++) {
      cli_session *s = &cs[i];
      while (s->up && s->sent < MSGS && s->sent - s->echoed < 64) {
        memcpy(body, &s->sent, 4);
        if (kite_conn_send(s->conn, s->msg_id, body, sizeof(body)) != 0)
          break;
        s->sent++;
      }
      if (s->echoed == MSGS)
        *(s->msg_id == 9 ? &slow_done : &fast_done) += 1;
    }
    if (fast_done + slow_done == sessions)
      break;
  }
  assert_int_equal(fast_done + slow_done, sessions);
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  if (one_slow)
    assert_true(st.backpressure > 0); /* the slow session's reading paused */
  for (int i = 0; i < sessions; i++) {
    assert_int_equal(cs[i].errors, 0);
    kite_conn_close(cs[i].conn);
  }
  end = kite__now_us() + 10000000;
  while (atomic_load(&disconnected) < sessions && kite__now_us() < end)
    kite_client_poll(cli, 5);
  kite_client_destroy(cli);
  kite_server_stop(srv);
  assert_int_equal(atomic_load(&nslots), sessions);
  assert_int_equal(atomic_load(&disconnected), sessions);
  assert_int_equal(atomic_load(&total_errors), 0);
  for (int i = 0; i < sessions; i++) {
    srv_session *t = &table[i];
    assert_int_equal(t->connects, 1);
    assert_int_equal(t->disconnects, 1);
    assert_int_equal(t->messages, MSGS);
    assert_int_equal(t->errors, 0);
  }
  kite_server_stats_get(srv, &st);
  assert_int_equal(st.sessions, 0);
  kite_server_destroy(srv);
}

static void inline_mode(void **state) {
  (void)state;
  run_mode(KITE_WORKERS_INLINE, 100, 0, false, false);
}
static void hash_mode(void **state) {
  (void)state;
  run_mode(KITE_WORKERS_HASH, 100, 4, false, false);
}
/* Every message moves its session to another worker (as a room change
 * does): order and mutual exclusion must survive each move. */
static void hash_mode_moving_between_workers(void **state) {
  (void)state;
  run_mode(KITE_WORKERS_HASH, 100, 4, false, true);
}
static void bind_mode(void **state) {
  (void)state;
  run_mode(KITE_WORKERS_BIND, 40, 40, false, false);
}
static void dynamic_mode(void **state) {
  (void)state;
  run_mode(KITE_WORKERS_DYNAMIC, 40, 40, false, false);
}
/* Past the pool: 4 workers, 100 sessions, so 96 run on temporary
 * workers; order and mutual exclusion hold there too. */
static void dynamic_mode_past_the_pool(void **state) {
  (void)state;
  run_mode(KITE_WORKERS_DYNAMIC, 100, 4, false, false);
}
static void hash_mode_with_a_slow_session(void **state) {
  (void)state;
  run_mode(KITE_WORKERS_HASH, 40, 4, true, false);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(inline_mode),
      cmocka_unit_test(hash_mode),
      cmocka_unit_test(hash_mode_moving_between_workers),
      cmocka_unit_test(bind_mode),
      cmocka_unit_test(dynamic_mode),
      cmocka_unit_test(dynamic_mode_past_the_pool),
      cmocka_unit_test(hash_mode_with_a_slow_session),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
