#include "kcp/kcp_pool.h"
#include "kcp/kcp_codec.h"

#include <stdlib.h>
#include <string.h>

/* Chunks per slab: large enough that slab mallocs are rare, small enough
 * that an idle pool holds little (64 x 1.4 KB). */
#define SLAB_SEGS 64

typedef struct slab {
  struct slab *next;
  _Alignas(max_align_t) unsigned char mem[];
} slab;

void kite__kcp_pool_config_default(kite__kcp_pool_config *cfg) {
  cfg->mtu = 1400;
  cfg->wnd_max = 256;
  cfg->max_segments = 65536;
  cfg->reserve = cfg->max_segments / 4;
}

static uint32_t pow2_at_least(uint32_t v) {
  uint32_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}

kite__kcp_pool *kite__kcp_pool_create(const kite__kcp_pool_config *cfg) {
  if (cfg->mtu < 50 || cfg->mtu > 65535 || cfg->wnd_max < 1 ||
      cfg->wnd_max > 32768 || cfg->max_segments < 1 ||
      cfg->reserve >= cfg->max_segments)
    return NULL;
  kite__kcp_pool *pool = calloc(1, sizeof(*pool));
  if (!pool)
    return NULL;
  pool->cfg = *cfg;
  pool->mss = cfg->mtu - KITE_KCP_OVERHEAD;
  size_t align = _Alignof(max_align_t);
  pool->seg_size = (sizeof(kite__kseg) + pool->mss + align - 1) / align * align;
  pool->ring_mask = pow2_at_least(cfg->wnd_max) - 1;
  pool->flush_buf = malloc(cfg->mtu);
  if (!pool->flush_buf) {
    free(pool);
    return NULL;
  }
  return pool;
}

void kite__kcp_pool_destroy(kite__kcp_pool *pool) {
  if (!pool)
    return;
  slab *s = pool->slabs;
  while (s) {
    slab *next = s->next;
    free(s);
    s = next;
  }
  void *r = pool->free_rings;
  while (r) {
    void *next = *(void **)r;
    free(r);
    r = next;
  }
  free(pool->flush_buf);
  free(pool);
}

#ifndef KITE_NOMEMPOOL
static bool grow(kite__kcp_pool *pool) {
  slab *s = malloc(sizeof(slab) + SLAB_SEGS * pool->seg_size);
  if (!s)
    return false;
  s->next = pool->slabs;
  pool->slabs = s;
  for (int i = SLAB_SEGS - 1; i >= 0; i--) {
    kite__kseg *seg = (kite__kseg *)(s->mem + (size_t)i * pool->seg_size);
    seg->next = pool->free_segs;
    pool->free_segs = seg;
  }
  return true;
}
#endif

bool kite__kcp_pool_can_get(const kite__kcp_pool *pool, uint32_t n) {
  uint32_t limit = pool->cfg.max_segments - pool->cfg.reserve;
  return pool->stats.segs_used <= limit && n <= limit - pool->stats.segs_used;
}

kite__kseg *kite__kcp_pool_seg_get(kite__kcp_pool *pool, bool reserved) {
  uint32_t limit = pool->cfg.max_segments;
  if (!reserved)
    limit -= pool->cfg.reserve;
  if (pool->stats.segs_used >= limit)
    return NULL;
  kite__kseg *seg;
#ifdef KITE_NOMEMPOOL
  seg = malloc(pool->seg_size);
  if (!seg)
    return NULL;
#else
  if (!pool->free_segs && !grow(pool))
    return NULL;
  seg = pool->free_segs;
  pool->free_segs = seg->next;
#endif
  seg->next = NULL;
  if (++pool->stats.segs_used > pool->stats.segs_peak)
    pool->stats.segs_peak = pool->stats.segs_used;
  return seg;
}

void kite__kcp_pool_seg_put(kite__kcp_pool *pool, kite__kseg *seg) {
  pool->stats.segs_used--;
#ifdef KITE_NOMEMPOOL
  free(seg);
#else
  seg->next = pool->free_segs;
  pool->free_segs = seg;
#endif
}

kite__kseg **kite__kcp_pool_ring_get(kite__kcp_pool *pool) {
  kite__kseg **r = NULL;
#ifndef KITE_NOMEMPOOL
  /* A ring on the free list is all NULL (the put contract) but for slot 0,
   * which links the list: clearing that one slot is enough. */
  r = pool->free_rings;
  if (r) {
    pool->free_rings = *(void **)r;
    r[0] = NULL;
  }
#endif
  if (!r) {
    r = calloc((size_t)pool->ring_mask + 1, sizeof(kite__kseg *));
    if (!r)
      return NULL;
  }
  pool->stats.rings_used++;
  return r;
}

void kite__kcp_pool_ring_put(kite__kcp_pool *pool, kite__kseg **ring) {
  pool->stats.rings_used--;
#ifdef KITE_NOMEMPOOL
  free(ring);
#else
  *(void **)ring = pool->free_rings;
  pool->free_rings = ring;
#endif
}
