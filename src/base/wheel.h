/*
 * The shard's timing wheel: every session timer (next KCP flush, idle
 * deadline, handshake timeout) of one shard, on one 1 ms tick.
 *
 * ikcp-style servers sweep every session every 5-10 ms, which costs
 * O(sessions) per sweep even when nothing is due. A shard instead files each
 * session's next due time here: add, move and delete are O(1), advancing
 * costs O(timers fired + cascades + busy ticks), and the epoll timeout comes
 * from kite__wheel_timeout_ms().
 *
 * Shape: 5 levels of 64 slots, 6 bits of time each, so level L holds timers
 * due 64^L to 64^(L+1) ms ahead and the whole wheel 2^30 ms (12.4 days).
 * A slot is an intrusive list through the timer, so the wheel never
 * allocates; a 64-bit occupancy word per level finds the next non-empty slot
 * with one count-trailing-zeros, which is how kite__wheel_advance() skips
 * empty stretches (an idle gap of minutes costs a few steps, not one per ms)
 * and how kite__wheel_timeout_ms() stays cheap. When time reaches the start
 * of a higher-level slot, its timers are cascaded (re-filed) one level down
 * or more; a timer moves at most once per level.
 *
 * Time is the 32-bit wrapping millisecond clock of base/time.h: instants are
 * compared only through signed differences, so the wheel runs across the
 * 2^32 wrap. An expiry must be less than 2^31 ms from the wheel's time
 * (one further ahead reads as in the past and fires at once); past the
 * wheel's 2^30 ms range it is filed at the range's end and re-filed from
 * there, so it still fires at its own millisecond.
 *
 * Not thread-safe: a wheel and its timers belong to one shard thread.
 */
#ifndef KITE_BASE_WHEEL_H
#define KITE_BASE_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KITE__WHEEL_BITS 6
#define KITE__WHEEL_SLOTS (1u << KITE__WHEEL_BITS) /* per level: one uint64 */
#define KITE__WHEEL_LEVELS 5
#define KITE__WHEEL_RANGE_MS (1u << (KITE__WHEEL_BITS * KITE__WHEEL_LEVELS))

/* Where a timer is linked: zero means idle, so a timer in calloc'd or
 * zeroed memory is a valid idle timer even before kite__timer_init(). */
enum {
  KITE__TIMER_IDLE = 0,
  KITE__TIMER_DUE = 1,    /* w->due: already due, fires at the next advance */
  KITE__TIMER_FIRING = 2, /* w->firing: taken out of a slot, being fired */
  KITE__TIMER_LEVEL0 = 3  /* + level: in w->slots[level][slot] */
};

/* Embedded in the owner's struct (a session): the wheel never allocates and
 * never frees one; the owner must delete a pending timer before freeing it.
 * Fields are the wheel's; read only expire_ms. */
typedef struct kite__timer {
  struct kite__timer *next, *prev; /* slot list; NULL when not pending */
  uint32_t expire_ms;              /* as last given to kite__wheel_add() */
  uint8_t list;                    /* KITE__TIMER_* */
  uint8_t slot;                    /* index in its level, when in one */
} kite__timer;

/* All state inline (about 2.7 KB), no heap: the shard embeds it. */
typedef struct kite__wheel {
  uint32_t now;   /* every tick up to and including this one is processed */
  bool advancing; /* inside kite__wheel_advance(): refuses re-entry */
  size_t count;   /* pending timers, wherever they are linked */
  uint64_t occupied[KITE__WHEEL_LEVELS]; /* bit s: slots[level][s] != NULL */
  kite__timer *slots[KITE__WHEEL_LEVELS][KITE__WHEEL_SLOTS];
  kite__timer *due;    /* filed at or before now: fire at the next advance */
  kite__timer *firing; /* the slot being fired, so callbacks may delete */
  uint64_t steps;      /* ticks advance stopped at: shows the skipping */
} kite__wheel;

/* Called by kite__wheel_advance() for each expired timer, which is no longer
 * pending by then. |t| is the owner's (container_of it); |user| is advance's.
 * It may add, move or delete any timer of this wheel (itself included), and
 * read kite__wheel_now(), _count() and _timeout_ms(); it must not call
 * kite__wheel_advance() or kite__wheel_init() on this wheel. */
typedef void (*kite__wheel_cb)(kite__timer *t, void *user);

/* Makes |t| idle (not pending). Zeroed memory is already idle. */
void kite__timer_init(kite__timer *t);

/* true while |t| is filed in a wheel and has not fired or been deleted. */
static inline bool kite__timer_pending(const kite__timer *t) {
  return t->list != KITE__TIMER_IDLE;
}

/* An empty wheel whose time is |now_ms|; ticks are 1 ms. */
void kite__wheel_init(kite__wheel *w, uint32_t now_ms);

/* The wheel's time: the |now_ms| of the last advance (or init) that moved
 * it forward. Inside a callback, the tick being fired: the timer's
 * expire_ms, or for a timer that was already due when filed, the wheel's
 * time at the start of that advance. Periodic timers re-add from here. */
static inline uint32_t kite__wheel_now(const kite__wheel *w) {
  return w->now;
}

/* Schedules |t| at |expire_ms|, moving it if it is already pending (it must
 * be idle or pending in |w|, not in another wheel). An expiry at or before
 * the wheel's time (kite__wheel_now()) fires at the next advance, never in
 * the advance running now, so a callback that re-adds itself as due cannot
 * loop. An expiry past the wheel's range (2^30 ms) is filed at the range's
 * end and re-filed then, so it still fires at |expire_ms|; |expire_ms| must
 * be within 2^31 - 1 ms after the wheel's time. O(1). */
void kite__wheel_add(kite__wheel *w, kite__timer *t, uint32_t expire_ms);

/* Unschedules |t|: it will not fire. No-op when it is not pending. O(1). */
void kite__wheel_del(kite__wheel *w, kite__timer *t);

/* Moves the wheel's time to |now_ms| and fires, through |cb|, every timer
 * whose expiry is at or before it: first those that were already due when
 * filed (in any order), then the rest in expiry order, timers of the same
 * millisecond in any order. Each is unlinked before its callback runs; a
 * timer deleted or moved by an earlier callback does not fire. A |now_ms|
 * before the wheel's time leaves the time as it is (only due timers fire);
 * one more than 2^31 - 1 ms after it reads as before it, so advance at least
 * that often. Returns the number fired; 0 when called from a callback.
 * Cost: O(timers fired + cascades + ticks that fire or cascade something);
 * empty stretches are skipped through the occupancy words. */
size_t kite__wheel_advance(kite__wheel *w, uint32_t now_ms, kite__wheel_cb cb,
                           void *user);

/* Milliseconds from |now_ms| until the earliest pending expiry (0 if one is
 * already due), or -1 when no timer is pending; at most |cap_ms| unless it is
 * negative. For a timer in a higher level the answer is the start of its
 * slot, earlier than its expiry (the wakeup then cascades it), never later.
 * O(levels), no scan of timers: meant for every loop iteration. */
int kite__wheel_timeout_ms(const kite__wheel *w, uint32_t now_ms, int cap_ms);

/* Pending timers (including due ones and ones not yet fired by a running
 * advance). */
size_t kite__wheel_count(const kite__wheel *w);

#endif
