// kcpgo_echo_client: a client built from kcp-go alone, to prove kite's wire
// format end to end (PROTOCOL.md sections 1 to 4). It does the handshake
// on a raw UDP socket (HELLO, CHALLENGE, CONNECT, ACCEPT), then runs a
// stock kcp-go UDPSession on the accepted conv and mtu, sends frames of
// many sizes (some larger than one segment, which kcp-go's Write splits
// into several messages) with and without CRC, checks every echo, checks a
// ping's pong, and closes with the token.
//
// usage: kcpgo_echo_client -server 127.0.0.1:PORT [-frames N]
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

const (
	typeHello     = 1
	typeChallenge = 2
	typeConnect   = 3
	typeAccept    = 4
	typeReject    = 5
	typeClose     = 6
)

var magic = []byte("KITE")

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kcpgo_echo_client: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func header(t byte) []byte {
	return append(append([]byte{}, magic...), t, 1, 0, 0)
}

// exchange sends req every 250 ms until a control packet of type want
// (or REJECT) with our nonce arrives, up to 8 times.
func exchange(conn *net.UDPConn, srv *net.UDPAddr, req []byte, nonce []byte, want byte) []byte {
	buf := make([]byte, 2048)
	for try := 0; try < 8; try++ {
		if _, err := conn.WriteToUDP(req, srv); err != nil {
			fail("send: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				break // timeout: send again
			}
			if from.String() != srv.String() {
				fail("reply from %v, not from %v (PROTOCOL.md section 1)", from, srv)
			}
			p := buf[:n]
			if n < 16 || !bytes.Equal(p[:4], magic) || !bytes.Equal(p[8:16], nonce) {
				continue
			}
			if p[4] == typeReject {
				fail("REJECT reason %d", p[16])
			}
			if p[4] == want {
				if n > len(req) {
					fail("reply of %d bytes to a request of %d: amplification", n, len(req))
				}
				return append([]byte{}, p...)
			}
		}
	}
	fail("no answer of type %d after 8 tries", want)
	return nil
}

type accept struct {
	conv, idle, maxFrame uint32
	token                []byte
	mtu, wnd             uint16
}

func handshake(conn *net.UDPConn, srv *net.UDPAddr) accept {
	nonce := make([]byte, 8)
	rand.Read(nonce)
	hello := make([]byte, 64)
	copy(hello, header(typeHello))
	copy(hello[8:], nonce)
	ch := exchange(conn, srv, hello, nonce, typeChallenge)
	if len(ch) != 32 {
		fail("CHALLENGE of %d bytes", len(ch))
	}
	connect := make([]byte, 64)
	copy(connect, header(typeConnect))
	copy(connect[8:], nonce)
	copy(connect[16:], ch[16:32])
	binary.LittleEndian.PutUint16(connect[32:], 1400)
	binary.LittleEndian.PutUint16(connect[34:], 128)
	a := exchange(conn, srv, connect, nonce, typeAccept)
	if len(a) != 40 {
		fail("ACCEPT of %d bytes", len(a))
	}
	// The same CONNECT again (as if the ACCEPT were lost): the same ACCEPT.
	again := exchange(conn, srv, connect, nonce, typeAccept)
	if !bytes.Equal(a, again) {
		fail("a repeated CONNECT got a different ACCEPT")
	}
	return accept{
		conv:     binary.LittleEndian.Uint32(a[16:]),
		token:    append([]byte{}, a[20:28]...),
		mtu:      binary.LittleEndian.Uint16(a[28:]),
		wnd:      binary.LittleEndian.Uint16(a[30:]),
		idle:     binary.LittleEndian.Uint32(a[32:]),
		maxFrame: binary.LittleEndian.Uint32(a[36:]),
	}
}

func frame(msgID uint16, flags uint16, body []byte, withCRC bool) []byte {
	f := make([]byte, 12+len(body))
	binary.LittleEndian.PutUint32(f[0:], uint32(len(body)))
	binary.LittleEndian.PutUint16(f[4:], msgID)
	if withCRC {
		flags |= 1
		binary.LittleEndian.PutUint32(f[8:], crc32.ChecksumIEEE(body))
	}
	binary.LittleEndian.PutUint16(f[6:], flags)
	copy(f[12:], body)
	return f
}

func readFrame(r io.Reader, maxFrame uint32) (uint16, uint16, []byte) {
	var h [12]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		fail("reading a frame header: %v", err)
	}
	n := binary.LittleEndian.Uint32(h[0:])
	if n > maxFrame {
		fail("frame of %d bytes above max_frame %d", n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		fail("reading a frame body: %v", err)
	}
	flags := binary.LittleEndian.Uint16(h[6:])
	if flags&1 != 0 && crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(h[8:]) {
		fail("CRC mismatch on a frame from the server")
	}
	return binary.LittleEndian.Uint16(h[4:]), flags, body
}

func main() {
	server := flag.String("server", "", "HOST:PORT of kite-echo")
	frames := flag.Int("frames", 200, "frames to echo")
	flag.Parse()
	srv, err := net.ResolveUDPAddr("udp", *server)
	if err != nil || *server == "" {
		fail("bad -server %q", *server)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fail("listen: %v", err)
	}
	a := handshake(conn, srv)
	conn.SetReadDeadline(time.Time{})
	if a.conv == 0x4554494B || a.mtu != 1400 || a.maxFrame == 0 {
		fail("odd ACCEPT: %+v", a)
	}

	sess, err := kcp.NewConn3(a.conv, srv, nil, 0, 0, conn)
	if err != nil {
		fail("NewConn3: %v", err)
	}
	sess.SetNoDelay(1, 10, 2, 1)
	sess.SetWindowSize(128, int(a.wnd))
	sess.SetMtu(int(a.mtu))
	sess.SetDeadline(time.Now().Add(20 * time.Second))

	// A ping opens the session (PROTOCOL.md section 2, step 5).
	ping := []byte("kcp-go ping")
	if _, err := sess.Write(frame(0, 0, ping, false)); err != nil {
		fail("write ping: %v", err)
	}
	id, flags, body := readFrame(sess, a.maxFrame)
	if id != 0 || flags&2 == 0 || !bytes.Equal(body, ping) {
		fail("expected a pong with the ping's body, got msg_id %d flags %#x", id, flags)
	}

	sizes := []int{0, 1, 64, 1363, 1364, 1376, 4000, 20000, 65536}
	sent := 0
	for i := 0; i < *frames; i++ {
		size := sizes[i%len(sizes)]
		if uint32(size) > a.maxFrame {
			size = int(a.maxFrame)
		}
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(i*7 + j*13)
		}
		msgID := uint16(1 + i%1000)
		if _, err := sess.Write(frame(msgID, 0, body, i%2 == 0)); err != nil {
			fail("write: %v", err)
		}
		gotID, _, got := readFrame(sess, a.maxFrame)
		if gotID != msgID || !bytes.Equal(got, body) {
			fail("frame %d (%d bytes, msg_id %d): echo differs (msg_id %d, %d bytes)",
				i, size, msgID, gotID, len(got))
		}
		sent += size
	}

	// Close with the token, three times (PROTOCOL.md: no acknowledgement).
	c := make([]byte, 21)
	copy(c, header(typeClose))
	binary.LittleEndian.PutUint32(c[8:], a.conv)
	copy(c[12:], a.token)
	for i := 0; i < 3; i++ {
		conn.WriteToUDP(c, srv)
	}
	sess.Close()
	var ne net.Error
	_ = errors.As(err, &ne)
	fmt.Printf("kcpgo_echo_client: OK: conv %#x, %d frames echoed (%d body bytes), mtu %d, idle %d ms\n",
		a.conv, *frames, sent, a.mtu, a.idle)
}
