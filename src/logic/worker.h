/*
 * Worker threads: each runs the sessions queued on it, one session at a
 * time, a bounded number of messages per turn, so one busy session cannot
 * starve the others on its worker.
 */
#ifndef KITE_LOGIC_WORKER_H
#define KITE_LOGIC_WORKER_H

#include "logic/logic.h"

/* Timer ids name their executor in their top bits (timer_api.c):
 *   0x01SS << 48         shard SS (inline mode);
 *   (0x8000 | i) << 48   pool worker i, or the clock (i = the pool's size);
 *   01 and a 24-bit index in bits 62..38: a temporary worker. */
#define KITE__TAG_WORKER(i) ((uint64_t)(0x8000u | (i)) << 48)
#define KITE__TAG_TEMP(i) (1ULL << 62 | (uint64_t)(i) << 38)
#define KITE__TEMP_SEQ_BITS 38

/* |tag|, |seq_bits|: its timers' ids; |timers_cap|: its timers at most;
 * |bound|: it runs one session at a time, whose timers end with it. */
int kite__worker_init(kite__worker *w, kite__logic *lg, uint32_t index,
                      uint32_t runq, uint64_t tag, unsigned seq_bits,
                      uint32_t timers_cap, bool bound);
int kite__worker_start(kite__worker *w);
/* Asks the thread to end and waits for it. A temporary worker's thread
 * ends with its session instead (kite__logic_stop waits for those). */
void kite__worker_stop(kite__worker *w);
void kite__worker_free(kite__worker *w);
/* Any thread: wakes the worker's loop. */
void kite__worker_wake(kite__worker *w);
/* The worker the calling thread runs, or NULL. */
kite__worker *kite__worker_current(void);
/* Any thread: queues |mb| (its SCHEDULED flag won by the caller). */
void kite__worker_post(kite__worker *w, kite__mailbox *mb);

/* logic.c */
void kite__logic_schedule(kite__logic *lg, kite__session *s);
void kite__logic_set_running(kite__mailbox *mb);
/* A temporary worker's thread ends: its record goes back to the idle list
 * once its session is unbound too. The thread's last touch of |w|. */
void kite__logic_temp_exit(kite__logic *lg, kite__worker *w);

#endif
