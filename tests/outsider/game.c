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
 * One process, threads only: the server (its match clock a game timer), a
 * relay (relay.c), one thread per bot (bots.c); the server's side is
 * server.c. Failures on other threads are counted; the test thread
 * asserts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "game.h"

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
