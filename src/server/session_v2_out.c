/*
 * What a version-2 UDP session sends (PROTOCOL-v2.md sections 4, 5, 9):
 * items sealed in place in the shard's send batch, no allocation and no
 * copy but the item's value; CLOSE; the key limit. And address changes
 * (section 7): the peer address moves with datagrams that verify and raise
 * top, the new one is challenged, held to fewer bytes than it sent until
 * it answers, and given up for the validated one after 2 s.
 */
#include "server/server_internal.h"
#include "server/session_v2.h"

#include "base/time.h"
#include "proto/v2item.h"

#include <sodium.h>
#include <string.h>

uint8_t *kite__v2_out_begin(kite__session *s, size_t *room) {
  uint8_t *slot = kite__udp_tx_slot(s->shard->tx);
  size_t mtu = s->mtu < KITE__UDP_DGRAM_MAX ? s->mtu : KITE__UDP_DGRAM_MAX;
  *room = mtu - KITE__V2PKT_OVERHEAD;
  return slot + KITE__V2PKT_HDR;
}

/* Whether |bytes| more may go to the unvalidated peer (section 7): what it
 * is sent stays under what it sent since the move. */
static bool allowed(const kite__v2path *p, size_t bytes) {
  return p->tx_bytes + bytes < p->rx_bytes;
}

static bool out_end(kite__session *s, const kite__addr *to, size_t len,
                    bool limited) {
  kite__shard *sh = s->shard;
  kite__v2sess *v = kite__v2_of(s);
  uint8_t *items = kite__udp_tx_slot(sh->tx) + KITE__V2PKT_HDR;
  size_t room = (s->mtu < KITE__UDP_DGRAM_MAX ? s->mtu : KITE__UDP_DGRAM_MAX) -
                KITE__V2PKT_OVERHEAD;
  if (limited && !allowed(&v->path, len + KITE__V2PKT_OVERHEAD +
                                        KITE__V2ITEM_HDR + 1)) {
    KITE__STAT_INC(sh, v2_amplification_held);
    return false;
  }
  uint64_t pn;
  int st = kite__v2pn_take(&v->pn, &pn);
  if (st < 0)
    return false; /* no number left: the session is closing */
  if (st == KITE__V2PN_CLOSING) {
    /* The last three numbers carry CLOSE 7 (section 9). */
    int c = kite__v2item_put_close(items + len, room - len,
                                   KITE__CLOSE_KEY_EXHAUSTED);
    if (c > 0)
      len += (size_t)c;
    v->key_done = true;
  }
  int n = kite__v2pkt_seal(items - KITE__V2PKT_HDR,
                           KITE__UDP_DGRAM_MAX, s->conv, pn, v->keys.s2c,
                           items, len);
  if (n < 0)
    return false;
  if (limited)
    v->path.tx_bytes += (uint64_t)n;
  kite__udp_tx_commit(sh->tx, to, &s->local, (size_t)n);
  return true;
}

bool kite__v2_out_end(kite__session *s, const kite__addr *to, size_t len) {
  kite__v2sess *v = kite__v2_of(s);
  bool limited = v->path.validating && kite__addr_equal(to, &s->peer);
  return out_end(s, to, len, limited);
}

bool kite__v2_send_item(kite__session *s, uint8_t type, const void *value,
                        size_t len) {
  size_t room;
  uint8_t *out = kite__v2_out_begin(s, &room);
  int n = kite__v2item_put(out, room, type, value, len);
  if (n < 0)
    return false;
  return kite__v2_out_end(s, &s->peer, (size_t)n);
}

void kite__v2_send_close(kite__session *s, uint8_t reason) {
  /* No acknowledgement exists for CLOSE: three copies (section 5). */
  for (int i = 0; i < 3; i++) {
    size_t room;
    uint8_t *out = kite__v2_out_begin(s, &room);
    int n = kite__v2item_put_close(out, room, reason);
    if (n < 0 || !kite__v2_out_end(s, &s->peer, (size_t)n))
      return;
  }
}

/* One PATH_CHALLENGE with |data| to |to|; |limited| as out_end's. */
static bool challenge(kite__session *s, const kite__addr *to,
                      const uint8_t data[KITE__V2_PATH_DATA], bool limited) {
  size_t room;
  uint8_t *out = kite__v2_out_begin(s, &room);
  int n = kite__v2item_put_path(out, room, KITE__V2ITEM_PATH_CHALLENGE, data);
  if (n < 0 || !out_end(s, to, (size_t)n, limited))
    return false;
  KITE__STAT_INC(s->shard, v2_path_challenges);
  return true;
}

/* The challenge to the peer, now or when its allowance permits. */
static void challenge_peer(kite__session *s) {
  kite__v2path *p = &kite__v2_of(s)->path;
  if (p->sent >= KITE__V2_PATH_TRIES)
    return;
  p->challenge_due = !challenge(s, &s->peer, p->data, true);
  if (!p->challenge_due)
    p->sent++;
}

static void set_peer(kite__session *s, const kite__addr *to) {
  kite__session_pub_lock(s);
  s->peer = *to;
  kite__session_pub_unlock(s);
}

void kite__v2_path_seen(kite__session *s, const kite__addr *from,
                        size_t bytes, bool raised) {
  kite__shard *sh = s->shard;
  kite__v2path *p = &kite__v2_of(s)->path;
  if (kite__addr_equal(from, &s->peer)) {
    if (p->validating) {
      p->rx_bytes += bytes;
      if (p->challenge_due)
        challenge_peer(s); /* more bytes arrived: it may fit now */
    }
    return;
  }
  if (!raised || s->state == KITE__S_HALF_OPEN)
    return; /* processed, moves nothing (late, or a copy) */
  KITE__STAT_INC(sh, v2_migrations);
  set_peer(s, from);
  if (kite__addr_equal(from, &p->validated)) {
    /* Back home: no limit, and the validation under way is abandoned. */
    p->validating = false;
    p->challenge_due = false;
    return;
  }
  /* A new address: challenged at once and every 250 ms, 8 at most; the
   * validated one gets one challenge of its own, so that a client whose
   * datagram was copied answers at once from where it really is. */
  p->validating = true;
  p->moved_ms = sh->now;
  p->next_ms = sh->now + KITE__V2_PATH_EVERY_MS;
  p->rx_bytes = bytes;
  p->tx_bytes = 0;
  p->sent = 0;
  randombytes_buf(p->data, sizeof(p->data));
  randombytes_buf(p->data_old, sizeof(p->data_old));
  challenge_peer(s);
  challenge(s, &p->validated, p->data_old, false);
  kite__session_mark_dirty(s); /* rescheduled at the flush: the path's due */
}

void kite__v2_path_response(kite__session *s, const kite__addr *from,
                            const uint8_t data[KITE__V2_PATH_DATA]) {
  kite__v2path *p = &kite__v2_of(s)->path;
  if (!p->validating || !kite__addr_equal(from, &s->peer) ||
      sodium_memcmp(data, p->data, KITE__V2_PATH_DATA) != 0)
    return; /* an old challenge's, or from elsewhere: nothing to do */
  p->validated = s->peer;
  p->validating = false;
  p->challenge_due = false;
  KITE__STAT_INC(s->shard, v2_path_validated);
  kite__session_mark_dirty(s); /* what was held back may go now */
}

bool kite__v2_path_due(const kite__session *s, uint32_t *due_ms) {
  const kite__v2path *p = &kite__v2_of(s)->path;
  if (!p->validating)
    return false;
  uint32_t fallback = p->moved_ms + KITE__V2_PATH_WAIT_MS;
  *due_ms = p->sent < KITE__V2_PATH_TRIES && !p->challenge_due
                ? kite__ms_min(p->next_ms, fallback)
                : fallback;
  return true;
}

void kite__v2_path_timer(kite__session *s, uint32_t now_ms) {
  kite__v2path *p = &kite__v2_of(s)->path;
  if (!p->validating)
    return;
  if (kite__ms_reached(now_ms, p->moved_ms + KITE__V2_PATH_WAIT_MS)) {
    /* No answer within 2 s: the peer returns to the validated address. */
    set_peer(s, &p->validated);
    p->validating = false;
    p->challenge_due = false;
    KITE__STAT_INC(s->shard, v2_path_fallbacks);
    kite__session_mark_dirty(s);
    return;
  }
  if (kite__ms_reached(now_ms, p->next_ms) && !p->challenge_due) {
    p->next_ms = now_ms + KITE__V2_PATH_EVERY_MS;
    challenge_peer(s);
  }
}
