/*
 * Connect tokens (PROTOCOL-v2.md section 2): minting rules, the client's
 * reading of the public part, the server's opening and checks (steps 4 to
 * 6 of section 3), one refusal per rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <sys/un.h>

#include "base/le.h"
#include "kite/error.h"
#include "proto/v2.h"
#include "proto/v2tok.h"
#include "v2_vectors.h"

static int setup(void **state) {
  (void)state;
  return kite__v2_init();
}

static void mint_draws_fresh_randoms(void **state) {
  (void)state;
  uint8_t key[32], a[800], b[800];
  vec_seq(key, 0, 32);
  kite__v2tok_params p = vec_params();
  assert_int_equal(kite__v2tok_mint(a, key, &p), 0);
  assert_int_equal(kite__v2tok_mint(b, key, &p), 0);
  kite__v2tok ta, tb;
  assert_int_equal(kite__v2tok_read(a, 800, &ta), 0);
  assert_int_equal(kite__v2tok_read(b, 800, &tb), 0);
  assert_memory_not_equal(ta.nonce, tb.nonce, 24);
  assert_memory_not_equal(ta.c2s_key, ta.s2c_key, 32);
  assert_memory_not_equal(ta.c2s_key, tb.c2s_key, 32);
  /* Both parts carry the same timeout, addresses and keys. */
  kite__v2tok priv;
  assert_int_equal(kite__v2tok_open(key, p.protocol_id, p.expire_ts, ta.nonce,
                                    ta.sealed, &priv),
                   0);
  assert_int_equal(priv.timeout_s, ta.timeout_s);
  assert_int_equal(priv.addr_count, ta.addr_count);
  assert_memory_equal(priv.addrs, ta.addrs, sizeof(priv.addrs));
  assert_memory_equal(priv.c2s_key, ta.c2s_key, 32);
  assert_memory_equal(priv.s2c_key, ta.s2c_key, 32);
  kite__v2tok_wipe(&priv);
  kite__v2tok_wipe(&ta);
  kite__v2tok_wipe(&tb);
}

static void mint_refuses_what_the_contract_forbids(void **state) {
  (void)state;
  uint8_t key[32] = {0}, out[800];
  memset(out, 0xEE, sizeof(out));
  kite__v2tok_params p;

  p = vec_params();
  p.expire_ts = p.create_ts;
  assert_int_equal(kite__v2tok_mint(out, key, &p), KITE_EINVAL);
  p.expire_ts = p.create_ts + 301;
  assert_int_equal(kite__v2tok_mint(out, key, &p), KITE_EINVAL);
  p.expire_ts = p.create_ts + 300;
  assert_int_equal(kite__v2tok_mint(out, key, &p), 0);

  p = vec_params();
  p.addr_count = 0;
  assert_int_equal(kite__v2tok_mint(out, key, &p), KITE_EINVAL);
  p.addr_count = 9;
  assert_int_equal(kite__v2tok_mint(out, key, &p), KITE_EINVAL);

  p = vec_params();
  p.addrs[0].type = 3;
  assert_int_equal(kite__v2tok_mint(out, key, &p), KITE_EINVAL);
  p.addrs[0].type = KITE__V2ADDR_IPV6; /* ::ffff:127.0.0.1 as type 2 */
  memset(p.addrs[0].addr, 0, 16);
  p.addrs[0].addr[10] = p.addrs[0].addr[11] = 0xFF;
  p.addrs[0].addr[12] = 127;
  p.addrs[0].addr[15] = 1;
  assert_int_equal(kite__v2tok_mint(out, key, &p), KITE_EINVAL);

  p = vec_params();
  p.user_len = 257;
  assert_int_equal(kite__v2tok_mint(out, key, &p), KITE_EINVAL);
}

static void read_refuses_each_malformation(void **state) {
  (void)state;
  uint8_t tok[800], bad[800];
  assert_int_equal(vec_token(tok, NULL), 0);
  kite__v2tok t;
  assert_int_equal(kite__v2tok_read(tok, 799, &t), KITE__V2_ESIZE);
  assert_int_equal(kite__v2tok_read(tok, 801, &t), KITE__V2_ESIZE);

  struct {
    size_t off;
    uint8_t val;
    int want;
  } cases[] = {
      {0, 'X', KITE__V2_EMAGIC},     {3, 'X', KITE__V2_EMAGIC},
      {4, 1, KITE__V2_EVERSION},     {4, 3, KITE__V2_EVERSION},
      {5, 1, KITE__V2_EFORM},        {7, 1, KITE__V2_EFORM},
      {60, 0, KITE__V2_EFORM},       {60, 9, KITE__V2_EFORM},
      {60, 2, KITE__V2_EFORM},       /* second entry unused, all zero */
      {61, 1, KITE__V2_EFORM},       {63, 1, KITE__V2_EFORM},
      {64, 0, KITE__V2_EFORM},       /* type 0 in a used entry */
      {64, 3, KITE__V2_EFORM},       {65, 1, KITE__V2_EFORM},
      {72, 1, KITE__V2_EFORM},       /* IPv4 entry, nonzero tail */
      {84, 1, KITE__V2_EFORM},       /* an unused entry not zero */
      {223, 1, KITE__V2_EFORM},      /* the last unused byte */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    memcpy(bad, tok, 800);
    bad[cases[i].off] = cases[i].val;
    assert_int_equal(kite__v2tok_read(bad, 800, &t), cases[i].want);
    static const kite__v2tok zero;
    assert_memory_equal(&t, &zero, sizeof(t)); /* nothing kept */
  }

  /* create_ts equal to, then after, expire_ts. */
  memcpy(bad, tok, 800);
  kite__put_le64(bad + 16, VEC_EXPIRE_TS);
  assert_int_equal(kite__v2tok_read(bad, 800, &t), KITE__V2_EFORM);
  kite__put_le64(bad + 16, VEC_EXPIRE_TS + 1);
  assert_int_equal(kite__v2tok_read(bad, 800, &t), KITE__V2_EFORM);

  /* An IPv4-mapped IPv6 address in a type 2 entry; a real IPv6 one. */
  memcpy(bad, tok, 800);
  bad[64] = KITE__V2ADDR_IPV6;
  memset(bad + 68, 0, 16);
  bad[78] = bad[79] = 0xFF;
  bad[80] = 10;
  assert_int_equal(kite__v2tok_read(bad, 800, &t), KITE__V2_EFORM);
  bad[79] = 0xFE;
  assert_int_equal(kite__v2tok_read(bad, 800, &t), 0);
}

static void open_refuses_wrong_key_id_expiry_and_any_flip(void **state) {
  (void)state;
  uint8_t tok[800], key[32];
  assert_int_equal(vec_token(tok, key), 0);
  kite__v2tok pub, t;
  assert_int_equal(kite__v2tok_read(tok, 800, &pub), 0);

  uint8_t other[32];
  memcpy(other, key, 32);
  other[31] ^= 1;
  assert_int_equal(kite__v2tok_open(other, VEC_PROTOCOL_ID, VEC_EXPIRE_TS,
                                    pub.nonce, pub.sealed, &t),
                   KITE__V2_EAUTH);
  assert_int_equal(kite__v2tok_open(key, VEC_PROTOCOL_ID + 1, VEC_EXPIRE_TS,
                                    pub.nonce, pub.sealed, &t),
                   KITE__V2_EAUTH);
  /* expire_ts is in aad: a client cannot stretch its token. */
  assert_int_equal(kite__v2tok_open(key, VEC_PROTOCOL_ID, VEC_EXPIRE_TS + 1,
                                    pub.nonce, pub.sealed, &t),
                   KITE__V2_EAUTH);
  for (size_t bit = 0; bit < 24 * 8; bit++) {
    uint8_t nonce[24];
    memcpy(nonce, pub.nonce, 24);
    nonce[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(kite__v2tok_open(key, VEC_PROTOCOL_ID, VEC_EXPIRE_TS,
                                      nonce, pub.sealed, &t),
                     KITE__V2_EAUTH);
  }
  for (size_t bit = 0; bit < 512 * 8; bit++) {
    uint8_t sealed[512];
    memcpy(sealed, pub.sealed, 512);
    sealed[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    assert_int_equal(kite__v2tok_open(key, VEC_PROTOCOL_ID, VEC_EXPIRE_TS,
                                      pub.nonce, sealed, &t),
                     KITE__V2_EAUTH);
    static const kite__v2tok zero;
    assert_memory_equal(&t, &zero, sizeof(t));
  }
  assert_int_equal(kite__v2tok_open(key, VEC_PROTOCOL_ID, VEC_EXPIRE_TS,
                                    pub.nonce, pub.sealed, &t),
                   0);
  kite__v2tok_wipe(&t);
}

/* A private part that opens but breaks a rule: sealed by hand. */
static void seal_private(uint8_t sealed[512], const uint8_t priv[496],
                         const uint8_t key[32], const uint8_t nonce[24]) {
  uint8_t aad[17];
  kite__v2tok_aad(aad, VEC_PROTOCOL_ID, VEC_EXPIRE_TS);
  crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, NULL, priv, 496, aad, 17,
                                             NULL, nonce, key);
}

static void open_refuses_a_malformed_private_part(void **state) {
  (void)state;
  uint8_t tok[800], key[32], priv[496], sealed[512];
  assert_int_equal(vec_token(tok, key), 0);
  const uint8_t *nonce = tok + 32;
  assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
                       priv, NULL, NULL, tok + 288, 512, NULL, 0, nonce, key),
                   -1); /* needs its aad */
  uint8_t aad[17];
  kite__v2tok_aad(aad, VEC_PROTOCOL_ID, VEC_EXPIRE_TS);
  assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(
                       priv, NULL, NULL, tok + 288, 512, aad, 17, nonce, key),
                   0);
  kite__v2tok t;
  seal_private(sealed, priv, key, nonce);
  assert_int_equal(
      kite__v2tok_open(key, VEC_PROTOCOL_ID, VEC_EXPIRE_TS, nonce, sealed, &t),
      0);

  struct {
    size_t off;
    uint8_t val;
  } cases[] = {
      {12, 0}, {12, 9}, {12, 2}, /* addr_count */
      {13, 1}, {15, 1},          /* reserved */
      {16, 0}, {16, 3}, {17, 1}, /* entry 0: type, reserved */
      {24, 1},                   /* entry 0: IPv4 tail */
      {36, 1}, {175, 1},         /* unused entries */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t bad[496];
    memcpy(bad, priv, 496);
    bad[cases[i].off] = cases[i].val;
    seal_private(sealed, bad, key, nonce);
    assert_int_equal(kite__v2tok_open(key, VEC_PROTOCOL_ID, VEC_EXPIRE_TS,
                                      nonce, sealed, &t),
                     KITE__V2_EFORM);
    static const kite__v2tok zero;
    assert_memory_equal(&t, &zero, sizeof(t));
  }
  sodium_memzero(priv, sizeof(priv));
}

static void verify_runs_steps_4_to_6(void **state) {
  (void)state;
  uint8_t tok[800], key[32], other[32];
  assert_int_equal(vec_token(tok, key), 0);
  memset(other, 0x55, 32);
  kite__v2tok pub, t;
  assert_int_equal(kite__v2tok_read(tok, 800, &pub), 0);
  kite__v2addr here = vec_addr(), elsewhere = vec_addr();
  elsewhere.port = 7002;
  kite__v2tok_server s = {.protocol_id = VEC_PROTOCOL_ID, .key = key};
  uint64_t e = VEC_EXPIRE_TS;

  /* Step 4: expire_ts after now by 300 s at most. */
  assert_int_equal(kite__v2tok_check_time(e, e), KITE__V2_EEXPIRED);
  assert_int_equal(kite__v2tok_check_time(e, e + 1), KITE__V2_EEXPIRED);
  assert_int_equal(kite__v2tok_check_time(e, e - 1), 0);
  assert_int_equal(kite__v2tok_check_time(e, e - 300), 0);
  assert_int_equal(kite__v2tok_check_time(e, e - 301), KITE__V2_EEXPIRED);
  assert_int_equal(kite__v2tok_check_time(UINT64_MAX, 0), KITE__V2_EEXPIRED);
  assert_int_equal(
      kite__v2tok_verify(&s, e, &here, e, pub.nonce, pub.sealed, &t),
      KITE__V2_EEXPIRED);

  uint64_t now = VEC_CREATE_TS;
  assert_int_equal(
      kite__v2tok_verify(&s, now, &here, e, pub.nonce, pub.sealed, &t), 0);
  assert_int_equal(t.client_id, 42);
  kite__v2tok_wipe(&t);

  /* Step 6: not listed, unless a configured public address is. */
  assert_int_equal(
      kite__v2tok_verify(&s, now, &elsewhere, e, pub.nonce, pub.sealed, &t),
      KITE__V2_ENOTHERE);
  static const kite__v2tok zero;
  assert_memory_equal(&t, &zero, sizeof(t));
  s.public_addrs = &here;
  s.n_public = 1;
  assert_int_equal(
      kite__v2tok_verify(&s, now, &elsewhere, e, pub.nonce, pub.sealed, &t), 0);
  kite__v2tok_wipe(&t);

  /* Step 5 and a key rotation: the previous key is tried too. */
  s.key = other;
  assert_int_equal(
      kite__v2tok_verify(&s, now, &here, e, pub.nonce, pub.sealed, &t),
      KITE__V2_EAUTH);
  s.prev_key = key;
  assert_int_equal(
      kite__v2tok_verify(&s, now, &here, e, pub.nonce, pub.sealed, &t), 0);
  kite__v2tok_wipe(&t);
  s.key = key;
  s.prev_key = other;
  s.protocol_id++;
  assert_int_equal(
      kite__v2tok_verify(&s, now, &here, e, pub.nonce, pub.sealed, &t),
      KITE__V2_EAUTH);

  assert_int_equal(kite__v2tok_reject_reason(KITE__V2_EEXPIRED), 5);
  assert_int_equal(kite__v2tok_reject_reason(KITE__V2_EAUTH), 6);
  assert_int_equal(kite__v2tok_reject_reason(KITE__V2_EFORM), 6);
  assert_int_equal(kite__v2tok_reject_reason(KITE__V2_ENOTHERE), 7);
  assert_int_equal(kite__v2tok_reject_reason(0), 0);
}

static void addresses_from_sockaddrs(void **state) {
  (void)state;
  kite__v2addr a, want = vec_addr();
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(7001)};
  inet_pton(AF_INET, "127.0.0.1", &v4.sin_addr);
  assert_int_equal(kite__v2addr_from_sockaddr((struct sockaddr *)&v4, &a), 0);
  assert_true(kite__v2addr_equal(&a, &want));

  /* IPv4-mapped IPv6 is the IPv4 entry, as the contract writes it. */
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(7001)};
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &v6.sin6_addr);
  assert_int_equal(kite__v2addr_from_sockaddr((struct sockaddr *)&v6, &a), 0);
  assert_true(kite__v2addr_equal(&a, &want));

  inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
  assert_int_equal(kite__v2addr_from_sockaddr((struct sockaddr *)&v6, &a), 0);
  assert_int_equal(a.type, KITE__V2ADDR_IPV6);
  assert_int_equal(a.port, 7001);
  assert_memory_equal(a.addr, &v6.sin6_addr, 16);
  assert_false(kite__v2addr_equal(&a, &want));

  /* And back, for the client's attempts. */
  struct sockaddr_storage ss;
  socklen_t sl;
  kite__v2addr back;
  assert_int_equal(kite__v2addr_to_sockaddr(&a, &ss, &sl), 0);
  assert_int_equal(sl, sizeof(struct sockaddr_in6));
  assert_int_equal(kite__v2addr_from_sockaddr((struct sockaddr *)&ss, &back), 0);
  assert_true(kite__v2addr_equal(&a, &back));
  assert_int_equal(kite__v2addr_to_sockaddr(&want, &ss, &sl), 0);
  assert_int_equal(sl, sizeof(struct sockaddr_in));
  assert_memory_equal(&((struct sockaddr_in *)&ss)->sin_addr, &v4.sin_addr, 4);
  assert_int_equal(((struct sockaddr_in *)&ss)->sin_port, htons(7001));
  back.type = 0;
  assert_int_equal(kite__v2addr_to_sockaddr(&back, &ss, &sl), KITE_EINVAL);

  struct sockaddr_un un = {.sun_family = AF_UNIX};
  assert_int_equal(kite__v2addr_from_sockaddr((struct sockaddr *)&un, &a),
                   KITE_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(mint_draws_fresh_randoms),
      cmocka_unit_test(mint_refuses_what_the_contract_forbids),
      cmocka_unit_test(read_refuses_each_malformation),
      cmocka_unit_test(open_refuses_wrong_key_id_expiry_and_any_flip),
      cmocka_unit_test(open_refuses_a_malformed_private_part),
      cmocka_unit_test(verify_runs_steps_4_to_6),
      cmocka_unit_test(addresses_from_sockaddrs),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
