/*
 * The version-2 handshake (PROTOCOL-v2.md section 3, and OPEN/OPENED of
 * section 8): control packets, the sealed bodies of ACCEPT and OPENED, and
 * the traffic keys.
 *
 * Header as v1's (PROTOCOL.md section 2) with version 2, then by type:
 *   1 HELLO      8 client_nonce[8], zero padding               at least 64
 *   2 CHALLENGE  8 client_nonce[8], 16 cookie[16]              32
 *   3 CONNECT    8 client_nonce[8], 16 cookie[16], 32 mtu u16,
 *                34 rcv_wnd u16, 36 expire_ts u64,
 *                44 token_nonce[24], 68 sealed_private[512]    580
 *   4 ACCEPT     8 client_nonce[8], 16 accept_nonce[8],
 *                24 sealed body[36]                            60
 *   5 REJECT     8 client_nonce[8], 16 reason u8               17
 *   7 OPEN       8 expire_ts u64, 16 token_nonce[24],
 *                40 sealed_private[512]                        552
 *   8 OPENED     8 accept_nonce[8], 16 sealed body[28]         44
 * Type 6, 9..255 and any other size are refused (HELLO: under 64).
 *
 * ACCEPT's body: seal(s2c token key, 01 00 00 00 ‖ accept_nonce, aad = its
 * first 24 bytes) of conv u32, mtu u16, rcv_wnd u16, idle_timeout_ms u32,
 * max_frame u32, max_unreliable u16, reserved u16 (20 bytes). OPENED's:
 * seal(s2c token key, 02 00 00 00 ‖ accept_nonce, aad = its first 16 bytes)
 * of idle_timeout_ms u32, max_frame u32, max_unreliable u16, reserved u16.
 *
 * Traffic keys: kdf(token key, label ‖ client_nonce ‖ accept_nonce), label
 * one of the four 15-byte KITE__V2_LABEL_*; on TCP client_nonce is zeros.
 *
 * Pure: no sockets, clock or allocation; no state, so any thread.
 */
#ifndef KITE_PROTO_V2CTL_H
#define KITE_PROTO_V2CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/control.h"
#include "proto/v2.h"
#include "proto/v2tok.h"

#define KITE__V2CTL_MAX 580 /* the largest (CONNECT): size buffers so */
#define KITE__V2CTL_ACCEPT 60
#define KITE__V2CTL_OPENED 44
#define KITE__V2CTL_ACCEPT_BODY 20
#define KITE__V2CTL_OPENED_BODY 12
#define KITE__V2_MTU_MIN 576
#define KITE__V2_DATAGRAM_OVERHEAD 36 /* mtu - 36: the largest unreliable body */

#define KITE__V2_LABEL_LEN 15
#define KITE__V2_LABEL_UDP_C2S "kite v2 udp c2s"
#define KITE__V2_LABEL_UDP_S2C "kite v2 udp s2c"
#define KITE__V2_LABEL_TCP_C2S "kite v2 tcp c2s"
#define KITE__V2_LABEL_TCP_S2C "kite v2 tcp s2c"

/* One v2 control packet. Decode points token_nonce, sealed and body into
 * the packet it read (valid as long as those bytes); encode reads them
 * from wherever they point. Only the fields of |type| mean anything. */
typedef struct kite__v2ctl {
  uint8_t type;    /* a kite__ctrl_type, not 6 */
  uint8_t version; /* decode: as received; encode writes 2 */
  uint8_t nonce[KITE__CTRL_NONCE];   /* client_nonce: 1 2 3 4 5 */
  uint8_t cookie[KITE__CTRL_COOKIE]; /* 2 3 */
  uint16_t mtu, rcv_wnd;             /* 3 */
  uint64_t expire_ts;                /* 3 7: the token's, in clear */
  const uint8_t *token_nonce;        /* 3 7: 24 bytes */
  const uint8_t *sealed;             /* 3 7: 512 bytes; tag: the last 16 */
  uint8_t accept_nonce[KITE__CTRL_NONCE]; /* 4 8 */
  const uint8_t *body; /* 4: 36 bytes, 8: 28 bytes, sealed */
  uint8_t reason;      /* 5 */
} kite__v2ctl;

/* The size of |type| in v2 (HELLO: the least taken, and what encode
 * writes); 0 for types v2 does not define (0, 6, 9..255). */
size_t kite__v2ctl_size(uint8_t type);

/* true for the types a server receives (HELLO, CONNECT, OPEN): a server
 * ignores the others, a client these, counted. */
bool kite__v2ctl_to_server(uint8_t type);

/* Decodes one v2 control packet (|len| bytes at |p|). Returns 0, or, in
 * this order: KITE__V2_EMAGIC (no "KITE"), KITE__V2_ESIZE (no header),
 * KITE__V2_EVERSION (version not 2: out->type, version and, from 16 bytes
 * on, nonce are set so that REJECT 2 can answer), KITE__V2_ETYPE,
 * KITE__V2_ESIZE (not exactly the type's size; HELLO under 64). The
 * reserved u16 and HELLO's padding are not checked. */
int kite__v2ctl_decode(const uint8_t *p, size_t len, kite__v2ctl *out);

/* Encodes |c| (type's layout, version 2, reserved and padding 0). Returns
 * the bytes written, KITE_EINVAL (a type v2 does not define, or a NULL
 * pointer the type needs) or KITE_EMSGSIZE (|cap| too small; nothing
 * written). KITE__V2CTL_MAX bytes always suffice. */
int kite__v2ctl_encode(uint8_t *out, size_t cap, const kite__v2ctl *c);

/* ACCEPT's and OPENED's bodies, in clear. */
typedef struct kite__v2accept {
  uint32_t conv;            /* ACCEPT only */
  uint16_t mtu, rcv_wnd;    /* ACCEPT only */
  uint32_t idle_timeout_ms; /* in force */
  uint32_t max_frame;
  uint16_t max_unreliable;
  uint16_t reserved; /* encode writes 0; open reports what came */
} kite__v2accept;

/* min(mtu - 36, max_frame): the largest unreliable body (section 3). */
uint16_t kite__v2_max_unreliable(uint16_t mtu, uint32_t max_frame);

/* Writes the whole 60-byte ACCEPT: header, |client_nonce|, |accept_nonce|,
 * the body |a| sealed under |s2c_key| (the token's server-to-client key). */
void kite__v2ctl_accept_seal(uint8_t out[KITE__V2CTL_ACCEPT],
                             const uint8_t client_nonce[8],
                             const uint8_t accept_nonce[8],
                             const kite__v2accept *a,
                             const uint8_t s2c_key[KITE__V2_KEY]);

/* Opens the body of the 60-byte ACCEPT |pkt| (already decoded: header and
 * size are the caller's checks). Returns 0 with the body in |out|, or
 * KITE__V2_EAUTH (|out| zeroed): ignore it, counted, resend CONNECT. */
int kite__v2ctl_accept_open(const uint8_t pkt[KITE__V2CTL_ACCEPT],
                            const uint8_t s2c_key[KITE__V2_KEY],
                            kite__v2accept *out);

/* The client's check of an ACCEPT that opened, against its own mtu:
 * 0, or KITE__V2_EFORM (conv is the magic, mtu under 576 or over
 * |client_mtu|, rcv_wnd 0, max_unreliable not exactly min(mtu - 36,
 * max_frame), reserved not 0): the attempt ends. */
int kite__v2ctl_accept_check(const kite__v2accept *a, uint16_t client_mtu);

/* The same for OPENED (44 bytes): idle_timeout_ms, max_frame,
 * max_unreliable, reserved; conv, mtu and rcv_wnd are not carried. */
void kite__v2ctl_opened_seal(uint8_t out[KITE__V2CTL_OPENED],
                             const uint8_t accept_nonce[8],
                             const kite__v2accept *a,
                             const uint8_t s2c_key[KITE__V2_KEY]);
int kite__v2ctl_opened_open(const uint8_t pkt[KITE__V2CTL_OPENED],
                            const uint8_t s2c_key[KITE__V2_KEY],
                            kite__v2accept *out);

/* One session's traffic keys, one per direction. */
typedef struct kite__v2keys {
  uint8_t c2s[KITE__V2_KEY];
  uint8_t s2c[KITE__V2_KEY];
} kite__v2keys;

/* kdf(|key|, |label| (15 bytes) ‖ |client_nonce| ‖ |accept_nonce|) into
 * |out|: BLAKE2b-256 keyed with the 32-byte |key| (crypto_generichash). */
void kite__v2_kdf(uint8_t out[KITE__V2_KEY], const uint8_t key[KITE__V2_KEY],
                  const char label[KITE__V2_LABEL_LEN],
                  const uint8_t client_nonce[8], const uint8_t accept_nonce[8]);

/* Both traffic keys of a session from the token's two keys. |tcp| picks
 * the TCP labels and ignores |client_nonce| (8 zeros are used; it may be
 * NULL). Wipe |out| (sodium_memzero) when the session ends. */
void kite__v2_traffic_keys(kite__v2keys *out,
                           const uint8_t c2s_token_key[KITE__V2_KEY],
                           const uint8_t s2c_token_key[KITE__V2_KEY], bool tcp,
                           const uint8_t client_nonce[8],
                           const uint8_t accept_nonce[8]);

#endif
