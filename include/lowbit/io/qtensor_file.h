// lowbit/io/qtensor_file.h — the .lbq container: one quantized tensor in a small, documented file
// that any language can read (a JSON header, then the packed planes). Layout in
// docs/quantization.md#the-lbq-container.
#pragma once

#include <string>

#include "lowbit/quant/qtensor.h"

namespace lowbit {

// Writes atomically (temporary name, then rename).
void write_qtensor(const std::string& path, const QTensor& q);

// Reads and checks everything against the scheme: a truncated file, a bad magic or version, a
// malformed header, shapes that disagree with the scheme, or planes out of range are errors
// naming the file.
QTensor read_qtensor(const std::string& path);

}  // namespace lowbit
