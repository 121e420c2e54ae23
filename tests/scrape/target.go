// A small Go program serving net/http/pprof on 127.0.0.1, for the pull-mode test
// (tests/integration/test_scrape.py builds it with Debian's golang-go and starts it).
// usage: target ADDR   (e.g. 127.0.0.1:0); prints "listening on HOST:PORT" once it serves.
// It burns CPU in hearthScrapeBurn, allocates in hearthScrapeAlloc, and contends a mutex in
// hearthScrapeContend, so every profile kind has a known function to look for.
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"sync"
	"time"
)

var sink []byte
var kept [][]byte

//go:noinline
func hearthScrapeBurn(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i % 7
	}
	return s
}

//go:noinline
func hearthScrapeAlloc() {
	b := make([]byte, 64<<10)
	kept = append(kept, b)
	if len(kept) > 64 {
		kept = kept[1:]
	}
	sink = b
}

//go:noinline
func hearthScrapeContend(mu *sync.Mutex) {
	mu.Lock()
	time.Sleep(200 * time.Microsecond)
	mu.Unlock()
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: target ADDR")
		os.Exit(2)
	}
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1)
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			hearthScrapeBurn(5_000_000)
			hearthScrapeAlloc()
			time.Sleep(time.Millisecond)
		}
	}()
	var mu sync.Mutex
	for i := 0; i < 4; i++ {
		go func() {
			for {
				hearthScrapeContend(&mu)
			}
		}()
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
