/*
 * kite-cli's login (login.h): one POST over plain HTTP/1.1, bounded in
 * size and time.
 */
#include "login.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fail(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
  return -1;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for |events| on |fd| until |deadline|: true when they came. */
static bool wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0)
      return false;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)left);
    if (n > 0)
      return true;
    if (n < 0 && errno != EINTR)
      return false;
  }
}

/* "http://HOST:PORT/PATH" into its parts. */
static bool parse_url(const char *url, char *host, size_t hcap, char *port,
                      size_t pcap, const char **path) {
  if (strncmp(url, "http://", 7))
    return false;
  const char *h = url + 7, *slash = strchr(h, '/');
  const char *end = slash ? slash : h + strlen(h);
  const char *colon = NULL;
  if (*h == '[') {
    const char *rb = memchr(h, ']', (size_t)(end - h));
    if (!rb || rb + 1 >= end || rb[1] != ':')
      return false;
    colon = rb + 1;
    if ((size_t)(rb - h - 1) >= hcap)
      return false;
    memcpy(host, h + 1, (size_t)(rb - h - 1));
    host[rb - h - 1] = 0;
  } else {
    colon = memchr(h, ':', (size_t)(end - h));
    if (!colon || colon == h || (size_t)(colon - h) >= hcap)
      return false;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = 0;
  }
  size_t plen = (size_t)(end - colon - 1);
  if (plen == 0 || plen >= pcap)
    return false;
  memcpy(port, colon + 1, plen);
  port[plen] = 0;
  for (size_t i = 0; i < plen; i++)
    if (!isdigit((unsigned char)port[i]))
      return false;
  *path = slash ? slash : "/login";
  return true;
}

static int connect_to(const char *host, const char *port, long long deadline,
                      char *err, size_t cap) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  struct addrinfo *ai, *a;
  int rc = getaddrinfo(host, port, &hints, &ai);
  if (rc != 0)
    return fail(err, cap, "%s: %s", host, gai_strerror(rc));
  int fd = -1, why = ECONNREFUSED;
  for (a = ai; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
      why = errno;
      close(fd);
      fd = -1;
      continue;
    }
    int e = ETIMEDOUT;
    socklen_t el = sizeof(e);
    if (!wait_fd(fd, POLLOUT, deadline) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || e != 0) {
      why = e ? e : ETIMEDOUT;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(ai);
  if (fd < 0)
    return fail(err, cap, "cannot connect to %s port %s: %s", host, port,
                strerror(why));
  return fd;
}

/* The request, the name percent-encoded (all but unreserved characters). */
static int request(char *out, size_t cap, const char *host, const char *port,
                   const char *path, const char *name) {
  char body[8 + 3 * 64];
  size_t n = (size_t)snprintf(body, sizeof(body), "name=");
  for (const char *c = name; *c && n + 4 < sizeof(body); c++) {
    unsigned char ch = (unsigned char)*c;
    if (isalnum(ch) || strchr("-._~", ch))
      body[n++] = (char)ch;
    else
      n += (size_t)snprintf(body + n, sizeof(body) - n, "%%%02X", ch);
  }
  body[n] = 0;
  bool v6 = strchr(host, ':') != NULL;
  return snprintf(out, cap,
                  "POST %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                  path, v6 ? "[" : "", host, v6 ? "]" : "", port, n, body);
}

int cli_login(const char *url, const char *name,
              uint8_t token[KITE_TOKEN_BYTES], char *err, size_t errcap) {
  char host[256], port[8];
  const char *path;
  if (!parse_url(url, host, sizeof(host), port, sizeof(port), &path))
    return fail(err, errcap, "%s: not http://HOST:PORT/PATH", url);
  long long deadline = now_ms() + CLI_LOGIN_TIMEOUT_MS;
  int fd = connect_to(host, port, deadline, err, errcap);
  if (fd < 0)
    return -1;
  char req[1024];
  int len = request(req, sizeof(req), host, port, path, name);
  if (len < 0 || (size_t)len >= sizeof(req)) {
    close(fd);
    return fail(err, errcap, "%s: the request does not fit", url);
  }
  for (int off = 0; off < len;) {
    ssize_t n = send(fd, req + off, (size_t)(len - off), MSG_NOSIGNAL);
    if (n > 0) {
      off += (int)n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) &&
        wait_fd(fd, POLLOUT, deadline))
      continue;
    close(fd);
    return fail(err, errcap, "%s: cannot send the request", url);
  }
  /* The answer, to the server's end of stream. */
  static char ans[CLI_LOGIN_ANSWER_MAX + 1];
  size_t have = 0;
  for (;;) {
    ssize_t n = recv(fd, ans + have, CLI_LOGIN_ANSWER_MAX - have, 0);
    if (n > 0) {
      have += (size_t)n;
      if (have == CLI_LOGIN_ANSWER_MAX)
        break;
      continue;
    }
    if (n == 0)
      break;
    if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLIN, deadline))
      continue;
    close(fd);
    return fail(err, errcap, "%s: %s", url,
                errno == EAGAIN ? "no answer in time" : strerror(errno));
  }
  close(fd);
  ans[have] = 0;
  int status = 0;
  char *head_end = strstr(ans, "\r\n\r\n");
  if (sscanf(ans, "HTTP/1.%*d %d", &status) != 1 || !head_end)
    return fail(err, errcap, "%s: not an HTTP answer", url);
  char *body = head_end + 4;
  size_t blen = have - (size_t)(body - ans);
  if (status != 200) {
    while (blen && (body[blen - 1] == '\n' || body[blen - 1] == '\r'))
      body[--blen] = 0;
    for (size_t i = 0; i < blen; i++)
      if (!isprint((unsigned char)body[i]))
        body[i] = '?';
    return fail(err, errcap, "%s refused: %d %s", url, status, body);
  }
  if (blen != KITE_TOKEN_BYTES) {
    memset(ans, 0, sizeof(ans));
    return fail(err, errcap, "%s: an answer of %zu bytes, not a token (800)",
                url, blen);
  }
  memcpy(token, body, KITE_TOKEN_BYTES);
  memset(ans, 0, sizeof(ans)); /* the token's keys */
  return 0;
}
