// Opens a plugin file only when nobody but its rightful owners could have put it there: the
// file and every directory above it (symlinks resolved), checked on the inodes actually opened.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace clusterd::plugin {

// An owned file descriptor (closed on destruction; move-only).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd &&other) noexcept : fd_(other.release()) {}
  Fd &operator=(Fd &&other) noexcept;
  ~Fd();
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// The rule. Running as root: the file and every directory from `/` down to it are owned by
// root and writable by no one else, except that a directory writable by others is accepted
// when it is sticky (its entries, all root's, cannot then be renamed or removed by others) and
// a file in such a directory has a single link. Not running as root: the same, with the
// caller as a second trusted owner, and group write allowed for root's or the caller's own
// group. Opens the file O_RDONLY | O_CLOEXEC by an openat() walk of its resolved path
// (O_NOFOLLOW at every step), so the descriptor returned is the inode that was checked: load
// it through /proc/self/fd/N. On failure returns an empty Fd and sets `error`, naming the file
// and the offending file or directory with its mode and owner.
Fd open_trusted(const std::filesystem::path &path, struct stat &st, std::string &error);

}  // namespace clusterd::plugin
