/*
 * TCP peers that die while the server writes to them, in every worker
 * mode: a 1 ms broadcast loop sends to every member of a group while the
 * peers reset their connections (SO_LINGER 0). A write that fails closes
 * the session from the send path; in worker modes the session then waits
 * as a zombie for its on_disconnect, and must never be scheduled or
 * flushed again (it has no network side left). The server must survive,
 * call on_disconnect once per session, and stop cleanly.
 */
#include "kite/kite.h"

#include "base/clock.h"
#include "tcp_raw.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>

#define PEERS 120
#define ROUNDS 3

static atomic_int connects, disconnects;
static kite_group *everyone;
static uint8_t state_body[900];

static void on_connect(kite_server *s, kite_session_id id, void *u) {
  (void)s, (void)u;
  kite_group_join(everyone, id);
  atomic_fetch_add(&connects, 1);
}

static void on_disconnect(kite_server *s, kite_session_id id, int r, void *u) {
  (void)s, (void)id, (void)r, (void)u;
  atomic_fetch_add(&disconnects, 1);
}

static atomic_bool ticking;

/* A game loop's 1 ms broadcast, from a thread of the application's own. */
static void *ticker(void *arg) {
  (void)arg;
  while (atomic_load(&ticking)) {
    kite_group_broadcast(everyone, 0x10, state_body, sizeof(state_body));
    poll(NULL, 0, 1);
  }
  return NULL;
}

/* The peer resets instead of closing: the server's next write fails. */
static void reset_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
}

static void run_mode(kite_worker_mode mode) {
  atomic_store(&connects, 0);
  atomic_store(&disconnects, 0);
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.worker_mode = mode;
  cfg.workers = mode == KITE_WORKERS_BIND || mode == KITE_WORKERS_DYNAMIC
                    ? PEERS + 8 : 4;
  cfg.on_connect = on_connect;
  cfg.on_disconnect = on_disconnect;
  cfg.log_level = KITE_LOG_ERROR;
  kite_server *srv;
  assert_int_equal(kite_server_create(&srv, &cfg), 0);
  everyone = kite_group_create(srv);
  assert_non_null(everyone);
  assert_int_equal(kite_server_start(srv), 0);
  int port = kite_server_tcp_port(srv);
  pthread_t th;
  atomic_store(&ticking, true);
  assert_int_equal(pthread_create(&th, NULL, ticker, NULL), 0);

  int total = 0;
  for (int round = 0; round < ROUNDS; round++) {
    int fds[PEERS];
    for (int i = 0; i < PEERS; i++) {
      kite__ctrl opened;
      fds[i] = tcp_raw_connect(port, 3000, 4096);
      assert_true(fds[i] >= 0);
      assert_true(tcp_raw_open(fds[i], &opened));
    }
    total += PEERS;
    uint64_t end = kite__now_us() + 10 * 1000000ull;
    while (atomic_load(&connects) < total && kite__now_us() < end)
      poll(NULL, 0, 1);
    assert_int_equal(atomic_load(&connects), total);
    /* Broadcasts are flowing; reset the peers while they do. */
    for (int i = 0; i < PEERS; i++) {
      reset_close(fds[i]);
      if (i % 8 == 0)
        poll(NULL, 0, 1);
    }
    end = kite__now_us() + 20 * 1000000ull;
    while (atomic_load(&disconnects) < total && kite__now_us() < end)
      poll(NULL, 0, 2);
    assert_int_equal(atomic_load(&disconnects), total);
  }
  atomic_store(&ticking, false);
  pthread_join(th, NULL);
  assert_int_equal(kite_server_stop(srv), 0);
  assert_int_equal(atomic_load(&disconnects), total);
  kite_group_destroy(everyone);
  kite_server_destroy(srv);
}

static void inline_mode(void **st) { (void)st; run_mode(KITE_WORKERS_INLINE); }
static void hash_mode(void **st) { (void)st; run_mode(KITE_WORKERS_HASH); }
static void bind_mode(void **st) { (void)st; run_mode(KITE_WORKERS_BIND); }
static void dynamic_mode(void **st) { (void)st; run_mode(KITE_WORKERS_DYNAMIC); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(inline_mode),
      cmocka_unit_test(hash_mode),
      cmocka_unit_test(bind_mode),
      cmocka_unit_test(dynamic_mode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
