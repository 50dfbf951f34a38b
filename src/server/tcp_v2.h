/*
 * Protocol version 2 on the TCP port (PROTOCOL-v2.md section 8): OPEN v2,
 * OPENED v2 or REJECT, then records each way. One layer for both byte
 * streams the port carries, raw TCP (session_tcp.c) and WebSocket
 * (session_ws.c): they bring the bytes in and take sealed bytes out, the
 * layer (tcp_v2.c) does the rest:
 *   - the first 8 bytes' verdict (which version, and what a version not
 *     served gets: REJECT 2), shared by both;
 *   - OPEN v2's 552 bytes, read within the pre-session deadline, then
 *     CONNECT's steps 4 to 9 with the connection's own addresses
 *     (kite__v2tok_verify, srv->tokens), answered OPENED or REJECT, or
 *     closed without a word (counted);
 *   - input: records opened (kite__v2rec_reader: a record whole in a read
 *     straight from it into sh->seal's open area, one that spans reads in
 *     the reader's buffer, allocated then) and their plaintexts fed
 *     to the frame reader, the session opening at the first record that
 *     verifies; a bad len or tag closes with reason 2 and nothing more is
 *     sent; the CLOSE frame (0xFF01) gives the reason, an EOF without one
 *     reason 5;
 *   - output: each frame sealed as whole records into the shard's seal
 *     buffer (sh->seal, one per shard: no allocation per record), then
 *     written as one unit, so a direct write and the EPOLLOUT path both
 *     carry whole records, and tcp_send_max counts the sealed bytes.
 *
 * Ownership: a kite__tv2 belongs to its connection (kite__tconn.v2) and so
 * to the connection's shard thread; it is allocated when an OPEN v2's
 * header arrives (with OPEN's 552 bytes, freed once it is answered) and
 * freed with the connection (keys wiped).
 */
#ifndef KITE_SERVER_TCP_V2_H
#define KITE_SERVER_TCP_V2_H

#include "proto/v2ctl.h"
#include "proto/v2pkt.h"
#include "proto/v2rec.h"
#include "proto/v2tok.h"
#include "server/tcp_conn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define KITE__V2_OPEN_BYTES 552 /* OPEN v2: header, expire_ts, nonce, sealed */

struct kite__tv2 {
  uint16_t open_have;                 /* before the session: OPEN's bytes */
  uint8_t *open; /* KITE__V2_OPEN_BYTES, freed once answered (tv2_open) */
  bool keyed;                         /* rd and s2c are set */
  bool mute;                          /* a record failed: nothing more sent */
  bool done;                          /* the CLOSE frame went: the last record */
  uint16_t max_unreliable;            /* what OPENED said */
  kite__v2rec_reader rd;              /* client to server */
  uint8_t s2c[KITE__V2_KEY];          /* server to client traffic key */
  kite__v2pn pn;                      /* server to client record numbers */
  kite__v2ident ident;                /* what get_info reports (s->ident) */
  uint8_t user[KITE_TOKEN_USER_DATA_MAX]; /* ident's user_data */
  uint8_t *held_ct;                   /* TCP: input not read on while the */
  uint32_t held_ct_len;               /* mailbox is full (backpressure) */
};

/* What a frame of up to |max_frame| body bytes takes sealed as records. */
size_t kite__tv2_seal_cap(uint32_t max_frame);

/* The shard's buffer, sh->seal: a frame sealed (kite__tv2_seal_cap), then
 * KITE__V2REC_MAX bytes where a record whole in a read is opened. */
size_t kite__tv2_shard_bytes(uint32_t max_frame);

/* The verdict on the 8 header bytes that open a TCP (or WebSocket)
 * stream, against srv->cfg.versions; counted here. */
enum kite__tv2_first {
  KITE__TV2_V1 = 1, /* OPEN v1, served: session_tcp.c's */
  KITE__TV2_V2,     /* OPEN v2, served: read its 552 bytes */
  KITE__TV2_REJECT, /* REJECT 2, the header *version (the highest served) */
  KITE__TV2_BAD,    /* no OPEN: closed without a word (tcp_bad_open) */
};
int kite__tv2_first(kite__shard *sh, const kite__tconn *c,
                    const uint8_t hdr[KITE__CTRL_HDR], uint8_t *version);

/* Starts reading OPEN v2 on |c|: allocates c->v2 holding the header.
 * false: no memory (the caller drops the connection). */
bool kite__tv2_begin(kite__tconn *c, const uint8_t hdr[KITE__CTRL_HDR]);

/* Takes OPEN's bytes from |p|; returns how many (at most |n|). The OPEN is
 * whole when c->v2->open_have reaches KITE__V2_OPEN_BYTES. */
size_t kite__tv2_collect(kite__tconn *c, const uint8_t *p, size_t n);

/* OPEN v2 is whole and |c| off the pre-session list: steps 4 to 9. On
 * success returns the session, claimed on |tr| and half-open (it opens
 * at the client's first record), with c->on_frame set and OPENED in
 * |reply|. Else NULL, with a REJECT (zero nonce, version 2) in |reply|, or
 * *reply_len 0: close without a word. Counted either way. */
kite__session *kite__tv2_open(kite__shard *sh, kite__tconn *c,
                              const kite__transport *tr,
                              uint8_t reply[KITE__V2CTL_OPENED],
                              size_t *reply_len);

/* The client's stream bytes (records) for session |s| (its link |c| has
 * c->v2): records opened, plaintexts fed to the frame reader. Returns the
 * bytes taken: fewer than |n| once the session stops reading (its mailbox
 * full: the rest of that record's plaintext is in c->held, the caller
 * keeps what was not taken; or it closes). */
size_t kite__tv2_input(kite__session *s, const uint8_t *p, size_t n);

/* Whether |s| (a v2 session) takes input now: half-open or open, not
 * blocked, no close pending. */
bool kite__tv2_reading(const kite__session *s);

/* The |n| buffers of |iov| (one frame) sealed as records into sh->seal;
 * *out points at the bytes. Returns their count, or KITE_EFULL (more than
 * |room|: nothing sealed, no number taken) or KITE__V2_ELIMIT (the records
 * would reach 2^48 - 3: the session closes with reason 7, nothing sent). */
ptrdiff_t kite__tv2_seal(kite__shard *sh, kite__tv2 *v,
                         const struct iovec *iov, int n, size_t room,
                         const uint8_t **out);

/* The CLOSE frame with |reason|, sealed (the last record: nothing is
 * sealed after it). Returns its byte count at *out, or 0: nothing to send
 * (a record failed, or it went already). */
size_t kite__tv2_seal_close(kite__shard *sh, kite__tv2 *v, uint8_t reason,
                            const uint8_t **out);

/* The session's info block forgets v2's fields (before c->v2 goes). */
void kite__tv2_unpublish(kite__session *s);

/* Wipes and frees |v| (NULL: nothing). */
void kite__tv2_free(kite__tv2 *v);

/* Raw TCP: OPEN v2 on |c| (off the pre-session list) is whole: the
 * session and OPENED, or REJECT or nothing, then the lingering close.
 * |rest| (what followed OPEN in the same read) goes to the session. */
void kite__tv2_tcp_open(kite__shard *sh, kite__tconn *c, const uint8_t *rest,
                        size_t n);

/* The TCP transport of v2 sessions (tcp_v2.c): records over raw TCP. */
extern const kite__transport kite__transport_tcp_v2;

#endif
