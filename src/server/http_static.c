/*
 * The static route on the TCP port (issue 17): a plain HTTP GET (no
 * Upgrade) gets a file under http_root, or 404 when http_root is NULL or
 * the file is not there. The request-target is normalised first
 * (proto/http_path.h: escapes decoded, then "..", dot segments, "//",
 * backslashes and control bytes refused, 400/403/414); the file is then
 * opened relative to the root directory's descriptor with openat2()'s
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (openat() with O_NOFOLLOW where the
 * kernel has no openat2: the last component then is no symlink), so no
 * path and no symlink leads out of the directory. Only regular files up to
 * tcp_send_max bytes are served: head and body go through the
 * connection's bounded output, then the lingering close sends the FIN
 * (Connection: close).
 */
#include "server/server_internal.h"

#include "proto/http_path.h"
#include "proto/http_req.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_beneath(int dirfd, const char *rel) {
#ifdef SYS_openat2
  struct open_how how = {.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
  int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
  if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
    return fd;
#endif
  return openat(dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

static void not_found(kite__shard *sh, kite__tconn *c) {
  KITE__STAT_INC(sh, http_not_found);
  kite__wsconn_answer(sh, c, 404);
}

void kite__http_static(kite__shard *sh, kite__tconn *c,
                       const kite__http_req *req) {
  kite_server *srv = sh->srv;
  if (srv->http_root_fd < 0) {
    not_found(sh, c);
    return;
  }
  char rel[KITE__HTTP_TARGET_CAP + 16];
  int err = kite__http_path_normalize(req->target, rel, sizeof(rel));
  if (err) {
    KITE__STAT_INC(sh, http_refused);
    kite__wsconn_answer(sh, c, kite__http_path_status(err));
    return;
  }
  int fd = open_beneath(srv->http_root_fd, rel);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
      (uint64_t)st.st_size + 512 > srv->cfg.tcp_send_max) {
    if (fd >= 0)
      close(fd);
    not_found(sh, c);
    return;
  }
  char head[512];
  int n = kite__http_resp_200(head, sizeof(head),
                              kite__http_content_type(rel),
                              (uint64_t)st.st_size);
  struct iovec v = {head, n > 0 ? (size_t)n : 0};
  int rc = n > 0 ? kite__tconn_write(sh, c, &v, 1) : -1;
  off_t left = st.st_size;
  while (rc == 0 && left > 0) { /* the shard's read buffer, a piece at a time */
    ssize_t r = read(fd, sh->tcp_rx, KITE__TCP_RX_BYTES);
    if (r <= 0)
      break; /* the file shrank: the peer sees a short body */
    v = (struct iovec){sh->tcp_rx, (size_t)r};
    rc = kite__tconn_write(sh, c, &v, 1);
    left -= r;
  }
  close(fd);
  if (req->method == KITE__HTTP_M_GET)
    KITE__STAT_INC(sh, http_static_served);
  kite__tconn_linger(sh, c);
}
