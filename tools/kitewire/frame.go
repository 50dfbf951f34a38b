package kitewire

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// PutHeader writes body's frame header into h[:HeaderSize]; with crc,
// flags gains FlagCRC and the header the body's CRC-32.
func PutHeader(h []byte, msgID, flags uint16, body []byte, crc bool) {
	binary.LittleEndian.PutUint32(h[0:], uint32(len(body)))
	binary.LittleEndian.PutUint16(h[4:], msgID)
	var sum uint32
	if crc {
		flags |= FlagCRC
		sum = crc32.ChecksumIEEE(body)
	}
	binary.LittleEndian.PutUint16(h[6:], flags)
	binary.LittleEndian.PutUint32(h[8:], sum)
}

// Frame returns a new frame: header, then a copy of body.
func Frame(msgID, flags uint16, body []byte, crc bool) []byte {
	f := make([]byte, HeaderSize+len(body))
	PutHeader(f, msgID, flags, body, crc)
	copy(f[HeaderSize:], body)
	return f
}

// FrameReader reads frames from a session's byte stream (the payloads of
// its KCP messages in order: a frame may span messages, a message hold
// several frames). One goroutine reads; its buffer is reused, so a body
// is valid until the next Read.
type FrameReader struct {
	r        io.Reader
	MaxFrame uint32
	hdr      [HeaderSize]byte
	body     []byte
}

func NewFrameReader(r io.Reader, maxFrame uint32) *FrameReader {
	return &FrameReader{r: r, MaxFrame: maxFrame}
}

// Read returns the next frame's msg_id, flags and body. Errors: the
// reader's, a length above MaxFrame, a CRC that does not match, a pong
// flag on a msg_id other than 0 (all protocol errors in PROTOCOL.md).
func (fr *FrameReader) Read() (msgID, flags uint16, body []byte, err error) {
	if _, err = io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.LittleEndian.Uint32(fr.hdr[0:])
	msgID = binary.LittleEndian.Uint16(fr.hdr[4:])
	flags = binary.LittleEndian.Uint16(fr.hdr[6:])
	if n > fr.MaxFrame {
		return 0, 0, nil, fmt.Errorf("frame of %d bytes above max_frame %d", n, fr.MaxFrame)
	}
	if cap(fr.body) < int(n) {
		fr.body = make([]byte, n)
	}
	body = fr.body[:n]
	if _, err = io.ReadFull(fr.r, body); err != nil {
		return 0, 0, nil, err
	}
	if flags&FlagCRC != 0 && crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(fr.hdr[8:]) {
		return 0, 0, nil, fmt.Errorf("CRC mismatch on a frame (msg_id %d, %d bytes)", msgID, n)
	}
	if flags&FlagPong != 0 && msgID != MsgPing {
		return 0, 0, nil, fmt.Errorf("pong flag on msg_id %d", msgID)
	}
	return msgID, flags, body, nil
}
