package main

// One session: its own UDP socket, kite's handshake on it (none with
// --raw-kcp), then a stock kcp-go session over it, a writer (frames at the
// rate, pings) and a reader (every echo checked, pings answered).

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	kcp "github.com/xtaci/kcp-go"

	"kite/kitewire"
)

const benchMsgID = 1 // as kite-bench's frames

// bench is the run: set up by main before the sessions start, then shared.
type bench struct {
	cfg    config
	srv    *net.UDPAddr
	base   time.Time // sent_us in a frame: microseconds since base
	frameH int       // bytes before the body in what is sent: 12, or 0 raw

	// The schedule, written by main before it closes start.
	start                  chan struct{}
	windowStart, windowEnd uint64 // us since base

	// Counters: every session adds (atomics); main reads once they are done.
	connected, failed              atomic.Uint32
	sent, received, outOfOrder     atomic.Uint64
	corrupt, windowReceived, pings atomic.Uint64
	rtt                            histogram
	sending                        sync.WaitGroup // writers not past the window
	running                        sync.WaitGroup // session goroutines
	errMu                          sync.Mutex     // guards errs, sessions, closing
	errs                           []string       // the first few failures
	sessions                       []*session     // the open ones, for main to close
	closing                        bool           // main is closing them: a late one closes itself
}

// session: one per session goroutine; main closes it at the end.
type session struct {
	id     uint32
	conn   *net.UDPConn
	accept *kitewire.Accept // nil with --raw-kcp
	kcp    *kcp.UDPSession
	expect uint64 // the next echo's seq (owner: the reader)
	sent   uint64 // frames sent (owner: the writer)
	buf    []byte // the frame being sent (owner: the writer)
	got    atomic.Uint64
}

func (b *bench) nowUs() uint64 { return uint64(time.Since(b.base) / time.Microsecond) }

func (b *bench) fail(id uint32, format string, args ...interface{}) {
	b.errMu.Lock()
	if len(b.errs) < 5 {
		b.errs = append(b.errs, fmt.Sprintf("session %d: ", id)+fmt.Sprintf(format, args...))
	}
	b.errMu.Unlock()
}

// open: socket, handshake (at most cap(sem) at once), kcp-go session, and
// the ping that opens a kite session (PROTOCOL.md section 2, step 5).
func (b *bench) open(id uint32, sem chan struct{}) (*session, error) {
	network := "udp4"
	if b.srv.IP.To4() == nil {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("socket: %v", err)
	}
	s := &session{id: id, conn: conn, buf: make([]byte, b.frameH+b.cfg.size)}
	a := &kitewire.Accept{Conv: id + 1, Mtu: kitewire.DefaultMtu, Wnd: kitewire.DefaultWnd}
	if !b.cfg.raw {
		sem <- struct{}{}
		a, err = kitewire.Handshake(conn, b.srv, kitewire.DefaultMtu, kitewire.DefaultWnd)
		<-sem
		if err != nil {
			conn.Close()
			return nil, err
		}
		s.accept = a
	}
	if s.kcp, err = kitewire.Session(conn, b.srv, a, b.cfg.interval); err != nil {
		conn.Close()
		return nil, err
	}
	if !b.cfg.raw {
		if _, err = s.kcp.Write(b.ping()); err != nil {
			s.close(b)
			return nil, err
		}
	}
	return s, nil
}

func (b *bench) ping() []byte {
	var body [4]byte
	ms := uint32(time.Since(b.base) / time.Millisecond)
	body[0], body[1], body[2], body[3] = byte(ms), byte(ms>>8), byte(ms>>16), byte(ms>>24)
	return kitewire.Frame(kitewire.MsgPing, 0, body[:], false)
}

// close: CLOSE three times (kite), then kcp-go's session and the socket,
// which ends kcp-go's read loop and so this session's reader.
func (s *session) close(b *bench) {
	if s.accept != nil {
		kitewire.Close(s.conn, b.srv, s.accept)
	}
	s.kcp.Close()
	s.conn.Close()
}

// run is the session's goroutine: connect, then write until the window
// ends, then keep pinging until stop.
func (b *bench) run(id uint32, sem chan struct{}, connected *sync.WaitGroup, stop chan struct{}) {
	defer b.running.Done()
	s, err := b.open(id, sem)
	if err != nil {
		b.failed.Add(1)
		b.fail(id, "%v", err)
		connected.Done()
		b.sending.Done()
		return
	}
	b.errMu.Lock()
	late := b.closing
	if !late {
		b.sessions = append(b.sessions, s)
	}
	b.errMu.Unlock()
	if late { // connected after the run: not counted
		s.close(b)
		connected.Done()
		b.sending.Done()
		return
	}
	b.connected.Add(1)
	connected.Done()
	go b.read(s, stop)
	<-b.start
	b.write(s, stop)
}

func (b *bench) write(s *session, stop chan struct{}) {
	// b.sending counts writers that may still send in the window.
	sending := b.cfg.rate > 0
	if !sending {
		b.sending.Done()
	}
	finish := func() {
		if sending {
			sending = false
			b.sending.Done()
		}
	}
	defer finish()
	var pingC, sendC <-chan time.Time
	if s.accept != nil {
		period := kitewire.PingPeriod(s.accept.IdleMs)
		if b.cfg.pingMs > 0 {
			period = time.Duration(b.cfg.pingMs) * time.Millisecond
		}
		t := time.NewTicker(period)
		defer t.Stop()
		pingC = t.C
	}
	if sending {
		// Spread the first sends over one period, so the load is smooth.
		period := time.Duration(float64(time.Second) / b.cfg.rate)
		phase := period * time.Duration(s.id) / time.Duration(b.cfg.sessions)
		select {
		case <-time.After(phase):
		case <-stop:
			return
		}
		t := time.NewTicker(period)
		defer t.Stop()
		sendC = t.C
		if !b.send(s) {
			finish()
			sendC = nil
		}
	}
	for {
		select {
		case <-stop:
			return
		case <-pingC:
			if _, err := s.kcp.Write(b.ping()); err != nil {
				return
			}
			b.pings.Add(1)
		case <-sendC:
			if !b.send(s) {
				finish()
				sendC = nil
			}
		}
	}
}

// send sends the next frame; false once the window is over (or the
// session is closed).
func (b *bench) send(s *session) bool {
	now := b.nowUs()
	if now >= b.windowEnd {
		return false
	}
	buf := s.buf // kcp-go's Write copies it into its segments
	body := buf[b.frameH:]
	fillBody(body, s.id, s.sent, now)
	if b.frameH > 0 {
		kitewire.PutHeader(buf, benchMsgID, 0, body, b.cfg.crc)
	}
	if _, err := s.kcp.Write(buf); err != nil {
		return false
	}
	s.sent++
	b.sent.Add(1)
	return true
}

// read: every echo checked; with kite framing, pings answered and pongs
// counted; raw KCP is a byte stream cut every --size bytes.
func (b *bench) read(s *session, stop chan struct{}) {
	if b.cfg.raw {
		buf := make([]byte, b.cfg.size)
		for {
			if _, err := io.ReadFull(s.kcp, buf); err != nil {
				return
			}
			b.echo(s, buf)
		}
	}
	fr := kitewire.NewFrameReader(s.kcp, s.accept.MaxFrame)
	for {
		id, flags, body, err := fr.Read()
		if err != nil {
			select {
			case <-stop:
			default:
				b.failed.Add(1)
				b.fail(s.id, "reading: %v", err)
			}
			return
		}
		switch {
		case id == kitewire.MsgPing && flags&kitewire.FlagPong == 0:
			s.kcp.Write(kitewire.Frame(kitewire.MsgPing, kitewire.FlagPong, body, false))
		case id == kitewire.MsgPing:
		case id != benchMsgID:
			b.corrupt.Add(1)
		default:
			b.echo(s, body)
		}
	}
}

func (b *bench) echo(s *session, body []byte) {
	now := b.nowUs()
	seq, sentUs, sid, ok := parseBody(body, b.cfg.size)
	if !ok || sid != s.id {
		b.corrupt.Add(1)
		return
	}
	if seq != s.expect {
		b.outOfOrder.Add(1) // a gap, a repeat, or a reorder
	}
	if seq >= s.expect {
		s.expect = seq + 1
	}
	s.got.Add(1)
	b.received.Add(1)
	if sentUs >= b.windowStart && sentUs < b.windowEnd {
		b.windowReceived.Add(1)
		b.rtt.add(now - sentUs)
	}
}
