/*
 * A flood from one source while a player logs in with version 2: from
 * 127.0.0.2, CONNECT v2 with a good cookie and a token that does not open
 * (one flipped bit: REJECT 6 each time), CONNECT v2 with made-up cookies
 * (REJECT 4), v1 CONNECTs with made-up cookies, and datagrams of random
 * bytes and sizes, without pause; meanwhile kite's client on 127.0.0.1
 * connects with a token, gets in and echoes in order. Every refusal is
 * counted, and the flooder is sent less than it sent. The server keeps
 * its default per-source limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "v2_e2e.h"
#include "v2_raw.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct flood {
  int fd;
  kite__addr to;
  uint8_t bad_token[KITE__V2CTL_MAX]; /* CONNECT v2, cookie good, token not */
  size_t bad_token_len;
  atomic_bool stop;
  /* Written by the flood thread, read by the test thread after the join. */
  uint64_t sent, sent_bytes, replies, reply_bytes;
} flood;

static void flood_send(flood *f, const uint8_t *b, size_t n) {
  if (sendto(f->fd, b, n, MSG_DONTWAIT, &f->to.sa, kite__addr_len(&f->to)) == (ssize_t)n) {
    f->sent++;
    f->sent_bytes += n;
  }
}

/* Bursts of four, then a pause of 200 us: a flood the kernel's buffers
 * take on a loaded machine (a flood that overflows them is another test:
 * the overload refusal, test_overload.c). */
static void *flood_main(void *arg) {
  flood *f = arg;
  uint8_t b[1400];
  uint32_t seed = 12345;
  while (!atomic_load(&f->stop)) {
    flood_send(f, f->bad_token, f->bad_token_len);
    /* CONNECT v2 under a made-up cookie and nonce. */
    memcpy(b, f->bad_token, f->bad_token_len);
    for (int i = 8; i < 32; i++)
      b[i] = (uint8_t)(seed = seed * 1103515245 + 12345) >> 16;
    flood_send(f, b, f->bad_token_len);
    /* A v1 CONNECT (same layout up to the cookie), version 1. */
    b[5] = 1;
    flood_send(f, b, 64);
    /* Random bytes, random size. */
    size_t n = 1 + (seed = seed * 1103515245 + 12345) % sizeof(b);
    for (size_t i = 0; i < n; i++)
      b[i] = (uint8_t)((seed = seed * 1103515245 + 12345) >> 16);
    flood_send(f, b, n);
    ssize_t r;
    while ((r = recv(f->fd, b, sizeof(b), MSG_DONTWAIT)) >= 0) {
      f->replies++;
      f->reply_bytes += (uint64_t)r;
    }
    usleep(200);
  }
  return NULL;
}

typedef struct cli_sess {
  kite_conn *conn;
  bool up, down;
  uint32_t echoed;
  int errors;
} cli_sess;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((cli_sess *)kite_conn_user(c))->up = true;
}
static void c_msg(kite_conn *c, uint16_t id, const uint8_t *b, size_t n, void *u) {
  (void)u;
  cli_sess *s = kite_conn_user(c);
  uint32_t seq;
  if (id != MSG_ECHO || n != 64 || (memcpy(&seq, b, 4), seq != s->echoed))
    s->errors++;
  s->echoed++;
}
static void c_down(kite_conn *c, int reason, void *u) {
  (void)u, (void)reason;
  ((cli_sess *)kite_conn_user(c))->down = true;
}

static void a_v2_login_gets_through_a_flood(void **state) {
  (void)state;
  srv_reset();
  kite_server_config cfg;
  e2e_server_config(&cfg, KITE_WORKERS_INLINE);
  kite_server_config defaults;
  kite_server_config_init(&defaults); /* the per-source limits, as shipped */
  cfg.max_sessions_per_addr = defaults.max_sessions_per_addr;
  cfg.max_sessions_per_prefix = defaults.max_sessions_per_prefix;
  cfg.max_halfopen_per_addr = defaults.max_halfopen_per_addr;
  cfg.max_halfopen_per_prefix = defaults.max_halfopen_per_prefix;
  cfg.tcp_addr = NULL;
  cfg.log_level = KITE_LOG_ERROR; /* a refusal's warning per datagram otherwise */
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));

  /* The flooder's one real step, on the test thread: a cookie. */
  static flood f;
  memset(&f, 0, sizeof(f));
  f.fd = v2_socket_on("127.0.0.2");
  f.to = v2_server_addr(srv);
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(e2e_mint(tok, e2e_key, addr, 666, 0), 0);
  v2peer p;
  v2_init(&p, f.fd, &f.to, tok);
  uint8_t cookie[16];
  v2_hello(&p, cookie);
  f.bad_token_len = (size_t)v2_connect_bytes(&p, cookie, f.bad_token);
  f.bad_token[68 + 100] ^= 0x20; /* inside sealed_private */
  v2_close(&p);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, flood_main, &f), 0);
  kite_server_stats st;
  EVENTUALLY_STATS(srv, st, st.v2_reject_invalid >= 500, 10000);

  /* The player logs in under the flood. */
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.on_message = c_msg;
  cc.on_disconnect = c_down;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  assert_int_equal(e2e_mint(tok, e2e_key, addr, 1, 0), 0);
  cli_sess s = {0};
  assert_int_equal(kite_client_connect_token(cli, tok, &s, &s.conn), 0);
  bool up = POLL_UNTIL(cli, s.up || s.down, 10000);
  uint8_t body[64] = {0};
  for (uint32_t i = 0; up && s.up && i < 50; i++) {
    memcpy(body, &i, 4);
    assert_int_equal(kite_conn_send(s.conn, MSG_ECHO, body, sizeof(body)), 0);
  }
  bool echoed = POLL_UNTIL(cli, s.echoed == 50 || s.down, 10000);
  atomic_store(&f.stop, true);
  pthread_join(t, NULL);
  assert_true(up && s.up);
  assert_true(echoed);
  assert_false(s.down);
  assert_int_equal(s.echoed, 50);
  assert_int_equal(s.errors, 0);

  st = e2e_stats(srv);
  print_message("flood: %llu datagrams (%llu bytes) sent, %llu (%llu bytes) answered; "
                "server: v2_reject_invalid %llu, reject_cookie %llu, drop_control %llu, "
                "v2_drop_control %llu, drop_short %llu, drop_unknown_conv %llu, "
                "v2_drop_size %llu, rx_overflows %llu\n",
                (unsigned long long)f.sent, (unsigned long long)f.sent_bytes,
                (unsigned long long)f.replies, (unsigned long long)f.reply_bytes,
                (unsigned long long)st.v2_reject_invalid,
                (unsigned long long)st.reject_cookie,
                (unsigned long long)st.drop_control,
                (unsigned long long)st.v2_drop_control,
                (unsigned long long)st.drop_short,
                (unsigned long long)st.drop_unknown_conv,
                (unsigned long long)st.v2_drop_size,
                (unsigned long long)st.rx_overflows);
  assert_true(st.v2_reject_invalid >= 500 && f.sent >= st.v2_reject_invalid);
  assert_true(st.reject_cookie > 0);
  uint64_t dropped = st.drop_short + st.drop_control + st.v2_drop_control +
                     st.drop_unknown_conv + st.v2_drop_size;
  assert_true(dropped > 0);
  assert_true(f.reply_bytes < f.sent_bytes / 10); /* no amplification */
  assert_int_equal(st.sessions_opened, 1);
  assert_int_equal(atomic_load(&srv_connects), 1);
  assert_int_equal(srv_recs[0].client_id, 1);
  close(f.fd);
  kite_conn_close(s.conn);
  POLL_UNTIL(cli, s.down, 3000);
  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_v2_login_gets_through_a_flood),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
