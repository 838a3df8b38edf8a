// The two BPE tokenizers: byte-level (GPT-2 family: merges ranked by order) and SentencePiece
// style (LLaMA-2: merges chosen by the score of the merged piece, bytes as <0xXX> fallback).
#include <mutex>
#include <queue>
#include <unordered_map>

#include "lowbit/util/error.h"
#include "model/text_splitting.h"
#include "model/tokenizer_spec.h"
#include "model/unicode.h"

namespace lowbit::model {

namespace {

std::vector<std::string> split_code_points(std::string_view text) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    const int n = unicode::next_code_point(text, pos, cp);
    out.emplace_back(text.substr(pos, size_t(n)));
    pos += size_t(n);
  }
  return out;
}

class ByteLevelBpe final : public SpecTokenizer {
 public:
  explicit ByteLevelBpe(TokenizerSpec spec) : SpecTokenizer(std::move(spec)) {
    for (size_t r = 0; r < spec_.merges.size(); ++r) ranks_.emplace(spec_.merges[r], int32_t(r));
    for (const std::string& p : spec_.pre_patterns) pre_.add_stage(p);
    for (int32_t id : spec_.literal_ids) specials_.add(tokens_.at(size_t(id)), id);
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    const std::string normalized = spec_.nfc ? unicode::nfc(text) : std::string(text);
    for (const SpecialTokens::Segment& seg : specials_.split(normalized)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      for (std::string_view piece : pre_.split(seg.text)) encode_piece(piece, ids);
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text, out;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size()) continue;
      if (id == bos_id_ || id == eos_id_) continue;
      text += tokens_[size_t(id)];
    }
    for (size_t pos = 0; pos < text.size();) {
      char32_t cp;
      const int n = unicode::next_code_point(text, pos, cp);
      const int b = unicode::text_to_byte(cp);
      if (b >= 0)
        out.push_back(char(b));
      else
        out.append(text, pos, size_t(n));
      pos += size_t(n);
    }
    return out;
  }

 private:
  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
    std::string mapped;
    for (char c : piece) mapped += unicode::byte_to_text(uint8_t(c));
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto it = cache_.find(mapped);
      if (it != cache_.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<std::string> symbols = split_code_points(mapped);
    // Classic BPE: merge the best-ranked adjacent pair (all its occurrences, left to right) until
    // no adjacent pair is a merge rule.
    while (symbols.size() > 1) {
      int32_t best = INT32_MAX;
      for (size_t k = 0; k + 1 < symbols.size(); ++k) {
        auto it = ranks_.find(symbols[k] + " " + symbols[k + 1]);
        if (it != ranks_.end() && it->second < best) best = it->second;
      }
      if (best == INT32_MAX) break;
      const std::string& rule = spec_.merges[size_t(best)];
      const size_t space = rule.find(' ');
      const std::string_view left(rule.data(), space),
          right(rule.data() + space + 1, rule.size() - space - 1);
      std::vector<std::string> merged;
      for (size_t k = 0; k < symbols.size(); ++k) {
        if (k + 1 < symbols.size() && symbols[k] == left && symbols[k + 1] == right) {
          merged.push_back(symbols[k] + symbols[k + 1]);
          ++k;
        } else {
          merged.push_back(std::move(symbols[k]));
        }
      }
      symbols.swap(merged);
    }
    std::vector<int32_t> out;
    for (const std::string& s : symbols) {
      auto it = ids_.find(s);
      if (it != ids_.end())
        out.push_back(it->second);
      else if (spec_.unk >= 0)
        out.push_back(spec_.unk);
    }
    ids.insert(ids.end(), out.begin(), out.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() > 200000) cache_.clear();  // bounded memory on huge inputs
    cache_.emplace(std::move(mapped), std::move(out));
  }

  std::unordered_map<std::string, int32_t> ranks_;
  PreTokenizer pre_;
  SpecialTokens specials_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

const std::string kWordBoundary =
    "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space

class SentencePieceBpe final : public SpecTokenizer {
 public:
  explicit SentencePieceBpe(TokenizerSpec spec) : SpecTokenizer(std::move(spec)) {
    if (spec_.scores.size() != tokens_.size())
      throw Error("SentencePiece tokenizer: scores and tokens differ in length");
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = ids_.find(name);
      byte_ids_[size_t(b)] = it == ids_.end() ? -1 : it->second;
    }
    for (int32_t id : spec_.literal_ids) specials_.add(tokens_.at(size_t(id)), id);
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    bool first = true;
    for (const SpecialTokens::Segment& seg : specials_.split(text)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
      } else {
        std::string escaped = (first && spec_.add_space_prefix) ? kWordBoundary : std::string();
        for (char c : seg.text) {
          if (c == ' ')
            escaped += kWordBoundary;
          else
            escaped.push_back(c);
        }
        encode_segment(escaped, ids);
      }
      first = false;
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size() || id == bos_id_ || id == eos_id_) continue;
      const std::string& t = tokens_[size_t(id)];
      unsigned byte;
      if (t.size() == 6 && std::sscanf(t.c_str(), "<0x%02X>", &byte) == 1) {
        out.push_back(char(byte));
        continue;
      }
      for (size_t pos = 0; pos < t.size();) {
        if (t.compare(pos, kWordBoundary.size(), kWordBoundary) == 0) {
          out.push_back(' ');
          pos += kWordBoundary.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
    }
    if (spec_.add_space_prefix && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
  }

 private:
  // Symbols start as single code points; repeatedly merge the adjacent pair whose concatenation is
  // the vocabulary entry with the highest score (leftmost on ties), as SentencePiece's BPE does.
  void encode_segment(const std::string& text, std::vector<int32_t>& ids) const {
    struct Symbol {
      size_t start, len;
      int prev, next;
    };
    std::vector<Symbol> sym;
    for (size_t pos = 0; pos < text.size();) {
      char32_t cp;
      const int n = unicode::next_code_point(text, pos, cp);
      sym.push_back({pos, size_t(n), int(sym.size()) - 1, int(sym.size()) + 1});
      pos += size_t(n);
    }
    if (sym.empty()) return;
    sym.back().next = -1;
    struct Bigram {
      float score;
      int left;
      size_t len;
      bool operator<(const Bigram& o) const {
        return score < o.score || (score == o.score && left > o.left);
      }
    };
    std::priority_queue<Bigram> queue;
    const auto try_pair = [&](int l, int r) {
      if (l < 0 || r < 0) return;
      const size_t len = sym[size_t(l)].len + sym[size_t(r)].len;
      auto it = ids_.find(text.substr(sym[size_t(l)].start, len));
      if (it != ids_.end()) queue.push({spec_.scores[size_t(it->second)], l, len});
    };
    for (size_t k = 1; k < sym.size(); ++k) try_pair(int(k - 1), int(k));
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& left = sym[size_t(b.left)];
      if (left.len == 0 || left.next < 0) continue;
      Symbol& right = sym[size_t(left.next)];
      if (left.len + right.len != b.len) continue;  // stale: one side changed since it was queued
      left.len += right.len;
      right.len = 0;
      left.next = right.next;
      if (right.next >= 0) sym[size_t(right.next)].prev = b.left;
      try_pair(left.prev, b.left);
      try_pair(b.left, left.next);
    }
    for (int k = 0; k >= 0; k = sym[size_t(k)].next) {
      const std::string piece = text.substr(sym[size_t(k)].start, sym[size_t(k)].len);
      auto it = ids_.find(piece);
      if (it != ids_.end()) {
        ids.push_back(it->second);
        continue;
      }
      for (char c : piece) {  // byte fallback, else unknown
        const int32_t id = byte_ids_[uint8_t(c)];
        if (id >= 0)
          ids.push_back(id);
        else if (spec_.unk >= 0) {
          ids.push_back(spec_.unk);
          break;
        }
      }
    }
  }

  int32_t byte_ids_[256];
  SpecialTokens specials_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerSpec spec) {
  return std::make_unique<ByteLevelBpe>(std::move(spec));
}
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerSpec spec) {
  return std::make_unique<SentencePieceBpe>(std::move(spec));
}

}  // namespace lowbit::model
