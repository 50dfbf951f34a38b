/* The outsider's game: the bots, one thread and one kite_client each. */
#include <unistd.h>

#include "game.h"

/* ---- the bots ---- */
bot bots[MAXB];
atomic_bool match_over, give_up;
atomic_int stayers_done;
atomic_int bots_open;

static void c_connect(kite_conn *c, void *user) {
  (void)user;
  bot *b = kite_conn_user(c);
  if (c != b->conn) {
    FAIL("bot %d: a second session connected (token reused)", b->idx);
    return;
  }
  b->on_connect++;
  b->open = true;
  b->connected_at = now_ms();
  atomic_fetch_add(&bots_open, 1);
}
static void c_disconnect(kite_conn *c, int reason, void *user) {
  (void)user;
  bot *b = kite_conn_user(c);
  if (c != b->conn) { /* the reuse attempt on the victim's own socket */
    b->reuse_reason = reason;
    b->reuse_disc++;
    return;
  }
  b->on_disconnect++;
  b->reason = reason;
  if (b->open)
    atomic_fetch_sub(&bots_open, 1);
  b->open = false;
  b->conn = NULL;
}
static void c_message(kite_conn *c, uint16_t msg_id, const uint8_t *body,
                      size_t len, void *user) {
  (void)user;
  bot *b = kite_conn_user(c);
  if (msg_id == MSG_SCORE && len == 4) {
    uint32_t s = get32(body);
    if (b->score_next != 0 && s != b->score_next)
      FAIL("bot %d: score event %u, expected %u", b->idx, s, b->score_next);
    b->score_next = s + 1;
    b->scores++;
  } else if (msg_id == MSG_CHAT_ACK && len == 4) {
    if (get32(body) != b->chat_acked)
      b->chat_ack_bad++;
    b->chat_acked++;
  } else if (msg_id == MSG_KICK_WHY) {
    b->kicked_told = true;
  } else if (msg_id == MSG_SNAP) {
    FAIL("bot %d: a snapshot reached on_message", b->idx);
  }
}
static void c_unreliable(kite_conn *c, uint16_t msg_id, unsigned flags,
                         const uint8_t *body, size_t len, void *user) {
  (void)user;
  bot *b = kite_conn_user(c);
  if (msg_id != MSG_SNAP || len < 4)
    return;
  if (!(flags & KITE_UNRELIABLE_SEQUENCED))
    b->unseq++;
  uint32_t t = get32(body);
  if (t <= b->last_tick)
    FAIL("bot %d (%s): snapshot %u after %u", b->idx, b->tcp ? "tcp" : "kcp",
         t, b->last_tick);
  b->last_tick = t;
  b->snaps++;
  if (atomic_load(&relay_moved))
    b->snaps_after_move++;
  if (atomic_load(&spoof_over))
    b->snaps_after_spoof++;
}

void *bot_main(void *arg) {
  bot *b = arg;
  kite_client_config cfg;
  kite_client_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1:0";
  cfg.on_connect = c_connect;
  cfg.on_disconnect = c_disconnect;
  cfg.on_message = c_message;
  cfg.on_unreliable = c_unreliable;
  cfg.log_level = KITE_LOG_WARN;
  if (kite_client_create(&b->cli, &cfg) != 0) {
    FAIL("bot %d: client_create", b->idx);
    return NULL;
  }
  uint64_t wait_end = now_ms() + 10000; /* the thief waits for its victim */
  while (b->kind == REUSE_OTHER && atomic_load(&players[1].connects) == 0 &&
         now_ms() < wait_end)
    usleep(10000);
  int rc = b->tcp ? kite_client_connect_token_tcp(b->cli, b->token, b, &b->conn)
                  : kite_client_connect_token(b->cli, b->token, b, &b->conn);
  if (rc != 0) {
    FAIL("bot %d: connect_token: %s", b->idx, kite_err_name(rc));
    return NULL;
  }
  uint64_t next_move = 0, next_chat = 0;
  bool reused = false, vanished = false;
  int32_t x = 0;
  while ((b->kind == STAY ? !atomic_load(&give_up) : !atomic_load(&match_over)) &&
         b->on_disconnect == 0) {
    if (vanished) { /* the player's phone died: nothing polls the socket */
      usleep(10000);
      continue;
    }
    kite_client_poll(b->cli, 5);
    if (!b->open)
      continue;
    uint64_t t = now_ms();
    if (t >= next_move) {
      uint8_t mv[8];
      x = b->kind == CHEAT && t - b->connected_at > 1000 ? 99999 : (x + 1) % 100;
      put32(mv, (uint32_t)x);
      put32(mv + 4, 0);
      kite_conn_send_unreliable(b->conn, MSG_MOVE, mv, sizeof mv,
                                KITE_UNRELIABLE_SEQUENCED);
      next_move = t + 50;
    }
    if (t >= next_chat && b->kind != CHEAT) {
      uint8_t ch[4];
      put32(ch, b->chat_sent);
      if (kite_conn_send(b->conn, MSG_CHAT, ch, 4) == 0)
        b->chat_sent++;
      next_chat = t + 200;
    }
    if (b->kind == VANISH && t - b->connected_at > 1500)
      vanished = true;
    if (b->kind == FLOOD) {
      static const uint8_t junk[512];
      for (int i = 0; i < 64; i++)
        if (kite_conn_send(b->conn, MSG_SPAM, junk, sizeof junk) == KITE_EFULL) {
          b->flood_full++;
          break;
        }
      for (int i = 0; i < 16; i++) /* and the lane, unpaced */
        kite_conn_send_unreliable(b->conn, MSG_SPAM, junk, 256, 0);
    }
    if (b->kind == OVERSIZE && b->oversize_rc == 0) {
      kite_conn_stats st;
      kite_conn_get_stats(b->conn, &st);
      static uint8_t big[4096];
      b->max_unreliable = st.max_unreliable;
      if (st.max_unreliable == 0 || st.max_unreliable >= sizeof big) {
        FAIL("bot %d: max_unreliable %u", b->idx, st.max_unreliable);
        b->oversize_rc = -100;
      } else {
        b->oversize_rc = kite_conn_send_unreliable(b->conn, MSG_BIG, big,
                                                   st.max_unreliable + 1u, 0);
        b->fit_rc = kite_conn_send_unreliable(b->conn, MSG_BIG, big,
                                              st.max_unreliable, 0);
      }
    }
    if (b->idx <= 1 && !reused && t - b->connected_at > 300) {
      /* A second session from the same socket with the same token. */
      reused = true;
      kite_conn *dup;
      if (b->tcp ? kite_client_connect_token_tcp(b->cli, b->token, b, &dup)
                 : kite_client_connect_token(b->cli, b->token, b, &dup))
        FAIL("bot 0: reuse connect refused locally");
    }
  }
  if (b->open && b->conn)
    kite_conn_close(b->conn);
  uint64_t end = now_ms() + 5000;
  while (!vanished && (b->on_disconnect == 0 || (b->idx <= 1 && b->reuse_disc == 0)) &&
         now_ms() < end)
    kite_client_poll(b->cli, 10);
  kite_client_stats_get(b->cli, &b->stats);
  kite_client_destroy(b->cli);
  if (b->kind == STAY)
    atomic_fetch_add(&stayers_done, 1);
  return NULL;
}

enum kind kind_of(int i) {
  switch (i) {
  case 3: case 11: return VANISH;
  case 5: case 12: return FLOOD;
  case 7: case 14: return OVERSIZE;
  case 9: case 16: return CHEAT;
  case 17: return REUSE_OTHER;
  case 18: return MIGRATE;
  case 19: case 20: return STAY; /* still playing when the server stops */
  default: return NORMAL;
  }
}
