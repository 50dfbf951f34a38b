/*
 * Worker threads: each runs the sessions queued on it, one session at a
 * time, a bounded number of messages per turn, so one busy session cannot
 * starve the others on its worker.
 */
#ifndef KITE_LOGIC_WORKER_H
#define KITE_LOGIC_WORKER_H

#include "logic/logic_internal.h"

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

#endif
