/*
 * UDP batches over loopback: datagrams out through kite__udp_tx, in
 * through kite__udp_recv, intact, in order, with the sender's address and
 * the address they were sent to; more than one batch's worth across
 * several reads (the headers are reset only where the last read wrote);
 * "none waiting" as 0; an oversize datagram flagged truncated; a local
 * address given on send honoured; a dual-stack socket telling IPv4 and
 * IPv6 arrivals apart read after read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/udp.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct pair {
  int a, b;            /* kite sockets, both on 127.0.0.1 */
  kite__addr a_addr, b_addr;
  kite__udp_rx *rx;
  kite__udp_tx *tx;
} pair;

static int open_loopback(kite__addr *bound) {
  kite__addr any;
  assert_int_equal(kite__addr_parse(&any, "127.0.0.1:0"), 0);
  int err;
  const char *what;
  int fd = kite__udp_open(&any, false, &err, &what);
  assert_true(fd >= 0);
  char text[32];
  snprintf(text, sizeof(text), "127.0.0.1:%d", kite__udp_local_port(fd));
  assert_int_equal(kite__addr_parse(bound, text), 0);
  return fd;
}

static int setup(void **state) {
  pair *p = calloc(1, sizeof(*p));
  p->a = open_loopback(&p->a_addr);
  p->b = open_loopback(&p->b_addr);
  p->rx = malloc(sizeof(*p->rx));
  p->tx = malloc(sizeof(*p->tx));
  kite__udp_rx_init(p->rx);
  kite__udp_tx_init(p->tx, p->a);
  *state = p;
  return 0;
}

static int teardown(void **state) {
  pair *p = *state;
  close(p->a);
  close(p->b);
  free(p->rx);
  free(p->tx);
  free(p);
  return 0;
}

static void wait_readable(int fd) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 2000), 1);
}

/* Datagram i is 1 + i % 300 bytes of (i + j) & 0xff. */
static size_t fill(uint8_t *buf, uint32_t i) {
  size_t len = 1 + i % 300;
  for (size_t j = 0; j < len; j++)
    buf[j] = (uint8_t)(i + j);
  return len;
}

static void test_nothing_waiting_is_zero(void **state) {
  pair *p = *state;
  int err = 0;
  assert_int_equal(kite__udp_recv(p->b, p->rx, &err), 0);
  assert_int_equal(kite__udp_recv(p->b, p->rx, &err), 0);
  assert_int_equal(err, 0);
}

static void test_batches_arrive_intact_in_order(void **state) {
  pair *p = *state;
  enum { N = 3 * KITE__UDP_BATCH + 7 };
  uint8_t buf[KITE__UDP_DGRAM_MAX];
  for (uint32_t i = 0; i < N; i++) {
    size_t len = fill(buf, i);
    kite__udp_tx_add(p->tx, &p->b_addr, NULL, buf, len);
  }
  kite__udp_tx_flush(p->tx);
  assert_int_equal(p->tx->sent, N);
  assert_int_equal(p->tx->dropped, 0);

  uint32_t got = 0;
  int reads = 0;
  while (got < N) {
    wait_readable(p->b);
    int err, n;
    while ((n = kite__udp_recv(p->b, p->rx, &err)) > 0) {
      reads++;
      for (int k = 0; k < n; k++, got++) {
        size_t len = fill(buf, got);
        assert_int_equal(p->rx->msgs[k].msg_len, len);
        assert_memory_equal(p->rx->buf[k], buf, len);
        assert_int_equal(p->rx->msgs[k].msg_hdr.msg_flags & MSG_TRUNC, 0);
        assert_true(kite__addr_equal(&p->rx->from[k], &p->a_addr));
        assert_int_equal(p->rx->local[k].family, AF_INET);
        assert_int_equal(p->rx->local[k].addr.v4.s_addr, htonl(INADDR_LOOPBACK));
      }
    }
    assert_int_equal(n, 0);
  }
  assert_int_equal(got, N);
  assert_true(reads >= 4); /* at most KITE__UDP_BATCH per read */
}

static void test_single_datagrams_between_batches(void **state) {
  /* A full read, then single datagrams from another sender: each read
   * must still see the whole address and its packet info. */
  pair *p = *state;
  uint8_t buf[KITE__UDP_DGRAM_MAX];
  for (uint32_t i = 0; i < KITE__UDP_BATCH; i++)
    kite__udp_tx_add(p->tx, &p->b_addr, NULL, buf, fill(buf, i));
  kite__udp_tx_flush(p->tx);
  uint32_t got = 0;
  int err, n;
  while (got < KITE__UDP_BATCH) {
    wait_readable(p->b);
    while ((n = kite__udp_recv(p->b, p->rx, &err)) > 0)
      got += (uint32_t)n;
  }
  kite__addr c_addr;
  int c = open_loopback(&c_addr);
  kite__udp_tx *tc = malloc(sizeof(*tc));
  kite__udp_tx_init(tc, c);
  for (uint32_t i = 0; i < 5; i++) {
    kite__udp_tx_add(tc, &p->b_addr, NULL, buf, fill(buf, i));
    kite__udp_tx_flush(tc);
    wait_readable(p->b);
    assert_int_equal(kite__udp_recv(p->b, p->rx, &err), 1);
    assert_int_equal(p->rx->msgs[0].msg_len, fill(buf, i));
    assert_true(kite__addr_equal(&p->rx->from[0], &c_addr));
    assert_int_equal(p->rx->local[0].family, AF_INET);
    assert_int_equal(kite__udp_recv(p->b, p->rx, &err), 0);
  }
  free(tc);
  close(c);
}

static void test_oversize_is_flagged_truncated(void **state) {
  pair *p = *state;
  static uint8_t big[KITE__UDP_DGRAM_MAX + 100];
  memset(big, 0x5a, sizeof(big));
  assert_int_equal(sendto(p->a, big, sizeof(big), 0, &p->b_addr.sa,
                          kite__addr_len(&p->b_addr)),
                   (ssize_t)sizeof(big));
  wait_readable(p->b);
  int err;
  assert_int_equal(kite__udp_recv(p->b, p->rx, &err), 1);
  assert_true(p->rx->msgs[0].msg_hdr.msg_flags & MSG_TRUNC);
  /* and the next read is clean again */
  uint8_t buf[KITE__UDP_DGRAM_MAX];
  kite__udp_tx_add(p->tx, &p->b_addr, NULL, buf, fill(buf, 9));
  kite__udp_tx_flush(p->tx);
  wait_readable(p->b);
  assert_int_equal(kite__udp_recv(p->b, p->rx, &err), 1);
  assert_int_equal(p->rx->msgs[0].msg_hdr.msg_flags & MSG_TRUNC, 0);
  assert_int_equal(p->rx->msgs[0].msg_len, fill(buf, 9));
}

static void test_reply_from_the_local_address(void **state) {
  /* A reply sent with the packet info of a received datagram leaves from
   * the address it was sent to. */
  pair *p = *state;
  uint8_t buf[KITE__UDP_DGRAM_MAX];
  kite__udp_tx_add(p->tx, &p->b_addr, NULL, buf, fill(buf, 3));
  kite__udp_tx_flush(p->tx);
  wait_readable(p->b);
  int err;
  assert_int_equal(kite__udp_recv(p->b, p->rx, &err), 1);
  kite__local local = p->rx->local[0];
  kite__addr from = p->rx->from[0];
  kite__udp_tx *tb = malloc(sizeof(*tb));
  kite__udp_tx_init(tb, p->b);
  kite__udp_tx_add(tb, &from, &local, buf, fill(buf, 4));
  kite__udp_tx_flush(tb);
  assert_int_equal(tb->sent, 1);
  free(tb);
  wait_readable(p->a);
  assert_int_equal(kite__udp_recv(p->a, p->rx, &err), 1);
  assert_int_equal(p->rx->msgs[0].msg_len, fill(buf, 4));
  assert_true(kite__addr_equal(&p->rx->from[0], &p->b_addr));
}

static int open_at(const char *text, kite__addr *bound) {
  kite__addr any;
  assert_int_equal(kite__addr_parse(&any, text), 0);
  int err;
  const char *what;
  int fd = kite__udp_open(&any, false, &err, &what);
  assert_true(fd >= 0);
  *bound = any;
  bound->v4.sin_port = htons((uint16_t)kite__udp_local_port(fd)); /* same offset in v6 */
  return fd;
}

static void test_dual_stack_alternating(void **state) {
  /* An IPv4 datagram here brings two control messages, an IPv6 one only
   * one: a header left as an IPv6 read shrank it would truncate the next
   * IPv4 one. */
  pair *p = *state;
  kite__addr dual_addr, v4_addr, v6_addr, to4, to6;
  int dual = open_at("[::]:0", &dual_addr);
  int s4 = open_at("127.0.0.1:0", &v4_addr);
  int s6 = open_at("[::1]:0", &v6_addr);
  char text[32];
  snprintf(text, sizeof(text), "127.0.0.1:%d", kite__udp_local_port(dual));
  assert_int_equal(kite__addr_parse(&to4, text), 0);
  snprintf(text, sizeof(text), "[::1]:%d", kite__udp_local_port(dual));
  assert_int_equal(kite__addr_parse(&to6, text), 0);
  for (int i = 0; i < 6; i++) {
    bool v6 = i % 2;
    uint8_t b = (uint8_t)i;
    const kite__addr *to = v6 ? &to6 : &to4;
    assert_int_equal(sendto(v6 ? s6 : s4, &b, 1, 0, &to->sa, kite__addr_len(to)), 1);
    wait_readable(dual);
    int err;
    assert_int_equal(kite__udp_recv(dual, p->rx, &err), 1);
    assert_int_equal(p->rx->buf[0][0], b);
    assert_int_equal(p->rx->msgs[0].msg_hdr.msg_flags & MSG_CTRUNC, 0);
    /* IPv6 packet info first, a v4-mapped address for IPv4 */
    assert_int_equal(p->rx->local[0].family, AF_INET6);
    assert_int_equal(IN6_IS_ADDR_V4MAPPED(&p->rx->local[0].addr.v6), !v6);
  }
  close(dual);
  close(s4);
  close(s6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_nothing_waiting_is_zero, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batches_arrive_intact_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_single_datagrams_between_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oversize_is_flagged_truncated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reply_from_the_local_address, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dual_stack_alternating, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
