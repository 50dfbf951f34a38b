# bench/compare's tables: reads results.jsonl (one labelled kite-bench JSON
# line per run), prints the markdown tables and goal verdicts, and writes
# one sweep_SERVER.dat per server into |out| for compare.gp (kite-bench's
# runs). A run driven by another client (its "client" field: kcp-go, the
# stock client) is a row of its own, keyed SERVER@CLIENT. Figures over
# repeats are medians, with the range where it matters; counts of lost
# echoes and failed sessions are summed over them. |main| (1000) and
# |loss_n| (1000) name the session counts of the main and loss tables.
# POSIX awk (mawk).

function field(line, key,    v) {
  if (!match(line, "\"" key "\":[^,}]*"))
    return ""
  v = substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
  gsub(/"/, "", v)
  return v
}

function add(key, v) {
  if (v == "")
      return
  vals[key, ++cnt[key]] = v + 0
}

function sorted(key,    i, j, t, n) { # into s[1..n], returns n
  n = cnt[key]
  for (i = 1; i <= n; i++)
    s[i] = vals[key, i]
  for (i = 2; i <= n; i++)
    for (j = i; j > 1 && s[j - 1] > s[j]; j--) {
      t = s[j]; s[j] = s[j - 1]; s[j - 1] = t
    }
  return n
}

function med(key,    n) {
  n = sorted(key)
  if (n == 0)
    return ""
  return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}

function lo(key) { return sorted(key) ? s[1] : "" }
function hi(key,    n) { n = sorted(key); return n ? s[n] : "" }
function sum(key,    i, t) { t = 0; for (i = 1; i <= cnt[key]; i++) t += vals[key, i]; return t }

function span(key, fmt, unit,    t) { # "5.30 us (5.25-5.40)": median, then range
  if (!cnt[key])
    return "n/a"
  t = sprintf(fmt, med(key)) unit
  if (cnt[key] > 1)
    t = t " (" sprintf(fmt, lo(key)) "-" sprintf(fmt, hi(key)) ")"
  return t
}

function us(key) { return span(key, "%.2f", " us") }
function core(key) { return span(key, "%.1f", "% of a core") }

function ms(key,    v) {
  if (!cnt[key])
    return "n/a"
  v = med(key)
  return v >= 100 ? sprintf("%.0f ms", v) : sprintf("%.3g ms", v)
}
function mb(key) { return cnt[key] ? sprintf("%.1f MB", med(key) / 1024) : "n/a" }
function ratio(a, b) { return (a != "" && b != "" && b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
function commas(n,    t) {
  t = sprintf("%d", n)
  while (t ~ /[0-9][0-9][0-9][0-9]/)
    sub(/[0-9][0-9][0-9]($|,)/, ",&", t)
  return t
}

function have(key) { return cnt[key] > 0 }
function base(sv) { sub(/@.*/, "", sv); return sv }
function client(sv) { return index(sv, "@") ? substr(sv, index(sv, "@") + 1) : "kite-bench" }
function label(sv) { return client(sv) == "kite-bench" ? name[sv] : name[base(sv)] ", " client(sv) " client" }
function kite_of(sv) { return client(sv) == "kite-bench" ? "kite" : "kite@" client(sv) } # the same client's kite
function verdict(known, ok) { return !known ? "**no figure**" : ok ? "**met**" : "**not met**" }
function bad(k) { return sum(k SUBSEP "lost") + sum(k SUBSEP "ooo") + sum(k SUBSEP "failed") + sum(k SUBSEP "error") }

{
  load = field($0, "load"); server = field($0, "server"); n = field($0, "n")
  if ((c = field($0, "client")) != "" && c != "kite-bench")
    server = server "@" c
  k = load SUBSEP server SUBSEP n
  seen[k] = 1
  if (load == "sweep") { ns[n] = 1; srv[server] = 1 }
  add(k SUBSEP "cpu", field($0, "server_us_per_msg"))
  add(k SUBSEP "pct", field($0, "server_cpu_pct"))
  add(k SUBSEP "rss", field($0, "server_rss_kb"))
  add(k SUBSEP "p50", field($0, "rtt_p50_ms"))
  add(k SUBSEP "p99", field($0, "rtt_p99_ms"))
  add(k SUBSEP "p999", field($0, "rtt_p999_ms"))
  add(k SUBSEP "max", field($0, "rtt_max_ms"))
  add(k SUBSEP "lost", field($0, "lost"))
  add(k SUBSEP "ooo", field($0, "out_of_order"))
  add(k SUBSEP "failed", field($0, "failed"))
  add(k SUBSEP "connect", field($0, "connect_s"))
  if (field($0, "error") != "")
    add(k SUBSEP "error", 1)
  if (load == "instr") {
    d = field($0, "duration")
    ir[server, d] = field($0, "ir") + 0; rcv[server, d] = field($0, "received") + 0
    clean[server, d] = field($0, "received") != "" && field($0, "lost") == 0 && field($0, "failed") == 0
  }
}

END {
  split("floor kite kite-hash kite-tcp kite-tcp-hash kite-ws kite-v2 kite-tcp-v2 kcp-go enet", order, " ")
  name["floor"] = "UDP echo floor"; name["kite"] = "kite, KCP, inline"
  name["kite-hash"] = "kite, KCP, hash (1 worker)"; name["kite-tcp"] = "kite, TCP, inline"
  name["kite-tcp-hash"] = "kite, TCP, hash (1 worker)"; name["kcp-go"] = "kcp-go"
  name["kite-ws"] = "kite, WebSocket, inline"
  name["enet"] = "ENet"
  name["kite-v2"] = "kite v2, KCP, inline"; name["kite-tcp-v2"] = "kite v2, TCP, inline"
  nrows = split("floor kite kite-hash kite-tcp kite-tcp-hash kite-ws kite-v2 kite-tcp-v2 kcp-go enet kite@kcp-go kite-hash@kcp-go kcp-go@kcp-go", rows_all, " ")
  for (i in order) {
    sv = order[i]
    # both runs clean and counted, or the fixed costs would not cancel
    if (clean[sv, 3] && clean[sv, 9] && ir[sv, 3] > 0 && ir[sv, 9] > ir[sv, 3] &&
        rcv[sv, 9] > rcv[sv, 3])
      ipm[sv] = (ir[sv, 9] - ir[sv, 3]) / (rcv[sv, 9] - rcv[sv, 3])
  }

  if (main == "") main = 1000
  if (loss_n == "") loss_n = 1000
  printf "### %s sessions x 20 echoes/s x 64 B\n\n", commas(main)
  printf "| server | client | CPU per echo, median (range) | / floor | / kite (same client) | instructions per echo (100 x 10/s) | / kite | p50 | p99 | p999 | resident | lost, out of order, failed sessions (all rounds) |\n"
  printf "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
  fk = "sweep" SUBSEP "floor" SUBSEP main SUBSEP "cpu"
  kk = "sweep" SUBSEP "kite" SUBSEP main SUBSEP "cpu"
  for (i = 1; i <= nrows; i++) {
    sv = rows_all[i]; k = "sweep" SUBSEP sv SUBSEP main
    if (!seen[k])
      continue
    ck = "sweep" SUBSEP kite_of(sv) SUBSEP main SUBSEP "cpu"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d, %d, %d |\n", name[base(sv)], client(sv),
           us(k SUBSEP "cpu"), ratio(med(k SUBSEP "cpu"), med(fk)), ratio(med(k SUBSEP "cpu"), med(ck)),
           (sv in ipm) ? commas(ipm[sv] + 0.5) : "n/a",
           (sv in ipm && "kite" in ipm) ? ratio(ipm[sv], ipm["kite"]) : "n/a",
           ms(k SUBSEP "p50"), ms(k SUBSEP "p99"), ms(k SUBSEP "p999"), mb(k SUBSEP "rss"),
           sum(k SUBSEP "lost"), sum(k SUBSEP "ooo"), sum(k SUBSEP "failed") + sum(k SUBSEP "error")
  }

  printf "\n### Server CPU per echo and p99 round trip against sessions (x 20 echoes/s x 64 B)\n\n"
  hdr = "| server"; sep = "|---"
  nn = 0
  for (n in ns) nlist[++nn] = n + 0
  for (i = 2; i <= nn; i++)
    for (j = i; j > 1 && nlist[j - 1] > nlist[j]; j--) { t = nlist[j]; nlist[j] = nlist[j - 1]; nlist[j - 1] = t }
  for (j = 1; j <= nn; j++) { hdr = hdr " | " nlist[j]; sep = sep "|---" }
  printf "%s |\n%s|\n", hdr, sep
  for (i = 1; i <= nrows; i++) {
    sv = rows_all[i]
    if (!(sv in srv))
      continue
    line = "| " label(sv)
    file = client(sv) == "kite-bench" ? out "/sweep_" sv ".dat" : "/dev/null"
    printf "# sessions cpu_us p50_ms p99_ms\n" > file
    for (j = 1; j <= nn; j++) {
      k = "sweep" SUBSEP sv SUBSEP nlist[j]
      line = line " | " sprintf("%.2f us, %s", med(k SUBSEP "cpu"), ms(k SUBSEP "p99"))
      if (bad(k))
        line = line sprintf(" (%d lost, %d out of order, %d failed)", sum(k SUBSEP "lost"),
                            sum(k SUBSEP "ooo"), sum(k SUBSEP "failed") + sum(k SUBSEP "error"))
      printf "%d %.3f %.4f %.4f\n", nlist[j], med(k SUBSEP "cpu"), med(k SUBSEP "p50"), med(k SUBSEP "p99") > file
    }
    close(file)
    print line " |"
  }
  printf "\n![server CPU per echo against sessions](img/compare_cpu.png)\n"
  printf "![round trip p50 and p99 against sessions](img/compare_rtt.png)\n"

  printf "\n### 10,000 sessions, and 100,000 holding\n\n"
  printf "| server | client | each session | server CPU | per message | resident | failed | p99 |\n|---|---|---|---|---|---|---|---|\n"
  idle["idle-ping" SUBSEP "kite"] = "a kite ping a second"
  idle["idle-1s" SUBSEP "kite"] = "a 20 B echo a second"
  idle["idle-1s" SUBSEP "kcp-go"] = "a 20 B echo a second"
  idle["idle-1s" SUBSEP "floor"] = "a 20 B datagram a second, echoed bare"
  nidle = split("idle-1s:floor idle-ping:kite idle-1s:kite idle-1s:kcp-go idle-ping:kite@kcp-go idle-1s:kite@kcp-go idle-1s:kcp-go@kcp-go", rows, " ")
  for (i = 1; i <= nidle; i++) {
    split(rows[i], p, ":")
    k = ""
    for (k2 in seen) {
      split(k2, q, SUBSEP)
      if (q[1] == p[1] && q[2] == p[2]) {
        k = k2; nk = q[3]
      }
    }
    if (k == "")
      continue
    pings = p[1] == "idle-ping" # no echoes: nothing per message, no round trip
    printf "| %s, %s sessions | %s | %s | %s | %s | %s | %d | %s |\n", name[base(p[2])], commas(nk),
           client(p[2]), idle[p[1] SUBSEP base(p[2])],
           core(k SUBSEP "pct"),
           pings ? "n/a" : us(k SUBSEP "cpu"), mb(k SUBSEP "rss"),
           sum(k SUBSEP "failed") + sum(k SUBSEP "error"), pings ? "n/a" : ms(k SUBSEP "p99")
    if (have(k SUBSEP "pct") && !bad(k)) {
      pct[p[1] SUBSEP p[2]] = med(k SUBSEP "pct"); rss[p[1] SUBSEP p[2]] = med(k SUBSEP "rss")
    }
  }
  printf "| ENet | | | n/a: one ENet host serves at most 4,095 peers | | | | |\n"
  hk = "hold" SUBSEP "kite" SUBSEP 100000
  if (seen[hk])
    printf "| kite, KCP, 100,000 sessions | kite-bench | holding, no traffic in the window (connected in %.1f s) | %.2f%% of a core | | %s | %d | |\n",
           med(hk SUBSEP "connect"), med(hk SUBSEP "pct"), mb(hk SUBSEP "rss"), sum(hk SUBSEP "failed")

  printf "\n### %s sessions x 20 echoes/s x 64 B through kite-chaos, 5%% lost each way\n\n", commas(loss_n)
  printf "| server | sessions dropped | echoes lost | out of order | p50 | p99 | p999 | max | CPU per echo |\n|---|---|---|---|---|---|---|---|---|\n"
  split("kite kcp-go enet", lrows, " ")
  for (i = 1; i <= 3; i++) {
    sv = lrows[i]; k = "loss" SUBSEP sv SUBSEP loss_n
    if (!seen[k])
      continue
    printf "| %s | %d | %d | %d | %s | %s | %s | %s | %s |\n", name[sv],
           sum(k SUBSEP "failed") + sum(k SUBSEP "error"), sum(k SUBSEP "lost"),
           sum(k SUBSEP "ooo"), ms(k SUBSEP "p50"), ms(k SUBSEP "p99"), ms(k SUBSEP "p999"),
           ms(k SUBSEP "max"), us(k SUBSEP "cpu")
  }

  printf "\n### The goals\n\n"
  gk = "sweep" SUBSEP "kcp-go" SUBSEP main; ek = "sweep" SUBSEP "enet" SUBSEP main
  fok = have(fk) && !bad("sweep" SUBSEP "floor" SUBSEP main)
  kok = have(kk) && !bad("sweep" SUBSEP "kite" SUBSEP main)
  kc = med(kk); fc = med(fk); gc = med(gk SUBSEP "cpu"); ec = med(ek SUBSEP "cpu")
  printf "- kite's CPU per echo at most 1.5x the floor: %s, %s.\n", ratio(kc, fc),
         verdict(fok && kok, kc <= 1.5 * fc)
  printf "- At least 3x lower than kcp-go's: kcp-go / kite %s by CPU, %s by instructions, %s.\n",
         ratio(gc, kc), ratio(ipm["kcp-go"], ipm["kite"]),
         verdict(kok && have(gk SUBSEP "cpu") && !bad(gk), gc >= 3 * kc)
  sk = "sweep" SUBSEP "kite@kcp-go" SUBSEP main; sg = "sweep" SUBSEP "kcp-go@kcp-go" SUBSEP main
  if (have(sk SUBSEP "cpu"))
    printf "- Driven by the stock kcp-go client (no goal of its own): kite's CPU per echo %s the floor's (kite-bench's), kcp-go / kite %s%s.\n",
           ratio(med(sk SUBSEP "cpu"), fc), ratio(med(sg SUBSEP "cpu"), med(sk SUBSEP "cpu")),
           bad(sk) || bad(sg) ? sprintf(" (%d echoes lost, %d out of order, %d sessions failed)",
             sum(sk SUBSEP "lost") + sum(sg SUBSEP "lost"), sum(sk SUBSEP "ooo") + sum(sg SUBSEP "ooo"),
             sum(sk SUBSEP "failed") + sum(sg SUBSEP "failed") + sum(sk SUBSEP "error") + sum(sg SUBSEP "error")) : ""
  printf "- At least 3x lower than ENet's: ENet / kite %s by CPU, %s by instructions, %s.\n",
         ratio(ec, kc), ratio(ipm["enet"], ipm["kite"]),
         verdict(kok && have(ek SUBSEP "cpu") && !bad(ek), ec >= 3 * kc)
  wk = "sweep" SUBSEP "kite-ws" SUBSEP main; tk = "sweep" SUBSEP "kite-tcp" SUBSEP main
  if (have(wk SUBSEP "cpu"))
    printf "- WebSocket's framing and masking over plain TCP (no goal of its own): kite-ws / kite-tcp %s by CPU, %s by instructions; kite-ws / floor %s%s.\n",
           ratio(med(wk SUBSEP "cpu"), med(tk SUBSEP "cpu")), ratio(ipm["kite-ws"], ipm["kite-tcp"]),
           ratio(med(wk SUBSEP "cpu"), fc),
           bad(wk) ? sprintf(" (%d echoes lost, %d out of order, %d sessions failed)", sum(wk SUBSEP "lost"),
                             sum(wk SUBSEP "ooo"), sum(wk SUBSEP "failed") + sum(wk SUBSEP "error")) : ""
  pk = "idle-ping" SUBSEP "kite"
  if (pk in pct)
    printf "- 10,000 pinging sessions under 5%% of a core and 100 MB: %.1f%%, %.1f MB, %s.\n",
           pct[pk], rss[pk] / 1024, verdict(1, pct[pk] < 5 && rss[pk] / 1024 < 100)
  else
    printf "- 10,000 pinging sessions under 5%% of a core and 100 MB: **no figure** (the run failed).\n"
  if (seen[hk])
    printf "- 100,000 sessions held: %d failed, %s.\n", sum(hk SUBSEP "failed"),
           verdict(have(hk SUBSEP "pct"), !bad(hk))
  lk = "loss" SUBSEP "kite" SUBSEP loss_n
  printf "- At 5%% loss each way every message delivered in order, p99 under 100 ms: %d lost, %d out of order, p99 %s, %s.\n",
         sum(lk SUBSEP "lost"), sum(lk SUBSEP "ooo"), ms(lk SUBSEP "p99"),
         verdict(have(lk SUBSEP "p99"), !bad(lk) && hi(lk SUBSEP "p99") < 100)
}
