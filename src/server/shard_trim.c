/*
 * Memory given back after a burst (docs/RUNTIME.md): a shard's trim pass,
 * every trim_interval_ms, on its own thread, off the datagram path. What
 * the pass frees is what the shard held through a whole interval without
 * needing it; what stays is bounded (the keeps, the tables' minimum).
 */
#include "server/server_internal.h"

#include "base/time.h"

#include <stdatomic.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* malloc_trim(0) walks every arena and hands their free pages back to the
 * kernel; it takes each arena's lock in turn, so it runs only when worth
 * it: this shard freed something and grew nothing in the interval, malloc
 * holds at least malloc_trim_min bytes free, and no shard called it in the
 * last interval. */
static void maybe_malloc_trim(kite__shard *sh) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  kite_server *srv = sh->srv;
  uint32_t min = srv->cfg.malloc_trim_min;
  if (!min)
    return;
  uint32_t last = atomic_load_explicit(&srv->malloc_trim_ms, memory_order_relaxed);
  if (last && (int32_t)(sh->now - last) < (int32_t)srv->cfg.trim_interval_ms)
    return;
  struct mallinfo2 mi = mallinfo2(); /* all arenas: fordblks is what is free */
  if (mi.fordblks < min)
    return;
  if (!atomic_compare_exchange_strong_explicit(&srv->malloc_trim_ms, &last,
                                               sh->now | 1, memory_order_relaxed,
                                               memory_order_relaxed))
    return; /* another shard's, just now */
  malloc_trim(0);
  KITE__STAT_INC(sh, malloc_trims);
#else
  (void)sh; /* another libc: what free() gives back is all */
#endif
}

size_t kite__shard_trim(kite__shard *sh) {
  bool grew = false;
  size_t pool = kite__kcp_pool_trim(sh->pool, &grew);
  size_t maps = 0, m;
  uint32_t shrunk = 0;
  if ((m = kite__map_shrink(&sh->hs)))
    maps += m, shrunk++;
  if ((m = kite__map_shrink(&sh->convs)))
    maps += m, shrunk++;
  if ((m = kite__srclimit_trim(&sh->srcs)))
    maps += m, shrunk++;
  if ((m = kite__logic_shard_trim(sh->srv->logic, sh->index)))
    maps += m, shrunk++;
  KITE__STAT_ADD(sh, pool_trimmed_bytes, pool);
  KITE__STAT_ADD(sh, map_shrinks, shrunk);
  atomic_store_explicit(&sh->stats[KITE__ST_pool_bytes],
                        kite__kcp_pool_bytes(sh->pool), memory_order_relaxed);
  bool freed = pool || maps || sh->trim_sessions_peak > sh->nsessions;
  sh->trim_sessions_peak = sh->nsessions;
  if (freed && !grew)
    maybe_malloc_trim(sh);
  return pool + maps;
}

void kite__shard_trim_tick(kite__shard *sh) {
  uint32_t interval = sh->srv->cfg.trim_interval_ms;
  if (!interval)
    return;
  if (sh->nsessions > sh->trim_sessions_peak)
    sh->trim_sessions_peak = sh->nsessions;
  if (!sh->trim_due_ms) {
    sh->trim_due_ms = (sh->now + interval) | 1;
    return;
  }
  if (!kite__ms_reached(sh->now, sh->trim_due_ms))
    return;
  sh->trim_due_ms = (sh->now + interval) | 1;
  kite__shard_trim(sh);
}
