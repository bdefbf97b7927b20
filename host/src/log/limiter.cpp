#include "log/limiter.hpp"

#include <algorithm>
#include <cctype>

namespace clusterd::log {
namespace {

constexpr std::uint64_t kFnvOffset = 14695981039346656037ull, kFnvPrime = 1099511628211ull;

void mix(std::uint64_t &hash, unsigned char c) {
  hash = (hash ^ c) * kFnvPrime;
}

// A character of a "word" whose digits make it a number, an address, a node name or a path.
bool word_char(unsigned char c) {
  return std::isalnum(c) || c == '.' || c == ':' || c == '@' || c == '_' || c == '-' || c == '/' ||
         c == '[' || c == ']' || c >= 0x80;
}

}  // namespace

std::uint64_t Limiter::shape_of(std::string_view message) {
  std::uint64_t hash = kFnvOffset;
  for (std::size_t i = 0; i < message.size();) {
    const auto c = static_cast<unsigned char>(message[i]);
    if (c == '\'' || c == '"') {  // quoted text: one mask, whatever it says
      const auto close = message.find(static_cast<char>(c), i + 1);
      mix(hash, c);
      mix(hash, '*');
      i = close == std::string_view::npos ? message.size() : close + 1;
    } else if (word_char(c)) {
      std::size_t end = i;
      bool digit = false;
      while (end < message.size() && word_char(static_cast<unsigned char>(message[end])))
        digit |= std::isdigit(static_cast<unsigned char>(message[end++])) != 0;
      if (digit)
        mix(hash, '#');
      else
        for (; i < end; ++i) mix(hash, static_cast<unsigned char>(message[i]));
      i = end;
    } else {
      mix(hash, c);
      ++i;
    }
  }
  return hash == 0 ? 1 : hash;  // 0 is the source bucket's key
}

bool Limiter::take(Bucket &b, double burst, double per_second, Clock::time_point now) {
  if (b.tokens < 0) {
    b.tokens = burst;
  } else {
    const std::chrono::duration<double> elapsed = now - b.refilled;
    b.tokens = std::min(burst, b.tokens + elapsed.count() * per_second);
  }
  b.refilled = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void Limiter::dropped(Bucket &b, std::string_view message, Clock::time_point now) {
  if (b.dropped++ == 0) {
    b.first_drop = now;
    b.example.assign(message.substr(0, 200));
    next_summary_ = std::min(next_summary_, now + limits_.window);
  }
}

bool Limiter::admit(std::string_view source, int level, std::string_view message,
                    Clock::time_point now) {
  const std::uint64_t shape = shape_of(message);
  std::lock_guard lock(mutex_);
  Bucket &whole = buckets_[Key{source, level, 0}];
  Bucket *one = nullptr;
  Key key{source, level, shape};
  if (auto it = buckets_.find(key); it != buckets_.end()) {
    one = &it->second;
  } else {
    if (buckets_.size() >= kMaxBuckets) {  // forget the shapes that have nothing to report
      std::erase_if(buckets_, [&](const auto &entry) {
        return std::get<2>(entry.first) != 0 && entry.second.dropped == 0;
      });
    }
    // Still full: the many shapes share the source's bucket, which bounds them all.
    if (buckets_.size() < kMaxBuckets) one = &buckets_[std::move(key)];
  }
  if (one && !take(*one, limits_.shape_burst, limits_.shape_per_second, now)) {
    dropped(*one, message, now);
    return false;
  }
  if (!take(whole, limits_.source_burst, limits_.source_per_second, now)) {
    dropped(whole, message, now);
    return false;
  }
  return true;
}

std::vector<Limiter::Summary> Limiter::take_summaries(Clock::time_point now, bool all) {
  std::vector<Summary> out;
  std::lock_guard lock(mutex_);
  if (!all && now < next_summary_) return out;
  next_summary_ = Clock::time_point::max();
  for (auto &[key, b] : buckets_) {
    if (b.dropped == 0) continue;
    if (all || now >= b.first_drop + limits_.window) {
      out.push_back({std::get<0>(key), std::get<1>(key), b.dropped, std::move(b.example)});
      b.dropped = 0;
      b.example.clear();
    } else {
      next_summary_ = std::min(next_summary_, b.first_drop + limits_.window);
    }
  }
  return out;
}

Limiter::Clock::time_point Limiter::next_summary() const {
  std::lock_guard lock(mutex_);
  return next_summary_;
}

}  // namespace clusterd::log
