/*
 * Routing and the hand-over of a session's events to its executor.
 */
#include "logic/logic.h"

#include "logic/worker.h"
#include "server/server_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *kite_worker_mode_name(kite_worker_mode mode) {
  switch (mode) {
  case KITE_WORKERS_INLINE: return "inline";
  case KITE_WORKERS_HASH: return "hash";
  case KITE_WORKERS_BIND: return "bind";
  case KITE_WORKERS_DYNAMIC: return "dynamic";
  }
  return "?";
}

int kite_worker_mode_parse(const char *name) {
  for (int m = KITE_WORKERS_INLINE; m <= KITE_WORKERS_DYNAMIC; m++)
    if (name && !strcmp(name, kite_worker_mode_name((kite_worker_mode)m)))
      return m;
  return -1;
}

int kite__logic_init(kite__logic *lg, kite_server *srv) {
  const kite_server_config *cfg = &srv->cfg;
  memset(lg, 0, sizeof(*lg));
  lg->srv = srv;
  lg->mode = cfg->worker_mode;
  atomic_init(&lg->unrouted, 0);
  atomic_init(&lg->posts_refused, 0);
  atomic_init(&lg->temps_started, 0);
  atomic_init(&lg->temps_running, 0);
  atomic_init(&lg->drop_after_close, 0);
  pthread_mutex_init(&lg->bind_lock, NULL);
  if (lg->mode == KITE_WORKERS_INLINE)
    return 0;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  bool hash = lg->mode == KITE_WORKERS_HASH;
  lg->nworkers = cfg->workers > 0 ? (uint32_t)cfg->workers
                 : hash ? (uint32_t)(cpus > 0 ? cpus : 1)
                        : 64;
  snprintf(lg->no_worker_why, sizeof(lg->no_worker_why),
           "no free worker (%s mode, %u workers)", kite_worker_mode_name(lg->mode),
           lg->nworkers);
  lg->workers = calloc(lg->nworkers, sizeof(*lg->workers));
  if (!lg->workers)
    return KITE_ENOMEM;
  /* Hash: any number of sessions may share one worker's run queue; bind
   * and dynamic: one session each. A mailbox is queued at most once. A
   * bound worker runs one session's timers (256 at most). */
  uint32_t runq = hash ? cfg->max_sessions + 16 : 4;
  uint32_t cap = hash || cfg->timers_max < 256 ? cfg->timers_max : 256;
  for (uint32_t i = 0; i < lg->nworkers; i++) {
    int rc = kite__worker_init(&lg->workers[i], lg, i, runq, KITE__TAG_WORKER(i),
                               48, cap, !hash);
    if (rc < 0)
      return rc;
  }
  if (hash)
    return 0;
  /* The clock: keys that are no session (timer.h), with the tag after
   * the pool's. */
  if (!(lg->clock = calloc(1, sizeof(*lg->clock))))
    return KITE_ENOMEM;
  int rc = kite__worker_init(lg->clock, lg, lg->nworkers, 4,
                             KITE__TAG_WORKER(lg->nworkers), 48, cfg->timers_max,
                             false);
  if (rc < 0)
    return rc;
  if (lg->mode == KITE_WORKERS_DYNAMIC && cfg->max_sessions > lg->nworkers) {
    /* One entry per session the pool cannot take. A large table costs
     * address space only: calloc maps it, and pages fill as it is used. */
    lg->max_temps = cfg->max_sessions - lg->nworkers;
    if (!(lg->temps = calloc(lg->max_temps, sizeof(*lg->temps))))
      return KITE_ENOMEM;
  }
  return 0;
}

int kite__logic_start(kite__logic *lg) {
  /* Inline: no threads; temporary workers: started per session. */
  for (uint32_t i = 0; i < lg->nworkers; i++) {
    int rc = kite__worker_start(&lg->workers[i]);
    if (rc < 0)
      return rc;
  }
  return lg->clock ? kite__worker_start(lg->clock) : 0;
}

void kite__logic_stop(kite__logic *lg) {
  for (uint32_t i = 0; i < lg->nworkers; i++)
    kite__worker_stop(&lg->workers[i]);
  if (lg->clock)
    kite__worker_stop(lg->clock);
  /* Every session was released, so every temporary worker's thread is on
   * its way out (its last step is this count). */
  while (atomic_load_explicit(&lg->temps_running, memory_order_acquire))
    usleep(1000);
}

void kite__logic_free(kite__logic *lg) {
  for (uint32_t i = 0; i < lg->nworkers; i++)
    kite__worker_free(&lg->workers[i]);
  free(lg->workers);
  if (lg->clock) {
    kite__worker_free(lg->clock);
    free(lg->clock);
  }
  for (uint32_t i = 0; i < lg->ntemps; i++) {
    kite__worker *w = atomic_load_explicit(&lg->temps[i], memory_order_relaxed);
    kite__worker_free(w);
    free(w);
  }
  free(lg->temps);
  free(lg->routes);
  pthread_mutex_destroy(&lg->bind_lock);
}

int kite_server_route(kite_server *srv, uint16_t msg_id, kite_handler_fn fn,
                      void *user) {
  kite__logic *lg = &srv->logic;
  if (srv->started)
    return KITE_ESTATE;
  if (msg_id == 0 || msg_id >= 0xFF00)
    return KITE_EINVAL;
  if (!lg->routes && !(lg->routes = calloc(0xFF00, sizeof(*lg->routes))))
    return KITE_ENOMEM;
  lg->routes[msg_id] = (kite__route){fn, user};
  return 0;
}

static _Thread_local kite__mailbox *running_mailbox;

void kite__logic_set_running(kite__mailbox *mb) { running_mailbox = mb; }

bool kite__logic_on_executor(const kite__logic *lg, const kite__session *s) {
  if (lg->mode == KITE_WORKERS_INLINE)
    return kite__shard_current() == s->shard;
  return running_mailbox == &s->mb;
}

int kite_reply(const kite_request *req, uint16_t msg_id, const void *body,
               size_t len) {
  return kite_session_send(req->srv, req->session, msg_id, body, len);
}

void kite__logic_close_requested(kite__logic *lg, kite__session *s) {
  /* Only its executor: it alone knows the slot still holds this session
   * (the slot cannot be released while the executor runs it). */
  if (lg->mode != KITE_WORKERS_INLINE && kite__logic_on_executor(lg, s))
    kite__mailbox_set(&s->mb, KITE__MB_CLOSING);
}

bool kite__logic_closing(const kite__session *s) {
  return !atomic_load_explicit(&s->live, memory_order_relaxed) ||
         (kite__mailbox_flags((kite__mailbox *)&s->mb) & KITE__MB_CLOSING);
}

int kite_session_set_affinity(kite_server *srv, kite_session_id id,
                              uint64_t key) {
  if (srv->logic.mode != KITE_WORKERS_HASH)
    return KITE_ESTATE;
  kite__session *s = kite__session_by_id(srv, id);
  if (!s || !kite__logic_on_executor(&srv->logic, s))
    return KITE_ENOTFOUND;
  atomic_store_explicit(&s->mb.affinity, key, memory_order_relaxed);
  return 0;
}

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
  const kite_server_config *cfg = &lg->srv->cfg;
  uint32_t i = lg->ntemps;
  w->temp = true;
  if (kite__worker_init(w, lg, i, 4, KITE__TAG_TEMP(i), KITE__TEMP_SEQ_BITS,
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

const char *kite__logic_bind(kite__logic *lg, kite__session *s) {
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
    atomic_store_explicit(&found->timers.owner, kite__session_id(s),
                          memory_order_release);
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
  atomic_store_explicit(&s->mb.bound, found, memory_order_release);
  return NULL;
}

void kite__logic_unbind(kite__logic *lg, kite__session *s) {
  kite__worker *w = atomic_load_explicit(&s->mb.bound, memory_order_relaxed);
  if (!w)
    return;
  atomic_store_explicit(&s->mb.bound, NULL, memory_order_release);
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

static kite__worker *worker_of(kite__logic *lg, kite__session *s) {
  kite__worker *bound = atomic_load_explicit(&s->mb.bound, memory_order_relaxed);
  if (bound)
    return bound;
  uint64_t key = atomic_load_explicit(&s->mb.affinity, memory_order_relaxed);
  return &lg->workers[key % lg->nworkers];
}

/* Queues the session on its worker unless it is queued or running. */
void kite__logic_schedule(kite__logic *lg, kite__session *s) {
  if (kite__mailbox_set(&s->mb, KITE__MB_SCHEDULED) & KITE__MB_SCHEDULED)
    return;
  kite__worker_post(worker_of(lg, s), &s->mb);
}

void kite__logic_open(kite__logic *lg, kite__session *s) {
  kite_server *srv = lg->srv;
  if (lg->mode == KITE_WORKERS_INLINE) {
    if (srv->cfg.on_connect) {
      s->in_callback = 1;
      srv->cfg.on_connect(srv, kite__session_id(s), srv->cfg.user);
      s->in_callback = 0;
    }
    return;
  }
  atomic_store_explicit(&s->mb.affinity, kite__session_id(s), memory_order_relaxed);
  kite__mailbox_set(&s->mb, KITE__MB_CONNECT);
  kite__logic_schedule(lg, s);
}

bool kite__logic_deliver(kite__logic *lg, kite__session *s, uint16_t msg_id,
                         const uint8_t *body, uint32_t len) {
  if (lg->mode == KITE_WORKERS_INLINE) {
    s->in_callback = 1;
    kite__logic_dispatch(lg, s, msg_id, body, len);
    s->in_callback = 0;
    return true;
  }
  uint32_t depth = lg->srv->cfg.mailbox_depth, max = lg->srv->cfg.mailbox_bytes;
  if (!kite__mailbox_push(&s->mb, msg_id, body, len, depth, max)) {
    /* Full. Say so, then look again: the worker may have made room just
     * before seeing the flag (it checks the flag after making room, so one
     * of the two always sees the other: mailbox.h). */
    kite__mailbox_set(&s->mb, KITE__MB_BLOCKED);
    if (!kite__mailbox_push(&s->mb, msg_id, body, len, depth, max)) {
      kite__logic_schedule(lg, s);
      return false;
    }
    kite__mailbox_clr(&s->mb, KITE__MB_BLOCKED);
  }
  kite__logic_schedule(lg, s);
  return true;
}

bool kite__logic_close(kite__logic *lg, kite__session *s, uint8_t reason) {
  kite_server *srv = lg->srv;
  if (!s->opened)
    return true;
  if (lg->mode == KITE_WORKERS_INLINE) {
    if (srv->cfg.on_disconnect) {
      s->in_callback = 1;
      srv->cfg.on_disconnect(srv, kite__session_id(s), reason, srv->cfg.user);
      s->in_callback = 0;
    }
    s->user = NULL;
    return true;
  }
  s->mb.reason = reason;
  kite__mailbox_set(&s->mb, KITE__MB_DISCONNECT);
  kite__logic_schedule(lg, s);
  return false;
}

void kite__logic_dispatch(kite__logic *lg, kite__session *s, uint16_t msg_id,
                          const uint8_t *body, size_t len) {
  kite_server *srv = lg->srv;
  kite_session_id id = kite__session_id(s);
  kite__route *r = lg->routes && msg_id < 0xFF00 ? &lg->routes[msg_id] : NULL;
  if (r && r->fn) {
    kite_request req = {srv, id, msg_id, body, len, s->user, r->user};
    r->fn(&req);
  } else if (srv->cfg.on_message) {
    srv->cfg.on_message(srv, id, msg_id, body, len, srv->cfg.user);
  } else {
    atomic_fetch_add_explicit(&lg->unrouted, 1, memory_order_relaxed);
    if (srv->cfg.unrouted == KITE_UNROUTED_CLOSE)
      kite__session_close_any(srv, id, KITE_CLOSE_PROTOCOL);
  }
}
