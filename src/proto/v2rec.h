/*
 * TCP records, version 2 (PROTOCOL-v2.md section 8), each way after OPEN
 * and OPENED:
 *
 *   len u16 (plaintext bytes, 1 to 16384)   ciphertext[len]   tag[16]
 *
 * sealed as seal(key, 03 00 00 00 ‖ record number u64, aad = the 2 bytes
 * of len), key the TCP traffic key of the sender's direction, record
 * numbers per direction from 0. The plaintexts, in order, are v1's stream
 * of frames (frame.h's reader takes them). A len of 0 or over 16384 is
 * refused as soon as its 2 bytes are read; a record that does not verify
 * is refused: either closes the connection at once, reason 2.
 *
 * The sender numbers records with a kite__v2pn (v2pkt.h): the record that
 * takes 2^48 - 3 holds the CLOSE frame (reason 7) and is the last.
 */
#ifndef KITE_PROTO_V2REC_H
#define KITE_PROTO_V2REC_H

#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/v2.h"

#define KITE__V2REC_MAX 16384 /* plaintext bytes per record */
#define KITE__V2REC_HDR 2
#define KITE__V2REC_OVERHEAD (KITE__V2REC_HDR + KITE__V2_TAG) /* 18 */

/* Seals the |len| plaintext bytes at |pt| as record number |rn| at |out|
 * (|pt| may be out + 2, sealed in place; else no overlap). Returns
 * 18 + |len|, or KITE_EINVAL (len 0 or over 16384), KITE__V2_ELIMIT (rn at
 * or past 2^48), KITE_EMSGSIZE (|cap| too small); nothing written then.
 * Pure, any thread. */
int kite__v2rec_seal(uint8_t *out, size_t cap, uint64_t rn,
                     const uint8_t key[KITE__V2_KEY], const uint8_t *pt,
                     size_t len);

/*
 * A reader: stream bytes in, records' plaintexts out, one at a time. A
 * record whole in the bytes given is opened straight from them into the
 * caller's |out| (kite__v2rec_read_to): nothing copied, no buffer of the
 * reader's touched. Only a record that spans calls goes through the
 * reader's buffer, allocated when one first does, sized to it (rounded up
 * to a power of two, at most 18 + 16384 bytes) and kept, grown only for a
 * larger record: no allocation per record in steady state, at most 16 KB
 * per reader. It holds the direction's traffic key (wiped at free, with
 * the buffer). Fields are private. Not thread-safe: one per connection,
 * owned by the connection's thread.
 */
typedef struct kite__v2rec_reader {
  uint8_t key[KITE__V2_KEY];
  uint64_t next; /* the number of the record being read */
  uint32_t have; /* bytes of a record that spans calls held (hdr, buf) */
  uint32_t need; /* 2 until its len is read, then 18 + len */
  uint32_t cap;  /* bytes of buf */
  int err;       /* 0, or the sticky refusal */
  uint8_t hdr[KITE__V2REC_HDR]; /* len, while its 2 bytes span calls */
  uint8_t *buf;  /* a record that spans calls; NULL until one does */
} kite__v2rec_reader;

/* Prepares |r| to read records sealed under |key| (copied), numbered from
 * 0. Allocates nothing. Returns 0. */
int kite__v2rec_reader_init(kite__v2rec_reader *r,
                            const uint8_t key[KITE__V2_KEY]);

/* Wipes the key and the buffer and frees it; |r| is unusable until init. */
void kite__v2rec_reader_free(kite__v2rec_reader *r);

/* Reads from the |len| bytes at |in| (NULL when |len| is 0) up to the end
 * of one record. Returns the bytes consumed (at most |len|); when they end
 * a record that verified, *pt points at its plaintext (*pt_len bytes),
 * else *pt is NULL and *pt_len 0. The caller calls again with the rest.
 * A record whole in |in| is opened into |out| (KITE__V2REC_MAX bytes, not
 * overlapping |in|; the caller's, written only then: *pt is |out|, valid
 * until the caller reuses it); one that spans calls is opened in the
 * reader's buffer (*pt valid until the next call or free). |out| NULL:
 * whole records are opened in the reader's buffer too. Or a sticky
 * refusal, the connection to close: KITE__V2_EPROTO (len 0 or over
 * 16384), KITE__V2_EAUTH (does not verify), KITE__V2_ELIMIT (2^48
 * records read), all reason 2; KITE_ENOMEM (no memory for the buffer). */
ptrdiff_t kite__v2rec_read_to(kite__v2rec_reader *r, const uint8_t *in,
                              size_t len, uint8_t *out, const uint8_t **pt,
                              size_t *pt_len);

/* kite__v2rec_read_to() with |out| NULL. */
ptrdiff_t kite__v2rec_read(kite__v2rec_reader *r, const uint8_t *in,
                           size_t len, const uint8_t **pt, size_t *pt_len);

/* Bytes of the reader's buffer now (0 until a record spans calls, or
 * when |out| was NULL until a record was read). */
size_t kite__v2rec_reader_cap(const kite__v2rec_reader *r);

/* Bytes of a partial record held now (0 between records). */
size_t kite__v2rec_buffered(const kite__v2rec_reader *r);

/* What section 8 adds to a frame's checks in a v2 session (after
 * kite__frame_check_hdr): a frame with KITE__FRAME_F_UNRELIABLE may carry
 * at most |max_unreliable| body bytes. 0 or KITE__V2_EPROTO (reason 2). */
int kite__v2_frame_check(const kite__frame_hdr *h, uint16_t max_unreliable);

/* The reason of a CLOSE frame (msg_id 0xFF01) whose body is the |len|
 * bytes at |body|: its first byte, read as 0 when unknown (over 7) or
 * when the body is empty. */
uint8_t kite__v2_close_frame_reason(const uint8_t *body, size_t len);

#endif
