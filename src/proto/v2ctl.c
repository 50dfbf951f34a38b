#include "proto/v2ctl.h"

#include "base/le.h"

#include <sodium.h>
#include <string.h>

#include "kite/error.h"

size_t kite__v2ctl_size(uint8_t type) {
  switch (type) {
  case KITE__CTRL_HELLO: return KITE__CTRL_REQ_MIN;
  case KITE__CTRL_CHALLENGE: return 32;
  case KITE__CTRL_CONNECT: return 580;
  case KITE__CTRL_ACCEPT: return KITE__V2CTL_ACCEPT;
  case KITE__CTRL_REJECT: return 17;
  case KITE__CTRL_OPEN: return 552;
  case KITE__CTRL_OPENED: return KITE__V2CTL_OPENED;
  }
  return 0; /* 6 included: v2 closes inside protected datagrams */
}

bool kite__v2ctl_to_server(uint8_t type) {
  return type == KITE__CTRL_HELLO || type == KITE__CTRL_CONNECT ||
         type == KITE__CTRL_OPEN;
}

int kite__v2ctl_decode(const uint8_t *p, size_t len, kite__v2ctl *out) {
  memset(out, 0, sizeof(*out));
  if (!kite__ctrl_is_control(p, len))
    return KITE__V2_EMAGIC;
  if (len < KITE__CTRL_HDR)
    return KITE__V2_ESIZE;
  out->type = p[4];
  out->version = p[5];
  if (out->version != KITE__V2_VERSION) {
    if (len >= 16)
      memcpy(out->nonce, p + 8, KITE__CTRL_NONCE);
    return KITE__V2_EVERSION;
  }
  size_t need = kite__v2ctl_size(out->type);
  if (need == 0)
    return KITE__V2_ETYPE;
  if (out->type == KITE__CTRL_HELLO ? len < need : len != need)
    return KITE__V2_ESIZE;

  switch (out->type) {
  case KITE__CTRL_HELLO:
  case KITE__CTRL_CHALLENGE:
  case KITE__CTRL_CONNECT:
  case KITE__CTRL_ACCEPT:
  case KITE__CTRL_REJECT:
    memcpy(out->nonce, p + 8, KITE__CTRL_NONCE);
    break;
  }
  switch (out->type) {
  case KITE__CTRL_CHALLENGE:
    memcpy(out->cookie, p + 16, KITE__CTRL_COOKIE);
    break;
  case KITE__CTRL_CONNECT:
    memcpy(out->cookie, p + 16, KITE__CTRL_COOKIE);
    out->mtu = kite__get_le16(p + 32);
    out->rcv_wnd = kite__get_le16(p + 34);
    out->expire_ts = kite__get_le64(p + 36);
    out->token_nonce = p + 44;
    out->sealed = p + 68;
    break;
  case KITE__CTRL_ACCEPT:
    memcpy(out->accept_nonce, p + 16, KITE__CTRL_NONCE);
    out->body = p + 24;
    break;
  case KITE__CTRL_REJECT:
    out->reason = p[16];
    break;
  case KITE__CTRL_OPEN:
    out->expire_ts = kite__get_le64(p + 8);
    out->token_nonce = p + 16;
    out->sealed = p + 40;
    break;
  case KITE__CTRL_OPENED:
    memcpy(out->accept_nonce, p + 8, KITE__CTRL_NONCE);
    out->body = p + 16;
    break;
  }
  return 0;
}

static uint8_t *put_hdr(uint8_t *p, uint8_t type) {
  p = kite__put_le32(p, KITE__CTRL_MAGIC);
  *p++ = type;
  *p++ = KITE__V2_VERSION;
  return kite__put_le16(p, 0);
}

int kite__v2ctl_encode(uint8_t *out, size_t cap, const kite__v2ctl *c) {
  size_t size = kite__v2ctl_size(c->type);
  if (size == 0)
    return KITE_EINVAL;
  bool token = c->type == KITE__CTRL_CONNECT || c->type == KITE__CTRL_OPEN;
  bool body = c->type == KITE__CTRL_ACCEPT || c->type == KITE__CTRL_OPENED;
  if ((token && (c->token_nonce == NULL || c->sealed == NULL)) ||
      (body && c->body == NULL))
    return KITE_EINVAL;
  if (cap < size)
    return KITE_EMSGSIZE;

  uint8_t *p = put_hdr(out, c->type);
  switch (c->type) {
  case KITE__CTRL_HELLO:
    memcpy(p, c->nonce, 8);
    memset(p + 8, 0, size - 16);
    break;
  case KITE__CTRL_CHALLENGE:
    memcpy(p, c->nonce, 8);
    memcpy(p + 8, c->cookie, 16);
    break;
  case KITE__CTRL_CONNECT:
    memcpy(p, c->nonce, 8);
    memcpy(p + 8, c->cookie, 16);
    p = kite__put_le16(p + 24, c->mtu);
    p = kite__put_le16(p, c->rcv_wnd);
    p = kite__put_le64(p, c->expire_ts);
    memcpy(p, c->token_nonce, KITE__V2_XNONCE);
    memcpy(p + KITE__V2_XNONCE, c->sealed, KITE__V2TOK_SEALED);
    break;
  case KITE__CTRL_ACCEPT:
    memcpy(p, c->nonce, 8);
    memcpy(p + 8, c->accept_nonce, 8);
    memcpy(p + 16, c->body, KITE__V2CTL_ACCEPT_BODY + KITE__V2_TAG);
    break;
  case KITE__CTRL_REJECT:
    memcpy(p, c->nonce, 8);
    p[8] = c->reason;
    break;
  case KITE__CTRL_OPEN:
    p = kite__put_le64(p, c->expire_ts);
    memcpy(p, c->token_nonce, KITE__V2_XNONCE);
    memcpy(p + KITE__V2_XNONCE, c->sealed, KITE__V2TOK_SEALED);
    break;
  case KITE__CTRL_OPENED:
    memcpy(p, c->accept_nonce, 8);
    memcpy(p + 8, c->body, KITE__V2CTL_OPENED_BODY + KITE__V2_TAG);
    break;
  }
  return (int)size;
}

uint16_t kite__v2_max_unreliable(uint16_t mtu, uint32_t max_frame) {
  uint32_t room = mtu > KITE__V2_DATAGRAM_OVERHEAD
                      ? (uint32_t)mtu - KITE__V2_DATAGRAM_OVERHEAD
                      : 0;
  return (uint16_t)(room < max_frame ? room : max_frame);
}

static void nonce_of(uint8_t n[KITE__V2_NONCE], uint32_t prefix,
                     const uint8_t accept_nonce[8]) {
  kite__put_le32(n, prefix);
  memcpy(n + 4, accept_nonce, 8);
}

void kite__v2ctl_accept_seal(uint8_t out[KITE__V2CTL_ACCEPT],
                             const uint8_t client_nonce[8],
                             const uint8_t accept_nonce[8],
                             const kite__v2accept *a,
                             const uint8_t s2c_key[KITE__V2_KEY]) {
  uint8_t *p = put_hdr(out, KITE__CTRL_ACCEPT);
  memcpy(p, client_nonce, 8);
  memcpy(p + 8, accept_nonce, 8);
  uint8_t pt[KITE__V2CTL_ACCEPT_BODY], n[KITE__V2_NONCE];
  uint8_t *q = kite__put_le32(pt, a->conv);
  q = kite__put_le16(q, a->mtu);
  q = kite__put_le16(q, a->rcv_wnd);
  q = kite__put_le32(q, a->idle_timeout_ms);
  q = kite__put_le32(q, a->max_frame);
  q = kite__put_le16(q, a->max_unreliable);
  kite__put_le16(q, 0);
  nonce_of(n, KITE__V2_NP_ACCEPT, accept_nonce);
  crypto_aead_chacha20poly1305_ietf_encrypt(out + 24, NULL, pt, sizeof(pt),
                                            out, 24, NULL, n, s2c_key);
}

int kite__v2ctl_accept_open(const uint8_t pkt[KITE__V2CTL_ACCEPT],
                            const uint8_t s2c_key[KITE__V2_KEY],
                            kite__v2accept *out) {
  memset(out, 0, sizeof(*out));
  uint8_t pt[KITE__V2CTL_ACCEPT_BODY], n[KITE__V2_NONCE];
  nonce_of(n, KITE__V2_NP_ACCEPT, pkt + 16);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          pt, NULL, NULL, pkt + 24, KITE__V2CTL_ACCEPT - 24, pkt, 24, n,
          s2c_key) != 0)
    return KITE__V2_EAUTH;
  out->conv = kite__get_le32(pt);
  out->mtu = kite__get_le16(pt + 4);
  out->rcv_wnd = kite__get_le16(pt + 6);
  out->idle_timeout_ms = kite__get_le32(pt + 8);
  out->max_frame = kite__get_le32(pt + 12);
  out->max_unreliable = kite__get_le16(pt + 16);
  out->reserved = kite__get_le16(pt + 18);
  return 0;
}

int kite__v2ctl_accept_check(const kite__v2accept *a, uint16_t client_mtu) {
  if (a->conv == KITE__CTRL_MAGIC || a->mtu < KITE__V2_MTU_MIN ||
      a->mtu > client_mtu || a->rcv_wnd == 0 || a->reserved != 0 ||
      a->max_unreliable != kite__v2_max_unreliable(a->mtu, a->max_frame))
    return KITE__V2_EFORM;
  return 0;
}

void kite__v2ctl_opened_seal(uint8_t out[KITE__V2CTL_OPENED],
                             const uint8_t accept_nonce[8],
                             const kite__v2accept *a,
                             const uint8_t s2c_key[KITE__V2_KEY]) {
  uint8_t *p = put_hdr(out, KITE__CTRL_OPENED);
  memcpy(p, accept_nonce, 8);
  uint8_t pt[KITE__V2CTL_OPENED_BODY], n[KITE__V2_NONCE];
  uint8_t *q = kite__put_le32(pt, a->idle_timeout_ms);
  q = kite__put_le32(q, a->max_frame);
  q = kite__put_le16(q, a->max_unreliable);
  kite__put_le16(q, 0);
  nonce_of(n, KITE__V2_NP_OPENED, accept_nonce);
  crypto_aead_chacha20poly1305_ietf_encrypt(out + 16, NULL, pt, sizeof(pt),
                                            out, 16, NULL, n, s2c_key);
}

int kite__v2ctl_opened_open(const uint8_t pkt[KITE__V2CTL_OPENED],
                            const uint8_t s2c_key[KITE__V2_KEY],
                            kite__v2accept *out) {
  memset(out, 0, sizeof(*out));
  uint8_t pt[KITE__V2CTL_OPENED_BODY], n[KITE__V2_NONCE];
  nonce_of(n, KITE__V2_NP_OPENED, pkt + 8);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(
          pt, NULL, NULL, pkt + 16, KITE__V2CTL_OPENED - 16, pkt, 16, n,
          s2c_key) != 0)
    return KITE__V2_EAUTH;
  out->idle_timeout_ms = kite__get_le32(pt);
  out->max_frame = kite__get_le32(pt + 4);
  out->max_unreliable = kite__get_le16(pt + 8);
  out->reserved = kite__get_le16(pt + 10);
  return 0;
}

void kite__v2_kdf(uint8_t out[KITE__V2_KEY], const uint8_t key[KITE__V2_KEY],
                  const char label[KITE__V2_LABEL_LEN],
                  const uint8_t client_nonce[8],
                  const uint8_t accept_nonce[8]) {
  uint8_t in[KITE__V2_LABEL_LEN + 16];
  memcpy(in, label, KITE__V2_LABEL_LEN);
  memcpy(in + KITE__V2_LABEL_LEN, client_nonce, 8);
  memcpy(in + KITE__V2_LABEL_LEN + 8, accept_nonce, 8);
  crypto_generichash(out, KITE__V2_KEY, in, sizeof(in), key, KITE__V2_KEY);
}

void kite__v2_traffic_keys(kite__v2keys *out,
                           const uint8_t c2s_token_key[KITE__V2_KEY],
                           const uint8_t s2c_token_key[KITE__V2_KEY], bool tcp,
                           const uint8_t client_nonce[8],
                           const uint8_t accept_nonce[8]) {
  static const uint8_t zeros[8];
  const uint8_t *cn = tcp ? zeros : client_nonce;
  kite__v2_kdf(out->c2s, c2s_token_key,
               tcp ? KITE__V2_LABEL_TCP_C2S : KITE__V2_LABEL_UDP_C2S, cn,
               accept_nonce);
  kite__v2_kdf(out->s2c, s2c_token_key,
               tcp ? KITE__V2_LABEL_TCP_S2C : KITE__V2_LABEL_UDP_S2C, cn,
               accept_nonce);
}
