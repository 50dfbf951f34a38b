/*
 * A kicked KCP peer that lost all three CLOSE copies (a full receive
 * buffer, a burst of loss) still learns why: the shard remembers the
 * session it closed, and the peer's next datagram for that conv gets the
 * CLOSE again, with its reason and token (closed.h). Only from the
 * session's own address, at most one per 100 ms, never for a stranger,
 * and not at all when closed_linger_ms is 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/kite.h"
#include "e2e_poll.h"
#include "kcp_raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum { MSG_KICK = 7 };

static void on_message(kite_server *srv, kite_session_id id, uint16_t m,
                       const uint8_t *b, size_t n, void *u) {
  (void)b, (void)n, (void)u;
  if (m == MSG_KICK)
    kite_session_close(srv, id);
}

typedef struct fixture {
  kite_server *srv;
  kite__addr addr;
} fixture;

static fixture *start(uint32_t linger_ms) {
  fixture *f = calloc(1, sizeof(*f));
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  cfg.closed_linger_ms = linger_ms;
  cfg.on_message = on_message;
  cfg.log_level = KITE_LOG_ERROR;
  assert_int_equal(kite_server_create(&f->srv, &cfg), 0);
  assert_int_equal(kite_server_start(f->srv), 0);
  char a[32];
  snprintf(a, sizeof(a), "127.0.0.1:%d", kite_server_udp_port(f->srv));
  assert_int_equal(kite__addr_parse(&f->addr, a), 0);
  return f;
}

static void stop(fixture *f) {
  kite_server_destroy(f->srv);
  free(f);
}

/* A session on |fd| kicked by the server; its three CLOSEs read and
 * thrown away, as if lost. Returns the ACCEPT (conv, token). */
static kite__ctrl kicked(fixture *f, int fd, mini *m) {
  static uint8_t nonce[8] = {9, 8, 7};
  nonce[3]++;
  kite__ctrl acc = kcp_raw_handshake(fd, &f->addr, nonce);
  mini_open(m, fd, &f->addr, acc.conv);
  mini_send_frame(m, MSG_KICK, 0, NULL, 0, false);
  kite__ctrl c;
  for (int i = 0; i < 3; i++)
    assert_true(recv_ctrl(fd, KITE__CTRL_CLOSE, &c, 5000));
  kite_server_stats st;
  EVENTUALLY_STATS(f->srv, st, st.closed_kicked == 1 && st.sessions == 0, 5000);
  return acc;
}

/* A KCP segment for |conv| (a window probe): what a live peer sends. */
static void segment(int fd, const kite__addr *to, uint32_t conv) {
  uint8_t seg[KITE_KCP_OVERHEAD] = {0};
  kite__put_le32(seg, conv);
  seg[4] = 83; /* IKCP_CMD_WASK */
  send_raw(fd, to, seg, sizeof(seg));
}

static int socket_at(const char *ip) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, ip, &a.sin_addr);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

static void lost_close_is_sent_again(void **state) {
  (void)state;
  fixture *f = start(10000);
  int fd = udp_socket();
  mini m;
  kite__ctrl acc = kicked(f, fd, &m);
  kite_server_stats st;

  /* A stranger naming the conv gets nothing, and moves nothing. */
  int other = socket_at("127.0.0.2");
  segment(other, &f->addr, acc.conv);
  EVENTUALLY_STATS(f->srv, st, st.drop_unknown_conv >= 1, 3000);
  uint8_t buf[64];
  assert_int_equal(recv_raw(other, buf, sizeof(buf), 200), -1);
  assert_int_equal(e2e_stats(f->srv).close_resent, 0);

  /* The peer itself, still sending: its CLOSE again, reason and token. */
  uint64_t t0 = kite__now_us();
  segment(fd, &f->addr, acc.conv);
  kite__ctrl c;
  assert_true(recv_ctrl(fd, KITE__CTRL_CLOSE, &c, 3000));
  assert_int_equal(c.conv, acc.conv);
  assert_int_equal(c.reason, KITE_CLOSE_KICKED);
  assert_memory_equal(c.token, acc.token, 8);
  EVENTUALLY_STATS(f->srv, st, st.close_resent == 1, 3000);

  /* A burst gets one per 100 ms at most, never one each. */
  for (int i = 0; i < 40; i++)
    segment(fd, &f->addr, acc.conv);
  int answers = 0;
  while (recv_ctrl(fd, KITE__CTRL_CLOSE, &c, 300))
    answers++;
  uint64_t ms = (kite__now_us() - t0) / 1000;
  assert_true(answers <= (int)(ms / 100) + 1); /* KITE__CLOSED_RESEND_MS */
  assert_true(e2e_stats(f->srv).close_resent <= (uint64_t)ms / 100 + 2);
  close(other);
  close(fd);
  mini_close(&m);
  stop(f);
}

static void linger_off_sends_nothing(void **state) {
  (void)state;
  fixture *f = start(0);
  int fd = udp_socket();
  mini m;
  kite__ctrl acc = kicked(f, fd, &m);
  segment(fd, &f->addr, acc.conv);
  kite_server_stats st;
  EVENTUALLY_STATS(f->srv, st, st.drop_unknown_conv >= 1, 3000);
  kite__ctrl c;
  assert_false(recv_ctrl(fd, KITE__CTRL_CLOSE, &c, 300));
  assert_int_equal(e2e_stats(f->srv).close_resent, 0);
  close(fd);
  mini_close(&m);
  stop(f);
}

static void limits_are_checked(void **state) {
  (void)state;
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  assert_int_equal(cfg.closed_linger_ms, 10000);
  assert_int_equal(cfg.closed_linger_max, 4096);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  cfg.closed_linger_ms = 600001;
  assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
  cfg.closed_linger_ms = 10000;
  cfg.closed_linger_max = (1u << 20) + 1;
  assert_int_equal(kite_server_create(&srv, &cfg), KITE_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lost_close_is_sent_again),
      cmocka_unit_test(linger_off_sends_nothing),
      cmocka_unit_test(limits_are_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
