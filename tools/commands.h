#pragma once
/// The subcommands of the `weft` program; each returns the process exit code.
#include <string>

#include "ir/graph.h"

namespace weft::cli {

/// `weft list`: the registered models.
int cmdList(int argc, char** argv);
/// `weft dump MODEL|FILE`: print a graph, optionally after passes.
int cmdDump(int argc, char** argv);
/// `weft opt FILE|-`: parse IR text, run a pipeline, print the result.
int cmdOpt(int argc, char** argv);
/// `weft compile MODEL|FILE`: compile a graph for the CPU, print stats, dump generated code.
int cmdCompile(int argc, char** argv);
/// `weft run MODEL|FILE`: run a graph (CPU backend or interpreter), write outputs as .npy.
int cmdRun(int argc, char** argv);
/// `weft train MODEL`: train on Fashion-MNIST (or synthetic data), checkpoint, evaluate.
int cmdTrain(int argc, char** argv);
/// `weft sample MODEL --out FILE.png`: decode random latents into an image grid.
int cmdSample(int argc, char** argv);
/// `weft bench`: time the benchmark models (inference, training step), optionally beside PyTorch.
int cmdBench(int argc, char** argv);

/// True when `spec` names IR text (`-`, a path with a '/', or a name ending in .weft) rather
/// than a registered model.
bool isGraphFile(const std::string& spec);

/// A graph from a model name (its training form, or with `evaluation` its evaluation form:
/// batch norm with running statistics, no dropout), a `.weft` file, or `-` (stdin). Text with
/// `dense<elided>` constants is an error unless `allowElidedConstants` (for commands that
/// only print or transform graphs: the constants read as zeros).
ir::Graph loadGraph(const std::string& spec, bool evaluation = false, bool allowElidedConstants = false);

}  // namespace weft::cli
