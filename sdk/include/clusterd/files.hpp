// clusterd plugin SDK — reading a small file (token, cookie, hosts file) without iostreams; never
// shows its content in errors.
#ifndef CLUSTERD_FILES_HPP
#define CLUSTERD_FILES_HPP

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace clusterd {

// ---- Files -----------------------------------------------------------------------------------

/// Reads a whole small file (a token, a cookie, a hosts file) into `out`. Returns false when it
/// cannot be opened or read, is not a regular file (a FIFO would block), or holds more than
/// `max_bytes`, with `error` set to "PATH: reason"
/// (never any of the content, which may be a secret). [thread-safe]
/// Plain POSIX I/O on purpose: iostreams would link the C++ locale machinery into a plugin
/// built with the static C++ runtime (clusterd_add_plugin's default) and cost the daemon memory.
inline bool read_file(const std::string &path, std::string &out, std::string &error,
                      std::size_t max_bytes = std::size_t{1} << 20) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = path + ": not a regular file";
    ::close(fd);
    return false;
  }
  std::string text;
  char buffer[16384];
  for (;;) {  // ends at EOF, on an error, or once past max_bytes
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > max_bytes) {
      error = path + ": larger than " + std::to_string(max_bytes) + " bytes";
      ::close(fd);
      return false;
    }
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  out = std::move(text);
  return true;
}

}  // namespace clusterd

#endif  // CLUSTERD_FILES_HPP
