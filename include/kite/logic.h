/*
 * kite's logic layer: what a game is written against. Message ids routed
 * to handlers; handlers run inline on the shard or on a worker pool in
 * which one session's messages run in order and never concurrently; groups
 * (rooms) with broadcast; timers for game logic.
 *
 * Executors. A session's callbacks (on_connect, handlers, on_disconnect)
 * all run on one executor, one at a time, in order, on_disconnect last:
 *   KITE_WORKERS_INLINE   the shard thread that owns the session;
 *   KITE_WORKERS_HASH     worker (affinity key % workers); the key is the
 *                         session id unless set (kite_session_set_affinity),
 *                         so all players of a room can share one worker and
 *                         room state needs no lock;
 *   KITE_WORKERS_BIND     a worker of its own for its life, from a pool of
 *                         |workers|; none free: the handshake gets REJECT
 *                         (full), counted as reject_no_worker and logged
 *                         "no free worker (bind mode, N workers)";
 *   KITE_WORKERS_DYNAMIC  a worker of its own for its life: a free one of
 *                         the pool of |workers| (threads from start to
 *                         stop), else a temporary worker, a thread started
 *                         for the session that ends with it; as many as
 *                         max_sessions allows (the pool's and temporary
 *                         workers together never outnumber sessions).
 *                         kite_server_stats counts them: temp_workers
 *                         (running now) and temp_workers_started. Each is
 *                         a thread with its stack: size max_sessions for it.
 *                         A temporary worker's record (its timer table, a
 *                         few KB) is kept for the next one, never freed
 *                         before the server.
 * Bind and dynamic modes also have a clock: one more worker, running no
 * session, for timers whose key is KITE_TIMER_CLOCK_KEY() (timer.h).
 * Between shards and workers each session has a bounded mailbox
 * (mailbox_depth frames, mailbox_bytes bytes): when it is full, the shard
 * stops draining that session's KCP queue (its window closes and the peer
 * slows down) instead of growing memory or stalling; kite_server_stats
 * counts it (backpressure).
 * Unreliable messages (the snapshot lane, kite_session_send_unreliable()
 * in server.h) reach the same handlers with req->flags saying
 * KITE_REQ_UNRELIABLE (and KITE_REQ_SEQUENCED), through the same mailbox
 * and in the same order with the session's other messages from the moment
 * they are read, so one session's handlers still never run concurrently.
 * A sequenced one older than the newest of its msg_id already delivered is
 * dropped before the mailbox (unreliable_drop_stale), and one that finds
 * the mailbox full is dropped (unreliable_drop_mailbox): the lane never
 * holds the session back. The default handler (config on_message) gets
 * them too, without the flags.
 *
 * After a close. One rule in every mode: once a session's close has taken
 * effect (the peer's CLOSE, an idle or dead link, a kick from any thread
 * reaching its shard, a protocol error) or has been asked for by its own
 * callbacks (kite_session_close() on itself, the unrouted close policy),
 * no handler runs for it any more: messages it sent that were not handled
 * by then are dropped, counted in drop_after_close (in inline mode a
 * message is handled as soon as it is read, so only the unread ones go;
 * in worker modes those waiting in the mailbox go too), and on_disconnect
 * runs next. From then on kite_reply() and kite_session_send() return
 * KITE_ECLOSED, and nothing is sent; KITE_ENOTFOUND once on_disconnect
 * has run (the id is stale). Frames sent before the close still go out
 * (a kick flushes them first), so reply, then close. A close asked for
 * from another thread takes effect when the shard takes it: a handler may
 * run, or a send return 0 and be dropped (drop_stale_cmd), meanwhile.
 */
#ifndef KITE_LOGIC_H
#define KITE_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kite_server kite_server;
typedef uint64_t kite_session_id;

typedef enum kite_worker_mode {
  KITE_WORKERS_INLINE = 0,
  KITE_WORKERS_HASH = 1,
  KITE_WORKERS_BIND = 2,
  KITE_WORKERS_DYNAMIC = 3,
} kite_worker_mode;

/* "inline", "hash", "bind", "dynamic"; and back (-1 if unknown). */
KITE_API
const char *kite_worker_mode_name(kite_worker_mode mode);
KITE_API
int kite_worker_mode_parse(const char *name);

/* What to do with a frame whose msg_id has no handler and no default. */
typedef enum kite_unrouted {
  KITE_UNROUTED_DROP = 0,  /* count it (unrouted) and go on */
  KITE_UNROUTED_CLOSE = 1, /* count it and close the session (reason 2) */
} kite_unrouted;

/* One message for a handler. Valid only during the call (copy the body to
 * keep it). */
typedef struct kite_request {
  kite_server *srv;
  kite_session_id session;
  uint16_t msg_id;
  const uint8_t *body;
  size_t len;
  void *session_user; /* kite_session_set_user()'s pointer */
  void *user;         /* the pointer given with the route */
  unsigned flags;     /* KITE_REQ_*: the lane it came on */
} kite_request;

/* kite_request.flags */
#define KITE_REQ_UNRELIABLE 0x1u /* on the unreliable lane (a v2 UDP
                                    UNRELIABLE item, or a v2 TCP frame with
                                    the unreliable flag) */
#define KITE_REQ_SEQUENCED 0x2u  /* unreliable and sequenced: no older one
                                    of its msg_id comes after it (never
                                    over TCP: the stream is in order, so
                                    no sequencing is sent) */

typedef void (*kite_handler_fn)(const kite_request *req);

/* Routes |msg_id| (1..0xFEFF) to |fn|, replacing an earlier route. Before
 * kite_server_start() only (KITE_ESTATE after), from the thread that
 * created the server. KITE_EINVAL for msg_id 0 or 0xFF00.. (kite's own).
 * Frames with no route go to the config's on_message (the default
 * handler), else to the unrouted policy. */
KITE_API
int kite_server_route(kite_server *srv, uint16_t msg_id, kite_handler_fn fn,
                      void *user);

/* Sends a frame back to the request's session: kite_session_send(req->srv,
 * req->session, ...), with its return values: KITE_ECLOSED after a close
 * (see "After a close" above), nothing sent. From the handler. */
KITE_API
int kite_reply(const kite_request *req, uint16_t msg_id, const void *body,
               size_t len);

/* Sets the session's affinity key (hash mode: its worker is key %
 * workers). From the session's own callbacks only; takes effect from the
 * session's next message (the current one finishes where it is, so order
 * and mutual exclusion hold). 0 or KITE_ENOTFOUND; KITE_ESTATE in other
 * modes. */
KITE_API
int kite_session_set_affinity(kite_server *srv, kite_session_id id,
                              uint64_t key);

#ifdef __cplusplus
}
#endif
#endif
