/*
 * Protocol version 2 end to end: kite's client (kite_client_connect_token,
 * _tcp) against kite's server, public API only, tokens from
 * kite_token_mint(). Over KCP and TCP, in every worker mode: connect,
 * echo in order, the session's info in on_connect (version 2, the token's
 * client_id and user_data), a kick with a reply just before it (the reply
 * arrives first, then the close, reason kicked), the client's close
 * (reason normal at the server), the server's stop (reason shutdown at
 * the client). Then the token refusals as the real client reports them,
 * and a v1 client of kite's own beside v2 ones on the same port. A flood
 * from one source while a client logs in: test_v2_flood.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "v2_e2e.h"

#include "relay.h"

#include <pthread.h>
#include <stdlib.h>

#define ECHOES 20

typedef struct cli_sess {
  kite_conn *conn;
  bool up, down, bye, bye_first;
  int reason, version;
  uint32_t sent, echoed;
  int errors;
} cli_sess;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  cli_sess *s = kite_conn_user(c);
  kite_conn_stats st;
  kite_conn_get_stats(c, &st);
  s->version = st.version;
  s->up = true;
}

static void c_msg(kite_conn *c, uint16_t id, const uint8_t *b, size_t n, void *u) {
  (void)u;
  cli_sess *s = kite_conn_user(c);
  if (id == MSG_BYE) {
    s->bye = true;
    return;
  }
  uint32_t seq;
  if (id != MSG_ECHO || n != 64 || (memcpy(&seq, b, 4), seq != s->echoed))
    s->errors++;
  s->echoed++;
}

static void c_down(kite_conn *c, int reason, void *u) {
  (void)u;
  cli_sess *s = kite_conn_user(c);
  s->reason = reason;
  s->bye_first = s->bye;
  s->down = true;
}

static kite_client *new_client(void) {
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.on_message = c_msg;
  cc.on_disconnect = c_down;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  return cli;
}

static void send_echoes(cli_sess *s, int n) {
  uint8_t body[64] = {0};
  for (int i = 0; i < n; i++, s->sent++) {
    memcpy(body, &s->sent, 4);
    assert_int_equal(kite_conn_send(s->conn, MSG_ECHO, body, sizeof(body)), 0);
  }
}

static void *stop_thread(void *srv) {
  kite_server_stop(srv);
  return NULL;
}

static void run(kite_worker_mode mode, bool tcp) {
  srv_reset();
  kite_server_config cfg;
  e2e_server_config(&cfg, mode);
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d",
           tcp ? kite_server_tcp_port(srv) : kite_server_udp_port(srv));
  kite_client *cli = new_client();
  cli_sess cs[3];
  memset(cs, 0, sizeof(cs));
  for (int i = 0; i < 3; i++) {
    uint8_t tok[KITE_TOKEN_BYTES];
    assert_int_equal(e2e_mint(tok, e2e_key, addr, 100 + i, 0), 0);
    int rc = tcp ? kite_client_connect_token_tcp(cli, tok, &cs[i], &cs[i].conn)
                 : kite_client_connect_token(cli, tok, &cs[i], &cs[i].conn);
    assert_int_equal(rc, 0);
  }
  assert_true(POLL_UNTIL(cli, cs[0].up && cs[1].up && cs[2].up, 10000));
  for (int i = 0; i < 3; i++) {
    assert_int_equal(cs[i].version, 2);
    send_echoes(&cs[i], ECHOES);
  }
  assert_true(POLL_UNTIL(cli, cs[0].echoed == ECHOES && cs[1].echoed == ECHOES &&
                                  cs[2].echoed == ECHOES, 10000));
  /* What on_connect saw, on whichever executor the mode gives it. */
  assert_true(WAIT_FOR(atomic_load(&srv_connects) == 3, 2000));
  for (int i = 0; i < 3; i++) {
    assert_int_equal(cs[i].errors, 0);
    int k = srv_find(100 + i);
    assert_true(k >= 0);
    assert_int_equal(srv_recs[k].version, 2);
    assert_int_equal(srv_recs[k].transport, tcp ? KITE_TRANSPORT_TCP : KITE_TRANSPORT_KCP);
    char want[32];
    snprintf(want, sizeof(want), "player=%d", 100 + i);
    assert_string_equal(srv_recs[k].user, want);
  }

  /* The kick: its reply arrives before the close, reason kicked. */
  assert_int_equal(kite_conn_send(cs[0].conn, MSG_KICK, NULL, 0), 0);
  assert_true(POLL_UNTIL(cli, cs[0].down, 10000));
  assert_true(cs[0].bye_first);
  assert_int_equal(cs[0].reason, KITE_CLOSE_KICKED);
  int k0 = srv_find(100);
  assert_true(WAIT_FOR(atomic_load(&srv_recs[k0].reason) >= 0, 5000));
  assert_int_equal(atomic_load(&srv_recs[k0].reason), KITE_CLOSE_KICKED);

  /* The client's close: reason normal at the server. */
  assert_int_equal(kite_conn_close(cs[1].conn), 0);
  assert_true(POLL_UNTIL(cli, cs[1].down, 5000));
  assert_int_equal(cs[1].reason, KITE_CLOSE_NORMAL);
  int k1 = srv_find(101);
  assert_true(WAIT_FOR(atomic_load(&srv_recs[k1].reason) >= 0, 5000));
  assert_int_equal(atomic_load(&srv_recs[k1].reason), KITE_CLOSE_NORMAL);

  /* The server's stop: reason shutdown at the client, which polls (and
   * acknowledges) while the stop runs on another thread. */
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stop_thread, srv), 0);
  bool down = POLL_UNTIL(cli, cs[2].down, 10000);
  pthread_join(t, NULL);
  assert_true(down);
  assert_int_equal(cs[2].reason, KITE_CLOSE_SHUTDOWN);
  int k2 = srv_find(102);
  assert_int_equal(atomic_load(&srv_recs[k2].reason), KITE_CLOSE_SHUTDOWN);
  assert_int_equal(atomic_load(&srv_disconnects), 3);
  assert_int_equal(atomic_load(&srv_errors), 0);
  kite_server_stats st = e2e_stats(srv);
  assert_int_equal(st.sessions_opened, 3);
  assert_int_equal(st.closed_kicked, 1);
  assert_int_equal(st.closed_normal, 1);
  assert_int_equal(st.closed_shutdown, 1);
  if (tcp)
    assert_int_equal(st.v2_tcp_opened, 3);
  else
    assert_int_equal(st.v2_accept, 3);
  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

static void kcp_inline(void **s) { (void)s; run(KITE_WORKERS_INLINE, false); }
static void kcp_hash(void **s) { (void)s; run(KITE_WORKERS_HASH, false); }
static void kcp_bind(void **s) { (void)s; run(KITE_WORKERS_BIND, false); }
static void kcp_dynamic(void **s) { (void)s; run(KITE_WORKERS_DYNAMIC, false); }
static void tcp_inline(void **s) { (void)s; run(KITE_WORKERS_INLINE, true); }
static void tcp_hash(void **s) { (void)s; run(KITE_WORKERS_HASH, true); }
static void tcp_bind(void **s) { (void)s; run(KITE_WORKERS_BIND, true); }
static void tcp_dynamic(void **s) { (void)s; run(KITE_WORKERS_DYNAMIC, true); }

/* One token connect; returns its on_disconnect reason (it never opens). */
static int refused(kite_client *cli, const uint8_t tok[KITE_TOKEN_BYTES], bool tcp) {
  cli_sess s = {0};
  int rc = tcp ? kite_client_connect_token_tcp(cli, tok, &s, &s.conn)
               : kite_client_connect_token(cli, tok, &s, &s.conn);
  assert_int_equal(rc, 0);
  assert_true(POLL_UNTIL(cli, s.down, 10000));
  assert_false(s.up);
  return s.reason;
}

static atomic_bool relay_stop;
static void *relay_thread(void *r) {
  chaos_relay_run(r, &relay_stop);
  return NULL;
}

static void refusals(bool tcp) {
  srv_reset();
  kite_server_config cfg;
  e2e_server_config(&cfg, KITE_WORKERS_INLINE);
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d",
           tcp ? kite_server_tcp_port(srv) : kite_server_udp_port(srv));
  kite_client *cli = new_client();
  uint8_t tok[KITE_TOKEN_BYTES];

  /* Minted 600 s ago with 30 s to live. */
  assert_int_equal(e2e_mint(tok, e2e_key, addr, 1, 600), 0);
  assert_int_equal(refused(cli, tok, tcp), KITE_CONNECT_REJECTED_EXPIRED);
  /* Sealed under another key. */
  uint8_t other[KITE_TOKEN_KEY_BYTES];
  memcpy(other, e2e_key, sizeof(other));
  other[31] ^= 1;
  assert_int_equal(e2e_mint(tok, other, addr, 2, 0), 0);
  assert_int_equal(refused(cli, tok, tcp), KITE_CONNECT_REJECTED_INVALID);

  /* Used already: over UDP the same client (address and port) tries it
   * again while its session is open, another nonce: REJECT 8. Over TCP a
   * second connection has another port: the server closes it unanswered
   * (step 7), which the client sees as a connection that failed. */
  assert_int_equal(e2e_mint(tok, e2e_key, addr, 3, 0), 0);
  cli_sess first = {0};
  assert_int_equal(tcp ? kite_client_connect_token_tcp(cli, tok, &first, &first.conn)
                       : kite_client_connect_token(cli, tok, &first, &first.conn), 0);
  assert_true(POLL_UNTIL(cli, first.up, 10000));
  assert_int_equal(refused(cli, tok, tcp),
                   tcp ? KITE_CONNECT_FAILED : KITE_CONNECT_REJECTED_USED);
  assert_false(first.down); /* the first session is untouched */
  send_echoes(&first, 3);
  assert_true(POLL_UNTIL(cli, first.echoed == 3, 5000));
  assert_int_equal(first.errors, 0);

  kite_server_stats st;
  if (!tcp) {
    /* Not listed: the token names a relay's address, which the server
     * does not know as its own (no public_addr), and the client reaches it
     * through that relay. */
    chaos_config rc;
    chaos_config_init(&rc);
    rc.listen_addr = "127.0.0.1:0";
    rc.server_addr = addr;
    char err[128];
    chaos_relay *r = chaos_relay_create(&rc, err, sizeof(err));
    assert_non_null(r);
    atomic_store(&relay_stop, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, relay_thread, r), 0);
    char via[64];
    snprintf(via, sizeof(via), "127.0.0.1:%d", chaos_relay_port(r));
    assert_int_equal(e2e_mint(tok, e2e_key, via, 4, 0), 0);
    int reason = refused(cli, tok, false);
    atomic_store(&relay_stop, true);
    pthread_join(t, NULL);
    chaos_relay_destroy(r);
    assert_int_equal(reason, KITE_CONNECT_REJECTED_NOT_LISTED);
    EVENTUALLY_STATS(srv, st, st.v2_reject_not_here == 1, 2000);
    assert_int_equal(st.v2_reject_expired, 1);
    assert_int_equal(st.v2_reject_invalid, 1);
    assert_int_equal(st.v2_reject_used, 1);
  } else {
    EVENTUALLY_STATS(srv, st, st.v2_tcp_ignored_bound == 1, 2000);
    assert_int_equal(st.v2_tcp_reject_expired, 1);
    assert_int_equal(st.v2_tcp_reject_token, 1);
  }
  assert_int_equal(st.sessions_opened, 1);
  kite_conn_close(first.conn);
  assert_true(POLL_UNTIL(cli, first.down, 5000));
  kite_client_destroy(cli);
  kite_server_destroy(srv);
  assert_int_equal(atomic_load(&srv_errors), 0);
}

static void refusals_kcp(void **s) { (void)s; refusals(false); }
static void refusals_tcp(void **s) { (void)s; refusals(true); }

/* kite's own v1 client (KCP and TCP) beside v2 sessions on one port, all
 * at once; each side sees its own version. (A stock kcp-go client beside
 * v2: run_kcpgo_v2_e2e.sh.) */
static void v1_beside_v2(void **state) {
  (void)state;
  srv_reset();
  kite_server_config cfg;
  e2e_server_config(&cfg, KITE_WORKERS_HASH);
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  assert_int_equal(kite_server_tcp_port(srv), kite_server_udp_port(srv));
  kite_client *cli = new_client();
  cli_sess cs[4];
  memset(cs, 0, sizeof(cs));
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(kite_client_connect(cli, addr, &cs[0], &cs[0].conn), 0);
  assert_int_equal(kite_client_connect_tcp(cli, addr, &cs[1], &cs[1].conn), 0);
  assert_int_equal(e2e_mint(tok, e2e_key, addr, 7, 0), 0);
  assert_int_equal(kite_client_connect_token(cli, tok, &cs[2], &cs[2].conn), 0);
  assert_int_equal(e2e_mint(tok, e2e_key, addr, 8, 0), 0);
  assert_int_equal(kite_client_connect_token_tcp(cli, tok, &cs[3], &cs[3].conn), 0);
  assert_true(POLL_UNTIL(cli, cs[0].up && cs[1].up && cs[2].up && cs[3].up, 10000));
  for (int i = 0; i < 4; i++) {
    assert_int_equal(cs[i].version, i < 2 ? 1 : 2);
    send_echoes(&cs[i], ECHOES);
  }
  assert_true(POLL_UNTIL(cli, cs[0].echoed == ECHOES && cs[1].echoed == ECHOES &&
                                  cs[2].echoed == ECHOES && cs[3].echoed == ECHOES,
                         10000));
  assert_true(WAIT_FOR(atomic_load(&srv_connects) == 4, 2000));
  int v1 = 0, v2 = 0;
  for (int i = 0; i < 4; i++) {
    assert_int_equal(cs[i].errors, 0);
    assert_true(atomic_load(&srv_recs[i].ready));
    if (srv_recs[i].version == 1 && srv_recs[i].client_id == 0)
      v1++;
    if (srv_recs[i].version == 2 && srv_recs[i].client_id >= 7)
      v2++;
  }
  assert_int_equal(v1, 2);
  assert_int_equal(v2, 2);
  for (int i = 0; i < 4; i++)
    kite_conn_close(cs[i].conn);
  assert_true(POLL_UNTIL(cli, cs[0].down && cs[1].down && cs[2].down && cs[3].down, 5000));
  assert_true(WAIT_FOR(atomic_load(&srv_disconnects) == 4, 5000));
  kite_client_destroy(cli);
  kite_server_destroy(srv);
  assert_int_equal(atomic_load(&srv_errors), 0);
}

/* The token's user_data as on_connect reads it, whatever its length: the
 * full 256 bytes, bytes with zeros inside, none; over KCP and TCP (the
 * server keeps only up to the last nonzero byte and pads it again). */
static void user_data_whole(void **state) {
  (void)state;
  srv_reset();
  kite_server_config cfg;
  e2e_server_config(&cfg, KITE_WORKERS_INLINE);
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  kite_client *cli = new_client();
  static uint8_t want[3][KITE_TOKEN_USER_DATA_MAX];
  memset(want, 0, sizeof(want));
  for (int i = 0; i < KITE_TOKEN_USER_DATA_MAX; i++)
    want[0][i] = (uint8_t)(0xA5 ^ i) | 1; /* 256 bytes, none zero */
  memcpy(want[1], "a\0\0b", 4);         /* zeros inside */
  size_t lens[3] = {KITE_TOKEN_USER_DATA_MAX, 4, 0};
  cli_sess cs[6];
  memset(cs, 0, sizeof(cs));
  const char *addrs[] = {addr};
  for (int i = 0; i < 6; i++) {
    kite_token_params p = {.protocol_id = E2E_PROTOCOL_ID, .client_id = 500 + i,
                           .ttl_s = 30, .addrs = addrs, .naddrs = 1,
                           .user_data = want[i % 3], .user_data_len = lens[i % 3]};
    uint8_t tok[KITE_TOKEN_BYTES];
    assert_int_equal(kite_token_mint(tok, e2e_key, &p), 0);
    assert_int_equal(i < 3 ? kite_client_connect_token(cli, tok, &cs[i], &cs[i].conn)
                           : kite_client_connect_token_tcp(cli, tok, &cs[i], &cs[i].conn),
                     0);
  }
  bool up = POLL_UNTIL(cli, cs[0].up && cs[1].up && cs[2].up && cs[3].up && cs[4].up &&
                                cs[5].up, 10000);
  assert_true(up);
  for (int i = 0; i < 6; i++)
    send_echoes(&cs[i], 1); /* a v2 TCP session opens at its first record */
  assert_true(WAIT_FOR(atomic_load(&srv_connects) == 6, 5000));
  for (int i = 0; i < 6; i++) {
    int k = srv_find(500 + i);
    assert_true(k >= 0);
    assert_memory_equal(srv_recs[k].user, want[i % 3], KITE_TOKEN_USER_DATA_MAX);
    kite_session_info in;
    assert_int_equal(kite_session_get_info(srv, srv_recs[k].id, &in), 0);
    assert_memory_equal(in.user_data, want[i % 3], KITE_TOKEN_USER_DATA_MAX);
  }
  kite_client_destroy(cli);
  kite_server_destroy(srv);
  assert_int_equal(atomic_load(&srv_errors), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(kcp_inline),   cmocka_unit_test(kcp_hash),
      cmocka_unit_test(kcp_bind),     cmocka_unit_test(kcp_dynamic),
      cmocka_unit_test(tcp_inline),   cmocka_unit_test(tcp_hash),
      cmocka_unit_test(tcp_bind),     cmocka_unit_test(tcp_dynamic),
      cmocka_unit_test(refusals_kcp), cmocka_unit_test(refusals_tcp),
      cmocka_unit_test(v1_beside_v2),
      cmocka_unit_test(user_data_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
