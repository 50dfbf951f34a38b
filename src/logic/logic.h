/*
 * The logic layer inside the server: the route table, the executors
 * (shard or workers) and the hand-over of a session's events to its
 * executor. The shard calls in at four points: a session opens, a frame
 * arrives, a session closes, a slot is freed.
 */
#ifndef KITE_LOGIC_LOGIC_H
#define KITE_LOGIC_LOGIC_H

#include "kite/logic.h"
#include "kite/server.h"

#include "base/mpsc.h"
#include "logic/mailbox.h"
#include "logic/timers.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct kite__session kite__session;
typedef struct kite__logic kite__logic;

typedef struct kite__route {
  kite_handler_fn fn;
  void *user;
} kite__route;

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

struct kite__logic {
  kite_server *srv;
  kite_worker_mode mode;
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
  _Atomic uint64_t posts_refused; /* hand-overs from any thread refused */
  _Atomic uint64_t temps_started; /* temporary workers started (shards) */
  _Atomic uint64_t temps_running; /* temporary worker threads alive now */
  _Atomic uint64_t drop_after_close; /* messages dropped: session closing */
};

int kite__logic_init(kite__logic *lg, kite_server *srv);
int kite__logic_start(kite__logic *lg);
/* After the shards have stopped: every session has been released. */
void kite__logic_stop(kite__logic *lg);
void kite__logic_free(kite__logic *lg);

/* Bind and dynamic modes: reserves a worker for a new session (dynamic:
 * a pool worker, else a temporary one started for it). NULL, or why not
 * (a string for the log; the shard counts reject_no_worker): bind's pool
 * is all taken,
 * or a temporary worker's thread could not start. The handshake then
 * gets REJECT full. Other modes: NULL. The session's shard. */
const char *kite__logic_bind(kite__logic *lg, kite__session *s);
/* Gives the worker back when the slot is freed. */
void kite__logic_unbind(kite__logic *lg, kite__session *s);

/* The session opened: on_connect now (inline) or on its worker. */
void kite__logic_open(kite__logic *lg, kite__session *s);
/* A frame for the application. false: the mailbox is full (worker modes);
 * the shard stops reading the session until the worker catches up. */
bool kite__logic_deliver(kite__logic *lg, kite__session *s, uint16_t msg_id,
                         const uint8_t *body, uint32_t len);
/* The session closed with |reason|. true: the slot may be freed now (its
 * on_disconnect ran inline, or it never opened). false: its worker will
 * drop what waits and run on_disconnect, then the shard frees
 * the slot on its notice. */
bool kite__logic_close(kite__logic *lg, kite__session *s, uint8_t reason);

/* Runs one frame's handler (route, else on_message, else the unrouted
 * policy) on the calling executor. */
void kite__logic_dispatch(kite__logic *lg, kite__session *s, uint16_t msg_id,
                          const uint8_t *body, size_t len);

/* true when the calling thread is |s|'s executor right now. */
bool kite__logic_on_executor(const kite__logic *lg, const kite__session *s);

/* A close of |s| was asked for (any thread): when the caller is its
 * executor, no further handler runs for it and sends are refused from now
 * on (include/kite/logic.h, "After a close"). */
void kite__logic_close_requested(kite__logic *lg, kite__session *s);
/* Whether sends to |s| must be refused: a close was asked for by its
 * executor, or the session is closed (its on_disconnect owed or run). */
bool kite__logic_closing(const kite__session *s);

#endif
