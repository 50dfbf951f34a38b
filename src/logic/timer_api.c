/*
 * kite_timer_start / kite_timer_stop (include/kite/timer.h): find the
 * executor that owns a key, and start or stop there: directly when the
 * caller is that executor, else through its command queue.
 */
#include "kite/timer.h"

#include "base/clock.h"
#include "logic/worker.h"
#include "server/server_internal.h"

#include <stdlib.h>

typedef struct executor {
  kite__timers *timers;
  kite__shard *shard;   /* or */
  kite__worker *worker;
} executor;

/* The executor of |key| (timer.h): 0, or KITE_ENOTFOUND (bind, dynamic:
 * no live session has that id). */
static int for_key(kite_server *srv, uint64_t key, executor *e) {
  kite__logic *lg = &srv->logic;
  *e = (executor){0};
  switch (lg->mode) {
  case KITE_WORKERS_INLINE:
    e->shard = &srv->shards[key % srv->nshards];
    e->timers = &e->shard->timers;
    return 0;
  case KITE_WORKERS_HASH:
    e->worker = &lg->workers[key % lg->nworkers];
    break;
  default: /* bind, dynamic: the clock, or the worker of session |key| */
    if (key & KITE_TIMER_CLOCK_KEY(0)) {
      e->worker = lg->clock;
    } else {
      kite__session *s = kite__session_by_id(srv, key);
      kite__worker *w = s ? atomic_load_explicit(&s->mb.bound, memory_order_acquire) : NULL;
      if (!w || !atomic_load_explicit(&s->live, memory_order_relaxed))
        return KITE_ENOTFOUND;
      e->worker = w;
    }
  }
  e->timers = &e->worker->timers;
  return 0;
}

static bool for_id(kite_server *srv, kite_timer_id id, executor *e) {
  kite__logic *lg = &srv->logic;
  uint32_t tag = (uint32_t)(id >> 48);
  *e = (executor){0};
  if ((tag & 0xFF00) == 0x0100 && (tag & 0xFF) < srv->nshards) {
    e->shard = &srv->shards[tag & 0xFF];
    e->timers = &e->shard->timers;
    return true;
  }
  if (tag & 0x8000) {
    uint32_t i = tag & 0x7FFF;
    e->worker = i < lg->nworkers ? &lg->workers[i]
                : i == lg->nworkers ? lg->clock : NULL;
  } else if (id >> 62 == 1) {
    uint64_t i = (id >> KITE__TEMP_SEQ_BITS) & 0xFFFFFF;
    e->worker = i < lg->max_temps
                    ? atomic_load_explicit(&lg->temps[i], memory_order_acquire)
                    : NULL;
  }
  if (!e->worker)
    return false;
  e->timers = &e->worker->timers;
  return true;
}

static bool here(const executor *e) {
  return e->shard ? kite__shard_current() == e->shard
                  : kite__worker_current() == e->worker;
}

static bool post(const executor *e, kite__gtimer *cmd) {
  if (!kite__timers_post(e->timers, cmd))
    return false;
  if (e->shard)
    kite__shard_wake(e->shard);
  else
    kite__worker_wake(e->worker);
  return true;
}

int kite_timer_start(kite_server *srv, uint64_t key, uint32_t delay_ms,
                     uint32_t period_ms, kite_timer_fn fn, void *user,
                     kite_timer_id *out) {
  if (out)
    *out = 0;
  if (!srv || !fn)
    return KITE_EINVAL;
  if (!srv->started || atomic_load_explicit(&srv->stopping, memory_order_relaxed))
    return KITE_ESTATE;
  executor e;
  int rc = for_key(srv, key, &e);
  if (rc < 0)
    return rc;
  kite__gtimer *g = calloc(1, sizeof(*g));
  if (!g)
    return KITE_ENOMEM;
  g->op = KITE__TIMER_START;
  g->id = kite__timers_next_id(e.timers);
  g->key = key;
  g->delay_ms = delay_ms;
  g->period_ms = period_ms;
  g->fn = fn;
  g->user = user;
  kite_timer_id id = g->id;
  if (here(&e)) {
    if ((rc = kite__timers_start_here(e.timers, g, kite__now_ms())) < 0)
      return rc; /* KITE_EFULL: timers_max running here */
  } else if (!post(&e, g)) {
    free(g);
    return KITE_EFULL; /* its command queue: as many as timers_max allows */
  }
  if (out)
    *out = id;
  return 0;
}

int kite_timer_stop(kite_server *srv, kite_timer_id id) {
  executor e;
  if (!for_id(srv, id, &e))
    return KITE_ENOTFOUND;
  if (here(&e))
    return kite__timers_stop_here(e.timers, id);
  kite__gtimer *cmd = calloc(1, sizeof(*cmd));
  if (!cmd)
    return KITE_ENOMEM;
  cmd->op = KITE__TIMER_STOP;
  cmd->id = id;
  if (!post(&e, cmd)) {
    free(cmd);
    return KITE_EFULL;
  }
  return 0;
}
