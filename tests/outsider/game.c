/*
 * An outsider's game on kite, written from README.md, docs/ and
 * include/kite/ alone: a backend mints connect tokens, bots connect by
 * token over KCP and TCP, join one match (a group), move on the unreliable
 * lane; the server sends 20 Hz sequenced snapshots on the lane and score
 * events reliably, acknowledges chat reliably, kicks a cheater after
 * telling it why. Some bots vanish, flood, send oversize lane messages,
 * reuse another's token, or move to a second address (through a relay
 * that rebinds). Checks: callbacks exactly once, reasons, client_id and
 * user_data in on_connect, snapshots never backwards, events exactly once
 * in order, the counters.
 *
 * Usage: outsider_game hash|bind [bots] [match_ms]
 * One process, threads only: the server, a ticker, a relay, one thread per
 * bot. Failures on other threads are counted; the test thread asserts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <kite/kite.h>

enum { MSG_MOVE = 1, MSG_CHAT = 2, MSG_CHAT_ACK = 3, MSG_SNAP = 4,
       MSG_SCORE = 5, MSG_KICK_WHY = 6, MSG_SPAM = 7, MSG_BIG = 8 };
enum { MAXB = 64 };
enum kind { NORMAL, VANISH, FLOOD, OVERSIZE, CHEAT, REUSE_OTHER, MIGRATE, STAY };
static const char *kind_name[] = {"normal", "vanish", "flood", "oversize",
                                  "cheat", "reuse-other", "migrate", "stay"};
#define PROTO 0x4f555453u /* "OUTS" */
#define MATCH_KEY KITE_TIMER_CLOCK_KEY(1) /* the match clock's executor */

static atomic_int failures;
#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); \
                       fputc('\n', stderr); atomic_fetch_add(&failures, 1); } while (0)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* ---- the backend ---- */
static uint8_t key[KITE_TOKEN_KEY_BYTES];
static int mint(uint8_t tok[KITE_TOKEN_BYTES], uint64_t cid, const char *addr) {
  char name[32];
  snprintf(name, sizeof name, "bot%llu", (unsigned long long)cid);
  const char *addrs[] = {addr};
  kite_token_params p = {.protocol_id = PROTO, .client_id = cid, .ttl_s = 60,
                         .addrs = addrs, .naddrs = 1, .user_data = name,
                         .user_data_len = strlen(name)};
  return kite_token_mint(tok, key, &p);
}

/* ---- the server ---- */
/* Per player, indexed by client_id. Written by the session's executor
 * (one at a time per session); read by the test thread after stop. */
typedef struct player {
  atomic_int connects, disconnects, reason;
  atomic_int transport;
  atomic_uint moves, moves_seq, spam, big, chats;
  atomic_int huge_rc; /* kite_session_send_unreliable() of 4096 bytes */
  uint32_t chat_next; /* owner: the session's executor */
} player;
static player players[MAXB + 8];
static kite_group *match;
static atomic_int srv_connected; /* sessions now in the match */

static player *me(kite_server *srv, kite_session_id id) {
  return kite_session_user(srv, id);
}

static void on_connect(kite_server *srv, kite_session_id id, void *user) {
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

static void on_disconnect(kite_server *srv, kite_session_id id, int reason,
                          void *user) {
  (void)user;
  player *p = me(srv, id);
  if (p == NULL)
    return; /* refused in on_connect */
  atomic_store(&p->reason, reason);
  atomic_fetch_add(&p->disconnects, 1);
  atomic_fetch_sub(&srv_connected, 1);
}

static void h_move(const kite_request *req) {
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

static void h_chat(const kite_request *req) {
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

static void h_spam(const kite_request *req) {
  player *p = req->session_user;
  if (p)
    atomic_fetch_add(&p->spam, 1);
}

static void h_big(const kite_request *req) {
  player *p = req->session_user;
  if (p && (req->flags & KITE_REQ_UNRELIABLE))
    atomic_fetch_add(&p->big, 1);
}

/* The match's clock: 20 Hz snapshots on the lane, a score event every
 * fifth tick on the stream. A repeating game timer on a clock key, so one
 * executor runs it in every mode (kite/timer.h). */
static atomic_uint ticks, score_seq;
static uint8_t snap[4 + 8 * MAXB]; /* owner: the match's executor */
static void tick(kite_server *srv, kite_timer_id id, void *user) {
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

/* ---- the relay: a second address for one bot ---- */
/* A UDP relay at the server's public_addr: forwards the client's datagrams
 * from upstream socket u[0], then, once |move| is set, from u[1] (a NAT
 * rebinding), and the server's answers back to the client. */
static int relay_fd, relay_up[3];
static atomic_bool relay_spoof; /* copies raced from a third address */
static atomic_uint relay_spoofed;
static atomic_bool relay_run, relay_moved, spoof_over;
static atomic_uint relay_after_move; /* datagrams back to the client after */
static struct sockaddr_in relay_server;
static int udp_bind(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
    return -1;
  return fd;
}
static int udp_port(int fd) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  return ntohs(a.sin_port);
}
static void *relay(void *arg) {
  (void)arg;
  struct sockaddr_in client = {0};
  uint8_t buf[2048];
  unsigned seen = 0;
  while (atomic_load(&relay_run)) {
    struct pollfd pf[4] = {{relay_fd, POLLIN, 0}, {relay_up[0], POLLIN, 0},
                           {relay_up[1], POLLIN, 0}, {relay_up[2], POLLIN, 0}};
    if (poll(pf, 4, 20) <= 0)
      continue;
    if (pf[3].revents & POLLIN) /* the attacker keeps what it is sent */
      (void)recv(relay_up[2], buf, sizeof buf, 0);
    int up = atomic_load(&relay_moved) ? relay_up[1] : relay_up[0];
    if (pf[0].revents & POLLIN) {
      socklen_t l = sizeof client;
      ssize_t n = recvfrom(relay_fd, buf, sizeof buf, 0,
                           (struct sockaddr *)&client, &l);
      if (n > 0 && atomic_load(&relay_spoof) && ++seen % 10 == 0) {
        /* An attacker on the path races a copy from its own address. */
        sendto(relay_up[2], buf, (size_t)n, 0,
               (struct sockaddr *)&relay_server, sizeof relay_server);
        atomic_fetch_add(&relay_spoofed, 1);
      }
      if (n > 0)
        sendto(up, buf, (size_t)n, 0, (struct sockaddr *)&relay_server,
               sizeof relay_server);
    }
    for (int i = 1; i < 3; i++)
      if (pf[i].revents & POLLIN) {
        ssize_t n = recv(pf[i].fd, buf, sizeof buf, 0);
        if (n > 0 && client.sin_port) {
          sendto(relay_fd, buf, (size_t)n, 0, (struct sockaddr *)&client,
                 sizeof client);
          if (i == 2)
            atomic_fetch_add(&relay_after_move, 1);
        }
      }
  }
  return NULL;
}

/* ---- the bots ---- */
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
static bot bots[MAXB];
static atomic_bool match_over, give_up;
static atomic_int stayers_done;
static atomic_int bots_open;

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

static void *bot_main(void *arg) {
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

static enum kind kind_of(int i) {
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

static const char *mode_arg = "hash";
static int nbots = 40, match_ms = 8000;

static void play_match(void **state) {
  (void)state;
  assert_int_equal(kite_token_key_new(key), 0);
  relay_fd = udp_bind();
  relay_up[0] = udp_bind();
  relay_up[1] = udp_bind();
  relay_up[2] = udp_bind();
  assert_true(relay_fd >= 0 && relay_up[0] >= 0 && relay_up[1] >= 0 &&
              relay_up[2] >= 0);
  char relay_addr[32];
  snprintf(relay_addr, sizeof relay_addr, "127.0.0.1:%d", udp_port(relay_fd));

  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.versions = KITE_VERSION_2;
  cfg.token_key_set = true;
  memcpy(cfg.token_key, key, sizeof key);
  cfg.protocol_id = PROTO;
  cfg.public_addr = relay_addr;
  cfg.idle_timeout_ms = 2000;
  cfg.worker_mode = (kite_worker_mode)kite_worker_mode_parse(mode_arg);
  cfg.workers = cfg.worker_mode == KITE_WORKERS_BIND ? 2 * MAXB : 4;
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  assert_int_equal(kite_server_route(srv, MSG_MOVE, h_move, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_CHAT, h_chat, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_SPAM, h_spam, NULL), 0);
  assert_int_equal(kite_server_route(srv, MSG_BIG, h_big, NULL), 0);
  match = kite_group_create(srv);
  assert_non_null(match);
  assert_int_equal(kite_server_start(srv), 0);
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", kite_server_udp_port(srv));
  relay_server = (struct sockaddr_in){.sin_family = AF_INET,
      .sin_port = htons((uint16_t)kite_server_udp_port(srv)),
      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

  /* The server refuses a snapshot no datagram holds. */
  static uint8_t huge[4096];
  assert_int_equal(kite_group_broadcast_unreliable(match, MSG_SNAP, huge,
                                                   sizeof huge, 0),
                   KITE_EMSGSIZE);

  kite_timer_id tick_id;
  assert_int_equal(kite_timer_start(srv, MATCH_KEY, 50, 50, tick, NULL, &tick_id), 0);
  atomic_store(&relay_run, true);
  pthread_t relay_th, th[MAXB];
  assert_int_equal(pthread_create(&relay_th, NULL, relay, NULL), 0);
  for (int i = 0; i < nbots; i++) {
    bot *b = &bots[i];
    b->idx = i;
    b->kind = kind_of(i);
    b->tcp = (i % 2 == 1) && b->kind != MIGRATE;
    if (b->kind == REUSE_OTHER)
      memcpy(b->token, bots[1].token, KITE_TOKEN_BYTES); /* bot 1's, TCP */
    else
      assert_int_equal(mint(b->token, (uint64_t)i,
                            b->kind == MIGRATE ? relay_addr : addr), 0);
  }
  bots[17].tcp = false; /* bot 1's token, over UDP, from another address */
  uint64_t t0 = now_ms();
  for (int i = 0; i < nbots; i++)
    assert_int_equal(pthread_create(&th[i], NULL, bot_main, &bots[i]), 0);

  /* Everyone who should be in is in (bounded), then the match plays on. */
  int expect_in = nbots - 1; /* all but the token thief */
  uint64_t end = now_ms() + 15000;
  for (;;) {
    int opened = 0;
    for (int i = 0; i < MAXB + 8; i++)
      opened += atomic_load(&players[i].connects);
    if (opened >= expect_in || now_ms() > end)
      break;
    usleep(10000);
  }
  uint64_t t_in = now_ms();
  while (now_ms() - t_in < 3000) /* play; then the relay's NAT rebinds */
    usleep(20000);
  atomic_store(&relay_moved, true);
  while (now_ms() - t_in < 4000)
    usleep(20000);
  atomic_store(&relay_spoof, true);
  while (now_ms() - t_in < 5000)
    usleep(20000);
  atomic_store(&relay_spoof, false);
  atomic_store(&spoof_over, true);
  /* The match: until its clock runs out and the vanished have timed out. */
  end = t_in + (uint64_t)match_ms;
  while (now_ms() < end)
    usleep(20000);
  atomic_store(&match_over, true);
  for (int i = 0; i < nbots; i++)
    if (bots[i].kind != STAY)
      pthread_join(th[i], NULL);
  /* Every server-side session ends (vanished ones by the idle timeout),
   * but the two still playing. */
  end = now_ms() + 10000;
  while (atomic_load(&srv_connected) > 2 && now_ms() < end)
    usleep(10000);
  assert_int_equal(kite_timer_stop(srv, tick_id), 0);
  atomic_store(&relay_run, false);
  pthread_join(relay_th, NULL);
  /* The thief's half-open attempts are gone too (bounded). */
  kite_server_stats st;
  end = now_ms() + 10000;
  do {
    kite_server_stats_get(srv, &st);
  } while (st.sessions > 2 && now_ms() < end && usleep(10000) == 0);
  /* A restart: the two still playing are told (bounded). */
  kite_server_stop(srv);
  end = now_ms() + 10000;
  while (atomic_load(&stayers_done) < 2 && now_ms() < end)
    usleep(10000);
  atomic_store(&give_up, true);
  for (int i = 0; i < nbots; i++)
    if (bots[i].kind == STAY)
      pthread_join(th[i], NULL);
  kite_server_stats st2;
  kite_server_stats_get(srv, &st2);
  kite_group_destroy(match);
  kite_server_destroy(srv);
  close(relay_fd);
  close(relay_up[0]);
  close(relay_up[1]);
  close(relay_up[2]);

  printf("mode %s, %d bots, %llu ms, %u ticks, %u score events\n", mode_arg,
         nbots, (unsigned long long)(now_ms() - t0), atomic_load(&ticks),
         atomic_load(&score_seq));
  int bad = 0, tcp_quit_dead = 0;
  kite_client_stats cs = {0};
#define CHECK(cond, ...) do { if (!(cond)) { bad++; \
    printf("bot %d (%s, %s): ", b->idx, kind_name[b->kind], b->tcp ? "tcp" : "kcp"); \
    printf(__VA_ARGS__); putchar('\n'); } } while (0)
  for (int i = 0; i < nbots; i++) {
    bot *b = &bots[i];
    player *p = &players[i];
    int pc = atomic_load(&p->connects), pd = atomic_load(&p->disconnects);
    int pr = atomic_load(&p->reason);
    if (b->kind == REUSE_OTHER) {
      CHECK(b->on_connect == 0 && b->on_disconnect == 1,
            "thief: connect %d disconnect %d", b->on_connect, b->on_disconnect);
      CHECK(b->reason == KITE_CONNECT_TIMEOUT, "thief reason %s",
            kite_client_reason_name(b->reason));
      CHECK(b->stats.connect_timeouts == 1, "connect_timeouts %llu",
            (unsigned long long)b->stats.connect_timeouts);
      continue;
    }
    CHECK(pc == 1 && pd == 1, "server callbacks: connect %d disconnect %d", pc, pd);
    CHECK(b->on_connect == 1, "client on_connect %d", b->on_connect);
    CHECK(b->snaps > 0, "no snapshots");
    CHECK(b->scores > 0, "no score events");
    CHECK(b->unseq == 0 || b->tcp, "%u snapshots unsequenced", b->unseq);
    if (b->tcp && b->unseq && i < 2)
      printf("bot %d (tcp): %u of %u snapshots came without the SEQUENCED flag\n",
             i, b->unseq, b->snaps);
    cs.unreliable_in += b->stats.unreliable_in;
    cs.unreliable_drop_stale += b->stats.unreliable_drop_stale;
    cs.v2_drop_replay += b->stats.v2_drop_replay;
    cs.v2_drop_auth += b->stats.v2_drop_auth;
    cs.v2_path_responses += b->stats.v2_path_responses;
    CHECK(b->chat_ack_bad == 0, "%u chat acks out of order", b->chat_ack_bad);
    switch (b->kind) {
    case VANISH:
      CHECK(b->on_disconnect == 0, "vanished, yet on_disconnect %d", b->on_disconnect);
      CHECK(pr == KITE_CLOSE_IDLE || pr == KITE_CLOSE_DEAD_LINK,
            "server reason %s", kite_close_reason_name(pr));
      break;
    case STAY:
      CHECK(b->on_disconnect == 1 && b->reason == KITE_CLOSE_SHUTDOWN,
            "client reason %s", kite_client_reason_name(b->reason));
      CHECK(pr == KITE_CLOSE_SHUTDOWN, "server reason %s", kite_close_reason_name(pr));
      break;
    case CHEAT:
      CHECK(b->on_disconnect == 1 && b->reason == KITE_CLOSE_KICKED,
            "client reason %s", kite_client_reason_name(b->reason));
      CHECK(b->kicked_told, "kicked without being told why");
      CHECK(pr == KITE_CLOSE_KICKED, "server reason %s", kite_close_reason_name(pr));
      break;
    case OVERSIZE:
      CHECK(b->oversize_rc == KITE_EMSGSIZE, "oversize send: %s",
            kite_err_name(b->oversize_rc));
      CHECK(b->fit_rc == 0, "send at max_unreliable: %s", kite_err_name(b->fit_rc));
      /* fall through */
    default:
      CHECK(b->on_disconnect == 1 && b->reason == KITE_CLOSE_NORMAL,
            "client reason %s", kite_client_reason_name(b->reason));
      /* A TCP quit with unread snapshots in the socket resets it; the
       * server, writing the next one, may take the reset before the quit's
       * close notice and count a dead link (test_tcp_close_notice). */
      CHECK(pr == KITE_CLOSE_NORMAL || (b->tcp && pr == KITE_CLOSE_DEAD_LINK),
            "server reason %s", kite_close_reason_name(pr));
      if (pr == KITE_CLOSE_DEAD_LINK)
        tcp_quit_dead++;
      /* In worker modes a peer's close drops what waits in its mailbox
       * (logic.h, "After a close"): handled lies between acked and sent. */
      CHECK(atomic_load(&p->chats) >= b->chat_acked &&
            atomic_load(&p->chats) <= b->chat_sent,
            "chats: %u sent, %u handled, %u acked", b->chat_sent,
            atomic_load(&p->chats), b->chat_acked);
      break;
    }
    if (!b->tcp)
      CHECK(atomic_load(&p->huge_rc) == KITE_EMSGSIZE, "4096-byte snapshot: %s",
            kite_err_name(atomic_load(&p->huge_rc)));
    else
      printf("bot %d (tcp): 4096-byte snapshot: %s\n", i,
             kite_err_name(atomic_load(&p->huge_rc)));
    if (b->kind == MIGRATE)
      CHECK(b->snaps_after_move > 0 && b->snaps_after_spoof > 0,
            "snapshots: %u after the move, %u after the spoofing",
            b->snaps_after_move, b->snaps_after_spoof);
    if (b->kind == OVERSIZE) {
      CHECK(atomic_load(&p->big) <= 1, "big %u", atomic_load(&p->big));
      printf("bot %d (%s): max_unreliable %u, one of that size delivered: %u\n",
             i, b->tcp ? "tcp" : "kcp", b->max_unreliable, atomic_load(&p->big));
    }
    if (i <= 1)
      printf("bot %d (%s): %u moves sent sequenced, %u handled, %u flagged "
             "KITE_REQ_SEQUENCED\n", i, b->tcp ? "tcp" : "kcp",
             atomic_load(&p->moves), atomic_load(&p->moves),
             atomic_load(&p->moves_seq));
    if (i == 0)
      CHECK(b->stats.rejected == 1 && b->stats.connected == 1,
            "rejected %llu connected %llu", (unsigned long long)b->stats.rejected,
            (unsigned long long)b->stats.connected);
    if (i == 1)
      CHECK(b->stats.tcp_connect_failed == 1 && b->stats.connected == 1,
            "tcp_connect_failed %llu connected %llu",
            (unsigned long long)b->stats.tcp_connect_failed,
            (unsigned long long)b->stats.connected);
    if (i <= 1)
      printf("bot %d (%s): its token again from its own client: %s\n", i,
             b->tcp ? "tcp" : "kcp", kite_client_reason_name(b->reuse_reason));
    if (i == 0)
      CHECK(b->reuse_disc == 1 && b->reuse_reason == KITE_CONNECT_REJECTED_USED,
            "reuse on the same socket: %d callbacks, %s", b->reuse_disc,
            kite_client_reason_name(b->reuse_reason));
  }
  printf("server: opened %llu normal %llu idle %llu kicked %llu dead %llu slow %llu "
         "protocol %llu\n", (unsigned long long)st.sessions_opened,
         (unsigned long long)st.closed_normal, (unsigned long long)st.closed_idle,
         (unsigned long long)st.closed_kicked, (unsigned long long)st.closed_dead_link,
         (unsigned long long)st.closed_slow_peer, (unsigned long long)st.closed_protocol);
  printf("server: v2_reject_used %llu v2_tcp_reject_used %llu v2_drop_token_bound %llu "
         "v2_tcp_ignored_bound %llu v2_migrations %llu v2_path_validated %llu\n",
         (unsigned long long)st.v2_reject_used, (unsigned long long)st.v2_tcp_reject_used,
         (unsigned long long)st.v2_drop_token_bound,
         (unsigned long long)st.v2_tcp_ignored_bound,
         (unsigned long long)st.v2_migrations, (unsigned long long)st.v2_path_validated);
  printf("server: unreliable out %llu in %llu drop budget %llu path %llu stale %llu "
         "mailbox %llu size %llu queue %llu queue_full %llu backpressure %llu "
         "drop_after_close %llu\n",
         (unsigned long long)st.unreliable_out, (unsigned long long)st.unreliable_in,
         (unsigned long long)st.unreliable_drop_budget,
         (unsigned long long)st.unreliable_drop_path,
         (unsigned long long)st.unreliable_drop_stale,
         (unsigned long long)st.unreliable_drop_mailbox,
         (unsigned long long)st.unreliable_drop_size,
         (unsigned long long)st.unreliable_drop_queue,
         (unsigned long long)st.unreliable_queue_full,
         (unsigned long long)st.backpressure, (unsigned long long)st.drop_after_close);
  printf("clients: unreliable_in %llu drop_stale %llu v2_drop_replay %llu "
         "v2_drop_auth %llu v2_path_responses %llu\n",
         (unsigned long long)cs.unreliable_in,
         (unsigned long long)cs.unreliable_drop_stale,
         (unsigned long long)cs.v2_drop_replay, (unsigned long long)cs.v2_drop_auth,
         (unsigned long long)cs.v2_path_responses);
  printf("server: v2_drop_replay %llu v2_drop_addr %llu v2_path_challenges %llu "
         "v2_path_fallbacks %llu v2_amplification_held %llu; relay spoofed %u\n",
         (unsigned long long)st.v2_drop_replay, (unsigned long long)st.v2_drop_addr,
         (unsigned long long)st.v2_path_challenges,
         (unsigned long long)st.v2_path_fallbacks,
         (unsigned long long)st.v2_amplification_held, atomic_load(&relay_spoofed));
  printf("TCP quits the server counted as dead links: %d\n", tcp_quit_dead);
  assert_int_equal(atomic_load(&failures), 0);
  /* Every session that opened ended once, for a reason counted. */
  assert_int_equal(st.sessions, 2);
  assert_int_equal(st2.closed_normal + st2.closed_idle + st2.closed_kicked +
                       st2.closed_dead_link + st2.closed_protocol +
                       st2.closed_slow_peer + st2.closed_shutdown,
                   st2.sessions_opened);
  assert_int_equal(st2.closed_shutdown, 2);
  assert_int_equal(st2.sessions, 0);
  /* 20 Hz, loosely: at least half the ticks the match's length holds. */
  assert_true(atomic_load(&ticks) >= (unsigned)match_ms / 100);
  assert_int_equal(bad, 0);
  assert_int_equal(st.sessions_opened, (uint64_t)(nbots - 1));
  assert_int_equal(st.closed_kicked, 2);
  assert_true(st.closed_idle + st.closed_dead_link == 2 + (unsigned)tcp_quit_dead);
  assert_true(st.v2_reject_used + st.v2_tcp_reject_used >= 1);
  assert_true(st.v2_migrations >= 1);
  assert_true(atomic_load(&relay_after_move) > 0);
}

int main(int argc, char **argv) {
  if (argc > 1)
    mode_arg = argv[1];
  if (argc > 2)
    nbots = atoi(argv[2]);
  if (argc > 3)
    match_ms = atoi(argv[3]);
  if (match_ms < 6000)
    match_ms = 6000; /* the move at 3 s, the spoofing from 4 to 5 s */
  if (kite_worker_mode_parse(mode_arg) < 0 || nbots < 20 || nbots > MAXB ||
      match_ms < 4000) {
    fprintf(stderr, "usage: outsider_game hash|bind [20..64 bots] [match_ms >= 4000]\n");
    return 2;
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(play_match)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
