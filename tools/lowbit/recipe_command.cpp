// `lowbit recipe`: prints a recipe's canonical form and hash (what every result records), and
// with --sites what it resolves to at every site of a model.
#include <fmt/core.h>

#include "commands.h"
#include "lowbit/model/model.h"
#include "lowbit/ptq/apply_recipe.h"
#include "lowbit/ptq/methods.h"
#include "lowbit/util/error.h"
#include "recipe_flags.h"

namespace lowbit::cli {

void add_recipe_command(CLI::App& app) {
  auto flags = std::make_shared<RecipeFlags>();
  auto model_name = std::make_shared<std::string>();
  auto sites = std::make_shared<bool>(false);
  auto methods = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "recipe", "Print a recipe's canonical form, and where each scheme applies in a model");
  flags->add_to(cmd);
  cmd->add_flag("--sites", *sites,
                "List every site of the model with the schemes that apply there");
  cmd->add_flag("--methods", *methods,
                "List the PTQ methods with their parameters, defaults and ranges");
  cmd->add_option("--model,-m", *model_name, "Model for --sites")
      ->default_val(model::default_model_name());
  cmd->callback([flags, model_name, sites, methods] {
    if (*methods) {
      fmt::print("{}", ptq::methods_table());
      return;
    }
    const ptq::Recipe r = flags->recipe();
    fmt::print("label:     {}\nshort:     {}\ncanonical: {}\nhash:      {}\n", r.label(),
               r.short_form(), r.canonical(), r.hash_hex());
    if (!*sites) return;
    const model::Model m = model::load_model(*model_name);
    ptq::ApplyReport applied;
    ptq::apply_recipe(r, m.runtime(), &applied);  // checks every scheme against its tensor
    fmt::print("\n{:<22} {:<26} {:<26} {}\n", "site", "weights", "activations", "kv");
    for (const std::string& site : ptq::model_sites(m.runtime())) {
      const ptq::Recipe::Resolved s = r.resolve(site);
      const bool kv_site = site.find("kv_cache") != std::string::npos;
      fmt::print("{:<22} {:<26} {:<26} {}\n", site,
                 kv_site ? "" : ptq::maybe_scheme_name(s.weights),
                 kv_site || site == "embedding" || site == "output"
                     ? ""
                     : ptq::maybe_scheme_name(s.activations),
                 kv_site ? ptq::maybe_scheme_name(s.kv) : "");
    }
    fmt::print("\n{:.3f} bits per weight (model), {:.3f} per Linear weight\n",
               applied.bits_per_weight, applied.bits_per_linear_weight);
  });
}

}  // namespace lowbit::cli
