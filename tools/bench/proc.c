/* A process's CPU time and memory from /proc (Linux). */
#include "bench.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool proc_read(int pid, proc_sample *out) {
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return false;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  /* Fields after the command name, which may hold spaces: skip to ')'. */
  char *p = strrchr(buf, ')');
  if (!p)
    return false;
  unsigned long utime = 0, stime = 0;
  /* state is field 3; utime and stime are fields 14 and 15. */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
             &utime, &stime) != 2)
    return false;
  out->cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  f = fopen(path, "r");
  if (!f)
    return false;
  out->rss_kb = out->hwm_kb = 0;
  while (fgets(buf, sizeof(buf), f)) {
    unsigned long kb;
    if (sscanf(buf, "VmRSS: %lu kB", &kb) == 1)
      out->rss_kb = kb;
    else if (sscanf(buf, "VmHWM: %lu kB", &kb) == 1)
      out->hwm_kb = kb;
  }
  fclose(f);
  return true;
}
