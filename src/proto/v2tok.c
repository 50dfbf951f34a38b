#include "proto/v2tok.h"

#include "base/le.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "kite/error.h"

static const uint8_t magic[4] = {'K', 'T', 'O', 'K'};
static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

static bool all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

int kite__v2addr_from_sockaddr(const struct sockaddr *sa, kite__v2addr *out) {
  memset(out, 0, sizeof(*out));
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    out->type = KITE__V2ADDR_IPV4;
    out->port = ntohs(a->sin_port);
    memcpy(out->addr, &a->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    const uint8_t *b = (const uint8_t *)&a->sin6_addr;
    out->port = ntohs(a->sin6_port);
    if (memcmp(b, v4mapped, 12) == 0) {
      out->type = KITE__V2ADDR_IPV4;
      memcpy(out->addr, b + 12, 4);
    } else {
      out->type = KITE__V2ADDR_IPV6;
      memcpy(out->addr, b, 16);
    }
    return 0;
  }
  return KITE_EINVAL;
}

int kite__v2addr_to_sockaddr(const kite__v2addr *a,
                             struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof(*out));
  if (a->type == KITE__V2ADDR_IPV4) {
    struct sockaddr_in *s = (struct sockaddr_in *)out;
    s->sin_family = AF_INET;
    s->sin_port = htons(a->port);
    memcpy(&s->sin_addr, a->addr, 4);
    *len = sizeof(*s);
    return 0;
  }
  if (a->type == KITE__V2ADDR_IPV6) {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(a->port);
    memcpy(&s->sin6_addr, a->addr, 16);
    *len = sizeof(*s);
    return 0;
  }
  *len = 0;
  return KITE_EINVAL;
}

bool kite__v2addr_equal(const kite__v2addr *a, const kite__v2addr *b) {
  return a->type == b->type && a->port == b->port &&
         memcmp(a->addr, b->addr, 16) == 0;
}

/* A used entry is well formed: type 1 (12 zero bytes after the address)
 * or 2 (not IPv4-mapped). */
static bool addr_ok(const kite__v2addr *a) {
  if (a->type == KITE__V2ADDR_IPV4)
    return all_zero(a->addr + 4, 12);
  if (a->type == KITE__V2ADDR_IPV6)
    return memcmp(a->addr, v4mapped, 12) != 0;
  return false;
}

static uint8_t *put_list(uint8_t *p, uint8_t count, const kite__v2addr *a) {
  memset(p, 0, KITE__V2TOK_LIST);
  for (uint8_t i = 0; i < count; i++) {
    uint8_t *e = p + i * KITE__V2TOK_ENTRY;
    e[0] = a[i].type;
    kite__put_le16(e + 2, a[i].port);
    memcpy(e + 4, a[i].addr, 16);
  }
  return p + KITE__V2TOK_LIST;
}

/* Reads |count| used entries then checks the unused ones are all zero.
 * false when anything is ill-formed (the caller refuses with EFORM). */
static bool get_list(const uint8_t *p, uint8_t count, kite__v2addr *a) {
  if (count < 1 || count > KITE__V2TOK_ADDRS)
    return false;
  for (uint8_t i = 0; i < count; i++) {
    const uint8_t *e = p + i * KITE__V2TOK_ENTRY;
    a[i].type = e[0];
    a[i].port = kite__get_le16(e + 2);
    memcpy(a[i].addr, e + 4, 16);
    if (e[1] != 0 || !addr_ok(&a[i]))
      return false;
  }
  return all_zero(p + count * KITE__V2TOK_ENTRY,
                  (size_t)(KITE__V2TOK_ADDRS - count) * KITE__V2TOK_ENTRY);
}

void kite__v2tok_aad(uint8_t out[KITE__V2TOK_AAD], uint64_t protocol_id,
                     uint64_t expire_ts) {
  out[0] = KITE__V2_VERSION;
  kite__put_le64(out + 1, protocol_id);
  kite__put_le64(out + 9, expire_ts);
}

static bool params_ok(const kite__v2tok_params *p) {
  if (p->expire_ts <= p->create_ts ||
      p->expire_ts - p->create_ts > KITE__V2_MAX_TTL_S)
    return false;
  if (p->addr_count < 1 || p->addr_count > KITE__V2TOK_ADDRS)
    return false;
  for (uint8_t i = 0; i < p->addr_count; i++)
    if (!addr_ok(&p->addrs[i]))
      return false;
  return p->user_len <= KITE__V2TOK_USER &&
         (p->user_len == 0 || p->user_data != NULL);
}

int kite__v2tok_mint_with(uint8_t out[KITE__V2TOK_PUBLIC],
                          const uint8_t private_key[KITE__V2_KEY],
                          const kite__v2tok_params *p,
                          const uint8_t nonce[KITE__V2_XNONCE],
                          const uint8_t c2s_key[KITE__V2_KEY],
                          const uint8_t s2c_key[KITE__V2_KEY]) {
  if (!params_ok(p))
    return KITE_EINVAL;
  if (sodium_init() < 0)
    return KITE_ESYS;

  uint8_t priv[KITE__V2TOK_PRIVATE];
  uint8_t *q = kite__put_le64(priv, p->client_id);
  q = kite__put_le32(q, p->timeout_s);
  *q++ = p->addr_count;
  memset(q, 0, 3);
  q = put_list(q + 3, p->addr_count, p->addrs);
  memcpy(q, c2s_key, KITE__V2_KEY);
  memcpy(q + 32, s2c_key, KITE__V2_KEY);
  q += 2 * KITE__V2_KEY;
  memset(q, 0, KITE__V2TOK_USER);
  if (p->user_len > 0)
    memcpy(q, p->user_data, p->user_len);

  memcpy(out, magic, 4);
  out[4] = KITE__V2_VERSION;
  memset(out + 5, 0, 3);
  q = kite__put_le64(out + 8, p->protocol_id);
  q = kite__put_le64(q, p->create_ts);
  q = kite__put_le64(q, p->expire_ts);
  memcpy(q, nonce, KITE__V2_XNONCE);
  q = kite__put_le32(q + KITE__V2_XNONCE, p->timeout_s);
  *q++ = p->addr_count;
  memset(q, 0, 3);
  q = put_list(q + 3, p->addr_count, p->addrs);
  memcpy(q, c2s_key, KITE__V2_KEY);
  memcpy(q + 32, s2c_key, KITE__V2_KEY);
  q += 2 * KITE__V2_KEY;

  uint8_t aad[KITE__V2TOK_AAD];
  kite__v2tok_aad(aad, p->protocol_id, p->expire_ts);
  crypto_aead_xchacha20poly1305_ietf_encrypt(q, NULL, priv, sizeof(priv), aad,
                                             sizeof(aad), NULL, nonce,
                                             private_key);
  sodium_memzero(priv, sizeof(priv));
  return 0;
}

int kite__v2tok_mint(uint8_t out[KITE__V2TOK_PUBLIC],
                     const uint8_t private_key[KITE__V2_KEY],
                     const kite__v2tok_params *p) {
  if (sodium_init() < 0)
    return KITE_ESYS;
  uint8_t nonce[KITE__V2_XNONCE], keys[2 * KITE__V2_KEY];
  randombytes_buf(nonce, sizeof(nonce));
  do /* "two different keys": a collision is 2^-256, but say it */
    randombytes_buf(keys, sizeof(keys));
  while (sodium_memcmp(keys, keys + KITE__V2_KEY, KITE__V2_KEY) == 0);
  int rc = kite__v2tok_mint_with(out, private_key, p, nonce, keys,
                                 keys + KITE__V2_KEY);
  sodium_memzero(keys, sizeof(keys));
  return rc;
}

int kite__v2tok_read(const uint8_t *p, size_t len, kite__v2tok *out) {
  memset(out, 0, sizeof(*out));
  if (len != KITE__V2TOK_PUBLIC)
    return KITE__V2_ESIZE;
  if (memcmp(p, magic, 4) != 0)
    return KITE__V2_EMAGIC;
  if (p[4] != KITE__V2_VERSION)
    return KITE__V2_EVERSION;
  out->protocol_id = kite__get_le64(p + 8);
  out->create_ts = kite__get_le64(p + 16);
  out->expire_ts = kite__get_le64(p + 24);
  memcpy(out->nonce, p + 32, KITE__V2_XNONCE);
  out->timeout_s = kite__get_le32(p + 56);
  out->addr_count = p[60];
  memcpy(out->c2s_key, p + 224, KITE__V2_KEY);
  memcpy(out->s2c_key, p + 256, KITE__V2_KEY);
  memcpy(out->sealed, p + 288, KITE__V2TOK_SEALED);
  if (!all_zero(p + 5, 3) || !all_zero(p + 61, 3) ||
      out->create_ts >= out->expire_ts ||
      !get_list(p + 64, out->addr_count, out->addrs)) {
    kite__v2tok_wipe(out);
    return KITE__V2_EFORM;
  }
  return 0;
}

int kite__v2tok_check_time(uint64_t expire_ts, uint64_t now_s) {
  if (expire_ts <= now_s || expire_ts - now_s > KITE__V2_MAX_TTL_S)
    return KITE__V2_EEXPIRED;
  return 0;
}

int kite__v2tok_open(const uint8_t key[KITE__V2_KEY], uint64_t protocol_id,
                     uint64_t expire_ts, const uint8_t nonce[KITE__V2_XNONCE],
                     const uint8_t sealed[KITE__V2TOK_SEALED],
                     kite__v2tok *out) {
  memset(out, 0, sizeof(*out));
  uint8_t aad[KITE__V2TOK_AAD], priv[KITE__V2TOK_PRIVATE];
  kite__v2tok_aad(aad, protocol_id, expire_ts);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          priv, NULL, NULL, sealed, KITE__V2TOK_SEALED, aad, sizeof(aad),
          nonce, key) != 0)
    return KITE__V2_EAUTH;
  out->client_id = kite__get_le64(priv);
  out->timeout_s = kite__get_le32(priv + 8);
  out->addr_count = priv[12];
  memcpy(out->c2s_key, priv + 176, KITE__V2_KEY);
  memcpy(out->s2c_key, priv + 208, KITE__V2_KEY);
  memcpy(out->user_data, priv + 240, KITE__V2TOK_USER);
  bool ok = all_zero(priv + 13, 3) &&
            get_list(priv + 16, out->addr_count, out->addrs);
  sodium_memzero(priv, sizeof(priv));
  if (!ok) {
    kite__v2tok_wipe(out);
    return KITE__V2_EFORM;
  }
  return 0;
}

bool kite__v2tok_lists(const kite__v2tok *t, const kite__v2addr *addr) {
  for (uint8_t i = 0; i < t->addr_count && i < KITE__V2TOK_ADDRS; i++)
    if (kite__v2addr_equal(&t->addrs[i], addr))
      return true;
  return false;
}

int kite__v2tok_verify(const kite__v2tok_server *s, uint64_t now_s,
                       const kite__v2addr *local, uint64_t expire_ts,
                       const uint8_t nonce[KITE__V2_XNONCE],
                       const uint8_t sealed[KITE__V2TOK_SEALED],
                       kite__v2tok *out) {
  memset(out, 0, sizeof(*out));
  int rc = kite__v2tok_check_time(expire_ts, now_s);
  if (rc != 0)
    return rc;
  rc = kite__v2tok_open(s->key, s->protocol_id, expire_ts, nonce, sealed, out);
  if (rc == KITE__V2_EAUTH && s->prev_key != NULL)
    rc = kite__v2tok_open(s->prev_key, s->protocol_id, expire_ts, nonce,
                          sealed, out);
  if (rc != 0)
    return rc;
  if (kite__v2tok_lists(out, local))
    return 0;
  for (size_t i = 0; i < s->n_public; i++)
    if (kite__v2tok_lists(out, &s->public_addrs[i]))
      return 0;
  kite__v2tok_wipe(out);
  return KITE__V2_ENOTHERE;
}

uint8_t kite__v2tok_reject_reason(int err) {
  switch (err) {
  case KITE__V2_EEXPIRED: return KITE__REJECT_EXPIRED;
  case KITE__V2_EAUTH:
  case KITE__V2_EFORM: return KITE__REJECT_INVALID;
  case KITE__V2_ENOTHERE: return KITE__REJECT_NOT_HERE;
  }
  return 0;
}

void kite__v2tok_wipe(kite__v2tok *t) {
  sodium_memzero(t, sizeof(*t));
}
