/*
 * Application frames (PROTOCOL.md section 4): the 12-byte header, the checks
 * that make a frame a protocol error, and a reader that cuts a byte stream
 * into whole frames.
 *
 * On both transports a session's bytes are one stream of frames (section 3
 * for KCP: a frame may span KCP messages, a message may hold many frames;
 * section 5 for TCP), so the reader takes bytes in whatever pieces they
 * arrive and knows nothing of message boundaries.
 *
 * Header, little-endian:
 *   len u32     body bytes; above max_frame: protocol error
 *   msg_id u16  0 ping/pong, 0xFF00..0xFFFF kite's, the rest the app's
 *   flags u16   bit 0 crc32 set, bit 1 pong (msg_id 0 only),
 *               bits 2..15 reserved: sent as 0, ignored on receipt
 *   crc32 u32   zlib crc32() of the body when bit 0 is set, else 0
 *
 * Reserved msg_ids are not an error here: the router decides what to do
 * with them. Nothing here allocates except the reader (see below).
 */
#ifndef KITE_PROTO_FRAME_H
#define KITE_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KITE__FRAME_HDR 12
#define KITE__FRAME_F_CRC 0x0001
#define KITE__FRAME_F_PONG 0x0002
#define KITE__MSG_PING 0
#define KITE__MSG_RESERVED_MIN 0xFF00 /* 0xFF00..0xFFFF: kite's own */
#define KITE__MSG_CLOSE_NOTICE 0xFF01 /* TCP: body 1 byte, the reason, before a FIN */
#define KITE__PING_BODY_MAX 32

typedef struct kite__frame_hdr {
  uint32_t len; /* body bytes */
  uint16_t msg_id, flags;
  uint32_t crc32; /* as on the wire: meaningful only with KITE__FRAME_F_CRC */
} kite__frame_hdr;

/* Writes |h| as its 12 wire bytes, every field as given (reserved flag bits
 * included: callers that build new frames use kite__frame_header()). */
void kite__frame_hdr_encode(uint8_t out[KITE__FRAME_HDR],
                            const kite__frame_hdr *h);

/* Reads 12 wire bytes into |h|. No validation: see kite__frame_check_*. */
void kite__frame_hdr_decode(const uint8_t in[KITE__FRAME_HDR],
                            kite__frame_hdr *h);

/* Fills |out| with the header for the |len| bytes at |body| (NULL when |len|
 * is 0). With |with_crc| the CRC flag is set and crc32 computed over the
 * body; without it both are cleared, whatever |flags| says. Other bits of
 * |flags| are written as given. Does not check the result: a sender that
 * passes a pong flag on msg_id 1 gets exactly that on the wire. */
void kite__frame_header(uint8_t out[KITE__FRAME_HDR], uint16_t msg_id,
                        uint16_t flags, const void *body, uint32_t len,
                        bool with_crc);

/* Why a frame is a protocol error (the session closes, reason 2); 0 when it
 * is fine. Positive, unlike KITE_E* codes: these travel in *why. */
enum kite__frame_err {
  KITE__FRAME_OK = 0,
  KITE__FRAME_ETOO_LONG,   /* len > max_frame */
  KITE__FRAME_ECRC,        /* CRC flag set and the body does not match */
  KITE__FRAME_EPONG,       /* pong flag on a msg_id other than 0 */
  KITE__FRAME_EPING_LONG,  /* a ping or pong with a body over 32 bytes */
};

/* Checks what can be checked before the body arrives, in this order:
 * length against |max_frame|, the pong flag's msg_id, the ping/pong body
 * limit. Returns a kite__frame_err. A reader calls it as soon as it has 12
 * bytes, so an oversized frame is refused before any of its body is held. */
int kite__frame_check_hdr(const kite__frame_hdr *h, uint32_t max_frame);

/* Checks the |h->len| bytes at |body| against h->crc32 when h carries the
 * CRC flag (else always 0: a nonzero crc32 without the flag is ignored, like
 * reserved bits). Returns KITE__FRAME_OK or KITE__FRAME_ECRC. */
int kite__frame_check_body(const kite__frame_hdr *h, const uint8_t *body);

/* A static description of a kite__frame_err (never NULL). */
const char *kite__frame_strerror(int err);

/* Body bytes a reader keeps inline, so that frames this small (every ping
 * and pong) never allocate even when they span feeds. */
#define KITE__FRAME_INLINE KITE__PING_BODY_MAX

/*
 * A reader for byte streams: bytes in, whole valid frames out.
 *
 * Zero-copy when a frame's body lies whole in the bytes of one feed (the
 * callback then sees a pointer into the caller's data); otherwise the body
 * is gathered in a buffer of exactly h.len bytes (inline up to
 * KITE__FRAME_INLINE, else malloc'd), allocated only once the body is seen
 * to span feeds and freed as soon as the frame is delivered. So the reader
 * never holds more than one frame (12 + max_frame bytes), and an idle
 * reader, or one between frames, holds no heap.
 *
 * Fields are private; the struct is public only so owners can embed it.
 * Not thread-safe: a reader belongs to one thread.
 */
typedef struct kite__frame_reader {
  uint32_t max_frame;
  uint32_t body_have; /* body bytes gathered in |body| */
  uint8_t hdr_have;   /* header bytes held (12: |h| is decoded and checked) */
  uint8_t why;        /* the kite__frame_err behind a sticky KITE_EPROTO */
  int err;            /* 0, or the error that made the stream unusable */
  kite__frame_hdr h;  /* the frame in progress, once hdr_have == 12 */
  uint8_t *body;      /* NULL, |small|, or a malloc'd h.len bytes */
  uint8_t hdr[KITE__FRAME_HDR];
  uint8_t small[KITE__FRAME_INLINE];
} kite__frame_reader;

/* Prepares |r| for a stream whose bodies may be up to |max_frame| bytes
 * (the max_frame of ACCEPT or OPENED, PROTOCOL.md sections 2 and 5).
 * Allocates nothing; cannot fail. */
void kite__frame_reader_init(kite__frame_reader *r, uint32_t max_frame);

/* Frees what |r| holds (a partial frame's buffer). |r| itself is the
 * caller's. Afterwards |r| is empty and usable again only after _init. */
void kite__frame_reader_free(kite__frame_reader *r);

/* Called for each whole, valid frame, in stream order. |h| and |body|
 * (h->len bytes, never NULL, even when h->len is 0) are valid only during
 * the call: copy what must outlive it. Return 0 to go on, nonzero to stop:
 * feed then returns at once, counting the bytes of this frame as consumed
 * and nothing after it. The callback must not call feed or free on the same
 * reader; during the call kite__frame_reader_buffered() is 0. */
typedef int (*kite__frame_fn)(void *user, const kite__frame_hdr *h,
                              const uint8_t *body);

/* Feeds the |len| bytes at |data| (NULL when |len| is 0; |len| at most
 * PTRDIFF_MAX). Whole frames go to |fn| as soon as they are complete,
 * including a frame that this feed completes with its last byte. Returns
 * the number of bytes consumed: |len| unless |fn| stopped early, in which
 * case the caller feeds the rest (data + returned, len - returned) later
 * and the stream resumes exactly there. Or a negative error:
 *   KITE_EPROTO  the stream broke PROTOCOL.md section 4; *why (if |why| is
 *                not NULL) is set to the kite__frame_err. Close the session
 *                with reason 2.
 *   KITE_ENOMEM  a spanning frame's buffer could not be allocated.
 * Either error is sticky: frames before the bad one were delivered, the
 * count of bytes consumed is lost, and every later feed returns the same
 * error (and *why). The caller closes the session and frees the reader. */
ptrdiff_t kite__frame_reader_feed(kite__frame_reader *r, const uint8_t *data,
                                  size_t len, kite__frame_fn fn, void *user,
                                  int *why);

/* Bytes held for a partial frame (header and body bytes consumed but not
 * yet delivered): at most 12 + max_frame. 0 between frames. */
size_t kite__frame_reader_buffered(const kite__frame_reader *r);

/* Heap bytes the reader holds now (for tests and memory accounting): 0
 * unless a frame larger than KITE__FRAME_INLINE is spanning feeds. */
size_t kite__frame_reader_heap(const kite__frame_reader *r);

#endif
