/*
 * The answers to a request head (http_req.h): the WebSocket 101, the head
 * of a static file's 200, and the refusals. Every answer but the 101 ends
 * the connection (Connection: close), so no refusal needs a body length
 * the peer could wait on: each carries Content-Length: 0.
 */
#include "proto/http_req.h"

#include <stdio.h>
#include <string.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "kite/error.h"

/* RFC 6455 section 1.3. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void kite__http_ws_accept(const char *key, char out[29]) {
  struct sha1_ctx sha;
  uint8_t digest[SHA1_DIGEST_SIZE];
  sha1_init(&sha);
  sha1_update(&sha, strlen(key), (const uint8_t *)key);
  sha1_update(&sha, sizeof(ws_guid) - 1, (const uint8_t *)ws_guid);
  sha1_digest(&sha, sizeof(digest), digest);
  base64_encode_raw(out, sizeof(digest), digest); /* 20 bytes: 28 chars */
  out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = 0;
}

/* snprintf's result as a length, or KITE_EMSGSIZE when cut. */
static int fitted(int n, size_t cap) {
  return n < 0 || (size_t)n >= cap ? KITE_EMSGSIZE : n;
}

int kite__http_resp_101(char *out, size_t cap, const char *key) {
  char accept[29];
  kite__http_ws_accept(key, accept);
  return fitted(snprintf(out, cap,
                         "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\n"
                         "Connection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: %s\r\n"
                         "\r\n",
                         accept),
                cap);
}

int kite__http_resp_error(char *out, size_t cap, int status) {
  const char *text, *extra = "";
  switch (status) {
  case 403: text = "Forbidden"; break;
  case 404: text = "Not Found"; break;
  case 405:
    text = "Method Not Allowed";
    extra = "Allow: GET\r\n";
    break;
  case 414: text = "URI Too Long"; break;
  case 426:
    /* RFC 6455 section 4.4: name the versions we speak. */
    text = "Upgrade Required";
    extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    break;
  case 431: text = "Request Header Fields Too Large"; break;
  case 505: text = "HTTP Version Not Supported"; break;
  default:
    status = 400;
    text = "Bad Request";
    break;
  }
  return fitted(snprintf(out, cap,
                         "HTTP/1.1 %d %s\r\n"
                         "%s"
                         "Content-Length: 0\r\n"
                         "Connection: close\r\n"
                         "\r\n",
                         status, text, extra),
                cap);
}

int kite__http_resp_200(char *out, size_t cap, const char *type,
                        uint64_t len) {
  return fitted(snprintf(out, cap,
                         "HTTP/1.1 200 OK\r\n"
                         "Content-Type: %s\r\n"
                         "Content-Length: %llu\r\n"
                         "Cache-Control: no-cache\r\n"
                         "X-Content-Type-Options: nosniff\r\n"
                         "Connection: close\r\n"
                         "\r\n",
                         type, (unsigned long long)len),
                cap);
}

const char *kite__http_content_type(const char *path) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {"html", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"png", "image/png"},
      {"svg", "image/svg+xml"},
      {"ico", "image/x-icon"},
      {"wasm", "application/wasm"},
      {"txt", "text/plain; charset=utf-8"},
  };
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash : path, '.');
  if (dot) {
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcmp(dot + 1, types[i].ext) == 0)
        return types[i].type;
  }
  return "application/octet-stream";
}
