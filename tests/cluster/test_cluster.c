/*
 * kite past one machine (issue 19, docs/CLUSTER.md), end to end on
 * loopback: its own redis-server (a free port, no config file, no
 * persistence), three kited nodes and kite-lobby, and 300 players driven
 * by the client library from this thread (ten kite_clients bound to
 * 127.0.0.10..19, so that no node's per-address limit is what is tested).
 *
 *   placement   players log in through the lobby, spread over the nodes
 *               by load, the same room on the same node; each token names
 *               the address the lobby answered
 *   broadcast   a '!' line from a player on each node reaches every player
 *               on every node exactly once
 *   outage      Redis stopped (SIGSTOP) for 4 s: room chat goes on on every
 *               node, no one is dropped, logins fail with a clear error and
 *               succeed again once it is back
 *   node death  a node SIGKILLed: its registration and leases lapse within
 *               their expiry, its players log in again and land on the
 *               others, no other node's player notices
 *
 * Usage: test_cluster KITED KITE-LOBBY REDIS-SERVER. KITE_CLUSTER_PLAYERS
 * overrides the 300. The processes, players and helpers are in
 * cluster_world.c; the phases here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../examples/kited/demo_proto.h"
#include "cluster_world.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the phases ---- */

static bool all_joined(void) {
  for (int i = 0; i < nplayers; i++)
    if (players[i].state != 3)
      return false;
  return true;
}

/* all_joined, or a word on who is not. */
static bool joined_or_say(int ms) {
  if (wait_for(all_joined, ms))
    return true;
  int by_state[4] = {0}, errors = 0;
  for (int i = 0; i < nplayers; i++) {
    by_state[players[i].state]++;
    errors += players[i].errors;
  }
  print_message("not joined: %d none, %d connecting, %d welcomed; %d errors\n",
                by_state[0], by_state[1], by_state[2], errors);
  return false;
}

/* The players in |p|'s room (on its node): every one of them. */
static bool same_room(const player *a, const player *b) {
  return !strcmp(a->room, b->room) && !strcmp(a->node, b->node);
}

static int mark_k; /* the mark all_marked() waits for */
static bool all_marked(void) {
  for (int i = 0; i < nplayers; i++)
    if (players[i].marks[mark_k] < 1)
      return false;
  return true;
}

static void say(player *p, const char *text) {
  assert_non_null(p->conn);
  assert_int_equal(kite_conn_send(p->conn, DEMO_CHAT, text, strlen(text)), 0);
}

static player *first_on(int node) {
  for (int i = 0; i < nplayers; i++)
    if (node_index(players[i].node) == node)
      return &players[i];
  return NULL;
}

static player *room_sender;
static bool room_heard(void) {
  for (int i = 0; i < nplayers; i++)
    if (same_room(&players[i], room_sender) && players[i].room_lines < 1)
      return false;
  return true;
}

/* A room chat line from the first player on |node|: every player of the
 * room hears it. */
static void room_chat_works(int node, const char *text) {
  for (int i = 0; i < nplayers; i++)
    players[i].room_lines = 0;
  room_sender = first_on(node);
  assert_non_null(room_sender);
  say(room_sender, text);
  assert_true(wait_for(room_heard, 10000));
}

/* Bad requests to the lobby: each refused with its status, and the lobby
 * goes on serving. */
static void test_lobby_refusals(void **state) {
  char body[4096];
  static const char *const bad[] = {
      "/login", "/login?name=alice", "/login?room=arena",
      "/login?name=al%20ice&room=arena", "/login?name=alice&room=",
      "/login?name=aaaaaaaaaaaaaaaaa&room=arena", "/login?name=a&room=a\"b"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(http_get(lobby_port, bad[i], body, sizeof(body), 5000), 400);
  assert_int_equal(http_get(lobby_port, "/nothing", body, sizeof(body), 5000), 404);
  static const char brew[] = "BREW /login?name=a&room=b HTTP/1.1\r\n\r\n";
  assert_int_equal(http_raw(lobby_port, brew, sizeof(brew) - 1, body,
                            sizeof(body), 5000), 404);
  static const char junk[] = "\x01\x02 junk\r\n\r\n";
  assert_int_equal(http_raw(lobby_port, junk, sizeof(junk) - 1, body,
                            sizeof(body), 5000), 400);
  char longer[3200] = "/login?name=a&room=b&pad=";
  memset(longer + strlen(longer), 'x', sizeof(longer) - strlen(longer) - 1);
  assert_int_equal(http_get(lobby_port, longer, body, sizeof(body), 5000), 400);
  player probe = {.name = "probe0", .room = "probe0-room"};
  assert_int_equal(lobby_login(&probe, body, sizeof(body)), 200);
}

/* Every room's lease names the node its players are on. */
static bool leases_with_their_nodes(void) {
  bool ok = true;
  for (int r = 0; r < ROOMS && r < nplayers && ok; r++) {
    redisReply *rep = redisCommand(rc, "GET kite:room:%s", players[r].room);
    ok = rep && rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, players[r].node);
    if (rep)
      freeReplyObject(rep);
  }
  return ok;
}

static void test_placement(void **state) {
  char body[4096];
  int per_node[NODES] = {0};
  for (int i = 0; i < nplayers; i++) {
    player *p = &players[i];
    snprintf(p->name, sizeof(p->name), "p%d", i);
    snprintf(p->room, sizeof(p->room), "r%d", i % ROOMS);
    assert_int_equal(lobby_login(p, body, sizeof(body)), 200);
    assert_true(token_names(body, p->addr)); /* the token lists that node */
    int k = node_index(p->node);
    assert_true(k >= 0);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", node_port[k]);
    assert_string_equal(p->addr, want);
    if (i >= ROOMS) /* same room, same node */
      assert_string_equal(p->node, players[i % ROOMS].node);
    per_node[k]++;
    connect_player(p, i);
  }
  for (int k = 0; k < NODES; k++) { /* spread by load: within 10 % */
    print_message("node n%d: %d players\n", k, per_node[k]);
    assert_true(per_node[k] >= nplayers / NODES - nplayers / 10);
    assert_true(per_node[k] <= nplayers / NODES + nplayers / 10);
  }
  assert_true(joined_or_say(60000));
  /* Past the lobby's first lease: the nodes hold the rooms now. What
   * the cluster costs Redis at rest meanwhile (docs/CLUSTER.md). */
  long long evals = redis_calls("eval");
  uint64_t t0 = now_ms();
  poll_all(NODE_TTL_MS + 500);
  double secs = (double)(now_ms() - t0) / 1000.0;
  print_message("redis at rest, %d nodes, %d players, %d rooms: %lld keys,"
                " %.1f EVAL/s (renewals)\n", NODES, nplayers, ROOMS,
                redis_keys(), (double)(redis_calls("eval") - evals) / secs);
  assert_true(leases_with_their_nodes());
}

/* "!mark-K" from |from|: every player hears it once; a later mark proves
 * no copy of it was still on its way (one subscription is in order). */
static void broadcast_marks(int first_k, player *const *from, int n) {
  for (int j = 0; j < n; j++) {
    char text[16];
    snprintf(text, sizeof(text), "!mark-%d", first_k + j);
    say(from[j], text);
  }
  for (mark_k = first_k; mark_k < first_k + n; mark_k++)
    assert_true(wait_for(all_marked, 20000));
  char text[16];
  snprintf(text, sizeof(text), "!mark-%d", first_k + n);
  say(from[0], text);
  mark_k = first_k + n;
  assert_true(wait_for(all_marked, 20000));
  for (int i = 0; i < nplayers; i++)
    for (int k = first_k; k <= first_k + n; k++)
      assert_int_equal(players[i].marks[k], 1);
}

static void test_broadcast_once(void **state) {
  player *from[NODES];
  for (int k = 0; k < NODES; k++)
    assert_non_null(from[k] = first_on(k));
  long long pubs = redis_calls("publish");
  broadcast_marks(0, from, NODES); /* marks 0..2, then 3 */
  /* One PUBLISH per broadcast, whatever the players and nodes. */
  print_message("4 broadcasts to %d players on %d nodes: %lld PUBLISH\n",
                nplayers, NODES, redis_calls("publish") - pubs);
  assert_int_equal(redis_calls("publish") - pubs, 4);
}

static void test_redis_outage(void **state) {
  char body[4096];
  player probe = {0};
  snprintf(probe.name, sizeof(probe.name), "probe");
  snprintf(probe.room, sizeof(probe.room), "probe-room");
  kill(redis_p.pid, SIGSTOP);
  uint64_t t0 = now_ms();
  /* Logins fail, and say why. */
  assert_int_equal(lobby_login(&probe, body, sizeof(body)), 503);
  assert_non_null(strstr(body, "Redis did not answer"));
  /* Game traffic goes on on every node. */
  for (int k = 0; k < NODES; k++) {
    char text[16];
    snprintf(text, sizeof(text), "rc-%d", k);
    room_chat_works(k, text);
  }
  while (now_ms() < t0 + 4000)
    poll_all(50);
  kill(redis_p.pid, SIGCONT);
  /* Logins succeed again once the nodes have registered again. */
  int st = 0;
  uint64_t end = now_ms() + 20000;
  while (st != 200 && now_ms() < end) {
    poll_all(200);
    st = lobby_login(&probe, body, sizeof(body));
  }
  assert_int_equal(st, 200);
  /* A node registers and leases its rooms in one script: registered
   * again, it holds its rooms again. */
  assert_true(wait_for(nodes_registered, 10000));
  assert_true(leases_with_their_nodes());
  for (int i = 0; i < nplayers; i++) { /* no one was dropped */
    assert_int_equal(players[i].disconnects, 0);
    assert_int_equal(players[i].errors, 0);
  }
}

static void print_loads(const char *when) {
  redisReply *r = redisCommand(rc, "ZRANGE kite:nodes 0 -1 WITHSCORES");
  if (!r)
    return;
  char line[256] = "";
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
    snprintf(line + strlen(line), sizeof(line) - strlen(line), " %s=%s",
             r->element[i]->str, r->element[i + 1]->str);
  print_message("loads %s:%s\n", when, line);
  freeReplyObject(r);
  for (int k = 0; k < NODES; k++) {
    r = redisCommand(rc, "HGET kite:node:n%d sessions", k);
    redisReply *v = redisCommand(rc, "GET kite:resv:n%d", k);
    if (r && v)
      print_message("  n%d: sessions %s, reserved %s\n", k,
                    r->type == REDIS_REPLY_STRING ? r->str : "-",
                    v->type == REDIS_REPLY_STRING ? v->str : "-");
    if (r)
      freeReplyObject(r);
    if (v)
      freeReplyObject(v);
  }
}

static bool victim_gone(void) {
  long long e = 1;
  return redis_cmd_int(&e, "EXISTS kite:node:n2") && e == 0;
}

static bool victim_leases_gone(void) {
  for (int r = 0; r < ROOMS && r < nplayers; r++) {
    if (node_index(players[r].node) != 2)
      continue;
    long long e = 1;
    if (!redis_cmd_int(&e, "EXISTS kite:room:%s", players[r].room) || e)
      return false;
  }
  return true;
}

static bool movers_closed(void) {
  for (int i = 0; i < nplayers; i++)
    if (players[i].moving && players[i].conn)
      return false;
  return true;
}

static void test_node_death(void **state) {
  const int victim = 2;
  proc_signal(&node_p[victim], SIGKILL);
  uint64_t t0 = now_ms();
  /* Dead now, it renews nothing more: what it left has at most its expiry
   * to live, by Redis's own clock (whatever this machine's load does to
   * the waits below). */
  long long ttl = -3;
  assert_true(redis_cmd_int(&ttl, "PTTL kite:node:n2"));
  assert_true(ttl > 0 && ttl <= NODE_TTL_MS);
  for (int r = 0; r < ROOMS && r < nplayers; r++)
    if (node_index(players[r].node) == victim) {
      assert_true(redis_cmd_int(&ttl, "PTTL kite:room:%s", players[r].room));
      assert_true(ttl > 0 && ttl <= NODE_TTL_MS);
    }
  assert_true(wait_for(victim_gone, NODE_TTL_MS + 10000));
  uint64_t gone = now_ms() - t0;
  assert_true(wait_for(victim_leases_gone, NODE_TTL_MS + 10000));
  uint64_t leases = now_ms() - t0;
  print_message("node n2 killed: registration gone after %llu ms, leases after"
                " %llu ms (expiry %d ms)\n", (unsigned long long)gone,
                (unsigned long long)leases, NODE_TTL_MS);
  /* Its players notice (their node is gone) and log in again. */
  int moved = 0;
  for (int i = 0; i < nplayers; i++)
    if (node_index(players[i].node) == victim) {
      players[i].moving = true;
      moved++;
      if (players[i].conn)
        kite_conn_close(players[i].conn);
    }
  assert_true(wait_for(movers_closed, 10000));
  print_loads("before the moves");
  char body[4096];
  int first_of_room[ROOMS], landed[NODES] = {0};
  for (int r = 0; r < ROOMS; r++)
    first_of_room[r] = -1;
  for (int i = 0; i < nplayers; i++) {
    player *p = &players[i];
    if (!p->moving)
      continue;
    assert_int_equal(lobby_login(p, body, sizeof(body)), 200);
    assert_true(token_names(body, p->addr));
    assert_true(node_index(p->node) >= 0 && node_index(p->node) != victim);
    int r = i % ROOMS;
    if (first_of_room[r] < 0)
      first_of_room[r] = i;
    else
      assert_string_equal(p->node, players[first_of_room[r]].node);
    landed[node_index(p->node)]++;
    connect_player(p, i);
  }
  print_message("%d players of n2 moved to the other nodes: %d on n0, %d on"
                " n1\n", moved, landed[0], landed[1]);
  print_loads("after the moves");
  /* Spread by load again (rooms of 5 players: within a few rooms). */
  assert_true(landed[0] >= moved / 4 && landed[1] >= moved / 4);
  assert_true(joined_or_say(60000));
  for (int i = 0; i < nplayers; i++) /* the others noticed nothing */
    if (!players[i].moving) {
      assert_int_equal(players[i].disconnects, 0);
      assert_int_equal(players[i].errors, 0);
    }
  room_chat_works(0, "rc-after");
  player *from[2] = {first_on(0), first_on(1)};
  broadcast_marks(4, from, 2); /* marks 4, 5, then 6 */
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: test_cluster KITED KITE-LOBBY REDIS-SERVER\n");
    return 2;
  }
  kited_bin = argv[1];
  lobby_bin = argv[2];
  redis_bin = argv[3];
  const char *n = getenv("KITE_CLUSTER_PLAYERS");
  if (n && atoi(n) >= NODES * 2 && atoi(n) <= MAX_PLAYERS)
    nplayers = atoi(n);
  if (sodium_init() < 0)
    return 1;
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lobby_refusals),
      cmocka_unit_test(test_placement),
      cmocka_unit_test(test_broadcast_once),
      cmocka_unit_test(test_redis_outage),
      cmocka_unit_test(test_node_death),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
