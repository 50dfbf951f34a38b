/*
 * libFuzzer target: the control packet codec (PROTOCOL.md section 2) and the
 * handshake cookie check, fed whole datagrams as they come off the wire.
 * Besides ASan/UBSan, it aborts when an invariant breaks:
 *   - decode returns 0 or one of the four kite__ctrl_err codes;
 *   - a packet that decodes is at least its type's size, re-encodes to
 *     exactly kite__ctrl_size(type) bytes equal to its input's first bytes
 *     (reserved bytes and padding aside, which encode writes as zeros), and
 *     decodes again to the same fields;
 *   - no refusal leaves anything but type, version and nonce set;
 *   - a request the server may answer is never smaller than the reply;
 *   - the cookie check accepts a cookie only if it is exactly the one the
 *     jar would make for that address, nonce and ts, and always accepts
 *     the one it just made.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proto/control.h"
#include "server/cookie.h"

static void check_fields_equal(const kite__ctrl *a, const kite__ctrl *b) {
  if (a->type != b->type || a->version != b->version ||
      memcmp(a->nonce, b->nonce, sizeof(a->nonce)) != 0 ||
      memcmp(a->cookie, b->cookie, sizeof(a->cookie)) != 0 ||
      a->mtu != b->mtu || a->rcv_wnd != b->rcv_wnd || a->conv != b->conv ||
      memcmp(a->token, b->token, sizeof(a->token)) != 0 ||
      a->idle_timeout_ms != b->idle_timeout_ms ||
      a->max_frame != b->max_frame || a->reason != b->reason)
    abort();
}

/* Bytes of the encoding that must equal the input: all but reserved (6, 7)
 * and the padding of HELLO (16..63) and CONNECT (36..63). */
static int compared(uint8_t type, size_t i) {
  if (i == 6 || i == 7)
    return 0;
  if (type == KITE__CTRL_HELLO)
    return i < 16;
  if (type == KITE__CTRL_CONNECT)
    return i < 36;
  return 1;
}

static void check_codec(const uint8_t *data, size_t size, kite__ctrl *c) {
  int rc = kite__ctrl_decode(data, size, c);
  if (rc == 0) {
    size_t need = kite__ctrl_size(c->type);
    if (need == 0 || size < need || c->version != KITE__PROTO_VERSION)
      abort();
    uint8_t buf[KITE__CTRL_MAX];
    int n = kite__ctrl_encode(buf, sizeof(buf), c);
    if (n < 0 || (size_t)n != need)
      abort();
    for (size_t i = 0; i < need; i++)
      if (compared(c->type, i) && buf[i] != data[i])
        abort();
    if (buf[6] != 0 || buf[7] != 0)
      abort();
    for (size_t i = c->type == KITE__CTRL_HELLO     ? 16
                    : c->type == KITE__CTRL_CONNECT ? 36
                                                    : need;
         i < need; i++)
      if (buf[i] != 0)
        abort();
    kite__ctrl back;
    if (kite__ctrl_decode(buf, (size_t)n, &back) != 0)
      abort();
    check_fields_equal(c, &back);
    if (kite__ctrl_may_answer(c->type, size) &&
        (kite__ctrl_size(KITE__CTRL_ACCEPT) > size ||
         kite__ctrl_size(KITE__CTRL_CHALLENGE) > size))
      abort();
    return;
  }
  if (rc != KITE__CTRL_EMAGIC && rc != KITE__CTRL_ESHORT &&
      rc != KITE__CTRL_EVERSION && rc != KITE__CTRL_ETYPE)
    abort();
  /* A refusal carries type, version and nonce at most. */
  kite__ctrl rest = *c;
  rest.type = 0;
  rest.version = 0;
  memset(rest.nonce, 0, sizeof(rest.nonce));
  static const kite__ctrl zero;
  check_fields_equal(&rest, &zero);
  if (rc == KITE__CTRL_EVERSION &&
      kite__ctrl_may_answer(c->type, size) &&
      kite__ctrl_size(KITE__CTRL_REJECT) > size)
    abort();
}

/* The address, nonce, cookie and clock come from the input: from a
 * CONNECT's fields when it decoded as one, else from its raw bytes. */
static void check_cookie(const uint8_t *data, size_t size,
                         const kite__ctrl *c) {
  static kite__cookie_jar jar, maker;
  static int ready;
  if (!ready) {
    static const uint8_t master[32] = {0x6B, 0x69, 0x74, 0x65};
    if (kite__cookie_jar_init(&jar, master, KITE__COOKIE_LIFETIME_S) != 0 ||
        kite__cookie_jar_init(&maker, master, KITE__COOKIE_LIFETIME_S) != 0)
      abort();
    ready = 1;
  }
  uint8_t raw[64] = {0};
  if (size > 0)
    memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
  uint8_t nonce[8], cookie[16];
  if (c->type == KITE__CTRL_CONNECT) {
    memcpy(nonce, c->nonce, 8);
    memcpy(cookie, c->cookie, 16);
  } else {
    memcpy(nonce, raw + 8, 8);
    memcpy(cookie, raw + 16, 16);
  }
  uint32_t ts = (uint32_t)cookie[0] | (uint32_t)cookie[1] << 8 |
                (uint32_t)cookie[2] << 16 | (uint32_t)cookie[3] << 24;
  /* Mostly near the cookie's ts, so that the age window is exercised. */
  uint32_t now = raw[36] & 1 ? ts + (uint32_t)(int8_t)raw[37]
                             : (uint32_t)raw[37] | (uint32_t)raw[38] << 8 |
                                   (uint32_t)raw[39] << 16 |
                                   (uint32_t)raw[40] << 24;

  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  if (raw[41] & 1) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_addr, raw + 44, 16);
    memcpy(&a->sin6_port, raw + 42, 2);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = raw[41] & 2 ? AF_UNIX : AF_INET; /* some unsupported */
    memcpy(&a->sin_addr, raw + 44, 4);
    memcpy(&a->sin_port, raw + 42, 2);
  }
  const struct sockaddr *sa = (const struct sockaddr *)&ss;

  if (kite__cookie_check(&jar, 1, sa, nonce, cookie, now)) {
    /* Forged only if SipHash broke: it must be the jar's own cookie. */
    uint8_t want[16];
    if (kite__cookie_make(&maker, 1, sa, nonce, ts, want) != 0 ||
        memcmp(want, cookie, 16) != 0)
      abort();
  }
  uint8_t mine[16];
  if (kite__cookie_make(&jar, 1, sa, nonce, now, mine) == 0 &&
      !kite__cookie_check(&jar, 1, sa, nonce, mine, now))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kite__ctrl c;
  check_codec(data, size, &c);
  check_cookie(data, size, &c);
  return 0;
}
