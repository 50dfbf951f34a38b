/*
 * libFuzzer target: the v2 control codec (proto/v2ctl.h), fed whole
 * datagrams, and the sealed ACCEPT and OPENED bodies.
 *   - decode returns 0 or one of its four refusals; 0 only for exactly the
 *     type's size (HELLO: at least 64) and version 2;
 *   - a packet that decodes re-encodes to its input's bytes (reserved and
 *     HELLO's padding aside, written as zeros) and decodes again alike;
 *   - a refusal leaves nothing but type, version and nonce;
 *   - every request a server answers is larger than the answer;
 *   - ACCEPT and OPENED from the wire never open (no one but this target
 *     holds its key); the input's bytes sealed as an ACCEPT or OPENED body
 *     open to exactly those fields, and the client's table check agrees
 *     with the contract written out again here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/le.h"
#include "proto/v2.h"
#include "proto/v2ctl.h"

static const uint8_t key[32] = {0x80, 0x81, 0x82};

static bool hello_pad(uint8_t type, size_t i) {
  return type == 1 && i >= 16;
}

static void codec(const uint8_t *data, size_t size) {
  kite__v2ctl c;
  int rc = kite__v2ctl_decode(data, size, &c);
  if (rc != 0) {
    if (rc != KITE__V2_EMAGIC && rc != KITE__V2_ESIZE &&
        rc != KITE__V2_EVERSION && rc != KITE__V2_ETYPE)
      abort();
    kite__v2ctl rest = c, zero;
    memset(&zero, 0, sizeof(zero));
    rest.type = rest.version = 0;
    memset(rest.nonce, 0, sizeof(rest.nonce));
    if (memcmp(&rest, &zero, sizeof(zero)) != 0)
      abort();
    return;
  }
  size_t need = kite__v2ctl_size(c.type);
  if (need == 0 || c.version != 2 ||
      (c.type == 1 ? size < need : size != need))
    abort();
  uint8_t buf[KITE__V2CTL_MAX];
  int n = kite__v2ctl_encode(buf, sizeof(buf), &c);
  if (n < 0 || (size_t)n != need)
    abort();
  for (size_t i = 0; i < need; i++) {
    uint8_t want = (i == 6 || i == 7 || hello_pad(c.type, i)) ? 0 : data[i];
    if (buf[i] != want)
      abort();
  }
  kite__v2ctl back;
  if (kite__v2ctl_decode(buf, need, &back) != 0 || back.type != c.type ||
      memcmp(back.nonce, c.nonce, 8) != 0 || back.expire_ts != c.expire_ts ||
      back.mtu != c.mtu || back.rcv_wnd != c.rcv_wnd)
    abort();
  if (kite__v2ctl_to_server(c.type) && c.type != 7 &&
      (kite__v2ctl_size(2) >= size || kite__v2ctl_size(4) >= size ||
       kite__v2ctl_size(5) >= size))
    abort();
  kite__v2accept a;
  if (c.type == 4 && kite__v2ctl_accept_open(data, key, &a) != KITE__V2_EAUTH)
    abort();
  if (c.type == 8 && kite__v2ctl_opened_open(data, key, &a) != KITE__V2_EAUTH)
    abort();
}

static void bodies(const uint8_t *data, size_t size) {
  uint8_t in[20 + 2 + 8 + 8] = {0};
  memcpy(in, data, size < sizeof(in) ? size : sizeof(in));
  kite__v2accept a = {
      .conv = kite__get_le32(in), .mtu = kite__get_le16(in + 4),
      .rcv_wnd = kite__get_le16(in + 6),
      .idle_timeout_ms = kite__get_le32(in + 8),
      .max_frame = kite__get_le32(in + 12),
      .max_unreliable = kite__get_le16(in + 16)};
  uint16_t client_mtu = kite__get_le16(in + 20);
  uint8_t pkt[KITE__V2CTL_ACCEPT];
  kite__v2ctl_accept_seal(pkt, in + 22, in + 30, &a, key);
  kite__v2ctl d;
  if (kite__v2ctl_decode(pkt, sizeof(pkt), &d) != 0 || d.type != 4 ||
      memcmp(d.nonce, in + 22, 8) != 0 || memcmp(d.accept_nonce, in + 30, 8))
    abort();
  kite__v2accept b;
  if (kite__v2ctl_accept_open(pkt, key, &b) != 0 ||
      memcmp(&a, &b, sizeof(a)) != 0)
    abort();
  uint32_t room = a.mtu > 36 ? a.mtu - 36u : 0;
  bool ok = a.conv != 0x4554494Bu && a.mtu >= 576 && a.mtu <= client_mtu &&
            a.rcv_wnd != 0 &&
            a.max_unreliable == (room < a.max_frame ? room : a.max_frame);
  if ((kite__v2ctl_accept_check(&b, client_mtu) == 0) != ok)
    abort();
  pkt[in[0] % sizeof(pkt)] ^= (uint8_t)(1u << (in[1] % 8));
  if (kite__v2ctl_accept_open(pkt, key, &b) != KITE__V2_EAUTH)
    abort();

  uint8_t op[KITE__V2CTL_OPENED];
  kite__v2ctl_opened_seal(op, in + 30, &a, key);
  if (kite__v2ctl_decode(op, sizeof(op), &d) != 0 || d.type != 8 ||
      kite__v2ctl_opened_open(op, key, &b) != 0 ||
      b.idle_timeout_ms != a.idle_timeout_ms || b.max_frame != a.max_frame ||
      b.max_unreliable != a.max_unreliable || b.conv != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (kite__v2_init() != 0)
    abort();
  codec(data, size);
  bodies(data, size);
  return 0;
}
