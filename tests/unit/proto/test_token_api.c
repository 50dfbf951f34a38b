/*
 * include/kite/token.h from the outside in: a token minted with the
 * public call opens on a server holding the same key and protocol id at a
 * listed address, carrying the client id, timeout and login payload; it
 * does not open under another key or id, or at another address; bad
 * parameters are refused with nothing written; keys parse from hex.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/error.h"
#include "kite/token.h"

#include "net/addr.h"
#include "proto/v2tok.h"

#include <stdio.h>
#include <string.h>

static const char *servers[] = {"127.0.0.1:7001", "[::1]:7002"};

static kite_token_params params(void) {
  kite_token_params p = {.protocol_id = 0x4B4954454741ULL, .client_id = 42,
                         .ttl_s = 60, .timeout_s = 20, .addrs = servers,
                         .naddrs = 2, .user_data = "alice", .user_data_len = 5,
                         .now_s = 1800000000};
  return p;
}

static kite__v2addr v2addr(const char *text) {
  kite__addr a;
  kite__v2addr out;
  assert_int_equal(kite__addr_parse(&a, text), 0);
  assert_int_equal(kite__v2addr_from_sockaddr(&a.sa, &out), 0);
  return out;
}

/* What a server does with the token's public fields and sealed part. */
static int server_opens(const uint8_t *tok, const uint8_t *key, uint64_t id,
                        const char *at, uint64_t now, kite__v2tok *priv) {
  kite__v2tok pub;
  if (kite__v2tok_read(tok, KITE_TOKEN_BYTES, &pub) != 0)
    return -100;
  kite__v2tok_server s = {.protocol_id = id, .key = key};
  kite__v2addr local = v2addr(at);
  return kite__v2tok_verify(&s, now, &local, pub.expire_ts, pub.nonce,
                            pub.sealed, priv);
}

static void minted_token_opens_where_it_should(void **state) {
  (void)state;
  uint8_t key[KITE_TOKEN_KEY_BYTES], other[KITE_TOKEN_KEY_BYTES];
  assert_int_equal(kite_token_key_new(key), 0);
  assert_int_equal(kite_token_key_new(other), 0);
  assert_memory_not_equal(key, other, sizeof(key));
  kite_token_params p = params();
  uint8_t tok[KITE_TOKEN_BYTES];
  assert_int_equal(kite_token_mint(tok, key, &p), 0);
  assert_memory_equal(tok, "KTOK", 4);
  kite__v2tok priv;
  uint64_t now = p.now_s + 10;
  assert_int_equal(server_opens(tok, key, p.protocol_id, "127.0.0.1:7001", now, &priv), 0);
  assert_int_equal(priv.client_id, 42);
  assert_int_equal(priv.timeout_s, 20);
  assert_memory_equal(priv.user_data, "alice", 5);
  assert_int_equal(priv.user_data[5], 0); /* zero-padded */
  assert_int_equal(server_opens(tok, key, p.protocol_id, "[::1]:7002", now, &priv), 0);
  /* Another key, another game, another server, too late: refused. */
  assert_true(server_opens(tok, other, p.protocol_id, "127.0.0.1:7001", now, &priv) < 0);
  assert_true(server_opens(tok, key, p.protocol_id + 1, "127.0.0.1:7001", now, &priv) < 0);
  assert_true(server_opens(tok, key, p.protocol_id, "127.0.0.1:7003", now, &priv) < 0);
  assert_true(server_opens(tok, key, p.protocol_id, "127.0.0.1:7001", p.now_s + 61,
                           &priv) < 0);
  /* Two mints of the same parameters differ (fresh nonce and keys). */
  uint8_t again[KITE_TOKEN_BYTES];
  assert_int_equal(kite_token_mint(again, key, &p), 0);
  assert_memory_not_equal(tok, again, sizeof(tok));
}

static void bad_parameters_write_nothing(void **state) {
  (void)state;
  uint8_t key[KITE_TOKEN_KEY_BYTES] = {1};
  uint8_t tok[KITE_TOKEN_BYTES];
  const char *wild[] = {"0.0.0.0:7001"}, *noport[] = {"127.0.0.1:0"},
             *junk[] = {"not an address"};
  kite_token_params cases[8];
  for (int i = 0; i < 8; i++)
    cases[i] = params();
  cases[0].ttl_s = 0;
  cases[1].ttl_s = KITE_TOKEN_TTL_MAX + 1;
  cases[2].naddrs = 0;
  cases[3].naddrs = KITE_TOKEN_ADDRS_MAX + 1;
  cases[4].user_data_len = KITE_TOKEN_USER_DATA_MAX + 1;
  cases[5].addrs = wild, cases[5].naddrs = 1;
  cases[6].addrs = noport, cases[6].naddrs = 1;
  cases[7].addrs = junk, cases[7].naddrs = 1;
  for (int i = 0; i < 8; i++) {
    memset(tok, 0xA5, sizeof(tok));
    assert_int_equal(kite_token_mint(tok, key, &cases[i]), KITE_EINVAL);
    for (size_t k = 0; k < sizeof(tok); k++)
      assert_int_equal(tok[k], 0xA5);
  }
  kite_token_params p = params();
  assert_int_equal(kite_token_mint(NULL, key, &p), KITE_EINVAL);
  assert_int_equal(kite_token_mint(tok, NULL, &p), KITE_EINVAL);
  assert_int_equal(kite_token_mint(tok, key, NULL), KITE_EINVAL);
}

static void keys_parse_from_hex(void **state) {
  (void)state;
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  const char *hex = "000102030405060708090a0b0c0d0e0f"
                    "101112131415161718191A1B1C1D1E1F";
  char spaced[80];
  snprintf(spaced, sizeof(spaced), "  %s\n", hex);
  assert_int_equal(kite_token_key_parse(key, spaced), 0);
  for (int i = 0; i < KITE_TOKEN_KEY_BYTES; i++)
    assert_int_equal(key[i], i);
  assert_int_equal(kite_token_key_parse(key, "00"), KITE_EINVAL);
  char bad[80];
  snprintf(bad, sizeof(bad), "%s", hex);
  bad[10] = 'g';
  assert_int_equal(kite_token_key_parse(key, bad), KITE_EINVAL);
  for (int i = 0; i < KITE_TOKEN_KEY_BYTES; i++)
    assert_int_equal(key[i], 0); /* zeroed on refusal */
  snprintf(bad, sizeof(bad), "%s00", hex);
  assert_int_equal(kite_token_key_parse(key, bad), KITE_EINVAL);
  assert_int_equal(kite_token_key_parse(key, NULL), KITE_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(minted_token_opens_where_it_should),
      cmocka_unit_test(bad_parameters_write_nothing),
      cmocka_unit_test(keys_parse_from_hex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
