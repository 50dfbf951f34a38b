#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

void progress_init(progress *p, const bench_config *cfg, uint64_t now_us) {
  p->on = !cfg->quiet && isatty(STDERR_FILENO);
  p->next_us = now_us + 1000000;
  p->last_received = 0;
}

void progress_tick(progress *p, const driver *d, uint64_t now_us) {
  if (!p->on || now_us < p->next_us)
    return;
  const bench_result *r = d->res;
  const char *phase = now_us < d->window_start_us ? "warm-up"
                      : now_us < d->window_end_us ? "measuring"
                                                  : "draining";
  double left = now_us < d->window_end_us
                    ? (double)(d->window_end_us - now_us) / 1e6 : 0;
  uint64_t rate = r->received - p->last_received;
  p->last_received = r->received;
  p->next_us = now_us + 1000000;
  fprintf(stderr,
          "\r%-9s %5.1f s left | sessions %" PRIu32 " up, %" PRIu32
          " failed | %" PRIu64 " echoes/s | sent %" PRIu64 ", back %" PRIu64
          " | out of order %" PRIu64 ", corrupt %" PRIu64 "\033[K",
          phase, left, r->connected, r->failed, rate, r->sent, r->received,
          r->out_of_order, r->corrupt);
  fflush(stderr);
}

void progress_end(progress *p) {
  if (p->on)
    fputc('\n', stderr);
}
