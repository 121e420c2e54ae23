#include "io/http_get.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hearth::io {
namespace {

using clock_type = std::chrono::steady_clock;

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

int ms_left(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Waits for `events` on fd until the deadline: true when ready.
bool wait_for(int fd, short events, clock_type::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int left = ms_left(deadline);
    int r = ::poll(&p, 1, left);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return o;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

result<std::string> dechunk(std::string_view body) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) return error{errc::invalid_argument, "chunked body: missing chunk size line"};
    std::string_view line = body.substr(pos, eol - pos);
    if (size_t semi = line.find(';'); semi != std::string_view::npos) line = line.substr(0, semi);
    line = trim(line);
    if (line.empty() || line.size() > 15) return error{errc::invalid_argument, "chunked body: bad chunk size"};
    uint64_t n = 0;
    for (char c : line) {
      int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (v < 0) return error{errc::invalid_argument, "chunked body: bad chunk size"};
      n = n << 4 | static_cast<uint64_t>(v);
    }
    pos = eol + 2;
    if (n == 0) return out;  // trailers, if any, are ignored
    if (body.size() - pos < n + 2) return error{errc::invalid_argument, "chunked body: truncated chunk"};
    out.append(body.substr(pos, n));
    pos += n;
    if (body.substr(pos, 2) != "\r\n") return error{errc::invalid_argument, "chunked body: missing CRLF after chunk"};
    pos += 2;
  }
}

result<http_response> http_get(const std::string& host, uint16_t port, const std::string& target,
                               std::chrono::milliseconds timeout, uint64_t max_body) {
  const auto deadline = clock_type::now() + timeout;
  const std::string where = host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return error{errc::unavailable, "cannot resolve " + where + ": " + ::gai_strerror(rc)};
  fd_guard sock;
  std::string last_error = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
        (errno == EINPROGRESS && wait_for(fd, POLLOUT, deadline))) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) {
        sock.fd = fd;
        break;
      }
      last_error = std::strerror(err);
    } else {
      last_error = errno == EINPROGRESS ? "connect timed out" : std::strerror(errno);
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (sock.fd < 0) return error{errc::unavailable, "cannot connect to " + where + ": " + last_error};

  const std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + where +
                          "\r\nUser-Agent: hearth-scrape\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = ::send(sock.fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(sock.fd, POLLOUT, deadline)) return error{errc::unavailable, "sending to " + where + " timed out"};
    } else {
      return error{errc::unavailable, "sending to " + where + " failed: " + std::strerror(errno)};
    }
  }

  std::string raw;
  const uint64_t max_raw = max_body + 64 * 1024;  // headers and chunk framing
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(sock.fd, buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      if (raw.size() > max_raw)
        return error{errc::body_too_large, "response from " + where + " is over " + std::to_string(max_body) + " bytes"};
      continue;
    }
    if (n == 0) break;
    if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(sock.fd, POLLIN, deadline))
        return error{errc::unavailable, "no complete response from " + where + " within " +
                                            std::to_string(timeout.count()) + " ms"};
      continue;
    }
    return error{errc::unavailable, "reading from " + where + " failed: " + std::strerror(errno)};
  }

  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return error{errc::invalid_argument, "malformed HTTP response from " + where};
  std::string_view head(raw.data(), head_end);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  http_response r;
  if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12)
    return error{errc::invalid_argument, "malformed HTTP status line from " + where};
  size_t sp = status_line.find(' ');
  r.status = std::atoi(std::string(status_line.substr(sp + 1, 3)).c_str());
  bool chunked = false;
  int64_t content_length = -1;
  for (size_t pos = eol == std::string_view::npos ? head.size() : eol + 2; pos < head.size();) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view line = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = lower(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) chunked = true;
    if (name == "content-length") content_length = std::atoll(std::string(value).c_str());
    if (name == "content-type") r.content_type = std::string(value);
  }
  std::string_view body(raw.data() + head_end + 4, raw.size() - head_end - 4);
  if (chunked) {
    auto d = dechunk(body);
    if (!d) return error{d.err().code, d.err().message + " (from " + where + ")"};
    r.body = std::move(*d);
  } else if (content_length >= 0) {
    if (body.size() < static_cast<uint64_t>(content_length))
      return error{errc::unavailable, "response from " + where + " ended after " + std::to_string(body.size()) +
                                          " of " + std::to_string(content_length) + " bytes"};
    r.body = std::string(body.substr(0, static_cast<size_t>(content_length)));
  } else {
    r.body = std::string(body);
  }
  if (r.body.size() > max_body)
    return error{errc::body_too_large, "response from " + where + " is over " + std::to_string(max_body) + " bytes"};
  return r;
}

}  // namespace hearth::io
