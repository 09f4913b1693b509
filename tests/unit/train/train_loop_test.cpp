// The training loop end to end on tiny registered models and synthetic data: the loss goes
// down, checkpoints resume exactly, bad checkpoints are rejected without partial loads.
#include "tools/training/train_loop.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "frontend/weft.h"
#include "ir/error.h"
#include "runtime/random.h"
#include "runtime/safetensors.h"
#include "runtime/synthetic.h"
#include "tools/training/checkpoint.h"
#include "tools/training/evaluate.h"

using namespace weft;

namespace {

/// A fresh temporary directory per test.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("weft_train_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// 4x4 pattern images in 5 classes: mlp_tiny's input (16 features, 5 classes).
runtime::Dataset patterns(int64_t count, uint64_t seed = 1) { return runtime::makePatternImages(count, 5, 4, 4, seed); }

training::TrainOptions options(const std::string& optimizer, double lr, int64_t steps) {
  training::TrainOptions o;
  o.steps = steps;
  o.batchSize = 8;
  o.seed = 3;
  o.optimizer = passes::parseOptimizer(optimizer);
  o.schedule.base = lr;
  return o;
}

double mean(const std::vector<double>& v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / static_cast<double>(to - from);
}

}  // namespace

TEST(TrainLoop, TrainingLowersTheLossAndImprovesAccuracy) {
  training::ModelSpec model = training::registryModel("mlp_tiny", 0);
  EXPECT_TRUE(model.classifier);
  runtime::Dataset data = patterns(160);
  reference::TensorMap initial = reference::initialState(training::buildStepGraph(model, options("adam", 0.01, 1)));
  training::EvalResult before = training::evaluate(model, initial, data, 16);

  training::TrainResult r = training::train(model, data, options("adam", 0.01, 100));
  ASSERT_EQ(r.losses.size(), 100u);
  EXPECT_EQ(r.stepsDone, 100);
  EXPECT_LT(mean(r.losses, 90, 100), 0.5 * mean(r.losses, 0, 10));
  training::EvalResult after = training::evaluate(model, r.state, data, 16);
  EXPECT_EQ(after.examples, 160);
  ASSERT_TRUE(after.accuracy);
  EXPECT_LT(after.meanLoss, before.meanLoss);
  EXPECT_GT(*after.accuracy, *before.accuracy);
  EXPECT_GT(*after.accuracy, 0.8);
}

TEST(TrainLoop, VaeLossGoesDown) {
  training::ModelSpec model = training::registryModel("vae_tiny", 0);
  EXPECT_FALSE(model.classifier);
  runtime::Dataset data = runtime::makePatternImages(60, 3, 3, 4, 2);  // 12 features in [0, 1]
  training::TrainOptions o = options("adam", 0.02, 80);
  o.batchSize = 6;
  training::TrainResult r = training::train(model, data, o);
  EXPECT_LT(mean(r.losses, 70, 80), mean(r.losses, 0, 10));
  training::EvalResult e = training::evaluate(model, r.state, data, 7);  // 8 batches of 7, then 4
  EXPECT_EQ(e.examples, 60);
  EXPECT_FALSE(e.accuracy);
}

TEST(TrainLoop, ResumedRunRepeatsTheUninterruptedLossSequenceExactly) {
  TempDir dir;
  // vae_tiny draws noise keyed by the step, AdamW has moments and a step counter, and the
  // cosine schedule with warm-up spans the whole run: all must carry over.
  training::ModelSpec model = training::registryModel("vae_tiny", 5);
  runtime::Dataset data = runtime::makePatternImages(20, 3, 3, 4, 4);  // 3 batches of 6 per epoch
  training::TrainOptions o = options("adamw", 0.01, 11);
  o.batchSize = 6;
  o.seed = 5;
  o.optimizer.clipNorm = 5;
  o.schedule.kind = runtime::ScheduleKind::cosine;
  o.schedule.warmup = 2;
  training::TrainResult whole = training::train(model, data, o);
  ASSERT_EQ(whole.losses.size(), 11u);

  training::TrainOptions first = o;
  first.checkpointPath = dir.file("ck.safetensors");
  first.stopAfter = 4;  // mid-epoch: epoch 1, batch 1
  training::TrainResult part = training::train(model, data, first);
  ASSERT_EQ(part.losses.size(), 4u);
  training::CheckpointInfo info = training::readCheckpointInfo(first.checkpointPath);
  EXPECT_EQ(info.step, 4);
  EXPECT_EQ(info.epoch, 1);
  EXPECT_EQ(info.batchIndex, 1);
  EXPECT_EQ(info.model, "vae_tiny");
  EXPECT_EQ(info.optimizer, "adamw");

  training::TrainOptions second = o;
  second.resumePath = first.checkpointPath;
  training::TrainResult rest = training::train(model, data, second);
  EXPECT_EQ(rest.firstStep, 4);
  ASSERT_EQ(rest.losses.size(), 7u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(part.losses[i], whole.losses[i]) << "step " << i + 1;
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(rest.losses[i], whole.losses[i + 4]) << "step " << i + 5;
  for (const auto& [name, t] : whole.state) EXPECT_TRUE(t == rest.state.at(name)) << name;
}

TEST(TrainLoop, RandomOpsDrawWithTheGlobalStepAlsoWhenResumed) {
  TempDir dir;
  // loss = sum(w * u) with u ~ U[0, 1) drawn anew each step: SGD moves w by -lr * u(step).
  training::ModelSpec noisy{.name = "noisy",
                            .build =
                                [](bool, int64_t batch) {
                                  GraphBuilder b("noisy", 11);
                                  BuildScope scope(b);
                                  input("x", {batch, 16});
                                  Tensor w = param("w", {4}, init::zeros());
                                  output("loss", sum(w * random_uniform({4})));
                                  return b.finish();
                                },
                            .classifier = false};
  ir::Graph g = noisy.build(true, 8);
  int64_t seed = -1;
  for (const auto& n : g.nodes())
    if (n.op == ir::OpKind::RandomUniform) seed = std::get<int64_t>(n.attrs.at("seed"));
  ASSERT_GE(seed, 0);
  runtime::Dataset data = patterns(16);
  training::TrainOptions o = options("sgd", 0.1, 3);
  o.checkpointPath = dir.file("ck.safetensors");
  o.stopAfter = 1;
  training::train(noisy, data, o);
  o.checkpointPath.clear();
  o.stopAfter = 0;
  o.resumePath = dir.file("ck.safetensors");
  training::TrainResult r = training::train(noisy, data, o);
  for (int64_t i = 0; i < 4; ++i) {
    double want = 0;
    for (uint64_t step = 0; step < 3; ++step) want -= 0.1 * runtime::uniformAt(static_cast<uint64_t>(seed), step, i);
    EXPECT_NEAR(r.state.at("w").get(i), want, 1e-6) << i;
  }
}

TEST(TrainLoop, EpochEndCheckpointsResumeIntoTheNextEpoch) {
  TempDir dir;
  training::ModelSpec model = training::registryModel("mlp_tiny", 0);
  runtime::Dataset data = patterns(24);  // 3 batches per epoch
  training::TrainOptions o = options("momentum", 0.05, 0);
  o.epochs = 3;
  training::TrainResult whole = training::train(model, data, o);
  ASSERT_EQ(whole.losses.size(), 9u);
  training::TrainOptions first = o;
  first.checkpointPath = dir.file("ck.safetensors");
  first.stopAfter = 3;
  training::train(model, data, first);
  training::CheckpointInfo info = training::readCheckpointInfo(first.checkpointPath);
  EXPECT_EQ(info.epoch, 0);
  EXPECT_EQ(info.batchIndex, 3);  // the end of epoch 0
  training::TrainOptions second = o;
  second.resumePath = first.checkpointPath;
  training::TrainResult rest = training::train(model, data, second);
  ASSERT_EQ(rest.losses.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(rest.losses[i], whole.losses[i + 3]);
}

TEST(TrainLoop, MismatchedAndCorruptCheckpointsAreClearErrors) {
  TempDir dir;
  training::ModelSpec model = training::registryModel("mlp_tiny", 0);
  runtime::Dataset data = patterns(16);
  training::TrainOptions o = options("sgd", 0.1, 2);
  o.checkpointPath = dir.file("ck.safetensors");
  training::train(model, data, o);
  auto errorOf = [&](training::TrainOptions resume, const training::ModelSpec& m) {
    resume.checkpointPath.clear();
    resume.resumePath = o.checkpointPath;
    try {
      training::train(m, data, resume);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  training::TrainOptions other = o;
  other.optimizer = passes::parseOptimizer("adam");
  EXPECT_NE(errorOf(other, model).find("optimizer sgd, not adam"), std::string::npos) << errorOf(other, model);
  other = o;
  other.batchSize = 4;
  EXPECT_NE(errorOf(other, model).find("batch size 8, not 4"), std::string::npos);
  EXPECT_NE(errorOf(o, training::registryModel("lenet_tiny", 0)).find("model 'mlp_tiny', not 'lenet_tiny'"),
            std::string::npos);

  // A tensor of the wrong shape: the error names it and nothing is loaded.
  runtime::TensorMap tensors = runtime::loadSafetensors(o.checkpointPath);
  runtime::MetadataMap meta = runtime::readSafetensorsMetadata(o.checkpointPath);
  tensors["fc2.bias"] = ir::TensorData(ir::TensorType{ir::DType::f32, {9}});
  std::string bad = dir.file("bad.safetensors");
  runtime::saveSafetensors(bad, tensors, meta);
  reference::TensorMap state = reference::initialState(training::buildStepGraph(model, o));
  reference::TensorMap before = state;
  try {
    training::loadCheckpointState(bad, state, true);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fc2.bias' is f32[9] but f32[8] is expected"), std::string::npos) << e.what();
  }
  for (const auto& [name, t] : before) EXPECT_TRUE(t == state.at(name)) << name << " was changed";

  // A missing tensor.
  tensors = runtime::loadSafetensors(o.checkpointPath);
  tensors.erase("opt.step");
  runtime::saveSafetensors(bad, tensors, meta);
  EXPECT_THROW(training::loadCheckpointState(bad, state, true), Error);
  EXPECT_NO_THROW(training::loadCheckpointState(o.checkpointPath, state, true));

  // Garbage, truncation, and a safetensors file that is not a checkpoint.
  std::ofstream(dir.file("junk.safetensors"), std::ios::binary) << "not a checkpoint at all";
  EXPECT_THROW(training::readCheckpointInfo(dir.file("junk.safetensors")), Error);
  std::string bytes = runtime::serializeSafetensors(runtime::loadSafetensors(o.checkpointPath), meta);
  std::ofstream(dir.file("cut.safetensors"), std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  EXPECT_THROW(training::loadCheckpointState(dir.file("cut.safetensors"), state, true), Error);
  runtime::saveSafetensors(dir.file("plain.safetensors"), tensors);
  try {
    training::readCheckpointInfo(dir.file("plain.safetensors"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a weft training checkpoint"), std::string::npos);
  }
  EXPECT_THROW(training::readCheckpointInfo(dir.file("missing.safetensors")), Error);
}

TEST(TrainLoop, CheckpointMetadataRoundTrips) {
  TempDir dir;
  reference::TensorMap state{{"w", ir::TensorData(ir::TensorType{ir::DType::f32, {2}})}};
  training::CheckpointInfo info{.model = "m",
                                .step = 7,
                                .epoch = 2,
                                .batchIndex = 1,
                                .seed = 9,
                                .batchSize = 4,
                                .optimizer = "adam",
                                .settings = {{"lr", "0.5"}}};
  training::saveCheckpoint(dir.file("c.safetensors"), state, info);
  training::CheckpointInfo back = training::readCheckpointInfo(dir.file("c.safetensors"));
  EXPECT_EQ(back.model, "m");
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.epoch, 2);
  EXPECT_EQ(back.batchIndex, 1);
  EXPECT_EQ(back.seed, 9u);
  EXPECT_EQ(back.batchSize, 4);
  EXPECT_EQ(back.optimizer, "adam");
  EXPECT_EQ(back.settings, (std::map<std::string, std::string>{{"lr", "0.5"}}));
}

TEST(TrainLoop, BadOptionsAndNaNLossAreErrors) {
  training::ModelSpec model = training::registryModel("mlp_tiny", 0);
  runtime::Dataset data = patterns(16);
  training::TrainOptions o = options("sgd", 0.1, 2);
  o.batchSize = 0;
  EXPECT_THROW(training::train(model, data, o), Error);
  o = options("sgd", 0.1, 2);
  o.batchSize = 32;  // more than the dataset
  EXPECT_THROW(training::train(model, data, o), Error);
  o = options("sgd", 1e30, 5);
  try {
    training::train(model, data, o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the loss became"), std::string::npos) << e.what();
  }
  runtime::Dataset wrongSize = runtime::makePatternImages(16, 5, 3, 3, 1);  // 9 features, not 16
  EXPECT_THROW(training::train(model, wrongSize, options("sgd", 0.1, 1)), Error);
}

TEST(TrainLoop, CountCorrectUsesTheFirstMaximum) {
  ir::TensorData logits(ir::TensorType{ir::DType::f32, {3, 3}});
  for (int64_t i = 0; i < 9; ++i) logits.set(i, std::vector<double>{1, 5, 5, 0, 0, 0, -1, -2, 3}[i]);
  ir::TensorData labels(ir::TensorType{ir::DType::i32, {3}});
  labels.set(0, 1);  // first maximum of {1, 5, 5}
  labels.set(1, 1);  // all equal: argmax 0, wrong
  labels.set(2, 2);
  EXPECT_EQ(training::countCorrect(logits, labels), 2);
}
