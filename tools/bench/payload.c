/* The frames kite-bench sends: a header, then bytes derived from it, so a
 * corrupt, shifted or mixed-up echo is caught. */
#include "bench.h"

#include <string.h>

static uint8_t pattern(uint64_t seq, uint32_t session, uint32_t i) {
  return (uint8_t)(seq * 131 + session * 7 + i * 31);
}

void bench_fill(uint8_t *body, uint32_t size, uint32_t session, uint64_t seq,
                uint64_t sent_us) {
  bench_payload p = {seq, sent_us, session};
  memcpy(body, &p.seq, 8);
  memcpy(body + 8, &p.sent_us, 8);
  memcpy(body + 16, &p.session, 4);
  for (uint32_t i = BENCH_HDR; i < size; i++)
    body[i] = pattern(seq, session, i);
}

bool bench_parse(const uint8_t *body, uint32_t len, uint32_t size,
                 bench_payload *out) {
  if (len != size || len < BENCH_HDR)
    return false;
  memcpy(&out->seq, body, 8);
  memcpy(&out->sent_us, body + 8, 8);
  memcpy(&out->session, body + 16, 4);
  for (uint32_t i = BENCH_HDR; i < len; i++)
    if (body[i] != pattern(out->seq, out->session, i))
      return false;
  return true;
}
