/*
 * Waiting in end-to-end tests: poll a client until a condition holds, with
 * a bound on the wait (a test never hangs), and count a field over an
 * array of per-session states.
 */
#ifndef KITE_TESTS_E2E_POLL_H
#define KITE_TESTS_E2E_POLL_H

#include "base/clock.h"
#include "kite/client.h"
#include "kite/server.h"

#include <unistd.h>

/* Polls |c| until |cond| holds or |ms| pass; returns whether it held. */
#define POLL_UNTIL(c, cond, ms)                                              \
  ({                                                                         \
    uint64_t end_ = kite__now_us() + (uint64_t)(ms) * 1000;                  \
    while (!(cond) && kite__now_us() < end_)                                 \
      kite_client_poll((c), 5);                                              \
    (cond);                                                                  \
  })

/* Sleeps in 2 ms steps until |cond| holds or |ms| pass (nothing to poll:
 * a server's threads do the work); returns whether it held. */
#define WAIT_FOR(cond, ms)                                                   \
  ({                                                                         \
    uint64_t end_ = kite__now_us() + (uint64_t)(ms) * 1000;                  \
    while (!(cond) && kite__now_us() < end_)                                 \
      usleep(2000);                                                          \
    (cond);                                                                  \
  })

/* The server's counters as of now, summed over its shards. */
static inline kite_server_stats e2e_stats(kite_server *srv) {
  kite_server_stats st;
  kite_server_stats_get(srv, &st);
  return st;
}

/* Refreshes |st| from |srv| until |cond| (an expression over st) holds,
 * within |ms|, then asserts it on the caller's (the test's) thread. */
#define EVENTUALLY_STATS(srv, st, cond, ms)                                  \
  do {                                                                       \
    WAIT_FOR(((st) = e2e_stats(srv), (cond)), (ms));                         \
    (st) = e2e_stats(srv);                                                   \
    assert_true(cond);                                                       \
  } while (0)

/* The sum of |field| over the first |n| elements of array |a|. */
#define SUM_OF(a, n, field)                                                  \
  ({                                                                         \
    long sum_ = 0;                                                           \
    for (int i_ = 0; i_ < (int)(n); i_++)                                    \
      sum_ += (a)[i_].field;                                                 \
    sum_;                                                                    \
  })

#endif
