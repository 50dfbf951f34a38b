#include "net/tcp_out.h"

#include "kite/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define FIRST_CAP 4096u

void kite__tcp_out_init(kite__tcp_out *o, uint32_t max) {
  memset(o, 0, sizeof(*o));
  o->max = max;
}

void kite__tcp_out_free(kite__tcp_out *o) {
  free(o->buf);
  o->buf = NULL;
  o->start = o->end = o->cap = 0;
}

/* sendmsg, not writev: MSG_NOSIGNAL, so a closed peer is an error here
 * rather than a SIGPIPE for the whole process. */
static ssize_t gather_write(int fd, const struct iovec *iov, int n) {
  struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
  for (;;) {
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0)
      return w;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    return -1;
  }
}

/* Room for |need| more bytes: compacts first, then grows by doubling. */
static bool reserve(kite__tcp_out *o, uint32_t need) {
  uint32_t have = o->end - o->start;
  if (o->start && o->cap - o->end < need) {
    memmove(o->buf, o->buf + o->start, have);
    o->start = 0;
    o->end = have;
  }
  if (o->cap - o->end >= need)
    return true;
  uint32_t cap = o->cap ? o->cap : FIRST_CAP;
  while (cap - have < need)
    cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
  if (cap > o->max && o->max >= have + need)
    cap = o->max;
  uint8_t *b = realloc(o->buf, cap);
  if (!b)
    return false;
  o->buf = b;
  o->cap = cap;
  return true;
}

int kite__tcp_out_send(kite__tcp_out *o, int fd, const struct iovec *iov,
                       int n, uint32_t now_ms, bool *pollout) {
  size_t total = 0;
  for (int i = 0; i < n; i++)
    total += iov[i].iov_len;
  uint32_t pending = kite__tcp_out_pending(o);
  if (total > o->max - pending)
    return KITE_EFULL;
  size_t sent = 0;
  if (pending == 0 && total) {
    ssize_t w = gather_write(fd, iov, n);
    if (w < 0)
      return KITE_ESYS;
    sent = (size_t)w;
    o->bytes_out += sent;
    o->progress_ms = now_ms; /* the stall clock starts with the queue */
  }
  if (sent < total) {
    if (!reserve(o, (uint32_t)(total - sent)))
      return KITE_ENOMEM;
    size_t skip = sent;
    for (int i = 0; i < n; i++) {
      size_t len = iov[i].iov_len;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      memcpy(o->buf + o->end, (const uint8_t *)iov[i].iov_base + skip, len - skip);
      o->end += (uint32_t)(len - skip);
      skip = 0;
    }
  }
  *pollout = kite__tcp_out_pending(o) != 0;
  return 0;
}

int kite__tcp_out_flush(kite__tcp_out *o, int fd, uint32_t now_ms,
                        bool *pollout) {
  while (kite__tcp_out_pending(o)) {
    struct iovec v = {o->buf + o->start, kite__tcp_out_pending(o)};
    ssize_t w = gather_write(fd, &v, 1);
    if (w < 0)
      return KITE_ESYS;
    if (w == 0)
      break; /* the kernel is full again */
    o->start += (uint32_t)w;
    o->bytes_out += (uint64_t)w;
    o->progress_ms = now_ms;
  }
  if (!kite__tcp_out_pending(o))
    kite__tcp_out_free(o); /* an idle connection holds no output memory */
  *pollout = kite__tcp_out_pending(o) != 0;
  return 0;
}

uint32_t kite__tcp_out_stalled_ms(const kite__tcp_out *o, uint32_t now_ms) {
  if (!kite__tcp_out_pending(o))
    return 0;
  return now_ms - o->progress_ms;
}
