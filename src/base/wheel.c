/*
 * The shard's hierarchical timing wheel (see wheel.h for the contract).
 *
 * Filing. With tj = now + 1 the next tick to process and idx = expiry - tj,
 * a timer goes to level 0 when idx < 64, else to level L = floor(log2(idx)
 * / 6) (so 64^L <= idx < 64^(L+1)), and to slot (expiry >> 6L) & 63 there:
 * the old Linux timer-wheel scheme (tv1..tv5), with occupancy words added.
 * Level-0 slot s then holds only timers of the one instant in
 * [tj, tj + 63] that is s mod 64, and a level-L slot s is cascaded at the
 * next instant that is a multiple of 64^L with (t >> 6L) & 63 == s, which
 * is the start of the block of 64^L ms holding the expiry: the timer drops
 * to a lower level in time. The blocks a level holds are 64 consecutive
 * ones starting at the first boundary at or after tj, so slot order from
 * that boundary's index is time order: one rotate and one ctz give the
 * level's next event. 2^32 is a multiple of every level's span, so slot
 * indices run on unchanged across the clock's wrap.
 *
 * Advancing jumps from event to event (the earliest of the levels' next
 * events) instead of walking every tick, so an idle stretch costs nothing
 * and a busy one costs one step per tick that fires or cascades.
 */
#include "base/wheel.h"

#include "base/time.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SLOT_MASK (KITE__WHEEL_SLOTS - 1u)

static inline uint64_t rotr64(uint64_t x, unsigned r) {
  return (x >> r) | (x << ((64u - r) & 63u)); /* one ror; r == 0 is x */
}

static inline kite__timer **kite__wheel_head(kite__wheel *w,
                                             const kite__timer *t) {
  if (t->list >= KITE__TIMER_LEVEL0)
    return &w->slots[t->list - KITE__TIMER_LEVEL0][t->slot];
  return t->list == KITE__TIMER_DUE ? &w->due : &w->firing;
}

static inline void kite__wheel_push(kite__timer **head, kite__timer *t) {
  t->prev = NULL;
  t->next = *head;
  if (*head)
    (*head)->prev = t;
  *head = t;
}

/* Takes |t| off whatever list holds it; the caller fixes count. */
static void kite__wheel_unlink(kite__wheel *w, kite__timer *t) {
  kite__timer **head = kite__wheel_head(w, t);
  if (t->prev)
    t->prev->next = t->next;
  else
    *head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  if (t->list >= KITE__TIMER_LEVEL0 && !*head)
    w->occupied[t->list - KITE__TIMER_LEVEL0] &= ~(1ull << t->slot);
  t->next = t->prev = NULL;
  t->list = KITE__TIMER_IDLE;
}

/* Links |t| where its expire_ms belongs relative to w->now. */
static void kite__wheel_file(kite__wheel *w, kite__timer *t) {
  int32_t d = kite__ms_diff(t->expire_ms, w->now);
  if (d <= 0) {
    /* Due already. Firing it at the next advance rather than the running
     * one keeps a callback that re-adds itself as due from looping. */
    t->list = KITE__TIMER_DUE;
    kite__wheel_push(&w->due, t);
    return;
  }
  uint32_t idx = (uint32_t)d - 1; /* ticks after the next one, tj */
  uint32_t at = t->expire_ms;
  if (idx >= KITE__WHEEL_RANGE_MS) {
    /* Past the range: file at its last tick; the cascade there re-files it
     * from the true expire_ms, which we kept. */
    idx = KITE__WHEEL_RANGE_MS - 1;
    at = w->now + KITE__WHEEL_RANGE_MS;
  }
  unsigned level =
      idx < KITE__WHEEL_SLOTS
          ? 0
          : (unsigned)(31 - __builtin_clz(idx)) / KITE__WHEEL_BITS;
  unsigned slot = (at >> (level * KITE__WHEEL_BITS)) & SLOT_MASK;
  t->list = (uint8_t)(KITE__TIMER_LEVEL0 + level);
  t->slot = (uint8_t)slot;
  kite__wheel_push(&w->slots[level][slot], t);
  w->occupied[level] |= 1ull << slot;
}

/* The next instant after w->now at which level |level| (non-empty) fires
 * (level 0) or cascades a slot. */
static uint32_t kite__wheel_level_next(const kite__wheel *w, unsigned level) {
  unsigned shift = level * KITE__WHEEL_BITS;
  uint32_t span_mask = (1u << shift) - 1;
  uint32_t boundary = (w->now + 1 + span_mask) & ~span_mask;
  unsigned first = (boundary >> shift) & SLOT_MASK;
  unsigned k = (unsigned)__builtin_ctzll(rotr64(w->occupied[level], first));
  return boundary + ((uint32_t)k << shift);
}

/* The earliest event of any level into |*at|; false when the levels are
 * empty. */
static bool kite__wheel_next_event(const kite__wheel *w, uint32_t *at) {
  bool found = false;
  for (unsigned level = 0; level < KITE__WHEEL_LEVELS; level++) {
    if (!w->occupied[level])
      continue;
    uint32_t t = kite__wheel_level_next(w, level);
    if (!found || kite__ms_diff(t, *at) < 0)
      *at = t;
    found = true;
  }
  return found;
}

/* Re-files every timer of slots[level][slot], relative to w->now. */
static void kite__wheel_cascade(kite__wheel *w, unsigned level,
                                unsigned slot) {
  kite__timer *t = w->slots[level][slot];
  w->slots[level][slot] = NULL;
  w->occupied[level] &= ~(1ull << slot);
  while (t) {
    kite__timer *next = t->next;
    kite__wheel_file(w, t);
    t = next;
  }
}

/* Moves the list at |*head| to w->firing and fires it. Callbacks may delete
 * or move timers still on w->firing (they then do not fire) and may file
 * new ones anywhere, the emptied slot included, without being fired here. */
static size_t kite__wheel_fire(kite__wheel *w, kite__timer **head,
                               kite__wheel_cb cb, void *user) {
  w->firing = *head;
  *head = NULL;
  for (kite__timer *t = w->firing; t; t = t->next)
    t->list = KITE__TIMER_FIRING;
  size_t fired = 0;
  kite__timer *t;
  while ((t = w->firing)) {
    kite__wheel_unlink(w, t);
    w->count--;
    fired++;
    cb(t, user);
  }
  return fired;
}

void kite__timer_init(kite__timer *t) { memset(t, 0, sizeof(*t)); }

void kite__wheel_init(kite__wheel *w, uint32_t now_ms) {
  memset(w, 0, sizeof(*w));
  w->now = now_ms;
}

void kite__wheel_add(kite__wheel *w, kite__timer *t, uint32_t expire_ms) {
  if (kite__timer_pending(t))
    kite__wheel_unlink(w, t);
  else
    w->count++;
  t->expire_ms = expire_ms;
  kite__wheel_file(w, t);
}

void kite__wheel_del(kite__wheel *w, kite__timer *t) {
  if (!kite__timer_pending(t))
    return;
  kite__wheel_unlink(w, t);
  w->count--;
}

size_t kite__wheel_advance(kite__wheel *w, uint32_t now_ms, kite__wheel_cb cb,
                           void *user) {
  if (w->advancing)
    return 0;
  w->advancing = true;
  size_t fired = 0;
  if (w->due)
    fired += kite__wheel_fire(w, &w->due, cb, user);
  if (kite__ms_diff(now_ms, w->now) > 0) {
    uint32_t at;
    while (kite__wheel_next_event(w, &at) && kite__ms_diff(at, now_ms) <= 0) {
      w->steps++;
      /* Cascade as of tick |at| (filing relative to at - 1 puts expiries
       * of |at| itself in level 0), from level 1 up: a level is at a slot
       * boundary only if every level below it is. A timer cascaded from a
       * higher level never lands in a lower slot cascaded this tick (its
       * block starts at |at|, which maps it lower still), so order is free. */
      w->now = at - 1;
      for (unsigned level = 1; level < KITE__WHEEL_LEVELS; level++) {
        unsigned shift = level * KITE__WHEEL_BITS;
        if (at & ((1u << shift) - 1))
          break;
        unsigned slot = (at >> shift) & SLOT_MASK;
        if (w->occupied[level] & (1ull << slot))
          kite__wheel_cascade(w, level, slot);
      }
      w->now = at;
      unsigned slot = at & SLOT_MASK;
      if (w->occupied[0] & (1ull << slot)) {
        w->occupied[0] &= ~(1ull << slot);
        fired += kite__wheel_fire(w, &w->slots[0][slot], cb, user);
      }
    }
    w->now = now_ms;
  }
  w->advancing = false;
  return fired;
}

int kite__wheel_timeout_ms(const kite__wheel *w, uint32_t now_ms, int cap_ms) {
  if (w->due || w->firing)
    return 0;
  uint32_t at;
  if (!kite__wheel_next_event(w, &at))
    return -1;
  int32_t d = kite__ms_diff(at, now_ms);
  if (d < 0)
    d = 0;
  if (cap_ms >= 0 && d > cap_ms)
    d = cap_ms;
  return (int)d;
}

size_t kite__wheel_count(const kite__wheel *w) { return w->count; }
