/*
 * A game timer's id names the executor that runs it in its top bits, so
 * kite_timer_stop() finds it without a table (timer_api.c):
 *   0x01SS << 48          shard SS (inline mode), a 48-bit sequence below;
 *   (0x8000 | i) << 48    pool worker i, or the clock (i = the pool's size);
 *   01 in bits 63..62, a 24-bit index in 61..38: temporary worker i, a
 *                         38-bit sequence below.
 * Ids are never 0: every tag has a bit set.
 */
#ifndef KITE_LOGIC_TIMER_TAG_H
#define KITE_LOGIC_TIMER_TAG_H

#include <stdbool.h>
#include <stdint.h>

#define KITE__TTAG_SEQ_BITS 48
#define KITE__TTAG_TEMP_SEQ_BITS 38

static inline uint64_t kite__ttag_shard(uint32_t shard) {
  return (uint64_t)(0x0100u | (shard & 0xFF)) << KITE__TTAG_SEQ_BITS;
}
static inline uint64_t kite__ttag_worker(uint32_t i) {
  return (uint64_t)(0x8000u | (i & 0x7FFF)) << KITE__TTAG_SEQ_BITS;
}
static inline uint64_t kite__ttag_temp(uint32_t i) {
  return 1ULL << 62 | (uint64_t)(i & 0xFFFFFF) << KITE__TTAG_TEMP_SEQ_BITS;
}

/* Decoding an id: which kind of executor, and its index. */
static inline bool kite__ttag_is_shard(uint64_t id, uint32_t *shard) {
  uint32_t tag = (uint32_t)(id >> KITE__TTAG_SEQ_BITS);
  *shard = tag & 0xFF;
  return (tag & 0xFF00) == 0x0100;
}
static inline bool kite__ttag_is_worker(uint64_t id, uint32_t *i) {
  uint32_t tag = (uint32_t)(id >> KITE__TTAG_SEQ_BITS);
  *i = tag & 0x7FFF;
  return (tag & 0x8000) != 0;
}
static inline bool kite__ttag_is_temp(uint64_t id, uint32_t *i) {
  *i = (uint32_t)(id >> KITE__TTAG_TEMP_SEQ_BITS) & 0xFFFFFF;
  return id >> 62 == 1;
}

#endif
