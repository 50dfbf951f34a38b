/*
 * Control packets (PROTOCOL.md section 2): the 8-byte header and the eight
 * fixed layouts that carry the handshake, CLOSE, and TCP's OPEN/OPENED.
 *
 * Pure codec: no sockets, no clock, no allocation. What a packet means (is
 * the cookie good, is the conv live, which reason to send) is the caller's
 * business; this file only says whether the bytes have the right shape.
 *
 * Header, little-endian like everything on the wire:
 *   magic[4] "KITE" (4B 49 54 45)   type u8   version u8 = 1   reserved u16
 * Then, by type (offsets from the start of the packet):
 *   1 HELLO      8 client_nonce[8], 16.. zero padding        at least 64
 *   2 CHALLENGE  8 client_nonce[8], 16 cookie[16]            32
 *   3 CONNECT    8 client_nonce[8], 16 cookie[16], 32 mtu u16,
 *                34 rcv_wnd u16, 36.. zero padding           at least 64
 *   4 ACCEPT     8 client_nonce[8], 16 conv u32, 20 token[8], 28 mtu u16,
 *                30 rcv_wnd u16, 32 idle_timeout_ms u32,
 *                36 max_frame u32                            40
 *   5 REJECT     8 client_nonce[8], 16 reason u8             17
 *   6 CLOSE      8 conv u32, 12 token[8], 20 reason u8       21
 *   7 OPEN       nothing                                     8
 *   8 OPENED     8 idle_timeout_ms u32, 12 max_frame u32     16
 *
 * No amplification (section 2, step 1): the requests a server answers on
 * UDP, HELLO and CONNECT, are at least 64 bytes, and every reply to them
 * (CHALLENGE 32, ACCEPT 40, REJECT 17) is smaller. Keep it so when adding
 * a type: kite__ctrl_may_answer() is the one place that decides.
 */
#ifndef KITE_PROTO_CONTROL_H
#define KITE_PROTO_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "KITE" read as a little-endian u32. Also the one conv the server never
 * assigns (section 1), so no KCP segment starts with these bytes. */
#define KITE__CTRL_MAGIC 0x4554494Bu
#define KITE__PROTO_VERSION 1

#define KITE__CTRL_HDR 8       /* magic, type, version, reserved */
#define KITE__CTRL_REQ_MIN 64  /* HELLO and CONNECT: at least this */
#define KITE__CTRL_MAX 64      /* the largest encoding: size buffers so */
#define KITE__CTRL_NONCE 8
#define KITE__CTRL_COOKIE 16
#define KITE__CTRL_TOKEN 8

enum kite__ctrl_type {
  KITE__CTRL_HELLO = 1,     /* c->s */
  KITE__CTRL_CHALLENGE = 2, /* s->c */
  KITE__CTRL_CONNECT = 3,   /* c->s */
  KITE__CTRL_ACCEPT = 4,    /* s->c */
  KITE__CTRL_REJECT = 5,    /* s->c; on TCP with a zero nonce */
  KITE__CTRL_CLOSE = 6,     /* either way */
  KITE__CTRL_OPEN = 7,      /* c->s, TCP only */
  KITE__CTRL_OPENED = 8,    /* s->c, TCP only */
};

/* REJECT's reason byte (section 2, step 4). */
enum kite__ctrl_reject {
  KITE__REJECT_FULL = 1,
  KITE__REJECT_VERSION = 2,
  KITE__REJECT_SHUTDOWN = 3,
  KITE__REJECT_COOKIE = 4,
};

/* CLOSE's reason byte, shared with the disconnect callback (section 2,
 * "Closing"). */
enum kite__ctrl_close {
  KITE__CLOSE_NORMAL = 0,
  KITE__CLOSE_IDLE = 1,
  KITE__CLOSE_PROTOCOL = 2,
  KITE__CLOSE_SHUTDOWN = 3,
  KITE__CLOSE_KICKED = 4,
  KITE__CLOSE_DEAD_LINK = 5,
  KITE__CLOSE_SLOW_PEER = 6,
};

/* Why kite__ctrl_decode() refused a datagram. Each is counted by the
 * caller; only KITE__CTRL_EVERSION may be answered. These are not KITE_E*
 * codes (kite_strerror() does not know them, and their values stay clear
 * of that table): use kite__ctrl_strerror(). */
enum kite__ctrl_err {
  KITE__CTRL_EMAGIC = -101,   /* not a control packet: < 4 bytes or no magic */
  KITE__CTRL_ESHORT = -102,   /* shorter than its header or its type's size */
  KITE__CTRL_EVERSION = -103, /* a version other than KITE__PROTO_VERSION */
  KITE__CTRL_ETYPE = -104,    /* type 0 or 9..255 (reserved) */
};

/* One control packet, decoded. Only the fields of |type| mean anything
 * (listed per field); decode zeroes the others, encode ignores them. */
typedef struct kite__ctrl {
  uint8_t type;    /* a kite__ctrl_type */
  uint8_t version; /* decode: as received; encode: 0 means KITE__PROTO_VERSION */
  uint8_t nonce[KITE__CTRL_NONCE];   /* HELLO CHALLENGE CONNECT ACCEPT REJECT */
  uint8_t cookie[KITE__CTRL_COOKIE]; /* CHALLENGE CONNECT */
  uint16_t mtu, rcv_wnd;             /* CONNECT ACCEPT */
  uint32_t conv;                     /* ACCEPT CLOSE */
  uint8_t token[KITE__CTRL_TOKEN];   /* ACCEPT CLOSE */
  uint32_t idle_timeout_ms, max_frame; /* ACCEPT OPENED */
  uint8_t reason; /* REJECT (kite__ctrl_reject), CLOSE (kite__ctrl_close) */
} kite__ctrl;

/* true when the |len| bytes at |p| are a control packet rather than KCP
 * segments (section 1): at least 4 bytes and the magic. The shard's
 * receive loop calls this first on every datagram. */
static inline bool kite__ctrl_is_control(const uint8_t *p, size_t len) {
  return len >= 4 && p[0] == 0x4B && p[1] == 0x49 && p[2] == 0x54 &&
         p[3] == 0x45;
}

/* The encoded size of |type|: its exact size, or 64 for HELLO and CONNECT
 * (the least a receiver accepts, and what kite__ctrl_encode() writes).
 * 0 for type 0 and 9..255. */
size_t kite__ctrl_size(uint8_t type);

/* Decodes the |len| bytes at |p| (one datagram, or on TCP the 8 bytes of
 * OPEN) into |out|. Reads nothing past p + len; |p| may be NULL when |len|
 * is 0. Returns 0, or a kite__ctrl_err, checked in this order:
 *   KITE__CTRL_EMAGIC    |len| < 4 or no magic.
 *   KITE__CTRL_ESHORT    |len| < 8: no whole header.
 *   KITE__CTRL_EVERSION  version != 1. Checked before the type, since a
 *                        version we do not speak may number its types
 *                        otherwise. The server answers REJECT reason 2
 *                        when kite__ctrl_may_answer() allows it; a client
 *                        that gets EVERSION on a REJECT carrying its nonce
 *                        knows the server speaks another version.
 *   KITE__CTRL_ETYPE     type 0 or 9..255: ignored, counted.
 *   KITE__CTRL_ESHORT    shorter than kite__ctrl_size(type): ignored,
 *                        counted (HELLO and CONNECT under 64 included).
 * |out| is always written: on 0, the fields of the type and zeros in the
 * others. On a refusal after a whole header, out->type and out->version
 * hold the packet's and out->nonce bytes 8..15 when |len| >= 16, whatever
 * the type (on EVERSION this is what lets a REJECT carry the nonce back);
 * everything else is zero.
 *
 * Lenient where the contract allows: the reserved u16 is ignored; the
 * padding of HELLO and CONNECT is not checked for zeros; and bytes after a
 * fixed-size type's size are ignored rather than refused, so that a later
 * version may append fields without breaking version-1 peers (section 6
 * promises only new types, but refusing costs a dropped packet and buys
 * nothing). Field values (mtu, reasons, conv) are not judged here. */
int kite__ctrl_decode(const uint8_t *p, size_t len, kite__ctrl *out);

/* Encodes |c| at |out|: the layout of c->type, reserved bytes 0, version
 * c->version or KITE__PROTO_VERSION when that is 0. HELLO and CONNECT are
 * zero-padded to 64 bytes; nothing is written past the type's size.
 * Returns the bytes written (kite__ctrl_size(c->type)), or
 *   KITE_EINVAL    c->type is not a kite__ctrl_type;
 *   KITE_EMSGSIZE  |cap| is smaller than that size (nothing written).
 * A buffer of KITE__CTRL_MAX bytes always suffices. */
int kite__ctrl_encode(uint8_t *out, size_t cap, const kite__ctrl *c);

/* true when a UDP datagram of |len| bytes and type |type| is one the
 * server may answer: a request (HELLO or CONNECT) at least as large as any
 * reply to it, so that no reply amplifies (section 2, step 1). This covers
 * the EVERSION path too, where the size check of decode has not run: a
 * short HELLO of another version gets nothing. TCP does not need it (OPEN
 * of another version gets REJECT with a zero nonce, section 5). */
static inline bool kite__ctrl_may_answer(uint8_t type, size_t len) {
  return (type == KITE__CTRL_HELLO || type == KITE__CTRL_CONNECT) &&
         len >= KITE__CTRL_REQ_MIN;
}

/* A static name for a kite__ctrl_err, for logs and counters (never NULL;
 * "unknown" for anything else). */
const char *kite__ctrl_strerror(int err);

#endif
