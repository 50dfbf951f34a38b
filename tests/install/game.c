/*
 * A game as a new user writes it against an installed kite: public headers
 * only (<kite/kite.h>), built out of kite's tree by tests/install/run.sh
 * three ways (pkg-config, pkg-config --static, find_package). A server on
 * a free loopback port echoes; a client connects over KCP, sends one frame
 * and waits for it back. Exit status 0 on the round trip, 1 otherwise,
 * within a 20 s bound.
 */
#include <kite/kite.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MSG_HELLO 7
static const char hello[] = "hello from an installed kite";

typedef struct game {
  bool echoed, failed;
} game;

static void server_on_message(kite_server *srv, kite_session_id id,
                              uint16_t msg_id, const uint8_t *body, size_t len,
                              void *user) {
  (void)user;
  kite_session_send(srv, id, msg_id, body, len);
}

static void client_on_connect(kite_conn *c, void *user) {
  game *g = user;
  if (kite_conn_send(c, MSG_HELLO, hello, sizeof(hello)) < 0)
    g->failed = true;
}

static void client_on_message(kite_conn *c, uint16_t msg_id,
                              const uint8_t *body, size_t len, void *user) {
  game *g = user;
  if (msg_id == MSG_HELLO && len == sizeof(hello) && !memcmp(body, hello, len))
    g->echoed = true;
  else
    g->failed = true;
  kite_conn_close(c);
}

static void client_on_disconnect(kite_conn *c, int reason, void *user) {
  game *g = user;
  (void)c;
  if (!g->echoed) {
    fprintf(stderr, "game: disconnected before the echo: %s\n",
            kite_client_reason_name(reason));
    g->failed = true;
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void) {
  if (kite_version() != KITE_VERSION_HEX ||
      strcmp(kite_version_string(), KITE_VERSION_STRING) != 0) {
    fprintf(stderr, "game: headers say %s, the library %s\n",
            KITE_VERSION_STRING, kite_version_string());
    return 1;
  }

  kite_server_config scfg;
  kite_server_config_init(&scfg);
  scfg.udp_addr = "127.0.0.1:0"; /* a free port */
  scfg.threads = 1;
  scfg.on_message = server_on_message;
  scfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  int rc = kite_server_create(&srv, &scfg);
  if (rc < 0 || (rc = kite_server_start(srv)) < 0) {
    fprintf(stderr, "game: server: %s\n", kite_strerror(rc));
    return 1;
  }
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));

  game g = {0};
  kite_client_config ccfg;
  kite_client_config_init(&ccfg);
  ccfg.bind_addr = "127.0.0.1:0";
  ccfg.on_connect = client_on_connect;
  ccfg.on_message = client_on_message;
  ccfg.on_disconnect = client_on_disconnect;
  ccfg.user = &g;
  ccfg.log_level = KITE_LOG_WARN;
  kite_client *cli;
  rc = kite_client_create(&cli, &ccfg);
  if (rc == 0)
    rc = kite_client_connect(cli, addr, NULL, NULL);
  if (rc < 0) {
    fprintf(stderr, "game: client: %s\n", kite_strerror(rc));
    return 1;
  }
  double deadline = now_s() + 20;
  while (!g.echoed && !g.failed && now_s() < deadline)
    kite_client_poll(cli, 100);

  kite_client_destroy(cli);
  kite_server_stop(srv);
  kite_server_destroy(srv);
  if (!g.echoed || g.failed) {
    fprintf(stderr, "game: no echo (%s)\n", g.failed ? "failed" : "timed out");
    return 1;
  }
  printf("game: echoed over kite %s\n", kite_version_string());
  return 0;
}
