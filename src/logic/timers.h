/*
 * The game timers one executor owns (include/kite/timer.h): its own wheel,
 * the table of live timers by id, and the queue by which other threads
 * start and stop them. Everything but kite__timers_post() runs on the
 * executor's thread.
 */
#ifndef KITE_LOGIC_TIMERS_H
#define KITE_LOGIC_TIMERS_H

#include "kite/timer.h"

#include "base/map.h"
#include "base/mpsc.h"
#include "base/wheel.h"

#include <stdatomic.h>
#include <stdbool.h>

enum { KITE__TIMER_START = 1, KITE__TIMER_STOP = 2 };

typedef struct kite__gtimer {
  uint8_t op;         /* as a command: START (the timer itself) or STOP */
  kite__timer node;   /* in the executor's wheel */
  kite_timer_id id;
  uint64_t key;       /* START: the key it was started for */
  uint32_t delay_ms, period_ms;
  kite_timer_fn fn;
  void *user;
} kite__gtimer;

typedef struct kite__timers {
  kite__wheel wheel;
  kite__map live;          /* hashed id -> index in |slots| */
  kite__gtimer **slots;
  uint32_t *free_slots;    /* a stack of free indexes */
  uint32_t cap, nfree;
  kite__mpsc cmds;         /* from other threads */
  uint64_t tag;            /* the executor, in the ids' top bits */
  uint64_t seq_mask;       /* the ids' bits below the tag */
  /* A bound worker's: the session whose timers it runs now, 0 between
   * sessions; a START for another key is stale (its session ended) and is
   * dropped. Written by the shard at bind and by the worker when its
   * session ends; read by the worker. Unused (filter false) elsewhere. */
  _Atomic uint64_t owner;
  bool filter;
  uint32_t advance_to;     /* now_ms of the advance under way */
  _Atomic uint64_t seq;    /* the ids' low bits (seq_mask) */
  kite_server *srv;
} kite__timers;

/* |tag| in the ids' top 16 bits, a 48-bit sequence below it. */
int kite__timers_init(kite__timers *t, kite_server *srv, uint16_t tag,
                      uint32_t cap, uint32_t now_ms);
/* |tag| already in place (its bits above |seq_bits|), a |seq_bits|-bit
 * sequence below it. */
int kite__timers_init_tagged(kite__timers *t, kite_server *srv, uint64_t tag,
                             unsigned seq_bits, uint32_t cap, uint32_t now_ms);
void kite__timers_free(kite__timers *t);
/* Frees every timer (a bound worker's session ended). */
void kite__timers_clear(kite__timers *t);

/* Any thread: a new timer's id (the executor learns of it by a command). */
kite_timer_id kite__timers_next_id(kite__timers *t);
/* Any thread: queues a START (a kite__gtimer) or STOP command; false when
 * the queue is full. The caller wakes the executor. */
bool kite__timers_post(kite__timers *t, kite__gtimer *cmd);

/* The executor's thread: */
void kite__timers_drain(kite__timers *t, uint32_t now_ms);
int kite__timers_start_here(kite__timers *t, kite__gtimer *g, uint32_t now_ms);
int kite__timers_stop_here(kite__timers *t, kite_timer_id id);
void kite__timers_advance(kite__timers *t, uint32_t now_ms);
int kite__timers_timeout_ms(const kite__timers *t, uint32_t now_ms, int cap);

#endif
