/* The outsider's game (game.c): what its parts share. */
#ifndef OUTSIDER_GAME_H
#define OUTSIDER_GAME_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <kite/kite.h>

enum { MSG_MOVE = 1, MSG_CHAT = 2, MSG_CHAT_ACK = 3, MSG_SNAP = 4,
       MSG_SCORE = 5, MSG_KICK_WHY = 6, MSG_SPAM = 7, MSG_BIG = 8 };
enum { MAXB = 64 };
enum kind { NORMAL, VANISH, FLOOD, OVERSIZE, CHEAT, REUSE_OTHER, MIGRATE, STAY };
extern const char *const kind_name[];
#define PROTO 0x4f555453u /* "OUTS" */
#define MATCH_KEY KITE_TIMER_CLOCK_KEY(1) /* the match clock's executor */

extern atomic_int failures; /* counted on any thread, asserted on the test thread */
#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); \
                       fputc('\n', stderr); atomic_fetch_add(&failures, 1); } while (0)

static inline uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
static inline void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* server.c: the backend, the server's callbacks, the match clock. */
/* Per player, indexed by client_id. Written by the session's executor
 * (one at a time per session); read by the test thread after stop. */
typedef struct player {
  atomic_int connects, disconnects, reason;
  atomic_int transport;
  atomic_uint moves, moves_seq, spam, big, chats;
  atomic_int huge_rc; /* kite_session_send_unreliable() of 4096 bytes */
  uint32_t chat_next; /* owner: the session's executor */
} player;
extern player players[MAXB + 8];
extern kite_group *match;
extern atomic_int srv_connected; /* sessions now in the match */
extern atomic_uint ticks, score_seq;
extern uint8_t key[KITE_TOKEN_KEY_BYTES];
int mint(uint8_t tok[KITE_TOKEN_BYTES], uint64_t cid, const char *addr);
void on_connect(kite_server *srv, kite_session_id id, void *user);
void on_disconnect(kite_server *srv, kite_session_id id, int reason, void *user);
void h_move(const kite_request *req);
void h_chat(const kite_request *req);
void h_spam(const kite_request *req);
void h_big(const kite_request *req);
void tick(kite_server *srv, kite_timer_id id, void *user);

/* relay.c: a second address for one bot, and an attacker beside it. */
extern int relay_fd, relay_up[3];
extern atomic_bool relay_spoof, relay_run, relay_moved, spoof_over;
extern atomic_uint relay_spoofed, relay_after_move;
extern struct sockaddr_in relay_server;
int udp_bind(void);
int udp_port(int fd);
void *relay(void *arg);

/* bots.c: the players. */
typedef struct bot {
  int idx;
  enum kind kind;
  bool tcp;
  uint8_t token[KITE_TOKEN_BYTES];
  kite_client *cli;
  kite_conn *conn;
  /* Below: owned by the bot's thread; read by the test thread after join. */
  int on_connect, on_disconnect, reason, reuse_reason, reuse_disc;
  bool open, kicked_told;
  uint32_t last_tick, snaps, snaps_after_move, snaps_after_spoof, score_next, scores;
  uint32_t chat_sent, chat_acked, chat_ack_bad, unseq;
  int oversize_rc, fit_rc, flood_full;
  unsigned max_unreliable;
  uint64_t connected_at;
  kite_client_stats stats;
} bot;
extern bot bots[MAXB];
extern atomic_bool match_over, give_up;
extern atomic_int stayers_done, bots_open;
void *bot_main(void *arg);
enum kind kind_of(int i);

#endif
