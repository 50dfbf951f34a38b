/*
 * cluster_redis: what one Redis carries for a kite cluster (docs/
 * CLUSTER.md). Runs kite's own scripts (src/cluster/cluster_lua.h) and
 * publishes against a Redis given on the command line, pipelined, one
 * connection, and prints operations per second for each:
 *
 *   renew R      a node's renewal holding R room leases (one per second
 *                per node in a cluster): R = 0, 16, 64
 *   place        a login's placement (one per login)
 *   publish S    a cluster-wide broadcast (one per broadcast), 100 bytes,
 *                with S subscribed nodes reading it: S = 3, 16
 *
 *   cluster_redis HOST:PORT [OPS]     (OPS per measure, 20000)
 *
 * It writes keys under "kbench:" only, and deletes them at the end.
 */
#include "cluster/cluster_lua.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEPTH 64
#define P "kbench:"

static redisContext *connect_to(const char *host, int port) {
  redisContext *c = redisConnect(host, port);
  if (!c || c->err) {
    fprintf(stderr, "cluster_redis: cannot connect to %s:%d\n", host, port);
    exit(1);
  }
  return c;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void drain(redisContext *c, int n) {
  for (int i = 0; i < n; i++) {
    redisReply *r;
    if (redisGetReply(c, (void **)&r) != REDIS_OK) {
      fprintf(stderr, "cluster_redis: %s\n", c->errstr);
      exit(1);
    }
    freeReplyObject(r);
  }
}

/* Runs |ops| commands made by |append|, DEPTH in flight; ops per second. */
static double run(redisContext *c, int ops, void (*append)(redisContext *, int),
                  redisContext **subs, int nsubs) {
  double t0 = now_s();
  for (int done = 0; done < ops; done += DEPTH) {
    int n = ops - done < DEPTH ? ops - done : DEPTH;
    for (int i = 0; i < n; i++)
      append(c, done + i);
    drain(c, n);
    for (int s = 0; s < nsubs; s++) /* the nodes read what was published */
      drain(subs[s], n);
  }
  return ops / (now_s() - t0);
}

static int rooms_now;
static void append_renew(redisContext *c, int i) {
  const char *argv[11 + 64];
  char seats[] = "10000", sessions[] = "100", nrooms[8];
  snprintf(nrooms, sizeof(nrooms), "%d", rooms_now);
  static char names[64][16];
  int n = 0;
  argv[n++] = "EVAL";
  argv[n++] = KITE__LUA_REGISTER;
  argv[n++] = "0";
  argv[n++] = P;
  argv[n++] = (i & 1) ? "n1" : "n2";
  argv[n++] = "127.0.0.1:7001";
  argv[n++] = seats;
  argv[n++] = sessions;
  argv[n++] = nrooms;
  argv[n++] = "3000";
  argv[n++] = "3000";
  for (int r = 0; r < rooms_now; r++) {
    snprintf(names[r], sizeof(names[r]), "%s-r%d", (i & 1) ? "n1" : "n2", r);
    argv[n++] = names[r];
  }
  redisAppendCommandArgv(c, n, argv, NULL);
}

static void append_place(redisContext *c, int i) {
  redisAppendCommand(c, "EVAL %s 0 %s room%d 3000 10000", KITE__LUA_PLACE, P,
                     i % 1000);
}

static void append_publish(redisContext *c, int i) {
  static char body[100];
  memset(body, 'x', sizeof(body));
  redisAppendCommand(c, "PUBLISH " P "g:world %b", body, sizeof(body));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: cluster_redis HOST:PORT [OPS]\n");
    return 2;
  }
  char host[256];
  const char *colon = strrchr(argv[1], ':');
  if (!colon || (size_t)(colon - argv[1]) >= sizeof(host))
    return 2;
  memcpy(host, argv[1], (size_t)(colon - argv[1]));
  host[colon - argv[1]] = 0;
  int port = atoi(colon + 1);
  int ops = argc > 2 ? atoi(argv[2]) : 20000;
  redisContext *c = connect_to(host, port);

  for (int r = 0; r <= 64; r = r ? r * 4 : 16) {
    rooms_now = r;
    printf("renew %-3d  %9.0f /s\n", r, run(c, ops, append_renew, NULL, 0));
  }
  /* Three registered nodes for the placements. */
  rooms_now = 0;
  for (int i = 0; i < 3; i++)
    freeReplyObject(redisCommand(c, "HSET " P "node:n%d addr 127.0.0.1:%d seats 100000000", i, 7001 + i));
  freeReplyObject(redisCommand(c, "ZADD " P "nodes 0 n0 0 n1 0 n2"));
  printf("place      %9.0f /s\n", run(c, ops, append_place, NULL, 0));

  redisContext *subs[16];
  for (int s = 0; s < 16; s++) {
    subs[s] = connect_to(host, port);
    freeReplyObject(redisCommand(subs[s], "SUBSCRIBE " P "g:world"));
    if (s == 2)
      printf("publish 3  %9.0f /s\n", run(c, ops, append_publish, subs, 3));
  }
  printf("publish 16 %9.0f /s\n", run(c, ops, append_publish, subs, 16));
  for (int s = 0; s < 16; s++)
    redisFree(subs[s]);
  freeReplyObject(redisCommand(c, "EVAL %s 0 %s", /* its keys only */
                               "for _, k in ipairs(redis.call('KEYS', ARGV[1]))"
                               " do redis.call('DEL', k) end", P "*"));
  redisFree(c);
  return 0;
}
