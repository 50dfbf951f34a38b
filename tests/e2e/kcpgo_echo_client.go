// kcpgo_echo_client: a client built from kcp-go alone, to prove kite's wire
// format end to end (PROTOCOL.md sections 1 to 4). It does the handshake
// on a raw UDP socket (HELLO, CHALLENGE, CONNECT, ACCEPT: tools/kitewire,
// which checks that every reply comes from the server's address and is no
// larger than its request), sends the CONNECT again and expects the same
// ACCEPT, then runs a stock kcp-go UDPSession on the accepted conv and mtu,
// sends frames of many sizes (some larger than one segment, which kcp-go's
// Write splits into several messages) with and without CRC, checks every
// echo, checks a ping's pong, and closes with the token.
//
// usage: kcpgo_echo_client -server 127.0.0.1:PORT [-frames N]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"kite/kitewire"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kcpgo_echo_client: FAIL: "+format+"\n", args...)
	os.Exit(1)
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
	a, err := kitewire.Handshake(conn, srv, kitewire.DefaultMtu, kitewire.DefaultWnd)
	if err != nil {
		fail("handshake: %v", err)
	}
	if a.Mtu != kitewire.DefaultMtu || a.MaxFrame == 0 {
		fail("odd ACCEPT: %+v", a)
	}
	// The same CONNECT again (as if the ACCEPT were lost): the same ACCEPT.
	again, err := kitewire.Exchange(conn, srv, a.Connect, a.Connect[8:16], kitewire.TypeAccept)
	if err != nil || !bytes.Equal(a.Raw, again) {
		fail("a repeated CONNECT got a different ACCEPT (%v)", err)
	}
	conn.SetReadDeadline(time.Time{})

	sess, err := kitewire.Session(conn, srv, a, kitewire.DefaultInterval)
	if err != nil {
		fail("NewConn3: %v", err)
	}
	sess.SetDeadline(time.Now().Add(20 * time.Second))
	fr := kitewire.NewFrameReader(sess, a.MaxFrame)

	// A ping opens the session (PROTOCOL.md section 2, step 5).
	ping := []byte("kcp-go ping")
	if _, err := sess.Write(kitewire.Frame(kitewire.MsgPing, 0, ping, false)); err != nil {
		fail("write ping: %v", err)
	}
	id, flags, body, err := fr.Read()
	if err != nil {
		fail("reading the pong: %v", err)
	}
	if id != kitewire.MsgPing || flags&kitewire.FlagPong == 0 || !bytes.Equal(body, ping) {
		fail("expected a pong with the ping's body, got msg_id %d flags %#x", id, flags)
	}

	sizes := []int{0, 1, 64, 1363, 1364, 1376, 4000, 20000, 65536}
	sent := 0
	for i := 0; i < *frames; i++ {
		size := sizes[i%len(sizes)]
		if uint32(size) > a.MaxFrame {
			size = int(a.MaxFrame)
		}
		body := make([]byte, size)
		for j := range body {
			body[j] = byte(i*7 + j*13)
		}
		msgID := uint16(1 + i%1000)
		if _, err := sess.Write(kitewire.Frame(msgID, 0, body, i%2 == 0)); err != nil {
			fail("write: %v", err)
		}
		gotID, _, got, err := fr.Read()
		if err != nil {
			fail("frame %d (%d bytes): reading the echo: %v", i, size, err)
		}
		if gotID != msgID || !bytes.Equal(got, body) {
			fail("frame %d (%d bytes, msg_id %d): echo differs (msg_id %d, %d bytes)",
				i, size, msgID, gotID, len(got))
		}
		sent += size
	}

	// Close with the token, three times (PROTOCOL.md: no acknowledgement).
	kitewire.Close(conn, srv, a)
	sess.Close()
	fmt.Printf("kcpgo_echo_client: OK: conv %#x, %d frames echoed (%d body bytes), mtu %d, idle %d ms\n",
		a.Conv, *frames, sent, a.Mtu, a.IdleMs)
}
