// A one-line progress bar with rate and ETA on stderr, drawn only when stderr is a terminal (so
// logs and pipes stay clean).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace lowbit::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit)
      : label_(std::move(label)),
        unit_(std::move(unit)),
        enabled_(::isatty(2) != 0),
        start_(std::chrono::steady_clock::now()) {}

  void update(int64_t done, int64_t total) {
    done_ = done;
    total_ = total;
    if (!enabled_ || total <= 0) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double eta = done > 0 ? elapsed / double(done) * double(total - done) : 0;
    constexpr int kWidth = 30;
    const int filled = int(kWidth * done / total);
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld %s, %s elapsed, ETA %s %s", label_.c_str(),
                 std::string(size_t(filled), '#').c_str(),
                 std::string(size_t(kWidth - filled), '.').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total), unit_.c_str(), clock(elapsed).c_str(),
                 clock(eta).c_str(), note_.c_str());
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

  // Shown after the ETA from the next update on (e.g. "loss 3.21, 9,800 tok/s").
  void set_note(std::string note) { note_ = std::move(note); }

  // A line of news (always printed, to stderr) above the bar, which is then redrawn.
  void log(const std::string& line) {
    if (enabled_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", line.c_str());
    if (enabled_ && total_ > 0 && done_ < total_) update(done_, total_);
    std::fflush(stderr);
  }

 private:
  static std::string clock(double s) {
    const long t = long(s + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
  }
  std::string label_, unit_, note_;
  bool enabled_;
  int64_t done_ = 0, total_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lowbit::cli
