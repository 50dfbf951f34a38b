/*
 * A raw UDP peer for end-to-end tests: control packets written by hand
 * and a KCP engine standing in for a client, so a test controls every
 * datagram (drops one, withholds acks, forges a CLOSE). Include after
 * cmocka.h: the helpers assert.
 */
#ifndef KITE_TESTS_E2E_KCP_RAW_H
#define KITE_TESTS_E2E_KCP_RAW_H

#include "base/clock.h"
#include "kcp/kcp.h"
#include "net/addr.h"
#include "proto/control.h"
#include "proto/frame.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

static inline int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

static inline void send_raw(int fd, const kite__addr *to, const void *buf, size_t len) {
  assert_int_equal(sendto(fd, buf, len, 0, &to->sa, kite__addr_len(to)), (ssize_t)len);
}

static inline void send_ctrl(int fd, const kite__addr *to, const kite__ctrl *c) {
  uint8_t buf[KITE__CTRL_MAX];
  int n = kite__ctrl_encode(buf, sizeof(buf), c);
  assert_true(n > 0);
  send_raw(fd, to, buf, (size_t)n);
}

/* The next datagram within |ms|, or -1. */
static inline int recv_raw(int fd, uint8_t *buf, size_t cap, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0)
    return -1;
  return (int)recv(fd, buf, cap, 0);
}

/* The next control packet of |type| within |ms|. */
static inline bool recv_ctrl(int fd, uint8_t type, kite__ctrl *out, int ms) {
  uint64_t end = kite__now_us() + (uint64_t)ms * 1000;
  uint8_t buf[2048];
  while (kite__now_us() < end) {
    int n = recv_raw(fd, buf, sizeof(buf), (int)((end - kite__now_us()) / 1000) + 1);
    if (n > 0 && kite__ctrl_decode(buf, (size_t)n, out) == 0 && out->type == type)
      return true;
  }
  return false;
}

static inline kite__ctrl hello(const uint8_t nonce[8]) {
  kite__ctrl h = {.type = KITE__CTRL_HELLO};
  memcpy(h.nonce, nonce, 8);
  return h;
}

/* HELLO, CHALLENGE, CONNECT, ACCEPT on |fd|. */
static inline kite__ctrl kcp_raw_handshake(int fd, const kite__addr *to,
                                           const uint8_t nonce[8]) {
  kite__ctrl h = hello(nonce), ch, acc;
  send_ctrl(fd, to, &h);
  assert_true(recv_ctrl(fd, KITE__CTRL_CHALLENGE, &ch, 1000));
  kite__ctrl c = {.type = KITE__CTRL_CONNECT, .mtu = 1400, .rcv_wnd = 128};
  memcpy(c.nonce, nonce, 8);
  memcpy(c.cookie, ch.cookie, 16);
  send_ctrl(fd, to, &c);
  assert_true(recv_ctrl(fd, KITE__CTRL_ACCEPT, &acc, 1000));
  assert_memory_equal(acc.nonce, nonce, 8);
  return acc;
}

/* A client stand-in: a KCP block on the test's socket. */
typedef struct mini {
  int fd;
  const kite__addr *to;
  kite__kcp_pool *pool;
  kite__kcp *kcp;
} mini;

static inline void mini_out(kite__kcp *k, const uint8_t *b, size_t n, void *u) {
  (void)k;
  mini *m = u;
  send_raw(m->fd, m->to, b, n);
}
static const kite__kcp_ops mini_ops = {mini_out, NULL};

static inline void mini_open(mini *m, int fd, const kite__addr *to, uint32_t conv) {
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  m->pool = kite__kcp_pool_create(&pc);
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  m->fd = fd;
  m->to = to;
  assert_int_equal(kite__kcp_create(&m->kcp, conv, &c, m->pool, &mini_ops, m), 0);
}

static inline void mini_send_frame(mini *m, uint16_t msg_id, uint16_t flags,
                            const void *body, size_t len, bool crc) {
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, msg_id, flags, body, (uint32_t)len, crc);
  struct iovec iov[2] = {{hdr, 12}, {(void *)(uintptr_t)body, len}};
  assert_int_equal(kite__kcp_sendv(m->kcp, iov, len ? 2 : 1), 0);
  kite__kcp_flush(m->kcp, kite__now_ms());
}

static inline void mini_close(mini *m) {
  kite__kcp_destroy(m->kcp);
  kite__kcp_pool_destroy(m->pool);
}

#endif
