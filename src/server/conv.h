/*
 * A v1 conv (PROTOCOL.md section 2): the owning shard in the low byte, the
 * first byte on the wire (the kernel steers by it), and 24 random bits
 * above. Nothing in it is guessable but the shard: an off-path spoofer who
 * knows a player's address must still hit one of 2^24 values per shard.
 * The shard finds a session by conv in its map of live convs (shard.h).
 */
#ifndef KITE_SERVER_CONV_H
#define KITE_SERVER_CONV_H

#include "base/map.h"

#include <stdbool.h>
#include <stdint.h>

#define KITE__CONV_RANDOM_BITS 24

static inline uint32_t kite__conv_shard(uint32_t conv) { return conv & 0xFF; }

/* The conv |shard| and |random|'s low 24 bits make. */
static inline uint32_t kite__conv_make(uint32_t shard, uint32_t random) {
  return (shard & 0xFF) | (random << 8);
}

/* A conv's key in its shard's map: the random bits low (the map indexes
 * by the low bits, and the shard byte is the same for every key). */
static inline uint64_t kite__conv_key(uint32_t conv) {
  return (uint64_t)(conv >> 8) | (uint64_t)(conv & 0xFF) << 32;
}

/* Whether a server may hand out |conv|: never the control magic, never
 * one of the shard's live convs (|live|, keyed by kite__conv_key()). */
bool kite__conv_usable(const kite__map *live, uint32_t conv);

/* A fresh conv for |shard|: 24 bits from libsodium's generator, drawn
 * again until kite__conv_usable(). |live| holds fewer than 2^23 entries
 * (it holds a shard's sessions), so a draw succeeds with odds over 1/2.
 * Shard thread (|live| is the shard's). */
uint32_t kite__conv_new(const kite__map *live, uint32_t shard);

#endif
