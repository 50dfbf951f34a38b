#include "base/map.h"

#include "kite/error.h"

#include <stdlib.h>

int kite__map_init(kite__map *m, uint32_t max) {
  m->slots = calloc(KITE__MAP_MIN_SLOTS, sizeof(*m->slots));
  if (!m->slots)
    return KITE_ENOMEM;
  m->mask = KITE__MAP_MIN_SLOTS - 1;
  m->count = 0;
  m->max = max;
  return 0;
}

void kite__map_free(kite__map *m) {
  free(m->slots);
  m->slots = NULL;
}

static uint32_t home(const kite__map *m, uint64_t key) {
  /* Keys are hashes already; fold the high half in for keys that are not. */
  return (uint32_t)(key ^ (key >> 32)) & m->mask;
}

/* Moves every entry into a fresh table of |n| slots (a power of two that
 * holds them at load 1/2 at most). false, map unchanged, when out of
 * memory. */
static bool rehash(kite__map *m, uint32_t n) {
  kite__map_entry *slots = calloc(n, sizeof(*slots));
  if (!slots)
    return false;
  kite__map_entry *old = m->slots;
  uint32_t old_n = m->mask + 1;
  m->slots = slots;
  m->mask = n - 1;
  for (uint32_t i = 0; i < old_n; i++) {
    if (!old[i].used)
      continue;
    uint32_t j = home(m, old[i].key);
    while (slots[j].used)
      j = (j + 1) & m->mask;
    slots[j] = old[i];
  }
  free(old);
  return true;
}

int kite__map_put(kite__map *m, uint64_t key, uint32_t value) {
  for (uint32_t i = home(m, key);; i = (i + 1) & m->mask) {
    kite__map_entry *e = &m->slots[i];
    if (!e->used) {
      if (m->count >= m->max)
        return KITE_EFULL;
      if (2 * ((uint64_t)m->count + 1) > (uint64_t)m->mask + 1) {
        /* Over load 1/2: double, then find the key's place again. */
        if (!rehash(m, 2 * (m->mask + 1)))
          return KITE_ENOMEM;
        return kite__map_put(m, key, value);
      }
      e->key = key;
      e->value = value;
      e->used = 1;
      m->count++;
      return 0;
    }
    if (e->key == key)
      return KITE_ESTATE;
  }
}

bool kite__map_get(const kite__map *m, uint64_t key, uint32_t *value) {
  for (uint32_t i = home(m, key);; i = (i + 1) & m->mask) {
    const kite__map_entry *e = &m->slots[i];
    if (!e->used)
      return false;
    if (e->key == key) {
      *value = e->value;
      return true;
    }
  }
}

bool kite__map_del(kite__map *m, uint64_t key) {
  uint32_t i = home(m, key);
  for (;; i = (i + 1) & m->mask) {
    if (!m->slots[i].used)
      return false;
    if (m->slots[i].key == key)
      break;
  }
  /* Backward shift: pull later entries of the probe run into the hole, so
   * lookups never need tombstones. */
  uint32_t hole = i;
  for (uint32_t j = (i + 1) & m->mask; m->slots[j].used; j = (j + 1) & m->mask) {
    uint32_t h = home(m, m->slots[j].key);
    /* Move j into the hole unless its home lies cyclically in (hole, j]. */
    bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
    if (!stays) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].used = 0;
  m->count--;
  return true;
}

size_t kite__map_shrink(kite__map *m) {
  uint32_t n = m->mask + 1;
  if (n <= KITE__MAP_MIN_SLOTS || 8 * (uint64_t)m->count >= n)
    return 0;
  uint32_t to = n;
  while (to > KITE__MAP_MIN_SLOTS && 4 * (uint64_t)m->count <= to / 2)
    to /= 2;
  if (!rehash(m, to))
    return 0;
  return (size_t)(n - to) * sizeof(kite__map_entry);
}
