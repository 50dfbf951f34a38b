/*
 * Version 2 over UDP (PROTOCOL-v2.md sections 4, 5, 7, 9): a session's
 * protected datagrams around the same KCP engine as version 1. Its state
 * is the transport's link (kite__v2sess); the files that share it:
 *   session_v2.c       the transport table, creation, receiving (section 4's
 *                      steps in order) and the items (section 5)
 *   session_v2_out.c   sealing into the shard's send batch, CLOSE, the key
 *                      limit (section 9), and address changes (section 7)
 *   handshake_v2.c     HELLO and CONNECT version 2 (section 3)
 *   session_v2_lane.c  the unreliable lane (section 6): the budget,
 *                      sequencing, items riding the next datagram
 *
 * Ownership: the session's shard thread alone reads and writes a
 * kite__v2sess, except |ident|, which other threads copy under the
 * session's pub_lock while kite__session.ident points at it.
 */
#ifndef KITE_SERVER_SESSION_V2_H
#define KITE_SERVER_SESSION_V2_H

#include "kcp/kcp.h"
#include "net/addr.h"
#include "proto/replay.h"
#include "proto/v2item.h"
#include "proto/v2ctl.h"
#include "proto/v2pkt.h"
#include "proto/v2seq.h"
#include "server/session.h"

#include <stdbool.h>
#include <stdint.h>

#define KITE__V2_KCP_OVERHEAD 31 /* datagram 28 + item header 3 */
#define KITE__V2_PATH_EVERY_MS 250
#define KITE__V2_PATH_TRIES 8
#define KITE__V2_PATH_WAIT_MS 2000
/* A token's timeout_s, clamped to this range (ms) before it is in force. */
#define KITE__V2_IDLE_MIN_MS 1000u
#define KITE__V2_IDLE_MAX_MS 300000u

/* An address change under validation (section 7). */
typedef struct kite__v2path {
  kite__addr validated;   /* known to answer: first CONNECT's source */
  bool validating;        /* the peer address is not the validated one */
  bool challenge_due;     /* a challenge waits for bytes to be allowed */
  uint8_t sent;           /* challenges sent to the peer since the move */
  uint8_t data[KITE__V2_PATH_DATA];     /* what the peer is challenged with */
  uint8_t data_old[KITE__V2_PATH_DATA]; /* the one to the validated address */
  uint32_t moved_ms;      /* when the peer moved */
  uint32_t next_ms;       /* the next challenge */
  uint64_t rx_bytes;      /* verified new datagrams' bytes from the peer
                             since the move */
  uint64_t tx_bytes;      /* bytes sent to it since */
} kite__v2path;

typedef struct kite__v2sess {
  kite__kcp *kcp;
  kite__v2keys keys;      /* traffic keys: wiped at teardown */
  kite__replay window;    /* the client's packet numbers */
  kite__v2pn pn;          /* ours */
  kite__v2ident ident;    /* client_id, user_data (see the top) */
  kite__addr origin;      /* CONNECT's source: the handshake map's key */
  uint8_t tag[KITE__V2TOK_TAG];        /* the token's: CONNECT again */
  uint8_t accept[KITE__V2CTL_ACCEPT];  /* sent again, byte for byte */
  uint16_t max_unreliable;
  bool key_done;          /* a number of the last three went out: close 7 */
  kite__v2path path;
  /* The unreliable lane (session_v2_lane.c). */
  kite__v2seq seq_in;     /* the peer's sequenced messages: newest per msg_id */
  kite__v2seq_out seq_out; /* ours: the next seq per msg_id, kept */
  uint8_t *lane;          /* UNRELIABLE items waiting for the next datagram
                             (one datagram's room, allocated at the first) */
  uint16_t lane_len;      /* bytes waiting there */
  uint64_t budget;        /* bytes the lane may send now (at most a second's) */
  uint32_t budget_ms;     /* when |budget| was last refilled */
} kite__v2sess;

static inline kite__v2sess *kite__v2_of(const kite__session *s) {
  return s->link;
}

/* session_v2.c */
/* Everything CONNECT's step 9 decided, for the new session. */
typedef struct kite__v2_new {
  const kite__addr *peer;
  const kite__local *local;
  const uint8_t *nonce;     /* client_nonce[8] */
  uint64_t hs_key;
  uint16_t mtu, peer_rcv_wnd;
  uint32_t idle_ms;
  const kite__v2tok *tok;   /* opened: keys, client_id, user_data */
  const uint8_t *tag;       /* the token's tag (sealed_private's last 16) */
} kite__v2_new;

/* Makes claimed slot |s| a half-open v2 session: its engine, conv, keys,
 * the sealed ACCEPT (in v2->accept). 0, or KITE_ENOMEM (|s| still
 * claimed: the caller unclaims it). */
int kite__v2_session_new(kite__shard *sh, kite__session *s,
                         const kite__v2_new *n);
/* A datagram for v2 session |s| (its conv named it). */
void kite__v2_session_input(kite__shard *sh, kite__session *s, const uint8_t *data,
                            size_t len, const kite__addr *from);
/* Frees a session's state at the server's end (no teardown ran). */
void kite__v2_session_free(kite__session *s);

/* session_v2_out.c */
/* Where a datagram's items go: the slot's buffer past the header, and how
 * many bytes fit there (the session's mtu). */
uint8_t *kite__v2_out_begin(kite__session *s, size_t *room);
/* Seals the |len| bytes of items written at kite__v2_out_begin()'s pointer
 * and sends them to |to|. |limited|: |to| is the unvalidated peer, and
 * the datagram is held back (false, counted) when it would pass the
 * anti-amplification limit. Numbers 2^48 - 3 on carry CLOSE 7 too when
 * it fits (and the session then closes). false: not sent. */
bool kite__v2_out_end(kite__session *s, const kite__addr *to, size_t len);
/* One datagram of items to the peer, copied in (KCP output, pong). */
bool kite__v2_send_item(kite__session *s, uint8_t type, const void *value,
                        size_t len);
/* CLOSE |reason| in 3 datagrams. */
void kite__v2_send_close(kite__session *s, uint8_t reason);
/* A datagram that verified and was new, from |from| (not the peer), raised
 * top (|raised|) or not: section 7's move. |bytes| counts toward the new
 * address's allowance. */
void kite__v2_path_seen(kite__session *s, const kite__addr *from,
                        size_t bytes, bool raised);
/* A PATH_RESPONSE item from |from|. */
void kite__v2_path_response(kite__session *s, const kite__addr *from,
                            const uint8_t data[KITE__V2_PATH_DATA]);
/* The path's own due time, if any, and its duties when it comes. */
bool kite__v2_path_due(const kite__session *s, uint32_t *due_ms);
void kite__v2_path_timer(kite__session *s, uint32_t now_ms);

/* session_v2_lane.c */
/* The transport's send_unreliable: an item waiting for the next datagram
 * (the session is marked dirty, so that is the end of this batch). */
int kite__v2_send_unreliable(kite__session *s, uint16_t msg_id,
                             unsigned flags, const void *body, size_t len);
/* Takes |cost| bytes from the lane's budget (|rate| bytes a second, at
 * most a second's worth kept), refilled for the ms since the last take;
 * false, nothing taken, when they are not there. */
bool kite__v2_budget_take(kite__v2sess *v, uint32_t now, uint64_t rate,
                          size_t cost);
/* Moves the waiting items into |out| (|room| bytes free) when they all
 * fit: the bytes written, else 0. */
size_t kite__v2_lane_ride(kite__session *s, uint8_t *out, size_t room);
/* The waiting items, if any, in a datagram of their own. */
void kite__v2_lane_flush(kite__session *s);
/* A message from the peer's UNRELIABLE item (not a ping): sequencing, then
 * the handlers. */
void kite__v2_lane_in(kite__session *s, const kite__v2item *it);

/* handshake_v2.c */
/* A control packet of version 2 (byte 5 is 2) on the UDP port, version 2
 * served. */
void kite__v2_handshake_control(kite__shard *sh, const uint8_t *data,
                                size_t len, const kite__addr *from,
                                const kite__local *local);

#endif
