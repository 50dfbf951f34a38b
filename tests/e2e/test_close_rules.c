/*
 * What happens around a close, the same in every mode (include/kite/
 * logic.h, "After a close"), and how deep a mailbox is:
 *  - a handler that closes its own session: no handler runs after it for
 *    the messages already sent, its reply after the close and any send
 *    from on_disconnect return KITE_ECLOSED, and the client gets nothing;
 *  - the peer closes while a worker is behind: the messages still waiting
 *    are dropped and counted (drop_after_close), on_disconnect comes next;
 *  - a burst of 50 messages to a slow handler fits the default mailbox
 *    (256: no backpressure) and trips a depth of 8, whose warning names
 *    the session by id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "e2e_poll.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { MSG_KICK_ME = 1, MSG_AFTER = 2, MSG_SLOW = 3, MSG_REPLY = 4 };

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

/* Server side, counted from any executor, asserted on the test thread. */
static atomic_int handled, after_close_runs, disconnects, eclosed_replies;
static atomic_int reply_rc, disconnect_send_rc;
static atomic_ullong session_id;
static atomic_int slow_ms;

static void on_connect(kite_server *srv, kite_session_id id, void *u) {
  (void)srv; (void)u;
  atomic_store(&session_id, id);
}

static void on_disconnect(kite_server *srv, kite_session_id id, int r, void *u) {
  (void)r; (void)u;
  atomic_store(&disconnect_send_rc, kite_session_send(srv, id, MSG_REPLY, "x", 1));
  atomic_fetch_add(&disconnects, 1);
}

/* Slow, closes its own session, then tries to reply. */
static void on_kick_me(const kite_request *r) {
  atomic_fetch_add(&handled, 1);
  usleep(30000); /* the messages after it queue up meanwhile */
  if (kite_session_close(r->srv, r->session) != 0)
    atomic_fetch_add(&after_close_runs, 100); /* counted: asserted later */
  atomic_store(&reply_rc, kite_reply(r, MSG_REPLY, "late", 4));
}

static void on_after(const kite_request *r) {
  (void)r;
  atomic_fetch_add(&after_close_runs, 1);
}

static void on_slow(const kite_request *r) {
  atomic_fetch_add(&handled, 1);
  usleep((useconds_t)atomic_load(&slow_ms) * 1000);
  if (kite_reply(r, MSG_REPLY, r->body, r->len) == KITE_ECLOSED)
    atomic_fetch_add(&eclosed_replies, 1);
}

typedef struct cli {
  kite_conn *conn;
  int up, down, replies;
} cli;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((cli *)kite_conn_user(c))->up = 1;
}
static void c_msg(kite_conn *c, uint16_t id, const uint8_t *b, size_t n, void *u) {
  (void)u; (void)b; (void)n; (void)id;
  ((cli *)kite_conn_user(c))->replies++;
}
static void c_down(kite_conn *c, int reason, void *u) {
  (void)reason; (void)u;
  ((cli *)kite_conn_user(c))->down = 1;
}

static void reset(void) {
  atomic_store(&handled, 0);
  atomic_store(&after_close_runs, 0);
  atomic_store(&disconnects, 0);
  atomic_store(&eclosed_replies, 0);
  atomic_store(&reply_rc, 1);
  atomic_store(&disconnect_send_rc, 1);
  atomic_store(&session_id, 0);
  log_text[0] = 0;
}

static kite_server *start_server(kite_worker_mode mode, uint32_t depth) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = mode;
  cfg.workers = 2;
  if (depth)
    cfg.mailbox_depth = depth;
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.log = capture;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_route(srv, MSG_KICK_ME, on_kick_me, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_AFTER, on_after, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_SLOW, on_slow, NULL), 0);
  assert_int_equal(kite_server_start(srv), 0);
  return srv;
}

static kite_client *connect_one(kite_server *srv, cli *one) {
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.on_message = c_msg;
  cc.on_disconnect = c_down;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *c;
  assert_int_equal(kite_client_create(&c, &cc), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  memset(one, 0, sizeof(*one));
  assert_int_equal(kite_client_connect(c, addr, one, &one->conn), 0);
  assert_true(POLL_UNTIL(c, one->up, 10000));
  return c;
}

/* ---- a handler closes its own session ---- */

#define AFTER 9

static void run_close_from_handler(kite_worker_mode mode) {
  reset();
  kite_server *srv = start_server(mode, 0);
  cli one;
  kite_client *c = connect_one(srv, &one);
  /* One datagram's worth: the kick, then nine more right behind it. */
  assert_int_equal(kite_conn_send(one.conn, MSG_KICK_ME, "k", 1), 0);
  for (int i = 0; i < AFTER; i++)
    assert_int_equal(kite_conn_send(one.conn, MSG_AFTER, "a", 1), 0);
  assert_true(POLL_UNTIL(c, one.down && atomic_load(&disconnects) == 1, 10000));
  for (int k = 0; k < 20; k++) /* anything sent late would arrive by now */
    kite_client_poll(c, 5);
  assert_int_equal(atomic_load(&handled), 1);
  assert_int_equal(atomic_load(&after_close_runs), 0); /* none after the close */
  assert_int_equal(atomic_load(&reply_rc), KITE_ECLOSED);
  assert_int_equal(atomic_load(&disconnect_send_rc), KITE_ECLOSED);
  assert_int_equal(one.replies, 0); /* nothing was sent after all */
  if (mode != KITE_WORKERS_INLINE) /* they waited in the mailbox */
    assert_true(e2e_stats(srv).drop_after_close > 0);
  /* The id is stale once on_disconnect has run. */
  assert_int_equal(kite_session_send(srv, atomic_load(&session_id), MSG_REPLY, "x", 1),
                   KITE_ENOTFOUND);
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

static void close_from_handler_inline(void **s) { (void)s; run_close_from_handler(KITE_WORKERS_INLINE); }
static void close_from_handler_hash(void **s) { (void)s; run_close_from_handler(KITE_WORKERS_HASH); }
static void close_from_handler_bind(void **s) { (void)s; run_close_from_handler(KITE_WORKERS_BIND); }
static void close_from_handler_dynamic(void **s) { (void)s; run_close_from_handler(KITE_WORKERS_DYNAMIC); }

/* ---- the peer closes while its worker is behind ---- */

#define QUEUED 10

static void run_peer_close_while_behind(kite_worker_mode mode) {
  reset();
  atomic_store(&slow_ms, 100);
  kite_server *srv = start_server(mode, 0);
  cli one;
  kite_client *c = connect_one(srv, &one);
  for (int i = 0; i < QUEUED; i++)
    assert_int_equal(kite_conn_send(one.conn, MSG_SLOW, "s", 1), 0);
  /* Every message acknowledged (so in the server's hands), then CLOSE. */
  POLL_UNTIL(c, atomic_load(&handled) >= 1, 10000);
  kite_client_poll(c, 30);
  assert_int_equal(kite_conn_close(one.conn), 0);
  POLL_UNTIL(c, one.down, 10000);
  assert_true(POLL_UNTIL(c, atomic_load(&disconnects) == 1, 10000));
  kite_server_stats st = e2e_stats(srv);
  /* A message is handled, or it was dropped when the close took effect:
   * never both, never neither; and a worker 100 ms per message behind
   * cannot have handled all ten before the CLOSE. */
  assert_int_equal(atomic_load(&handled) + (int)st.drop_after_close, QUEUED);
  assert_true(atomic_load(&handled) < QUEUED);
  /* At most the handler running when the close came saw KITE_ECLOSED. */
  assert_true(atomic_load(&eclosed_replies) <= 1);
  assert_int_equal(atomic_load(&disconnect_send_rc), KITE_ECLOSED);
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

static void peer_close_hash(void **s) { (void)s; run_peer_close_while_behind(KITE_WORKERS_HASH); }
static void peer_close_bind(void **s) { (void)s; run_peer_close_while_behind(KITE_WORKERS_BIND); }
static void peer_close_dynamic(void **s) { (void)s; run_peer_close_while_behind(KITE_WORKERS_DYNAMIC); }

/* ---- mailbox depth ---- */

#define BURST 50

static void run_burst(kite_worker_mode mode, uint32_t depth, bool trips) {
  reset();
  atomic_store(&slow_ms, 2);
  kite_server *srv = start_server(mode, depth);
  cli one;
  kite_client *c = connect_one(srv, &one);
  for (int i = 0; i < BURST; i++)
    assert_int_equal(kite_conn_send(one.conn, MSG_SLOW, &i, sizeof(i)), 0);
  assert_true(POLL_UNTIL(c, one.replies == BURST, 20000));
  kite_server_stats st = e2e_stats(srv);
  assert_int_equal(atomic_load(&handled), BURST);
  if (trips) {
    assert_true(st.backpressure > 0);
    char who[32];
    snprintf(who, sizeof(who), "session %016llx",
             (unsigned long long)atomic_load(&session_id));
    assert_true(logged(who)); /* the warning names the session */
  } else {
    assert_int_equal(st.backpressure, 0);
  }
  kite_client_destroy(c);
  kite_server_destroy(srv);
}

static void burst_fits_default_depth(void **s) {
  (void)s;
  run_burst(KITE_WORKERS_HASH, 0, false);
  run_burst(KITE_WORKERS_BIND, 0, false);
  run_burst(KITE_WORKERS_DYNAMIC, 0, false);
}

static void burst_trips_small_depth(void **s) {
  (void)s;
  run_burst(KITE_WORKERS_HASH, 8, true);
  run_burst(KITE_WORKERS_BIND, 8, true);
  run_burst(KITE_WORKERS_DYNAMIC, 8, true);
}

static void depth_is_validated(void **s) {
  (void)s;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  assert_int_equal(cfg.mailbox_depth, 256);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.log = capture;
  kite_server *srv;
  uint32_t bad[] = {0, 1, 100, 8192};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cfg.mailbox_depth = bad[i];
    assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
  }
  assert_true(logged("mailbox_depth"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(close_from_handler_inline),
      cmocka_unit_test(close_from_handler_hash),
      cmocka_unit_test(close_from_handler_bind),
      cmocka_unit_test(close_from_handler_dynamic),
      cmocka_unit_test(peer_close_hash),
      cmocka_unit_test(peer_close_bind),
      cmocka_unit_test(peer_close_dynamic),
      cmocka_unit_test(burst_fits_default_depth),
      cmocka_unit_test(burst_trips_small_depth),
      cmocka_unit_test(depth_is_validated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
