/* The outsider's game: a UDP relay at the server's public_addr, so one
 * bot moves to a second address, and copies raced from a third. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "game.h"

/* ---- the relay: a second address for one bot ---- */
/* A UDP relay at the server's public_addr: forwards the client's datagrams
 * from upstream socket u[0], then, once |move| is set, from u[1] (a NAT
 * rebinding), and the server's answers back to the client. */
int relay_fd, relay_up[3];
atomic_bool relay_spoof; /* copies raced from a third address */
atomic_uint relay_spoofed;
atomic_bool relay_run, relay_moved, spoof_over;
atomic_uint relay_after_move; /* datagrams back to the client after */
struct sockaddr_in relay_server;
int udp_bind(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
    return -1;
  return fd;
}
int udp_port(int fd) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  return ntohs(a.sin_port);
}
void *relay(void *arg) {
  (void)arg;
  struct sockaddr_in client = {0};
  uint8_t buf[2048];
  unsigned seen = 0;
  while (atomic_load(&relay_run)) {
    struct pollfd pf[4] = {{relay_fd, POLLIN, 0}, {relay_up[0], POLLIN, 0},
                           {relay_up[1], POLLIN, 0}, {relay_up[2], POLLIN, 0}};
    if (poll(pf, 4, 20) <= 0)
      continue;
    if (pf[3].revents & POLLIN) /* the attacker keeps what it is sent */
      (void)recv(relay_up[2], buf, sizeof buf, 0);
    int up = atomic_load(&relay_moved) ? relay_up[1] : relay_up[0];
    if (pf[0].revents & POLLIN) {
      socklen_t l = sizeof client;
      ssize_t n = recvfrom(relay_fd, buf, sizeof buf, 0,
                           (struct sockaddr *)&client, &l);
      if (n > 0 && atomic_load(&relay_spoof) && ++seen % 10 == 0) {
        /* An attacker on the path races a copy from its own address. */
        sendto(relay_up[2], buf, (size_t)n, 0,
               (struct sockaddr *)&relay_server, sizeof relay_server);
        atomic_fetch_add(&relay_spoofed, 1);
      }
      if (n > 0)
        sendto(up, buf, (size_t)n, 0, (struct sockaddr *)&relay_server,
               sizeof relay_server);
    }
    for (int i = 1; i < 3; i++)
      if (pf[i].revents & POLLIN) {
        ssize_t n = recv(pf[i].fd, buf, sizeof buf, 0);
        if (n > 0 && client.sin_port) {
          sendto(relay_fd, buf, (size_t)n, 0, (struct sockaddr *)&client,
                 sizeof client);
          if (i == 2)
            atomic_fetch_add(&relay_after_move, 1);
        }
      }
  }
  return NULL;
}
