// kcpgo_peer: the kcp-go half of the kite interop test (ctest interop_kcpgo,
// run by run_kcpgo_interop.sh against kcp_udp_peer.c).
//
// kcp-go's raw engine (NewKCP, Input, Send, Recv, Update, Check; no
// UDPSession) over a UDP socket on 127.0.0.1, talking to the kite peer at
// -port. It is tuned to kite's defaults (PROTOCOL.md section 3): mtu 1400,
// windows 128/128, nodelay 1, interval 10 ms, fast resend 2, no congestion
// window. Both peers send -n messages whose sizes and bytes derive from the
// index and the direction (msgSize, msgByte: identical in kcp_udp_peer.c),
// and both drop a seeded share of the datagrams they send and receive.
// Exit status 0 only when all messages arrived once, intact and in order,
// and the kite peer acknowledged all of ours; else one line on stderr says
// why.
//
// Build (no modules, Debian's golang-github-xtaci-kcp-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build kcpgo_peer.go
package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

// Shared with kcp_udp_peer.c: change both or neither.
const (
	conv        = 0x11223344
	dirKiteToGo = 1
	dirGoToKite = 2
	msgMax      = 65536
)

const (
	waitMax = 10 * time.Millisecond // read at most this long between Updates
	sndMax  = 256                   // segments queued before we stop Sending
	// Once done, keep answering for lingerMin and until the kite peer has
	// been silent for lingerQuiet (it may still miss our last acks).
	lingerMin   = 300 * time.Millisecond
	lingerQuiet = 1000 * time.Millisecond
	lingerMax   = 5000 * time.Millisecond
)

// clockRef starts after kcp-go's own refTime (an imported package is
// initialised first), so nowMs() never runs ahead of the clock Check()
// answers in: a wait computed from the two is at worst a little long, and
// it is capped at waitMax anyway.
var clockRef = time.Now()

func nowMs() uint32 { return uint32(time.Since(clockRef) / time.Millisecond) }

// msgSize: 1 byte to 60 KB, so single segments, the exact mss (1376) and
// its first overflow, and messages of up to 44 fragments all cross.
func msgSize(i uint32) int {
	switch i % 10 {
	case 0:
		return int(20000 + (i*7919)%40001)
	case 1:
		return 1
	case 2:
		return 1376
	case 3:
		return 1377
	case 4, 5:
		return int(1 + (i*131)%200)
	default:
		return int(1 + (i*7919)%8000)
	}
}

// msgByte: byte j of message i sent in direction dir, a hash, so a
// shifted, swapped, repeated or reflected fragment does not match.
func msgByte(dir, i, j uint32) byte {
	h := dir*0x9E3779B9 ^ i*0x85EBCA6B ^ j
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	h *= 0x846ca68b
	h ^= h >> 16
	return byte(h)
}

// splitmix64
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9E3779B97F4A7C15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

type peer struct {
	conn    *net.UDPConn
	addr    *net.UDPAddr
	k       *kcp.KCP
	n       uint32
	lossPct uint64
	rngTx   rng
	rngRx   rng

	sent, received             uint32
	bytesSent, bytesReceived   uint64
	dgramsOut, droppedOut      uint64
	sendErrors                 uint64
	dgramsIn, droppedIn, alien uint64
	lastRx                     time.Time
}

func (p *peer) lose(r *rng) bool {
	return p.lossPct > 0 && r.next()%100 < p.lossPct
}

// output is kcp-go's output callback: |buf| is reused after the call, and
// WriteToUDP has copied it by then.
func (p *peer) output(buf []byte, size int) {
	p.dgramsOut++
	if p.lose(&p.rngTx) {
		p.droppedOut++
		return
	}
	// A full socket buffer loses the datagram as the wire would.
	if _, err := p.conn.WriteToUDP(buf[:size], p.addr); err != nil {
		p.sendErrors++
	}
}

func (p *peer) queueMessages() error {
	for p.sent < p.n && p.k.WaitSnd() < sndMax {
		msg := make([]byte, msgSize(p.sent))
		for j := range msg {
			msg[j] = msgByte(dirGoToKite, p.sent, uint32(j))
		}
		if rc := p.k.Send(msg); rc < 0 {
			return fmt.Errorf("kcp-go Send(message %d, %d bytes) = %d", p.sent, len(msg), rc)
		}
		p.sent++
		p.bytesSent += uint64(len(msg))
	}
	return nil
}

func (p *peer) checkMessage(msg []byte) error {
	i := p.received
	if i >= p.n {
		return fmt.Errorf("message %d received, but kite sends only %d (a duplicate?)", i+1, p.n)
	}
	if want := msgSize(i); len(msg) != want {
		return fmt.Errorf("message %d: %d bytes, expected %d", i, len(msg), want)
	}
	for j, b := range msg {
		if want := msgByte(dirKiteToGo, i, uint32(j)); b != want {
			return fmt.Errorf("message %d (%d bytes): byte %d is 0x%02x, expected 0x%02x",
				i, len(msg), j, b, want)
		}
	}
	p.received++
	p.bytesReceived += uint64(len(msg))
	return nil
}

func (p *peer) deliver(buf []byte) error {
	for {
		n := p.k.Recv(buf)
		if n == -1 {
			return nil
		}
		if n < 0 {
			return fmt.Errorf("kcp-go Recv = %d after %d messages", n, p.received)
		}
		if err := p.checkMessage(buf[:n]); err != nil {
			return err
		}
	}
}

// readOne waits until kcp-go is due (at most waitMax) for one datagram and
// feeds it to the engine.
func (p *peer) readOne(buf []byte) error {
	wait := time.Duration(int32(p.k.Check()-nowMs())) * time.Millisecond
	if wait < 0 {
		wait = 0
	} else if wait > waitMax {
		wait = waitMax
	}
	p.conn.SetReadDeadline(time.Now().Add(wait))
	n, from, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return fmt.Errorf("ReadFromUDP: %v", err)
	}
	if !from.IP.Equal(p.addr.IP) || from.Port != p.addr.Port {
		p.alien++
		return nil
	}
	p.dgramsIn++
	p.lastRx = time.Now()
	if p.lose(&p.rngRx) {
		p.droppedIn++
		return nil
	}
	if rc := p.k.Input(buf[:n], true, false); rc < 0 {
		head := buf[:n]
		if len(head) > 32 {
			head = head[:32]
		}
		return fmt.Errorf("kcp-go Input refused a %d-byte datagram from kite: %d (starts %s)",
			n, rc, hex.EncodeToString(head))
	}
	return nil
}

func (p *peer) finished() bool {
	return p.received == p.n && p.sent == p.n && p.k.WaitSnd() == 0
}

func (p *peer) run(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	rbuf := make([]byte, msgMax)
	dbuf := make([]byte, 2048)
	var doneAt time.Time
	for {
		now := time.Now()
		if now.Sub(start) >= timeout {
			return 0, fmt.Errorf("timed out after %v: received %d/%d messages, sent %d, waiting segments %d",
				timeout, p.received, p.n, p.sent, p.k.WaitSnd())
		}
		if err := p.queueMessages(); err != nil {
			return 0, err
		}
		p.k.Update()
		if err := p.readOne(dbuf); err != nil {
			return 0, err
		}
		if err := p.deliver(rbuf); err != nil {
			return 0, err
		}
		now = time.Now()
		if doneAt.IsZero() && p.finished() {
			doneAt = now
		}
		if !doneAt.IsZero() && now.Sub(doneAt) >= lingerMin &&
			(now.Sub(p.lastRx) >= lingerQuiet || now.Sub(doneAt) >= lingerMax) {
			return doneAt.Sub(start), nil
		}
	}
}

func main() {
	port := flag.Int("port", 0, "the kite peer's UDP port on 127.0.0.1")
	n := flag.Uint("n", 300, "messages each way")
	loss := flag.Uint("loss", 10, "percent of datagrams dropped, each way")
	seed := flag.Uint64("seed", 2, "loss pattern seed")
	timeout := flag.Duration("timeout", 20*time.Second, "give up after")
	flag.Parse()
	fail := func(format string, a ...interface{}) {
		fmt.Fprintf(os.Stderr, "kcpgo_peer: FAIL: "+format+"\n", a...)
		os.Exit(1)
	}
	if *port <= 0 || *port > 65535 || *n == 0 || *loss > 50 {
		fail("need -port 1..65535, -n > 0, -loss <= 50")
	}

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fail("ListenUDP: %v", err)
	}
	defer conn.Close()
	conn.SetReadBuffer(1 << 20)
	conn.SetWriteBuffer(1 << 20)
	p := &peer{
		conn:    conn,
		addr:    &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: *port},
		n:       uint32(*n),
		lossPct: uint64(*loss),
		rngTx:   rng(*seed),
		rngRx:   rng(*seed ^ 0x5DEECE66D),
		lastRx:  time.Now(),
	}
	p.k = kcp.NewKCP(conv, p.output)
	// kcp-go's defaults are windows 32 and interval 100: match kite's.
	p.k.WndSize(128, 128)
	p.k.NoDelay(1, 10, 2, 1)
	p.k.SetMtu(1400)

	before := kcp.DefaultSnmp.Copy()
	took, err := p.run(*timeout)
	if err != nil {
		fail("%v", err)
	}
	after := kcp.DefaultSnmp.Copy()
	retrans := after.RetransSegs - before.RetransSegs
	fast := after.FastRetransSegs - before.FastRetransSegs
	early := after.EarlyRetransSegs - before.EarlyRetransSegs
	lost := after.LostSegs - before.LostSegs
	// With loss injected, recovery must have been exercised, or the test
	// did not test what it claims.
	if p.lossPct > 0 && (p.droppedOut == 0 || p.droppedIn == 0) {
		fail("loss injection dropped nothing (out %d, in %d)", p.droppedOut, p.droppedIn)
	}
	if p.lossPct > 0 && retrans == 0 {
		fail("%d%% loss but kcp-go never retransmitted", p.lossPct)
	}
	fmt.Printf("kcpgo_peer: OK: received %d messages (%d bytes), sent %d (%d bytes) in %d ms; "+
		"retransmits %d (%d timeout, %d fast, %d early); datagrams out %d (dropped %d, send errors %d), "+
		"in %d (dropped %d)\n",
		p.received, p.bytesReceived, p.sent, p.bytesSent, took.Milliseconds(),
		retrans, lost, fast, early, p.dgramsOut, p.droppedOut, p.sendErrors,
		p.dgramsIn, p.droppedIn)
}
