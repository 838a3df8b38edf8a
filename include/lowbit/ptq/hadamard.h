// lowbit/ptq/hadamard.h — randomized orthonormal Hadamard transforms, the rotations of QuaRot /
// HALO / Quartet: Q = diag(s) · H_n / sqrt(n), with random signs s from a seed, applied as y = x ·
// Q to each row of a matrix. Sizes n = 2^k · m, where m is 1, 2 or the order of a Hadamard matrix
// from a Paley construction (12, 20, 28, 36, 44, ...): the transform is a fast Walsh–Hadamard over
// the 2^k part, O(n log n), and a dense m × m product over the other (the Kronecker product
// H_m ⊗ H_{2^k}).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowbit/model/linear.h"

namespace lowbit::ptq {

class HadamardTransform : public model::RowTransform {
 public:
  // seed 0: no sign flips (the plain normalised Hadamard matrix). Throws lowbit::Error when n
  // has no supported factorisation.
  explicit HadamardTransform(int n, uint64_t seed = 0);
  static bool supported(int n);

  int size() const override { return n_; }
  int power_of_two_part() const { return p_; }
  int small_order() const { return m_; }

  // Each of the `rows` rows of x (length n, contiguous) becomes x · Q; inverse: x · Qᵀ.
  void apply(float* x, size_t rows) const override;
  void apply_inverse(float* x, size_t rows) const;
  // Q as a dense row-major n × n matrix (tests, and folding into weights).
  std::vector<double> dense() const;

 private:
  void transform_row(double* row, bool inverse) const;
  int n_ = 0, p_ = 1, m_ = 1;
  std::vector<double> small_;  // H_m, row-major, entries ±1
  std::vector<double> signs_;  // ±1 per element
};

// Block-diagonal rotation (MR-GPTQ, BRQ): Q = diag(s) · blockdiag(H_b / sqrt(b), ...), a Hadamard
// of order `block` on each run of `block` elements of a row of `n`, with random signs over all n.
// Matched to a block format's group (16 for NVFP4, 32 for MX), it mixes values only inside each
// quantization block, so a block's outliers are spread over that block without raising its
// neighbours' scales. Throws lowbit::Error when block does not divide n or has no transform.
class BlockHadamardTransform : public model::RowTransform {
 public:
  BlockHadamardTransform(int n, int block, uint64_t seed = 0);
  int size() const override { return n_; }
  void apply(float* x, size_t rows) const override;
  void apply_inverse(float* x, size_t rows) const;
  std::vector<double> dense() const;

 private:
  int n_;
  HadamardTransform inner_;   // H_b / sqrt(b), without signs
  std::vector<float> signs_;  // ±1 per element of a row
};

// A Hadamard matrix of order m (entries ±1, H Hᵀ = m I), or empty when none is constructed here.
std::vector<double> hadamard_matrix(int m);

}  // namespace lowbit::ptq
