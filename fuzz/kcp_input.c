/*
 * libFuzzer target: the KCP engine's input path (kite__kcp_input) driven by
 * an arbitrary script of datagrams, sends, receives and clock steps.
 * Besides ASan/UBSan, it checks the engine's bounds after every step: the
 * memory a block holds never exceeds what its windows and queues allow.
 *
 * Script: records of [op u8][len u16 LE][len bytes]; op % 4:
 *   0 a datagram with the block's conv written over its first 4 bytes,
 *   1 a datagram as it is, 2 send |len| bytes, 3 recv all and step the
 *   clock by |len| ms, then flush.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kcp/kcp.h"
#include "kite/error.h"

#define CONV 0x01020304u

static void output(kite__kcp *kcp, const uint8_t *buf, size_t len, void *user) {
  (void)kcp;
  (void)user;
  if (len == 0 || len > 1400)
    abort();
}

static const kite__kcp_ops ops = {output, NULL};

static void check_bounds(const kite__kcp *k, const kite__kcp_pool *pool,
                         const kite__kcp_config *c) {
  /* send queue + send window + receive ring + receive queue + ack list */
  uint32_t bound = c->snd_queue_max + c->snd_wnd + 2 * c->rcv_wnd + 1;
  if (pool->stats.segs_used > bound || pool->stats.rings_used > 2)
    abort();
  if (kite__kcp_unacked(k) > c->snd_queue_max + c->snd_wnd)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t buf[65536];
  kite__kcp_pool_config pc;
  kite__kcp_pool_config_default(&pc);
  kite__kcp_pool *pool = kite__kcp_pool_create(&pc);
  kite__kcp_config c;
  kite__kcp_config_default(&c);
  c.snd_wnd = 16; /* small windows: the edges are reachable */
  c.rcv_wnd = 16;
  c.peer_rcv_wnd = 16;
  c.snd_queue_max = 64;
  kite__kcp *k;
  if (!pool || kite__kcp_create(&k, CONV, &c, pool, &ops, NULL) != 0)
    abort();
  uint32_t now = 0xFFFFF000u; /* the clock wraps during long scripts */

  while (size >= 3) {
    uint8_t op = data[0] % 4;
    size_t len = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (len > size)
      len = size;
    switch (op) {
    case 0:
    case 1:
      memcpy(buf, data, len);
      if (op == 0 && len >= 4)
        memcpy(buf, &(uint32_t){CONV}, 4); /* little-endian hosts only */
      kite__kcp_input(k, buf, len, now);
      break;
    case 2:
      kite__kcp_send(k, data, len);
      break;
    default: {
      int n;
      while ((n = kite__kcp_recv(k, buf, sizeof(buf))) >= 0)
        ;
      if (n != KITE_EAGAIN && n != KITE_EPROTO)
        abort();
      now += (uint32_t)len;
      kite__kcp_flush(k, now);
      uint32_t due;
      if (kite__kcp_next_due(k, now, &due) && (int32_t)(due - now) < 0)
        abort(); /* never due in the past after a flush */
    }
    }
    data += len;
    size -= len;
    check_bounds(k, pool, &c);
  }
  kite__kcp_destroy(k);
  if (pool->stats.segs_used != 0 || pool->stats.rings_used != 0)
    abort();
  kite__kcp_pool_destroy(pool);
  return 0;
}
