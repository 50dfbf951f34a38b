/*
 * A client's TCP quit counted as a dead link (found by the outsider's
 * game; public API only).
 *
 * client.h: "when this client closes a TCP session on purpose ... it
 * sends its own notice ahead of its FIN", and kite_conn_close() closes the
 * socket at once. With bytes from the server still unread in it, the
 * kernel then answers with a reset. The notice reached the server first;
 * yet when the server writes to the session before it reads that notice
 * (here: a handler's reply, after the handler ran through the quit), the
 * write fails on the reset and on_disconnect gets KITE_CLOSE_DEAD_LINK
 * (closed_dead_link) instead of KITE_CLOSE_NORMAL: a studio's "normal
 * quits" read as network failures under load. Version 1 and 2 alike.
 *
 * Here: the server sends 40 frames the client does not read; the client
 * sends a message whose handler sleeps, then quits while it sleeps; the
 * handler replies when it wakes. The server must report reason 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kite/kite.h>

enum { MSG_BURST = 1, MSG_DATA = 2, MSG_SLOW = 3, MSG_LATE = 4 };

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Written by the shard (inline mode), read by the test thread. */
static atomic_int reason, slow_ran, burst_sent;

static void h_burst(const kite_request *req) {
  static const uint8_t body[16000];
  int n = 0;
  for (int i = 0; i < 40; i++)
    n += kite_reply(req, MSG_DATA, body, sizeof body) == 0;
  atomic_store(&burst_sent, n);
}
static void h_slow(const kite_request *req) {
  atomic_store(&slow_ran, 1);
  usleep(300 * 1000); /* the shard is busy while the client quits */
  uint8_t b = 0;
  kite_reply(req, MSG_LATE, &b, 1);
}
static void on_disconnect(kite_server *srv, kite_session_id id, int r,
                          void *user) {
  (void)srv, (void)id, (void)user;
  atomic_store(&reason, r);
}

static bool open_;
static void c_connect(kite_conn *c, void *u) { (void)c, (void)u; open_ = true; }

static void quit_with_unread(bool v2) {
  atomic_store(&reason, -1);
  atomic_store(&slow_ran, 0);
  atomic_store(&burst_sent, 0);
  open_ = false;
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  assert_int_equal(kite_token_key_new(key), 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.versions = v2 ? KITE_VERSION_2 : KITE_VERSION_1;
  if (v2) {
    cfg.token_key_set = true;
    memcpy(cfg.token_key, key, sizeof key);
    cfg.protocol_id = 7;
  }
  cfg.on_disconnect = on_disconnect;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_route(srv, MSG_BURST, h_burst, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_SLOW, h_slow, NULL), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", kite_server_tcp_port(srv));

  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_connect;
  cc.log_level = KITE_LOG_WARN;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  kite_conn *conn;
  if (v2) {
    const char *addrs[] = {addr};
    kite_token_params p = {.protocol_id = 7, .client_id = 1, .ttl_s = 60,
                           .addrs = addrs, .naddrs = 1};
    uint8_t token[KITE_TOKEN_BYTES];
    assert_int_equal(kite_token_mint(token, key, &p), 0);
    assert_int_equal(kite_client_connect_token_tcp(cli, token, NULL, &conn), 0);
  } else {
    assert_int_equal(kite_client_connect_tcp(cli, addr, NULL, &conn), 0);
  }
  uint64_t end = now_ms() + 10000;
  while (!open_ && now_ms() < end)
    kite_client_poll(cli, 10);
  assert_true(open_);

  /* Over TCP a send is written in the call: no poll from here on, so what
   * the server sends stays unread in the client's socket. */
  uint8_t b = 0;
  assert_int_equal(kite_conn_send(conn, MSG_BURST, &b, 1), 0);
  end = now_ms() + 10000;
  while (atomic_load(&burst_sent) == 0 && now_ms() < end)
    usleep(1000);
  assert_int_equal(atomic_load(&burst_sent), 40);
  assert_int_equal(kite_conn_send(conn, MSG_SLOW, &b, 1), 0);
  end = now_ms() + 10000;
  while (atomic_load(&slow_ran) == 0 && now_ms() < end)
    usleep(1000);
  assert_int_equal(atomic_load(&slow_ran), 1);
  assert_int_equal(kite_conn_close(conn), 0); /* its notice, FIN, close */
  end = now_ms() + 10000;
  while (atomic_load(&reason) < 0 && now_ms() < end)
    kite_client_poll(cli, 10);
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  printf("v%d: server reason %d (%s), closed_normal %llu closed_dead_link %llu\n",
         v2 ? 2 : 1, atomic_load(&reason),
         kite_close_reason_name(atomic_load(&reason)),
         (unsigned long long)st.closed_normal,
         (unsigned long long)st.closed_dead_link);
  kite_client_destroy(cli);
  kite_server_stop(srv);
  kite_server_destroy(srv);
  assert_int_equal(atomic_load(&reason), KITE_CLOSE_NORMAL);
}

static void v1_quit_reads_as_normal(void **state) {
  (void)state;
  quit_with_unread(false);
}
static void v2_quit_reads_as_normal(void **state) {
  (void)state;
  quit_with_unread(true);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(v1_quit_reads_as_normal),
                                     cmocka_unit_test(v2_quit_reads_as_normal)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
