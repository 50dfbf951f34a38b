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
  cfg->keep_segments = 256;
  cfg->keep_rings = 64;
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
  pool->stats.slabs++;
  pool->win_grew = true;
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
  if (pool->stats.segs_used > pool->win_segs_peak)
    pool->win_segs_peak = pool->stats.segs_used;
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
    pool->stats.rings_free--;
  }
#endif
  if (!r) {
    r = calloc((size_t)pool->ring_mask + 1, sizeof(kite__kseg *));
    if (!r)
      return NULL;
    pool->win_grew = true;
  }
  if (++pool->stats.rings_used > pool->win_rings_peak)
    pool->win_rings_peak = pool->stats.rings_used;
  return r;
}

void kite__kcp_pool_ring_put(kite__kcp_pool *pool, kite__kseg **ring) {
  pool->stats.rings_used--;
#ifdef KITE_NOMEMPOOL
  free(ring);
#else
  *(void **)ring = pool->free_rings;
  pool->free_rings = ring;
  pool->stats.rings_free++;
#endif
}

static size_t ring_bytes(const kite__kcp_pool *pool) {
  return ((size_t)pool->ring_mask + 1) * sizeof(kite__kseg *);
}

static size_t slab_bytes(const kite__kcp_pool *pool) {
  return sizeof(slab) + SLAB_SEGS * pool->seg_size;
}

size_t kite__kcp_pool_bytes(const kite__kcp_pool *pool) {
  return (size_t)pool->stats.slabs * slab_bytes(pool) +
         ((size_t)pool->stats.rings_used + pool->stats.rings_free) *
             ring_bytes(pool) +
         pool->cfg.mtu;
}

#ifndef KITE_NOMEMPOOL
static int by_address(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(slab *const *)a, y = (uintptr_t)*(slab *const *)b;
  return x < y ? -1 : x > y;
}

/* The slab (in |sorted|, by address) that holds address |a|. */
static uint32_t slab_of(slab **sorted, uint32_t n, uintptr_t a) {
  uint32_t lo = 0, hi = n;
  while (hi - lo > 1) { /* the last slab starting at or below |a| */
    uint32_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)sorted[mid] <= a)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* Frees up to |excess| chunks' worth of slabs whose chunks are all on the
 * free list. Returns the bytes freed. */
/* Every chunk is free (the usual case once a burst is over): the slabs
 * past the first |keep| go, and the free list is rebuilt from the kept
 * ones' memory, with no walk of the list. */
static size_t trim_all_free(kite__kcp_pool *pool, uint32_t keep) {
  slab **link = (slab **)&pool->slabs;
  for (uint32_t i = 0; i < keep && *link; i++)
    link = &(*link)->next;
  uint32_t going = 0;
  for (slab *s = *link, *next; s; s = next) {
    next = s->next;
    free(s);
    going++;
  }
  *link = NULL;
  pool->stats.slabs -= going;
  pool->free_segs = NULL;
  for (slab *s = pool->slabs; s; s = s->next)
    for (int i = SLAB_SEGS - 1; i >= 0; i--) {
      kite__kseg *seg = (kite__kseg *)(s->mem + (size_t)i * pool->seg_size);
      seg->next = pool->free_segs;
      pool->free_segs = seg;
    }
  return going * slab_bytes(pool);
}

static size_t trim_slabs(kite__kcp_pool *pool, uint32_t excess) {
  uint32_t n = pool->stats.slabs;
  if (excess < SLAB_SEGS || n == 0)
    return 0;
  if (pool->stats.segs_used == 0)
    return trim_all_free(pool, n - excess / SLAB_SEGS);
  /* A walk that found no whole slab is not repeated at once: the next
   * waits 1, 2, 4, then 8 passes, so a long-fragmented pool costs a walk
   * of its free list once in 8 intervals. */
  if (pool->walk_skip) {
    pool->walk_skip--;
    return 0;
  }
  /* One scratch array: the slabs by address, then a free count each. */
  slab **sorted = malloc(n * (sizeof(slab *) + sizeof(uint32_t)));
  if (!sorted)
    return 0; /* next time */
  uint32_t *nfree = (uint32_t *)(sorted + n);
  uint32_t i = 0;
  for (slab *s = pool->slabs; s; s = s->next)
    sorted[i++] = s;
  qsort(sorted, n, sizeof(*sorted), by_address);
  memset(nfree, 0, n * sizeof(*nfree));
  for (kite__kseg *seg = pool->free_segs; seg; seg = seg->next)
    nfree[slab_of(sorted, n, (uintptr_t)seg)]++;
  /* Mark the slabs to free (all chunks free) with UINT32_MAX. */
  uint32_t going = 0;
  for (i = 0; i < n && excess >= SLAB_SEGS; i++) {
    if (nfree[i] == SLAB_SEGS) {
      nfree[i] = UINT32_MAX;
      excess -= SLAB_SEGS;
      going++;
    }
  }
  if (going) {
    kite__kseg **link = &pool->free_segs; /* the free list without them */
    for (kite__kseg *seg = pool->free_segs; seg; seg = seg->next)
      if (nfree[slab_of(sorted, n, (uintptr_t)seg)] != UINT32_MAX) {
        *link = seg;
        link = &seg->next;
      }
    *link = NULL;
    slab **sl = (slab **)&pool->slabs;
    while (*sl) {
      slab *s = *sl;
      if (nfree[slab_of(sorted, n, (uintptr_t)s)] == UINT32_MAX) {
        *sl = s->next;
        free(s);
      } else {
        sl = &s->next;
      }
    }
    pool->stats.slabs -= going;
    pool->walk_backoff = 0;
  } else {
    pool->walk_backoff = pool->walk_backoff ? pool->walk_backoff * 2 : 1;
    if (pool->walk_backoff > 8)
      pool->walk_backoff = 8;
    pool->walk_skip = pool->walk_backoff;
  }
  free(sorted);
  return going * slab_bytes(pool);
}
#endif

size_t kite__kcp_pool_trim(kite__kcp_pool *pool, bool *grew) {
  size_t freed = 0;
  if (grew)
    *grew = pool->win_grew;
#ifndef KITE_NOMEMPOOL
  /* Chunks: keep the larger of the working set and the floor. */
  uint32_t keep = pool->win_segs_peak > pool->cfg.keep_segments
                      ? pool->win_segs_peak
                      : pool->cfg.keep_segments;
  uint32_t held = pool->stats.slabs * SLAB_SEGS;
  if (held > keep)
    freed += trim_slabs(pool, held - keep);
  /* Rings: likewise, counting the ones in use. */
  uint32_t keep_rings = pool->win_rings_peak > pool->cfg.keep_rings
                            ? pool->win_rings_peak
                            : pool->cfg.keep_rings;
  while (pool->free_rings &&
         pool->stats.rings_used + pool->stats.rings_free > keep_rings) {
    void *r = pool->free_rings;
    pool->free_rings = *(void **)r;
    free(r);
    pool->stats.rings_free--;
    freed += ring_bytes(pool);
  }
#endif
  pool->win_segs_peak = pool->stats.segs_used;
  pool->win_rings_peak = pool->stats.rings_used;
  pool->win_grew = false;
  pool->stats.trimmed_bytes += freed;
  return freed;
}
