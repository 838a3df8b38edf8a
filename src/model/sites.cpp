// What every runtime's Sites can answer for itself.
#include "lowbit/model/sites.h"

#include "lowbit/util/error.h"

namespace lowbit::model {

void Sites::add_input(int layer, const std::string& id, std::vector<Linear*> readers,
                      InputFold fold) {
  const std::string input = "layers." + std::to_string(layer) + "." + id;
  for (Linear* lin : readers) {
    const std::string& name = lin->name();
    linears.push_back({lin, layer, name.substr(name.rfind('.') + 1), input});
  }
  inputs.push_back({input, layer, std::move(readers), fold});
}

std::vector<std::string> Sites::names() const {
  std::vector<std::string> out;
  if (embedding.values) out.push_back(embedding.name);
  for (int l = 0; l < blocks; ++l) {
    for (const LinearSite& s : linears)
      if (s.layer == l) out.push_back(s.linear->name());
    for (const KvSite& k : kv)
      if (k.layer == l) out.push_back(k.name);
  }
  if (head) out.push_back(head->name());
  return out;
}

const InputSite& Sites::input_of(const LinearSite& site) const {
  for (const InputSite& in : inputs)
    if (in.id == site.input) return in;
  throw Error("internal: the site " + site.linear->name() + " reads an input (" + site.input +
              ") the model does not list");
}

std::vector<LinearSite> Sites::block(int layer) const {
  std::vector<LinearSite> out;
  for (const LinearSite& s : linears)
    if (s.layer == layer) out.push_back(s);
  return out;
}

}  // namespace lowbit::model
