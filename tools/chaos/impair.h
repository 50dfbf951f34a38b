/*
 * kite-chaos's impairment model, one per direction: what happens to each
 * datagram (dropped, sent once or twice, when), decided by a seeded
 * generator so that a run with the same seed and the same traffic makes
 * the same decisions. Pure: no sockets, no clock (time is passed in).
 *
 *   loss       each datagram is dropped with this probability;
 *   dup        each one that survives is sent twice with this probability
 *              (the copy after its own delay draw);
 *   delay, jitter
 *              each copy leaves delay + uniform[0, jitter] ms later, so
 *              jitter alone reorders datagrams closer than it;
 *   reorder    with this probability a copy is held back a further
 *              reorder_ms, so that later datagrams overtake it;
 *   blackout   for blackout_ms of every blackout_every_ms (from time 0),
 *              everything is dropped: a link going away and coming back.
 */
#ifndef KITE_CHAOS_IMPAIR_H
#define KITE_CHAOS_IMPAIR_H

#include <stdint.h>

typedef struct chaos_profile {
  double loss, dup, reorder;          /* probabilities, 0..1 */
  uint32_t delay_ms, jitter_ms, reorder_ms;
  uint32_t blackout_every_ms, blackout_ms;
} chaos_profile;

typedef struct chaos_dir {
  chaos_profile p;
  uint64_t rng;
  uint64_t seen, dropped, blacked_out, duplicated, reordered;
} chaos_dir;

/* |seed| and |stream| (one per direction) pick the generator's sequence. */
void chaos_dir_init(chaos_dir *d, const chaos_profile *p, uint64_t seed,
                    uint64_t stream);

/* Decides one datagram's fate at |now_ms|: writes the times at which its
 * copies leave into |at| and returns how many (0, 1 or 2). */
int chaos_decide(chaos_dir *d, uint64_t now_ms, uint64_t at[2]);

/* A uniform double in [0, 1) from the direction's generator. */
double chaos_uniform(chaos_dir *d);

#endif
