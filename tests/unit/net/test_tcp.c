/*
 * TCP listeners and accept: a shared port, TCP_NODELAY on what is
 * accepted, "none waiting" as an answer rather than an error, and, in a
 * child process with a tiny descriptor limit, connections refused one by
 * one when descriptors run out (never a busy loop), then accepted again
 * once one is free; and, with the spare lost to another thread, the
 * connection left queued and the caller told to back off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kite/error.h"
#include "net/tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void listen_any(kite__tcp_acceptor *ac, bool reuseport, int port) {
  kite__addr a;
  char text[32];
  snprintf(text, sizeof(text), "127.0.0.1:%d", port);
  assert_int_equal(kite__addr_parse(&a, text), 0);
  int err;
  const char *what;
  assert_int_equal(kite__tcp_listen(ac, &a, reuseport, 64, &err, &what), 0);
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
    return -1;
  return fd;
}

static void accept_and_nodelay(void **state) {
  (void)state;
  kite__tcp_acceptor ac;
  listen_any(&ac, true, 0);
  int port = kite__tcp_local_port(&ac);
  assert_true(port > 0);
  kite__addr peer;
  assert_int_equal(kite__tcp_accept(&ac, &peer), KITE_EAGAIN);
  int c = dial(port);
  assert_true(c >= 0);
  struct pollfd p = {.fd = ac.fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 5000), 1);
  int fd = kite__tcp_accept(&ac, &peer);
  assert_true(fd >= 0);
  int on = 0;
  socklen_t len = sizeof(on);
  assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
  assert_true(on);
  assert_int_equal(kite__addr_port(&peer) > 0, 1);
  close(fd);
  close(c);
  kite__tcp_acceptor_close(&ac);
}

static void one_port_for_many_listeners(void **state) {
  (void)state;
  kite__tcp_acceptor a, b, c;
  listen_any(&a, true, 0);
  listen_any(&b, true, kite__tcp_local_port(&a)); /* the same port */
  kite__addr addr;
  char text[32];
  snprintf(text, sizeof(text), "127.0.0.1:%d", kite__tcp_local_port(&a));
  kite__addr_parse(&addr, text);
  int err;
  const char *what = NULL;
  /* Without SO_REUSEPORT the port is taken. */
  assert_int_equal(kite__tcp_listen(&c, &addr, false, 64, &err, &what), KITE_ESYS);
  assert_int_equal(err, EADDRINUSE);
  assert_string_equal(what, "bind()");
  kite__tcp_acceptor_close(&a);
  kite__tcp_acceptor_close(&b);
}

/* In a child: its descriptor limit is changed for good. */
static int out_of_descriptors(void) {
  kite__tcp_acceptor ac;
  listen_any(&ac, false, 0);
  int port = kite__tcp_local_port(&ac);
  int clients[3];
  for (int i = 0; i < 3; i++)
    if ((clients[i] = dial(port)) < 0)
      return 10;
  usleep(50000); /* the handshakes complete into the backlog */
  struct rlimit rl = {64, 64};
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    return 11;
  int last = -1;
  while ((last = dup(0)) >= 0)
    ; /* every descriptor taken */
  kite__addr peer;
  /* Each waiting connection is refused once; then nothing waits. */
  for (int i = 0; i < 3; i++)
    if (kite__tcp_accept(&ac, &peer) != KITE_EFULL)
      return 20 + i;
  if (kite__tcp_accept(&ac, &peer) != KITE_EAGAIN)
    return 30; /* Linux says EMFILE even then: it must not read as a refusal */
  /* The refused peers see their connection end. */
  char c;
  for (int i = 0; i < 3; i++) {
    struct pollfd p = {.fd = clients[i], .events = POLLIN};
    if (poll(&p, 1, 5000) != 1 || recv(clients[i], &c, 1, 0) > 0)
      return 40 + i;
  }
  /* Descriptors free again (the clients'): a new connection is
   * accepted, not refused. */
  for (int i = 0; i < 3; i++)
    close(clients[i]);
  int fresh = dial(port);
  if (fresh < 0)
    return 51;
  struct pollfd p = {.fd = ac.fd, .events = POLLIN};
  poll(&p, 1, 5000);
  int fd = kite__tcp_accept(&ac, &peer);
  if (fd < 0)
    return 52;
  return 0;
}

/* In a child: the spare is gone (another thread took its slot) and the
 * table is full. The waiting connection cannot be refused: it must stay
 * queued and the caller be told to back off, never a refusal counted that
 * did not happen. Once a slot is free the spare is taken back first and
 * the connection refused with it. */
static int no_spare_keeps_it_queued(void) {
  kite__tcp_acceptor ac;
  listen_any(&ac, false, 0);
  int client = dial(kite__tcp_local_port(&ac));
  if (client < 0)
    return 10;
  struct pollfd p = {.fd = ac.fd, .events = POLLIN};
  if (poll(&p, 1, 5000) != 1)
    return 11;
  struct rlimit rl = {64, 64};
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    return 12;
  close(ac.spare);
  ac.spare = -1;
  int last = -1;
  while ((last = dup(0)) >= 0)
    ; /* every descriptor taken */
  kite__addr peer;
  for (int i = 0; i < 3; i++) {
    errno = 0;
    if (kite__tcp_accept(&ac, &peer) != KITE_ESYS)
      return 20 + i; /* a refusal that never took the connection */
    if (errno != EMFILE)
      return 30 + i;
  }
  if (poll(&p, 1, 0) != 1)
    return 40; /* still queued */
  struct pollfd q = {.fd = client, .events = POLLIN};
  if (poll(&q, 1, 0) != 0)
    return 41; /* and the peer has heard nothing */
  close(client); /* one slot free: the spare is taken back with it */
  if (kite__tcp_accept(&ac, &peer) != KITE_EFULL || ac.spare < 0)
    return 50;
  if (kite__tcp_accept(&ac, &peer) != KITE_EAGAIN)
    return 51;
  return 0;
}

static void backs_off_when_the_spare_is_gone(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(no_spare_keeps_it_queued());
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void refuses_when_out_of_descriptors(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(out_of_descriptors());
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_and_nodelay),
      cmocka_unit_test(one_port_for_many_listeners),
      cmocka_unit_test(refuses_when_out_of_descriptors),
      cmocka_unit_test(backs_off_when_the_spare_is_gone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
