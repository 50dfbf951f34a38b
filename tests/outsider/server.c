/* The outsider's game: the backend (tokens), the server's callbacks and
 * handlers, the match clock. */
#include <stdio.h>
#include <string.h>

#include "game.h"

const char *const kind_name[] = {"normal", "vanish", "flood", "oversize",
                                 "cheat", "reuse-other", "migrate", "stay"};
atomic_int failures;

/* ---- the backend ---- */
uint8_t key[KITE_TOKEN_KEY_BYTES];
int mint(uint8_t tok[KITE_TOKEN_BYTES], uint64_t cid, const char *addr) {
  char name[32];
  snprintf(name, sizeof name, "bot%llu", (unsigned long long)cid);
  const char *addrs[] = {addr};
  kite_token_params p = {.protocol_id = PROTO, .client_id = cid, .ttl_s = 60,
                         .addrs = addrs, .naddrs = 1, .user_data = name,
                         .user_data_len = strlen(name)};
  return kite_token_mint(tok, key, &p);
}

/* ---- the server ---- */
player players[MAXB + 8];
kite_group *match;
atomic_int srv_connected;

static player *me(kite_server *srv, kite_session_id id) {
  return kite_session_user(srv, id);
}

void on_connect(kite_server *srv, kite_session_id id, void *user) {
  (void)user;
  kite_session_info info;
  if (kite_session_get_info(srv, id, &info) != 0) {
    FAIL("on_connect: get_info failed");
    return;
  }
  char want[32];
  snprintf(want, sizeof want, "bot%llu", (unsigned long long)info.client_id);
  if (info.version != 2 || info.client_id >= MAXB + 8 ||
      strcmp((const char *)info.user_data, want) != 0) {
    FAIL("on_connect: version %d client_id %llu user_data '%.32s'",
         info.version, (unsigned long long)info.client_id,
         (const char *)info.user_data);
    return;
  }
  player *p = &players[info.client_id];
  atomic_fetch_add(&p->connects, 1);
  atomic_store(&p->transport, info.transport);
  kite_session_set_user(srv, id, p);
  /* A snapshot too big for one datagram is refused, never truncated. */
  static uint8_t huge[4096];
  atomic_store(&p->huge_rc,
               kite_session_send_unreliable(srv, id, MSG_SNAP, huge, sizeof huge,
                                            KITE_UNRELIABLE_SEQUENCED));
  /* Hash mode: the players share the match clock's worker. */
  int rc = kite_session_set_affinity(srv, id, MATCH_KEY);
  if (rc != 0 && rc != KITE_ESTATE)
    FAIL("set_affinity: %s", kite_err_name(rc));
  if (kite_group_join(match, id) == 0)
    atomic_fetch_add(&srv_connected, 1);
}

void on_disconnect(kite_server *srv, kite_session_id id, int reason,
                          void *user) {
  (void)user;
  player *p = me(srv, id);
  if (p == NULL)
    return; /* refused in on_connect */
  atomic_store(&p->reason, reason);
  atomic_fetch_add(&p->disconnects, 1);
  atomic_fetch_sub(&srv_connected, 1);
}

void h_move(const kite_request *req) {
  player *p = req->session_user;
  if (p == NULL || req->len != 8)
    return;
  int32_t x = (int32_t)get32(req->body);
  if (x > 1000 || x < -1000) { /* teleport: tell it why, then kick */
    static const char why[] = "speed hack";
    if (kite_reply(req, MSG_KICK_WHY, why, sizeof why) != 0)
      FAIL("kick reply refused");
    if (kite_session_close(req->srv, req->session) != 0)
      FAIL("kick refused");
    return;
  }
  atomic_fetch_add(&p->moves, 1);
  if (req->flags & KITE_REQ_SEQUENCED)
    atomic_fetch_add(&p->moves_seq, 1);
}

void h_chat(const kite_request *req) {
  player *p = req->session_user;
  if (p == NULL || req->len != 4 || (req->flags & KITE_REQ_UNRELIABLE))
    return;
  uint32_t seq = get32(req->body);
  if (seq != p->chat_next)
    FAIL("chat %u arrived, expected %u", seq, p->chat_next);
  p->chat_next = seq + 1;
  atomic_fetch_add(&p->chats, 1);
  int rc = kite_reply(req, MSG_CHAT_ACK, req->body, 4);
  if (rc != 0 && rc != KITE_ECLOSED)
    FAIL("chat ack: %s", kite_err_name(rc));
}

void h_spam(const kite_request *req) {
  player *p = req->session_user;
  if (p)
    atomic_fetch_add(&p->spam, 1);
}

void h_big(const kite_request *req) {
  player *p = req->session_user;
  if (p && (req->flags & KITE_REQ_UNRELIABLE))
    atomic_fetch_add(&p->big, 1);
}

/* The match's clock: 20 Hz snapshots on the lane, a score event every
 * fifth tick on the stream. A repeating game timer on a clock key, so one
 * executor runs it in every mode (kite/timer.h). */
atomic_uint ticks, score_seq;
static uint8_t snap[4 + 8 * MAXB]; /* owner: the match's executor */
void tick(kite_server *srv, kite_timer_id id, void *user) {
  (void)srv, (void)id, (void)user;
  uint32_t t = atomic_fetch_add(&ticks, 1) + 1;
  put32(snap, t);
  memset(snap + 4, (int)t, sizeof snap - 4);
  int rc = kite_group_broadcast_unreliable(match, MSG_SNAP, snap, sizeof snap,
                                           KITE_UNRELIABLE_SEQUENCED);
  if (rc < 0)
    FAIL("snapshot broadcast: %s", kite_err_name(rc));
  if (t % 5 == 0) {
    uint8_t ev[4];
    put32(ev, atomic_fetch_add(&score_seq, 1) + 1);
    rc = kite_group_broadcast(match, MSG_SCORE, ev, sizeof ev);
    if (rc < 0)
      FAIL("score broadcast: %s", kite_err_name(rc));
  }
}
