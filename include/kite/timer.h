/*
 * Timers for game logic: one-shot or repeating (a 20 Hz room tick), run on
 * the executor that owns their key, so a room's timer and its players'
 * handlers never run at once and room state needs no lock:
 *   inline  the shard (key % shards);
 *   hash    the worker (key % workers), as kite_session_set_affinity();
 *   bind, dynamic  a key made with KITE_TIMER_CLOCK_KEY(): the clock, one
 *           server-wide executor (a thread of its own, running no
 *           session) for every such key, so a game clock or a room works
 *           in these modes too; any other key is a session id: the worker
 *           of that session, while it lives (its timers end with it).
 * A repeating timer fires every period_ms from its first expiry, on that
 * schedule: a late tick does not push the next ones back, and a tick so
 * late that the next is due already skips it (no pile-up). Timers of one
 * key fire in expiry order. A one-shot timer with delay 0 runs a task on
 * the key's executor as soon as it looks: the way to hand work to a room.
 */
#ifndef KITE_TIMER_H
#define KITE_TIMER_H

#include <stdint.h>

#include "kite/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kite_server kite_server;
typedef uint64_t kite_timer_id; /* never 0 */

/* A key no session id can equal (session ids never have the top bit set):
 * in bind and dynamic modes it runs on the server-wide clock executor; in
 * inline and hash modes it is a key like any other (key % shards or
 * workers). Use it for a game clock or a room's key, so that the same
 * code works in every mode. */
#define KITE_TIMER_CLOCK_KEY(n) ((uint64_t)1 << 63 | (uint64_t)(n))

/* Runs on the key's executor. |id| stays valid until the timer is stopped
 * or, one-shot, has fired. */
typedef void (*kite_timer_fn)(kite_server *srv, kite_timer_id id, void *user);

/* Starts a timer: first after |delay_ms|, then every |period_ms| (0: once).
 * Any thread, callbacks included, between kite_server_start() and
 * kite_server_stop(). Returns 0 and sets *out (may be NULL) to its id, or
 * a negative code (*out is 0; |fn| will never run):
 *   KITE_EINVAL    |srv| or |fn| NULL;
 *   KITE_ESTATE    the server is not started yet, or is stopping/stopped;
 *   KITE_ENOTFOUND bind, dynamic: |key| is neither a clock key
 *                  (KITE_TIMER_CLOCK_KEY) nor the id of a live session;
 *   KITE_EFULL     from the executor itself: timers_max timers run there
 *                  already (256 on a session's worker in bind, dynamic);
 *                  from another thread: the executor's command queue is
 *                  full (twice its timers_max in flight);
 *   KITE_ENOMEM.
 * From another thread the start is handed over, so 0 means "on its way":
 * should the executor then hold timers_max timers already, or (bind,
 * dynamic) the session end first, the timer never runs (its session's
 * timers end with it). */
KITE_API
int kite_timer_start(kite_server *srv, uint64_t key, uint32_t delay_ms,
                     uint32_t period_ms, kite_timer_fn fn, void *user,
                     kite_timer_id *out);

/* Stops a timer; from its own executor it will not fire again after this
 * returns, from another thread it may fire once more while the stop
 * travels. 0, or KITE_ENOTFOUND (not running: stopped, fired, or unknown).
 * Any thread. */
KITE_API
int kite_timer_stop(kite_server *srv, kite_timer_id id);

#ifdef __cplusplus
}
#endif
#endif
