/*
 * The server's token record (PROTOCOL-v2.md section 3, steps 7 and 9):
 * which address each token's tag is bound to, so that a token opens one
 * session per server, across UDP, TCP and every shard.
 *
 * Owner: the server (created and freed with it). It is shared by every
 * shard thread, split into stripes by a keyed hash of the tag, each a
 * kite__tokrec (proto/tokrec.h) under its own mutex. A stripe is locked
 * only by a v2 handshake whose token opened (a CONNECT or OPEN: one probe
 * of an open-addressed table) and by that stripe's once-a-second expiry;
 * never on a datagram's path. So a v2 handshake needs no hand-over to a
 * tag's shard, and an OPEN on TCP meets the same record as a CONNECT.
 */
#ifndef KITE_SERVER_TOKENS_H
#define KITE_SERVER_TOKENS_H

#include <pthread.h>
#include <stdint.h>

#include "proto/tokrec.h"

typedef struct kite__tokens_stripe {
  pthread_mutex_t lock;
  kite__tokrec rec; /* under lock */
} kite__tokens_stripe;

typedef struct kite__tokens {
  uint32_t n;                /* stripes; 0: not initialised */
  kite__tokens_stripe *s;
  uint8_t hkey[16];          /* picks a tag's stripe */
} kite__tokens;

/* |stripes| stripes of |max_per_stripe| tags each (a server: one per
 * shard, token_record_max each). 0, KITE_EINVAL or KITE_ENOMEM. */
int kite__tokens_init(kite__tokens *t, uint32_t stripes, size_t max_per_stripe);

/* Frees every stripe; safe on a zeroed or half-initialised |t|. */
void kite__tokens_free(kite__tokens *t);

/* Step 7: 0 when |tag| is free at |now_s|; KITE__V2_EBOUND when bound to
 * another address or port (ignore, counted, no reply); KITE__V2_EUSED
 * when bound to |addr| (REJECT 8). Any thread. */
int kite__tokens_check(kite__tokens *t, const uint8_t tag[KITE__V2TOK_TAG],
                       const kite__v2addr *addr, uint64_t now_s);

/* Step 9: checks again and binds |tag| to |addr| until |expire_ts|, under
 * one lock, so two handshakes racing with one token bind it once. 0;
 * KITE__V2_EBOUND or KITE__V2_EUSED as _check (the race lost);
 * KITE__V2_EFULL (REJECT 1, counted in the stripe). Any thread. */
int kite__tokens_bind(kite__tokens *t, const uint8_t tag[KITE__V2TOK_TAG],
                      const kite__v2addr *addr, uint64_t expire_ts,
                      uint64_t now_s);

/* Drops stripe |i|'s expired tags (i < n; the shard of index i calls it
 * for its stripe about once a second). Returns how many. */
size_t kite__tokens_expire(kite__tokens *t, uint32_t i, uint64_t now_s);

/* Tags held now, and the refusals counted so far, over every stripe. */
typedef struct kite__tokens_stats {
  uint64_t held, refused_full, bound_other, used_here, expired;
} kite__tokens_stats;
void kite__tokens_stats_get(kite__tokens *t, kite__tokens_stats *out);

#endif
