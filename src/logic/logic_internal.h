/*
 * What the logic layer's files share: a session's state on this side
 * (kite__lsess), the workers, and the layer itself. Only src/logic
 * includes it; the server sees logic/logic.h.
 */
#ifndef KITE_LOGIC_INTERNAL_H
#define KITE_LOGIC_INTERNAL_H

#include "logic/logic.h"

#include "base/mpsc.h"
#include "logic/mailbox.h"
#include "logic/timers.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct kite__route {
  kite_handler_fn fn;
  void *user;
} kite__route;

/* A session slot as the logic layer keeps it (one per server slot, made
 * with the layer). Ownership: |mb| as mailbox.h says (the shard produces,
 * the executor consumes); |user| belongs to the session's executor alone;
 * |id| is written by the shard when the slot is bound and when the session
 * opens, before its executor can hear of it (the run queue, or the same
 * thread inline), and read by the executor; |host| and |shard| are set
 * once, with the layer. */
struct kite__lsess {
  kite__mailbox mb;
  void *user;         /* kite_session_set_user(); the executor's */
  kite_session_id id; /* the session the slot carries now */
  void *host;         /* the server's session, for kite__port_notice() */
  uint32_t shard;     /* the owning shard: the executor in inline mode */
};

/* A worker: a thread and the sessions and timers it runs. Pool workers
 * (hash, bind, dynamic) and the clock (bind, dynamic) live from start to
 * stop; a temporary worker's thread (dynamic, past the pool) ends with its
 * session, and its record is kept for the next one (records are freed
 * only with the server, so a pointer to one is never dangling). */
typedef struct kite__worker {
  kite__logic *logic;
  uint32_t index;      /* in its table: the pool, or the temporaries */
  bool temp;           /* a temporary worker (dynamic mode) */
  pthread_t thread;
  atomic_bool running; /* the thread exists (temporary: until its session ends) */
  atomic_bool stop;
  kite__mpsc runq;     /* mailboxes, each at most once */
  int evfd;
  atomic_int wake_pending;
  atomic_bool in_use;  /* bind, dynamic: bound to a session */
  kite__timers timers; /* game timers of the keys this worker owns */
  _Atomic uint64_t executed, queued; /* messages run; mailboxes queued now */
  struct kite__worker *free_next; /* temporary, idle: under bind_lock */
} kite__worker;

/* Ownership: written by the server's owner thread at create and start,
 * read-only after, except the atomics and what bind_lock guards. */
struct kite__logic {
  kite_server *srv;
  const kite_server_config *cfg; /* the server's copy */
  kite_worker_mode mode;
  atomic_bool started;          /* routes are fixed from here on */
  uint32_t nshards, slots;
  kite__lsess *sessions;        /* nshards x slots */
  kite__timers *shard_timers;   /* inline mode: one table per shard */
  /* Inline mode: frames each shard's handlers took; owner: that shard
   * (relaxed load and store), read by any thread for the stats. */
  _Atomic uint64_t *shard_handled;
  uint32_t nworkers;            /* the pool */
  kite__worker *workers;
  /* Bind, dynamic: the server-wide executor of keys that are no session
   * (include/kite/timer.h); a worker with no sessions. */
  kite__worker *clock;
  /* Dynamic: temporary workers past the pool, up to max_temps at once.
   * |temps| holds every record made (ntemps of max_temps); |temp_free|
   * the idle ones, whose thread has ended and whose session is gone.
   * Both under bind_lock. */
  kite__worker *_Atomic *temps;
  uint32_t ntemps, max_temps;
  kite__worker *temp_free;
  kite__route *routes;          /* 0xFF00 entries, or NULL: none set */
  pthread_mutex_t bind_lock;    /* bind, dynamic: who takes which worker */
  char no_worker_why[80];       /* the refusal's words in the log */
  _Atomic uint64_t unrouted;      /* any executor counts here */
  _Atomic uint64_t temps_started; /* temporary workers started (shards) */
  _Atomic uint64_t temps_running; /* temporary worker threads alive now */
  _Atomic uint64_t temps_executed; /* messages temporary workers ran */
  _Atomic uint64_t drop_after_close; /* messages dropped: session closing */
};

static inline kite__lsess *kite__lsess_of(kite__mailbox *mb) {
  return (kite__lsess *)((char *)mb - offsetof(kite__lsess, mb));
}

/* logic.c */
/* Runs one frame's handler (route, else on_message, else the unrouted
 * policy) on the calling executor. */
void kite__logic_dispatch(kite__logic *lg, kite__lsess *ls, uint16_t msg_id,
                          unsigned flags, const uint8_t *body, size_t len);
/* true when the calling thread is |ls|'s executor right now. */
bool kite__logic_on_executor(const kite__logic *lg, const kite__lsess *ls);
/* Queues the session on its worker unless it is queued or running. */
void kite__logic_schedule(kite__logic *lg, kite__lsess *ls);
/* The mailbox the calling worker runs now (NULL between turns). */
void kite__logic_set_running(kite__mailbox *mb);
/* Tells the session's shard (kite__port_notice), once per notice. */
void kite__logic_notify(kite__logic *lg, kite__lsess *ls);

/* bind.c */
/* A temporary worker's thread ends: its record goes back to the idle list
 * once its session is unbound too. The thread's last touch of |w|. */
void kite__logic_temp_exit(kite__logic *lg, kite__worker *w);

#endif
