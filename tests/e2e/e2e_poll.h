/*
 * Waiting in end-to-end tests: poll a client until a condition holds, with
 * a bound on the wait (a test never hangs), and count a field over an
 * array of per-session states.
 */
#ifndef KITE_TESTS_E2E_POLL_H
#define KITE_TESTS_E2E_POLL_H

#include "base/clock.h"
#include "kite/client.h"

/* Polls |c| until |cond| holds or |ms| pass; returns whether it held. */
#define POLL_UNTIL(c, cond, ms)                                              \
  ({                                                                         \
    uint64_t end_ = kite__now_us() + (uint64_t)(ms) * 1000;                  \
    while (!(cond) && kite__now_us() < end_)                                 \
      kite_client_poll((c), 5);                                              \
    (cond);                                                                  \
  })

/* The sum of |field| over the first |n| elements of array |a|. */
#define SUM_OF(a, n, field)                                                  \
  ({                                                                         \
    long sum_ = 0;                                                           \
    for (int i_ = 0; i_ < (int)(n); i_++)                                    \
      sum_ += (a)[i_].field;                                                 \
    sum_;                                                                    \
  })

#endif
