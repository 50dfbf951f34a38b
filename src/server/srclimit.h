/*
 * Sessions per source (docs/SECURITY.md): how many sessions, and how many
 * of them half-open, one address and one prefix (/24 for IPv4, /64 for
 * IPv6; an IPv4-mapped IPv6 address counts as IPv4) hold on a shard.
 * Without it one address takes every slot with one HELLO and CONNECT per
 * slot, and keeps them with a segment every few seconds.
 *
 * A hash map from a keyed hash (SipHash, libsodium) of the address or
 * prefix to a count record: the records are sized at creation for the
 * most sources the shard's sessions can come from; the map grows with the
 * sources counted and shrinks when the shard trims (kite__srclimit_trim);
 * a record is freed when its counts reach 0. Transport-neutral:
 * a TCP accept path can count its sessions in the same table.
 *
 * Ownership: one table per shard, touched by the shard thread alone.
 */
#ifndef KITE_SERVER_SRCLIMIT_H
#define KITE_SERVER_SRCLIMIT_H

#include "base/map.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Limits per source, each 0 for none. */
typedef struct kite__srclimit_limits {
  uint32_t per_addr, per_prefix;                   /* sessions, any state */
  uint32_t halfopen_per_addr, halfopen_per_prefix; /* of them half-open */
} kite__srclimit_limits;

typedef struct kite__src_count {
  uint32_t open, halfopen;
  uint32_t next_free; /* on the free list: the next record's index */
} kite__src_count;

typedef struct kite__srclimit {
  kite__srclimit_limits lim;
  kite__map map;           /* source key -> index in |counts| */
  kite__src_count *counts; /* NULL when every limit is 0 */
  uint32_t free_head;
  uint8_t key[16]; /* SipHash key: a sender cannot aim at one map run */
} kite__srclimit;

/* Why kite__srclimit_add() refused. */
enum {
  KITE__SRC_OVER_SESSIONS = 1, /* per_addr or per_prefix */
  KITE__SRC_OVER_HALFOPEN = 2, /* halfopen_per_addr or halfopen_per_prefix */
};

/* A source's two keys: its address, its prefix (0: not counted). */
typedef struct kite__src_keys {
  uint64_t addr, prefix;
} kite__src_keys;

/* A table for |max_sessions| sessions at once; |key| is copied. 0 or
 * KITE_ENOMEM. */
int kite__srclimit_init(kite__srclimit *l, const kite__srclimit_limits *lim,
                        uint32_t max_sessions, const uint8_t key[16]);
void kite__srclimit_free(kite__srclimit *l);

/* |a|'s keys (one SipHash each, for the dimensions a limit is set on). */
kite__src_keys kite__srclimit_keys(const kite__srclimit *l, const struct sockaddr *a);

/* One more half-open session from |k|: 0 (counted), or KITE__SRC_OVER_*
 * (nothing counted) when it would pass a limit (or, out of memory, could
 * not be counted: KITE__SRC_OVER_SESSIONS). */
int kite__srclimit_add(kite__srclimit *l, const kite__src_keys *k);
/* A counted session from |k| opened: half-open no more. */
void kite__srclimit_opened(kite__srclimit *l, const kite__src_keys *k);
/* A counted session from |k| ended (|was_open|: it had opened). */
void kite__srclimit_remove(kite__srclimit *l, const kite__src_keys *k,
                           bool was_open);
/* Shrinks the map once mostly empty (base/map.h): bytes given back. */
static inline size_t kite__srclimit_trim(kite__srclimit *l) {
  return l->counts ? kite__map_shrink(&l->map) : 0;
}
/* Records in use (tests, metrics). */
static inline uint32_t kite__srclimit_sources(const kite__srclimit *l) {
  return l->counts ? l->map.count : 0;
}

#endif
