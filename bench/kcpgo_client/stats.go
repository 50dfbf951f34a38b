package main

// What kite-bench measures, the way it measures it (tools/bench): the
// frames' bodies (payload.c), the round-trip histogram (histogram.c) and
// the server's CPU time and memory from /proc (proc.c), so that a figure
// from this client and one from kite-bench can be set side by side.

import (
	"encoding/binary"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

const payloadHdr = 20 // seq u64, sent_us u64, session u32, then a pattern

func pattern(seq uint64, session uint32, i uint32) byte {
	return byte(seq*131 + uint64(session)*7 + uint64(i)*31)
}

func fillBody(b []byte, session uint32, seq, sentUs uint64) {
	binary.LittleEndian.PutUint64(b[0:], seq)
	binary.LittleEndian.PutUint64(b[8:], sentUs)
	binary.LittleEndian.PutUint32(b[16:], session)
	for i := payloadHdr; i < len(b); i++ {
		b[i] = pattern(seq, session, uint32(i))
	}
}

// parseBody checks an echo: its size, and every byte after the header.
func parseBody(b []byte, size int) (seq, sentUs uint64, session uint32, ok bool) {
	if len(b) != size || size < payloadHdr {
		return 0, 0, 0, false
	}
	seq = binary.LittleEndian.Uint64(b[0:])
	sentUs = binary.LittleEndian.Uint64(b[8:])
	session = binary.LittleEndian.Uint32(b[16:])
	for i := payloadHdr; i < len(b); i++ {
		if b[i] != pattern(seq, session, uint32(i)) {
			return 0, 0, 0, false
		}
	}
	return seq, sentUs, session, true
}

// histogram: 32 linear sub-buckets per power of two of microseconds, as
// kite-bench's. Every session's reader adds to the one histogram, with
// atomics (owner: none; written by all readers, read once they are done).
const (
	histSub = 32
	histPow = 27
)

type histogram struct {
	counts     [histPow][histSub]uint64
	total, max uint64
}

func (h *histogram) add(us uint64) {
	p, s := 0, 0
	if us < histSub {
		s = int(us)
	} else {
		p = 63 - bits.LeadingZeros64(us) - 4
		if p > histPow-1 {
			p, s = histPow-1, histSub-1
		} else {
			s = int(us>>(p-1)) - histSub
		}
	}
	atomic.AddUint64(&h.counts[p][s], 1)
	atomic.AddUint64(&h.total, 1)
	for {
		m := atomic.LoadUint64(&h.max)
		if us <= m || atomic.CompareAndSwapUint64(&h.max, m, us) {
			break
		}
	}
}

func bucketTop(p, s int) uint64 {
	if p == 0 {
		return uint64(s)
	}
	return (uint64(histSub+s+1) << (p - 1)) - 1
}

// quantile is the value in us at or below which q (0..1) of the samples lie.
func (h *histogram) quantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	want := uint64(q * float64(h.total))
	if want >= h.total {
		want = h.total - 1
	}
	seen := uint64(0)
	for p := 0; p < histPow; p++ {
		for s := 0; s < histSub; s++ {
			seen += h.counts[p][s]
			if seen > want {
				if top := bucketTop(p, s); top < h.max {
					return top
				}
				return h.max
			}
		}
	}
	return h.max
}

// procSample is a process's CPU time (user + system) and memory.
type procSample struct {
	cpuS         float64
	rssKb, hwmKb uint64
}

// clockTicks is the kernel's USER_HZ, from the auxiliary vector (AT_CLKTCK),
// as sysconf(_SC_CLK_TCK) reads it.
func clockTicks() float64 {
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		for i := 0; i+16 <= len(b); i += 16 {
			if binary.LittleEndian.Uint64(b[i:]) == 17 { // AT_CLKTCK
				if v := binary.LittleEndian.Uint64(b[i+8:]); v > 0 {
					return float64(v)
				}
			}
		}
	}
	return 100
}

// procRead reads /proc/PID/stat (utime and stime, fields 14 and 15) and
// /proc/PID/status (VmRSS, VmHWM), as kite-bench's proc_read().
func procRead(pid int, tck float64) (procSample, bool) {
	var ps procSample
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ps, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ps, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return ps, false
	}
	ps.cpuS = float64(atou(f[11])+atou(f[12])) / tck
	if b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err != nil {
		return ps, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			ps.rssKb = atou(f[1])
		} else if len(f) >= 2 && f[0] == "VmHWM:" {
			ps.hwmKb = atou(f[1])
		}
	}
	return ps, true
}

func atou(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}
