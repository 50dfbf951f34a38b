#include "net/addr.h"

#include "kite/error.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kite__addr_parse(kite__addr *a, const char *text) {
  memset(a, 0, sizeof(*a));
  if (!text)
    return KITE_EINVAL;
  char host[256];
  const char *port;
  if (text[0] == '[') {
    const char *end = strchr(text, ']');
    if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host))
      return KITE_EINVAL;
    memcpy(host, text + 1, (size_t)(end - text - 1));
    host[end - text - 1] = 0;
    port = end + 2;
  } else {
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= sizeof(host))
      return KITE_EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    port = colon + 1;
  }
  char *end;
  long p = strtol(port, &end, 10);
  if (*port == 0 || *end != 0 || p < 0 || p > 65535)
    return KITE_EINVAL;
  if (host[0] == 0)
    strcpy(host, "0.0.0.0");
  if (inet_pton(AF_INET, host, &a->v4.sin_addr) == 1) {
    a->v4.sin_family = AF_INET;
    a->v4.sin_port = htons((uint16_t)p);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &a->v6.sin6_addr) == 1) {
    a->v6.sin6_family = AF_INET6;
    a->v6.sin6_port = htons((uint16_t)p);
    return 0;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
    return KITE_EINVAL;
  bool ok = kite__addr_from(a, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (!ok)
    return KITE_EINVAL;
  if (a->sa.sa_family == AF_INET)
    a->v4.sin_port = htons((uint16_t)p);
  else
    a->v6.sin6_port = htons((uint16_t)p);
  return 0;
}

socklen_t kite__addr_len(const kite__addr *a) {
  return a->sa.sa_family == AF_INET6 ? sizeof(a->v6) : sizeof(a->v4);
}

uint16_t kite__addr_port(const kite__addr *a) {
  return ntohs(a->sa.sa_family == AF_INET6 ? a->v6.sin6_port : a->v4.sin_port);
}

bool kite__addr_equal(const kite__addr *a, const kite__addr *b) {
  if (a->sa.sa_family != b->sa.sa_family)
    return false;
  if (a->sa.sa_family == AF_INET)
    return a->v4.sin_port == b->v4.sin_port &&
           a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
  return a->v6.sin6_port == b->v6.sin6_port &&
         memcmp(&a->v6.sin6_addr, &b->v6.sin6_addr, 16) == 0;
}

const char *kite__addr_format(const kite__addr *a, char *out, size_t cap) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (a->sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &a->v4.sin_addr, ip, sizeof(ip));
    snprintf(out, cap, "%s:%u", ip, kite__addr_port(a));
  } else {
    inet_ntop(AF_INET6, &a->v6.sin6_addr, ip, sizeof(ip));
    snprintf(out, cap, "[%s]:%u", ip, kite__addr_port(a));
  }
  return out;
}

bool kite__addr_from(kite__addr *a, const struct sockaddr *sa, socklen_t len) {
  memset(a, 0, sizeof(*a));
  if (sa->sa_family == AF_INET && len >= sizeof(a->v4)) {
    memcpy(&a->v4, sa, sizeof(a->v4));
    return true;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(a->v6)) {
    memcpy(&a->v6, sa, sizeof(a->v6));
    return true;
  }
  return false;
}
