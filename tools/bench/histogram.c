#include "histogram.h"

/* Bucket (0, s) holds the value s (0..31); bucket (p >= 1, s) holds
 * [(32 + s) << (p - 1), (33 + s) << (p - 1)): 32 buckets per doubling. */
void hist_add(histogram *h, uint64_t us) {
  int p = 0, s;
  if (us < HIST_SUB) {
    s = (int)us;
  } else {
    p = 63 - __builtin_clzll(us) - 4; /* floor(log2(us)) - 4 */
    if (p > HIST_POW - 1) {
      p = HIST_POW - 1;
      s = HIST_SUB - 1;
    } else {
      s = (int)(us >> (p - 1)) - HIST_SUB;
    }
  }
  h->counts[p][s]++;
  h->total++;
  if (us > h->max_us)
    h->max_us = us;
}

static uint64_t bucket_top(int p, int s) {
  if (p == 0)
    return (uint64_t)s;
  return ((uint64_t)(HIST_SUB + s + 1) << (p - 1)) - 1;
}

uint64_t hist_quantile(const histogram *h, double q) {
  if (h->total == 0)
    return 0;
  uint64_t want = (uint64_t)(q * (double)h->total);
  if (want >= h->total)
    want = h->total - 1;
  uint64_t seen = 0;
  for (int p = 0; p < HIST_POW; p++)
    for (int s = 0; s < HIST_SUB; s++) {
      seen += h->counts[p][s];
      if (seen > want) {
        uint64_t top = bucket_top(p, s);
        return top < h->max_us ? top : h->max_us;
      }
    }
  return h->max_us;
}
