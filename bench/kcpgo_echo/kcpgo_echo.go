// kcpgo_echo: a kcp-go echo server for bench/compare, the way a kcp-go game
// server is written: a Listener (no FEC, no encryption: bare KCP on the
// wire), one goroutine per session reading a message and writing it back.
//
// Sessions are tuned to kite's KCP defaults (docs/KCP.md), so both servers
// run the same protocol: mtu 1400, windows 128/128, nodelay 1, interval
// 10 ms, fast resend 2, no congestion window, message mode (though Write
// still cuts anything over one segment into messages of its own), no
// write delay.
// Acks wait for the echo (kcp-go's default: ackNoDelay off), which carries
// them, as kite's shard does at the end of a batch.
//
// Prints "kcpgo_echo listening on port N (HOST)" once bound (bench/lib.sh
// reads it); exits on SIGTERM or SIGINT, or with -quit-idle D once traffic
// has come and then stopped for D: under callgrind, which cannot follow the
// Go runtime's signal handler, it must end without a signal.
//
// Build (GOPATH mode, Debian's golang-github-xtaci-kcp-dev, no network):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o kcpgo_echo kcpgo_echo.go
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

const sockBuf = 4 << 20 // as kite-echo's sockets

func serve(s *kcp.UDPSession) {
	defer s.Close()
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(128, 128)
	s.SetMtu(1400)
	s.SetStreamMode(false)
	s.SetWriteDelay(false)
	buf := make([]byte, 65536)
	for {
		n, err := s.Read(buf)
		if err != nil {
			return
		}
		if _, err := s.Write(buf[:n]); err != nil {
			return
		}
	}
}

// quitWhenIdle exits once packets have arrived and none has for |idle|.
func quitWhenIdle(idle time.Duration) {
	last, since := uint64(0), time.Now()
	for range time.Tick(idle / 4) {
		in := atomic.LoadUint64(&kcp.DefaultSnmp.InPkts)
		if in != last {
			last, since = in, time.Now()
		} else if last > 0 && time.Since(since) >= idle {
			os.Exit(0)
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "UDP address to listen on")
	quitIdle := flag.Duration("quit-idle", 0, "exit once traffic has stopped this long (0: never)")
	flag.Parse()
	if *quitIdle > 0 {
		go quitWhenIdle(*quitIdle)
	}
	l, err := kcp.ListenWithOptions(*addr, nil, 0, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kcpgo_echo:", err)
		os.Exit(1)
	}
	l.SetReadBuffer(sockBuf)
	l.SetWriteBuffer(sockBuf)
	la := l.Addr().(*net.UDPAddr)
	fmt.Printf("kcpgo_echo listening on port %d (%s)\n", la.Port, la.IP)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		l.Close()
		os.Exit(0)
	}()
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			return
		}
		go serve(s)
	}
}
