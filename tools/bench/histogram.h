/*
 * A latency histogram with bounded relative error (about 3%): 32 linear
 * sub-buckets per power of two of microseconds, up to about 70 s. Fixed
 * size, no allocation; percentiles read from the counts.
 */
#ifndef KITE_BENCH_HISTOGRAM_H
#define KITE_BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB 32
#define HIST_POW 27

typedef struct histogram {
  uint64_t counts[HIST_POW][HIST_SUB];
  uint64_t total, max_us;
} histogram;

void hist_add(histogram *h, uint64_t us);
/* The value at or below which |q| (0..1) of the samples lie, in us. */
uint64_t hist_quantile(const histogram *h, double q);

#endif
