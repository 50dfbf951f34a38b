/*
 * A raw version-2 UDP peer for end-to-end tests, built from the codecs in
 * src/proto: the handshake written by hand, a KCP engine whose output is
 * sealed into protected datagrams, and every datagram in the test's hands
 * (forge, replay, alter, send from another 127.x address). Include after
 * cmocka.h: the helpers assert, on the test's thread only.
 */
#ifndef KITE_TESTS_E2E_V2_RAW_H
#define KITE_TESTS_E2E_V2_RAW_H

#include "kite/kite.h"

#include "base/clock.h"
#include "base/le.h"
#include "kcp/kcp.h"
#include "net/addr.h"
#include "proto/frame.h"
#include "proto/replay.h"
#include "proto/v2ctl.h"
#include "proto/v2item.h"
#include "proto/v2pkt.h"
#include "proto/v2tok.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* A UDP socket on |ip| (a 127/8 address), port picked by the kernel. */
static inline int v2_socket_on(const char *ip) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  return fd;
}

static inline void v2_sendto(int fd, const kite__addr *to, const void *buf,
                             size_t len) {
  assert_int_equal(sendto(fd, buf, len, 0, &to->sa, kite__addr_len(to)),
                   (ssize_t)len);
}

/* The next datagram on |fd| within |ms|, or -1. */
static inline int v2_recv_raw(int fd, uint8_t *buf, size_t cap, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, ms) <= 0)
    return -1;
  return (int)recv(fd, buf, cap, 0);
}

/* A token for the server at 127.0.0.1:|port| (or |addr| when not NULL). */
static inline void v2_mint(uint8_t token[KITE_TOKEN_BYTES], const uint8_t key[32],
                           uint64_t protocol_id, const char *addr, int port,
                           uint64_t client_id, const char *user,
                           uint64_t now_s, uint32_t ttl_s) {
  char text[64];
  if (!addr) {
    snprintf(text, sizeof(text), "127.0.0.1:%d", port);
    addr = text;
  }
  const char *addrs[] = {addr};
  kite_token_params p = {.protocol_id = protocol_id, .client_id = client_id,
                         .ttl_s = ttl_s, .addrs = addrs, .naddrs = 1,
                         .user_data = user, .user_data_len = user ? strlen(user) : 0,
                         .now_s = now_s};
  assert_int_equal(kite_token_mint(token, key, &p), 0);
}

typedef struct v2peer {
  int fd;
  kite__addr srv;
  uint8_t nonce[8];
  kite__v2tok tok;       /* the public part, read */
  kite__v2keys keys;     /* traffic keys, once accepted */
  uint32_t conv;
  uint16_t mtu, max_unreliable;
  uint64_t pn;           /* the next one we send */
  kite__replay win;      /* the server's numbers */
  kite__kcp_pool *pool;
  kite__kcp *kcp;
  bool answer_challenges; /* PATH_RESPONSE at once (the default) */
  /* What arrived: */
  uint8_t challenge[8];
  int challenges;
  int closes;
  uint8_t close_reason;
  int pongs;             /* unreliable pongs */
  int unreliable;        /* other UNRELIABLE items */
  int shared;            /* datagrams with a KCP and an UNRELIABLE item */
  uint8_t last[2048];    /* the last datagram we sent, as sent */
  size_t last_len;
} v2peer;

static inline void v2_init(v2peer *p, int fd, const kite__addr *srv,
                           const uint8_t token[KITE_TOKEN_BYTES]) {
  memset(p, 0, sizeof(*p));
  p->fd = fd;
  p->srv = *srv;
  randombytes_buf(p->nonce, sizeof(p->nonce));
  assert_int_equal(kite__v2tok_read(token, KITE_TOKEN_BYTES, &p->tok), 0);
  kite__replay_init(&p->win);
  p->answer_challenges = true;
}

/* HELLO v2 and its CHALLENGE's cookie. */
static inline void v2_hello(v2peer *p, uint8_t cookie[16]) {
  memset(cookie, 0, 16);
  kite__v2ctl h = {.type = KITE__CTRL_HELLO};
  memcpy(h.nonce, p->nonce, 8);
  uint8_t buf[KITE__V2CTL_MAX];
  int n = kite__v2ctl_encode(buf, sizeof(buf), &h);
  assert_true(n >= 64);
  v2_sendto(p->fd, &p->srv, buf, (size_t)n);
  uint64_t end = kite__now_us() + 2000000;
  while (kite__now_us() < end) {
    int r = v2_recv_raw(p->fd, buf, sizeof(buf), 100);
    kite__v2ctl ch;
    if (r > 0 && kite__v2ctl_decode(buf, (size_t)r, &ch) == 0 &&
        ch.type == KITE__CTRL_CHALLENGE && !memcmp(ch.nonce, p->nonce, 8)) {
      memcpy(cookie, ch.cookie, 16);
      return;
    }
  }
  fail_msg("no CHALLENGE v2");
}

/* CONNECT v2's 580 bytes. */
static inline int v2_connect_bytes(v2peer *p, const uint8_t cookie[16],
                                   uint8_t out[KITE__V2CTL_MAX]) {
  kite__v2ctl c = {.type = KITE__CTRL_CONNECT, .mtu = 1400, .rcv_wnd = 128,
                   .expire_ts = p->tok.expire_ts,
                   .token_nonce = p->tok.nonce, .sealed = p->tok.sealed};
  memcpy(c.nonce, p->nonce, 8);
  memcpy(c.cookie, cookie, 16);
  int n = kite__v2ctl_encode(out, KITE__V2CTL_MAX, &c);
  assert_int_equal(n, 580);
  return n;
}

/* The reply to a CONNECT: the ACCEPT's or REJECT's bytes, within |ms|;
 * returns its length or -1. */
static inline int v2_reply(v2peer *p, uint8_t *buf, size_t cap, int ms) {
  uint64_t end = kite__now_us() + (uint64_t)ms * 1000;
  while (kite__now_us() < end) {
    int r = v2_recv_raw(p->fd, buf, cap, 50);
    kite__v2ctl c;
    if (r > 0 && kite__v2ctl_decode(buf, (size_t)r, &c) == 0 &&
        (c.type == KITE__CTRL_ACCEPT || c.type == KITE__CTRL_REJECT) &&
        !memcmp(c.nonce, p->nonce, 8))
      return r;
  }
  return -1;
}

/* The REJECT reason the CONNECT got, 0 for an ACCEPT, -1 for nothing. */
static inline int v2_reason(const uint8_t *buf, int n) {
  kite__v2ctl c;
  if (n < 0 || kite__v2ctl_decode(buf, (size_t)n, &c) < 0)
    return -1;
  return c.type == KITE__CTRL_REJECT ? c.reason : 0;
}

static inline void v2_kcp_out(kite__kcp *k, const uint8_t *b, size_t n, void *u);
static const kite__kcp_ops v2_kcp_ops = {v2_kcp_out, NULL};

/* Takes an ACCEPT: keys, conv, the engine. */
static inline void v2_take_accept(v2peer *p, const uint8_t acc[KITE__V2CTL_ACCEPT]) {
  kite__v2accept a;
  assert_int_equal(kite__v2ctl_accept_open(acc, p->tok.s2c_key, &a), 0);
  assert_int_equal(kite__v2ctl_accept_check(&a, 1400), 0);
  p->conv = a.conv;
  p->mtu = a.mtu;
  p->max_unreliable = a.max_unreliable;
  kite__v2_traffic_keys(&p->keys, p->tok.c2s_key, p->tok.s2c_key, false,
                        p->nonce, acc + 16);
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  p->pool = kite__kcp_pool_create(&pc);
  kite__kcp_config kc;
  kite__kcp_config_default(&kc);
  kc.mtu = a.mtu - 31;
  assert_int_equal(kite__kcp_create(&p->kcp, p->conv, &kc, p->pool, &v2_kcp_ops, p), 0);
}

/* The whole handshake; asserts an ACCEPT. */
static inline void v2_handshake(v2peer *p) {
  uint8_t cookie[16] = {0}, buf[KITE__V2CTL_MAX];
  v2_hello(p, cookie);
  int n = v2_connect_bytes(p, cookie, buf);
  v2_sendto(p->fd, &p->srv, buf, (size_t)n);
  uint8_t acc[2048];
  int r = v2_reply(p, acc, sizeof(acc), 2000);
  assert_int_equal(v2_reason(acc, r), 0);
  assert_int_equal(r, KITE__V2CTL_ACCEPT);
  v2_take_accept(p, acc);
}

/* Seals |len| bytes of items as our next datagram into |out|. */
static inline size_t v2_seal(v2peer *p, uint8_t *out, const uint8_t *items,
                             size_t len) {
  int n = kite__v2pkt_seal(out, 2048, p->conv, p->pn++, p->keys.c2s, items, len);
  assert_true(n > 0);
  return (size_t)n;
}

/* Items as our next datagram, sent from |fd| (the peer's own, or another
 * socket standing for a new address); kept in p->last. */
static inline void v2_send_items_from(v2peer *p, int fd, const uint8_t *items,
                                      size_t len) {
  p->last_len = v2_seal(p, p->last, items, len);
  v2_sendto(fd, &p->srv, p->last, p->last_len);
}
static inline void v2_send_items(v2peer *p, const uint8_t *items, size_t len) {
  v2_send_items_from(p, p->fd, items, len);
}

static inline void v2_kcp_out(kite__kcp *k, const uint8_t *b, size_t n, void *u) {
  (void)k;
  v2peer *p = u;
  uint8_t items[2048];
  int m = kite__v2item_put(items, sizeof(items), KITE__V2ITEM_KCP, b, n);
  assert_true(m > 0);
  v2_send_items(p, items, (size_t)m);
}

static inline void v2_send_frame(v2peer *p, uint16_t msg_id, const void *body,
                                 size_t len) {
  uint8_t hdr[KITE__FRAME_HDR];
  kite__frame_header(hdr, msg_id, 0, body, (uint32_t)len, true);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)(uintptr_t)body, len}};
  assert_int_equal(kite__kcp_sendv(p->kcp, iov, len ? 2 : 1), 0);
  kite__kcp_flush(p->kcp, kite__now_ms());
}

/* Opens and reads one datagram from the server: KCP in, a challenge
 * answered (when answer_challenges), CLOSE and pongs noted. false: none
 * within |ms|, or one that did not open (not counted as read). */
static inline bool v2_read_one(v2peer *p, int ms) {
  uint8_t buf[2048], plain[2048];
  int n = v2_recv_raw(p->fd, buf, sizeof(buf), ms);
  if (n < (int)KITE__V2PKT_MIN || kite__ctrl_is_control(buf, (size_t)n))
    return false;
  uint32_t conv;
  uint64_t pn;
  if (kite__v2pkt_peek(buf, (size_t)n, &conv, &pn) < 0 || conv != p->conv ||
      kite__replay_check(&p->win, pn) < 0)
    return false;
  int m = kite__v2pkt_open(plain, buf, (size_t)n, p->keys.s2c);
  if (m < 0 || kite__replay_record(&p->win, pn) < 0)
    return false;
  kite__v2item_rules rules = {.conv = p->conv, .max_unreliable = p->max_unreliable,
                              .from_server = true};
  kite__v2item_scan scan;
  assert_int_equal(kite__v2item_check(plain, (size_t)m, &rules, &scan), 0);
  kite__v2item_iter it;
  kite__v2item_iter_init(&it, plain, scan.end, true);
  kite__v2item item;
  bool kcp = false, lane = false;
  while (kite__v2item_next(&it, &item)) {
    kcp |= item.type == KITE__V2ITEM_KCP;
    lane |= item.type == KITE__V2ITEM_UNRELIABLE;
    if (item.type == KITE__V2ITEM_KCP) {
      kite__kcp_input(p->kcp, item.value, item.len, kite__now_ms());
    } else if (item.type == KITE__V2ITEM_PATH_CHALLENGE) {
      memcpy(p->challenge, item.value, 8);
      p->challenges++;
      if (p->answer_challenges) {
        uint8_t out[16];
        int k = kite__v2item_put_path(out, sizeof(out),
                                      KITE__V2ITEM_PATH_RESPONSE, item.value);
        v2_send_items(p, out, (size_t)k);
      }
    } else if (item.type == KITE__V2ITEM_CLOSE) {
      p->closes++;
      p->close_reason = item.reason;
    } else if (item.type == KITE__V2ITEM_UNRELIABLE &&
               (item.flags & KITE__V2U_F_PONG)) {
      p->pongs++;
    } else if (item.type == KITE__V2ITEM_UNRELIABLE) {
      p->unreliable++;
    }
  }
  p->shared += kcp && lane;
  return true;
}

/* Reads for |ms| at most, flushing the engine, until |frames| frames of
 * |msg_id| with |body| arrived (consumed). Returns how many did. */
static inline int v2_expect_frames(v2peer *p, uint16_t msg_id, const void *body,
                                   size_t len, int frames, int ms) {
  int got = 0;
  uint64_t end = kite__now_us() + (uint64_t)ms * 1000;
  while (got < frames && kite__now_us() < end) {
    v2_read_one(p, 10);
    kite__kcp_flush(p->kcp, kite__now_ms());
    for (;;) {
      uint8_t raw[KITE__FRAME_HDR];
      if (kite__kcp_peek(p->kcp, raw, sizeof(raw)) < sizeof(raw))
        break;
      kite__frame_hdr h;
      kite__frame_hdr_decode(raw, &h);
      if (kite__kcp_readable(p->kcp) < KITE__FRAME_HDR + (size_t)h.len)
        break;
      uint8_t frame[KITE__FRAME_HDR + 256];
      if (h.len <= 256) {
        kite__kcp_peek(p->kcp, frame, KITE__FRAME_HDR + h.len);
        if (h.msg_id == msg_id && h.len == len &&
            !memcmp(frame + KITE__FRAME_HDR, body, len))
          got++;
      }
      kite__kcp_consume(p->kcp, KITE__FRAME_HDR + h.len);
    }
  }
  return got;
}

/* Reads and flushes for |ms|: acks go out, challenges are answered. */
static inline void v2_pump(v2peer *p, int ms) {
  uint64_t end = kite__now_us() + (uint64_t)ms * 1000;
  while (kite__now_us() < end) {
    v2_read_one(p, 10);
    if (p->kcp)
      kite__kcp_flush(p->kcp, kite__now_ms());
  }
}

/* A server for the tests: 2 shards on 127.0.0.1, port 0, the test key
 * and protocol id, |versions| (0: the default). */
static const uint8_t v2_test_key[32] = {
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a,
    0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25,
    0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f};
#define V2_TEST_PROTOCOL 0x4B495445ULL

static inline void v2_test_config(kite_server_config *cfg, unsigned versions) {
  kite_server_config_init(cfg);
  cfg->udp_addr = "127.0.0.1:0";
  cfg->threads = 2;
  cfg->log_level = KITE_LOG_ERROR;
  cfg->versions = versions;
  if (versions != KITE_VERSION_1) {
    cfg->token_key_set = true;
    memcpy(cfg->token_key, v2_test_key, 32);
  }
  cfg->protocol_id = V2_TEST_PROTOCOL;
}

static inline kite__addr v2_server_addr(kite_server *srv) {
  char text[64];
  kite__addr a;
  snprintf(text, sizeof(text), "127.0.0.1:%d", kite_server_udp_port(srv));
  assert_int_equal(kite__addr_parse(&a, text), 0);
  return a;
}

static inline kite_server_stats v2_stats(kite_server *srv) {
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  return st;
}

/* Waits (5 s at most) for |cond| over the server's counters |st|. */
#define V2_EVENTUALLY(srv, cond)                                             \
  do {                                                                       \
    for (int i_ = 0; i_ < 500; i_++) {                                       \
      st = v2_stats(srv);                                                    \
      if (cond)                                                              \
        break;                                                               \
      usleep(10000);                                                         \
    }                                                                        \
    st = v2_stats(srv);                                                      \
    assert_true(cond);                                                       \
  } while (0)

static inline void v2_close(v2peer *p) {
  if (p->kcp)
    kite__kcp_destroy(p->kcp);
  if (p->pool)
    kite__kcp_pool_destroy(p->pool);
  p->kcp = NULL;
  p->pool = NULL;
  kite__v2tok_wipe(&p->tok);
}

#endif
