/*
 * The items inside a protected datagram (PROTOCOL-v2.md section 5) and the
 * UNRELIABLE item's header (section 6).
 *
 * The plaintext is items back to back, filling it exactly; an item is
 *   type u8   len u16   value[len]
 *   0 PADDING         zeros, not checked                         any len
 *   1 KCP             whole ikcp segments of the conv, cmd 81-84 >= 24
 *   2 UNRELIABLE      msg_id u16, flags u8, seq u16, body        >= 5
 *   3 CLOSE           reason u8                                  1
 *   4 PATH_CHALLENGE  data[8] (server to client)                 8
 *   5 PATH_RESPONSE   data[8] (client to server)                 8
 *   6..255            reserved: skipped by len, counted
 *
 * Receiving is two passes, as the contract asks: kite__v2item_check()
 * reads every item up to the first CLOSE and refuses the whole datagram on
 * the first malformed one (nothing is acted on, the session closes with
 * reason 2); only then kite__v2item_next() hands the items out one by one.
 *
 * Pure: no allocation, no state beyond the caller's; any thread.
 */
#ifndef KITE_PROTO_V2ITEM_H
#define KITE_PROTO_V2ITEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KITE__V2ITEM_HDR 3
#define KITE__V2ITEM_MAX 65535 /* len is a u16 */
#define KITE__V2U_HDR 5        /* msg_id, flags, seq */
#define KITE__V2U_F_SEQ 0x01   /* sequenced */
#define KITE__V2U_F_PONG 0x02  /* pong: msg_id 0 only */
#define KITE__V2_PATH_DATA 8

enum kite__v2item_type {
  KITE__V2ITEM_PADDING = 0,
  KITE__V2ITEM_KCP = 1,
  KITE__V2ITEM_UNRELIABLE = 2,
  KITE__V2ITEM_CLOSE = 3,
  KITE__V2ITEM_PATH_CHALLENGE = 4,
  KITE__V2ITEM_PATH_RESPONSE = 5,
};

/* Which rule a datagram's items broke (kite__v2item_scan.why). Each is a
 * protocol error, close reason 2. */
enum kite__v2item_err {
  KITE__V2ITEM_OK = 0,
  KITE__V2ITEM_ETRUNC,    /* an item's header or value runs past the end */
  KITE__V2ITEM_ELEN,      /* a len its type does not allow */
  KITE__V2ITEM_EKCP,      /* KCP: not whole segments of this conv, cmd 81-84 */
  KITE__V2ITEM_EPONG,     /* UNRELIABLE: pong flag on a msg_id other than 0 */
  KITE__V2ITEM_EPING,     /* UNRELIABLE: ping or pong body over 32 bytes */
  KITE__V2ITEM_EBODY,     /* UNRELIABLE: body over max_unreliable */
};

/* What the receiver holds the items to. */
typedef struct kite__v2item_rules {
  uint32_t conv;           /* every KCP segment's */
  uint16_t max_unreliable; /* the accepted one */
  bool from_server;        /* the datagram came from the server */
} kite__v2item_rules;

/* What kite__v2item_check() saw, for counters and for the second pass. */
typedef struct kite__v2item_scan {
  size_t end;         /* bytes read: up to and including the first CLOSE */
  uint32_t reserved;  /* items of types 6..255, skipped */
  uint32_t wrong_way; /* PATH_* from the wrong side, ignored */
  bool close;         /* a CLOSE ends what is read */
  uint8_t why;        /* a kite__v2item_err: 0 unless refused */
} kite__v2item_scan;

/* One item, handed out by kite__v2item_next(). |value| points into the
 * plaintext. UNRELIABLE's fields are decoded; CLOSE's reason is read as 0
 * when unknown (over 7). */
typedef struct kite__v2item {
  uint8_t type;
  uint16_t len;
  const uint8_t *value;
  uint16_t msg_id;   /* UNRELIABLE */
  uint8_t flags;     /* UNRELIABLE: bits 2..7 as received */
  uint16_t seq;      /* UNRELIABLE */
  const uint8_t *body; /* UNRELIABLE: len - 5 bytes */
  uint16_t body_len;
  uint8_t reason;    /* CLOSE */
} kite__v2item;

/* The first pass over the |len| bytes of plaintext at |p|. Returns 0 with
 * |out| filled, or KITE__V2_EPROTO with out->why set (close with reason 2,
 * act on nothing). Bytes after the first CLOSE are not read. */
int kite__v2item_check(const uint8_t *p, size_t len,
                       const kite__v2item_rules *r, kite__v2item_scan *out);

/* The second pass. |end| is scan.end from a check that returned 0 on the
 * same bytes. Padding, reserved types and PATH_* from the wrong side are
 * skipped (check counted them). */
typedef struct kite__v2item_iter {
  const uint8_t *p, *end;
  bool from_server;
} kite__v2item_iter;

void kite__v2item_iter_init(kite__v2item_iter *it, const uint8_t *p,
                            size_t end, bool from_server);

/* Hands out the next item in |out|: true, or false when none is left. */
bool kite__v2item_next(kite__v2item_iter *it, kite__v2item *out);

/* Encoders: each writes one whole item at |out| and returns its size
 * (3 + len), or KITE_EMSGSIZE when |cap| is too small or the value over
 * 65535 bytes (nothing written). */

/* Any item: the header then |len| bytes from |value| (NULL when 0). */
int kite__v2item_put(uint8_t *out, size_t cap, uint8_t type,
                     const void *value, size_t len);

/* |n| bytes of PADDING in all (n >= 3: its header included); KITE_EINVAL
 * under 3. */
int kite__v2item_put_padding(uint8_t *out, size_t cap, size_t n);

/* An UNRELIABLE item. A body over |max_unreliable| fails the send:
 * KITE_EMSGSIZE, nothing written (section 6). |flags| is written as given. */
int kite__v2item_put_unreliable(uint8_t *out, size_t cap, uint16_t msg_id,
                                uint8_t flags, uint16_t seq, const void *body,
                                size_t len, uint16_t max_unreliable);

/* A CLOSE with |reason|. */
int kite__v2item_put_close(uint8_t *out, size_t cap, uint8_t reason);

/* A PATH_CHALLENGE or PATH_RESPONSE (|type|) with |data|; KITE_EINVAL for
 * another type. */
int kite__v2item_put_path(uint8_t *out, size_t cap, uint8_t type,
                          const uint8_t data[KITE__V2_PATH_DATA]);

/* A static description of a kite__v2item_err (never NULL). */
const char *kite__v2item_strerror(int why);

#endif
