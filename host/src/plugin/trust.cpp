#include "plugin/trust.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/core.h>

namespace clusterd::plugin {

Fd &Fd::operator=(Fd &&other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

std::string user_name(uid_t uid) {
  passwd pw, *found = nullptr;
  char buffer[1024];
  if (::getpwuid_r(uid, &pw, buffer, sizeof buffer, &found) == 0 && found) return pw.pw_name;
  return std::to_string(uid);
}

std::string group_name(gid_t gid) {
  group gr, *found = nullptr;
  char buffer[1024];
  if (::getgrgid_r(gid, &gr, buffer, sizeof buffer, &found) == 0 && found) return gr.gr_name;
  return std::to_string(gid);
}

// "mode 0775, owner root, group nogroup"
std::string describe(const struct stat &st) {
  return fmt::format("mode {:04o}, owner {}, group {}", st.st_mode & 07777, user_name(st.st_uid),
                     group_name(st.st_gid));
}

// Why `st` (the file, or a directory on its path) cannot be trusted; "" when it can.
// `parent_shared`: the directory holding it is writable by others (and sticky).
std::string distrust(const struct stat &st, bool parent_shared) {
  const uid_t me = ::geteuid();
  const bool root = me == 0;
  if (st.st_uid != 0 && st.st_uid != me)
    return fmt::format("is owned by {}",
                       root ? user_name(st.st_uid) + ", not root"
                            : user_name(st.st_uid) + ", neither root nor " + user_name(me));
  const bool dir = S_ISDIR(st.st_mode);
  const bool group_ok = !root && (st.st_gid == 0 || st.st_gid == ::getegid());
  const bool others_write = (st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && !group_ok);
  if (others_write && !(dir && (st.st_mode & S_ISVTX)))
    return (st.st_mode & S_IWOTH) ? "is world-writable" : "is group-writable";
  if (!dir && !S_ISREG(st.st_mode)) return "is not a regular file";
  if (!dir && parent_shared && st.st_nlink != 1)
    return "has " + std::to_string(st.st_nlink) +
           " links in a directory others can write to (a hard link is anyone's)";
  return "";
}

bool shared(const struct stat &st) {
  const bool group_ok = ::geteuid() != 0 && (st.st_gid == 0 || st.st_gid == ::getegid());
  return (st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && !group_ok);
}

}  // namespace

Fd open_trusted(const std::filesystem::path &path, struct stat &st, std::string &error) {
  const std::string shown = path.string();
  char resolved_buffer[PATH_MAX];
  if (!::realpath(path.c_str(), resolved_buffer)) {
    error = shown + ": " + std::strerror(errno);
    return {};
  }
  const std::filesystem::path resolved = resolved_buffer;
  const std::string rule =
      ::geteuid() == 0
          ? "; as root, a plugin file and every directory above it must be owned by root and "
            "writable only by root (see docs/operations.md)"
          : "; a plugin file and every directory above it must be owned by root or this user "
            "and writable by no other user (see docs/operations.md)";
  auto refuse = [&](const std::string &what, const struct stat &bad, const std::string &why) {
    error = shown + ": not loaded: " + what + " " + why + " (" + describe(bad) + ")" + rule;
    return Fd();
  };
  auto failed = [&](const std::string &what) {
    // A component that is now a symlink (ELOOP, ENOTDIR) was swapped after realpath().
    error = shown + ": not loaded: " + what + ": " + std::strerror(errno) +
            (errno == ELOOP || errno == ENOTDIR ? " (it changed while being checked)" : "");
    return Fd();
  };
  Fd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::fstat(dir.get(), &st) != 0) return failed("/");
  if (auto why = distrust(st, false); !why.empty()) return refuse("directory /", st, why);
  std::filesystem::path walked = "/";
  for (auto it = std::next(resolved.begin()); it != resolved.end(); ++it) {
    const bool last = std::next(it) == resolved.end();
    const bool parent_shared = shared(st);
    walked /= *it;
    const int flags = last ? O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY
                           : O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
    Fd next(::openat(dir.get(), it->c_str(), flags));
    if (!next) return failed(walked.string());
    if (::fstat(next.get(), &st) != 0) return failed(walked.string());
    if (auto why = distrust(st, parent_shared); !why.empty())
      return refuse(last ? (walked == path ? "the file" : "the file " + walked.string())
                         : "directory " + walked.string(),
                    st, why);
    dir = std::move(next);
  }
  if (!S_ISREG(st.st_mode)) return refuse("the file", st, "is not a regular file");
  return dir;
}

}  // namespace clusterd::plugin
