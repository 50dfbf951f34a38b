/*
 * A whole server life for valgrind: create, start (two shards, so the
 * steering filter is attached; TCP and the metrics endpoint too), one
 * client round trip over UDP and one over TCP, one scrape, stop, destroy. Everything a
 * start hands the kernel (the BPF program, sockaddrs, msghdrs, epoll
 * events) must be fully initialised: memcheck checks each syscall's
 * arguments, and the ctest command fails on its first error. Exits 0 when
 * the round trip and the scrape worked, 1 otherwise, printing why.
 */
#include "kite/kite.h"

#include "base/clock.h"
#include "e2e_poll.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);             \
      return 1;                                                              \
    }                                                                        \
  } while (0)

static void on_echo(const kite_request *r) {
  kite_reply(r, r->msg_id, r->body, r->len);
}

static int up, echoes;

static void c_up(kite_conn *c, void *u) {
  (void)c; (void)u;
  up++;
}
static void c_msg(kite_conn *c, uint16_t id, const uint8_t *b, size_t n, void *u) {
  (void)c; (void)u;
  if (id == 1 && n == 4 && !memcmp(b, "ping", 4))
    echoes++;
}

/* One GET /metrics; true on a 200 within 20 s (valgrind is slow). */
static int scrape_ok(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    return 0;
  const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
  if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
    close(fd);
    return 0;
  }
  char head[16] = {0};
  size_t len = 0;
  uint64_t end = kite__now_us() + 20000000;
  while (len < sizeof(head) - 1 && kite__now_us() < end) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0)
      continue;
    ssize_t n = recv(fd, head + len, sizeof(head) - 1 - len, 0);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  return strncmp(head, "HTTP/1.1 200 ", 13) == 0;
}

int main(void) {
  kite_server_config cfg;
  kite_server_config_init(&cfg);
  cfg.udp_addr = "127.0.0.1:0";
  cfg.tcp_addr = "127.0.0.1:0";
  cfg.metrics_addr = "127.0.0.1:0";
  cfg.threads = 2;
  cfg.log_level = KITE_LOG_WARN;
  kite_server *srv;
  CHECK(kite_server_create(&srv, &cfg) == 0);
  kite_server_route(srv, 1, on_echo, NULL);
  CHECK(kite_server_start(srv) == 0);

  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_udp_port(srv));
  kite_client_config cc;
  kite_client_config_init(&cc);
  cc.on_connect = c_up;
  cc.on_message = c_msg;
  cc.log_level = KITE_LOG_WARN;
  kite_client *cli;
  CHECK(kite_client_create(&cli, &cc) == 0);
  kite_conn *conn, *tconn;
  CHECK(kite_client_connect(cli, addr, NULL, &conn) == 0);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", kite_server_tcp_port(srv));
  CHECK(kite_client_connect_tcp(cli, addr, NULL, &tconn) == 0);
  CHECK(POLL_UNTIL(cli, up == 2, 20000));
  CHECK(kite_conn_send(conn, 1, "ping", 4) == 0);
  CHECK(kite_conn_send(tconn, 1, "ping", 4) == 0);
  CHECK(POLL_UNTIL(cli, echoes == 2, 20000));
  CHECK(scrape_ok(kite_server_metrics_port(srv)));
  kite_client_destroy(cli);

  kite_server_stop(srv);
  kite_server_destroy(srv);
  return 0;
}
