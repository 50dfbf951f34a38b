/*
 * A shard that cannot keep up: its handler stalls it on purpose (a slow
 * handler in inline mode, the way a test slows a shard) while a flood
 * fills its small receive buffer. The kernel drops what does not fit, and
 * the server counts it (rx_overflows, from SO_RXQ_OVFL) and says so; the
 * session that stalled it still gets its answer afterwards, and new
 * sessions are refused (REJECT full, reject_overload) while the shard is
 * known to be behind, then admitted again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"

#include "e2e_poll.h"
#include "kcp_raw.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MSG_STALL = 1 };

static atomic_int stalled, overflow_lines;

static void capture(void *u, kite_log_level level, const char *msg) {
  (void)u, (void)level;
  if (strstr(msg, "receive buffer was full"))
    atomic_fetch_add(&overflow_lines, 1);
}

/* Holds the shard for 400 ms: the test's way to slow it down. */
static void on_message(kite_server *srv, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)u;
  atomic_store(&stalled, 1);
  usleep(400000);
  kite_session_send(srv, id, m, b, n);
}

static int answers;
static void c_message(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                      void *u) {
  (void)c, (void)m, (void)b, (void)n, (void)u;
  answers++;
}
static int up;
static void c_connect(kite_conn *c, void *u) { (void)c, (void)u; up = 1; }

static void overflows_are_counted(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.udp_rcvbuf = 4096; /* the kernel's least, about: a few datagrams */
  cfg.overload_refuse_ms = 3000; /* long enough to see, short enough to end */
  cfg.on_message = on_message;
  cfg.log = capture;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_start(srv), 0);
  int port = kite_server_udp_port(srv);

  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_connect;
  cc.on_message = c_message;
  cc.log_level = KITE_LOG_ERROR;
  kite_client *cli;
  assert_int_equal(kite_client_create(&cli, &cc), 0);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  kite_conn *conn;
  assert_int_equal(kite_client_connect(cli, addr, NULL, &conn), 0);
  assert_true(POLL_UNTIL(cli, up, 5000));
  assert_int_equal(kite_conn_send(conn, MSG_STALL, "s", 1), 0);
  assert_true(POLL_UNTIL(cli, atomic_load(&stalled), 5000));

  /* The shard is held: fill its buffer from another socket. */
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  uint8_t junk[512];
  memset(junk, 0x33, sizeof(junk)); /* a conv of no session */
  for (int i = 0; i < 2000; i++)
    sendto(fd, junk, sizeof(junk), 0, (struct sockaddr *)&to, sizeof(to));
  close(fd);

  kite_server_stats st;
  uint64_t end = kite__now_us() + 10000000;
  do {
    kite_client_poll(cli, 10);
    kite_server_stats_get(srv, &st);
  } while ((st.rx_overflows == 0 || st.drop_unknown_conv == 0 || answers == 0) &&
           kite__now_us() < end);
  print_message("rx_overflows %llu, dropped as unknown %llu\n",
                (unsigned long long)st.rx_overflows,
                (unsigned long long)st.drop_unknown_conv);
  /* Most of the flood did not fit; what the kernel kept was read and
   * refused. (The client's own datagrams may be among the dropped.) */
  assert_true(st.rx_overflows >= 1000);
  assert_true(st.drop_unknown_conv >= 1);
  assert_true(st.rx_overflows + st.drop_unknown_conv <= 2000 + 100);
  assert_int_equal(answers, 1); /* the stalled session still got its echo */
  assert_true(atomic_load(&overflow_lines) >= 1);

  /* Behind: a new player is refused... */
  kite__addr srv_addr;
  assert_int_equal(kite__addr_parse(&srv_addr, addr), 0);
  int raw = udp_socket();
  uint8_t nonce[8] = {9, 9};
  kite__ctrl h = hello(nonce), ch, r;
  send_ctrl(raw, &srv_addr, &h);
  assert_true(recv_ctrl(raw, KITE__CTRL_CHALLENGE, &ch, 2000));
  kite__ctrl c = {.type = KITE__CTRL_CONNECT, .mtu = 1400, .rcv_wnd = 128};
  memcpy(c.nonce, nonce, 8);
  memcpy(c.cookie, ch.cookie, 16);
  send_ctrl(raw, &srv_addr, &c);
  assert_true(recv_ctrl(raw, KITE__CTRL_REJECT, &r, 2000));
  assert_int_equal(r.reason, KITE__REJECT_FULL);
  kite_server_stats_get(srv, &st);
  assert_true(st.reject_overload >= 1);
  /* ...and admitted once the shard has kept up for overload_refuse_ms. */
  bool accepted = false;
  end = kite__now_us() + 15000000;
  for (uint8_t k = 1; !accepted && kite__now_us() < end; k++) {
    kite_client_poll(cli, 200);
    nonce[2] = k;
    kite__ctrl h2 = hello(nonce), ch2, a;
    send_ctrl(raw, &srv_addr, &h2);
    if (!recv_ctrl(raw, KITE__CTRL_CHALLENGE, &ch2, 1000))
      continue;
    memcpy(c.nonce, nonce, 8);
    memcpy(c.cookie, ch2.cookie, 16);
    send_ctrl(raw, &srv_addr, &c);
    accepted = recv_ctrl(raw, KITE__CTRL_ACCEPT, &a, 1000);
  }
  assert_true(accepted);
  close(raw);
  kite_client_destroy(cli);
  kite_server_destroy(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(overflows_are_counted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
