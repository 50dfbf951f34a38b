/*
 * Memory for KCP control blocks, one pool per thread (a shard, a client).
 *
 * Segments are fixed-size chunks (header + one mss of data) kept on a free
 * list and carved from slabs, so the hot path never calls malloc once the
 * pool is warm. The pool is also the owner's memory budget across all its
 * blocks: at most |max_segments| chunks are in use at once, and the last
 * |reserve| of them go only to in-order data and acknowledgement lists, so
 * out-of-order data and new sends are refused first under pressure.
 *
 * Ring arrays (a block's send and receive windows, indexed by sn) are taken
 * from the pool only while a block has data in flight or out of order, so an
 * idle block owns none. The flush buffer is shared by every block of the
 * pool, since only one block flushes at a time on a thread.
 * Every dropped segment lands in exactly one in_* counter below.
 *
 * A burst's chunks and rings are kept for reuse, not for ever: the owner
 * calls kite__kcp_pool_trim() now and then (a shard: every
 * trim_interval_ms), and each call frees what the last interval did not
 * need, above a bounded working set (keep_segments, keep_rings).
 *
 * Not thread-safe: a pool and all its blocks belong to one thread.
 * With KITE_NOMEMPOOL (the sanitizer build) every chunk and ring is
 * malloc'd and freed on its own, so ASan sees each use; budgets still hold.
 */
#ifndef KITE_KCP_POOL_H
#define KITE_KCP_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kite__kseg {
  struct kite__kseg *next; /* queue or free-list link */
  uint32_t sn;
  uint32_t ts;       /* last transmission time */
  uint32_t resendts; /* retransmit when now reaches this */
  uint32_t rto;
  uint32_t fastack; /* later segments acknowledged before this one */
  uint32_t xmit;    /* transmissions so far */
  uint16_t len;
  uint8_t frg;
  uint8_t data[]; /* pool->mss bytes */
} kite__kseg;

typedef struct kite__kcp_pool_config {
  uint32_t mtu;          /* largest mtu of any block in the pool (1400) */
  uint32_t wnd_max;      /* largest snd_wnd / rcv_wnd of any block (256) */
  uint32_t max_segments; /* budget across all blocks (65536) */
  uint32_t reserve; /* of which kept for in-order data (max_segments / 4) */
  uint32_t keep_segments; /* chunks a trim never goes below (256) */
  uint32_t keep_rings;    /* rings a trim never goes below (64) */
} kite__kcp_pool_config;

/* Refusals and use, counted per pool (per shard). */
typedef struct kite__kcp_pool_stats {
  uint32_t segs_used, segs_peak, rings_used;
  uint32_t slabs;            /* slabs held (SLAB_SEGS chunks each) */
  uint32_t rings_free;       /* rings on the free list */
  uint64_t trimmed_bytes;    /* given back by kite__kcp_pool_trim() */
  uint64_t in_short;         /* datagram shorter than a segment header */
  uint64_t in_bad_conv;      /* segment of another conv inside a datagram */
  uint64_t in_bad_len;       /* len past the datagram's end, or above mss */
  uint64_t in_bad_cmd;       /* unknown cmd */
  uint64_t in_bad_frg;       /* frg at or above the receive window */
  uint64_t in_bad_una;       /* una beyond what was ever sent */
  uint64_t in_bad_ack;       /* ack for an sn never sent */
  uint64_t in_stale_ack;     /* ack for an sn acked over a window ago */
  uint64_t in_out_of_window; /* sn outside the receive window */
  uint64_t in_no_buffer;     /* data refused by the budget, not acked */
  uint64_t in_dead;          /* input to a block already dead */
  uint64_t acks_dropped;     /* ack list full (duplicate flood) */
  uint64_t send_no_buffer;   /* send refused by the budget */
  uint64_t recv_bad_frg;     /* a message whose frg sequence is broken */
} kite__kcp_pool_stats;

typedef struct kite__kcp_pool {
  kite__kcp_pool_config cfg;
  uint32_t mss;       /* data bytes per chunk: mtu - overhead */
  size_t seg_size;    /* bytes per chunk */
  uint32_t ring_mask; /* ring slots - 1 (slots: power of two >= wnd_max) */
  kite__kseg *free_segs;
  void *slabs;        /* singly linked, freed at destroy */
  void *free_rings;   /* rings on a free list, linked through slot 0 */
  uint8_t *flush_buf; /* mtu bytes, shared by the blocks */
  /* The most in use since the last trim: what the working set needed. */
  uint32_t win_segs_peak, win_rings_peak;
  bool win_grew; /* memory was allocated since the last trim */
  uint8_t walk_skip, walk_backoff; /* trim passes that skip the free-list
                                      walk after one that found nothing */
  kite__kcp_pool_stats stats;
} kite__kcp_pool;

void kite__kcp_pool_config_default(kite__kcp_pool_config *cfg);

/* A new pool, or NULL when |cfg| is invalid (mtu outside 50..65535, wnd_max
 * outside 1..32768, reserve >= max_segments) or memory runs out. */
kite__kcp_pool *kite__kcp_pool_create(const kite__kcp_pool_config *cfg);

/* Frees the pool. Every block created on it must be destroyed first. */
void kite__kcp_pool_destroy(kite__kcp_pool *pool);

/* A chunk, or NULL when the budget refuses: |reserved| callers (in-order
 * data, ack lists) may use the whole budget, others stop |reserve| short. */
kite__kseg *kite__kcp_pool_seg_get(kite__kcp_pool *pool, bool reserved);
void kite__kcp_pool_seg_put(kite__kcp_pool *pool, kite__kseg *seg);

/* true when |n| more non-reserved chunks would be granted now. */
bool kite__kcp_pool_can_get(const kite__kcp_pool *pool, uint32_t n);

/* A ring of ring_mask + 1 NULL slots, or NULL when memory runs out. It must
 * be all NULL again when put back. */
kite__kseg **kite__kcp_pool_ring_get(kite__kcp_pool *pool);
void kite__kcp_pool_ring_put(kite__kcp_pool *pool, kite__kseg **ring);

/* A trim pass, for the owner to call every so often, never on a hot
 * path. Frees slabs whose chunks are all free while the chunks held stay
 * at or above the larger of keep_segments and the most in use since the
 * last pass, and free rings while those held (used and free) stay above
 * the larger of keep_rings and their most in use since the last pass; then
 * a new interval starts. So what one interval did not need is given back
 * at the next pass: a burst's peak within two intervals of its end.
 * Cost: with every chunk free (a burst over), a walk of the slabs; else a
 * walk of the free list (a few ms for 50,000 free chunks), and after a
 * walk that found no whole slab the next 1, 2, 4, then 8 passes skip it.
 * Returns the bytes freed (0 with KITE_NOMEMPOOL, where nothing is kept).
 * |*grew|, when not NULL, is set to whether the pool allocated anything
 * during the interval. */
size_t kite__kcp_pool_trim(kite__kcp_pool *pool, bool *grew);

/* Bytes the pool holds: slabs, rings (in use and free) and the flush
 * buffer. */
size_t kite__kcp_pool_bytes(const kite__kcp_pool *pool);

#endif
