/*
 * The seam between a session and the network: one operations table per
 * transport (KCP in session_kcp.c, TCP in session_tcp.c; the encrypted and
 * WebSocket transports to come are new tables, not branches). The session
 * core (session.c) does the rest alike for all: ids and slots, the one
 * timer (handshake, idle, closing deadlines), frames to the logic layer,
 * sends and their counters, and closing at a safe point.
 *
 * Every operation runs on the session's shard thread, with the session
 * connected (kite__session_connected()): after teardown the session has
 * no transport and none is called.
 */
#ifndef KITE_SERVER_TRANSPORT_H
#define KITE_SERVER_TRANSPORT_H

#include "kite/server.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct kite__session kite__session;

/* Round-trip and retransmission figures, as kite_session_info has them. */
typedef struct kite__rtt {
  uint32_t srtt_ms, rttvar_ms, rto_ms, retransmits;
} kite__rtt;

typedef struct kite__transport {
  const char *name;       /* "kcp", "tcp": logs */
  kite_transport kind;    /* what kite_session_info() reports */
  /* Queues one encoded frame (iovecs, header first). 0; KITE_EFULL: the
   * send queue is full, nothing queued; KITE_ENOMEM: the shard's memory
   * budget (shard_segments_max) is spent, nothing queued. A stream that
   * broke takes the frame and closes the session at the next safe point. */
  int (*sendv)(kite__session *s, struct iovec *iov, int n);
  /* The end of a batch: what is due leaves now (acks, data). */
  void (*flush)(kite__session *s);
  /* When the transport next needs the session's timer, if at all. */
  bool (*next_due)(kite__session *s, uint32_t now_ms, uint32_t *due_ms);
  /* The session's timer fired and the session core found nothing to do
   * (no deadline, not idle): the transport's own duties. May close. */
  void (*on_timer)(kite__session *s, uint32_t now_ms);
  /* The logic layer has room again: read the input held back. */
  void (*resume)(kite__session *s);
  /* The session closes: complete frames it received but did not hand up
   * yet are read through kite__session_deliver(), which drops and counts
   * them (the application addresses the session no more). */
  void (*drain)(kite__session *s);
  /* Output queued, in the segments send reservations count. */
  uint32_t (*queued)(const kite__session *s);
  /* Output the peer has not acknowledged (or, on TCP, that the session
   * still holds): a session closing gracefully waits for 0. */
  uint32_t (*unacked)(const kite__session *s);
  /* Tells the peer why the session ends (KCP: CLOSE; TCP: the close
   * notice frame before the FIN). Half-open sessions: as the wire says. */
  void (*notify_close)(kite__session *s, uint8_t reason);
  /* The network side goes (KCP's engine freed; a TCP connection lingers
   * until its output is written). */
  void (*teardown)(kite__session *s);
  /* Round-trip and retransmission figures. */
  void (*rtt)(const kite__session *s, kite__rtt *out);
  /* An unreliable message (|flags| KITE_UNRELIABLE_*) on the transport's
   * own lane; NULL: it goes as a frame (kite__session_send_unreliable()).
   * Returns as kite_session_send_unreliable() does on the shard. */
  int (*send_unreliable)(kite__session *s, uint16_t msg_id, unsigned flags,
                         const void *body, size_t len);
} kite__transport;

extern const kite__transport kite__transport_kcp;
extern const kite__transport kite__transport_tcp;
extern const kite__transport kite__transport_ws;
extern const kite__transport kite__transport_v2; /* KCP in protected datagrams */

#endif
