/*
 * kite's KCP engine: one control block per session, segment-for-segment
 * compatible with ikcp and kcp-go in message mode (PROTOCOL.md section 3).
 *
 * The engine does no I/O and reads no clock: datagrams come in through
 * kite__kcp_input(), go out through ops->output, and every call that needs
 * the time takes |now_ms| (any 32-bit millisecond clock; it may wrap).
 * The owner drives it like this:
 *
 *   kite__kcp_input(kcp, datagram, len, now);    // for each datagram
 *   while ((n = kite__kcp_recv(kcp, buf, cap)) >= 0) use(buf, n);
 *   kite__kcp_send(kcp, reply, len);
 *   kite__kcp_flush(kcp, now);                   // acks + data, batched
 *   if (kite__kcp_next_due(kcp, now, &due)) schedule(due); // else: idle
 *
 * Where it differs from ikcp, for servers with 100,000 blocks:
 * - segments come from a per-thread pool with a budget (kcp_pool.h); the
 *   send and receive windows are rings indexed by sn, so an ACK costs O(1);
 * - kite__kcp_next_due() says "nothing due" for an idle block, which then
 *   costs no wake-ups at all;
 * - hostile input is refused and counted in the pool's stats, and never
 *   grows memory past the windows;
 * - a dead link is a span of time without progress, reported once through
 *   ops->dead.
 *
 * Threads: a block, and its pool, belong to one thread. No function here
 * may be called from inside ops->output or ops->dead on the same block,
 * except kite__kcp_conv(), kite__kcp_user() and kite__kcp_get_stats().
 */
#ifndef KITE_KCP_H
#define KITE_KCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kcp/kcp_codec.h"
#include "kcp/kcp_pool.h"

/* Fragments per message: fewer than 128 (PROTOCOL.md section 3). */
#define KITE_KCP_FRAGMENTS_MAX 127

typedef struct kite__kcp kite__kcp;

typedef struct kite__kcp_config {
  uint32_t mtu;          /* bytes per datagram, headers included (1400) */
  uint32_t snd_wnd;      /* segments in flight at most (128) */
  uint32_t rcv_wnd;      /* segments buffered for receive at most (128) */
  uint32_t peer_rcv_wnd; /* the peer's rcv_wnd: caps fragments/message (128) */
  uint32_t interval_ms;  /* timer granularity, also floors the rto (10) */
  /* 0 normal: rto floor 100 ms, backoff doubles; 1 or 2: floor 30 ms,
   * backoff adds half the rto (kcp-go's rule). The wait between tries
   * stays under dead_link_ms / 8 in every mode. (1) */
  uint32_t nodelay;
  uint32_t fast_resend;  /* resend after this many later acks; 0 off (2) */
  uint32_t fast_limit;   /* fast resends of one segment at most; 0 any (5) */
  bool nocwnd;           /* no congestion window (true) */
  uint32_t dead_link_ms; /* no progress this long with data out: dead (15000) */
  uint32_t snd_queue_max; /* segments waiting to enter the window (1024) */
} kite__kcp_config;

typedef struct kite__kcp_ops {
  /* One datagram of |len| <= mtu bytes to put on the wire. |buf| is valid
   * only during the call: copy it. Required. */
  void (*output)(kite__kcp *kcp, const uint8_t *buf, size_t len, void *user);
  /* The link just died (called once, from kite__kcp_flush()). The block
   * does nothing more; the owner destroys it when it likes. May be NULL. */
  void (*dead)(kite__kcp *kcp, void *user);
} kite__kcp_ops;

typedef struct kite__kcp_stats {
  uint32_t srtt_ms, rttvar_ms, rto_ms;
  uint32_t retransmits;      /* on timeout */
  uint32_t fast_retransmits; /* on later acks */
  uint64_t segs_sent, segs_received; /* on the wire, data segments */
  uint64_t bytes_sent, bytes_received; /* message bytes: send() / recv() */
} kite__kcp_stats;

void kite__kcp_config_default(kite__kcp_config *cfg);

/* Creates a block for |conv| on |pool|. |cfg| is copied; |ops| and |user|
 * are kept and must outlive the block. Returns 0 and sets *out, or
 * KITE_EINVAL (mtu above the pool's or below 50, a window of 0 or above
 * the pool's wnd_max, interval of 0, snd_queue_max of 0 or above 65535),
 * or KITE_ENOMEM. */
int kite__kcp_create(kite__kcp **out, uint32_t conv,
                     const kite__kcp_config *cfg, kite__kcp_pool *pool,
                     const kite__kcp_ops *ops, void *user);

/* Frees the block and returns all its memory to the pool. Nothing queued is
 * sent. NULL is ignored. */
void kite__kcp_destroy(kite__kcp *kcp);

/* Queues one message of |len| bytes (copied), split into fragments of one
 * mss each. All or nothing: on error nothing was queued. Returns 0, or
 *   KITE_EINVAL   len is 0;
 *   KITE_EMSGSIZE more fragments than min(127, peer_rcv_wnd): split it;
 *   KITE_EFULL    the send queue is full: retry after the peer acks;
 *   KITE_ENOMEM   the pool's budget refused it;
 *   KITE_EDEAD    the link is dead. */
int kite__kcp_send(kite__kcp *kcp, const void *data, size_t len);

/* Size of the next whole message, or KITE_EAGAIN when none is complete, or
 * KITE_EPROTO when the peer broke the fragment sequence (close it). */
int kite__kcp_peeksize(const kite__kcp *kcp);

/* Copies the next whole message into |buf| and returns its size, or
 * KITE_EAGAIN (none complete), KITE_EMSGSIZE (|cap| too small; nothing
 * consumed), KITE_EPROTO (as peeksize). */
int kite__kcp_recv(kite__kcp *kcp, void *buf, size_t cap);

/* Queues the bytes gathered from |iov| as one or more messages (as many as
 * the fragment limit needs): for callers whose data is a byte stream, such
 * as kite's frames (PROTOCOL.md section 3). All or nothing. Returns 0, or
 *   KITE_EINVAL   no bytes;
 *   KITE_EMSGSIZE more segments than snd_queue_max could ever hold;
 *   KITE_EFULL, KITE_ENOMEM, KITE_EDEAD as kite__kcp_send(). */
int kite__kcp_sendv(kite__kcp *kcp, const struct iovec *iov, int iovcnt);

/* The receive queue as a byte stream, message boundaries ignored: in-order
 * bytes are readable as soon as they arrive, whole messages or not. A block
 * may be read both ways, but a message partly consumed as stream is then
 * only the rest of it for kite__kcp_recv(). */

/* Unread in-order bytes. */
size_t kite__kcp_readable(const kite__kcp *kcp);

/* Copies the first |len| unread bytes into |out| without consuming them;
 * returns how many were copied (fewer when fewer are readable). */
size_t kite__kcp_peek(const kite__kcp *kcp, void *out, size_t len);

/* The first |len| unread bytes, in place, when they lie in one segment; else
 * NULL (copy them with kite__kcp_peek()). Valid until the next call on the
 * block. */
const uint8_t *kite__kcp_peek_contig(const kite__kcp *kcp, size_t len);

/* Drops the first |len| unread bytes (at most kite__kcp_readable()). */
void kite__kcp_consume(kite__kcp *kcp, size_t len);

/* Feeds one datagram of one or more segments. Segments are acted on in
 * order until the first one that breaks the protocol; then the rest of the
 * datagram is dropped, counted, and KITE_EPROTO returned (the owner may
 * close the session). Data outside the window or refused by the budget is
 * dropped silently (counted, not acknowledged). Returns 0, KITE_EPROTO, or
 * KITE_EDEAD. Never calls ops->output: replies wait for kite__kcp_flush(). */
int kite__kcp_input(kite__kcp *kcp, const uint8_t *data, size_t len,
                    uint32_t now_ms);

/* Sends what is due: acks, window probes, new data the windows allow,
 * retransmissions; and declares the link dead when it made no progress for
 * dead_link_ms with data outstanding (calls ops->dead, once). */
void kite__kcp_flush(kite__kcp *kcp, uint32_t now_ms);

/* When the block next needs kite__kcp_flush(): sets *due_ms and returns true,
 * or returns false when nothing is due until the next input or send (an idle
 * or dead block). *due_ms may equal |now_ms|. */
bool kite__kcp_next_due(const kite__kcp *kcp, uint32_t now_ms,
                        uint32_t *due_ms);

uint32_t kite__kcp_conv(const kite__kcp *kcp);
void *kite__kcp_user(const kite__kcp *kcp);
bool kite__kcp_is_dead(const kite__kcp *kcp);
/* Segments queued or in flight, not yet acknowledged. */
uint32_t kite__kcp_unacked(const kite__kcp *kcp);
/* Segments waiting to enter the send window (bounded by snd_queue_max). */
uint32_t kite__kcp_queued(const kite__kcp *kcp);
void kite__kcp_get_stats(const kite__kcp *kcp, kite__kcp_stats *out);
/* Bytes the block holds of its own, beyond pooled segments and rings. */
size_t kite__kcp_sizeof(void);

#endif
