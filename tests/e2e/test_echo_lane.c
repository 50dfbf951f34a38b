/*
 * kite-echo echoes the lane on the lane (issue 18): the real binary, given
 * a key file, on a free port; kite's client over v2 UDP sends sequenced
 * and unsequenced unreliable messages and a reliable one, and each comes
 * back the way it went (same msg_id, sequenced when it came sequenced).
 * The server is started by PID and stopped by it (SIGTERM, then SIGKILL).
 * Usage: test_echo_lane KITE_ECHO_BINARY
 */
#include "kite/kite.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define PID_PROTO 0x4b495445u

static const char *echo_bin;
static pid_t child = -1;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct seen {
  int open;
  uint32_t seq, unseq, frames, wrong;
} seen;

static void c_up(kite_conn *c, void *u) {
  (void)c;
  ((seen *)u)->open = 1;
}
static void c_msg(kite_conn *c, uint16_t m, const uint8_t *b, size_t n,
                  void *u) {
  (void)c, (void)b;
  seen *e = u;
  e->frames++;
  e->wrong += m != 21 || n != 5;
}
static void c_lane(kite_conn *c, uint16_t m, unsigned f, const uint8_t *b,
                   size_t n, void *u) {
  (void)c;
  seen *e = u;
  if (f & KITE_UNRELIABLE_SEQUENCED) {
    e->seq++;
    e->wrong += m != 20 || n != 4 || b[0] != 's';
  } else {
    e->unseq++;
    e->wrong += m != 22 || n != 4 || b[0] != 'u';
  }
}

/* Starts kite-echo on a free port with |keyfile|; its port, from the
 * line it prints once listening. */
static int start_echo(const char *keyfile) {
  int out[2];
  assert_int_equal(pipe(out), 0);
  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execl(echo_bin, echo_bin, "--udp", "127.0.0.1:0", "--threads", "1",
          "--token-key", keyfile, "--protocol-id", "0x4B495445", "--versions",
          "2", (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  FILE *f = fdopen(out[0], "r");
  char line[512] = "";
  assert_non_null(fgets(line, sizeof(line), f)); /* blocks until listening */
  fclose(f);
  const char *p = strstr(line, " port ");
  assert_non_null(p);
  return atoi(p + 6);
}

static void stop_echo(void) {
  if (child <= 0)
    return;
  kill(child, SIGTERM);
  for (int i = 0; i < 500; i++) {
    if (waitpid(child, NULL, WNOHANG) == child) {
      child = -1;
      return;
    }
    usleep(10000);
  }
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  child = -1;
}

static void echoes_the_lane_on_the_lane(void **state) {
  (void)state;
  uint8_t key[KITE_TOKEN_KEY_BYTES];
  assert_int_equal(kite_token_key_new(key), 0);
  char keyfile[] = "/tmp/kite-echo-lane-XXXXXX";
  int fd = mkstemp(keyfile);
  assert_true(fd >= 0);
  for (int i = 0; i < KITE_TOKEN_KEY_BYTES; i++)
    dprintf(fd, "%02x", key[i]);
  dprintf(fd, "\n");
  close(fd);
  int port = start_echo(keyfile);
  unlink(keyfile);
  assert_true(port > 0);

  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  const char *addrs[] = {addr};
  kite_token_params tp = {.protocol_id = PID_PROTO, .client_id = 1,
                          .ttl_s = 60, .addrs = addrs, .naddrs = 1};
  uint8_t token[KITE_TOKEN_BYTES];
  assert_int_equal(kite_token_mint(token, key, &tp), 0);
  seen e = {0};
  kite_client_config cfg;
  kite_client_config_init(&cfg);
  cfg.bind_addr = "127.0.0.1:0";
  cfg.on_connect = c_up;
  cfg.on_message = c_msg;
  cfg.on_unreliable = c_lane;
  cfg.user = &e;
  cfg.log_level = KITE_LOG_ERROR;
  kite_client *c;
  assert_int_equal(kite_client_create(&c, &cfg), 0);
  kite_conn *conn;
  assert_int_equal(kite_client_connect_token(c, token, NULL, &conn), 0);
  uint64_t end = now_ms() + 15000;
  while (!e.open && now_ms() < end)
    kite_client_poll(c, 10);
  assert_true(e.open);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(kite_conn_send_unreliable(conn, 20, "seq!", 4,
                                               KITE_UNRELIABLE_SEQUENCED),
                     0);
    assert_int_equal(kite_conn_send_unreliable(conn, 22, "uns!", 4, 0), 0);
    kite_client_poll(c, 0);
  }
  assert_int_equal(kite_conn_send(conn, 21, "frame", 5), 0);
  end = now_ms() + 15000;
  while ((e.seq < 10 || e.unseq < 10 || e.frames < 1) && now_ms() < end)
    kite_client_poll(c, 10);
  kite_client_destroy(c);
  stop_echo();
  assert_int_equal(e.seq, 10); /* loopback: none lost */
  assert_int_equal(e.unseq, 10);
  assert_int_equal(e.frames, 1);
  assert_int_equal(e.wrong, 0);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_echo_lane KITE_ECHO_BINARY\n");
    return 2;
  }
  echo_bin = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(echoes_the_lane_on_the_lane),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  stop_echo(); /* a failed assertion left it running */
  return rc;
}
