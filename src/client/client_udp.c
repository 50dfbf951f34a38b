/*
 * The client's UDP socket, shared by every KCP session: datagrams read in
 * batches and routed (PROTOCOL.md section 1): control packets by their
 * type, handshake replies to their session by our nonce, segments and
 * CLOSE by (conv, server address); and control packets queued out.
 */
#include "client/client_internal.h"

#include "kcp/kcp_codec.h"
#include "kite/error.h"

#include <errno.h>
#include <string.h>

/* recvmmsg batches per poll: bounds the time one poll spends receiving
 * (1,024 datagrams) so timers and sends are never starved by a flood. */
#define KITE__CLIENT_RX_BATCHES 16

void kite__cli_udp_send_ctrl(kite_conn *conn, const kite__ctrl *k, int copies) {
  uint8_t buf[KITE__CTRL_MAX];
  int n = kite__ctrl_encode(buf, sizeof(buf), k);
  if (n < 0)
    return; /* our own packets always encode: a bug, not a condition */
  for (int i = 0; i < copies; i++)
    kite__udp_tx_add(conn->cli->tx, &conn->server, NULL, buf, (size_t)n);
}

/* splitmix64's finalizer: the map indexes by the key's low bits, and a
 * server may use a conv's low byte to route (its shard), so mix first. */
static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

uint64_t kite__cli_conv_key(uint32_t conv, const kite__addr *server) {
  /* FNV-1a over the address and port, then the conv in the high half: a
   * collision of two live (conv, address) pairs needs a 64-bit one, and
   * the lookup checks both anyway. */
  uint64_t h = 0xcbf29ce484222325ull;
  const uint8_t *p;
  size_t n;
  if (server->sa.sa_family == AF_INET6) {
    p = (const uint8_t *)&server->v6.sin6_addr;
    n = 16;
  } else {
    p = (const uint8_t *)&server->v4.sin_addr;
    n = 4;
  }
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  h = (h ^ kite__addr_port(server)) * 0x100000001b3ull;
  return mix64(h ^ ((uint64_t)conv << 32) ^ conv);
}

/* A session found by nonce must also be talking to the sender. */
static kite_conn *by_nonce(kite_client *c, const kite__ctrl *k,
                           const kite__addr *from) {
  uint64_t key;
  uint32_t slot;
  memcpy(&key, k->nonce, sizeof(key));
  if (!kite__map_get(&c->by_nonce, key, &slot)) {
    c->stats.drop_unknown++;
    return NULL;
  }
  kite_conn *conn = kite__cli_conn_at(c, slot);
  if (!kite__addr_equal(&conn->server, from)) {
    c->stats.drop_wrong_addr++;
    return NULL;
  }
  return conn;
}

static kite_conn *by_conv(kite_client *c, uint32_t conv,
                          const kite__addr *from) {
  uint32_t slot;
  if (!kite__map_get(&c->by_conv, kite__cli_conv_key(conv, from), &slot)) {
    c->stats.drop_unknown++;
    return NULL;
  }
  kite_conn *conn = kite__cli_conn_at(c, slot);
  if (conn->conv != conv || !kite__addr_equal(&conn->server, from)) {
    c->stats.drop_unknown++; /* a 64-bit key collision: not ours */
    return NULL;
  }
  return conn;
}

/* PROTOCOL.md section 2: handshake replies are routed by our nonce, CLOSE
 * by conv; requests (HELLO, CONNECT) and TCP's OPEN/OPENED have no place
 * here. */
static void on_control(kite_client *c, const uint8_t *p, size_t len,
                       const kite__addr *from) {
  /* Version 2 sessions read their replies themselves, of either version
   * (a REJECT of any version ends an attempt) and from any address they
   * tried (an ACCEPT from an earlier one still wins): the nonce, at 8 in
   * both versions, says whose. */
  if (len >= KITE__CTRL_HDR + KITE__CTRL_NONCE &&
      (p[4] == KITE__CTRL_CHALLENGE || p[4] == KITE__CTRL_ACCEPT ||
       p[4] == KITE__CTRL_REJECT)) {
    uint64_t key;
    uint32_t slot;
    memcpy(&key, p + KITE__CTRL_HDR, sizeof(key));
    if (kite__map_get(&c->by_nonce, key, &slot) &&
        kite__cli_conn_at(c, slot)->v2) {
      kite__cli_v2_on_ctrl(kite__cli_conn_at(c, slot), p, len, from);
      return;
    }
  }
  kite__ctrl k;
  int rc = kite__ctrl_decode(p, len, &k);
  bool version_reject = false;
  if (rc == KITE__CTRL_EVERSION && k.type == KITE__CTRL_REJECT &&
      len >= KITE__CTRL_HDR + KITE__CTRL_NONCE) {
    /* A server of another version says so in its own header, with our
     * nonce where version 1 puts it (control.h, EVERSION). */
    version_reject = true;
  } else if (rc < 0) {
    c->stats.drop_control++;
    return;
  }
  kite_conn *conn;
  switch (k.type) {
  case KITE__CTRL_CHALLENGE:
  case KITE__CTRL_ACCEPT:
  case KITE__CTRL_REJECT:
    if ((conn = by_nonce(c, &k, from)))
      kite__cli_hs_on_packet(conn, &k, version_reject);
    return;
  case KITE__CTRL_CLOSE:
    if ((conn = by_conv(c, k.conv, from))) {
      if (conn->v2)
        c->stats.drop_close++; /* v2 closes only inside datagrams */
      else
        kite__cli_kcp_on_close(conn, &k);
    }
    return;
  default:
    c->stats.drop_control++;
    return;
  }
}

static void on_datagram(kite_client *c, const uint8_t *p, size_t len,
                        const kite__addr *from) {
  c->stats.dgrams_in++;
  c->stats.bytes_in += len;
  if (kite__ctrl_is_control(p, len)) {
    on_control(c, p, len, from);
    return;
  }
  if (len < KITE_KCP_OVERHEAD) {
    c->stats.drop_short++;
    return;
  }
  kite_conn *conn = by_conv(c, kite__kcp_peek_conv(p), from);
  if (conn)
    conn->tp->input(conn, p, len);
}

int kite__cli_udp_receive(kite_client *c) {
  kite__udp_rx *rx = c->rx;
  for (int b = 0; b < KITE__CLIENT_RX_BATCHES; b++) {
    int err = 0;
    int n = kite__udp_recv(c->fd, rx, &err);
    if (n < 0) {
      kite__logf(&c->log, KITE_LOG_ERROR, "recvmmsg() failed: %s",
                 strerror(err));
      return KITE_ESYS;
    }
    for (int i = 0; i < n; i++) {
      if (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        c->stats.dgrams_in++;
        c->stats.drop_truncated++;
        continue;
      }
      on_datagram(c, rx->buf[i], rx->msgs[i].msg_len, &rx->from[i]);
    }
    kite__cli_service_touched(c);
    if (n < KITE__UDP_BATCH)
      break;
  }
  return 0;
}
