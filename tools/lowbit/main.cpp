// lowbit: low-precision number formats and neural-network quantization, from the command line.
#include <cstdio>
#include <exception>
#include <new>

#include "commands.h"
#include "flag_names.h"
#include "lowbit/util/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "lowbit: low-precision number formats, quantization, and the models to measure them on"};
  app.set_version_flag("--version", "lowbit 0.1.0");
  app.require_subcommand(1);
  lowbit::cli::add_formats_command(app);
  lowbit::cli::add_convert_command(app);
  lowbit::cli::add_schemes_command(app);
  lowbit::cli::add_quantize_tensor_command(app);
  lowbit::cli::add_inspect_command(app);
  lowbit::cli::add_tokenize_command(app);
  lowbit::cli::add_eval_command(app);
  lowbit::cli::add_generate_command(app);
  lowbit::cli::add_bench_command(app);
  lowbit::cli::add_recipe_command(app);
  lowbit::cli::add_sweep_commands(app);
  lowbit::cli::add_allocate_command(app);
  lowbit::cli::add_export_command(app);
  lowbit::cli::add_train_command(app);
  lowbit::cli::add_train_sweep_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "lowbit: %s\n", lowbit::cli::with_flag_names(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    // Sizes are estimated before the large allocations; this is what is left (e.g. a huge text).
    std::fprintf(stderr,
                 "lowbit: out of memory (the run needs more memory than this machine can give; try "
                 "a smaller "
                 "--ctx, --max-tokens or model)\n");
    return 1;
  } catch (const std::exception& e) {
    // No exception escapes main: anything else is reported, not an abort.
    std::fprintf(stderr, "lowbit: unexpected error: %s\n", e.what());
    return 1;
  }
  return 0;
}
