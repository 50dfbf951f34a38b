/*
 * Which threads may do what with a server, in every worker mode, from the
 * public API only:
 *  - a handler that calls kite_server_stop() or kite_server_destroy() on
 *    its own server is refused (KITE_ESTATE; destroy logs and frees
 *    nothing) instead of waiting for itself, and the server goes on;
 *  - kite_session_get_info() works from on_connect on its executor and
 *    from any other thread while the session is open;
 *  - the user pointer set in on_connect is the handler's, and is NULL
 *    again for anything the executor runs after on_disconnect;
 *  - a handler that closes its own session twice gets KITE_ENOTFOUND the
 *    second time, and the message sent right behind the close is counted
 *    once, in drop_after_close, never also in frames_in.
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

enum { MSG_STOP = 1, MSG_DESTROY = 2, MSG_ECHO = 3, MSG_KICK = 4 };

/* Server side, counted on the executors, asserted on the test thread. */
static atomic_int stop_rc, destroyed, info_fails, user_fails, echoes_out;
static atomic_int after_disconnect_user = -1;
static atomic_int second_close_rc = 1, handled;
static atomic_ullong last_id;
static int marker;
static atomic_int destroy_refusals; /* log lines saying so */

static void capture(void *u, kite_log_level level, const char *msg) {
  (void)u, (void)level;
  if (strstr(msg, "kite_server_destroy() from a callback"))
    atomic_fetch_add(&destroy_refusals, 1);
}

static void on_connect(kite_server *srv, kite_session_id id, void *u) {
  (void)u;
  kite_session_info in;
  if (kite_session_get_info(srv, id, &in) != 0 || in.transport != KITE_TRANSPORT_KCP ||
      strncmp(in.peer, "127.0.0.1:", 10) != 0)
    atomic_fetch_add(&info_fails, 1);
  if (kite_session_set_user(srv, id, &marker) != 0)
    atomic_fetch_add(&user_fails, 1);
  atomic_store(&last_id, id);
}

static void after_disconnect(kite_server *srv, kite_timer_id t, void *u) {
  (void)t;
  kite_session_id id = (kite_session_id)(uintptr_t)u;
  atomic_store(&after_disconnect_user, kite_session_user(srv, id) != NULL);
}

static void on_disconnect(kite_server *srv, kite_session_id id, int r, void *u) {
  (void)r, (void)u;
  /* A task on the same executor, after this callback: it must see NULL. */
  kite_timer_start(srv, KITE_TIMER_CLOCK_KEY(3), 0, 0, after_disconnect,
                   (void *)(uintptr_t)id, NULL);
}

static void on_message(kite_server *srv, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  if (kite_session_user(srv, id) != &marker)
    atomic_fetch_add(&user_fails, 1);
  atomic_fetch_add(&handled, 1);
  if (m == MSG_KICK) {
    kite_session_close(srv, id);
    atomic_store(&second_close_rc, kite_session_close(srv, id));
    return;
  }
  if (m == MSG_STOP)
    atomic_store(&stop_rc, kite_server_stop(srv));
  else if (m == MSG_DESTROY) {
    kite_server_destroy(srv); /* refused: it would free itself */
    atomic_store(&destroyed, 1);
  }
  if (kite_session_send(srv, id, MSG_ECHO, b, n) == 0)
    atomic_fetch_add(&echoes_out, 1);
}

/* Client side. */
static int echoes, connected, gone;
static void c_connect(kite_conn *c, void *u) { (void)c, (void)u; connected++; }
static void c_message(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                      void *u) {
  (void)c, (void)m, (void)b, (void)n, (void)u;
  echoes++;
}
static void c_disconnect(kite_conn *c, int r, void *u) { (void)c, (void)r, (void)u; gone++; }

static void run(kite_worker_mode mode) {
  atomic_store(&stop_rc, 1);
  atomic_store(&destroyed, 0);
  atomic_store(&destroy_refusals, 0);
  atomic_store(&info_fails, 0);
  atomic_store(&user_fails, 0);
  atomic_store(&echoes_out, 0);
  atomic_store(&after_disconnect_user, -1);
  atomic_store(&second_close_rc, 1);
  atomic_store(&handled, 0);
  echoes = connected = gone = 0;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = mode;
  cfg.workers = 2;
  cfg.log = capture;
  cfg.log_level = KITE_LOG_ERROR;
  cfg.on_connect = on_connect;
  cfg.on_message = on_message;
  cfg.on_disconnect = on_disconnect;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_connect;
  cc.on_message = c_message;
  cc.on_disconnect = c_disconnect;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  kite_conn *conn;
  assert_int_equal(kite_client_connect(cli, addr, NULL, &conn), 0);
  assert_true(POLL_UNTIL(cli, connected == 1, 5000));

  assert_int_equal(kite_conn_send(conn, MSG_STOP, "s", 1), 0);
  assert_true(POLL_UNTIL(cli, echoes == 1, 5000));
  assert_int_equal(atomic_load(&stop_rc), KITE_ESTATE);
  assert_int_equal(kite_conn_send(conn, MSG_DESTROY, "d", 1), 0);
  assert_true(POLL_UNTIL(cli, echoes == 2, 5000));
  assert_int_equal(atomic_load(&destroyed), 1);
  assert_int_equal(atomic_load(&destroy_refusals), 1);
  /* The server went on: another echo, and info from this thread. */
  assert_int_equal(kite_conn_send(conn, MSG_ECHO, "e", 1), 0);
  assert_true(POLL_UNTIL(cli, echoes == 3, 5000));
  kite_session_info in;
  assert_int_equal(kite_session_get_info(srv, atomic_load(&last_id), &in), 0);
  assert_true(in.frames_in >= 3);
  assert_int_equal(atomic_load(&info_fails), 0);
  assert_int_equal(atomic_load(&user_fails), 0);

  /* Kicked by its own handler, with an echo request right behind. */
  assert_int_equal(kite_conn_send(conn, MSG_KICK, "k", 1), 0);
  assert_int_equal(kite_conn_send(conn, MSG_ECHO, "late", 4), 0);
  assert_true(POLL_UNTIL(cli, gone == 1 && atomic_load(&second_close_rc) != 1,
                         5000)); /* the handler may finish after the close */
  assert_int_equal(atomic_load(&second_close_rc), KITE_ENOTFOUND);
  kite_server_stats st;
  for (int i = 0; i < 500; i++) { /* the late one: dropped, counted once */
    kite_server_stats_get(srv, &st);
    if (st.drop_after_close + st.frames_in >= 5)
      break;
    kite_client_poll(cli, 10);
  }
  assert_int_equal(atomic_load(&handled), 4); /* STOP, DESTROY, ECHO, KICK */
  assert_int_equal(st.frames_in, 4);
  assert_int_equal(st.drop_after_close, 1);
  for (int i = 0; i < 500; i++) { /* the task after on_disconnect ran */
    kite_server_stats_get(srv, &st);
    if (atomic_load(&after_disconnect_user) >= 0)
      break;
    kite_client_poll(cli, 10);
  }
  assert_int_equal(atomic_load(&after_disconnect_user), 0);
  assert_int_equal(kite_session_get_info(srv, atomic_load(&last_id), &in),
                   KITE_ENOTFOUND);
  kite_client_destroy(cli);
  assert_int_equal(kite_server_stop(srv), 0);
  kite_server_destroy(srv);
}

static void inline_mode(void **st) { (void)st; run(KITE_WORKERS_INLINE); }
static void hash_mode(void **st) { (void)st; run(KITE_WORKERS_HASH); }
static void bind_mode(void **st) { (void)st; run(KITE_WORKERS_BIND); }
static void dynamic_mode(void **st) { (void)st; run(KITE_WORKERS_DYNAMIC); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(inline_mode),
      cmocka_unit_test(hash_mode),
      cmocka_unit_test(bind_mode),
      cmocka_unit_test(dynamic_mode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
