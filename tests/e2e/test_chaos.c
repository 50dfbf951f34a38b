/*
 * kite through kite-chaos's relay: 5% loss each way, duplicates,
 * reordering, delay with jitter, and a 150 ms blackout every 1.5 s (the
 * run is paced to last longer than that). Every
 * frame of every session must come back once, intact and in order; the
 * relay's counters prove the chaos really happened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "base/clock.h"
#include "relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#define SESSIONS 20
#define FRAMES 150
#define BODY 300

static void on_echo(const kite_request *r) { kite_reply(r, r->msg_id, r->body, r->len); }

typedef struct cli_session {
  kite_conn *conn;
  uint32_t sent, echoed;
  int errors;
  bool up;
  uint64_t next_us; /* paced: the run outlasts a blackout period */
} cli_session;

static void c_up(kite_conn *c, void *u) {
  (void)u;
  ((cli_session *)kite_conn_user(c))->up = true;
}

static void c_msg(kite_conn *c, uint16_t id, const uint8_t *b, size_t n, void *u) {
  (void)u; (void)id;
  cli_session *s = kite_conn_user(c);
  uint32_t seq;
  memcpy(&seq, b, 4);
  bool intact = n == BODY;
  for (size_t i = 4; i < n && intact; i++)
    intact = b[i] == (uint8_t)(seq * 31 + i);
  if (!intact || seq != s->echoed)
    s->errors++;
  s->echoed = seq + 1;
}

static atomic_bool stop_relay;

static void *relay_main(void *r) {
  chaos_relay_run(r, &stop_relay);
  return NULL;
}

static void every_frame_in_order_through_chaos(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  kite_server_route(srv, 1, on_echo, NULL);
  assert_int_equal(kite_server_start(srv), 0);

  char server[64], relay_addr[64];
  snprintf(server, sizeof(server), "127.0.0.1:%d", kite_server_udp_port(srv));
  chaos_config cc;
  chaos_config_init(&cc);
  cc.listen_addr = "127.0.0.1:0";
  cc.server_addr = server;
  cc.seed = 2026;
  chaos_profile p = {.loss = 0.05, .dup = 0.02, .reorder = 0.05, .reorder_ms = 30,
                     .delay_ms = 5, .jitter_ms = 10,
                     .blackout_every_ms = 1500, .blackout_ms = 150};
  cc.up = cc.down = p;
  char err[256];
  chaos_relay *relay = chaos_relay_create(&cc, err, sizeof(err));
  assert_non_null(relay);
  snprintf(relay_addr, sizeof(relay_addr), "127.0.0.1:%d", chaos_relay_port(relay));
  atomic_store(&stop_relay, false);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, relay_main, relay), 0);

  kite_client_config ccfg;
  kite_client_config_init(&ccfg);
  ccfg.on_connect = c_up;
  ccfg.on_message = c_msg;
  ccfg.log_level = KITE_LOG_ERROR;
  ccfg.retries = 30; /* a handshake may meet the blackout */
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &ccfg), 0);
  static cli_session cs[SESSIONS];
  for (int i = 0; i < SESSIONS; i++)
    assert_int_equal(kite_client_connect(cli, relay_addr, &cs[i], &cs[i].conn), 0);

  uint8_t body[BODY];
  uint64_t end = kite__now_us() + 120000000;
  int done = 0;
  while (done < SESSIONS && kite__now_us() < end) {
    kite_client_poll(cli, 5);
    done = 0;
    for (int i = 0; i < SESSIONS; i++) {
      cli_session *s = &cs[i];
      uint64_t now = kite__now_us();
      if (s->up && s->sent < FRAMES && s->sent - s->echoed < 16 && now >= s->next_us) {
        s->next_us = now + 15000; /* 150 frames: over 2 s */
        memcpy(body, &s->sent, 4);
        for (size_t k = 4; k < BODY; k++)
          body[k] = (uint8_t)(s->sent * 31 + k);
        if (kite_conn_send(s->conn, 1, body, BODY) == 0)
          s->sent++;
      }
      done += s->echoed == FRAMES;
    }
  }
  for (int i = 0; i < SESSIONS; i++) {
    assert_true(cs[i].up);
    assert_int_equal(cs[i].errors, 0);
    assert_int_equal(cs[i].echoed, FRAMES);
  }
  kite_client_destroy(cli);
  atomic_store(&stop_relay, true);
  pthread_join(t, NULL);
  chaos_stats st;
  chaos_relay_stats(relay, &st);
  /* The chaos was real: drops, copies, held-back datagrams, a blackout. */
  assert_true(st.dropped > 50);
  assert_true(st.duplicated > 20);
  assert_true(st.reordered > 50);
  assert_true(st.blacked_out > 0);
  assert_true(st.up_out > 0 && st.down_out > 0);
  assert_int_equal(st.flows_refused, 0);
  chaos_relay_destroy(relay);
  kite_server_stop(srv);
  kite_server_destroy(srv);
}

static int udp_to(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

/* The relay's own bounds: flows and datagrams held are counted refusals. */
static void relay_bounds(void **state) {
  (void)state;
  int sink = socket(AF_INET, SOCK_DGRAM, 0); /* a server that never answers */
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(sink, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t alen = sizeof(a);
  getsockname(sink, (struct sockaddr *)&a, &alen);
  char server[64];
  snprintf(server, sizeof(server), "127.0.0.1:%d", ntohs(a.sin_port));
  chaos_config cc;
  chaos_config_init(&cc);
  cc.listen_addr = "127.0.0.1:0";
  cc.server_addr = server;
  cc.max_flows = 1;
  cc.max_queued = 100;
  cc.max_queued_bytes = 10 * 100; /* the byte bound bites first: 10 held */
  cc.up.delay_ms = 60000; /* everything waits */
  char err[256];
  chaos_relay *relay = chaos_relay_create(&cc, err, sizeof(err));
  assert_non_null(relay);
  int one = udp_to(chaos_relay_port(relay)), two = udp_to(chaos_relay_port(relay));
  char d[100] = {0};
  for (int i = 0; i < 25; i++)
    assert_int_equal(send(one, d, sizeof(d), 0), (ssize_t)sizeof(d));
  assert_int_equal(send(two, d, sizeof(d), 0), (ssize_t)sizeof(d));
  /* The relay runs in turns until it has read all 26 (within a bound);
   * its counters are read between turns, with its thread joined. */
  chaos_stats st = {0};
  for (int turn = 0; turn < 100 && st.up_in < 26; turn++) {
    atomic_store(&stop_relay, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, relay_main, relay), 0);
    usleep(50000);
    atomic_store(&stop_relay, true);
    pthread_join(t, NULL);
    chaos_relay_stats(relay, &st);
  }
  assert_int_equal(st.up_in, 26);
  assert_int_equal(st.queue_full, 15);   /* 10 held, the rest refused */
  assert_int_equal(st.flows_refused, 1); /* the second address */
  assert_int_equal(st.up_out, 0);
  chaos_relay_destroy(relay); /* frees what is held (ASan: no leak) */
  close(one);
  close(two);
  close(sink);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_frame_in_order_through_chaos),
      cmocka_unit_test(relay_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
