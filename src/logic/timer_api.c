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

static bool for_key(kite_server *srv, uint64_t key, executor *e) {
  kite__logic *lg = &srv->logic;
  *e = (executor){0};
  switch (lg->mode) {
  case KITE_WORKERS_INLINE:
    e->shard = &srv->shards[key % srv->nshards];
    e->timers = &e->shard->timers;
    return true;
  case KITE_WORKERS_HASH:
    e->worker = &lg->workers[key % lg->nworkers];
    break;
  default: { /* bind, dynamic: the worker of session |key| */
    kite__session *s = kite__session_by_id(srv, key);
    if (!s || !s->mb.bound)
      return false;
    e->worker = s->mb.bound;
  }
  }
  e->timers = &e->worker->timers;
  return true;
}

static bool for_id(kite_server *srv, kite_timer_id id, executor *e) {
  uint32_t tag = (uint32_t)(id >> 48);
  *e = (executor){0};
  if ((tag & 0xFF00) == 0x0100 && (tag & 0xFF) < srv->nshards) {
    e->shard = &srv->shards[tag & 0xFF];
    e->timers = &e->shard->timers;
    return true;
  }
  if ((tag & 0x8000) && (tag & 0x7FFF) < srv->logic.nworkers) {
    e->worker = &srv->logic.workers[tag & 0x7FFF];
    e->timers = &e->worker->timers;
    return true;
  }
  return false;
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

kite_timer_id kite_timer_start(kite_server *srv, uint64_t key,
                               uint32_t delay_ms, uint32_t period_ms,
                               kite_timer_fn fn, void *user) {
  executor e;
  if (!srv->started || !fn || !for_key(srv, key, &e))
    return 0;
  kite__gtimer *g = calloc(1, sizeof(*g));
  if (!g)
    return 0;
  g->op = KITE__TIMER_START;
  g->id = kite__timers_next_id(e.timers);
  g->delay_ms = delay_ms;
  g->period_ms = period_ms;
  g->fn = fn;
  g->user = user;
  kite_timer_id id = g->id;
  if (here(&e))
    return kite__timers_start_here(e.timers, g, kite__now_ms()) == 0 ? id : 0;
  if (!post(&e, g)) {
    free(g);
    return 0;
  }
  return id;
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
