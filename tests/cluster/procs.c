/* The cluster test's processes and HTTP (procs.h). */
#include "procs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[128];

uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int procs_init(void) {
  snprintf(dir, sizeof(dir), "/tmp/kite_test_cluster.XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

void procs_cleanup(void) {
  if (!dir[0] || getenv("KITE_TEST_KEEP"))
    return;
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
}

int proc_start(proc *p, const char *name, char *const argv[]) {
  snprintf(p->log, sizeof(p->log), "%s/%s.log", dir, name);
  int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return -1;
  }
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fd);
  p->pid = pid;
  return 0;
}

int proc_wait_int(const proc *p, const char *marker, const char *fmt,
                  int *value, int ms) {
  uint64_t end = now_ms() + (uint64_t)ms;
  char buf[8192];
  do {
    FILE *f = fopen(p->log, "r");
    if (f) {
      size_t n = fread(buf, 1, sizeof(buf) - 1, f);
      fclose(f);
      buf[n] = 0;
      const char *at = strstr(buf, marker);
      if (at && strchr(at, '\n') && sscanf(at + strlen(marker), fmt, value) == 1)
        return 0;
    }
    usleep(20000);
  } while (now_ms() < end);
  return -1;
}

static int ended(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int proc_signal(proc *p, int sig) {
  if (p->pid <= 0)
    return 0;
  kill(p->pid, sig);
  if (sig != SIGTERM && sig != SIGKILL)
    return 0;
  int status = 0;
  for (int i = 0; i < 250; i++) {
    if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
      p->pid = 0;
      return ended(status);
    }
    usleep(20000);
  }
  kill(p->pid, SIGCONT);
  kill(p->pid, SIGKILL);
  waitpid(p->pid, &status, 0);
  p->pid = 0;
  return ended(status);
}

int free_tcp_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

int http_get(int port, const char *path, char *body, size_t cap, int ms) {
  char req[4096];
  int n = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                   path);
  if (n < 0 || (size_t)n >= sizeof(req))
    return 0;
  return http_raw(port, req, (size_t)n, body, cap, ms);
}

int http_raw(int port, const char *req, size_t len, char *body, size_t cap,
             int ms) {
  body[0] = 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 0;
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char resp[8192];
  size_t got = 0;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
      send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len) {
    ssize_t r;
    while (got < sizeof(resp) - 1 &&
           (r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0)) > 0)
      got += (size_t)r;
  }
  close(fd);
  resp[got] = 0;
  int status = 0;
  if (sscanf(resp, "HTTP/1.1 %d", &status) != 1)
    return 0;
  const char *b = strstr(resp, "\r\n\r\n");
  if (b)
    snprintf(body, cap, "%s", b + 4);
  return status;
}

bool json_str(const char *json, const char *key, char *out, size_t cap) {
  char pat[64];
  snprintf(pat, sizeof(pat), "\"%s\":\"", key);
  const char *at = strstr(json, pat);
  if (!at)
    return false;
  at += strlen(pat);
  const char *end = strchr(at, '"');
  if (!end || (size_t)(end - at) >= cap)
    return false;
  memcpy(out, at, (size_t)(end - at));
  out[end - at] = 0;
  return true;
}
