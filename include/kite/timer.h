/*
 * Timers for game logic: one-shot or repeating (a 20 Hz room tick), run on
 * the executor that owns their key, so a room's timer and its players'
 * handlers never run at once and room state needs no lock:
 *   inline  the shard (key % shards);
 *   hash    the worker (key % workers), as kite_session_set_affinity();
 *   bind, dynamic  the worker of session |key| (a session id).
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

/* Runs on the key's executor. |id| stays valid until the timer is stopped
 * or, one-shot, has fired. */
typedef void (*kite_timer_fn)(kite_server *srv, kite_timer_id id, void *user);

/* Starts a timer: first after |delay_ms|, then every |period_ms| (0: once).
 * Any thread, callbacks included. Returns its id (> 0), or 0 when the key
 * has no executor (bind, dynamic: no such session) or memory runs out.
 * After kite_server_start() only. */
KITE_API
kite_timer_id kite_timer_start(kite_server *srv, uint64_t key,
                               uint32_t delay_ms, uint32_t period_ms,
                               kite_timer_fn fn, void *user);

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
