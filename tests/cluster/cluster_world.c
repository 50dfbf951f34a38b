/* test_cluster's world (cluster_world.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster_world.h"

#include "kite/error.h"
#include "kite/token.h"
#include "proto/v2tok.h"

#include "../../examples/kited/demo_proto.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *kited_bin, *lobby_bin, *redis_bin;
proc redis_p, lobby_p, node_p[NODES];
int redis_port, lobby_port, node_port[NODES];
kite_client *cli[CLIENTS];
player players[MAX_PLAYERS];
int nplayers = 300;
redisContext *rc;

int node_index(const char *node) {
  for (int i = 0; i < NODES; i++) {
    char id[8];
    snprintf(id, sizeof(id), "n%d", i);
    if (!strcmp(node, id))
      return i;
  }
  return -1;
}

/* ---- players: callbacks on this thread, from kite_client_poll ---- */

static void on_connect(kite_conn *c, void *user) {
  player *p = kite_conn_user(c);
  kite_conn_send(c, DEMO_LOGIN, p->name, strlen(p->name));
}

static void on_message(kite_conn *c, uint16_t msg_id, const uint8_t *b,
                       size_t len, void *user) {
  player *p = kite_conn_user(c);
  if (msg_id == DEMO_WELCOME) {
    p->state = 2;
    kite_conn_send(c, DEMO_JOIN, p->room, strlen(p->room));
  } else if (msg_id == DEMO_JOINED) {
    p->state = 3;
  } else if (msg_id == DEMO_ERROR) {
    p->errors++;
  } else if (msg_id == DEMO_SAID && len >= 4) {
    char text[256];
    snprintf(text, sizeof(text), "%.*s", (int)(len - 4), (const char *)b + 4);
    const char *m = strstr(text, "mark-");
    if (demo_get_u32(b) == 0 && m && m[5] >= '0' && m[5] <= '7')
      p->marks[m[5] - '0']++;
    else if (strstr(text, "rc-"))
      p->room_lines++;
  }
}

static void on_disconnect(kite_conn *c, int reason, void *user) {
  player *p = kite_conn_user(c);
  if (!p->moving) {
    p->disconnects++;
    print_message("player %s on %s dropped: %s\n", p->name, p->node,
                  kite_client_reason_name(reason));
  }
  p->conn = NULL;
  p->state = 0;
}

void poll_all(int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  do
    for (int i = 0; i < CLIENTS; i++)
      kite_client_poll(cli[i], 1);
  while (now_ms() < end);
}

/* Polls until cond() or |ms|; returns cond(). */
bool wait_for(bool (*cond)(void), int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  while (!cond() && now_ms() < end)
    poll_all(20);
  return cond();
}

/* ---- the lobby ---- */

/* Logs |p| in through the lobby: 200 and its placement, or the status. */
int lobby_login(player *p, char *body, size_t cap) {
  char path[128];
  snprintf(path, sizeof(path), "/login?name=%s&room=%s", p->name, p->room);
  int st = http_get(lobby_port, path, body, cap, 5000);
  if (st != 200)
    return st;
  char hex[2 * KITE_TOKEN_BYTES + 1];
  size_t n = 0;
  if (!json_str(body, "node", p->node, sizeof(p->node)) ||
      !json_str(body, "addr", p->addr, sizeof(p->addr)) ||
      !json_str(body, "token", hex, sizeof(hex)) ||
      sodium_hex2bin(p->token, sizeof(p->token), hex, strlen(hex), NULL, &n,
                     NULL) != 0 ||
      n != sizeof(p->token))
    return -1;
  return 200;
}

/* The token's public part lists exactly the address the lobby answered. */
bool token_names(const char *body, const char *addr) {
  char hex[2 * KITE_TOKEN_BYTES + 1];
  uint8_t tok[KITE_TOKEN_BYTES];
  size_t n;
  kite__v2tok t;
  if (!json_str(body, "token", hex, sizeof(hex)) ||
      sodium_hex2bin(tok, sizeof(tok), hex, strlen(hex), NULL, &n, NULL) != 0 ||
      n != sizeof(tok) || kite__v2tok_read(tok, n, &t) != 0 || t.addr_count != 1)
    return false;
  char host[64];
  const char *colon = strrchr(addr, ':');
  snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(colon + 1))};
  inet_pton(AF_INET, host, &sa.sin_addr);
  kite__v2addr want;
  kite__v2addr_from_sockaddr((struct sockaddr *)&sa, &want);
  bool ok = kite__v2addr_equal(&t.addrs[0], &want);
  kite__v2tok_wipe(&t);
  return ok;
}

static bool few_connecting(void) {
  int n = 0;
  for (int i = 0; i < nplayers; i++)
    n += players[i].state == 1;
  return n < 32;
}

void connect_player(player *p, int i) {
  /* All of the test's players share one /24: stay under a node's budget
   * of half-open sessions per prefix (64), as real players do. */
  wait_for(few_connecting, 10000);
  p->state = 1;
  /* Version 2 with the token the lobby answered: the node opens it under
   * the key it shares with the lobby, and serves nothing else. */
  int rc2 = kite_client_connect_token(cli[i % CLIENTS], p->token, p, &p->conn);
  if (rc2 < 0)
    p->state = 0;
}

/* ---- setup: Redis, three nodes, the lobby ---- */

bool redis_cmd_int(long long *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(rc, fmt, ap);
  va_end(ap);
  bool ok = r && r->type == REDIS_REPLY_INTEGER;
  if (ok)
    *out = r->integer;
  if (r)
    freeReplyObject(r);
  return ok;
}

bool nodes_registered(void) {
  long long n = 0, e = 0;
  if (!redis_cmd_int(&n, "ZCARD kite:nodes") || n != NODES)
    return false;
  if (!redis_cmd_int(&e, "EXISTS kite:node:n0 kite:node:n1 kite:node:n2"))
    return false;
  return e == NODES;
}

static int start_redis(void) {
  for (int tries = 0; tries < 5; tries++) {
    redis_port = free_tcp_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    char *argv[] = {(char *)redis_bin, "--port", port, "--save", "",
                    "--appendonly", "no", "--bind", "127.0.0.1", NULL};
    if (proc_start(&redis_p, "redis", argv) < 0)
      return -1;
    for (int i = 0; i < 100; i++) {
      struct timeval tv = {1, 0};
      rc = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
      if (rc && !rc->err) {
        redisReply *r = redisCommand(rc, "PING");
        if (r) {
          freeReplyObject(r);
          redisSetTimeout(rc, tv);
          return 0;
        }
      }
      if (rc)
        redisFree(rc);
      rc = NULL;
      usleep(50000);
    }
    proc_signal(&redis_p, SIGKILL); /* its port was taken: another one */
  }
  return -1;
}

/* The game's private key, shared by the lobby (it mints) and the nodes
 * (they open): a file of 64 hex characters, made for this run. */
static char key_path[64];

static int write_key(void) {
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  char hex[2 * KITE_TOKEN_KEY_BYTES + 1];
  snprintf(key_path, sizeof(key_path), "/tmp/kite-cluster-key-XXXXXX");
  int fd = mkstemp(key_path);
  if (fd < 0 || kite_token_key_new(key) < 0)
    return -1;
  sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
  sodium_memzero(key, sizeof(key));
  bool ok = write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex);
  close(fd);
  return ok ? 0 : -1;
}

int setup(void **state) {
  if (procs_init() < 0 || write_key() < 0 || start_redis() < 0)
    return -1;
  char redis[32];
  snprintf(redis, sizeof(redis), "127.0.0.1:%d", redis_port);
  for (int i = 0; i < NODES; i++) {
    char id[8], name[16];
    snprintf(id, sizeof(id), "n%d", i);
    snprintf(name, sizeof(name), "kited-%s", id);
    char *argv[] = {(char *)kited_bin, "--udp", "127.0.0.1:0", "--no-tcp",
                    "--threads", "1", "--workers", "1", "--redis", redis,
                    "--node-id", id, "--token-key", key_path,
                    "--protocol-id", "0x4B495445", "--versions", "2", NULL};
    if (proc_start(&node_p[i], name, argv) < 0 ||
        proc_wait_int(&node_p[i], "kited listening on udp 127.0.0.1:0 port ",
                      "%d", &node_port[i], 10000) < 0)
      return -1;
  }
  char *largv[] = {(char *)lobby_bin, "--redis", redis, "--listen",
                   "127.0.0.1:0", "--key-file", key_path, "--protocol-id",
                   "0x4B495445", NULL};
  if (proc_start(&lobby_p, "lobby", largv) < 0 ||
      proc_wait_int(&lobby_p, "listening on http://127.0.0.1:", "%d",
                    &lobby_port, 10000) < 0)
    return -1;
  for (int i = 0; i < CLIENTS; i++) {
    kite_client_config cc;
    kite_client_config_init(&cc);
    char bind[32];
    snprintf(bind, sizeof(bind), "127.0.0.%d:0", 10 + i);
    cc.bind_addr = bind;
    cc.on_connect = on_connect;
    cc.on_message = on_message;
    cc.on_disconnect = on_disconnect;
    if (kite_client_create(&cli[i], &cc) < 0)
      return -1;
  }
  uint64_t end = now_ms() + 10000;
  while (!nodes_registered() && now_ms() < end)
    usleep(50000);
  return nodes_registered() ? 0 : -1;
}

int teardown(void **state) {
  if (key_path[0])
    unlink(key_path);
  for (int i = 0; i < CLIENTS; i++)
    kite_client_destroy(cli[i]);
  if (rc)
    redisFree(rc);
  /* A graceful stop of what still runs exits 0: a crash or a sanitizer
   * report in a node or the lobby fails the test here. */
  int bad = proc_signal(&lobby_p, SIGTERM) != 0;
  for (int i = 0; i < NODES; i++)
    if (proc_signal(&node_p[i], SIGTERM) != 0) {
      print_message("kited n%d did not stop cleanly: see %s\n", i, node_p[i].log);
      bad = 1;
    }
  if (redis_p.pid)
    kill(redis_p.pid, SIGCONT);
  proc_signal(&redis_p, SIGKILL);
  if (!bad)
    procs_cleanup();
  return bad ? -1 : 0;
}

/* Calls of one Redis command so far (INFO commandstats), and the keys. */
long long redis_calls(const char *cmd) {
  redisReply *r = redisCommand(rc, "INFO commandstats");
  long long n = 0;
  char pat[64];
  snprintf(pat, sizeof(pat), "cmdstat_%s:calls=", cmd);
  const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, pat) : NULL;
  if (at)
    n = atoll(at + strlen(pat));
  if (r)
    freeReplyObject(r);
  return n;
}

long long redis_keys(void) {
  long long n = 0;
  redis_cmd_int(&n, "DBSIZE");
  return n;
}
