// kcpgo_client: kite-bench's load, driven by a stock kcp-go client, the way
// most KCP game clients behave. Each session has its own UDP socket, does
// kite's v1 handshake on it (tools/kitewire), then runs an unmodified
// kcp-go UDPSession over it (kcp.NewConn3, tuned as kite's client is:
// nodelay 1, interval 10 ms, fast resend 2, no congestion window, windows
// 128 and the server's, the accepted mtu) and sends kite frames at the
// rate, pings every min(idle_timeout / 3, 15 s), answers the server's
// pings, and checks every echo (once, intact, in order). kcp-go flushes on
// each Write and otherwise on its own 10 ms timer: an echo's ack leaves at
// the session's next tick, not at once as kite's client sends it.
//
// --raw-kcp drives a server with no kite handshake or framing
// (bench/kcpgo_echo), as kite-bench --kcp: conv is the session's number
// plus one, each frame is one Write, echoes are a byte stream cut every
// --size bytes.
//
// Prints what kite-bench prints, and with --json one line in kite-bench's
// shape (tools/bench/main.c) plus "client":"kcp-go" and kcp-go's counts of
// segments it retransmitted and duplicates it received (nonzero when this
// client or the server fell behind); the server's CPU and memory are read
// from /proc as kite-bench reads them, so the figures of both clients
// compare. One goroutine per session, and kcp-go's read loop each; kcp-go
// wakes every session every interval whatever its traffic, so 10,000
// sessions at kite's 10 ms take about 2 cores (docs/BENCHMARKS.md).
//
// usage: kcpgo_client [options] HOST:PORT   (kcpgo_client --help)
// Build: scripts/gobuild.sh OUT bench/kcpgo_client WORK (or the CMake
// target kcpgo_client).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	kcp "github.com/xtaci/kcp-go"

	"kite/kitewire"
)

type config struct {
	server                     string
	sessions                   int
	rate                       float64
	size                       int
	duration, warmup, drain    float64
	serverPid, pingMs, connect int
	interval                   int
	raw, crc, json, quiet      bool
}

func usage() {
	fmt.Fprintf(os.Stderr, `usage: kcpgo_client [options] HOST:PORT
  --sessions N      sessions, each on its own UDP socket (100)
  --rate R          frames per session per second; 0: sessions that only ping (20)
  --size B          frame body bytes, at least 20 (64)
  --duration S      measured window, seconds (10)
  --warmup S        seconds of load before the window (2)
  --drain S         an echo not back this long after the window is lost (2)
  --interval MS     kcp-go's update period (kite's: 10)
  --ping-ms MS      ping period (min(idle_timeout / 3, 15 s) from ACCEPT)
  --server-pid PID  read the server's CPU time and memory from /proc
  --raw-kcp         bare KCP, no handshake or frames (bench/kcpgo_echo)
  --crc             set the CRC-32 of every frame
  --connecting N    handshakes in flight at once (1000)
  --json            one JSON line, in kite-bench's shape
  --quiet           no text report (with --json: the JSON line only)
Exit status: 0 when every echo came back whole and in order, 1 when one
was lost, corrupt or out of order or a session failed, 2 on a bad option.
`)
}

func parse() config {
	c := config{sessions: 100, rate: 20, size: 64, duration: 10, warmup: 2, drain: 2, connect: 1000}
	fs := flag.NewFlagSet("kcpgo_client", flag.ContinueOnError)
	fs.Usage = usage
	fs.IntVar(&c.sessions, "sessions", c.sessions, "")
	fs.Float64Var(&c.rate, "rate", c.rate, "")
	fs.IntVar(&c.size, "size", c.size, "")
	fs.Float64Var(&c.duration, "duration", c.duration, "")
	fs.Float64Var(&c.warmup, "warmup", c.warmup, "")
	fs.Float64Var(&c.drain, "drain", c.drain, "")
	fs.IntVar(&c.pingMs, "ping-ms", 0, "")
	fs.IntVar(&c.interval, "interval", kitewire.DefaultInterval, "")
	fs.IntVar(&c.serverPid, "server-pid", 0, "")
	fs.IntVar(&c.connect, "connecting", c.connect, "")
	fs.BoolVar(&c.raw, "raw-kcp", false, "")
	fs.BoolVar(&c.crc, "crc", false, "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.BoolVar(&c.quiet, "quiet", false, "")
	args := os.Args[1:]
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				os.Exit(0)
			}
			os.Exit(2)
		}
		if fs.NArg() == 0 {
			break
		}
		if c.server != "" {
			bad("one HOST:PORT only")
		}
		c.server, args = fs.Arg(0), fs.Args()[1:]
	}
	switch {
	case c.server == "":
		bad("no HOST:PORT")
	case c.sessions < 1 || c.sessions > 1000000:
		bad("--sessions in [1, 1000000]")
	case c.rate < 0 || c.rate > 1e5:
		bad("--rate in [0, 100000]")
	case c.size < payloadHdr || c.size > 65536:
		bad("--size in [20, 65536]")
	case c.duration < 0.1 || c.warmup < 0 || c.drain < 0.1:
		bad("--duration and --drain at least 0.1, --warmup at least 0")
	case c.interval < 10 || c.interval > 5000:
		bad("--interval in [10, 5000] (kcp-go's bounds)")
	case c.connect < 1:
		bad("--connecting at least 1")
	case c.raw && c.rate == 0:
		bad("--raw-kcp needs a --rate above 0: bare KCP has no ping")
	}
	return c
}

func bad(msg string) {
	fmt.Fprintln(os.Stderr, "kcpgo_client:", msg)
	usage()
	os.Exit(2)
}

// waitFor waits for wg, at most d; false if it timed out.
func waitFor(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

func main() {
	c := parse()
	srv, err := net.ResolveUDPAddr("udp", c.server)
	if err != nil {
		bad(fmt.Sprintf("bad address %s: %v", c.server, err))
	}
	b := &bench{cfg: c, srv: srv, base: time.Now(), frameH: 12, start: make(chan struct{})}
	if c.raw {
		b.frameH = 0
	}
	tck := clockTicks()

	// Connect every session, at most c.connect handshakes at once.
	sem := make(chan struct{}, c.connect)
	stop := make(chan struct{})
	var connected sync.WaitGroup
	connected.Add(c.sessions)
	b.sending.Add(c.sessions)
	b.running.Add(c.sessions)
	t0 := time.Now()
	for i := 0; i < c.sessions; i++ {
		go b.run(uint32(i), sem, &connected, stop)
	}
	if !waitFor(&connected, 120*time.Second) {
		fmt.Fprintln(os.Stderr, "kcpgo_client: sessions still connecting after 120 s")
	}
	connectS := time.Since(t0).Seconds()

	// The schedule: warm-up, the window, then the drain.
	startAt := time.Now()
	b.windowStart = uint64(startAt.Sub(b.base)/time.Microsecond) + uint64(c.warmup*1e6)
	b.windowEnd = b.windowStart + uint64(c.duration*1e6)
	winStart := b.base.Add(time.Duration(b.windowStart) * time.Microsecond)
	winEnd := b.base.Add(time.Duration(b.windowEnd) * time.Microsecond)
	close(b.start)
	var before, after procSample
	sleepUntil(winStart)
	if c.serverPid > 0 {
		before, _ = procRead(c.serverPid, tck)
	}
	sleepUntil(winEnd)
	if c.serverPid > 0 {
		after, _ = procRead(c.serverPid, tck)
	}
	drainEnd := winEnd.Add(time.Duration(c.drain * float64(time.Second)))
	waitFor(&b.sending, time.Until(drainEnd))
	for time.Now().Before(drainEnd) && b.received.Load()+b.corrupt.Load() < b.sent.Load() {
		time.Sleep(10 * time.Millisecond)
	}

	// Close every session, then count.
	close(stop)
	b.errMu.Lock()
	b.closing = true
	for _, s := range b.sessions {
		s.close(b)
	}
	b.sessions = nil
	b.errMu.Unlock()
	if !waitFor(&b.running, 10*time.Second) {
		fmt.Fprintln(os.Stderr, "kcpgo_client: sessions still running 10 s after the end")
	}
	r := result{
		connected: b.connected.Load(), failed: b.failed.Load(), connectS: connectS,
		sent: b.sent.Load(), received: b.received.Load(), outOfOrder: b.outOfOrder.Load(),
		corrupt: b.corrupt.Load(), windowReceived: b.windowReceived.Load(),
		windowS: winEnd.Sub(winStart).Seconds(), pings: b.pings.Load(),
	}
	if r.sent > r.received {
		r.lost = r.sent - r.received
	}
	if c.serverPid > 0 {
		r.serverCPU = after.cpuS - before.cpuS
		r.rssKb, r.hwmKb = after.rssKb, after.hwmKb
	}
	report(&c, &r, &b.rtt, b.errs)
	if r.failed > 0 || r.corrupt > 0 || r.outOfOrder > 0 || r.lost > 0 {
		os.Exit(1)
	}
}

type result struct {
	connected, failed                                         uint32
	connectS, windowS, serverCPU                              float64
	sent, received, lost, outOfOrder, corrupt, windowReceived uint64
	pings, rssKb, hwmKb                                       uint64
}

func report(c *config, r *result, h *histogram, errs []string) {
	mode := "kite"
	if c.raw {
		mode = "kcp"
	}
	msgsS, cpuPct, usPerMsg := 0.0, 0.0, 0.0
	if r.windowS > 0 {
		msgsS = float64(r.windowReceived) / r.windowS
		cpuPct = 100 * r.serverCPU / r.windowS
	}
	if r.windowReceived > 0 {
		usPerMsg = r.serverCPU * 1e6 / float64(r.windowReceived)
	}
	q := func(x float64) float64 { return float64(h.quantile(x)) / 1e3 }
	if !c.quiet {
		for _, e := range errs {
			fmt.Fprintln(os.Stderr, "kcpgo_client:", e)
		}
		fmt.Printf("kcp-go client, %s %s: %d sessions (%d failed, connected in %.2f s), %.1f frames/s each, %d B\n",
			mode, c.server, r.connected, r.failed, r.connectS, c.rate, c.size)
		fmt.Printf("  echoes: %d sent, %d received, %d lost, %d out of order, %d corrupt; %d pings\n",
			r.sent, r.received, r.lost, r.outOfOrder, r.corrupt, r.pings)
		fmt.Printf("  window %.1f s: %.0f echoes/s; rtt p50 %.3f ms, p99 %.3f ms, p999 %.3f ms, max %.3f ms\n",
			r.windowS, msgsS, q(0.5), q(0.99), q(0.999), float64(h.max)/1e3)
		k := kcp.DefaultSnmp.Copy()
		fmt.Printf("  kcp-go: %d datagrams out, %d in; %d segments retransmitted (%d fast, %d early), %d lost, %d repeated, %d input errors\n",
			k.OutPkts, k.InPkts, k.RetransSegs, k.FastRetransSegs, k.EarlyRetransSegs, k.LostSegs,
			k.RepeatSegs, k.KCPInErrors)
		if c.serverPid > 0 {
			fmt.Printf("  server pid %d: %.1f%% of a core, %.2f us CPU per echo, rss %d kB (peak %d kB)\n",
				c.serverPid, cpuPct, usPerMsg, r.rssKb, r.hwmKb)
		}
	}
	if c.json {
		fmt.Printf("{\"mode\":\"%s\",\"client\":\"kcp-go\",\"sessions\":%d,\"failed\":%d,\"connect_s\":%.3f,"+
			"\"rate\":%.3f,\"size\":%d,\"sent\":%d,\"received\":%d,\"lost\":%d,"+
			"\"out_of_order\":%d,\"corrupt\":%d,\"msgs_per_s\":%.1f,"+
			"\"rtt_p50_ms\":%.3f,\"rtt_p99_ms\":%.3f,\"rtt_p999_ms\":%.3f,\"rtt_max_ms\":%.3f",
			mode, r.connected, r.failed, r.connectS, c.rate, c.size, r.sent, r.received, r.lost,
			r.outOfOrder, r.corrupt, msgsS, q(0.5), q(0.99), q(0.999), float64(h.max)/1e3)
		k := kcp.DefaultSnmp.Copy() // retransmitted; duplicates received (the server's)
		fmt.Printf(",\"client_retransmits\":%d,\"client_repeats\":%d", k.RetransSegs, k.RepeatSegs)
		if c.serverPid > 0 {
			fmt.Printf(",\"server_cpu_pct\":%.2f,\"server_us_per_msg\":%.3f,\"server_rss_kb\":%d,"+
				"\"server_hwm_kb\":%d", cpuPct, usPerMsg, r.rssKb, r.hwmKb)
		}
		fmt.Printf("}\n")
	}
}
