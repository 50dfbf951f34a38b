/*
 * libFuzzer target: the WebSocket connection (net/ws.h) reading any bytes
 * as a client's frames, fed in any pieces, to a callback that takes only
 * part of what it is given and is resumed.
 *
 * Input: max_message u16 LE (0 means 1), take u8 (the most the callback
 * takes per call; 0: all), nsizes u8, nsizes piece sizes u8 (cycled; none
 * or all zero: one piece), then the bytes.
 *
 * Checked besides ASan/UBSan:
 * - fed whole with a callback that takes all, and fed in pieces with one
 *   that takes little, the same payload bytes come out, with the same end
 *   (the same error, close code sent and counters);
 * - a feed never takes more than it is given, and takes all of it unless
 *   the callback stopped it; what is held is a piece of wslay's buffer;
 * - bytes_in counts exactly the bytes passed on;
 * - every unit written is one unmasked, final pong or close frame whose
 *   header says the unit's length; nothing is written after a close.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kite/error.h"
#include "net/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink {
  kite__ws ws;
  kite__ws_stats st;
  uint8_t *got;
  size_t got_len, cap;
  size_t take;
  bool stopped, closed_out;
  int writes;
} sink;

static int on_write(void *user, const struct iovec *iov, int n) {
  sink *s = user;
  uint8_t unit[256];
  size_t len = 0;
  for (int i = 0; i < n; i++) {
    if (len + iov[i].iov_len > sizeof(unit))
      abort(); /* pongs and closes are at most 2 + 125 bytes */
    memcpy(unit + len, iov[i].iov_base, iov[i].iov_len);
    len += iov[i].iov_len;
  }
  if (s->closed_out || len < 2 || (unit[0] != 0x8a && unit[0] != 0x88) ||
      (unit[1] & 0x80) || (size_t)(unit[1] & 0x7f) + 2 != len)
    abort();
  if (unit[0] == 0x88)
    s->closed_out = true;
  s->writes++;
  return 0;
}

static ptrdiff_t on_data(void *user, const uint8_t *data, size_t len) {
  sink *s = user;
  if (s->stopped)
    abort(); /* called again within the feed that it stopped */
  size_t n = s->take && s->take < len ? s->take : len;
  if (s->got_len + n > s->cap)
    abort();
  memcpy(s->got + s->got_len, data, n);
  s->got_len += n;
  s->stopped = n < len;
  return (ptrdiff_t)n;
}

/* Feeds |p| in the pieces |sizes| says, resuming after each stop. */
static ptrdiff_t run(sink *s, uint32_t max_message, size_t take,
                     const uint8_t *p, size_t n, const uint8_t *sizes,
                     size_t nsizes) {
  memset(s, 0, sizeof(*s));
  s->cap = n;
  s->got = malloc(n + 1);
  s->take = take;
  if (kite__ws_init(&s->ws, max_message, on_write, s, &s->st) != 0)
    abort();
  size_t off = 0, k = 0;
  ptrdiff_t rc = 0;
  for (int guard = 0; guard < 1000000; guard++) {
    size_t piece = n - off;
    if (nsizes) {
      size_t want = sizes[k++ % nsizes];
      if (want && want < piece)
        piece = want;
    }
    s->stopped = false;
    rc = kite__ws_feed(&s->ws, piece ? p + off : NULL, piece, on_data, s);
    if (rc < 0)
      break;
    if ((size_t)rc > piece || ((size_t)rc < piece && !s->stopped))
      abort();
    if (kite__ws_held(&s->ws) > 4096)
      abort();
    off += (size_t)rc;
    if (off == n && !s->stopped && kite__ws_held(&s->ws) == 0)
      break;
  }
  if (s->st.bytes_in != s->got_len)
    abort();
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4 || size > 1 << 17)
    return 0;
  uint32_t max_message = (uint32_t)data[0] | (uint32_t)data[1] << 8;
  if (!max_message)
    max_message = 1;
  size_t take = data[2], nsizes = data[3];
  if (size < 4 + nsizes)
    return 0;
  const uint8_t *sizes = data + 4, *p = data + 4 + nsizes;
  size_t n = size - 4 - nsizes;
  bool any = false;
  for (size_t i = 0; i < nsizes; i++)
    any |= sizes[i] != 0;
  if (!any)
    nsizes = 0;

  sink *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
  ptrdiff_t ra = run(a, max_message, 0, p, n, NULL, 0);
  ptrdiff_t rb = run(b, max_message, take, p, n, sizes, nsizes);
  if ((ra < 0) != (rb < 0) || (ra < 0 && ra != rb) ||
      a->got_len != b->got_len || memcmp(a->got, b->got, a->got_len) ||
      a->ws.close_sent != b->ws.close_sent || a->ws.state != b->ws.state ||
      a->st.messages_in != b->st.messages_in ||
      a->st.pongs_out != b->st.pongs_out || a->writes != b->writes)
    abort();
  /* Sticky ends. */
  if (ra < 0 && kite__ws_feed(&a->ws, p, n, on_data, a) != ra)
    abort();
  kite__ws_free(&a->ws);
  kite__ws_free(&b->ws);
  free(a->got);
  free(b->got);
  free(a);
  free(b);
  return 0;
}
