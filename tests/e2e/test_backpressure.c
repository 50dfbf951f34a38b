/*
 * Backpressure in hash mode, with a handler that is not slow but stuck:
 * it blocks its worker until every other session has finished its work.
 * So the others must go on while it is stuck (a runtime that stalled a
 * shard, or queued without bound, would hang or grow here), and the stuck
 * session's mailbox never holds more than mailbox_bytes (plus the one
 * message that crossed it): the rest waits in KCP, its window closed.
 * Once released, the stuck session gets every frame, in order. It also
 * holds kite_session_set_affinity() to its word: the stuck handler's own
 * move to worker 0 must take effect at its next message, not after the
 * turn, or it would block its old worker and the sessions there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "logic/logic_internal.h"
#include "server/port.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FAST 24
#define FAST_MSGS 200
#define STUCK_MSGS 300
#define STUCK_BODY 1000
#define MAILBOX_BYTES 4096
#define WORKERS 4

static atomic_int opened, fast_finished, errors;
static atomic_uint max_mailbox_bytes;
static atomic_bool stuck_blocked;

static void on_connect(kite_server *srv, kite_session_id id, void *u) {
  (void)u;
  int i = atomic_fetch_add(&opened, 1);
  /* Workers 1..3; the stuck session moves itself to worker 0. */
  kite_session_set_affinity(srv, id, 1 + (uint64_t)i % (WORKERS - 1));
}

static void on_fast(const kite_request *r) {
  kite_reply(r, r->msg_id, r->body, r->len);
}

static void on_stuck(const kite_request *r) {
  static uint32_t next;
  uint32_t seq;
  memcpy(&seq, r->body, 4);
  if (seq != next++)
    atomic_fetch_add(&errors, 1);
  if (seq == 0) {
    kite_session_set_affinity(r->srv, r->session, 0); /* worker 0, alone */
  } else if (seq == 1) {
    /* Stuck until the others are done, watching its own mailbox. */
    atomic_store(&stuck_blocked, true);
    kite__lsess *ls = kite__port_lsess(r->srv, r->session);
    uint64_t end = kite__now_us() + 60000000;
    while (atomic_load(&fast_finished) < FAST) {
      unsigned b = atomic_load(&ls->mb.bytes);
      if (b > atomic_load(&max_mailbox_bytes))
        atomic_store(&max_mailbox_bytes, b);
      if (kite__now_us() > end) {
        atomic_fetch_add(&errors, 1000); /* the others never finished */
        break;
      }
      usleep(1000);
    }
  }
  kite_reply(r, r->msg_id, r->body, r->len);
}

typedef struct cli_session {
  kite_conn *conn;
  uint32_t sent, echoed;
  bool up, counted;
} cli_session;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((cli_session *)kite_conn_user(c))->up = true;
}

static void c_msg(kite_conn *c, uint16_t msg_id, const uint8_t *b, size_t n,
                  void *u) {
  (void)u; (void)n; (void)msg_id;
  cli_session *s = kite_conn_user(c);
  uint32_t seq;
  memcpy(&seq, b, 4);
  if (seq != s->echoed)
    atomic_fetch_add(&errors, 1);
  s->echoed = seq + 1;
}

static void others_go_on_while_one_handler_is_stuck(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = KITE_WORKERS_HASH;
  /* Many sessions from 127.0.0.1 at once: no per-source limits. */
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  cfg.workers = WORKERS;
  cfg.mailbox_bytes = MAILBOX_BYTES;
  cfg.on_connect = on_connect;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  kite_server_route(srv, 5, on_fast, NULL);
  kite_server_route(srv, 9, on_stuck, NULL);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));

  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.on_message = c_msg;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  static cli_session cs[FAST + 1];
  cli_session *stuck = &cs[FAST];
  for (int i = 0; i <= FAST; i++)
    assert_int_equal(kite_client_connect(cli, addr, &cs[i], &cs[i].conn), 0);

  uint8_t body[STUCK_BODY] = {0};
  uint64_t end = kite__now_us() + 120000000;
  bool all_started = false;
  while (kite__now_us() < end) {
    kite_client_poll(cli, 1);
    int started = 0, done = 0;
    for (int i = 0; i < FAST; i++) {
      cli_session *s = &cs[i];
      while (s->up && s->sent < FAST_MSGS && s->sent - s->echoed < 32) {
        memcpy(body, &s->sent, 4);
        if (kite_conn_send(s->conn, 5, body, 64) != 0)
          break;
        s->sent++;
      }
      started += s->echoed > 0;
      if (s->echoed == FAST_MSGS && !s->counted) {
        s->counted = true;
        atomic_fetch_add(&fast_finished, 1);
      }
      done += s->counted;
    }
    /* Every other session has run on_connect (its first echo is back)
     * before the stuck one may block worker 0. */
    all_started = all_started || started == FAST;
    while (all_started && stuck->up && stuck->sent < STUCK_MSGS) {
      memcpy(body, &stuck->sent, 4);
      if (kite_conn_send(stuck->conn, 9, body, STUCK_BODY) != 0)
        break; /* its queue is full: the server's window is closed */
      stuck->sent++;
    }
    if (done == FAST && stuck->echoed == STUCK_MSGS)
      break;

  }
  assert_true(atomic_load(&stuck_blocked));
  assert_int_equal(atomic_load(&fast_finished), FAST);
  assert_int_equal(stuck->echoed, STUCK_MSGS);
  assert_int_equal(atomic_load(&errors), 0);
  /* Bounded: at most mailbox_bytes, plus the message that crossed it. */
  assert_true(atomic_load(&max_mailbox_bytes) > 0);
  assert_true(atomic_load(&max_mailbox_bytes) <= MAILBOX_BYTES + STUCK_BODY);
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  assert_true(st.backpressure > 0);
  assert_int_equal(st.closed_slow_peer, 0);
  kite_client_destroy(cli);
  kite_server_stop(srv);
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(others_go_on_while_one_handler_is_stuck),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
