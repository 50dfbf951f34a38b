/* Socket addresses: IPv4 and IPv6 in one small type, parsed from HOST:PORT. */
#ifndef KITE_NET_ADDR_H
#define KITE_NET_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef union kite__addr {
  struct sockaddr sa;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
} kite__addr;

/* Parses "1.2.3.4:port", "[::1]:port", "host:port" (resolved, first result)
 * or ":port" (IPv4 any). Returns 0 or KITE_EINVAL. */
int kite__addr_parse(kite__addr *a, const char *text);

socklen_t kite__addr_len(const kite__addr *a);
uint16_t kite__addr_port(const kite__addr *a);
/* Same family, address and port. */
bool kite__addr_equal(const kite__addr *a, const kite__addr *b);
/* "1.2.3.4:5" or "[::1]:5" into |out| (at least 64 bytes). */
const char *kite__addr_format(const kite__addr *a, char *out, size_t cap);
/* Copies from a sockaddr of |len| bytes; false for other families. */
bool kite__addr_from(kite__addr *a, const struct sockaddr *sa, socklen_t len);

/* The local address a datagram arrived on (IP_PKTINFO / IPV6_PKTINFO), so
 * the reply can leave from it (PROTOCOL.md section 1). */
typedef struct kite__local {
  uint8_t family; /* 0: unknown (the socket's bound address is used) */
  uint32_t ifindex;
  union {
    struct in_addr v4;
    struct in6_addr v6;
  } addr;
} kite__local;

#endif
