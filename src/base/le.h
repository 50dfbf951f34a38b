/*
 * Little-endian loads and stores, byte by byte: the wire is little-endian
 * (PROTOCOL.md), and byte access is alignment-safe and compiles to single
 * moves on little-endian machines.
 */
#ifndef KITE_BASE_LE_H
#define KITE_BASE_LE_H

#include <stdint.h>

static inline uint8_t *kite__put_le16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  return p + 2;
}

static inline uint8_t *kite__put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
  return p + 4;
}

static inline uint8_t *kite__put_le64(uint8_t *p, uint64_t v) {
  kite__put_le32(p, (uint32_t)v);
  return kite__put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t kite__get_le16(const uint8_t *p) {
  return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t kite__get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static inline uint64_t kite__get_le64(const uint8_t *p) {
  return (uint64_t)kite__get_le32(p) | (uint64_t)kite__get_le32(p + 4) << 32;
}

#endif
