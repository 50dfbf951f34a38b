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

typedef struct kite__worker {
  kite__logic *logic;
  uint32_t index;
  pthread_t thread;
  atomic_bool running; /* the thread exists (dynamic: until its session ends) */
  atomic_bool stop;
  kite__mpsc runq;     /* mailboxes, each at most once */
  int evfd;
  atomic_int wake_pending;
  atomic_bool in_use;  /* bind, dynamic: bound to a session */
  kite__timers timers; /* game timers of the keys this worker owns */
  _Atomic uint64_t executed, queued; /* messages run; mailboxes queued now */
} kite__worker;

struct kite__logic {
  kite_server *srv;
  kite_worker_mode mode;
  uint32_t nworkers;
  kite__worker *workers;
  kite__route *routes;          /* 0xFF00 entries, or NULL: none set */
  pthread_mutex_t bind_lock;    /* bind, dynamic: who takes which worker */
  _Atomic uint64_t unrouted;      /* any executor counts here */
  _Atomic uint64_t posts_refused; /* hand-overs from any thread refused */
};

int kite__logic_init(kite__logic *lg, kite_server *srv);
int kite__logic_start(kite__logic *lg);
/* After the shards have stopped: every session has been released. */
void kite__logic_stop(kite__logic *lg);
void kite__logic_free(kite__logic *lg);

/* Bind and dynamic modes: reserves a worker for a new session; false when
 * none is free (the handshake gets REJECT full). Other modes: true. */
bool kite__logic_bind(kite__logic *lg, kite__session *s);
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
 * run on_disconnect after the messages before it, then the shard frees
 * the slot on its notice. */
bool kite__logic_close(kite__logic *lg, kite__session *s, uint8_t reason);

/* Runs one frame's handler (route, else on_message, else the unrouted
 * policy) on the calling executor. */
void kite__logic_dispatch(kite__logic *lg, kite__session *s, uint16_t msg_id,
                          const uint8_t *body, size_t len);

/* true when the calling thread is |s|'s executor right now. */
bool kite__logic_on_executor(const kite__logic *lg, const kite__session *s);

#endif
