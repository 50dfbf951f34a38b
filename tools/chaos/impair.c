#include "impair.h"

#include <string.h>

/* splitmix64: small, fast, and every seed gives a full-quality sequence. */
static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void chaos_dir_init(chaos_dir *d, const chaos_profile *p, uint64_t seed,
                    uint64_t stream) {
  memset(d, 0, sizeof(*d));
  d->p = *p;
  d->rng = seed ^ (stream * 0xD1B54A32D192ED03ull);
  next(&d->rng);
}

double chaos_uniform(chaos_dir *d) {
  return (double)(next(&d->rng) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t leave_at(chaos_dir *d, uint64_t now_ms) {
  uint64_t at = now_ms + d->p.delay_ms;
  if (d->p.jitter_ms)
    at += next(&d->rng) % ((uint64_t)d->p.jitter_ms + 1);
  if (d->p.reorder > 0 && chaos_uniform(d) < d->p.reorder) {
    at += d->p.reorder_ms;
    d->reordered++;
  }
  return at;
}

int chaos_decide(chaos_dir *d, uint64_t now_ms, uint64_t at[2]) {
  d->seen++;
  if (d->p.blackout_every_ms && d->p.blackout_ms &&
      now_ms % d->p.blackout_every_ms < d->p.blackout_ms) {
    d->blacked_out++;
    return 0;
  }
  if (d->p.loss > 0 && chaos_uniform(d) < d->p.loss) {
    d->dropped++;
    return 0;
  }
  at[0] = leave_at(d, now_ms);
  if (d->p.dup > 0 && chaos_uniform(d) < d->p.dup) {
    at[1] = leave_at(d, now_ms);
    d->duplicated++;
    return 2;
  }
  return 1;
}
