/*
 * Bind and dynamic modes: which worker a session gets. The pool first;
 * in dynamic mode, past the pool, a temporary worker whose thread starts
 * for the session and ends with it (its record kept for the next one).
 */
#include "logic/logic_internal.h"
#include "logic/timer_tag.h"
#include "logic/worker.h"

#include <stdlib.h>

/* A temporary worker for a session, from the idle records or a new one;
 * NULL when max_temps are made and none is idle. Under bind_lock. */
static kite__worker *take_temp(kite__logic *lg) {
  kite__worker *w = lg->temp_free;
  if (w) {
    lg->temp_free = w->free_next;
    w->free_next = NULL;
    return w;
  }
  if (lg->ntemps == lg->max_temps || !(w = calloc(1, sizeof(*w))))
    return NULL;
  const kite_server_config *cfg = lg->cfg;
  uint32_t i = lg->ntemps;
  w->temp = true;
  if (kite__worker_init(w, lg, i, 4, kite__ttag_temp(i), KITE__TTAG_TEMP_SEQ_BITS,
                        cfg->timers_max < 256 ? cfg->timers_max : 256, true) < 0) {
    kite__worker_free(w);
    free(w);
    return NULL;
  }
  /* Published for timer ids (timer_api.c) before any id names it. */
  atomic_store_explicit(&lg->temps[i], w, memory_order_release);
  lg->ntemps++;
  return w;
}

/* Back to the idle list when both its thread has ended and its session
 * is unbound. Under bind_lock. */
static void temp_idle(kite__logic *lg, kite__worker *w) {
  if (atomic_load(&w->in_use) || atomic_load(&w->running))
    return;
  w->free_next = lg->temp_free;
  lg->temp_free = w;
}

const char *kite__logic_bind(kite__logic *lg, kite__lsess *ls,
                             kite_session_id id) {
  /* The slot's next session: its state starts afresh (the last one's
   * on_disconnect ran, or it never opened). */
  ls->id = id;
  atomic_store_explicit(&ls->mb.flags, 0, memory_order_relaxed);
  if (lg->mode != KITE_WORKERS_BIND && lg->mode != KITE_WORKERS_DYNAMIC)
    return NULL;
  kite__worker *found = NULL;
  pthread_mutex_lock(&lg->bind_lock);
  for (uint32_t i = 0; i < lg->nworkers && !found; i++)
    if (!atomic_load(&lg->workers[i].in_use))
      found = &lg->workers[i]; /* the pool first */
  if (!found && lg->mode == KITE_WORKERS_DYNAMIC)
    found = take_temp(lg);
  if (found) {
    atomic_store(&found->in_use, true);
    atomic_store_explicit(&found->timers.owner, id, memory_order_release);
    if (found->temp) /* under the lock: temp_exit must see it running */
      atomic_store(&found->running, true);
  }
  pthread_mutex_unlock(&lg->bind_lock);
  if (!found)
    return lg->no_worker_why;
  if (found->temp) {
    atomic_fetch_add_explicit(&lg->temps_running, 1, memory_order_relaxed);
    if (kite__worker_start(found) < 0) {
      atomic_fetch_sub_explicit(&lg->temps_running, 1, memory_order_relaxed);
      pthread_mutex_lock(&lg->bind_lock);
      atomic_store(&found->running, false);
      atomic_store(&found->in_use, false);
      temp_idle(lg, found);
      pthread_mutex_unlock(&lg->bind_lock);
      return "no worker (dynamic mode: a temporary worker's thread could not start)";
    }
    atomic_fetch_add_explicit(&lg->temps_started, 1, memory_order_relaxed);
  }
  atomic_store_explicit(&ls->mb.bound, found, memory_order_release);
  return NULL;
}

void kite__logic_unbind(kite__logic *lg, kite__lsess *ls) {
  /* The session's mailbox ring goes with it: kept per slot, a burst in a
   * worker mode pinned one ring (mailbox_depth pointers) per slot it had
   * used, for the life of the server. Its executor is done with it (its
   * on_disconnect ran, DONE; or it never opened); the next session that
   * gets a frame allocates one again. */
  kite__mailbox_clear(&ls->mb);
  kite__worker *w = atomic_load_explicit(&ls->mb.bound, memory_order_relaxed);
  if (!w)
    return;
  atomic_store_explicit(&ls->mb.bound, NULL, memory_order_release);
  if (!w->temp) {
    atomic_store(&w->in_use, false);
    return;
  }
  /* A session that never opened (a half-open one expired, a bad OPEN)
   * never gave its thread a turn to end with: tell it to end now. After a
   * turn that ended the session it is on its way out anyway. */
  atomic_store_explicit(&w->stop, true, memory_order_release);
  kite__worker_wake(w);
  pthread_mutex_lock(&lg->bind_lock);
  atomic_store(&w->in_use, false);
  temp_idle(lg, w);
  pthread_mutex_unlock(&lg->bind_lock);
}

void kite__logic_temp_exit(kite__logic *lg, kite__worker *w) {
  pthread_mutex_lock(&lg->bind_lock);
  atomic_store(&w->running, false);
  temp_idle(lg, w);
  pthread_mutex_unlock(&lg->bind_lock);
  /* The last touch: from here kite__logic_stop may go on and free. */
  atomic_fetch_sub_explicit(&lg->temps_running, 1, memory_order_release);
}
