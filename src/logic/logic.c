/*
 * The layer's life, routing, and the hand-over of a session's events to
 * its executor: the shard itself (inline) or a worker's mailbox.
 */
#include "logic/logic_internal.h"

#include "base/clock.h"
#include "logic/timer_tag.h"
#include "logic/worker.h"
#include "server/port.h"

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

const char *kite__logic_config_bad(const kite_server_config *c) {
  if (c->worker_mode < KITE_WORKERS_INLINE || c->worker_mode > KITE_WORKERS_DYNAMIC)
    return "worker_mode";
  if (c->workers < 0 || c->workers > 4096)
    return "workers";
  if (c->mailbox_depth < KITE__MAILBOX_DEPTH_MIN ||
      c->mailbox_depth > KITE__MAILBOX_DEPTH_MAX ||
      (c->mailbox_depth & (c->mailbox_depth - 1)) != 0)
    return "mailbox_depth (a power of two, 2..4096)";
  if (c->mailbox_bytes < 1024)
    return "mailbox_bytes";
  if (c->timers_max < 1 || c->timers_max > (1u << 24))
    return "timers_max";
  if (c->unrouted != KITE_UNROUTED_DROP && c->unrouted != KITE_UNROUTED_CLOSE)
    return "unrouted";
  return NULL;
}

static int init_sessions(kite__logic *lg) {
  size_t n = (size_t)lg->nshards * lg->slots;
  if (!(lg->sessions = calloc(n, sizeof(*lg->sessions))))
    return KITE_ENOMEM;
  for (size_t i = 0; i < n; i++)
    kite__mailbox_init(&lg->sessions[i].mb);
  return 0;
}

static int init_workers(kite__logic *lg) {
  const kite_server_config *cfg = lg->cfg;
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
    int rc = kite__worker_init(&lg->workers[i], lg, i, runq, kite__ttag_worker(i),
                               KITE__TTAG_SEQ_BITS, cap, !hash);
    if (rc < 0)
      return rc;
  }
  if (hash)
    return 0;
  /* The clock: keys that are no session (timer.h), tagged after the pool. */
  if (!(lg->clock = calloc(1, sizeof(*lg->clock))))
    return KITE_ENOMEM;
  int rc = kite__worker_init(lg->clock, lg, lg->nworkers, 4,
                             kite__ttag_worker(lg->nworkers), KITE__TTAG_SEQ_BITS,
                             cfg->timers_max, false);
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

/* Inline mode: each shard runs the game timers of its keys. */
static int init_shard_timers(kite__logic *lg) {
  if (!(lg->shard_timers = calloc(lg->nshards, sizeof(*lg->shard_timers))) ||
      !(lg->shard_handled = calloc(lg->nshards, sizeof(*lg->shard_handled))))
    return KITE_ENOMEM;
  for (uint32_t i = 0; i < lg->nshards; i++)
    if (kite__timers_init_tagged(&lg->shard_timers[i], lg->srv, kite__ttag_shard(i),
                                 KITE__TTAG_SEQ_BITS, lg->cfg->timers_max,
                                 kite__now_ms()) < 0)
      return KITE_ENOMEM;
  return 0;
}

int kite__logic_create(kite__logic **out, kite_server *srv,
                       const kite_server_config *cfg, uint32_t nshards,
                       uint32_t slots) {
  kite__logic *lg = calloc(1, sizeof(*lg));
  *out = lg;
  if (!lg)
    return KITE_ENOMEM;
  lg->srv = srv;
  lg->cfg = cfg;
  lg->mode = cfg->worker_mode;
  lg->nshards = nshards;
  lg->slots = slots;
  atomic_init(&lg->started, false);
  atomic_init(&lg->unrouted, 0);
  atomic_init(&lg->temps_started, 0);
  atomic_init(&lg->temps_running, 0);
  atomic_init(&lg->temps_executed, 0);
  atomic_init(&lg->drop_after_close, 0);
  pthread_mutex_init(&lg->bind_lock, NULL);
  int rc = init_sessions(lg);
  if (rc == 0)
    rc = lg->mode == KITE_WORKERS_INLINE ? init_shard_timers(lg) : init_workers(lg);
  return rc;
}

int kite__logic_start(kite__logic *lg) {
  atomic_store(&lg->started, true);
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
  if (!lg)
    return;
  for (uint32_t i = 0; lg->workers && i < lg->nworkers; i++)
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
  if (lg->shard_timers)
    for (uint32_t i = 0; i < lg->nshards; i++)
      kite__timers_free(&lg->shard_timers[i]);
  free(lg->shard_timers);
  free(lg->shard_handled);
  if (lg->sessions)
    for (size_t i = 0; i < (size_t)lg->nshards * lg->slots; i++)
      kite__mailbox_clear(&lg->sessions[i].mb);
  free(lg->sessions);
  free(lg->routes);
  pthread_mutex_destroy(&lg->bind_lock);
  free(lg);
}

kite__lsess *kite__logic_slot(kite__logic *lg, uint32_t shard, uint32_t slot,
                              void *host) {
  kite__lsess *ls = &lg->sessions[(size_t)shard * lg->slots + slot];
  ls->host = host;
  ls->shard = shard;
  return ls;
}

int kite_server_route(kite_server *srv, uint16_t msg_id, kite_handler_fn fn,
                      void *user) {
  kite__logic *lg = kite__port_logic(srv);
  if (atomic_load(&lg->started))
    return KITE_ESTATE;
  if (msg_id == 0 || msg_id >= 0xFF00)
    return KITE_EINVAL;
  if (!lg->routes && !(lg->routes = calloc(0xFF00, sizeof(*lg->routes))))
    return KITE_ENOMEM;
  lg->routes[msg_id] = (kite__route){fn, user};
  return 0;
}

static kite__worker *worker_of(kite__logic *lg, kite__lsess *ls) {
  kite__worker *bound = atomic_load_explicit(&ls->mb.bound, memory_order_relaxed);
  if (bound)
    return bound;
  uint64_t key = atomic_load_explicit(&ls->mb.affinity, memory_order_relaxed);
  return &lg->workers[key % lg->nworkers];
}

void kite__logic_schedule(kite__logic *lg, kite__lsess *ls) {
  if (kite__mailbox_set(&ls->mb, KITE__MB_SCHEDULED) & KITE__MB_SCHEDULED)
    return;
  kite__worker_post(worker_of(lg, ls), &ls->mb);
}

void kite__logic_notify(kite__logic *lg, kite__lsess *ls) {
  if (kite__mailbox_set(&ls->mb, KITE__MB_NOTICE) & KITE__MB_NOTICE)
    return; /* queued already: the shard reads the flags when it pops */
  kite__port_notice(lg->srv, ls->host);
}

enum kite__notice kite__logic_noticed(kite__logic *lg, kite__lsess *ls) {
  (void)lg;
  uint32_t f = kite__mailbox_clr(&ls->mb, KITE__MB_NOTICE);
  if (f & KITE__MB_DONE)
    return KITE__NOTICE_DONE;
  return f & KITE__MB_BLOCKED ? KITE__NOTICE_NONE : KITE__NOTICE_RESUME;
}

void kite__logic_open(kite__logic *lg, kite__lsess *ls, kite_session_id id) {
  const kite_server_config *cfg = lg->cfg;
  ls->id = id;
  if (lg->mode == KITE_WORKERS_INLINE) {
    ls->user = NULL; /* the executor's: here, the shard */
    if (cfg->on_connect)
      cfg->on_connect(lg->srv, id, cfg->user);
    return;
  }
  atomic_store_explicit(&ls->mb.affinity, id, memory_order_relaxed);
  kite__mailbox_set(&ls->mb, KITE__MB_CONNECT);
  kite__logic_schedule(lg, ls);
}

bool kite__logic_deliver(kite__logic *lg, kite__lsess *ls, uint16_t msg_id,
                         unsigned flags, const uint8_t *body, uint32_t len) {
  if (lg->mode == KITE_WORKERS_INLINE) {
    kite__logic_dispatch(lg, ls, msg_id, flags, body, len);
    _Atomic uint64_t *n = &lg->shard_handled[ls->shard]; /* the shard's own */
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return true;
  }
  uint32_t depth = lg->cfg->mailbox_depth, max = lg->cfg->mailbox_bytes;
  if (flags & KITE_REQ_UNRELIABLE) {
    /* Never backpressure: full, it is the caller's to drop. */
    if (!kite__mailbox_push_flags(&ls->mb, msg_id, (uint8_t)flags, body, len,
                                  depth, max))
      return false;
    kite__logic_schedule(lg, ls);
    return true;
  }
  if (!kite__mailbox_push(&ls->mb, msg_id, body, len, depth, max)) {
    /* Full. Say so, then look again: the worker may have made room just
     * before seeing the flag (it checks the flag after making room, so one
     * of the two always sees the other: mailbox.h). */
    kite__mailbox_set(&ls->mb, KITE__MB_BLOCKED);
    if (!kite__mailbox_push(&ls->mb, msg_id, body, len, depth, max)) {
      kite__logic_schedule(lg, ls);
      return false;
    }
    kite__mailbox_clr(&ls->mb, KITE__MB_BLOCKED);
  }
  kite__logic_schedule(lg, ls);
  return true;
}

bool kite__logic_close(kite__logic *lg, kite__lsess *ls, uint8_t reason) {
  const kite_server_config *cfg = lg->cfg;
  if (lg->mode == KITE_WORKERS_INLINE) {
    if (cfg->on_disconnect)
      cfg->on_disconnect(lg->srv, ls->id, reason, cfg->user);
    ls->user = NULL; /* freed by now, likely: later lookups see NULL */
    return true;
  }
  ls->mb.reason = reason;
  kite__mailbox_set(&ls->mb, KITE__MB_DISCONNECT);
  kite__logic_schedule(lg, ls);
  return false;
}

void kite__logic_dispatch(kite__logic *lg, kite__lsess *ls, uint16_t msg_id,
                          unsigned flags, const uint8_t *body, size_t len) {
  const kite_server_config *cfg = lg->cfg;
  kite_session_id id = ls->id;
  kite__route *r = lg->routes && msg_id < 0xFF00 ? &lg->routes[msg_id] : NULL;
  if (r && r->fn) {
    kite_request req = {lg->srv, id, msg_id, body, len, ls->user, r->user,
                        flags};
    r->fn(&req);
  } else if (cfg->on_message) {
    cfg->on_message(lg->srv, id, msg_id, body, len, cfg->user);
  } else {
    atomic_fetch_add_explicit(&lg->unrouted, 1, memory_order_relaxed);
    if (cfg->unrouted == KITE_UNROUTED_CLOSE)
      kite__port_close(lg->srv, id, KITE_CLOSE_PROTOCOL);
  }
}

int kite__logic_shard_timeout_ms(kite__logic *lg, uint32_t shard,
                                 uint32_t now_ms, int cap) {
  if (!lg->shard_timers)
    return -1;
  return kite__timers_timeout_ms(&lg->shard_timers[shard], now_ms, cap);
}

void kite__logic_shard_run(kite__logic *lg, uint32_t shard, uint32_t now_ms) {
  if (!lg->shard_timers)
    return;
  kite__timers_drain(&lg->shard_timers[shard], now_ms);
  kite__timers_advance(&lg->shard_timers[shard], now_ms);
}

size_t kite__logic_shard_trim(kite__logic *lg, uint32_t shard) {
  if (!lg->shard_timers)
    return 0;
  return kite__map_shrink(&lg->shard_timers[shard].live);
}

void kite__logic_stats(const kite__logic *lg, kite_server_stats *out) {
  uint64_t handled = 0;
  for (uint32_t i = 0; lg->shard_handled && i < lg->nshards; i++)
    handled += atomic_load_explicit(&lg->shard_handled[i], memory_order_relaxed);
  for (uint32_t i = 0; i < lg->nworkers; i++)
    handled += atomic_load_explicit(&lg->workers[i].executed, memory_order_relaxed);
  handled += atomic_load_explicit(&lg->temps_executed, memory_order_relaxed);
  out->frames_in += handled;
  out->unrouted = atomic_load_explicit(&lg->unrouted, memory_order_relaxed);
  out->drop_after_close +=
      atomic_load_explicit(&lg->drop_after_close, memory_order_relaxed);
  out->temp_workers = atomic_load_explicit(&lg->temps_running, memory_order_relaxed);
  out->temp_workers_started =
      atomic_load_explicit(&lg->temps_started, memory_order_relaxed);
}

kite_worker_mode kite__logic_mode(const kite__logic *lg) { return lg->mode; }

uint32_t kite__logic_workers(const kite__logic *lg) { return lg->nworkers; }
