#include "io/http_get.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace hearth::io {
namespace {

TEST(Dechunk, JoinsChunksAndIgnoresExtensionsAndTrailers) {
  auto r = dechunk("4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.err().message;
  EXPECT_EQ(*r, "Wikipedia");
}

TEST(Dechunk, RefusesMalformedBodies) {
  EXPECT_FALSE(dechunk("zz\r\nab\r\n0\r\n\r\n").ok());
  EXPECT_FALSE(dechunk("10\r\nshort\r\n").ok());
  EXPECT_FALSE(dechunk("2\r\nabXX0\r\n\r\n").ok());
  EXPECT_FALSE(dechunk("").ok());
}

// A one-shot loopback server answering `reply` to the first connection.
struct one_shot {
  int fd = -1;
  uint16_t port = 0;
  std::thread t;
  explicit one_shot(std::string reply, bool hang = false) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 1);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    t = std::thread([this, reply, hang] {
      int c = ::accept(fd, nullptr, nullptr);
      char buf[4096];
      (void)::recv(c, buf, sizeof buf, 0);
      (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      if (hang) std::this_thread::sleep_for(std::chrono::milliseconds(800));
      ::close(c);
    });
  }
  ~one_shot() {
    t.join();
    ::close(fd);
  }
};

TEST(HttpGet, ContentLengthAndChunkedBodies) {
  {
    one_shot s("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\nhello");
    auto r = http_get("127.0.0.1", s.port, "/debug/pprof/heap", std::chrono::seconds(5), 1 << 20);
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "hello");
    EXPECT_EQ(r->content_type, "application/octet-stream");
  }
  {
    one_shot s("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nno!\r\n0\r\n\r\n");
    auto r = http_get("127.0.0.1", s.port, "/x", std::chrono::seconds(5), 1 << 20);
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(r->body, "no!");
  }
}

TEST(HttpGet, LimitsTimeoutsAndRefusedConnections) {
  {
    one_shot s("HTTP/1.1 200 OK\r\n\r\n" + std::string(5000, 'x'));
    auto r = http_get("127.0.0.1", s.port, "/", std::chrono::seconds(5), 1000);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::body_too_large);
  }
  {
    one_shot s("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", /*hang=*/true);
    auto r = http_get("127.0.0.1", s.port, "/", std::chrono::milliseconds(200), 1000);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.err().message.find("within 200 ms"), std::string::npos) << r.err().message;
  }
  {
    uint16_t port;
    {
      one_shot s("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      port = s.port;
      (void)http_get("127.0.0.1", port, "/", std::chrono::seconds(5), 10);
    }  // closed: nothing listens on the port now
    auto r = http_get("127.0.0.1", port, "/", std::chrono::seconds(5), 10);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::unavailable);
    EXPECT_NE(r.err().message.find("cannot connect to 127.0.0.1:"), std::string::npos) << r.err().message;
  }
}

}  // namespace
}  // namespace hearth::io
