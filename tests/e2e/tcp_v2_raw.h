/*
 * A raw version-2 TCP peer for end-to-end tests (PROTOCOL-v2.md section
 * 8), built from src/proto's codecs: a token minted with kite_token_mint,
 * OPEN v2 written by hand, OPENED opened, then records sealed and read,
 * so a test can send any byte (a flipped bit, a bad len, a frame split
 * across records) and read every record the server sends. Its byte
 * stream goes through |wr| and |rd|: raw TCP by default, or a WebSocket
 * (test_v2_tcp_ws.c) that sets its own.
 */
#ifndef KITE_TESTS_E2E_TCP_V2_RAW_H
#define KITE_TESTS_E2E_TCP_V2_RAW_H

#include "kite/token.h"
#include "proto/v2ctl.h"
#include "proto/v2pkt.h"
#include "proto/v2rec.h"
#include "proto/v2tok.h"
#include "tcp_raw.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define V2_PROTOCOL_ID UINT64_C(0x1122334455667788)
#define V2_PT_MAX (1u << 17) /* plaintext a peer buffers: frames to 128 KiB */

/* The game's private key in these tests: seq(00, 32). */
static inline void v2_test_key(uint8_t key[KITE_TOKEN_KEY_BYTES]) {
  for (int i = 0; i < KITE_TOKEN_KEY_BYTES; i++)
    key[i] = (uint8_t)i;
}

typedef struct v2peer v2peer;
struct v2peer {
  int fd;
  bool (*wr)(v2peer *p, const void *b, size_t n);
  bool (*rd)(v2peer *p, void *b, size_t n);
  void *io; /* |wr| and |rd|'s own state */
  uint8_t token[KITE_TOKEN_BYTES];
  kite__v2tok tok; /* the public part, read */
  kite__v2accept acc;
  kite__v2keys keys;
  uint64_t rn; /* the next record number we send */
  kite__v2rec_reader rd_rec;
  uint8_t *pt; /* plaintext read, not yet taken as frames */
  size_t pt_have;
};

static bool v2_tcp_wr(v2peer *p, const void *b, size_t n) {
  return tcp_raw_write(p->fd, b, n);
}
static bool v2_tcp_rd(v2peer *p, void *b, size_t n) {
  return tcp_raw_read(p->fd, b, n);
}

/* A token for 127.0.0.1:|port| (or |addr| when not NULL), |user| as its
 * user_data, under |key|, created |age_s| seconds ago, living |ttl_s|. */
static inline int v2_mint(uint8_t out[KITE_TOKEN_BYTES], const uint8_t *key,
                          const char *addr, int port, uint64_t client_id,
                          const char *user, int age_s, uint32_t ttl_s) {
  char a[64];
  if (addr)
    snprintf(a, sizeof(a), "%s", addr);
  else
    snprintf(a, sizeof(a), "127.0.0.1:%d", port);
  const char *addrs[] = {a};
  kite_token_params tp = {.protocol_id = V2_PROTOCOL_ID,
                          .client_id = client_id,
                          .ttl_s = ttl_s,
                          .addrs = addrs,
                          .naddrs = 1,
                          .user_data = user,
                          .user_data_len = user ? strlen(user) : 0,
                          .now_s = (uint64_t)time(NULL) - (uint64_t)age_s};
  return kite_token_mint(out, key, &tp);
}

/* |p| set up around a connected |fd| and a minted token (raw TCP I/O). */
static inline void v2peer_init(v2peer *p, int fd, const uint8_t *token) {
  memset(p, 0, sizeof(*p));
  p->fd = fd;
  p->wr = v2_tcp_wr;
  p->rd = v2_tcp_rd;
  memcpy(p->token, token, KITE_TOKEN_BYTES);
  kite__v2tok_read(token, KITE_TOKEN_BYTES, &p->tok);
  p->pt = malloc(V2_PT_MAX);
}

static inline void v2peer_free(v2peer *p) {
  kite__v2rec_reader_free(&p->rd_rec);
  free(p->pt);
  if (p->fd >= 0)
    close(p->fd);
  p->fd = -1;
}

/* OPEN v2's 552 bytes for the peer's token (|version| in its header). */
static inline int v2_open_bytes(const v2peer *p, uint8_t out[KITE__V2CTL_MAX]) {
  kite__v2ctl c = {.type = KITE__CTRL_OPEN,
                   .expire_ts = p->tok.expire_ts,
                   .token_nonce = p->tok.nonce,
                   .sealed = p->tok.sealed};
  return kite__v2ctl_encode(out, KITE__V2CTL_MAX, &c);
}

/* The server's answer: 1 OPENED (opened and checked: keys set), 0 a
 * REJECT (*reason set, its header's version in *version), -1 anything
 * else (EOF included). */
static inline int v2peer_answer(v2peer *p, uint8_t *reason, uint8_t *version) {
  uint8_t b[KITE__V2CTL_OPENED];
  if (!p->rd(p, b, 17))
    return -1;
  if (b[4] == KITE__CTRL_REJECT) {
    *reason = b[16];
    *version = b[5];
    static const uint8_t zero[8];
    return memcmp(b + 8, zero, 8) == 0 ? 0 : -1;
  }
  if (b[4] != KITE__CTRL_OPENED || !p->rd(p, b + 17, sizeof(b) - 17))
    return -1;
  if (kite__v2ctl_opened_open(b, p->tok.s2c_key, &p->acc) != 0)
    return -1;
  kite__v2_traffic_keys(&p->keys, p->tok.c2s_key, p->tok.s2c_key, true, NULL,
                        b + 8);
  kite__v2rec_reader_init(&p->rd_rec, p->keys.s2c);
  return 1;
}

/* OPEN sent, OPENED read: true when it came and opened. */
static inline bool v2peer_open(v2peer *p) {
  uint8_t b[KITE__V2CTL_MAX], r, v;
  int n = v2_open_bytes(p, b);
  return n == 552 && p->wr(p, b, (size_t)n) && v2peer_answer(p, &r, &v) == 1;
}

/* One record sealed around |len| plaintext bytes (|flip|: a bit of its
 * ciphertext flipped), written. */
static inline bool v2peer_record(v2peer *p, const void *pt, size_t len,
                                 bool flip) {
  uint8_t *b = malloc(KITE__V2REC_OVERHEAD + len);
  int n = kite__v2rec_seal(b, KITE__V2REC_OVERHEAD + len, p->rn++,
                           p->keys.c2s, pt, len);
  if (flip)
    b[KITE__V2REC_HDR + len / 2] ^= 0x10;
  bool ok = n > 0 && p->wr(p, b, (size_t)n);
  free(b);
  return ok;
}

/* One frame, in records of at most |per| plaintext bytes (0: 16384). */
static inline bool v2peer_frame(v2peer *p, uint16_t msg_id, uint16_t flags,
                                const void *body, uint32_t len, size_t per) {
  size_t total = KITE__FRAME_HDR + len;
  uint8_t *f = malloc(total);
  tcp_raw_frame(f, msg_id, flags, body, len, true);
  if (!per || per > KITE__V2REC_MAX)
    per = KITE__V2REC_MAX;
  bool ok = true;
  for (size_t at = 0; ok && at < total; at += per)
    ok = v2peer_record(p, f + at, total - at < per ? total - at : per, false);
  free(f);
  return ok;
}

/* The next record's plaintext appended to p->pt. false: EOF, error,
 * deadline, or a record that does not verify. */
static inline bool v2peer_read_record(v2peer *p) {
  uint8_t *b = malloc(KITE__V2REC_OVERHEAD + KITE__V2REC_MAX);
  bool ok = p->rd(p, b, 2);
  size_t len = ok ? (size_t)(b[0] | b[1] << 8) : 0;
  ok = ok && len >= 1 && len <= KITE__V2REC_MAX &&
       p->rd(p, b + 2, len + KITE__V2_TAG);
  const uint8_t *pt = NULL;
  size_t pl = 0;
  ok = ok && kite__v2rec_read(&p->rd_rec, b, len + KITE__V2REC_OVERHEAD, &pt,
                              &pl) == (ptrdiff_t)(len + KITE__V2REC_OVERHEAD) &&
       pt && p->pt_have + pl <= V2_PT_MAX;
  if (ok) {
    memcpy(p->pt + p->pt_have, pt, pl);
    p->pt_have += pl;
  }
  free(b);
  return ok;
}

/* The next frame from the server: header in |h|, body (up to |cap|) at
 * |body|. */
static inline bool v2peer_read_frame(v2peer *p, kite__frame_hdr *h,
                                     void *body, size_t cap) {
  while (p->pt_have < KITE__FRAME_HDR)
    if (!v2peer_read_record(p))
      return false;
  kite__frame_hdr_decode(p->pt, h);
  if (h->len > cap || h->len > V2_PT_MAX - KITE__FRAME_HDR)
    return false;
  while (p->pt_have < KITE__FRAME_HDR + h->len)
    if (!v2peer_read_record(p))
      return false;
  memcpy(body, p->pt + KITE__FRAME_HDR, h->len);
  size_t used = KITE__FRAME_HDR + h->len;
  memmove(p->pt, p->pt + used, p->pt_have - used);
  p->pt_have -= used;
  return true;
}

/* 0: the CLOSE frame with |reason| came, then an orderly EOF. */
static inline int v2peer_expect_close(v2peer *p, uint8_t reason) {
  kite__frame_hdr h;
  uint8_t body[64];
  if (!v2peer_read_frame(p, &h, body, sizeof(body)) ||
      h.msg_id != KITE__MSG_CLOSE_NOTICE || h.len != 1 || body[0] != reason)
    return -1;
  return tcp_raw_expect_eof(p->fd);
}

#endif
