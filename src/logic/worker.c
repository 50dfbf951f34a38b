/*
 * Worker threads: each runs the sessions queued on it, one session at a
 * time, a bounded number of messages per turn, so one busy session cannot
 * starve the others on its worker; and the game timers of the keys it
 * owns.
 */
#include "logic/worker.h"

#include "base/clock.h"
#include "base/log.h"
#include "server/port.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MESSAGES_PER_TURN 64

static _Thread_local kite__worker *current_worker;

kite__worker *kite__worker_current(void) { return current_worker; }

bool kite__logic_on_worker(const kite__logic *lg) {
  return current_worker && current_worker->logic == lg;
}

int kite__worker_init(kite__worker *w, kite__logic *lg, uint32_t index,
                      uint32_t runq, uint64_t tag, unsigned seq_bits,
                      uint32_t timers_cap, bool bound) {
  w->logic = lg;
  w->index = index;
  w->free_next = NULL;
  atomic_init(&w->running, false);
  atomic_init(&w->stop, false);
  atomic_init(&w->wake_pending, 0);
  atomic_init(&w->in_use, false);
  atomic_init(&w->executed, 0);
  atomic_init(&w->queued, 0);
  w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->evfd < 0)
    return KITE_ESYS;
  int rc = kite__timers_init_tagged(&w->timers, lg->srv, tag, seq_bits,
                                    timers_cap, kite__now_ms());
  if (rc < 0)
    return rc;
  w->timers.filter = bound;
  return kite__mpsc_init(&w->runq, runq);
}

void kite__worker_wake(kite__worker *w) {
  if (atomic_exchange_explicit(&w->wake_pending, 1, memory_order_acq_rel) == 0) {
    uint64_t one = 1;
    ssize_t n = write(w->evfd, &one, sizeof(one));
    (void)n;
  }
}

void kite__worker_post(kite__worker *w, kite__mailbox *mb) {
  /* Cannot be full: every mailbox is queued at most once (SCHEDULED) and
   * the queue holds every session this worker can have. */
  while (!kite__mpsc_push(&w->runq, mb))
    ;
  atomic_fetch_add_explicit(&w->queued, 1, memory_order_relaxed);
  kite__worker_wake(w);
}

/* Hash mode: a callback set a key that belongs to another worker. The
 * turn ends there, so the next message runs where the key says (on the
 * room's worker, with the room's timers), not here. */
static bool moved(const kite__worker *w, kite__mailbox *mb) {
  const kite__logic *lg = w->logic;
  if (lg->mode != KITE_WORKERS_HASH)
    return false;
  uint64_t key = atomic_load_explicit(&mb->affinity, memory_order_relaxed);
  return &lg->workers[key % lg->nworkers] != w;
}

/* One turn of one session. Returns true when the session is done (its
 * on_disconnect ran). */
static bool run_turn(kite__worker *w, kite__mailbox *mb) {
  kite__logic *lg = w->logic;
  const kite_server_config *cfg = lg->cfg;
  kite__lsess *ls = kite__lsess_of(mb);
  kite_session_id id = ls->id;
  kite__logic_set_running(mb);
  if (kite__mailbox_clr(mb, KITE__MB_CONNECT) & KITE__MB_CONNECT) {
    ls->user = NULL; /* the executor's, from its first callback on */
    if (cfg->on_connect)
      cfg->on_connect(lg->srv, id, cfg->user);
  }
  /* After a close no handler runs (include/kite/logic.h): what waits is
   * dropped, counted, and on_disconnect comes next. */
  const uint32_t closing = KITE__MB_CLOSING | KITE__MB_DISCONNECT;
  kite__msg *m;
  int n = 0;
  for (; n < MESSAGES_PER_TURN && !moved(w, mb) &&
         !(kite__mailbox_flags(mb) & closing) && (m = kite__mailbox_peek(mb));
       n++) {
    kite__logic_dispatch(lg, ls, m->msg_id, m->flags, m->data, m->len);
    kite__mailbox_done(mb, m);
  }
  if (n) { /* the worker's own counter: a plain load and store */
    atomic_store_explicit(&w->executed,
                          atomic_load_explicit(&w->executed, memory_order_relaxed) + (uint64_t)n,
                          memory_order_relaxed);
    if (w->temp) /* its record outlives its thread: the layer keeps the sum */
      atomic_fetch_add_explicit(&lg->temps_executed, (uint64_t)n, memory_order_relaxed);
  }
  if (kite__mailbox_flags(mb) & closing) {
    uint64_t dropped = 0;
    for (; (m = kite__mailbox_peek(mb)); dropped++)
      kite__mailbox_done(mb, m);
    if (dropped)
      atomic_fetch_add_explicit(&lg->drop_after_close, dropped, memory_order_relaxed);
  }
  /* Room was made: if the shard stopped reading this session, tell it to
   * go on (kite__logic_deliver sets the flag, then looks again). */
  if (kite__mailbox_flags(mb) & KITE__MB_BLOCKED &&
      kite__mailbox_clr(mb, KITE__MB_BLOCKED) & KITE__MB_BLOCKED)
    kite__logic_notify(lg, ls);
  if (kite__mailbox_empty(mb) && (kite__mailbox_flags(mb) & KITE__MB_DISCONNECT)) {
    if (cfg->on_disconnect)
      cfg->on_disconnect(lg->srv, id, mb->reason, cfg->user);
    ls->user = NULL; /* freed by now, likely: later lookups see NULL */
    /* The session's timers end with it, and so do starts on their way:
     * before DONE, since from DONE on the shard may unbind and reuse the
     * slot (a notice may be queued already). */
    if (atomic_load_explicit(&mb->bound, memory_order_relaxed) == w) {
      atomic_store_explicit(&w->timers.owner, 0, memory_order_release);
      kite__timers_clear(&w->timers);
    }
    kite__logic_set_running(NULL);
    kite__mailbox_set(mb, KITE__MB_DONE);
    kite__logic_notify(lg, ls); /* stays SCHEDULED: never queued again */
    return true;
  }
  kite__logic_set_running(NULL);
  kite__mailbox_clr(mb, KITE__MB_SCHEDULED);
  if (!kite__mailbox_empty(mb) ||
      (kite__mailbox_flags(mb) & (KITE__MB_CONNECT | KITE__MB_DISCONNECT)))
    kite__logic_schedule(lg, ls);
  return false;
}

static void *worker_main(void *arg) {
  kite__worker *w = arg;
  current_worker = w;
  bool temp = w->temp;
  for (;;) {
    uint32_t now = kite__now_ms();
    kite__timers_drain(&w->timers, now);
    kite__timers_advance(&w->timers, now);
    kite__mailbox *mb = kite__mpsc_pop(&w->runq);
    if (!mb) {
      if (atomic_load_explicit(&w->stop, memory_order_acquire))
        break;
      atomic_store_explicit(&w->wake_pending, 0, memory_order_seq_cst);
      if (!(mb = kite__mpsc_pop(&w->runq))) {
        int timeout = kite__timers_timeout_ms(&w->timers, now, 200);
        struct pollfd p = {.fd = w->evfd, .events = POLLIN};
        poll(&p, 1, timeout < 0 ? 200 : timeout);
        uint64_t v;
        ssize_t n = read(w->evfd, &v, sizeof(v));
        (void)n;
        continue;
      }
    }
    atomic_fetch_sub_explicit(&w->queued, 1, memory_order_relaxed);
    if (run_turn(w, mb) && temp)
      break; /* its one session is over: the thread ends with it */
  }
  current_worker = NULL;
  if (temp)
    kite__logic_temp_exit(w->logic, w);
  else
    atomic_store_explicit(&w->running, false, memory_order_release);
  return NULL;
}

int kite__worker_start(kite__worker *w) {
  atomic_store(&w->stop, false);
  atomic_store(&w->running, true);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (w->temp) /* nobody joins it: it ends with its session */
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&w->thread, &attr, worker_main, w);
  pthread_attr_destroy(&attr);
  if (err) {
    atomic_store(&w->running, false);
    kite__logf(kite__port_log(w->logic->srv), KITE_LOG_ERROR,
               "%sworker %u: pthread_create() failed: %s",
               w->temp ? "temporary " : "", w->index, strerror(err));
    return KITE_ESYS;
  }
  return 0;
}

void kite__worker_stop(kite__worker *w) {
  if (w->temp || !atomic_load(&w->running))
    return;
  atomic_store_explicit(&w->stop, true, memory_order_release);
  uint64_t one = 1;
  ssize_t n = write(w->evfd, &one, sizeof(one));
  (void)n;
  pthread_join(w->thread, NULL);
}

void kite__worker_free(kite__worker *w) {
  kite__timers_free(&w->timers);
  if (w->evfd >= 0)
    close(w->evfd);
  kite__mpsc_free(&w->runq);
}
