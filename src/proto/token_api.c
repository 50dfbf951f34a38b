/*
 * The public side of connect tokens (include/kite/token.h): parameters a
 * backend writes as it thinks of them (a time to live, server addresses
 * as text) turned into the contract's minting input (proto/v2tok.h).
 */
#include "kite/token.h"

#include "kite/error.h"
#include "net/addr.h"
#include "proto/v2tok.h"

#include <ctype.h>
#include <stdbool.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

/* 0.0.0.0 or ::: a server's bind address, never one a player can reach. */
static bool unspecified(const kite__addr *a) {
  static const uint8_t zero[16];
  if (a->sa.sa_family == AF_INET)
    return a->v4.sin_addr.s_addr == 0;
  return memcmp(&a->v6.sin6_addr, zero, 16) == 0;
}

int kite_token_mint(uint8_t out[KITE_TOKEN_BYTES],
                    const uint8_t key[KITE_TOKEN_KEY_BYTES],
                    const kite_token_params *p) {
  if (!out || !key || !p || !p->addrs)
    return KITE_EINVAL;
  if (p->ttl_s < 1 || p->ttl_s > KITE_TOKEN_TTL_MAX || p->naddrs < 1 ||
      p->naddrs > KITE_TOKEN_ADDRS_MAX || p->user_data_len > KITE_TOKEN_USER_DATA_MAX ||
      (p->user_data_len && !p->user_data))
    return KITE_EINVAL;
  kite__v2tok_params tp;
  memset(&tp, 0, sizeof(tp));
  tp.protocol_id = p->protocol_id;
  tp.client_id = p->client_id;
  tp.create_ts = p->now_s ? p->now_s : (uint64_t)time(NULL);
  tp.expire_ts = tp.create_ts + p->ttl_s;
  tp.timeout_s = p->timeout_s;
  tp.addr_count = (uint8_t)p->naddrs;
  for (size_t i = 0; i < p->naddrs; i++) {
    kite__addr a;
    if (!p->addrs[i] || kite__addr_parse(&a, p->addrs[i]) < 0 ||
        kite__addr_port(&a) == 0 || unspecified(&a) ||
        kite__v2addr_from_sockaddr(&a.sa, &tp.addrs[i]) < 0)
      return KITE_EINVAL;
  }
  tp.user_data = p->user_data;
  tp.user_len = p->user_data_len;
  return kite__v2tok_mint(out, key, &tp);
}

int kite_token_key_new(uint8_t key[KITE_TOKEN_KEY_BYTES]) {
  if (!key || kite__v2_init() < 0)
    return KITE_ESYS;
  randombytes_buf(key, KITE_TOKEN_KEY_BYTES);
  return 0;
}

int kite_token_key_parse(uint8_t key[KITE_TOKEN_KEY_BYTES], const char *hex) {
  if (!key)
    return KITE_EINVAL;
  memset(key, 0, KITE_TOKEN_KEY_BYTES);
  if (!hex)
    return KITE_EINVAL;
  while (isspace((unsigned char)*hex))
    hex++;
  size_t n = strlen(hex);
  while (n && isspace((unsigned char)hex[n - 1]))
    n--;
  size_t got = 0;
  if (n != 2 * KITE_TOKEN_KEY_BYTES ||
      sodium_hex2bin(key, KITE_TOKEN_KEY_BYTES, hex, n, NULL, &got, NULL) != 0 ||
      got != KITE_TOKEN_KEY_BYTES) {
    sodium_memzero(key, KITE_TOKEN_KEY_BYTES);
    return KITE_EINVAL;
  }
  return 0;
}
