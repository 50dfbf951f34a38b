/*
 * libkite_cluster in one process, against this test's own redis-server
 * (a free port, no config file, no persistence): every limit has its
 * refusal and its counter, bad pub/sub input is a counted refusal, a
 * node's own broadcasts are not delivered twice, a Redis outage is
 * counted and survived.
 *
 * Usage: test_cluster_limits REDIS-SERVER.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/cluster.h"
#include "kite/kite.h"

#include "procs.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *redis_bin;
static proc redis_p;
static int redis_port;
static char redis_addr[32];
static redisContext *rc;
static kite_server *srv;
static kite_group *local;

static int setup(void **state) {
  if (procs_init() < 0)
    return -1;
  for (int tries = 0; tries < 5 && !rc; tries++) {
    redis_port = free_tcp_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    char *argv[] = {(char *)redis_bin, "--port", port, "--save", "",
                    "--appendonly", "no", "--bind", "127.0.0.1", NULL};
    if (proc_start(&redis_p, "redis", argv) < 0)
      return -1;
    for (int i = 0; i < 100 && !rc; i++) {
      struct timeval tv = {1, 0};
      redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
      redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
      if (r) {
        freeReplyObject(r);
        redisSetTimeout(c, tv);
        rc = c;
      } else {
        if (c)
          redisFree(c);
        usleep(50000);
      }
    }
    if (!rc)
      proc_signal(&redis_p, SIGKILL);
  }
  if (!rc)
    return -1;
  snprintf(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", redis_port);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.threads = 1;
  if (kite_server_create(&srv, &cfg) < 0 || kite_server_start(srv) < 0)
    return -1;
  local = kite_group_create(srv);
  return local ? 0 : -1;
}

static int teardown(void **state) {
  kite_group_destroy(local);
  if (srv) {
    kite_server_stop(srv);
    kite_server_destroy(srv);
  }
  if (rc)
    redisFree(rc);
  if (redis_p.pid)
    kill(redis_p.pid, SIGCONT);
  proc_signal(&redis_p, SIGKILL);
  procs_cleanup();
  return 0;
}

static kite_cluster_config config(const char *id) {
  kite_cluster_config cc;
  kite_cluster_config_init(&cc);
  cc.srv = srv;
  cc.redis_addr = redis_addr;
  cc.node_id = id;
  cc.public_addr = "127.0.0.1:7001";
  return cc;
}

/* Waits up to |ms| for the counter |field| to reach |n|. */
#define WAIT_STAT(cl, field, n, ms)                                          \
  do {                                                                       \
    kite_cluster_stats st_;                                                  \
    uint64_t end_ = now_ms() + (ms);                                         \
    do {                                                                     \
      kite_cluster_stats_get(cl, &st_);                                      \
      if (st_.field >= (uint64_t)(n))                                        \
        break;                                                               \
      usleep(10000);                                                         \
    } while (now_ms() < end_);                                               \
    assert_true(st_.field >= (uint64_t)(n));                                 \
  } while (0)

static void publish_raw(const char *channel, const void *p, size_t len) {
  redisReply *r = redisCommand(rc, "PUBLISH %s %b", channel, p, len);
  assert_non_null(r);
  freeReplyObject(r);
}

static void test_config_refused(void **state) {
  kite_cluster *cl;
  kite_cluster_config cc = config("n1");
  cc.srv = NULL;
  assert_int_equal(kite_cluster_create(&cl, &cc), KITE_EINVAL);
  cc = config("bad id");
  assert_int_equal(kite_cluster_create(&cl, &cc), KITE_EINVAL);
  cc = config("n1");
  cc.redis_addr = "no-port";
  assert_int_equal(kite_cluster_create(&cl, &cc), KITE_EINVAL);
  cc = config("n1");
  cc.public_addr = NULL;
  assert_int_equal(kite_cluster_create(&cl, &cc), KITE_EINVAL);
  cc = config("n1");
  cc.node_ttl_ms = cc.renew_ms;
  assert_int_equal(kite_cluster_create(&cl, &cc), KITE_EINVAL);
  cc = config("n1");
  cc.queue_max = 0;
  assert_int_equal(kite_cluster_create(&cl, &cc), KITE_EINVAL);
}

static void test_limits(void **state) {
  kite_cluster *cl;
  kite_cluster_config cc = config("lim");
  cc.max_rooms = 2;
  cc.max_groups = 1;
  cc.max_body = 16;
  cc.queue_max = 1;
  assert_int_equal(kite_cluster_create(&cl, &cc), 0);
  WAIT_STAT(cl, renewals, 1, 10000);
  /* max_groups */
  kite_cluster_group *g = kite_cluster_group_open(cl, "g1", local);
  assert_non_null(g);
  assert_null(kite_cluster_group_open(cl, "g2", local));
  assert_null(kite_cluster_group_open(cl, "g1 x", local)); /* bad name */
  /* max_body */
  uint8_t body[17] = {0};
  assert_int_equal(kite_cluster_broadcast(g, 5, body, 17), KITE_EMSGSIZE);
  /* max_rooms: the third hold is refused and counted */
  const char *rooms[] = {"a", "b", "c"};
  for (int i = 0; i < 3; i++) {
    int r;
    while ((r = kite_cluster_room_hold(cl, rooms[i])) == KITE_EFULL)
      usleep(1000); /* queue_max 1: wait for the thread */
    assert_int_equal(r, 0);
  }
  WAIT_STAT(cl, rooms_refused, 1, 10000);
  kite_cluster_stats st;
  kite_cluster_stats_get(cl, &st);
  assert_int_equal(st.rooms_held, 2);
  /* queue_max: a burst the thread cannot keep up with */
  int full = 0;
  for (int i = 0; i < 10000; i++)
    full += kite_cluster_broadcast(g, 5, body, 4) == KITE_EFULL;
  kite_cluster_stats_get(cl, &st);
  assert_true(full > 0);
  assert_true(st.queue_full >= (uint64_t)full);
  assert_true(st.publish_dropped >= (uint64_t)full);
  kite_cluster_destroy(cl); /* leaves: registration and leases gone */
  long long e = -1;
  redisReply *r = redisCommand(rc, "EXISTS kite:node:lim kite:room:a kite:room:b");
  assert_non_null(r);
  e = r->integer;
  freeReplyObject(r);
  assert_int_equal(e, 0);
}

static void test_bad_input_and_own(void **state) {
  kite_cluster *cl;
  kite_cluster_config cc = config("me");
  assert_int_equal(kite_cluster_create(&cl, &cc), 0);
  kite_cluster_group *g = kite_cluster_group_open(cl, "world", local);
  assert_non_null(g);
  WAIT_STAT(cl, renewals, 1, 10000);
  /* The SUBSCRIBE went before the renewal's wake; wait for Redis to list it. */
  uint64_t end = now_ms() + 10000;
  long long subs = 0;
  do {
    redisReply *r = redisCommand(rc, "PUBSUB NUMSUB kite:g:world");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
      subs = r->element[1]->integer;
    if (r)
      freeReplyObject(r);
  } while (subs < 1 && now_ms() < end && !usleep(10000));
  assert_int_equal(subs, 1);
  /* Malformed: no origin terminator, too short, an origin id too long. */
  char junk[80];
  memset(junk, 'x', sizeof(junk));
  publish_raw("kite:g:world", junk, sizeof(junk));
  publish_raw("kite:g:world", "x", 1);
  publish_raw("kite:g:world", "ab\0", 3);
  WAIT_STAT(cl, received_bad, 3, 10000);
  /* Its own broadcast comes back on the subscription and is skipped: a
   * foreign message published after it (published counts what Redis has
   * answered) is the first one counted as received. */
  assert_int_equal(kite_cluster_broadcast(g, 5, "hi", 2), 0);
  WAIT_STAT(cl, published, 1, 10000);
  static const char other[] = "other\0\x05\x00hello";
  publish_raw("kite:g:world", other, sizeof(other) - 1);
  publish_raw("kite:g:world", "y", 1); /* a refusal after both: in order */
  WAIT_STAT(cl, received_bad, 4, 10000);
  kite_cluster_stats st;
  kite_cluster_stats_get(cl, &st);
  assert_int_equal(st.received, 1);
  assert_int_equal(st.received_bad, 4);
  /* Redis stopped: counted, the node keeps its state, and comes back. */
  kill(redis_p.pid, SIGSTOP);
  WAIT_STAT(cl, redis_errors, 1, 10000);
  kite_cluster_stats_get(cl, &st);
  assert_int_equal(st.connected, 0);
  uint64_t connects = st.connects;
  assert_int_equal(kite_cluster_broadcast(g, 5, "lost", 4), 0); /* local only */
  WAIT_STAT(cl, publish_dropped, 1, 10000);
  kill(redis_p.pid, SIGCONT);
  WAIT_STAT(cl, connects, connects + 1, 15000);
  kite_cluster_destroy(cl);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_cluster_limits REDIS-SERVER\n");
    return 2;
  }
  redis_bin = argv[1];
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_refused),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_bad_input_and_own),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
