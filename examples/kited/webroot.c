/* Where kited finds its arena page (webroot.h). */
#include "webroot.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* |dir|/|rel|, made absolute and without "..", into |buf| when it holds
 * a readable index.html. */
static const char *try_dir(char *buf, size_t cap, const char *dir,
                           const char *rel) {
  char path[PATH_MAX], real[PATH_MAX], index[PATH_MAX + 64];
  int n = snprintf(path, sizeof(path), "%s/%s", dir, rel);
  if (n < 0 || (size_t)n >= sizeof(path) || !realpath(path, real) ||
      strlen(real) >= cap)
    return NULL;
  strcpy(buf, real);
  n = snprintf(index, sizeof(index), "%s/index.html", buf);
  if (n < 0 || (size_t)n >= sizeof(index) || access(index, R_OK) != 0)
    return NULL;
  return buf;
}

const char *kited_web_root(char *buf, size_t cap) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return NULL;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash)
    return NULL;
  *slash = 0;
  const char *dir = exe[0] ? exe : "/";
  const char *r = try_dir(buf, cap, dir, "web");
  return r ? r : try_dir(buf, cap, dir, KITED_WEB_REL);
}
