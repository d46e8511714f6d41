#pragma once
// What a training run tells the person running it: a progress line, a CSV log, a loss plot.
//
//   ctdl::train::progress bar{total_steps, B * T};              // on stderr; a redrawn bar on a terminal
//   ctdl::train::csv_log log{"run/log.csv"};                     // appends; writes the header once
//   for (std::size_t step = 1; step <= total_steps; ++step) {
//       double loss = ...;
//       bar.update(step, loss);                                  // or update(step, loss, val_loss)
//       log.row(step, loss, std::nullopt, lr, bar.tokens_per_second(), bar.elapsed_seconds());
//   }
//   bar.finish();
//   ctdl::train::write_loss_plot_svg("run/loss.svg", train_points, val_points, "GPT on stories");
//
// Steps count completed optimizer steps: update(1, ...) after the first one, update(total, ...)
// after the last.
#include "csv_log.hpp"
#include "format.hpp"
#include "loss_plot.hpp"
#include "progress.hpp"
