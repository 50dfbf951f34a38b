/*
 * A session on its shard: the slot it lives in, its state, its one timer,
 * and the calls that are the same for every transport (session.c). The
 * network side is behind |tr| (server/transport.h).
 *
 * Ownership: the shard thread that owns the slot reads and writes every
 * field, except those marked otherwise below: other threads check ids
 * against |generation|, reserve send room in |pending|, read |queued|,
 * |queue_max|, |live| and the published counters, and copy the info block
 * under |pub_lock| (kite_session_get_info()); |app| is the logic layer's.
 */
#ifndef KITE_SERVER_SESSION_H
#define KITE_SERVER_SESSION_H

#include "kite/server.h"

#include "base/wheel.h"
#include "logic/logic.h"
#include "net/addr.h"
#include "proto/frame.h"
#include "server/srclimit.h"
#include "server/transport.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct kite__shard kite__shard;

enum kite__session_state {
  KITE__S_FREE = 0,
  KITE__S_HALF_OPEN, /* accepted; no segment yet: the app has not heard */
  KITE__S_OPEN,
  KITE__S_CLOSING,   /* flushing until acked or deadline, then closing
                        with |closing| (a stop; the application's close) */
  KITE__S_ZOMBIE,    /* closed: its worker still owes on_disconnect */
};

#define KITE__NO_CLOSE 0xFF

/* How a session carries unreliable messages (kite__session.lane). */
enum kite__lane {
  KITE__LANE_FRAME = 0, /* version 1: an ordinary reliable frame */
  KITE__LANE_FLAG = 1,  /* v2 TCP, WebSocket: a frame with flag bit 2 */
  KITE__LANE_DGRAM = 2, /* v2 UDP: UNRELIABLE items */
};

/* The id's layout: shard (8 bits) | slot (24 bits) | generation (32
 * bits). A stale id fails the generation check instead of reaching a
 * newer session in the same slot. */
#define KITE__SID_SLOT_BITS 24
static inline kite_session_id kite__sid_make(uint32_t shard, uint32_t slot,
                                             uint32_t generation) {
  return (uint64_t)shard << 56 | (uint64_t)slot << 32 | generation;
}
static inline uint32_t kite__sid_shard(kite_session_id id) {
  return (uint32_t)(id >> 56);
}
static inline uint32_t kite__sid_slot(kite_session_id id) {
  return (uint32_t)(id >> 32) & ((1u << KITE__SID_SLOT_BITS) - 1);
}
static inline uint32_t kite__sid_generation(kite_session_id id) {
  return (uint32_t)id;
}

/* A version-2 session's identity, from its connect token: what
 * kite_session_get_info() reports. Lives in the transport's state, and so
 * do the user_len bytes at |user_data|: the token's 256 bytes without
 * their zero tail, which get_info pads again (a session holds only what
 * its login put there: 100,000 sessions, 25 MB less). */
typedef struct kite__v2ident {
  uint64_t client_id;
  uint16_t user_len;
  const uint8_t *user_data; /* user_len bytes; NULL when user_len is 0 */
} kite__v2ident;

/* The length of |user_data| (a token's KITE_TOKEN_USER_DATA_MAX bytes)
 * without its trailing zeros. */
static inline uint16_t kite__v2ident_len(const uint8_t *user_data) {
  uint16_t n = KITE_TOKEN_USER_DATA_MAX;
  while (n > 0 && user_data[n - 1] == 0)
    n--;
  return n;
}

typedef struct kite__session {
  kite__timer timer; /* one per session: min(transport due, idle, deadline) */
  const kite__transport *tr; /* the network side; NULL when not connected */
  void *link;                /* the transport's state (its engine, its
                                connection): only |tr|'s file reads it */
  kite__shard *shard;
  struct kite__session *free_next;
  struct kite__session *dirty_next; /* to flush at the end of the batch */
  kite__lsess *app;  /* the logic layer's state for the slot (its
                        mailbox, the application's pointer): set once */
  kite__addr peer;   /* written under |pub_lock| (readers on other threads) */
  kite__local local; /* where the peer's datagrams arrive: replies leave here */
  uint64_t hs_key;   /* in the shard's handshake map: (addr, port, nonce) */
  kite__src_keys src_keys; /* KCP: its counts in the shard's srcs table */
  uint8_t src_open;        /* KCP: counted open there (else half-open) */
  _Atomic uint32_t generation; /* read by other threads to check ids */
  _Atomic uint32_t pending;    /* segments in the inbox for this slot */
  _Atomic uint32_t queued;     /* segments in the transport's send queue */
  _Atomic uint32_t queue_max;  /* send_queue_max, or tcp_send_max in segments */
  _Atomic uint8_t live;        /* open, or closing for a stop: the
                                  application may address it */
  atomic_flag pub_lock;        /* the info block: the shard writes, any
                                  thread copies; held for a copy only */
  uint32_t conv;
  uint32_t slot;
  _Atomic uint32_t last_rx_ms; /* shard writes (relaxed), any thread reads */
  kite_transport kind;         /* under |pub_lock| */
  uint8_t version;             /* under |pub_lock|: the wire's, 1 or 2 */
  const kite__v2ident *ident;  /* under |pub_lock|: version 2's, in the
                                  transport's state (NULL on version 1);
                                  cleared before that state is freed */
  uint32_t idle_ms;            /* the idle timeout in force: the server's,
                                  or a v2 token's (shard only) */
  uint32_t opened_ms;          /* under |pub_lock| */
  uint32_t rtt_ms;             /* when |rtt| was last refreshed */
  kite__rtt rtt;               /* under |pub_lock| */
  uint32_t deadline_ms; /* half-open: handshake; closing: flush */
  uint16_t mtu, peer_rcv_wnd;
  uint8_t token[8];
  uint8_t nonce[8];
  uint8_t state;
  uint8_t opened;        /* on_connect ran: on_disconnect is owed */
  uint8_t dirty;         /* on the dirty list */
  uint8_t in_callback;   /* in an upcall to the logic layer (which may run
                            callbacks inline): closes wait for a safe point */
  uint8_t close_pending; /* KITE__NO_CLOSE or a kite_close_reason */
  uint8_t closing;       /* CLOSING: the reason it closes with */
  uint8_t peer_reason;   /* TCP: the reason the peer's close notice gave */
  uint8_t blocked;       /* its mailbox was full: input waits */
  /* The unreliable lane (kite_session_send_unreliable()): the shard
   * writes both at admit (and a v2 transport at its start), before |live|;
   * any thread reads them (relaxed) to choose the way and check a size,
   * and the shard decides again by the session it finds. */
  _Atomic uint8_t lane;            /* KITE__LANE_* */
  _Atomic uint16_t max_unreliable; /* v2: the session's; v1: 0 (none) */
  /* Counters: the shard writes (relaxed), any thread reads. */
  _Atomic uint64_t frames_in, frames_out, bytes_in, bytes_out;
} kite__session;

static inline uint32_t kite__session_last_rx(const kite__session *s) {
  return atomic_load_explicit(&s->last_rx_ms, memory_order_relaxed);
}
static inline void kite__session_heard(kite__session *s, uint32_t now_ms) {
  atomic_store_explicit(&s->last_rx_ms, now_ms, memory_order_relaxed);
}
/* The shard's own counter bump: a plain load and store, no locked op. */
#define KITE__SESSION_ADD(s, field, n)                                       \
  atomic_store_explicit(&(s)->field,                                         \
                        atomic_load_explicit(&(s)->field,                    \
                                             memory_order_relaxed) + (n),    \
                        memory_order_relaxed)

/* Whether the session still has its network side: a closed one (free,
 * or a zombie whose worker owes on_disconnect) has none, and is never
 * scheduled, flushed or handed input. */
static inline bool kite__session_connected(const kite__session *s) {
  return s->state == KITE__S_HALF_OPEN || s->state == KITE__S_OPEN ||
         s->state == KITE__S_CLOSING;
}
/* Whether the application may still send to it and hear from it. */
static inline bool kite__session_live(const kite__session *s) {
  return atomic_load_explicit(&s->live, memory_order_relaxed) != 0;
}

/* The info block's lock: the shard takes it to write, other threads to
 * copy; held for a copy only, never across a call. */
static inline void kite__session_pub_lock(kite__session *s) {
  while (atomic_flag_test_and_set_explicit(&s->pub_lock, memory_order_acquire))
    ;
}
static inline void kite__session_pub_unlock(kite__session *s) {
  atomic_flag_clear_explicit(&s->pub_lock, memory_order_release);
}

kite__session *kite__session_by_id(kite_server *srv, kite_session_id id);
kite_session_id kite__session_id(const kite__session *s);

/* A free slot made ready for a new session (not yet counted), or NULL:
 * *no_worker says why when the logic layer had no worker for it (bind,
 * dynamic: counted as reject_no_worker, not reject_full). */
kite__session *kite__session_claim(kite__shard *sh, const char **no_worker);
/* Gives back a claimed slot that did not become a session. */
void kite__session_unclaim(kite__session *s);
/* Counts a claimed slot in as a live half-open session of |tr|. */
void kite__session_admit(kite__session *s, const kite__transport *tr,
                         void *link, const kite__addr *peer);
/* The session opens: the application hears of it. */
void kite__session_open(kite__session *s);
/* Frees a closed session's slot (its on_disconnect has run). */
void kite__session_release(kite__session *s);

/* Closes now, or at the next safe point when a callback or the engine is
 * running on the session. The application's close (kicked) and a stop
 * (shutdown) are graceful: what was sent before leaves and is
 * acknowledged first (within close_timeout_ms / stop_timeout_ms), then
 * the peer is told. Other reasons close at once and tell the peer. */
void kite__session_close(kite__session *s, uint8_t reason);
/* A closing session's wait is over (all acknowledged, or its deadline):
 * the peer is told and the session closes with its |closing| reason. */
void kite__session_close_now(kite__session *s);
/* The peer closed: on_disconnect gets its reason, nothing goes back. */
void kite__session_close_by_peer(kite__session *s, uint8_t reason);
/* After a flush or callbacks: carries out a deferred close. */
void kite__session_settle(kite__session *s);
/* Any thread: closes a session on its shard with |reason|. */
int kite__session_close_any(kite_server *srv, kite_session_id id, uint8_t reason);

void kite__session_schedule(kite__session *s);
void kite__session_mark_dirty(kite__session *s);
void kite__session_on_timer(kite__timer *t, void *user);
/* Publishes the send queue's depth for senders on other threads. */
void kite__session_publish_queue(kite__session *s);

int kite__session_send_frame(kite__session *s, uint16_t msg_id,
                             uint16_t flags, const void *body, size_t len);
/* Queues a frame already encoded (header included): broadcasts. */
int kite__session_send_encoded(kite__session *s, const uint8_t *frame,
                               size_t bytes);
/* Another thread's send: the segments a frame of |frame_bytes| takes, and
 * room for them in the session's queue, reserved (frames on their way
 * through the inbox plus those in the transport's queue, as the shard last
 * published it) or refused when send_queue_max would be passed. The shard
 * gives the reservation back once the frame is queued; a sender that gives
 * up before posting gives it back with kite__session_unreserve(). */
uint32_t kite__frame_segs(const kite_server *srv, size_t frame_bytes);
bool kite__session_reserve(kite__session *s, uint32_t segs);
void kite__session_unreserve(kite__session *s, uint32_t segs);

/* The shard's half of kite_session_send_unreliable() (|flags|
 * KITE_UNRELIABLE_*), by the session's transport: an item (v2 UDP, its
 * budget and sequencing), else a frame (flag bit 2 on v2 TCP). 0,
 * KITE_EMSGSIZE, KITE_EFULL (budget or queue: counted), KITE_ENOMEM. */
int kite__session_send_unreliable(kite__session *s, uint16_t msg_id,
                                  unsigned flags, const void *body, size_t len);
/* An unreliable message from the peer (|req_flags| KITE_REQ_*): to the
 * logic layer, or dropped and counted when the session is closed or its
 * mailbox full (never backpressure). */
void kite__session_deliver_unreliable(kite__session *s, uint16_t msg_id,
                                      unsigned req_flags, const uint8_t *body,
                                      size_t len);

/* One frame from the peer: pings answered, a close notice noted, the rest
 * to the logic layer. false: the session's mailbox is full, the caller
 * keeps the frame. */
bool kite__session_deliver(kite__session *s, const kite__frame_hdr *h,
                           const uint8_t *body);
/* Input reads again (a full mailbox has room). */
void kite__session_resume(kite__session *s);
/* A protocol error in the peer's stream: logged (rate-limited), counted,
 * and the session closed at the next safe point. */
void kite__session_protocol_error(kite__session *s, int why);

/* The info block (kite_session_get_info()): refreshes the RTT figures at
 * most once a second; shard only. The check is inline: it runs for every
 * datagram. */
void kite__session_publish_rtt_now(kite__session *s);
static inline void kite__session_publish_rtt(kite__session *s, uint32_t now_ms) {
  if ((int32_t)(now_ms - s->rtt_ms) >= 1000)
    kite__session_publish_rtt_now(s);
}

#endif
