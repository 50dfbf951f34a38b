/*
 * The shop test's hand-made TCP peer, written from PROTOCOL.md alone (no
 * kite internals): OPEN, OPENED, frames, and an abrupt end (a reset, or a
 * close with unread bytes) while the server is writing to it.
 */
#ifndef KITE_TESTS_E2E_SHOP_PEER_H
#define KITE_TESTS_E2E_SHOP_PEER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define SHOP_FRAME_HDR 12 /* len u32, msg_id u16, flags u16, crc32 u32 */

static inline void shop_put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t shop_get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* One frame with no CRC at |out| (room for 12 + len); returns its size. */
static inline size_t shop_frame(uint8_t *out, uint16_t msg_id,
                                const void *body, uint32_t len) {
  shop_put32(out, len);
  out[4] = (uint8_t)msg_id;
  out[5] = (uint8_t)(msg_id >> 8);
  memset(out + 6, 0, 6); /* flags 0, crc32 0 */
  if (len)
    memcpy(out + SHOP_FRAME_HDR, body, len);
  return SHOP_FRAME_HDR + len;
}

static inline bool shop_write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

/* Connects to 127.0.0.1:|port|, sends OPEN and waits (at most |ms|) for
 * OPENED. Returns the socket, or -1 (the connection is closed then). */
static inline int shop_peer_open(int port, int ms) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  /* OPEN: magic "KITE", type 7, version 1, reserved 0. */
  static const uint8_t open[8] = {'K', 'I', 'T', 'E', 7, 1, 0, 0};
  uint8_t opened[16];
  size_t got = 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      !shop_write_all(fd, open, sizeof(open)))
    goto fail;
  while (got < sizeof(opened)) {
    ssize_t r = recv(fd, opened + got, sizeof(opened) - got, 0);
    if (r <= 0)
      goto fail;
    got += (size_t)r;
  }
  if (memcmp(opened, "KITE", 4) != 0 || opened[4] != 8 || opened[5] != 1)
    goto fail;
  return fd;
fail:
  close(fd);
  return -1;
}

/* Writes |n| (at most 256) frames |msg_id| with bodies 0, 1, ... (u32);
 * the peer may be gone already: whatever the kernel takes. */
static inline void shop_peer_burst(int fd, uint16_t msg_id, int n) {
  static uint8_t buf[256 * (SHOP_FRAME_HDR + 4)]; /* the test thread's */
  size_t len = 0;
  uint8_t b[4];
  for (int i = 0; i < n && i < 256; i++) {
    shop_put32(b, (uint32_t)i);
    len += shop_frame(buf + len, msg_id, b, 4);
  }
  shop_write_all(fd, buf, len);
}

/* Goes away abruptly: SO_LINGER 0 makes close() send a reset at once;
 * otherwise the bytes left unread make the kernel reset the connection
 * anyway, a moment later. */
static inline void shop_peer_kill(int fd, bool linger0) {
  if (linger0) {
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close(fd);
}

#endif
