/*
 * The inputs of PROTOCOL-v2.md section 11, shared by the v2 tests:
 * private key seq(00, 32), protocol_id 0x1122334455667788, create_ts
 * 1700000000, expire_ts 1700000030, token_nonce seq(40, 24), client_id 42,
 * timeout_s 10, one address 127.0.0.1:7001, keys seq(60, 32) (c2s) and
 * seq(80, 32) (s2c), user_data "player=alice", client_nonce seq(01, 8),
 * accept_nonce seq(a0, 8) (TCP: seq(b0, 8)).
 */
#ifndef KITE_TEST_V2_VECTORS_H
#define KITE_TEST_V2_VECTORS_H

#include <stdint.h>
#include <string.h>

#include "proto/v2tok.h"

#define VEC_PROTOCOL_ID UINT64_C(0x1122334455667788)
#define VEC_CREATE_TS UINT64_C(1700000000)
#define VEC_EXPIRE_TS UINT64_C(1700000030)

/* seq(a, n): the n bytes a, a+1, ... */
static inline void vec_seq(uint8_t *out, uint8_t a, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = (uint8_t)(a + i);
}

static inline kite__v2addr vec_addr(void) {
  kite__v2addr a;
  memset(&a, 0, sizeof(a));
  a.type = KITE__V2ADDR_IPV4;
  a.port = 7001;
  a.addr[0] = 127;
  a.addr[3] = 1;
  return a;
}

static inline kite__v2tok_params vec_params(void) {
  kite__v2tok_params p;
  memset(&p, 0, sizeof(p));
  p.protocol_id = VEC_PROTOCOL_ID;
  p.client_id = 42;
  p.create_ts = VEC_CREATE_TS;
  p.expire_ts = VEC_EXPIRE_TS;
  p.timeout_s = 10;
  p.addr_count = 1;
  p.addrs[0] = vec_addr();
  p.user_data = (const uint8_t *)"player=alice";
  p.user_len = 12;
  return p;
}

/* The section 11 token (public part) into |out|; its private key into
 * |key| when not NULL. */
static inline int vec_token(uint8_t out[KITE__V2TOK_PUBLIC],
                            uint8_t key[KITE__V2_KEY]) {
  uint8_t pk[32], nonce[24], c2s[32], s2c[32];
  vec_seq(pk, 0x00, 32);
  vec_seq(nonce, 0x40, 24);
  vec_seq(c2s, 0x60, 32);
  vec_seq(s2c, 0x80, 32);
  if (key != NULL)
    memcpy(key, pk, 32);
  kite__v2tok_params p = vec_params();
  return kite__v2tok_mint_with(out, pk, &p, nonce, c2s, s2c);
}

#endif
