/*
 * Protocol version 2 (PROTOCOL-v2.md): what its codecs share. The numbers
 * of section 12, the sizes of the primitives (the table at the top), and
 * the refusals the v2 codecs return.
 *
 * The v2 building blocks are pure: no sockets, no threads, no clock (time
 * is an argument). Each lives in its own file:
 *   v2tok.c   connect tokens: mint, read the public part, open the private
 *   v2ctl.c   the handshake's control packets, sealed ACCEPT and OPENED,
 *             traffic keys
 *   v2pkt.c   protected datagrams, and key limits (section 9)
 *   replay.c  the replay window (section 4)
 *   v2item.c  the items of a datagram (section 5), UNRELIABLE (section 6)
 *   v2seq.c   the sequencing of unreliable messages, both sides (section 6)
 *   v2rec.c   TCP records (section 8)
 *   tokrec.c  the token record (section 3: tags bound to addresses)
 * Every primitive is libsodium's; every secret a function held on its
 * stack is wiped (sodium_memzero) before it returns. libsodium must be
 * initialised (sodium_init()) before any of them runs: kite__v2_init().
 */
#ifndef KITE_PROTO_V2_H
#define KITE_PROTO_V2_H

#include <stdint.h>

#define KITE__V2_VERSION 2
#define KITE__V2_KEY 32        /* every key: private, token, traffic */
#define KITE__V2_TAG 16        /* every seal appends this */
#define KITE__V2_XNONCE 24     /* xseal's nonce: the token's */
#define KITE__V2_NONCE 12      /* seal's nonce: prefix u32 then a u64 */
#define KITE__V2_MAX_TTL_S 300 /* expire_ts at most this far ahead */

/* The first 4 bytes of a seal's nonce, as u32 (section 12). */
enum kite__v2_nonce_prefix {
  KITE__V2_NP_DATAGRAM = 0,
  KITE__V2_NP_ACCEPT = 1,
  KITE__V2_NP_OPENED = 2,
  KITE__V2_NP_RECORD = 3,
};

/* REJECT reasons v2 adds to v1's 1 to 4 (section 12). */
enum kite__v2_reject {
  KITE__REJECT_EXPIRED = 5,  /* expire_ts passed, or over 300 s ahead */
  KITE__REJECT_INVALID = 6,  /* does not open, or malformed */
  KITE__REJECT_NOT_HERE = 7, /* no address of the token is this server's */
  KITE__REJECT_USED = 8,     /* tag already bound to this address */
};

/* The close reason v2 adds to v1's 0 to 6. */
#define KITE__CLOSE_KEY_EXHAUSTED 7 /* KITE_CLOSE_KEY_EXHAUSTED (kite/reason.h) */
#define KITE__CLOSE_MAX 7 /* a larger reason is read as 0 (section 5) */

/* Frame flags bit 2 (section 8): sent unreliably. Set on TCP only; a KCP
 * receiver treats it alike. v1 reads it as reserved. */
#define KITE__FRAME_F_UNRELIABLE 0x0004

/* Packet and record numbers stay below 2^48 (section 9). */
#define KITE__V2_PN_LIMIT (UINT64_C(1) << 48)
#define KITE__V2_PN_CLOSING (KITE__V2_PN_LIMIT - 3)

/* Why a v2 codec refused its input. Each is counted by the caller, none is
 * answered by itself (the caller picks the REJECT, if any, from the
 * contract's steps). Values stay clear of KITE_E* and of the v1 control
 * codes (-101..-104): use kite__v2_strerror(). */
enum kite__v2_err {
  KITE__V2_EMAGIC = -140,   /* not what it should start with */
  KITE__V2_ESIZE = -141,    /* not the size its type or layout requires */
  KITE__V2_EVERSION = -142, /* a version other than 2 */
  KITE__V2_ETYPE = -143,    /* a type not defined, or 6 (closes go inside) */
  KITE__V2_EAUTH = -144,    /* a seal that does not open: key, nonce, aad, bit */
  KITE__V2_EFORM = -145,    /* opened (or in clear) but fields ill-formed */
  KITE__V2_EEXPIRED = -146, /* token expired, or over 300 s ahead */
  KITE__V2_ENOTHERE = -147, /* this server is not among the token's addresses */
  KITE__V2_ESTALE = -148,   /* replay window: older than top - 1023 */
  KITE__V2_EDUP = -149,     /* replay window: already recorded */
  KITE__V2_ELIMIT = -150,   /* a packet or record number at or past 2^48 */
  KITE__V2_EBOUND = -151,   /* token record: tag bound to another address */
  KITE__V2_EUSED = -152,    /* token record: tag bound to this address */
  KITE__V2_EFULL = -153,    /* token record full */
  KITE__V2_EPROTO = -154,   /* items or records that break sections 5, 6, 8 */
};

/* A static name for a kite__v2_err (never NULL; "unknown" otherwise). */
const char *kite__v2_strerror(int err);

/* sodium_init(), which every v2 function needs once (it picks the
 * implementations of the primitives). Returns 0, or KITE_ESYS when
 * libsodium cannot initialise. Thread-safe, cheap to repeat. */
int kite__v2_init(void);

#endif
