/*
 * The workers' metrics families (docs/OPERATIONS.md): each worker's queue
 * and messages run, and in bind and dynamic modes how many are bound.
 * Runs on the metrics thread: it reads atomics only.
 */
#include "logic/logic_internal.h"

#include "ops/metrics.h"

#include <stdio.h>

void kite__logic_metrics(const kite__logic *lg, kite__prom *p) {
  if (!lg->nworkers)
    return;
  char w[16];
  kite__prom_family(p, "kite_worker_sessions_queued", "gauge",
                    "sessions waiting in a worker's run queue now");
  for (uint32_t i = 0; i < lg->nworkers; i++) {
    snprintf(w, sizeof(w), "%u", i);
    kite__prom_sample(p, "kite_worker_sessions_queued", "worker", w,
                      (double)atomic_load_explicit(&lg->workers[i].queued,
                                                   memory_order_relaxed));
  }
  kite__prom_family(p, "kite_worker_messages_total", "counter",
                    "messages a worker has run");
  for (uint32_t i = 0; i < lg->nworkers; i++) {
    snprintf(w, sizeof(w), "%u", i);
    kite__prom_sample(p, "kite_worker_messages_total", "worker", w,
                      (double)atomic_load_explicit(&lg->workers[i].executed,
                                                   memory_order_relaxed));
  }
  uint32_t busy = 0;
  for (uint32_t i = 0; i < lg->nworkers; i++)
    busy += atomic_load_explicit(&lg->workers[i].in_use, memory_order_relaxed);
  busy += (uint32_t)atomic_load_explicit(&lg->temps_running, memory_order_relaxed);
  if (lg->mode == KITE_WORKERS_BIND || lg->mode == KITE_WORKERS_DYNAMIC) {
    kite__prom_family(p, "kite_workers_bound", "gauge",
                      "workers bound to a session now");
    kite__prom_sample(p, "kite_workers_bound", NULL, NULL, busy);
  }
}
