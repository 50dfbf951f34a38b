/*
 * Per-source limits for TCP connections (issue 15): how many connections
 * one address, and one prefix (IPv4 /24, IPv6 /64), may hold at once,
 * server-wide. The kernel spreads one source's connections over every
 * shard's listener, so the counts are shared: two tables of relaxed
 * atomic counters, indexed by a keyed hash (SipHash, a key drawn at
 * create) of the address or the prefix. No lock and no allocation after
 * create; memory is fixed whatever the number of sources. Two sources
 * that share a bucket share its count, so a collision can only make the
 * limit stricter, and the key keeps a peer from aiming one at a victim.
 *
 * Owner: the server (created and freed with it); every shard thread
 * acquires and releases through atomics. A connection is counted from
 * its accept until its descriptor is closed (lingering included).
 */
#ifndef KITE_SERVER_TCP_SOURCE_H
#define KITE_SERVER_TCP_SOURCE_H

#include "net/addr.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define KITE__SRC_BUCKETS 32768 /* per table: 128 KiB each */
#define KITE__SRC_NONE UINT32_MAX

typedef struct kite__src_limit {
  uint8_t key[16];
  uint32_t max_addr, max_prefix; /* 0: that limit is off */
  _Atomic uint32_t addr[KITE__SRC_BUCKETS];
  _Atomic uint32_t prefix[KITE__SRC_BUCKETS];
} kite__src_limit;

/* What a connection holds: its buckets, or KITE__SRC_NONE. */
typedef struct kite__src_hold {
  uint32_t addr, prefix;
} kite__src_hold;

enum { KITE__SRC_OK = 0, KITE__SRC_ADDR = 1, KITE__SRC_PREFIX = 2 };

/* NULL on no memory. Any thread (create's). */
kite__src_limit *kite__src_limit_new(uint32_t max_addr, uint32_t max_prefix);
void kite__src_limit_free(kite__src_limit *l);
/* The address's and the prefix's key bytes (IPv4-mapped IPv6 is IPv4):
 * exposed for the unit test. Returns the bytes written to |out| (17 at
 * most); |prefix| keeps the /24 or /64 only. */
size_t kite__src_key(const kite__addr *a, bool prefix, uint8_t out[17]);
/* Counts a connection from |a| (|hold| filled), or refuses it:
 * KITE__SRC_ADDR or KITE__SRC_PREFIX, nothing counted. Any thread. */
int kite__src_acquire(kite__src_limit *l, const kite__addr *a,
                      kite__src_hold *hold);
/* Gives back what |hold| counts (and clears it). Any thread. */
void kite__src_release(kite__src_limit *l, kite__src_hold *hold);

#endif
