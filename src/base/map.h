/*
 * A hash map from 64-bit keys to 32-bit values: open addressing, linear
 * probing, deletion by backward shift (no tombstones). Keys should already
 * be hashed (kite feeds it keyed SipHash values), so the low bits index
 * directly.
 *
 * It holds at most |max| entries (its bound, set at init) in a table that
 * starts small (KITE__MAP_MIN_SLOTS) and doubles as entries come, so the
 * load stays at most 1/2: a put that doubles it rehashes (amortised O(1),
 * log2(max) times at most from empty), and fails with KITE_ENOMEM only if
 * that allocation does. Gets and deletes never allocate. The table never
 * shrinks by itself: kite__map_shrink(), called by the owner when it is
 * idle, halves it down while the load is under 1/8, to at most 1/4, so a
 * put after a shrink cannot grow it again until the count has doubled
 * (hysteresis: a map near a boundary does not rehash back and forth).
 *
 * Not thread-safe: one owner.
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
  uint32_t mask;  /* slots - 1, a power of two at least KITE__MAP_MIN_SLOTS */
  uint32_t count, max;
} kite__map;

#define KITE__MAP_MIN_SLOTS 64u /* 1 KiB: what an empty map keeps */

/* An empty map for at most |max| entries. 0 or KITE_ENOMEM. */
int kite__map_init(kite__map *m, uint32_t max);
void kite__map_free(kite__map *m);

/* 0, KITE_EFULL when |max| entries are held, KITE_ESTATE when |key| is
 * present already (its value unchanged), or KITE_ENOMEM when the table
 * had to grow and could not (nothing changed). */
int kite__map_put(kite__map *m, uint64_t key, uint32_t value);
bool kite__map_get(const kite__map *m, uint64_t key, uint32_t *value);
bool kite__map_del(kite__map *m, uint64_t key);

/* Shrinks the table while it is larger than the minimum and under 1/8
 * full, to the smallest size at most 1/4 full. Returns the bytes given
 * back (0: nothing to do, or the smaller table could not be allocated and
 * the map is unchanged). */
size_t kite__map_shrink(kite__map *m);

/* Bytes the table holds now. */
static inline size_t kite__map_bytes(const kite__map *m) {
  return m->slots ? ((size_t)m->mask + 1) * sizeof(kite__map_entry) : 0;
}

#endif
