// Package kitewire is the client side of kite's wire protocol, version 1
// (PROTOCOL.md sections 2 and 4), for Go programs that speak to kite with a
// stock kcp-go session: the handshake on a raw UDP socket (HELLO,
// CHALLENGE, CONNECT, ACCEPT), the kcp-go session tuned to what ACCEPT
// announces, kite's 12-byte frames, pings and CLOSE. Nothing here changes
// kcp-go: a session is kcp.NewConn3 over the handshake's socket.
//
// Users: tests/e2e/kcpgo_echo_client.go (one client, every check) and
// bench/kcpgo_client (the stock-client load). Built in GOPATH mode against
// Debian's golang-github-xtaci-kcp-dev, imported as "kite/kitewire"
// (scripts/gobuild.sh lays out the GOPATH).
//
// Threads: the functions keep no state; a socket is used by one goroutine
// at a time (the handshake's, then kcp-go's read loop).
package kitewire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

// Control packet types (PROTOCOL.md section 2).
const (
	TypeHello     = 1
	TypeChallenge = 2
	TypeConnect   = 3
	TypeAccept    = 4
	TypeReject    = 5
	TypeClose     = 6
)

// Frame header fields (PROTOCOL.md section 4).
const (
	HeaderSize = 12
	MsgPing    = 0
	FlagCRC    = 1
	FlagPong   = 2
	PingMax    = 32 // a ping's body, at most
)

// Kite's KCP defaults (PROTOCOL.md section 3): the tuning a client uses
// with what ACCEPT announces (mtu, the server's receive window).
const (
	DefaultMtu      = 1400
	DefaultWnd      = 128
	DefaultNodelay  = 1
	DefaultInterval = 10 // ms
	DefaultResend   = 2
	DefaultNoCwnd   = 1
)

// Retransmission of HELLO and CONNECT (PROTOCOL.md section 2).
const (
	RetryPeriod = 250 * time.Millisecond
	Tries       = 9 // the first send and 8 retransmissions
)

// Magic starts every control packet.
var Magic = []byte("KITE")

// Header is a control packet's 8-byte header, version 1.
func Header(t byte) []byte {
	return append(append(make([]byte, 0, 8), Magic...), t, 1, 0, 0)
}

// RejectError is a REJECT from the server (reasons: PROTOCOL.md section 2).
type RejectError struct{ Reason byte }

func (e *RejectError) Error() string { return fmt.Sprintf("REJECT reason %d", e.Reason) }

// Exchange sends req to srv every RetryPeriod, up to Tries times, until a
// control packet of type want (or a REJECT) carrying nonce arrives, and
// returns a copy of it. A reply from any other address, or one larger than
// req (amplification), is an error. Leaves a read deadline set on conn.
func Exchange(conn *net.UDPConn, srv *net.UDPAddr, req, nonce []byte, want byte) ([]byte, error) {
	buf := make([]byte, 2048)
	for try := 0; try < Tries; try++ {
		if _, err := conn.WriteToUDP(req, srv); err != nil {
			return nil, fmt.Errorf("send: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(RetryPeriod))
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				break // the deadline: send again
			}
			if !from.IP.Equal(srv.IP) || from.Port != srv.Port {
				return nil, fmt.Errorf("reply from %v, not from %v (PROTOCOL.md section 1)", from, srv)
			}
			p := buf[:n]
			if n < 16 || !bytes.Equal(p[:4], Magic) || !bytes.Equal(p[8:16], nonce) {
				continue
			}
			if p[4] == TypeReject && n >= 17 {
				return nil, &RejectError{p[16]}
			}
			if p[4] == want {
				if n > len(req) {
					return nil, fmt.Errorf("reply of %d bytes to a request of %d: amplification", n, len(req))
				}
				return append([]byte{}, p...), nil
			}
		}
	}
	return nil, fmt.Errorf("no answer of type %d after %d tries", want, Tries)
}

// Accept is what the server's ACCEPT carries, with the CONNECT that got it
// (sending it again must get the same ACCEPT) and the ACCEPT's bytes.
type Accept struct {
	Conv, IdleMs, MaxFrame uint32
	Token                  [8]byte
	Mtu, Wnd               uint16
	Connect, Raw           []byte
}

// Handshake runs HELLO, CHALLENGE, CONNECT, ACCEPT on conn (an unconnected
// UDP socket) with a fresh nonce, offering mtu and the receive window wnd.
// On return conn has no read deadline.
func Handshake(conn *net.UDPConn, srv *net.UDPAddr, mtu, wnd uint16) (*Accept, error) {
	defer conn.SetReadDeadline(time.Time{})
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	hello := make([]byte, 64)
	copy(hello, Header(TypeHello))
	copy(hello[8:], nonce)
	ch, err := Exchange(conn, srv, hello, nonce, TypeChallenge)
	if err != nil {
		return nil, fmt.Errorf("HELLO: %v", err)
	}
	if len(ch) != 32 {
		return nil, fmt.Errorf("CHALLENGE of %d bytes", len(ch))
	}
	connect := make([]byte, 64)
	copy(connect, Header(TypeConnect))
	copy(connect[8:], nonce)
	copy(connect[16:], ch[16:32])
	binary.LittleEndian.PutUint16(connect[32:], mtu)
	binary.LittleEndian.PutUint16(connect[34:], wnd)
	p, err := Exchange(conn, srv, connect, nonce, TypeAccept)
	if err != nil {
		return nil, fmt.Errorf("CONNECT: %v", err)
	}
	if len(p) != 40 {
		return nil, fmt.Errorf("ACCEPT of %d bytes", len(p))
	}
	a := &Accept{
		Conv:     binary.LittleEndian.Uint32(p[16:]),
		Mtu:      binary.LittleEndian.Uint16(p[28:]),
		Wnd:      binary.LittleEndian.Uint16(p[30:]),
		IdleMs:   binary.LittleEndian.Uint32(p[32:]),
		MaxFrame: binary.LittleEndian.Uint32(p[36:]),
		Connect:  connect,
		Raw:      p,
	}
	copy(a.Token[:], p[20:28])
	if a.Conv == 0x4554494B || a.Mtu == 0 || a.Mtu > mtu || a.Wnd == 0 {
		return nil, fmt.Errorf("odd ACCEPT: conv %#x, mtu %d (offered %d), window %d",
			a.Conv, a.Mtu, mtu, a.Wnd)
	}
	return a, nil
}

// Session opens a stock kcp-go session on the accepted conv over conn (the
// handshake's socket, which kcp-go's read loop then owns), tuned as kite's
// client is: nodelay 1, interval intervalMs (kite's: DefaultInterval),
// fast resend 2, no congestion window, windows 128 and the server's, the
// accepted mtu, message mode.
func Session(conn *net.UDPConn, srv *net.UDPAddr, a *Accept, intervalMs int) (*kcp.UDPSession, error) {
	s, err := kcp.NewConn3(a.Conv, srv, nil, 0, 0, conn)
	if err != nil {
		return nil, err
	}
	s.SetNoDelay(DefaultNodelay, intervalMs, DefaultResend, DefaultNoCwnd)
	s.SetWindowSize(DefaultWnd, int(a.Wnd))
	s.SetMtu(int(a.Mtu))
	return s, nil
}

// PingPeriod is how often a client pings: min(idle_timeout / 3, 15 s).
func PingPeriod(idleMs uint32) time.Duration {
	p := 15 * time.Second
	if idleMs > 0 && time.Duration(idleMs/3)*time.Millisecond < p {
		p = time.Duration(idleMs/3) * time.Millisecond
	}
	if p <= 0 {
		p = time.Millisecond
	}
	return p
}

// ClosePacket is CLOSE for the session (conv, token) with reason.
func ClosePacket(conv uint32, token [8]byte, reason byte) []byte {
	c := make([]byte, 21)
	copy(c, Header(TypeClose))
	binary.LittleEndian.PutUint32(c[8:], conv)
	copy(c[12:], token[:])
	c[20] = reason
	return c
}

// Close sends CLOSE, reason 0, three times (there is no acknowledgement).
func Close(conn *net.UDPConn, srv *net.UDPAddr, a *Accept) {
	c := ClosePacket(a.Conv, a.Token, 0)
	for i := 0; i < 3; i++ {
		conn.WriteToUDP(c, srv)
	}
}
