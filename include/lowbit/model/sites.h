// lowbit/model/sites.h — where quantization applies in a model, described without its architecture.
// Every runtime (LLaMA family, BERT, a test's toy GPT-2) describes its *sites*: each Linear with
// its block and role, which Linears read the same input (one Hessian, one smoothing factor), the
// norm or Linear in front of each input, the KV cache of each attention block, the embedding
// table and the output head; and it runs block i on stored inputs. PTQ methods, statistics and
// evaluation see only this, never a runtime's fields, so a new architecture plugs in by
// implementing Runtime and a new method by using Sites.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include "lowbit/model/linear.h"
#include "lowbit/quant/scheme.h"
#include "lowbit/util/error.h"

namespace lowbit::model {

struct LinearSite {
  Linear* linear = nullptr;  // the site's name is linear->name(): "layers.3.q_proj"
  int layer = -1;            // the block it belongs to
  std::string role;          // "q_proj", "down_proj", "ffn_in", "qkv_proj", ...
  std::string input;         // id of what it reads; Linears with the same id read the same rows
};

// Where per-channel factors s_j of an input can be divided out exactly, so that the readers can
// multiply their weight columns by s_j and compute the same function (SmoothQuant). At most one
// of the two is set; neither when the input comes out of a nonlinearity that does not commute
// with scaling (GELU), or out of attention.
struct InputFold {
  std::vector<float>* norm_weight = nullptr;  // the norm producing the input: its weight ...
  std::vector<float>* norm_bias = nullptr;    // ... and bias (LayerNorm) are divided by s
  Linear* rows =
      nullptr;  // or the Linear whose outputs multiply into the input elementwise (up_proj)
};

struct InputSite {
  std::string id;  // "layers.3.attn_in"
  int layer = -1;
  std::vector<Linear*> readers;  // in forward order
  InputFold fold;
};

// Sees an attention block's keys (after RoPE and any q/k rotation) and values as they enter the
// cache, before it is quantized: [tokens, kv_heads, head_dim] each.
class KvProbe {
 public:
  virtual ~KvProbe() = default;
  virtual void observe(int layer, const float* keys, const float* values, int tokens) = 0;
};

// Keys (after RoPE) and values of one attention block, fake-quantized as [tokens, kv_heads,
// head_dim] before they enter the cache when the scheme is set.
struct KvSite {
  std::string name;  // "layers.3.kv_cache"
  int layer = -1;
  std::optional<Scheme>* scheme = nullptr;
  // The attention's products (q·k, softmax·v) by L-Mul when set; nullptr for runtimes whose
  // attention cannot.
  std::optional<LMul>* products = nullptr;
  KvProbe** probe = nullptr;  // not owned; nullptr where the runtime has no hook
};

// A weight table that is not a Linear (the token embedding): rows x cols floats.
struct TableSite {
  std::string name;  // "embedding"
  std::shared_ptr<std::vector<float>>* values = nullptr;
  size_t rows = 0, cols = 0;
};

struct Sites {
  int blocks = 0;
  TableSite embedding;
  std::vector<LinearSite> linears;  // every block's Linears, in forward order
  std::vector<InputSite> inputs;    // in forward order
  std::vector<KvSite> kv;           // empty for models without a KV cache (encoders)
  Linear* head = nullptr;           // the output head (nullptr: none, as in encoders)
  bool head_tied = false;           // the head's weight is the embedding table
  // The runtime looks embedding rows up in the tied head's packed weight once the table is
  // released (real execution frees the float32 table when the head holds the same values).
  bool embedding_reads_packed_head = false;

  // Adds the input "layers.<layer>.<id>" and, as Linear sites, its readers (each one's role is the
  // last part of its name). Called in forward order, it keeps `linears` in forward order too.
  void add_input(int layer, const std::string& id, std::vector<Linear*> readers,
                 InputFold fold = {});
  // Site names in forward order: embedding, per block its Linears then its kv_cache, output.
  std::vector<std::string> names() const;
  const InputSite& input_of(const LinearSite& site) const;
  // The Linear sites of block `layer`, in forward order.
  std::vector<LinearSite> block(int layer) const;
};

// Runs a model one block at a time on sequences of tokens (calibration, block-wise methods). The
// stream between blocks is `width()` floats per token.
class BlockRunner {
 public:
  virtual ~BlockRunner() = default;
  virtual size_t width() const = 0;
  // stream[n, width] = what enters block 0.
  virtual void embed(const int32_t* tokens, int n, float* stream) = 0;
  // Block `block` on stream[n, width], in place (the Linears' probes see their inputs).
  virtual void run_block(int block, int n, float* stream) = 0;
};

// What a rotation of the residual stream by an orthogonal Q (QuaRot) must touch: rotation is
// specific to an architecture, so a runtime that supports it says where its stream is read and
// written. Pointers are into the runtime that returned the plan.
struct RotationPlan {
  int stream_width = 0, hidden_width = 0, head_width = 0;
  TableSite embedding;  // rows live in the stream: rotated
  struct Readers {
    std::vector<float>* norm =
        nullptr;                   // a scale-only norm in front (folded into readers, then ones)
    std::vector<Linear*> readers;  // read the normalised stream
  };
  std::vector<Readers> readers;  // the output head (after the final norm) is the last
  struct Heads {
    Linear* values = nullptr;  // outputs rotated per head
    Linear* output = nullptr;  // reads the per-head-rotated attention output
  };
  std::vector<Heads> heads;
  std::vector<Linear*> online;   // inputs of hidden_width rotated at run time (down_proj)
  std::vector<Linear*> writers;  // write the stream
  std::vector<std::shared_ptr<const RowTransform>*> qk;  // per-head query/key rotation slots
  std::function<void()> untie;                           // the head stops sharing the embedding
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual std::string architecture() const = 0;  // "llama", "bert", ...
  virtual std::string summary() const = 0;
  // A copy sharing every weight until one is replaced.
  virtual std::unique_ptr<Runtime> clone() const = 0;
  // Pointers into this object: valid while it lives and is not moved.
  virtual Sites sites() = 0;
  virtual std::unique_ptr<BlockRunner> block_runner(int max_tokens) const = 0;
  // nullopt when the architecture has no rotation plan.
  virtual std::optional<RotationPlan> rotation_plan() { return std::nullopt; }
  virtual int64_t parameter_count() const = 0;
};

// A decoder scores windows of tokens.
class Decoder : public Runtime {
 public:
  virtual int vocab_size() const = 0;
  virtual int context_length() const = 0;  // what it was trained for
  // One window at a time from position 0, with buffers for up to max_tokens.
  class Pass {
   public:
    virtual ~Pass() = default;
    virtual void forward(const int32_t* tokens, int n) = 0;
    // Logits of rows [row0, row0 + count) of the last forward: out[count, vocab].
    virtual void logits(int row0, int count, float* out) = 0;
  };
  virtual std::unique_ptr<Pass> pass(int max_tokens) const = 0;
  // Floating-point operations of a forward of n tokens from position 0 plus `logit_rows` logits.
  virtual double flops(int n, int logit_rows) const = 0;
};

// An encoder turns sentences into embeddings.
class Encoder : public Runtime {
 public:
  virtual int embedding_width() const = 0;
  virtual int max_sequence_tokens() const = 0;
  // L2-normalised sentence embeddings [batch, embedding_width] of token sequences.
  virtual std::vector<float> embed(const std::vector<std::vector<int32_t>>& batch) const = 0;
};

// The concrete runtime a method returned, for callers that hold one type (tests, LLaMA-only tools).
template <class T>
T runtime_as(std::unique_ptr<Runtime> r) {
  T* t = dynamic_cast<T*>(r.get());
  if (!t)
    throw Error("internal: expected a " + std::string(typeid(T).name()) + " runtime, got " +
                r->architecture());
  return std::move(*t);
}

}  // namespace lowbit::model
