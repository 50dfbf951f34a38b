/*
 * test_cluster's world: the processes (Redis, three kited nodes,
 * kite-lobby), the 300 players and the helpers the phases use. All of it
 * belongs to the test's one thread (callbacks run inside poll_all()).
 */
#ifndef KITE_TEST_CLUSTER_WORLD_H
#define KITE_TEST_CLUSTER_WORLD_H

#include "kite/client.h"
#include "procs.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODES 3
#define ROOMS 60
#define CLIENTS 10
#define MAX_PLAYERS 600
#define NODE_TTL_MS 3000 /* kite_cluster's default, as kited runs it */

typedef struct player {
  char name[17], room[17], node[33], addr[64];
  uint8_t token[KITE_TOKEN_BYTES]; /* the lobby's answer: v2 to that node */
  kite_conn *conn;
  int state;       /* 0 none, 1 connecting, 2 welcomed, 3 in its room */
  bool moving;     /* its node died: it logs in again (test's own close) */
  int disconnects; /* on_disconnect calls while not moving */
  int errors;      /* DEMO_ERROR frames */
  int marks[8];    /* "!mark-K" lines received, by K */
  int room_lines;  /* room chat lines received */
} player;

extern const char *kited_bin, *lobby_bin, *redis_bin;
extern proc redis_p, lobby_p, node_p[NODES];
extern int redis_port, lobby_port, node_port[NODES];
extern kite_client *cli[CLIENTS];
extern player players[MAX_PLAYERS];
extern int nplayers;
extern redisContext *rc;

int node_index(const char *node);
void poll_all(int ms);
bool wait_for(bool (*cond)(void), int ms);
int lobby_login(player *p, char *body, size_t cap);
bool token_names(const char *body, const char *addr);
void connect_player(player *p, int i);
bool redis_cmd_int(long long *out, const char *fmt, ...);
bool nodes_registered(void);
/* cmocka group setup and teardown: every process started, every one
 * stopped by its PID (teardown fails when a node or the lobby did not
 * exit 0). */
int setup(void **state);
int teardown(void **state);
long long redis_calls(const char *cmd);
long long redis_keys(void);

#endif
