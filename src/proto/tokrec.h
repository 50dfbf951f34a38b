/*
 * The token record (PROTOCOL-v2.md section 3, steps 7 and 9): which
 * address and port each token's tag (the last 16 bytes of its
 * sealed_private) is bound to, kept until the token's expire_ts and never
 * less, so that a token opens one session per server.
 *
 * Bounded: at most |max| tags, fixed at init (a server config value); the
 * table is allocated once (open addressing, linear probing, at most half
 * full, slots keyed by SipHash of the tag under a random key so that no
 * peer picks the probe chains). Full, it refuses (the caller answers
 * REJECT 1) rather than forget a tag before it expires. Expired tags are
 * dropped by kite__tokrec_expire() and, when the record is full, by
 * kite__tokrec_add() itself before it refuses.
 *
 * Not thread-safe: one record per shard, owned by the shard's thread; the
 * server hands a v2 CONNECT or OPEN to the shard a keyed hash of its tag
 * picks, so a tag always meets the same record.
 */
#ifndef KITE_PROTO_TOKREC_H
#define KITE_PROTO_TOKREC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/v2tok.h"

typedef struct kite__tokrec_slot {
  uint8_t tag[KITE__V2TOK_TAG];
  kite__v2addr addr;
  uint64_t expire_ts; /* 0: the slot is empty (no token expires at 0) */
} kite__tokrec_slot;

typedef struct kite__tokrec {
  kite__tokrec_slot *slot;
  size_t mask;  /* slots - 1, slots a power of two >= 2 * max */
  size_t max;   /* tags held at most */
  size_t count; /* tags held now */
  uint8_t hkey[16];
  /* Counters, for metrics: every refusal and every drop. */
  uint64_t refused_full; /* _add: full after dropping the expired */
  uint64_t bound_other;  /* _find: tag bound to another address */
  uint64_t used_here;    /* _find: tag bound to this address */
  uint64_t expired;      /* tags dropped at their expire_ts */
} kite__tokrec;

/* Allocates room for |max| tags (max >= 1). Returns 0, KITE_EINVAL, or
 * KITE_ENOMEM; KITE_ESYS when libsodium cannot initialise. */
int kite__tokrec_init(kite__tokrec *r, size_t max);

/* Frees the table; |r| is unusable until init. */
void kite__tokrec_free(kite__tokrec *r);

/* Step 7: 0 when |tag| is not bound (or its binding expired at |now_s|),
 * KITE__V2_EBOUND when it is bound to another address or port (ignore,
 * counted, no reply), KITE__V2_EUSED when to |addr| (REJECT 8). */
int kite__tokrec_find(kite__tokrec *r, const uint8_t tag[KITE__V2TOK_TAG],
                      const kite__v2addr *addr, uint64_t now_s);

/* Step 9: binds |tag| (not bound: _find returned 0) to |addr| until
 * |expire_ts| (> now_s). Returns 0, KITE__V2_EFULL (REJECT 1, counted),
 * or KITE_EINVAL when |expire_ts| is not after |now_s|. */
int kite__tokrec_add(kite__tokrec *r, const uint8_t tag[KITE__V2TOK_TAG],
                     const kite__v2addr *addr, uint64_t expire_ts,
                     uint64_t now_s);

/* Drops every tag whose expire_ts is at or before |now_s|; returns how
 * many. O(slots): call it about once a second, not per packet. */
size_t kite__tokrec_expire(kite__tokrec *r, uint64_t now_s);

#endif
