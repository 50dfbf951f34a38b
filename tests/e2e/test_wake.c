/*
 * Wake-up coalescing (wake_coalesce_us, server/wake.h) over real sockets.
 * The test holds the shard in a handler (it waits for the test's word, no
 * timer), queues eight HELLOs meanwhile, then lets it go: the shard's next
 * read finds them all at once, which is dense traffic, so with a window
 * it holds its next read (wake_holds counts it) and with none it never
 * does. Either way every HELLO is answered. TCP events never make it hold
 * (a hold would cap a connection's rate: TCP reads a bounded amount per
 * wake-up), however many come at once; nor does a shard the kernel has
 * been dropping datagrams for (it is behind).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "e2e_poll.h"
#include "kcp_raw.h"
#include "tcp_raw.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { MSG_STALL = 1, MSG_ECHO = 2, HELLOS = 8 };

static atomic_int stalled, released;

/* Echoes; MSG_STALL first holds the shard until the test releases it
 * (10 s at most). */
static void on_message(kite_server *srv, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  if (m == MSG_STALL) {
    atomic_store(&stalled, 1);
    uint64_t end = kite__now_us() + 10000000;
    while (!atomic_load(&released) && kite__now_us() < end)
      usleep(1000);
  }
  kite_session_send(srv, id, m, b, n);
}

static int up, answers;
static void c_connect(kite_conn *c, void *u) { (void)c, (void)u; up = 1; }
static void c_message(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                      void *u) {
  (void)c, (void)m, (void)b, (void)n, (void)u;
  answers++;
}

/* The scenario above with |window_us|; the server's counters after it. */
static kite_server_stats queue_up_then_release(uint32_t window_us) {
  atomic_store(&stalled, 0);
  atomic_store(&released, 0);
  up = answers = 0;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.wake_coalesce_us = window_us;
  cfg.on_message = on_message;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));

  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_connect;
  cc.on_message = c_message;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  kite_conn *conn;
  assert_int_equal(kite_client_connect(cli, addr, NULL, &conn), 0);
  assert_true(POLL_UNTIL(cli, up, 5000));
  assert_int_equal(kite_conn_send(conn, MSG_STALL, "s", 1), 0);
  assert_true(POLL_UNTIL(cli, atomic_load(&stalled), 5000));

  /* The shard is held: its socket queues them all. */
  kite__addr to;
  assert_int_equal(kite__addr_parse(&to, addr), 0);
  int raw = udp_socket();
  for (uint8_t i = 0; i < HELLOS; i++) {
    uint8_t nonce[8] = {7, i};
    kite__ctrl h = hello(nonce);
    send_ctrl(raw, &to, &h);
  }
  atomic_store(&released, 1);
  int challenges = 0;
  kite__ctrl ch;
  while (challenges < HELLOS && recv_ctrl(raw, KITE__CTRL_CHALLENGE, &ch, 5000))
    challenges++;
  assert_int_equal(challenges, HELLOS);
  assert_true(POLL_UNTIL(cli, answers == 1, 5000)); /* the held one too */

  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  close(raw);
  kite_client_destroy(cli);
  kite_server_destroy(srv); /* a holding shard still stops */
  return st;
}

static void a_batch_makes_the_shard_hold(void **state) {
  (void)state;
  kite_server_stats st = queue_up_then_release(10000);
  print_message("wakeups %llu, wake_holds %llu\n",
                (unsigned long long)st.wakeups,
                (unsigned long long)st.wake_holds);
  assert_true(st.wake_holds >= 1);
  assert_true(st.wakeups >= st.wake_holds);
}

static void no_window_no_hold(void **state) {
  (void)state;
  kite_server_stats st = queue_up_then_release(0);
  assert_int_equal(st.wake_holds, 0);
  assert_true(st.wakeups >= 2);
}

/* Two TCP connections' frames queue up while a third holds the shard:
 * the iteration after serves both at once, and does not hold. */
static void tcp_never_holds(void **state) {
  (void)state;
  atomic_store(&stalled, 0);
  atomic_store(&released, 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.wake_coalesce_us = 10000;
  cfg.on_message = on_message;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  int port = kite_server_tcp_port(srv);
  int fd[3];
  kite__ctrl opened;
  for (int i = 0; i < 3; i++) {
    fd[i] = tcp_raw_connect(port, 5000, 0);
    assert_true(fd[i] >= 0);
    assert_true(tcp_raw_open(fd[i], &opened));
  }
  uint8_t f[KITE__FRAME_HDR + 4];
  size_t n = tcp_raw_frame(f, MSG_STALL, 0, "stop", 4, false);
  assert_true(tcp_raw_write(fd[0], f, n));
  uint64_t end = kite__now_us() + 5000000;
  while (!atomic_load(&stalled) && kite__now_us() < end)
    usleep(1000);
  assert_true(atomic_load(&stalled));
  n = tcp_raw_frame(f, MSG_ECHO, 0, "echo", 4, false);
  assert_true(tcp_raw_write(fd[1], f, n));
  assert_true(tcp_raw_write(fd[2], f, n));
  atomic_store(&released, 1);
  for (int i = 0; i < 3; i++) {
    kite__frame_hdr h;
    uint8_t body[8];
    assert_true(tcp_raw_read_frame(fd[i], &h, body, sizeof(body)));
    assert_int_equal(h.msg_id, i == 0 ? MSG_STALL : MSG_ECHO);
  }
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  for (int i = 0; i < 3; i++)
    close(fd[i]);
  kite_server_destroy(srv);
  assert_int_equal(st.wake_holds, 0);
  assert_true(st.wakeups >= 2);
}

/* Has the shard run MSG_STALL for |fd| and wait in it. */
static void stall_via(int fd) {
  atomic_store(&stalled, 0);
  atomic_store(&released, 0);
  uint8_t f[KITE__FRAME_HDR + 4];
  size_t n = tcp_raw_frame(f, MSG_STALL, 0, "stop", 4, false);
  assert_true(tcp_raw_write(fd, f, n));
  uint64_t end = kite__now_us() + 5000000;
  while (!atomic_load(&stalled) && kite__now_us() < end)
    usleep(1000);
  assert_true(atomic_load(&stalled));
}

/* Lets the shard go and reads the stalled frame's echo. */
static void release_via(int fd) {
  atomic_store(&released, 1);
  kite__frame_hdr h;
  uint8_t body[8];
  assert_true(tcp_raw_read_frame(fd, &h, body, sizeof(body)));
  assert_int_equal(h.msg_id, MSG_STALL);
}

static void hellos(int raw, const kite__addr *to, uint8_t first, int count) {
  for (int i = 0; i < count; i++) {
    uint8_t nonce[8] = {5, (uint8_t)(first + i)};
    kite__ctrl h = hello(nonce);
    send_ctrl(raw, to, &h);
  }
  kite__ctrl ch;
  for (int i = 0; i < count; i++)
    assert_true(recv_ctrl(raw, KITE__CTRL_CHALLENGE, &ch, 5000));
}

/* The kernel drops datagrams while a TCP peer holds the shard (a tiny
 * receive buffer, a flood). The drop count rides on the datagrams that
 * come after (SO_RXQ_OVFL), so a second hold-up queues three HELLOs: read
 * at once, they would be dense traffic, but a shard seen dropping is
 * behind and does not hold. */
static void dropping_never_holds(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.udp_rcvbuf = 4096; /* the kernel's least, about: a few datagrams */
  cfg.wake_coalesce_us = 10000;
  cfg.on_message = on_message;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  int fd = tcp_raw_connect(kite_server_tcp_port(srv), 5000, 0);
  assert_true(fd >= 0);
  kite__ctrl opened;
  assert_true(tcp_raw_open(fd, &opened));
  kite__addr to;
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  assert_int_equal(kite__addr_parse(&to, addr), 0);
  int raw = udp_socket();

  stall_via(fd); /* the flood: most of it dropped */
  uint8_t junk[512];
  memset(junk, 0x33, sizeof(junk)); /* a conv of no session */
  for (int i = 0; i < 200; i++)
    send_raw(raw, &to, junk, sizeof(junk));
  release_via(fd);
  kite_server_stats st;
  uint64_t end = kite__now_us() + 5000000;
  do {
    usleep(1000);
    kite_server_stats_get(srv, &st);
  } while (st.drop_unknown_conv == 0 && kite__now_us() < end);

  stall_via(fd); /* whatever followed the flood's read has run */
  kite_server_stats_get(srv, &st);
  uint64_t holds = st.wake_holds;
  for (int i = 0; i < 3; i++) { /* they carry the drop count */
    uint8_t nonce[8] = {5, (uint8_t)i};
    kite__ctrl h = hello(nonce);
    send_ctrl(raw, &to, &h);
  }
  release_via(fd);
  kite__ctrl ch;
  for (int i = 0; i < 3; i++)
    assert_true(recv_ctrl(raw, KITE__CTRL_CHALLENGE, &ch, 5000));
  hellos(raw, &to, 3, 1); /* the iteration after theirs has run */
  kite_server_stats_get(srv, &st);
  print_message("rx_overflows %llu, wake_holds %llu then %llu\n",
                (unsigned long long)st.rx_overflows, (unsigned long long)holds,
                (unsigned long long)st.wake_holds);
  close(raw);
  close(fd);
  kite_server_destroy(srv);
  assert_true(st.rx_overflows >= 1);
  assert_true(st.wake_holds == holds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_batch_makes_the_shard_hold),
      cmocka_unit_test(no_window_no_hold),
      cmocka_unit_test(tcp_never_holds),
      cmocka_unit_test(dropping_never_holds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
