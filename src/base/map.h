/*
 * A fixed-capacity hash map from 64-bit keys to 32-bit values: open
 * addressing, linear probing, deletion by backward shift (no tombstones).
 * Sized at creation for the most entries it will ever hold, so it never
 * rehashes on the hot path; keys should already be hashed (kite feeds it
 * keyed SipHash values), so the low bits index directly.
 */
#ifndef KITE_BASE_MAP_H
#define KITE_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kite__map_entry {
  uint64_t key;
  uint32_t value;
  uint32_t used;
} kite__map_entry;

typedef struct kite__map {
  kite__map_entry *slots;
  uint32_t mask;
  uint32_t count, max;
} kite__map;

/* Room for |max| entries (load factor at most 1/2). 0 or KITE_ENOMEM. */
int kite__map_init(kite__map *m, uint32_t max);
void kite__map_free(kite__map *m);

/* 0, KITE_EFULL when |max| entries are held, or KITE_ESTATE when |key| is
 * present already (its value unchanged). */
int kite__map_put(kite__map *m, uint64_t key, uint32_t value);
bool kite__map_get(const kite__map *m, uint64_t key, uint32_t *value);
bool kite__map_del(kite__map *m, uint64_t key);

#endif
