/*
 * The C client library against the server, over UDP on loopback: connect,
 * echo, ping, close, idle timeout, a lost ACCEPT, reconnect, and thousands
 * of sessions opened and closed across shards with every callback, on both
 * sides, exactly once and in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/client.h"
#include "kite/kite.h"

#include "base/clock.h"
#include "e2e_poll.h"
#include "net/addr.h"
#include "proto/control.h"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- server side: every session's callbacks, checked under a lock ---- */

enum { SEEN_NONE, SEEN_CONNECT, SEEN_DISCONNECT };

#define TRACK_MAX 8192
typedef struct track {
  kite_session_id id;
  int state, messages, reason;
} track;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static track tracked[TRACK_MAX];
static int ntracked, server_errors;
static atomic_int server_connects, server_disconnects;

static track *find(kite_session_id id, bool add) {
  for (int i = 0; i < ntracked; i++)
    if (tracked[i].id == id)
      return &tracked[i];
  if (!add || ntracked == TRACK_MAX)
    return NULL;
  tracked[ntracked] = (track){.id = id};
  return &tracked[ntracked++];
}

static void srv_connect(kite_server *s, kite_session_id id, void *u) {
  (void)u;
  /* The session's own pointer, read back in every later callback. */
  if (kite_session_set_user(s, id, (void *)(uintptr_t)(id ^ 0x5A5A)) != 0)
    server_errors++;
  pthread_mutex_lock(&lock);
  track *t = find(id, true);
  if (!t || t->state != SEEN_NONE)
    server_errors++; /* a second on_connect, or an id reused */
  else
    t->state = SEEN_CONNECT;
  pthread_mutex_unlock(&lock);
  atomic_fetch_add(&server_connects, 1);
}

static void srv_message(kite_server *s, kite_session_id id, uint16_t msg_id,
                        const uint8_t *body, size_t len, void *u) {
  (void)u;
  kite_session_info ss;
  if (kite_session_user(s, id) != (void *)(uintptr_t)(id ^ 0x5A5A) ||
      kite_session_get_info(s, id, &ss) != 0 || ss.frames_in == 0 ||
      ss.transport != KITE_TRANSPORT_KCP || ss.version != 1 ||
      (strncmp(ss.peer, "127.0.0.1:", 10) != 0 && strncmp(ss.peer, "[::1]:", 6) != 0))
    server_errors++;
  pthread_mutex_lock(&lock);
  track *t = find(id, false);
  if (!t || t->state != SEEN_CONNECT)
    server_errors++; /* a message outside connect..disconnect */
  else
    t->messages++;
  pthread_mutex_unlock(&lock);
  kite_session_send(s, id, msg_id, body, len);
}

static void srv_disconnect(kite_server *s, kite_session_id id, int reason, void *u) {
  (void)s; (void)u;
  pthread_mutex_lock(&lock);
  track *t = find(id, false);
  if (!t || t->state != SEEN_CONNECT)
    server_errors++;
  else {
    t->state = SEEN_DISCONNECT;
    t->reason = reason;
  }
  pthread_mutex_unlock(&lock);
  atomic_fetch_add(&server_disconnects, 1);
}

static kite_server *start_server_on(const char *where, uint32_t idle_ms,
                                    char *addr, size_t cap) {
  ntracked = server_errors = 0;
  atomic_store(&server_connects, 0);
  atomic_store(&server_disconnects, 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = where;
  cfg.threads = 2;
  cfg.idle_timeout_ms = idle_ms;
  cfg.log_level = KITE_LOG_WARN;
  cfg.on_connect = srv_connect;
  cfg.on_message = srv_message;
  cfg.on_disconnect = srv_disconnect;
  /* Thousands of sessions from 127.0.0.1: no per-source limits. */
  cfg.max_sessions_per_addr = cfg.max_sessions_per_prefix = 0;
  cfg.max_halfopen_per_addr = cfg.max_halfopen_per_prefix = 0;
  kite_server *srv;
  if (kite_server_create(&srv, &cfg) != 0)
    return NULL;
  assert_int_equal(kite_server_start(srv), 0);
  if (strchr(where, '['))
    snprintf(addr, cap, "[::1]:%d", kite_server_udp_port(srv));
  else
    snprintf(addr, cap, "127.0.0.1:%d", kite_server_udp_port(srv));
  return srv;
}

static kite_server *start_server(uint32_t idle_ms, char *addr, size_t cap) {
  kite_server *srv = start_server_on("127.0.0.1:0", idle_ms, addr, cap);
  assert_non_null(srv);
  return srv;
}

/* ---- client side ---- */

typedef struct conn_state {
  int connects, disconnects, reason, echoes, order_errors;
  uint32_t next_echo;
  kite_conn *conn;
} conn_state;

static void cli_connect(kite_conn *c, void *u) {
  (void)u;
  conn_state *st = kite_conn_user(c);
  st->connects++;
}

static void cli_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                        size_t len, void *u) {
  (void)u;
  conn_state *st = kite_conn_user(c);
  uint32_t seq;
  if (len < 4 || msg_id != 7) {
    st->order_errors++;
    return;
  }
  memcpy(&seq, body, 4);
  if (seq != st->next_echo)
    st->order_errors++;
  st->next_echo = seq + 1;
  st->echoes++;
}

static void cli_disconnect(kite_conn *c, int reason, void *u) {
  (void)u;
  conn_state *st = kite_conn_user(c);
  st->disconnects++;
  st->reason = reason;
  st->conn = NULL;
}

static kite_client *new_client(uint32_t ping_ms) {
  kite_client_config cfg;
  kite_client_config_init(&cfg);
  cfg.on_connect = cli_connect;
  cfg.on_message = cli_message;
  cfg.on_disconnect = cli_disconnect;
  cfg.log_level = KITE_LOG_WARN;
  cfg.crc = true;
  if (ping_ms)
    cfg.ping_ms = ping_ms;
  kite_client *c;
  assert_int_equal(kite_client_create(&c, &cfg), 0);
  return c;
}

static void send_seq(kite_conn *conn, uint32_t seq, size_t len) {
  static uint8_t body[70000];
  memcpy(body, &seq, 4);
  for (size_t i = 4; i < len; i++)
    body[i] = (uint8_t)(seq + i);
  assert_int_equal(kite_conn_send(conn, 7, body, len), 0);
}

static void connect_echo_ping_close(void **state) {
  (void)state;
  char addr[64];
  kite_server *srv = start_server(10000, addr, sizeof(addr));
  kite_client *cli = new_client(0);
  conn_state st = {0};
  assert_int_equal(kite_client_connect(cli, addr, &st, &st.conn), 0);
  assert_true(POLL_UNTIL(cli, st.connects == 1, 2000));
  assert_true(POLL_UNTIL(cli, atomic_load(&server_connects) == 1, 2000));
  size_t sizes[] = {4, 64, 1400, 5000, 65536};
  for (uint32_t i = 0; i < 50; i++)
    send_seq(st.conn, i, sizes[i % 5]);
  assert_true(POLL_UNTIL(cli, st.echoes == 50, 5000));
  assert_int_equal(st.order_errors, 0);
  assert_int_equal(kite_conn_ping(st.conn), 0);
  kite_conn_stats cs;
  assert_true(POLL_UNTIL(cli, (kite_conn_get_stats(st.conn, &cs), cs.last_rtt_ms > 0 || cs.frames_in == 50), 2000));
  assert_int_equal(kite_conn_close(st.conn), 0);
  assert_true(POLL_UNTIL(cli, st.disconnects == 1, 2000));
  assert_int_equal(st.reason, KITE_CLOSE_NORMAL);
  assert_true(POLL_UNTIL(cli, atomic_load(&server_disconnects) == 1, 2000));
  assert_int_equal(tracked[0].reason, KITE_CLOSE_NORMAL);
  assert_int_equal(tracked[0].messages, 50);
  kite_server_stats ss;
  kite_server_stats_get(srv, &ss);
  assert_true(ss.pings >= 2); /* the opening ping and ours */
  /* User data belongs to the shard thread: from here, refused. */
  assert_null(kite_session_user(srv, tracked[0].id));
  assert_int_equal(kite_session_set_user(srv, tracked[0].id, NULL), KITE_ENOTFOUND);
  assert_int_equal(server_errors, 0);
  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

static void server_idle_timeout_reaches_both_sides(void **state) {
  (void)state;
  char addr[64];
  kite_server *srv = start_server(400, addr, sizeof(addr));
  kite_client *cli = new_client(60000); /* never pings in time */
  conn_state st = {0};
  assert_int_equal(kite_client_connect(cli, addr, &st, &st.conn), 0);
  assert_true(POLL_UNTIL(cli, st.connects == 1, 2000));
  assert_true(POLL_UNTIL(cli, st.disconnects == 1, 3000));
  assert_int_equal(st.reason, KITE_CLOSE_IDLE);
  assert_true(POLL_UNTIL(cli, atomic_load(&server_disconnects) == 1, 2000));
  assert_int_equal(tracked[0].reason, KITE_CLOSE_IDLE);
  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

/* A relay that drops the first ACCEPT it sees from the server. */
typedef struct relay {
  int front, back; /* client side, server side */
  kite__addr server, client;
  bool have_client;
  int accepts_dropped;
  atomic_bool stop;
  pthread_t thread;
} relay;

static void *relay_main(void *arg) {
  relay *r = arg;
  struct pollfd p[2] = {{.fd = r->front, .events = POLLIN}, {.fd = r->back, .events = POLLIN}};
  uint8_t buf[4096];
  while (!atomic_load(&r->stop)) {
    if (poll(p, 2, 20) <= 0)
      continue;
    if (p[0].revents & POLLIN) {
      socklen_t len = sizeof(r->client);
      ssize_t n = recvfrom(r->front, buf, sizeof(buf), 0, &r->client.sa, &len);
      r->have_client = n >= 0;
      if (n > 0)
        sendto(r->back, buf, (size_t)n, 0, &r->server.sa, kite__addr_len(&r->server));
    }
    if (p[1].revents & POLLIN) {
      ssize_t n = recv(r->back, buf, sizeof(buf), 0);
      if (n > 8 && kite__ctrl_is_control(buf, (size_t)n) && buf[4] == KITE__CTRL_ACCEPT &&
          r->accepts_dropped == 0) {
        r->accepts_dropped++;
        continue;
      }
      if (n > 0 && r->have_client)
        sendto(r->front, buf, (size_t)n, 0, &r->client.sa, kite__addr_len(&r->client));
    }
  }
  return NULL;
}

static int bound_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(fd, (struct sockaddr *)&a, sizeof(a));
  return fd;
}

static void lost_accept_and_reconnect(void **state) {
  (void)state;
  char addr[64];
  kite_server *srv = start_server(10000, addr, sizeof(addr));
  relay r = {.front = bound_socket(), .back = bound_socket()};
  kite__addr_parse(&r.server, addr);
  atomic_init(&r.stop, false);
  pthread_create(&r.thread, NULL, relay_main, &r);
  kite__addr front;
  socklen_t len = sizeof(front);
  getsockname(r.front, &front.sa, &len);
  char via[64];
  snprintf(via, sizeof(via), "127.0.0.1:%u", kite__addr_port(&front));

  kite_client *cli = new_client(0);
  conn_state st = {0};
  assert_int_equal(kite_client_connect(cli, via, &st, &st.conn), 0);
  assert_true(POLL_UNTIL(cli, st.connects == 1, 3000)); /* CONNECT resent */
  assert_int_equal(r.accepts_dropped, 1);
  kite_server_stats ss;
  kite_server_stats_get(srv, &ss);
  assert_int_equal(ss.accept, 1);
  assert_true(ss.accept_again >= 1);
  send_seq(st.conn, 0, 100);
  assert_true(POLL_UNTIL(cli, st.echoes == 1, 2000));
  kite_conn_close(st.conn);
  assert_true(POLL_UNTIL(cli, st.disconnects == 1, 2000));

  /* Reconnect: a new session, a new id, callbacks again. */
  conn_state again = {0};
  assert_int_equal(kite_client_connect(cli, via, &again, &again.conn), 0);
  assert_true(POLL_UNTIL(cli, again.connects == 1, 3000));
  send_seq(again.conn, 0, 100);
  assert_true(POLL_UNTIL(cli, again.echoes == 1, 2000));
  kite_conn_close(again.conn);
  assert_true(POLL_UNTIL(cli, again.disconnects == 1 &&
                                  atomic_load(&server_disconnects) == 2, 2000));
  assert_int_equal(ntracked, 2);
  assert_true(tracked[0].id != tracked[1].id);
  assert_int_equal(server_errors, 0);
  kite_client_destroy(cli);
  atomic_store(&r.stop, true);
  pthread_join(r.thread, NULL);
  close(r.front);
  close(r.back);
  kite_server_destroy(srv);
}

/* 2000 sessions over 4 sockets, opened at once, each echoing 3 frames and
 * closing; half close themselves, half are kicked by the server's stop. */
static void thousands_of_sessions_callbacks_exactly_once(void **state) {
  (void)state;
  enum { SOCKETS = 4, PER = 500, N = SOCKETS * PER };
  char addr[64];
  kite_server *srv = start_server(10000, addr, sizeof(addr));
  kite_client *cli[SOCKETS];
  static conn_state st[N];
  memset(st, 0, sizeof(st));
  for (int k = 0; k < SOCKETS; k++)
    cli[k] = new_client(0);
  for (int i = 0; i < N; i++)
    assert_int_equal(kite_client_connect(cli[i % SOCKETS], addr, &st[i], &st[i].conn), 0);
  uint64_t end = kite__now_us() + 20000000;
  int done = 0;
  bool sent[N] = {0};
  while (done < N && kite__now_us() < end) {
    for (int k = 0; k < SOCKETS; k++)
      kite_client_poll(cli[k], 1);
    done = 0;
    for (int i = 0; i < N; i++) {
      if (st[i].connects == 1 && !sent[i]) {
        for (uint32_t s = 0; s < 3; s++)
          send_seq(st[i].conn, s, 64 + i % 300);
        sent[i] = true;
      }
      if (st[i].echoes == 3 && st[i].conn && i % 2 == 0 && st[i].disconnects == 0) {
        kite_conn_close(st[i].conn);
        st[i].conn = NULL;
      }
      done += st[i].echoes == 3;
    }
  }
  assert_int_equal(done, N);
  /* The even half closed: once the server has seen all their CLOSEs, stop
   * it for the odd half (reason 3). Stopping earlier races the CLOSEs
   * still in flight, and either outcome would be right. */
  end = kite__now_us() + 10000000;
  while (atomic_load(&server_disconnects) < N / 2 && kite__now_us() < end)
    for (int k = 0; k < SOCKETS; k++)
      kite_client_poll(cli[k], 1);
  assert_int_equal(atomic_load(&server_disconnects), N / 2);
  kite_server_stop(srv);
  end = kite__now_us() + 10000000;
  int gone;
  do {
    for (int k = 0; k < SOCKETS; k++)
      kite_client_poll(cli[k], 1);
    gone = 0;
    for (int i = 0; i < N; i++)
      gone += st[i].disconnects;
  } while (gone < N && kite__now_us() < end);
  for (int i = 0; i < N; i++) {
    assert_int_equal(st[i].connects, 1);
    assert_int_equal(st[i].disconnects, 1);
    assert_int_equal(st[i].order_errors, 0);
    assert_int_equal(st[i].reason, i % 2 == 0 ? KITE_CLOSE_NORMAL : KITE_CLOSE_SHUTDOWN);
  }
  assert_int_equal(atomic_load(&server_connects), N);
  assert_int_equal(atomic_load(&server_disconnects), N);
  assert_int_equal(ntracked, N);
  int per_shard[2] = {0, 0};
  for (int i = 0; i < ntracked; i++) {
    assert_int_equal(tracked[i].state, SEEN_DISCONNECT);
    assert_int_equal(tracked[i].messages, 3);
    per_shard[(tracked[i].id >> 56) & 1]++;
  }
  /* 500 sessions per socket, yet spread over both shards (the owner is a
   * keyed hash that includes each session's nonce). */
  assert_true(per_shard[0] > N / 3 && per_shard[1] > N / 3);
  assert_int_equal(server_errors, 0);
  kite_server_stats ss;
  kite_server_stats_get(srv, &ss);
  assert_int_equal(ss.sessions, 0);
  assert_int_equal(ss.closed_normal, N / 2);
  assert_int_equal(ss.closed_shutdown, N / 2);
  for (int k = 0; k < SOCKETS; k++)
    kite_client_destroy(cli[k]);
  kite_server_destroy(srv);
}

/* IPv6 end to end: a server on [::1], a client reaching it. */
static void ipv6_loopback(void **state) {
  (void)state;
  int probe = socket(AF_INET6, SOCK_DGRAM, 0);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  bool have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
  if (probe >= 0)
    close(probe);
  if (!have_v6)
    skip(); /* a machine with IPv6 off: nothing to test */
  char addr[64];
  kite_server *srv = start_server_on("[::1]:0", 10000, addr, sizeof(addr));
  assert_non_null(srv);
  kite_client *cli = new_client(0);
  conn_state st = {0};
  assert_int_equal(kite_client_connect(cli, addr, &st, &st.conn), 0);
  assert_true(POLL_UNTIL(cli, st.connects == 1, 2000));
  for (uint32_t i = 0; i < 10; i++)
    send_seq(st.conn, i, 200);
  assert_true(POLL_UNTIL(cli, st.echoes == 10, 3000));
  assert_int_equal(st.order_errors, 0);
  kite_conn_close(st.conn);
  assert_true(POLL_UNTIL(cli, atomic_load(&server_disconnects) == 1, 2000));
  assert_int_equal(server_errors, 0);
  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(connect_echo_ping_close),
      cmocka_unit_test(server_idle_timeout_reaches_both_sides),
      cmocka_unit_test(lost_accept_and_reconnect),
      cmocka_unit_test(thousands_of_sessions_callbacks_exactly_once),
      cmocka_unit_test(ipv6_loopback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
