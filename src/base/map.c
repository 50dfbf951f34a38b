#include "base/map.h"

#include "kite/error.h"

#include <stdlib.h>

int kite__map_init(kite__map *m, uint32_t max) {
  uint32_t n = 8;
  while (n < 2 * (uint64_t)max)
    n <<= 1;
  m->slots = calloc(n, sizeof(*m->slots));
  if (!m->slots)
    return KITE_ENOMEM;
  m->mask = n - 1;
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

int kite__map_put(kite__map *m, uint64_t key, uint32_t value) {
  for (uint32_t i = home(m, key);; i = (i + 1) & m->mask) {
    kite__map_entry *e = &m->slots[i];
    if (!e->used) {
      if (m->count >= m->max)
        return KITE_EFULL;
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
