/*
 * Connect tokens (PROTOCOL-v2.md section 2): minted by a game's backend,
 * read by the client (the public part), opened by a server (the sealed
 * private part).
 *
 * Address entry, 20 bytes: type u8 (0 unused, 1 IPv4, 2 IPv6), reserved u8,
 * port u16 LE, addr[16] in network order (IPv4: 4 bytes then 12 zeros).
 * A list is 8 entries, 160 bytes: the used ones first, then zeros.
 *
 * Private part, 496 bytes, sealed to 512 under the private key with
 *   xseal(private key, token_nonce, aad = 02 ‖ protocol_id ‖ expire_ts):
 *     0 client_id u64   8 timeout_s u32   12 addr_count u8, 13 reserved[3]
 *    16 addresses[8]  176 c2s key[32]  208 s2c key[32]  240 user_data[256]
 * Public part, 800 bytes:
 *     0 "KTOK"  4 version u8 = 2  5 reserved[3]  8 protocol_id u64
 *    16 create_ts u64  24 expire_ts u64  32 token_nonce[24]  56 timeout_s u32
 *    60 addr_count u8, 61 reserved[3]  64 addresses[8]  224 c2s key[32]
 *   256 s2c key[32]  288 sealed_private[512]
 *
 * Nothing allocates; nothing is thread-bound (every function works on its
 * arguments only). Structs that hold keys are the caller's to wipe:
 * kite__v2tok_wipe().
 */
#ifndef KITE_PROTO_V2TOK_H
#define KITE_PROTO_V2TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto/v2.h"

#define KITE__V2TOK_ADDRS 8
#define KITE__V2TOK_ENTRY 20
#define KITE__V2TOK_LIST (KITE__V2TOK_ADDRS * KITE__V2TOK_ENTRY) /* 160 */
#define KITE__V2TOK_USER 256
#define KITE__V2TOK_PRIVATE 496
#define KITE__V2TOK_SEALED (KITE__V2TOK_PRIVATE + KITE__V2_TAG) /* 512 */
#define KITE__V2TOK_PUBLIC 800
#define KITE__V2TOK_AAD 17
#define KITE__V2TOK_TAG KITE__V2_TAG /* a token's tag: sealed's last 16 */

enum kite__v2addr_type {
  KITE__V2ADDR_NONE = 0,
  KITE__V2ADDR_IPV4 = 1,
  KITE__V2ADDR_IPV6 = 2,
};

/* One address entry, decoded. |port| in host order; |addr| network order,
 * IPv4 in the first 4 bytes and zeros after. */
typedef struct kite__v2addr {
  uint8_t type;
  uint16_t port;
  uint8_t addr[16];
} kite__v2addr;

/* The entry for |sa| (AF_INET or AF_INET6; an IPv4-mapped IPv6 address is
 * written as IPv4, as the contract asks). Returns 0, or KITE_EINVAL for
 * any other family (|out| then zeroed). */
int kite__v2addr_from_sockaddr(const struct sockaddr *sa, kite__v2addr *out);

/* The sockaddr for a used entry |a| (the client's next address to try):
 * a sockaddr_in for type 1, a sockaddr_in6 for type 2, into |out|; sets
 * *len. Returns 0, or KITE_EINVAL for any other type. */
int kite__v2addr_to_sockaddr(const kite__v2addr *a,
                             struct sockaddr_storage *out, socklen_t *len);

/* true when |a| and |b| name the same IP and port (types included). */
bool kite__v2addr_equal(const kite__v2addr *a, const kite__v2addr *b);

/* What a backend puts in a token (kite__v2tok_mint's input). */
typedef struct kite__v2tok_params {
  uint64_t protocol_id;
  uint64_t client_id;
  uint64_t create_ts, expire_ts; /* Unix seconds; 0 < expire - create <= 300 */
  uint32_t timeout_s;            /* 0: the server's own */
  uint8_t addr_count;            /* 1 to 8 */
  kite__v2addr addrs[KITE__V2TOK_ADDRS]; /* the first addr_count are used */
  const uint8_t *user_data;              /* NULL when user_len is 0 */
  size_t user_len;                       /* at most 256: zero-padded */
} kite__v2tok_params;

/* The private part, opened (server), or the public part's fields (client:
 * sealed is then the 512 bytes the client copies into CONNECT or OPEN). */
typedef struct kite__v2tok {
  uint64_t protocol_id, create_ts, expire_ts; /* public part only */
  uint8_t nonce[KITE__V2_XNONCE];             /* public part only */
  uint64_t client_id;                         /* private part only */
  uint32_t timeout_s;
  uint8_t addr_count;
  kite__v2addr addrs[KITE__V2TOK_ADDRS];
  uint8_t c2s_key[KITE__V2_KEY], s2c_key[KITE__V2_KEY];
  uint8_t user_data[KITE__V2TOK_USER];      /* private part only */
  uint8_t sealed[KITE__V2TOK_SEALED];       /* public part only */
} kite__v2tok;

/* Mints a token: writes its 800-byte public part at |out|. token_nonce and
 * both keys are drawn from randombytes_buf (two different keys). Checks
 * |p| against the contract's minting rules and returns 0, or KITE_EINVAL
 * (nothing written) when expire_ts is not after create_ts or over 300 s
 * after, addr_count is not 1 to 8, a used address is not of type 1 or 2
 * (or is an IPv4-mapped IPv6 one), or user_len is over 256; KITE_ESYS when
 * libsodium cannot initialise. |private_key| is read, never kept. Any
 * thread. This is the function a game's backend (or kite's tools) calls. */
int kite__v2tok_mint(uint8_t out[KITE__V2TOK_PUBLIC],
                     const uint8_t private_key[KITE__V2_KEY],
                     const kite__v2tok_params *p);

/* kite__v2tok_mint with the random inputs given: for test vectors only. */
int kite__v2tok_mint_with(uint8_t out[KITE__V2TOK_PUBLIC],
                          const uint8_t private_key[KITE__V2_KEY],
                          const kite__v2tok_params *p,
                          const uint8_t nonce[KITE__V2_XNONCE],
                          const uint8_t c2s_key[KITE__V2_KEY],
                          const uint8_t s2c_key[KITE__V2_KEY]);

/* The client's reading of a public part: |len| must be 800; magic,
 * version 2, zero reserved bytes, create_ts < expire_ts, addr_count 1 to 8,
 * entries well formed (see the top). Fills |out| (its private-only fields
 * zero). Returns 0, KITE__V2_ESIZE, KITE__V2_EMAGIC, KITE__V2_EVERSION or
 * KITE__V2_EFORM; on a refusal |out| is zeroed. */
int kite__v2tok_read(const uint8_t *p, size_t len, kite__v2tok *out);

/* The 17 bytes of aad the private part is sealed with. */
void kite__v2tok_aad(uint8_t out[KITE__V2TOK_AAD], uint64_t protocol_id,
                     uint64_t expire_ts);

/* Step 4 of CONNECT (section 3): 0 when |expire_ts| is after |now_s| by
 * 300 s at most, else KITE__V2_EEXPIRED. */
int kite__v2tok_check_time(uint64_t expire_ts, uint64_t now_s);

/* Step 5: opens |sealed| under |key| with |protocol_id| and |expire_ts| in
 * aad, and checks the private part's fields. Returns 0 (|out| holds the
 * private part: client_id, timeout_s, addresses, keys, user_data; the
 * public-only fields zero), KITE__V2_EAUTH (does not open) or
 * KITE__V2_EFORM (opens, ill-formed). On a refusal |out| is wiped. The
 * plaintext never stays anywhere but in |out|. */
int kite__v2tok_open(const uint8_t key[KITE__V2_KEY], uint64_t protocol_id,
                     uint64_t expire_ts, const uint8_t nonce[KITE__V2_XNONCE],
                     const uint8_t sealed[KITE__V2TOK_SEALED],
                     kite__v2tok *out);

/* true when |t| lists |addr| among its addr_count addresses (step 6). */
bool kite__v2tok_lists(const kite__v2tok *t, const kite__v2addr *addr);

/* What a server checks a token against (steps 4 to 6). The keys are the
 * caller's; |prev_key| (NULL: none) is tried after |key| during a key
 * rotation. |public_addrs| (n_public, possibly 0) are the configured
 * public addresses that count as this server's beside the local one. */
typedef struct kite__v2tok_server {
  uint64_t protocol_id;
  const uint8_t *key;      /* 32 bytes */
  const uint8_t *prev_key; /* 32 bytes, or NULL */
  const kite__v2addr *public_addrs;
  size_t n_public;
} kite__v2tok_server;

/* Steps 4 to 6 in order, for a CONNECT or OPEN that arrived at |local|:
 * the time, the seal (key, then prev_key), the fields, the address.
 * Returns 0 with the private part in |out|, or KITE__V2_EEXPIRED,
 * KITE__V2_EAUTH, KITE__V2_EFORM, KITE__V2_ENOTHERE (|out| wiped);
 * kite__v2tok_reject_reason() turns each into its REJECT reason. */
int kite__v2tok_verify(const kite__v2tok_server *s, uint64_t now_s,
                       const kite__v2addr *local, uint64_t expire_ts,
                       const uint8_t nonce[KITE__V2_XNONCE],
                       const uint8_t sealed[KITE__V2TOK_SEALED],
                       kite__v2tok *out);

/* The REJECT reason for a kite__v2tok_verify refusal: 5, 6 or 7; 0 for
 * anything else. */
uint8_t kite__v2tok_reject_reason(int err);

/* Wipes |t| (keys, user_data) with sodium_memzero. */
void kite__v2tok_wipe(kite__v2tok *t);

#endif
