/*
 * A seeded, simulated one-way link for tests and benchmarks: loss,
 * duplication, delay with jitter (which reorders), on a clock the caller
 * advances. Same seed, same calls: same deliveries, on every machine.
 */
#ifndef KITE_SIM_LINK_H
#define KITE_SIM_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sim_link_config {
  uint64_t seed;
  double loss;        /* probability a datagram is dropped */
  double dup;         /* probability a delivered datagram arrives twice */
  uint32_t delay_ms;  /* base one-way delay */
  uint32_t jitter_ms; /* extra uniform delay in [0, jitter]: reorders */
  /* Outages: every datagram sent in [origin + k * blackout_every_ms,
   * origin + k * blackout_every_ms + blackout_ms) is dropped (k >= 0, on
   * the 32-bit clock); 0 (either): none. */
  uint32_t blackout_every_ms, blackout_ms, blackout_origin;
} sim_link_config;

typedef struct sim_link sim_link;

typedef struct sim_link_stats {
  uint64_t sent, dropped, duplicated, delivered;
  uint64_t blacked_out; /* dropped by an outage (not in |dropped|) */
} sim_link_stats;

sim_link *sim_link_create(const sim_link_config *cfg);
void sim_link_destroy(sim_link *l);

/* Puts a copy of |buf| on the link at time |now|. */
void sim_link_send(sim_link *l, const uint8_t *buf, size_t len, uint32_t now);

/* Copies the next datagram due at or before |now| into |buf| and returns its
 * length, or -1 when none is due. Datagrams longer than |cap| are cut. */
int sim_link_recv(sim_link *l, uint32_t now, uint8_t *buf, size_t cap);

/* The delivery time of the next datagram, or false when the link is empty. */
bool sim_link_next(const sim_link *l, uint32_t *when);

const sim_link_stats *sim_link_get_stats(const sim_link *l);

/* Changes the outages from now on (the fields of sim_link_config). */
void sim_link_set_blackouts(sim_link *l, uint32_t every_ms, uint32_t len_ms,
                            uint32_t origin);

/* The link's generator, for callers that want more seeded numbers. */
uint64_t sim_rand(sim_link *l);

#endif
