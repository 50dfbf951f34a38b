/*
 * A send that meets the shard's KCP budget (shard_segments_max, shared by
 * every session of the shard) says so with KITE_ENOMEM, not KITE_EFULL:
 * the server is overloaded, the peer is not slow, and an application
 * that drops players whose queue stays full (kite-echo does) must be able
 * to tell the two apart. Under overload the budget fills long before one
 * session's send_queue_max; a kicked player then is the server's fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"
#include "e2e_poll.h"

#include <stdatomic.h>
#include <stdio.h>

enum { MSG_FLOOD = 9, FRAMES = 200, BODY = 1000 };

static atomic_int sent_ok, got_enomem, got_efull, got_other;

static void on_message(kite_server *srv, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)b, (void)n, (void)u;
  if (m != MSG_FLOOD)
    return;
  static uint8_t body[BODY];
  /* On the session's own shard (inline mode): one handler call, so no
   * ack frees anything in between. */
  for (int i = 0; i < FRAMES; i++) {
    int rc = kite_session_send(srv, id, 1, body, sizeof(body));
    if (rc == 0)
      atomic_fetch_add(&sent_ok, 1);
    else if (rc == KITE_ENOMEM)
      atomic_fetch_add(&got_enomem, 1);
    else if (rc == KITE_EFULL)
      atomic_fetch_add(&got_efull, 1);
    else
      atomic_fetch_add(&got_other, 1);
  }
}

static int up;
static void c_up(kite_conn *c, void *u) {
  (void)c, (void)u;
  up = 1;
}

static void budget_spent_is_enomem_not_efull(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.shard_segments_max = 64; /* the smallest: one session spends it */
  cfg.max_frame = 4096;
  cfg.on_message = on_message;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  kite_conn *conn;
  assert_int_equal(kite_client_connect(cli, addr, NULL, &conn), 0);
  assert_true(POLL_UNTIL(cli, up, 5000));
  assert_int_equal(kite_conn_send(conn, MSG_FLOOD, NULL, 0), 0);
  assert_true(POLL_UNTIL(cli, atomic_load(&sent_ok) + atomic_load(&got_enomem) +
                                      atomic_load(&got_efull) +
                                      atomic_load(&got_other) == FRAMES,
                         5000));
  /* 200 frames of one segment each fit send_queue_max (1024) but not a
   * budget of 64 segments: the refusals are the shard's. */
  assert_true(atomic_load(&sent_ok) > 0);
  assert_true(atomic_load(&got_enomem) > 0);
  assert_int_equal(atomic_load(&got_efull), 0);
  assert_int_equal(atomic_load(&got_other), 0);
  kite_server_stats st;
  EVENTUALLY_STATS(srv, st, st.kcp_no_buffer >= (uint64_t)atomic_load(&got_enomem), 3000);
  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(budget_spent_is_enomem_not_efull),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
