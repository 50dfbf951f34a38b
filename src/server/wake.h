/*
 * When a shard holds back its next read (wake_coalesce_us): after an
 * iteration that served I/O, a shard whose traffic is dense sleeps out the
 * rest of the window, counted from the iteration's start, before it waits
 * on epoll again, so that what arrives meanwhile is served by one wake-up
 * (one epoll_wait, one recvmmsg, one sendmmsg) instead of one each.
 *
 * Dense means: the iteration read at least two datagrams (they queued up
 * while it was away), or it began less than a window after the previous
 * one that read any (wake-ups come faster than one a window).
 * A shard woken now and then for one datagram never holds: a sleep that
 * finds nothing to serve costs a wake-up of its own, so holding pays only
 * where more than one is expected within the window (docs/RUNTIME.md).
 * Nor does a shard that read a whole batch (64 datagrams) at once, ran
 * out of a budget (its inbox's), had TCP events, or saw the kernel drop
 * its datagrams in the last overload_refuse_ms: it has all the
 * batching a read can give, more may be waiting already, a shard that is
 * behind must not sleep, and TCP reads a bounded amount per connection
 * and wake-up, so a hold there would cap a connection's rate. Holds are
 * for datagrams.
 *
 * Pure, so that it is tested on a fake clock (tests/unit/server).
 */
#ifndef KITE_SERVER_WAKE_H
#define KITE_SERVER_WAKE_H

#include <stdbool.h>
#include <stdint.h>

/* Whether a shard should sleep until |start_us| + |window_us| before its
 * next epoll_wait: |served| is how many datagrams the iteration begun at
 * |start_us| read, |prev_us| the start of the last earlier iteration that
 * read any (0: none yet), |full| whether more may be waiting than a hold
 * would gather (see above). */
static inline bool kite__wake_hold(uint32_t window_us, uint32_t served,
                                   uint64_t start_us, uint64_t prev_us,
                                   bool full) {
  if (window_us == 0 || served == 0 || full)
    return false;
  return served >= 2 || (prev_us != 0 && start_us - prev_us < window_us);
}

#endif
