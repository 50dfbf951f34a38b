/*
 * A scripted raw version-2 server for tests (PROTOCOL-v2.md), built from
 * the src/proto codecs only: no kite server inside, so a test can answer,
 * forge, replay and alter at will. Single-threaded: the test drives it
 * between its client's polls. Static inline: include it once per program.
 *
 * UDP (v2us_*): one socket on a loopback address, port 0; HELLO v2 gets a
 * CHALLENGE (fixed cookie), CONNECT v2 the token checked (steps 4 to 6
 * with the real clock) then ACCEPT (or the REJECT the script asks for);
 * one session: protected datagrams opened, replay-checked and read item
 * by item, KCP frames echoed (pings answered with pongs).
 *
 * TCP (v2ts_*, e2e/v2_fake_tcp.h, included at the end): a listener; one
 * connection: OPEN v2 read and checked, OPENED v2 (or REJECT, or a forged
 * OPENED), then records both ways, frames echoed.
 *
 * Every wait is bounded (a few seconds of real time); an expectation not
 * met fails the test on its own thread (cmocka asserts).
 */
#ifndef KITE_TEST_V2_FAKE_SERVER_H
#define KITE_TEST_V2_FAKE_SERVER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kcp/kcp.h"
#include "kite/token.h"
#include "net/addr.h"
#include "proto/frame.h"
#include "proto/replay.h"
#include "proto/v2ctl.h"
#include "proto/v2item.h"
#include "proto/v2pkt.h"
#include "proto/v2rec.h"
#include "proto/v2tok.h"

#define V2FS_FRAMES 64
#define V2FS_BODY 64

static const uint8_t V2FS_COOKIE[16] = {0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5,
                                        0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB,
                                        0xCC, 0xCD, 0xCE, 0xCF};

/* What the server's session received: frames and items. */
typedef struct v2fs_seen {
  int nframes;
  kite__frame_hdr h[V2FS_FRAMES];
  uint8_t body[V2FS_FRAMES][V2FS_BODY];
  int path_responses;
  uint8_t path_data[8];
  int closes;        /* CLOSE items (UDP) or CLOSE frames (TCP) */
  uint8_t close_reason;
  int drops;         /* datagrams or records that did not open */
  int unreliable;    /* UNRELIABLE items (UDP) */
  uint8_t unreliable_flags;
  uint64_t last_pn;  /* of the client's last datagram that opened */
} v2fs_seen;

static inline bool v2fs_readable(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, ms) == 1;
}

static inline uint64_t v2fs_unix_now(void) { return (uint64_t)time(NULL); }

/* A token for |addrs| (|n| of them) under |key|: ttl_s seconds. */
static inline void v2fs_mint(uint8_t out[KITE_TOKEN_BYTES],
                             const uint8_t key[32], uint64_t protocol_id,
                             const char *const *addrs, size_t n,
                             uint32_t ttl_s) {
  kite_token_params p = {.protocol_id = protocol_id,
                         .client_id = 42,
                         .ttl_s = ttl_s,
                         .addrs = addrs,
                         .naddrs = n,
                         .user_data = "player=alice",
                         .user_data_len = 12};
  assert_int_equal(kite_token_mint(out, key, &p), 0);
}

static inline int v2fs_echo_frame(void *user, const kite__frame_hdr *h,
                                  const uint8_t *body);

/* ---- UDP ---- */

typedef struct v2us {
  int fd;
  char addr[64];
  kite__addr local;
  kite__addr client;
  uint8_t key[32];
  uint64_t protocol_id;
  /* the script */
  bool silent;          /* read and count, never answer */
  uint8_t reject;       /* answer CONNECT with this REJECT (0: accept) */
  bool bad_accept;      /* seal ACCEPT's body under a wrong key (once) */
  bool no_echo;         /* keep frames, answer nothing (pings included) */
  bool hold_accept;     /* keep the ACCEPT in |held|, send it when told */
  uint8_t held[KITE__V2CTL_ACCEPT];
  uint16_t mtu;         /* offered: the smaller is taken (1400) */
  uint32_t idle_ms, max_frame;
  /* counts */
  int hellos, connects, rejects_sent, accepts_sent, ctrl_other;
  /* the session, after ACCEPT */
  bool open;
  uint32_t conv;
  uint8_t client_nonce[8], accept_nonce[8];
  kite__v2tok tok;
  kite__v2keys keys;
  kite__v2pn pn;
  kite__replay win;
  uint16_t sess_mtu, max_unreliable;
  kite__kcp_pool *pool;
  kite__kcp *kcp;
  kite__frame_reader reader;
  uint32_t now;   /* the KCP clock: the test's */
  v2fs_seen seen;
  uint8_t last_out[2048]; /* the last protected datagram sent */
  size_t last_out_len;
} v2us;

static inline v2us *v2us_new(const char *ip, const uint8_t key[32],
                             uint64_t protocol_id) {
  v2us *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  assert_true(s->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(s->fd, (struct sockaddr *)&a, &len);
  memcpy(&s->local.v4, &a, sizeof(a));
  snprintf(s->addr, sizeof(s->addr), "%s:%u", ip, ntohs(a.sin_port));
  memcpy(s->key, key, 32);
  s->protocol_id = protocol_id;
  s->mtu = 1400;
  s->idle_ms = 10000;
  s->max_frame = 65536;
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  s->pool = kite__kcp_pool_create(&pc);
  assert_non_null(s->pool);
  return s;
}

static inline void v2us_free(v2us *s) {
  if (s->kcp)
    kite__kcp_destroy(s->kcp);
  kite__frame_reader_free(&s->reader);
  kite__kcp_pool_destroy(s->pool);
  kite__v2tok_wipe(&s->tok);
  close(s->fd);
  free(s);
}

static inline void v2us_send_raw(v2us *s, const void *p, size_t len) {
  assert_int_equal(sendto(s->fd, p, len, 0, &s->client.sa,
                          kite__addr_len(&s->client)),
                   (ssize_t)len);
}

/* Seals |len| bytes of items as the session's next datagram and sends it
 * (kept in last_out, for replays). */
static inline void v2us_send_items(v2us *s, const uint8_t *items, size_t len) {
  uint64_t pn;
  assert_true(kite__v2pn_take(&s->pn, &pn) >= 0);
  int n = kite__v2pkt_seal(s->last_out, sizeof(s->last_out), s->conv, pn,
                           s->keys.s2c, items, len);
  assert_true(n > 0);
  s->last_out_len = (size_t)n;
  v2us_send_raw(s, s->last_out, (size_t)n);
}

static inline void v2us_kcp_output(kite__kcp *kcp, const uint8_t *buf,
                                   size_t len, void *user) {
  (void)kcp;
  v2us *s = user;
  uint8_t items[2048];
  int n = kite__v2item_put(items, sizeof(items), KITE__V2ITEM_KCP, buf, len);
  assert_true(n > 0);
  v2us_send_items(s, items, (size_t)n);
}
static const kite__kcp_ops v2us_ops = {v2us_kcp_output, NULL};

static inline void v2us_send_ctrl(v2us *s, const kite__v2ctl *k) {
  uint8_t buf[KITE__V2CTL_MAX];
  int n = kite__v2ctl_encode(buf, sizeof(buf), k);
  assert_true(n > 0);
  v2us_send_raw(s, buf, (size_t)n);
}

static inline void v2us_on_connect(v2us *s, const uint8_t *p, size_t len) {
  kite__v2ctl k;
  assert_int_equal(kite__v2ctl_decode(p, len, &k), 0);
  s->connects++;
  if (s->open) { /* a resent CONNECT: the same session's ACCEPT again */
    kite__v2accept a = {.conv = s->conv, .mtu = s->sess_mtu, .rcv_wnd = 128,
                        .idle_timeout_ms = s->idle_ms,
                        .max_frame = s->max_frame,
                        .max_unreliable = s->max_unreliable};
    uint8_t acc[KITE__V2CTL_ACCEPT];
    kite__v2ctl_accept_seal(acc, s->client_nonce, s->accept_nonce, &a,
                            s->tok.s2c_key);
    if (!s->hold_accept)
      v2us_send_raw(s, acc, sizeof(acc));
    return;
  }
  assert_memory_equal(k.cookie, V2FS_COOKIE, 16);
  kite__v2ctl r;
  memset(&r, 0, sizeof(r));
  r.type = KITE__CTRL_REJECT;
  memcpy(r.nonce, k.nonce, 8);
  kite__v2addr local;
  kite__v2addr_from_sockaddr(&s->local.sa, &local);
  kite__v2tok_server srv = {.protocol_id = s->protocol_id, .key = s->key};
  kite__v2tok priv;
  int rc = kite__v2tok_verify(&srv, v2fs_unix_now(), &local, k.expire_ts,
                              k.token_nonce, k.sealed, &priv);
  if (rc < 0 || s->reject) {
    r.reason = rc < 0 ? kite__v2tok_reject_reason(rc) : s->reject;
    v2us_send_ctrl(s, &r);
    s->rejects_sent++;
    return;
  }
  s->tok = priv;
  memcpy(s->client_nonce, k.nonce, 8);
  randombytes_buf(s->accept_nonce, 8);
  s->sess_mtu = k.mtu < s->mtu ? k.mtu : s->mtu;
  s->max_unreliable = kite__v2_max_unreliable(s->sess_mtu, s->max_frame);
  s->conv = 0x12345601;
  kite__v2accept a = {.conv = s->conv, .mtu = s->sess_mtu, .rcv_wnd = 128,
                      .idle_timeout_ms = s->idle_ms,
                      .max_frame = s->max_frame,
                      .max_unreliable = s->max_unreliable};
  uint8_t acc[KITE__V2CTL_ACCEPT];
  uint8_t wrong[32];
  memset(wrong, 0x5A, sizeof(wrong));
  kite__v2ctl_accept_seal(acc, k.nonce, s->accept_nonce, &a,
                          s->bad_accept ? wrong : priv.s2c_key);
  if (s->hold_accept)
    memcpy(s->held, acc, sizeof(acc));
  else
    v2us_send_raw(s, acc, sizeof(acc));
  s->accepts_sent++;
  if (s->bad_accept) {
    s->bad_accept = false; /* the next CONNECT gets the real one */
    return;
  }
  kite__v2_traffic_keys(&s->keys, priv.c2s_key, priv.s2c_key, false, k.nonce,
                        s->accept_nonce);
  kite__replay_init(&s->win);
  s->pn.next = 0;
  kite__kcp_config kc;
  kite__kcp_config_default(&kc);
  kc.mtu = s->sess_mtu - KITE__V2PKT_MIN;
  assert_int_equal(kite__kcp_create(&s->kcp, s->conv, &kc, s->pool,
                                    &v2us_ops, s),
                   0);
  kite__frame_reader_init(&s->reader, 1u << 20);
  s->open = true;
}

static inline void v2us_on_datagram(v2us *s, const uint8_t *p, size_t len) {
  uint32_t conv;
  uint64_t pn;
  uint8_t items[2048];
  if (!s->open || kite__v2pkt_peek(p, len, &conv, &pn) < 0 ||
      conv != s->conv || kite__replay_check(&s->win, pn) < 0) {
    s->seen.drops++;
    return;
  }
  int n = kite__v2pkt_open(items, p, len, s->keys.c2s);
  if (n < 0 || kite__replay_record(&s->win, pn) < 0) {
    s->seen.drops++;
    return;
  }
  s->seen.last_pn = pn;
  kite__v2item_rules rules = {.conv = s->conv,
                              .max_unreliable = s->max_unreliable,
                              .from_server = false};
  kite__v2item_scan scan;
  assert_int_equal(kite__v2item_check(items, (size_t)n, &rules, &scan), 0);
  kite__v2item_iter it;
  kite__v2item item;
  kite__v2item_iter_init(&it, items, scan.end, false);
  while (kite__v2item_next(&it, &item)) {
    switch (item.type) {
    case KITE__V2ITEM_KCP:
      assert_int_equal(kite__kcp_input(s->kcp, item.value, item.len, s->now),
                       0);
      break;
    case KITE__V2ITEM_UNRELIABLE:
      s->seen.unreliable++;
      s->seen.unreliable_flags = item.flags;
      break;
    case KITE__V2ITEM_PATH_RESPONSE:
      s->seen.path_responses++;
      memcpy(s->seen.path_data, item.value, 8);
      break;
    case KITE__V2ITEM_CLOSE:
      s->seen.closes++;
      s->seen.close_reason = item.reason;
      break;
    }
  }
}

/* Reads every datagram waiting (up to 1 s for at least |want|), answers
 * the handshake, then reads and echoes the session's frames. Returns the
 * datagrams read. */
static inline int v2us_pump(v2us *s, int want) {
  int got = 0;
  uint8_t buf[2048];
  for (;;) {
    if (got < want && !v2fs_readable(s->fd, 1000))
      break;
    kite__addr from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(s->fd, buf, sizeof(buf), 0, &from.sa, &fl);
    if (n < 0)
      break;
    got++;
    if (s->silent)
      continue;
    if (kite__ctrl_is_control(buf, (size_t)n)) {
      s->client = from;
      if (n > 5 && buf[4] == KITE__CTRL_HELLO && buf[5] == 2) {
        kite__v2ctl k, c;
        assert_int_equal(kite__v2ctl_decode(buf, (size_t)n, &k), 0);
        s->hellos++;
        memset(&c, 0, sizeof(c));
        c.type = KITE__CTRL_CHALLENGE;
        memcpy(c.nonce, k.nonce, 8);
        memcpy(c.cookie, V2FS_COOKIE, 16);
        v2us_send_ctrl(s, &c);
      } else if (n > 5 && buf[4] == KITE__CTRL_CONNECT && buf[5] == 2) {
        assert_int_equal(n, 580);
        v2us_on_connect(s, buf, (size_t)n);
      } else {
        s->ctrl_other++;
      }
      continue;
    }
    v2us_on_datagram(s, buf, (size_t)n);
  }
  if (s->open && !s->silent) {
    uint8_t tmp[8192];
    size_t avail;
    while ((avail = kite__kcp_readable(s->kcp)) > 0) {
      size_t k = kite__kcp_peek(s->kcp, tmp,
                                avail < sizeof(tmp) ? avail : sizeof(tmp));
      ptrdiff_t used = kite__frame_reader_feed(&s->reader, tmp, k,
                                               v2fs_echo_frame, s, NULL);
      assert_true(used >= 0);
      kite__kcp_consume(s->kcp, (size_t)used);
    }
    kite__kcp_flush(s->kcp, s->now);
  }
  return got;
}

/* One item of |type| with |len| bytes of |value|, as its own datagram. */
static inline void v2us_send_item(v2us *s, uint8_t type, const void *value,
                                  size_t len) {
  uint8_t items[2048];
  int n = kite__v2item_put(items, sizeof(items), type, value, len);
  assert_true(n > 0);
  v2us_send_items(s, items, (size_t)n);
}

/* ---- shared ---- */

static inline int v2fs_echo_frame(void *user, const kite__frame_hdr *h,
                                  const uint8_t *body) {
  v2us *s = user;
  v2fs_seen *e = &s->seen;
  if (e->nframes < V2FS_FRAMES) {
    e->h[e->nframes] = *h;
    memcpy(e->body[e->nframes], body, h->len < V2FS_BODY ? h->len : V2FS_BODY);
    e->nframes++;
  }
  if (s->no_echo || (h->msg_id == KITE__MSG_PING &&
                     (h->flags & KITE__FRAME_F_PONG)))
    return 0;
  uint8_t hdr[KITE__FRAME_HDR];
  uint16_t flags = h->msg_id == KITE__MSG_PING ? KITE__FRAME_F_PONG : 0;
  kite__frame_header(hdr, h->msg_id, flags, body, h->len, false);
  struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)body, h->len}};
  assert_int_equal(kite__kcp_sendv(s->kcp, iov, h->len ? 2 : 1), 0);
  return 0;
}

/* The TCP half (v2ts_*), in a file of its own. */
#include "e2e/v2_fake_tcp.h"

#endif
