/*
 * ws_codec_bench: the CPU cost of issue 17's building blocks, no sockets.
 *
 *   - kite__ws_feed(): 64 MiB of masked binary messages (64 B, 1 KiB and
 *     16 KiB payloads) fed in 64 KiB reads, as a shard's read buffer would;
 *   - kite__ws_send(): the header wslay encodes, handed with the payload to
 *     a write callback that takes it (the socket's cost is not counted);
 *   - kite__http_req_feed() on a browser's upgrade request, and the 101
 *     with its SHA-1 and base64.
 *
 * Run by hand (docs/WEBSOCKET.md): build/release/bench/ws_codec_bench
 * The last line is the summary.
 */
#include "net/ws.h"
#include "proto/http_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile size_t sink;

static int on_write(void *user, const struct iovec *iov, int n) {
  for (int i = 0; i < n; i++)
    sink += iov[i].iov_len;
  return 0;
}

static ptrdiff_t on_data(void *user, const uint8_t *d, size_t n) {
  sink += d[0];
  return (ptrdiff_t)n;
}

/* Masked binary messages of |len| bytes, back to back, about 64 MiB. */
static uint8_t *messages(size_t len, size_t *count, size_t *total) {
  size_t per = len + (len < 126 ? 6 : 8);
  *count = (64u << 20) / per;
  *total = *count * per;
  uint8_t *buf = malloc(*total);
  if (!buf)
    exit(1);
  for (size_t i = 0; i < *count; i++) {
    uint8_t *p = buf + i * per;
    *p++ = 0x82;
    if (len < 126) {
      *p++ = (uint8_t)(0x80 | len);
    } else {
      *p++ = 0x80 | 126;
      *p++ = (uint8_t)(len >> 8);
      *p++ = (uint8_t)len;
    }
    memcpy(p, "\x01\x02\x03\x04", 4);
    memset(p + 4, 0x5a, len);
  }
  return buf;
}

int main(void) {
  static const size_t sizes[] = {64, 1024, 16384};
  static uint8_t body[16384];
  double feed_mbs[3] = {0};
  for (int s = 0; s < 3; s++) {
    size_t len = sizes[s], count, total;
    uint8_t *buf = messages(len, &count, &total);
    kite__ws ws;
    kite__ws_stats st = {0};
    if (kite__ws_init(&ws, 1u << 20, on_write, NULL, &st) != 0)
      return 1;
    double t0 = now_s();
    for (size_t off = 0; off < total; off += 65536) {
      size_t k = total - off < 65536 ? total - off : 65536;
      if (kite__ws_feed(&ws, buf + off, k, on_data, NULL) != (ptrdiff_t)k)
        return 1;
    }
    double dt = now_s() - t0;
    if (st.messages_in != count)
      return 1;
    feed_mbs[s] = (double)total / dt / 1e6;
    printf("feed %5zu B messages: %6.0f MB/s  %6.2f M messages/s\n", len,
           feed_mbs[s], (double)count / dt / 1e6);
    struct iovec v = {body, len};
    const int sends = 2000000;
    t0 = now_s();
    for (int i = 0; i < sends; i++)
      kite__ws_send(&ws, &v, 1);
    dt = now_s() - t0;
    printf("send %5zu B messages: %6.0f ns each\n", len, dt / sends * 1e9);
    kite__ws_free(&ws);
    free(buf);
  }

  const char *head =
      "GET /kite HTTP/1.1\r\nHost: game.example:7001\r\n"
      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Origin: https://game.example\r\nSec-WebSocket-Version: 13\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101\r\n\r\n";
  size_t hl = strlen(head), used;
  kite__http_req r;
  const int heads = 500000;
  double t0 = now_s();
  for (int i = 0; i < heads; i++) {
    kite__http_req_init(&r, NULL);
    if (kite__http_req_feed(&r, (const uint8_t *)head, hl, &used) != 0)
      return 1;
  }
  double head_us = (now_s() - t0) / heads * 1e6;
  char out[256];
  t0 = now_s();
  for (int i = 0; i < heads; i++)
    kite__http_resp_101(out, sizeof(out), r.key);
  double resp_us = (now_s() - t0) / heads * 1e6;
  printf("upgrade head (%zu B): %.2f us; 101 with accept: %.2f us\n", hl,
         head_us, resp_us);
  printf("ws_codec_bench: feed %.0f/%.0f/%.0f MB/s (64 B/1 KiB/16 KiB), "
         "head %.2f us, 101 %.2f us\n",
         feed_mbs[0], feed_mbs[1], feed_mbs[2], head_us, resp_us);
  return 0;
}
