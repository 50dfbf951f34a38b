#include "ws_hs.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

/* RFC 6455 section 1.3. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_random_init(ws_random *r) {
  r->off = sizeof(r->buf);
}

int ws_random_fill(ws_random *r, uint8_t *out, size_t len) {
  if (len > sizeof(r->buf))
    return -1;
  if (sizeof(r->buf) - r->off < len) {
    size_t got = 0;
    while (got < sizeof(r->buf)) {
      ssize_t n = getrandom(r->buf + got, sizeof(r->buf) - got, 0);
      if (n <= 0)
        return -1;
      got += (size_t)n;
    }
    r->off = 0;
  }
  memcpy(out, r->buf + r->off, len);
  r->off += len;
  return 0;
}

int ws_hs_key(ws_random *r, char key[25], char accept[29]) {
  uint8_t nonce[16];
  if (ws_random_fill(r, nonce, sizeof(nonce)) < 0)
    return -1;
  base64_encode_raw(key, sizeof(nonce), nonce);
  key[BASE64_ENCODE_RAW_LENGTH(sizeof(nonce))] = 0;
  ws_hs_accept(key, accept);
  return 0;
}

void ws_hs_accept(const char *key, char accept[29]) {
  struct sha1_ctx sha;
  uint8_t digest[SHA1_DIGEST_SIZE];
  sha1_init(&sha);
  sha1_update(&sha, strlen(key), (const uint8_t *)key);
  sha1_update(&sha, sizeof(ws_guid) - 1, (const uint8_t *)ws_guid);
  sha1_digest(&sha, sizeof(digest), digest);
  base64_encode_raw(accept, sizeof(digest), digest);
  accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = 0;
}

int ws_hs_request(char *out, size_t cap, const char *host, const char *path,
                  const char *key) {
  int n = snprintf(out, cap,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "\r\n",
                   path, host, key);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

size_t ws_hs_head_end(const uint8_t *p, size_t len) {
  for (size_t i = 3; i < len; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
      return i + 1;
  return 0;
}

/* The value of header |name| in the line [line, end) with its spaces and
 * tabs trimmed, or NULL when the line is another header. */
static const char *value_of(const char *line, const char *end,
                            const char *name, size_t *vlen) {
  size_t n = strlen(name);
  if ((size_t)(end - line) <= n || strncasecmp(line, name, n) || line[n] != ':')
    return NULL;
  const char *v = line + n + 1;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  *vlen = (size_t)(end - v);
  return v;
}

const char *ws_hs_check(const uint8_t *p, size_t len, const char *accept) {
  const char *s = (const char *)p, *end = s + len;
  if (len < 12 || memcmp(s, "HTTP/1.1 101", 12))
    return "the answer is not 101";
  bool upgrade = false, accepted = false;
  const char *line = memchr(s, '\n', len);
  while (line && ++line < end) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
      break;
    const char *stop = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
    size_t vlen;
    const char *v;
    if ((v = value_of(line, stop, "Upgrade", &vlen)))
      upgrade = vlen == 9 && !strncasecmp(v, "websocket", 9);
    else if ((v = value_of(line, stop, "Sec-WebSocket-Accept", &vlen)))
      accepted = vlen == strlen(accept) && !memcmp(v, accept, vlen);
    line = eol;
  }
  if (!upgrade)
    return "the 101 has no Upgrade: websocket";
  if (!accepted)
    return "the 101's Sec-WebSocket-Accept is missing or wrong";
  return NULL;
}
