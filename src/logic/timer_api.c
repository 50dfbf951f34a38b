/*
 * kite_timer_start / kite_timer_stop (include/kite/timer.h): find the
 * executor that owns a key, and start or stop there: directly when the
 * caller is that executor, else through its command queue.
 */
#include "kite/timer.h"

#include "base/clock.h"
#include "logic/timer_tag.h"
#include "logic/worker.h"
#include "server/port.h"

#include <stdlib.h>

typedef struct executor {
  kite__timers *timers;
  int shard;            /* inline: its shard's index; else -1 and */
  kite__worker *worker;
} executor;

/* The executor of |key| (timer.h): 0, or KITE_ENOTFOUND (bind, dynamic:
 * no live session has that id). */
static int for_key(kite_server *srv, uint64_t key, executor *e) {
  kite__logic *lg = kite__port_logic(srv);
  *e = (executor){.shard = -1};
  switch (lg->mode) {
  case KITE_WORKERS_INLINE:
    e->shard = (int)(key % lg->nshards);
    e->timers = &lg->shard_timers[e->shard];
    return 0;
  case KITE_WORKERS_HASH:
    e->worker = &lg->workers[key % lg->nworkers];
    break;
  default: /* bind, dynamic: the clock, or the worker of session |key| */
    if (key & KITE_TIMER_CLOCK_KEY(0)) {
      e->worker = lg->clock;
    } else {
      kite__lsess *ls = kite__port_lsess(srv, key);
      kite__worker *w =
          ls ? atomic_load_explicit(&ls->mb.bound, memory_order_acquire) : NULL;
      if (!w || !kite__port_session_live(srv, key))
        return KITE_ENOTFOUND;
      e->worker = w;
    }
  }
  e->timers = &e->worker->timers;
  return 0;
}

static bool for_id(kite_server *srv, kite_timer_id id, executor *e) {
  kite__logic *lg = kite__port_logic(srv);
  uint32_t i;
  *e = (executor){.shard = -1};
  if (kite__ttag_is_shard(id, &i)) {
    if (!lg->shard_timers || i >= lg->nshards)
      return false;
    e->shard = (int)i;
    e->timers = &lg->shard_timers[i];
    return true;
  }
  if (kite__ttag_is_worker(id, &i)) {
    e->worker = i < lg->nworkers ? &lg->workers[i]
                : i == lg->nworkers ? lg->clock : NULL;
  } else if (kite__ttag_is_temp(id, &i)) {
    e->worker = i < lg->max_temps
                    ? atomic_load_explicit(&lg->temps[i], memory_order_acquire)
                    : NULL;
  }
  if (!e->worker)
    return false;
  e->timers = &e->worker->timers;
  return true;
}

static bool here(kite_server *srv, const executor *e) {
  return e->shard >= 0 ? kite__port_shard_current(srv) == e->shard
                       : kite__worker_current() == e->worker;
}

static bool post(kite_server *srv, const executor *e, kite__gtimer *cmd) {
  if (!kite__timers_post(e->timers, cmd))
    return false;
  if (e->shard >= 0)
    kite__port_wake_shard(srv, (uint32_t)e->shard);
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
  if (!kite__port_running(srv))
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
  if (here(srv, &e)) {
    if ((rc = kite__timers_start_here(e.timers, g, kite__now_ms())) < 0)
      return rc; /* KITE_EFULL: timers_max running here */
  } else if (!post(srv, &e, g)) {
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
  if (here(srv, &e))
    return kite__timers_stop_here(e.timers, id);
  kite__gtimer *cmd = calloc(1, sizeof(*cmd));
  if (!cmd)
    return KITE_ENOMEM;
  cmd->op = KITE__TIMER_STOP;
  cmd->id = id;
  if (!post(srv, &e, cmd)) {
    free(cmd);
    return KITE_EFULL;
  }
  return 0;
}
