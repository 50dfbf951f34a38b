/*
 * Version 2 over TCP (PROTOCOL-v2.md section 8), inside the TCP transport
 * (client_tcp.c keeps the socket, its reads, writes and deadline):
 *
 *   OPEN v2 (552: the token's expire_ts, nonce, sealed part)  ->
 *                  <-  REJECT (17, of either version): next address
 *                  <-  OPENED v2 (44): opens under the token's s2c key,
 *                      or the connection is closed (next address)
 *
 * then records both ways, each `len u16 | ciphertext | tag` under the TCP
 * traffic key of its direction, numbered from 0; their plaintexts are
 * v1's stream of frames. The first record out is the ping that opens the
 * session on the server. A record that does not verify, or a len of 0 or
 * over 16384, ends the session at once (KITE_CLOSE_PROTOCOL), nothing
 * more sent; our close sends the CLOSE frame (msg_id 0xFF01, the reason)
 * in a record before the FIN; an end of stream without the server's CLOSE
 * frame is reason 5 (client_tcp.c).
 *
 * Frames out are sealed into cli->v2rec (one buffer for every session: a
 * record is written, or queued by kite__tcp_out, before the next is
 * sealed), 16384 plaintext bytes a record at most.
 */
#include "client/client_internal.h"

#include "kite/error.h"

#include <string.h>

void kite__cli_v2tcp_send_open(kite_conn *conn) {
  kite__cli_v2 *v2 = conn->v2;
  kite__v2ctl k;
  memset(&k, 0, sizeof(k));
  k.type = KITE__CTRL_OPEN;
  k.expire_ts = v2->tok.expire_ts;
  k.token_nonce = v2->tok.nonce;
  k.sealed = v2->tok.sealed;
  uint8_t open[KITE__V2CTL_MAX];
  int n = kite__v2ctl_encode(open, sizeof(open), &k);
  if (n < 0)
    return; /* our own packet always encodes */
  struct iovec v = {open, (size_t)n};
  /* A refusal is handled inside: the connection broke (next address). */
  (void)kite__cli_tcp_send_raw(conn, &v, 1);
}

size_t kite__cli_v2tcp_reply_size(const kite_conn *conn) {
  const uint8_t *h = conn->reply;
  if (!kite__ctrl_is_control(h, KITE__CTRL_HDR))
    return KITE__CTRL_HDR;
  if (h[5] == KITE__V2_VERSION && (h[4] == KITE__CTRL_OPENED ||
                                   h[4] == KITE__CTRL_REJECT))
    return kite__v2ctl_size(h[4]);
  if (h[4] == KITE__CTRL_REJECT) /* another version's: its reason at 16 */
    return KITE__CTRL_HDR + KITE__CTRL_NONCE + 1;
  return KITE__CTRL_HDR;
}

void kite__cli_v2tcp_on_reply(kite_conn *conn) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  const uint8_t *r = conn->reply;
  if (conn->reply_have == KITE__CTRL_HDR + KITE__CTRL_NONCE + 1 &&
      kite__ctrl_is_control(r, KITE__CTRL_HDR) && r[4] == KITE__CTRL_REJECT) {
    kite__logf(&cli->log, KITE_LOG_DEBUG, "v2 tcp: REJECT %u (%s)", r[16],
               kite_client_reason_name(KITE_CONNECT_REJECTED(r[16])));
    cli->stats.rejected++;
    kite__cli_v2_attempt_failed(conn, KITE_CONNECT_REJECTED(r[16]));
    return;
  }
  kite__v2ctl k;
  kite__v2accept a;
  if (conn->reply_have != KITE__V2CTL_OPENED ||
      kite__v2ctl_decode(r, conn->reply_have, &k) < 0 ||
      k.type != KITE__CTRL_OPENED) {
    cli->stats.drop_control++;
    kite__logf(&cli->log, KITE_LOG_DEBUG,
               "v2 tcp: reply is neither OPENED nor REJECT");
    kite__cli_v2_attempt_failed(conn, KITE_CLOSE_PROTOCOL);
    return;
  }
  if (kite__v2ctl_opened_open(r, v2->tok.s2c_key, &a) < 0) {
    /* Not from a holder of the private key: close (section 8). */
    cli->stats.v2_accept_bad++;
    kite__logf(&cli->log, KITE_LOG_DEBUG, "v2 tcp: OPENED does not open");
    kite__cli_v2_attempt_failed(conn, KITE_CLOSE_PROTOCOL);
    return;
  }
  kite__v2_traffic_keys(&v2->keys, v2->tok.c2s_key, v2->tok.s2c_key, true,
                        NULL, k.accept_nonce);
  kite__cli_v2_drop_token(conn);
  if (kite__v2rec_reader_init(&v2->rd, v2->keys.s2c) < 0) {
    kite__cli_conn_close(conn, KITE_CLIENT_NOMEM, -1);
    return;
  }
  v2->rd_live = true;
  v2->max_unreliable = a.max_unreliable;
  v2->pn.next = 0;
  kite__cli_frames_opened(conn, a.idle_timeout_ms, a.max_frame);
  kite__cli_touch(conn); /* the safe point re-arms the timer for pings */
}

void kite__cli_v2tcp_feed(kite_conn *conn, const uint8_t *p, size_t n) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  while (n > 0 && conn->state == KITE__CONN_OPEN) {
    const uint8_t *pt;
    size_t pt_len;
    /* A record whole in |p| is opened from it into the reader's buffer,
     * sized to the largest record seen: no copy of the ciphertext. */
    ptrdiff_t used = kite__v2rec_read(&v2->rd, p, n, &pt, &pt_len);
    if (used == KITE_ENOMEM) {
      kite__cli_conn_close(conn, KITE_CLIENT_NOMEM, -1);
      return;
    }
    if (used < 0) {
      if (used == KITE__V2_EAUTH)
        cli->stats.v2_drop_auth++;
      kite__logf(&cli->log, KITE_LOG_DEBUG, "v2 tcp: bad record: %s",
                 kite__v2_strerror((int)used));
      /* At once, sending nothing more (section 8). */
      v2->done = true;
      kite__cli_conn_close(conn, KITE_CLOSE_PROTOCOL, -1);
      return;
    }
    p += used;
    n -= (size_t)used;
    if (pt && pt_len)
      kite__cli_frames_feed(conn, pt, pt_len);
  }
}

/* Seals |len| bytes at cli->v2rec + 2 as the next record and writes it.
 * 0, or a kite__cli_tcp_send_raw() code. */
static int put_record(kite_conn *conn, size_t len, uint64_t rn) {
  kite_client *cli = conn->cli;
  uint8_t *buf = cli->v2rec;
  int n = kite__v2rec_seal(buf, KITE__V2REC_OVERHEAD + KITE__V2REC_MAX, rn,
                           conn->v2->keys.c2s, buf + KITE__V2REC_HDR, len);
  if (n < 0)
    return KITE_ESTATE;
  struct iovec v = {buf, (size_t)n};
  return kite__cli_tcp_send_raw(conn, &v, 1);
}

/* The CLOSE frame with |reason| as record |rn|, the last. */
static void close_record(kite_conn *conn, uint8_t reason, uint64_t rn) {
  uint8_t *pt = conn->cli->v2rec + KITE__V2REC_HDR;
  kite__frame_header(pt, KITE__MSG_CLOSE_NOTICE, 0, &reason, 1,
                     conn->cli->cfg.crc);
  pt[KITE__FRAME_HDR] = reason;
  (void)put_record(conn, KITE__FRAME_HDR + 1, rn);
  conn->v2->done = true;
}

int kite__cli_v2tcp_send(kite_conn *conn, const struct iovec *iov, int n) {
  kite_client *cli = conn->cli;
  kite__cli_v2 *v2 = conn->v2;
  if (v2->done || conn->state == KITE__CONN_CLOSED)
    return KITE_ESTATE;
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  size_t records = (total + KITE__V2REC_MAX - 1) / KITE__V2REC_MAX;
  size_t sealed = total + records * KITE__V2REC_OVERHEAD;
  if (sealed > conn->out.max)
    return KITE_EMSGSIZE; /* no drained buffer would ever take it */
  /* The frame goes whole or not at all: what the queue holds now plus
   * all of it must fit, so no record after the first is refused. */
  if (kite__tcp_out_pending(&conn->out) + sealed > conn->out.max)
    return KITE_EFULL;
  int i = 0;
  size_t off = 0; /* into iov[i] */
  while (total > 0) {
    size_t len = total < KITE__V2REC_MAX ? total : KITE__V2REC_MAX;
    uint8_t *pt = cli->v2rec + KITE__V2REC_HDR;
    for (size_t got = 0; got < len;) {
      size_t take = iov[i].iov_len - off;
      if (take > len - got)
        take = len - got;
      memcpy(pt + got, (const uint8_t *)iov[i].iov_base + off, take);
      got += take;
      off += take;
      if (off == iov[i].iov_len) {
        i++;
        off = 0;
      }
    }
    uint64_t rn;
    int st = kite__v2pn_take(&v2->pn, &rn);
    if (st == KITE__V2PN_CLOSING) {
      /* Section 9: this record holds the CLOSE frame and is the last. */
      kite__logf(&cli->log, KITE_LOG_INFO,
                 "v2 tcp: record numbers exhausted, closing");
      close_record(conn, KITE__CLOSE_KEY_EXHAUSTED, rn);
      conn->stream_cut = true;
      kite__cli_conn_close(conn, KITE__CLOSE_KEY_EXHAUSTED, -1);
      return KITE_ESTATE;
    }
    if (st < 0)
      return KITE_ESTATE;
    int rc = put_record(conn, len, rn);
    if (rc < 0)
      return rc;
    total -= len;
  }
  return 0;
}

void kite__cli_v2tcp_send_close(kite_conn *conn, uint8_t reason) {
  kite__cli_v2 *v2 = conn->v2;
  if (v2->done || conn->fd < 0 || conn->stream_cut || !conn->cli->v2rec)
    return;
  uint64_t rn;
  if (kite__v2pn_take(&v2->pn, &rn) < 0)
    return;
  close_record(conn, reason, rn);
}
