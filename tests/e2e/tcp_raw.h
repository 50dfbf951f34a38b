/*
 * A raw TCP peer for end-to-end tests: blocking sockets on loopback with a
 * receive deadline, and PROTOCOL.md's OPEN and frames written by hand, so
 * a test controls every byte and every split.
 */
#ifndef KITE_TESTS_E2E_TCP_RAW_H
#define KITE_TESTS_E2E_TCP_RAW_H

#include "proto/control.h"
#include "proto/frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A connected socket to 127.0.0.1:|port|, reads bounded by |recv_ms|;
 * -1 on failure. |rcvbuf| > 0 shrinks the receive buffer first. */
static inline int tcp_raw_connect(int port, int recv_ms, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  struct timeval tv = {recv_ms / 1000, (recv_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static inline bool tcp_raw_write(int fd, const void *p, size_t n) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w <= 0)
      return false;
    b += w;
    n -= (size_t)w;
  }
  return true;
}

/* Reads exactly |n| bytes: false on EOF, error or the deadline. */
static inline bool tcp_raw_read(int fd, void *p, size_t n) {
  uint8_t *b = p;
  while (n) {
    ssize_t r = recv(fd, b, n, 0);
    if (r <= 0)
      return false;
    b += r;
    n -= (size_t)r;
  }
  return true;
}

/* 0: an orderly EOF came before the deadline; -1: bytes came instead, or
 * a reset, or nothing. */
static inline int tcp_raw_expect_eof(int fd) {
  uint8_t b;
  ssize_t r = recv(fd, &b, 1, 0);
  return r == 0 ? 0 : -1;
}

/* Reads one frame: its header in |h|, its body (up to |cap|) at |body|. */
static inline bool tcp_raw_read_frame(int fd, kite__frame_hdr *h, void *body,
                                      size_t cap);

/* 0: the close notice (PROTOCOL.md section 5) with |reason| came, then an
 * orderly EOF, before the deadline; -1 otherwise. */
static inline int tcp_raw_expect_close(int fd, uint8_t reason) {
  kite__frame_hdr h;
  uint8_t body[8];
  if (!tcp_raw_read_frame(fd, &h, body, sizeof(body)) ||
      h.msg_id != KITE__MSG_CLOSE_NOTICE || h.len != 1 || body[0] != reason)
    return -1;
  return tcp_raw_expect_eof(fd);
}

static inline int tcp_raw_ctrl(uint8_t *out, uint8_t type, uint8_t version) {
  kite__ctrl k = {.type = type, .version = version};
  return kite__ctrl_encode(out, KITE__CTRL_MAX, &k);
}

/* OPEN, then OPENED read and decoded into |out|. */
static inline bool tcp_raw_open(int fd, kite__ctrl *out) {
  uint8_t b[KITE__CTRL_MAX];
  int n = tcp_raw_ctrl(b, KITE__CTRL_OPEN, 0);
  if (!tcp_raw_write(fd, b, (size_t)n) || !tcp_raw_read(fd, b, 16))
    return false;
  return kite__ctrl_decode(b, 16, out) == 0 && out->type == KITE__CTRL_OPENED;
}

/* One frame's bytes at |out| (room for 12 + len); returns their count. */
static inline size_t tcp_raw_frame(uint8_t *out, uint16_t msg_id,
                                   uint16_t flags, const void *body,
                                   uint32_t len, bool crc) {
  kite__frame_header(out, msg_id, flags, body, len, crc);
  if (len)
    memcpy(out + KITE__FRAME_HDR, body, len);
  return KITE__FRAME_HDR + len;
}

/* Reads one frame: its header in |h|, its body (up to |cap|) at |body|. */
static inline bool tcp_raw_read_frame(int fd, kite__frame_hdr *h, void *body,
                                      size_t cap) {
  uint8_t hdr[KITE__FRAME_HDR];
  if (!tcp_raw_read(fd, hdr, sizeof(hdr)))
    return false;
  kite__frame_hdr_decode(hdr, h);
  if (h->len > cap)
    return false;
  return tcp_raw_read(fd, body, h->len);
}

#endif
